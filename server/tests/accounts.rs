//! Accounts through the real server (docs/accounts.md): an admin invites, the person sets a
//! password and signs in with a session cookie, the API and the socket take the cookie, a write
//! without an Origin is refused, sign-out and disabling end the session and close its sockets
//! at once, a lowered role closes the board's sockets, and the directory shows e-mails to
//! admins only. Local mode has no accounts.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::policy::Role;
use funnel_protocol::wire;
use funnel_server::auth::{Auth, claims_for};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Client, TestServer, json_call_with as call};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn token(user: &str, role: Role) -> String {
    let claims = claims_for(user, None, role, &[], Duration::from_secs(600));
    Auth::with_secret(SECRET).issue(&claims).unwrap().unwrap()
}

async fn start() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.auth_secret = Some(SECRET.into());
    })
    .await;
    (server, dir)
}

/// The `name=value` of the response's session cookie, and its whole `Set-Cookie` line.
fn session_cookie(head: &str) -> (String, String) {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no Set-Cookie in {head}"))
        .to_owned();
    let pair = line["set-cookie:".len()..]
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (pair, line)
}

/// Invites `email` as `role` with the admin token; returns the person's id and the link's secret.
async fn invite(server: &TestServer, admin: &str, email: &str, role: &str) -> (String, String) {
    let bearer = format!("Bearer {admin}");
    let (status, _, body) = call(
        server.addr,
        "POST",
        "/api/v1/invites",
        &[("Authorization", &bearer)],
        Some(json!({ "email": email, "role": role })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let link = body["link"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("http://{}/invite#", server.addr)),
        "{link}"
    );
    let secret = link.split_once('#').unwrap().1.to_owned();
    (body["person"]["id"].as_str().unwrap().to_owned(), secret)
}

/// Accepts the invite with a password; returns the session cookie (`name=value`).
async fn accept(server: &TestServer, secret: &str, password: &str) -> String {
    let (status, head, body) = call(
        server.addr,
        "POST",
        &format!("/api/v1/invites/{secret}/accept"),
        &[],
        Some(json!({ "password": password })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["signedInWith"], "session");
    session_cookie(&head).0
}

async fn board(server: &TestServer, admin: &str) -> String {
    let bearer = format!("Bearer {admin}");
    let (status, _, body) = call(
        server.addr,
        "POST",
        "/api/v1/boards",
        &[("Authorization", &bearer)],
        Some(json!({ "entity": "deal" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// A socket on `board` with the session cookie, synced.
async fn socket(server: &TestServer, board: &str, cookie: &str) -> Client {
    let mut client = Client::connect_raw_with(&server.url(board), &[("Cookie", cookie)]).await;
    client
        .send(wire::client::encode_sync_step1(&Default::default()))
        .await;
    client
}

#[tokio::test]
async fn invite_links_are_made_on_the_public_url_whatever_address_the_request_came_to() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.auth_secret = Some(SECRET.into());
        config.public_url = Some("https://crm.acme.test/".into());
    })
    .await;
    let bearer = format!("Bearer {}", token("root", Role::Admin));
    // An admin's page on the public URL, and a script with no Origin at all: both requests come
    // to the server's inside address (the `Host` is 127.0.0.1 and a port).
    for origin in [Some("https://crm.acme.test"), None] {
        let mut headers = vec![("Authorization", bearer.as_str())];
        headers.extend(origin.map(|o| ("Origin", o)));
        let (status, _, body) = call(
            server.addr,
            "POST",
            "/api/v1/invites",
            &headers,
            Some(json!({ "email": "ines@acme.test", "role": "member" })),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let link = body["link"].as_str().unwrap();
        assert!(
            link.starts_with("https://crm.acme.test/invite#"),
            "{origin:?}: {link}"
        );
        // The link works: its secret opens the invite.
        let secret = link.split_once('#').unwrap().1;
        let (status, _, body) = call(
            server.addr,
            "GET",
            &format!("/api/v1/invites/{secret}"),
            &[],
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn an_invited_person_signs_in_and_is_signed_out_everywhere_when_disabled() {
    let (server, _dir) = start().await;
    let admin = token("root", Role::Admin);
    let b = board(&server, &admin).await;
    let (ann_id, secret) = invite(&server, &admin, " Ann@Example.com ", "member").await;

    // The invite page's question, then a password too short, then a good one.
    let (status, _, info) = call(
        server.addr,
        "GET",
        &format!("/api/v1/invites/{secret}"),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["email"], "ann@example.com");
    let (status, _, body) = call(
        server.addr,
        "POST",
        &format!("/api/v1/invites/{secret}/accept"),
        &[],
        Some(json!({ "password": "short" })),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, head, _) = call(
        server.addr,
        "POST",
        &format!("/api/v1/invites/{secret}/accept"),
        &[],
        Some(json!({ "password": "a long enough passphrase", "name": "Ann Lee" })),
    )
    .await;
    assert_eq!(status, 200);
    let (cookie, line) = session_cookie(&head);
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Lax"),
        "{line}"
    );
    assert!(!line.contains("Secure"), "plain http: no Secure: {line}");
    // The link works once.
    let (status, _, body) = call(
        server.addr,
        "POST",
        &format!("/api/v1/invites/{secret}/accept"),
        &[],
        Some(json!({ "password": "another long passphrase" })),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // The cookie is who they are.
    let (status, _, me) = call(
        server.addr,
        "GET",
        "/api/v1/me",
        &[("Cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["user"].as_str(), me["name"].as_str()),
        (Some(ann_id.as_str()), Some("Ann Lee"))
    );
    assert_eq!(
        (me["email"].as_str(), me["signedInWith"].as_str()),
        (Some("ann@example.com"), Some("session"))
    );

    // A write with the cookie needs a page's Origin (CSRF); with one it is taken.
    let cards = format!("/api/v1/boards/{b}/cards");
    let (status, _, body) = call(
        server.addr,
        "POST",
        &cards,
        &[("Cookie", &cookie)],
        Some(json!({ "title": "Acme" })),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("Origin"),
        "{body}"
    );
    let origin = format!("http://{}", server.addr);
    let (status, _, body) = call(
        server.addr,
        "POST",
        &cards,
        &[("Cookie", &cookie), ("Origin", &origin)],
        Some(json!({ "title": "Acme" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["responsible"], ann_id.as_str(), "her card: {body}");
    let (status, _, _) = call(
        server.addr,
        "POST",
        &cards,
        &[("Cookie", &cookie), ("Origin", "https://evil.example")],
        Some(json!({ "title": "Evil" })),
    )
    .await;
    assert_eq!(status, 403);

    // Signing in again: a wrong password and an unknown e-mail get the same answer.
    let login = |email: &'static str, password: &'static str| {
        call(
            server.addr,
            "POST",
            "/api/v1/session",
            &[],
            Some(json!({ "email": email, "password": password })),
        )
    };
    let (wrong, _, wrong_body) = login("ann@example.com", "not her password").await;
    let (unknown, _, unknown_body) = login("nobody@example.com", "not her password").await;
    assert_eq!((wrong, unknown), (401, 401));
    assert_eq!(wrong_body["detail"], unknown_body["detail"]);
    let (status, head, me) = login("ANN@example.com", "a long enough passphrase").await;
    assert_eq!(status, 200, "{me}");
    let (second, _) = session_cookie(&head);
    assert_ne!(second, cookie);

    // Her sockets, opened with either session, take the cookie and see the board.
    let mut first_socket = socket(&server, &b, &cookie).await;
    let mut second_socket = socket(&server, &b, &second).await;
    first_socket.wait_for_card("Acme").await;
    second_socket.wait_for_card("Acme").await;

    // Signing out ends that session alone and closes its socket.
    let (status, head, _) = call(
        server.addr,
        "DELETE",
        "/api/v1/session",
        &[("Cookie", &second)],
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(session_cookie(&head).1.contains("Max-Age=0"));
    let (code, reason) = second_socket.expect_close().await;
    assert_eq!(code, 4401, "{reason}");
    let (status, _, _) = call(
        server.addr,
        "GET",
        "/api/v1/me",
        &[("Cookie", &second)],
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = call(
        server.addr,
        "GET",
        "/api/v1/me",
        &[("Cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Disabled: the open socket closes at once, the session and the password stop working.
    let bearer = format!("Bearer {admin}");
    let (status, _, person) = call(
        server.addr,
        "PATCH",
        &format!("/api/v1/people/{ann_id}"),
        &[("Authorization", &bearer)],
        Some(json!({ "disabled": true })),
    )
    .await;
    assert_eq!(status, 200, "{person}");
    assert_eq!(person["disabled"], true);
    let (code, reason) = first_socket.expect_close().await;
    assert_eq!(code, 4401, "{reason}");
    assert!(reason.contains("disabled"), "{reason}");
    let (status, _, body) = call(
        server.addr,
        "GET",
        "/api/v1/me",
        &[("Cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("sign in again"),
        "{body}"
    );
    let (status, _, _) = login("ann@example.com", "a long enough passphrase").await;
    assert_eq!(status, 401);
    let mut refused = Client::connect_raw_with(&server.url(&b), &[("Cookie", &cookie)]).await;
    assert_eq!(refused.expect_close().await.0, 4401);

    server.stop().await;
}

#[tokio::test]
async fn roles_per_board_apply_and_a_lowered_role_closes_the_boards_sockets() {
    let (server, _dir) = start().await;
    let admin = token("root", Role::Admin);
    let b = board(&server, &admin).await;
    let other = board(&server, &admin).await;
    let (bob_id, secret) = invite(&server, &admin, "bob@example.com", "viewer").await;
    let cookie = accept(&server, &secret, "bob's long passphrase").await;
    let bearer = format!("Bearer {admin}");
    let origin = format!("http://{}", server.addr);
    let write = |board: String| {
        let (cookie, origin) = (cookie.clone(), origin.clone());
        async move {
            call(
                server.addr,
                "POST",
                &format!("/api/v1/boards/{board}/cards"),
                &[("Cookie", &cookie), ("Origin", &origin)],
                Some(json!({ "title": "Deal" })),
            )
            .await
            .0
        }
    };
    assert_eq!(write(b.clone()).await, 403, "a viewer");
    let patch = |body: Value| {
        let bearer = bearer.clone();
        let path = format!("/api/v1/people/{bob_id}");
        async move {
            call(
                server.addr,
                "PATCH",
                &path,
                &[("Authorization", &bearer)],
                Some(body),
            )
            .await
        }
    };
    let (status, _, person) = patch(json!({ "boardRoles": { &b: "member" } })).await;
    assert_eq!(status, 200, "{person}");
    assert_eq!(person["boardRoles"][&b], "member");
    assert_eq!(write(b.clone()).await, 201, "a member of this board");
    assert_eq!(write(other.clone()).await, 403, "still a viewer elsewhere");

    // Lowered on one board: the socket there closes, the one on the other board stays.
    let mut here = socket(&server, &b, &cookie).await;
    let mut there = socket(&server, &other, &cookie).await;
    here.wait_for_card("Deal").await;
    let (status, _, _) = patch(json!({ "boardRoles": { &b: null } })).await;
    assert_eq!(status, 200);
    let (code, reason) = here.expect_close().await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("role"), "{reason}");
    assert!(
        there.drain_for(Duration::from_millis(300)).await,
        "the other board's socket stays open"
    );
    assert_eq!(write(b.clone()).await, 403, "a viewer again");

    // Bad input is a clear 422; an admin cannot disable themselves.
    let (status, _, body) = patch(json!({ "role": "owner" })).await;
    assert_eq!(status, 422, "{body}");
    let (status, _, body) = patch(json!({ "boardRoles": { "bad id!": "member" } })).await;
    assert_eq!(status, 422, "{body}");
    let (status, _, _) = call(
        server.addr,
        "PATCH",
        "/api/v1/people/nobody",
        &[("Authorization", &bearer)],
        Some(json!({ "disabled": true })),
    )
    .await;
    assert_eq!(status, 404);

    // Bob is no admin: he may not invite or change people.
    let (status, _, _) = call(
        server.addr,
        "POST",
        "/api/v1/invites",
        &[("Cookie", &cookie), ("Origin", &origin)],
        Some(json!({ "email": "eve@example.com" })),
    )
    .await;
    assert_eq!(status, 403);
    server.stop().await;
}

/// Regression: a socket opened under a board's own role kept it after that role was removed
/// at the same rights, so a later lowering of the default role (which names no board) left it
/// open with the old rights. A role changed without being lowered now reconnects the sockets it
/// concerns (1012), which then hold the roles that are true, and the lowering closes them.
#[tokio::test]
async fn a_board_role_removed_or_a_role_raised_reconnects_the_sockets_it_concerns() {
    let (server, _dir) = start().await;
    let admin = token("root", Role::Admin);
    let b = board(&server, &admin).await;
    let other = board(&server, &admin).await;
    let (bob_id, secret) = invite(&server, &admin, "bob@example.com", "member").await;
    let cookie = accept(&server, &secret, "bob's long passphrase").await;
    let bearer = format!("Bearer {admin}");
    let patch = |body: Value| {
        let (bearer, path) = (bearer.clone(), format!("/api/v1/people/{bob_id}"));
        async move {
            let (status, _, person) = call(
                server.addr,
                "PATCH",
                &path,
                &[("Authorization", &bearer)],
                Some(body),
            )
            .await;
            assert_eq!(status, 200, "{person}");
        }
    };
    patch(json!({ "boardRoles": { &b: "member" } })).await;
    let mut here = socket(&server, &b, &cookie).await;
    let mut there = socket(&server, &other, &cookie).await;
    assert!(here.drain_for(Duration::from_millis(200)).await);

    // The board's own role goes, at the same rights: that board's socket reconnects, the other
    // (under the default role, unchanged) stays.
    patch(json!({ "boardRoles": { &b: null } })).await;
    let (code, reason) = here.expect_close().await;
    assert_eq!(code, 1012, "{reason}");
    assert!(
        there.drain_for(Duration::from_millis(300)).await,
        "the other board's socket stays open"
    );

    // Reconnected under the default role, the lowering of that role closes it.
    let mut here = socket(&server, &b, &cookie).await;
    assert!(here.drain_for(Duration::from_millis(200)).await);
    patch(json!({ "role": "viewer" })).await;
    for socket in [&mut here, &mut there] {
        let (code, reason) = socket.expect_close().await;
        assert_eq!(code, 4403, "{reason}");
    }

    // Raised again: the sockets under the default role reconnect, to hold the new rights.
    let mut here = socket(&server, &b, &cookie).await;
    assert!(here.drain_for(Duration::from_millis(200)).await);
    patch(json!({ "role": "member" })).await;
    let (code, reason) = here.expect_close().await;
    assert_eq!(code, 1012, "{reason}");
    server.stop().await;
}

#[tokio::test]
async fn me_with_a_board_id_says_the_role_on_that_board() {
    let (server, _dir) = start().await;
    let admin = token("root", Role::Admin);
    let b = board(&server, &admin).await;
    let other = board(&server, &admin).await;
    let bearer = format!("Bearer {admin}");
    let set_board_role = |person: String, board: String, role: &'static str| {
        let bearer = bearer.clone();
        async move {
            let (status, _, body) = call(
                server.addr,
                "PATCH",
                &format!("/api/v1/people/{person}"),
                &[("Authorization", &bearer)],
                Some(json!({ "boardRoles": { board: role } })),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    // Bob is a viewer by default and a member on `b`; Carol a member by default, a viewer on `b`.
    let (bob_id, secret) = invite(&server, &admin, "bob@example.com", "viewer").await;
    let bob = accept(&server, &secret, "bob's long passphrase").await;
    set_board_role(bob_id, b.clone(), "member").await;
    let (carol_id, secret) = invite(&server, &admin, "carol@example.com", "member").await;
    let carol = accept(&server, &secret, "carol's long passphrase").await;
    set_board_role(carol_id, b.clone(), "viewer").await;
    let me = |cookie: String, query: String| async move {
        call(
            server.addr,
            "GET",
            &format!("/api/v1/me{query}"),
            &[("Cookie", &cookie)],
            None,
        )
        .await
    };

    let (status, _, body) = me(bob.clone(), format!("?boardId={b}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "viewer", "the default stays: {body}");
    assert_eq!(
        body["boardRole"],
        json!({ "boardId": b, "role": "member", "own": true })
    );
    let (_, _, body) = me(bob.clone(), format!("?boardId={other}")).await;
    assert_eq!(
        body["boardRole"],
        json!({ "boardId": other, "role": "viewer", "own": false })
    );
    let (_, _, body) = me(carol.clone(), format!("?boardId={b}")).await;
    assert_eq!(body["role"], "member");
    assert_eq!(body["boardRole"]["role"], "viewer", "{body}");
    let (_, _, body) = me(carol.clone(), String::new()).await;
    assert!(
        body.get("boardRole").is_none(),
        "no boardId, no boardRole: {body}"
    );

    // A token's default role; a token limited to other boards is refused that one.
    let limited = claims_for(
        "dan",
        None,
        Role::Member,
        &[funnel_protocol::BoardId::parse(&other).unwrap()],
        Duration::from_secs(600),
    );
    let limited = format!(
        "Bearer {}",
        Auth::with_secret(SECRET).issue(&limited).unwrap().unwrap()
    );
    let (status, _, body) = call(
        server.addr,
        "GET",
        &format!("/api/v1/me?boardId={other}"),
        &[("Authorization", &limited)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["boardRole"]["role"], "member");
    let (status, head, body) = call(
        server.addr,
        "GET",
        &format!("/api/v1/me?boardId={b}"),
        &[("Authorization", &limited)],
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(head.contains("application/problem+json"), "{head}");

    // A bad board id: 400 problem+json that says what is wrong; another parameter is ignored.
    let too_long = format!("?boardId={}", "x".repeat(65));
    for query in ["?boardId=bad%20id!", "?boardId=", too_long.as_str()] {
        let (status, head, body) = me(bob.clone(), query.to_owned()).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(head.contains("application/problem+json"), "{head}");
        assert!(body["detail"].as_str().unwrap_or_default() != "", "{body}");
    }
    let (status, _, body) = me(bob.clone(), format!("?boardId={b}&_=1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["boardRole"]["role"], "member");
    let (_, _, body) = me(bob.clone(), "?boardId=bad%20id!".to_owned()).await;
    assert!(
        body["detail"].as_str().unwrap().contains("boardId"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_directory_shows_initials_and_colours_and_emails_to_admins_only() {
    let (server, _dir) = start().await;
    let admin = token("root", Role::Admin);
    let (ann_id, secret) = invite(&server, &admin, "ann@example.com", "member").await;
    let cookie = {
        let (status, head, _) = call(
            server.addr,
            "POST",
            &format!("/api/v1/invites/{secret}/accept"),
            &[],
            Some(json!({ "password": "a long enough passphrase", "name": "Ann Lee" })),
        )
        .await;
        assert_eq!(status, 200);
        session_cookie(&head).0
    };
    invite(&server, &admin, "cy@example.com", "viewer").await;
    let bearer = format!("Bearer {admin}");
    let (status, _, all) = call(
        server.addr,
        "GET",
        "/api/v1/people",
        &[("Authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{all}");
    let people = all["people"].as_array().unwrap();
    assert_eq!(people.len(), 2);
    assert_eq!(people[0]["id"], ann_id.as_str());
    assert_eq!(people[0]["initials"], "AL");
    assert_eq!(people[0]["email"], "ann@example.com");
    assert_eq!(
        (people[0]["active"].as_bool(), people[1]["active"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(people[0]["color"].as_str().unwrap().starts_with('#'));

    let (status, _, seen) = call(
        server.addr,
        "GET",
        "/api/v1/people",
        &[("Cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    let first = &seen["people"][0];
    assert_eq!(first["name"], "Ann Lee");
    assert!(
        first.get("email").is_none() && first.get("role").is_none(),
        "{first}"
    );
    let (status, _, _) = call(server.addr, "GET", "/api/v1/people", &[], None).await;
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited() {
    let (server, _dir) = start().await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let (status, _, _) = call(
            server.addr,
            "POST",
            "/api/v1/session",
            &[],
            Some(json!({ "email": "eve@example.com", "password": "guess guess guess" })),
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    server.stop().await;
}

#[tokio::test]
async fn local_mode_has_no_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (status, _, body) = call(
        server.addr,
        "POST",
        "/api/v1/session",
        &[],
        Some(json!({ "email": "ann@example.com", "password": "whatever it is" })),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("--auth-secret"),
        "{body}"
    );
    let (status, _, me) = call(server.addr, "GET", "/api/v1/me", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(me["signedInWith"], "local");
    let (status, _, people) = call(server.addr, "GET", "/api/v1/people", &[], None).await;
    assert_eq!(
        (status, people["people"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    server.stop().await;
}
