//! Secrets and signatures per the Standard Webhooks specification, made with its reference
//! crate (`standardwebhooks`): `webhook-signature` is `v1,` and the base64 HMAC-SHA256 of
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded part of a `whsec_`
//! secret; several signatures (old and new secret during a rotation) are separated by spaces.

use base64::Engine;

/// Random bytes in a secret: the specification asks for 24 to 64.
pub const SECRET_BYTES: usize = 32;

/// The prefix of every secret.
pub const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error("a stored webhook secret does not decode: {0}")]
    BadSecret(String),
    #[error("a webhook body is not UTF-8")]
    BadBody,
}

/// A new secret: `whsec_` and the base64 of [`SECRET_BYTES`] random bytes from the system.
pub fn new_secret() -> Result<String, SigningError> {
    let mut key = [0u8; SECRET_BYTES];
    getrandom::fill(&mut key).map_err(|e| SigningError::Random(e.to_string()))?;
    Ok(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

/// The `webhook-signature` header of a message signed with every one of `secrets`.
pub fn signature_header(
    secrets: &[&str],
    id: &str,
    timestamp_secs: i64,
    body: &str,
) -> Result<String, SigningError> {
    let mut signatures = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let webhook = standardwebhooks::Webhook::new(secret)
            .map_err(|e| SigningError::BadSecret(e.to_string()))?;
        signatures.push(
            webhook
                .sign(id, timestamp_secs, body.as_bytes())
                .map_err(|_| SigningError::BadBody)?,
        );
    }
    Ok(signatures.join(" "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

    use super::*;

    /// The specification's own example (its test vector).
    #[test]
    fn signs_the_specifications_example() {
        let header = signature_header(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_whsec_and_fresh() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert!(a.starts_with(SECRET_PREFIX), "{a}");
        assert_ne!(a, b);
        let key = base64::engine::general_purpose::STANDARD
            .decode(&a[SECRET_PREFIX.len()..])
            .unwrap();
        assert_eq!(key.len(), SECRET_BYTES);
    }

    #[test]
    fn two_secrets_give_two_signatures_that_verify() {
        let (old, new) = (new_secret().unwrap(), new_secret().unwrap());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let header = signature_header(&[&new, &old], "42", now, "{}").unwrap();
        assert_eq!(header.split(' ').count(), 2, "{header}");
        for secret in [&old, &new] {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("webhook-id", "42".parse().unwrap());
            headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
            headers.insert("webhook-signature", header.parse().unwrap());
            standardwebhooks::Webhook::new(secret)
                .unwrap()
                .verify(b"{}", &headers)
                .unwrap();
        }
    }
}
