//! OpenID Connect sign-in through the real server, where no provider is needed
//! (docs/accounts.md, "How a team signs in with an identity provider"): the sign-in page learns
//! of it from `/api/v1/auth/methods`; a callback without its flow cookie, with a forged one, or
//! with one for another state is refused on the sign-in page (`?signInError=state`); a flow the
//! provider refused lands on the page asked for with `denied`, its cookie cleared; a provider
//! that cannot be reached says `unavailable`; the page to come back to is a same-origin path;
//! callbacks past the sign-in budget of an address say `slow`.
//! Off, the routes answer 404. The whole flow against a real provider is tests/e2e/oidc.test.mjs.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_server::oidc::FlowSeal;
use serde_json::json;
use support::{TestServer, http_full, json_call_with as call};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// An address where nothing listens: the provider is down.
fn dead_issuer() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

async fn start() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let issuer = dead_issuer();
    let server = TestServer::start_with(dir.path(), |config| {
        config.auth_secret = Some(SECRET.into());
        config.oidc_issuer = Some(issuer);
        config.oidc_client_id = Some("funnel".into());
        config.oidc_client_secret = Some("client secret".into());
        config.public_url = Some("http://127.0.0.1:8080".into());
        config.oidc_name = Some("Acme".into());
    })
    .await;
    (server, dir)
}

/// The `Location` of a redirect, and the `Set-Cookie` values of the answer.
fn redirect_of(head: &str) -> (String, Vec<String>) {
    let mut location = String::new();
    let mut cookies = Vec::new();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "location" => location = value.trim().to_owned(),
            "set-cookie" => cookies.push(value.trim().to_owned()),
            _ => {}
        }
    }
    (location, cookies)
}

async fn get(server: &TestServer, path: &str, cookie: Option<&str>) -> (u16, String, Vec<String>) {
    let headers: Vec<(&str, &str)> = cookie.map(|c| vec![("Cookie", c)]).unwrap_or_default();
    let (status, head, _) = http_full(server.addr, "GET", path, &headers, None).await;
    let (location, cookies) = redirect_of(&head);
    (status, location, cookies)
}

const STATE: &str = "aaaaaaaaaaaaaaaaaaaaaa";

#[tokio::test]
async fn the_sign_in_page_learns_of_the_provider() {
    let (server, _dir) = start().await;
    let (status, _, methods) = call(server.addr, "GET", "/api/v1/auth/methods", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(
        methods,
        json!({"password": true, "oidc": {"name": "Acme", "start": "/auth/oidc/start"}})
    );
    server.stop().await;
}

#[tokio::test]
async fn a_callback_without_its_flow_is_refused_on_the_sign_in_page() {
    let (server, _dir) = start().await;
    let path = format!("/auth/oidc/callback?code=c&state={STATE}");
    let (status, location, cookies) = get(&server, &path, None).await;
    assert_eq!(status, 303);
    assert_eq!(location, "/?signInError=state");
    assert!(
        !cookies.iter().any(|c| c.starts_with("funnel_session=")),
        "no session: {cookies:?}"
    );

    // A cookie sealed with another secret, or for another state, is no flow of ours.
    let (_, forged) = FlowSeal::new("another secret of at least 32 bytes")
        .open(STATE.into(), "n".into(), "v".into(), "/boards/b".into())
        .unwrap();
    let cookie = format!("funnel_oidc_{STATE}={forged}");
    let (_, location, _) = get(&server, &path, Some(&cookie)).await;
    assert_eq!(location, "/?signInError=state");
    let (_, sealed) = FlowSeal::new(SECRET)
        .open(
            "bbbbbbbbbbbbbbbbbbbbbb".into(),
            "n".into(),
            "v".into(),
            "/b".into(),
        )
        .unwrap();
    let cookie = format!("funnel_oidc_{STATE}={sealed}");
    let (_, location, _) = get(&server, &path, Some(&cookie)).await;
    assert_eq!(location, "/?signInError=state", "a cookie of another state");

    // A state that could not name a cookie is refused before anything else.
    let (status, location, _) = get(&server, "/auth/oidc/callback?state=a;b", None).await;
    assert_eq!((status, location.as_str()), (303, "/?signInError=state"));
    server.stop().await;
}

#[tokio::test]
async fn callbacks_from_one_address_past_their_budget_are_told_to_wait() {
    let (server, _dir) = start().await;
    let path = format!("/auth/oidc/callback?code=c&state={STATE}");
    // The burst passes (each refused for its missing flow), then the callback does nothing (no
    // cookie read, no call to the provider). Bounded at twice the burst: the budget refills one
    // callback every two seconds, which a slow machine's loop may see once or twice.
    let burst = funnel_server::accounts::PROVIDER_CALLBACK_BURST as usize;
    let mut passed = 0;
    let mut slow = None;
    for _ in 0..2 * burst {
        let (status, location, cookies) = get(&server, &path, None).await;
        if location == "/?signInError=slow" {
            slow = Some((status, cookies));
            break;
        }
        assert_eq!(location, "/?signInError=state", "attempt {passed}");
        passed += 1;
    }
    let (status, cookies) = slow.expect("callbacks past the burst are told to wait");
    assert!(
        passed >= burst,
        "only {passed} callbacks passed before the wait"
    );
    assert_eq!(status, 303);
    assert!(cookies.is_empty(), "{cookies:?}");
    // Starting a sign-in only redirects, and is not counted.
    let (status, location, _) = get(&server, "/auth/oidc/start?next=/boards/b", None).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/boards/b?signInError=unavailable")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_refusal_of_the_provider_lands_on_the_page_asked_for_and_ends_the_flow() {
    let (server, _dir) = start().await;
    let seal = FlowSeal::new(SECRET);
    let (_, sealed) = seal
        .open(STATE.into(), "n".into(), "v".into(), "/boards/b1".into())
        .unwrap();
    let cookie = format!("funnel_oidc_{STATE}={sealed}");
    let path = format!(
        "/auth/oidc/callback?error=access_denied&error_description=End-User+aborted&state={STATE}"
    );
    let (status, location, cookies) = get(&server, &path, Some(&cookie)).await;
    assert_eq!(status, 303);
    assert_eq!(location, "/boards/b1?signInError=denied");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("funnel_oidc_{STATE}=;")) && c.contains("Max-Age=0")),
        "the flow cookie is cleared: {cookies:?}"
    );

    // A code with the provider down: it cannot be exchanged.
    let path = format!("/auth/oidc/callback?code=c&state={STATE}");
    let (_, location, cookies) = get(&server, &path, Some(&cookie)).await;
    assert_eq!(location, "/boards/b1?signInError=unavailable");
    assert!(!cookies.iter().any(|c| c.starts_with("funnel_session=")));
    server.stop().await;
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_says_so_on_the_page_asked_for() {
    let (server, _dir) = start().await;
    let (status, location, cookies) = get(
        &server,
        "/auth/oidc/start?next=%2Fboards%2Fb1%3Fv%3D1",
        None,
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location, "/boards/b1?v=1&signInError=unavailable");
    assert!(
        cookies.is_empty(),
        "no flow without a provider: {cookies:?}"
    );
    // Only a path of this server: another site is the home page; so is a path a Location header
    // cannot carry (raw non-ASCII, a space), without a panic.
    for next in [
        "%2F%2Fevil.test%2Fx",
        "https%3A%2F%2Fevil.test%2F",
        "%2F%5Cevil.test",
        "%2Fcaf%C3%A9",
        "%2Fa%20b",
    ] {
        let (status, location, _) =
            get(&server, &format!("/auth/oidc/start?next={next}"), None).await;
        assert_eq!(status, 303, "{next}");
        assert_eq!(location, "/?signInError=unavailable", "{next}");
    }
    server.stop().await;
}

#[tokio::test]
async fn off_the_routes_are_not_found_and_the_page_offers_passwords_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.auth_secret = Some(SECRET.into());
    })
    .await;
    let (_, _, methods) = call(server.addr, "GET", "/api/v1/auth/methods", &[], None).await;
    assert_eq!(methods, json!({"password": true, "oidc": null}));
    for path in ["/auth/oidc/start", "/auth/oidc/callback?state=x&code=y"] {
        let (status, _, _) = get(&server, path, None).await;
        assert_eq!(status, 404, "{path}");
    }
    server.stop().await;
}
