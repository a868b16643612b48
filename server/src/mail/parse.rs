//! A raw RFC 5322 message read into what a board takes from it, with `mail-parser`. Pure: no
//! I/O, no board.

use mail_parser::MessageParser;
use sha2::{Digest, Sha256};

/// The longest Message-ID kept, in bytes (RFC 5322 lines end at 998).
pub const MAX_MESSAGE_ID_BYTES: usize = 998;

/// How many of a reply's References are looked up (the newest ones: the end of the header).
pub const MAX_REFERENCES: usize = 50;

/// What a board takes from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMail {
    /// Without angle brackets. A message without one gets `<sha256 of the message>@funnel`, so
    /// that the same message sent twice is still taken once.
    pub message_id: String,
    /// The From address as written.
    pub from_address: String,
    /// The From display name; empty when none.
    pub from_name: String,
    /// Empty when none.
    pub subject: String,
    /// The first text part (an HTML-only message's HTML as text), trimmed.
    pub text: String,
    /// The Message-IDs a reply names: In-Reply-To first, then References newest first.
    pub replies_to: Vec<String>,
    /// Sent by a program, not a person (RFC 3834 `Auto-Submitted`, an auto-reply or bulk
    /// `Precedence`, a bounce from a mailer daemon): it may join a card, never make a deal.
    pub automatic: bool,
}

/// Why a message was refused: it is not one a board can take. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedMail {
    #[error("not an RFC 5322 message: no header could be read")]
    NoHeaders,
    #[error("the message has no From address: a board needs to know who wrote")]
    NoSender,
    #[error("the From address {0:?} is not an e-mail address")]
    BadSender(String),
    #[error("the Message-ID is longer than {MAX_MESSAGE_ID_BYTES} bytes")]
    LongMessageId,
}

impl ParsedMail {
    /// Reads `raw` (the message as received: headers, a blank line, the body).
    pub fn parse(raw: &[u8]) -> Result<ParsedMail, MalformedMail> {
        // mail-parser takes almost anything that has a colon on its first line; a message must
        // at least start with a header field.
        let first_line = raw.split(|b| *b == b'\n').next().unwrap_or_default();
        let starts_with_field = first_line
            .iter()
            .position(|b| *b == b':')
            .is_some_and(|colon| {
                colon > 0
                    && first_line[..colon]
                        .iter()
                        .all(|b| b.is_ascii_graphic() && *b != b':')
            });
        if !starts_with_field {
            return Err(MalformedMail::NoHeaders);
        }
        let message = MessageParser::default()
            .parse(raw)
            .ok_or(MalformedMail::NoHeaders)?;
        let sender = message
            .from()
            .and_then(|from| from.first())
            .ok_or(MalformedMail::NoSender)?;
        let from_address = sender
            .address()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .ok_or(MalformedMail::NoSender)?
            .to_owned();
        if !plausible_address(&from_address) {
            return Err(MalformedMail::BadSender(from_address));
        }
        let from_name = sender.name().map(str::trim).unwrap_or_default().to_owned();
        let message_id = match message.message_id().map(str::trim) {
            Some(id) if id.len() > MAX_MESSAGE_ID_BYTES => {
                return Err(MalformedMail::LongMessageId);
            }
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => {
                let digest = Sha256::digest(raw);
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("{hex}@funnel")
            }
        };
        let mut replies_to: Vec<String> = Vec::new();
        let mut add = |id: &str| {
            let id = id.trim().trim_start_matches('<').trim_end_matches('>');
            if !id.is_empty()
                && id.len() <= MAX_MESSAGE_ID_BYTES
                && id != message_id
                && !replies_to.iter().any(|known| known == id)
                && replies_to.len() < MAX_REFERENCES + 1
            {
                replies_to.push(id.to_owned());
            }
        };
        if let Some(ids) = message.in_reply_to().as_text_list() {
            ids.iter().for_each(|id| add(id));
        }
        if let Some(ids) = message.references().as_text_list() {
            ids.iter().rev().take(MAX_REFERENCES).for_each(|id| add(id));
        }
        let header = |name: &str| {
            message
                .header_raw(name)
                .map(|v| v.trim().to_ascii_lowercase())
        };
        let local = from_address
            .rsplit_once('@')
            .map_or("", |(local, _)| local)
            .to_ascii_lowercase();
        let automatic = header("Auto-Submitted").is_some_and(|v| !v.starts_with("no"))
            || header("Precedence")
                .is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply"))
            || header("X-Autoreply").is_some()
            || header("X-Autorespond").is_some()
            || matches!(local.as_str(), "mailer-daemon" | "postmaster");
        let text = message
            .body_text(0)
            .map(|text| text.trim().to_owned())
            .unwrap_or_default();
        Ok(ParsedMail {
            message_id,
            from_address,
            from_name,
            subject: message
                .subject()
                .map(str::trim)
                .unwrap_or_default()
                .to_owned(),
            text,
            replies_to,
            automatic,
        })
    }
}

/// `local@domain`, with nothing else around it (the board checks the card's address fully).
fn plausible_address(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
pub fn truncate_to(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_message_gives_sender_subject_text_and_id() {
        let raw = b"From: Ada Lovelace <ada@example.com>\r\nTo: b1@crm.example\r\n\
            Subject: Quote for 40 engines\r\nMessage-ID: <m1@example.com>\r\n\r\nHello,\r\nhow much?\r\n";
        let mail = ParsedMail::parse(raw).unwrap();
        assert_eq!(mail.message_id, "m1@example.com");
        assert_eq!(mail.from_address, "ada@example.com");
        assert_eq!(mail.from_name, "Ada Lovelace");
        assert_eq!(mail.subject, "Quote for 40 engines");
        assert_eq!(mail.text, "Hello,\r\nhow much?");
        assert!(mail.replies_to.is_empty());
    }

    #[test]
    fn a_reply_names_what_it_answers_newest_first() {
        let raw = b"From: ada@example.com\r\nMessage-ID: <m3@example.com>\r\n\
            In-Reply-To: <m2@example.com>\r\nReferences: <m1@example.com> <m2@example.com>\r\n\
            Subject: Re: quote\r\n\r\nYes.\r\n";
        let mail = ParsedMail::parse(raw).unwrap();
        assert_eq!(mail.replies_to, ["m2@example.com", "m1@example.com"]);
        assert_eq!(mail.from_name, "");
    }

    #[test]
    fn a_message_without_id_is_named_by_its_content() {
        let raw = b"From: ada@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
        let one = ParsedMail::parse(raw).unwrap();
        let again = ParsedMail::parse(raw).unwrap();
        assert_eq!(one.message_id, again.message_id);
        assert!(one.message_id.ends_with("@funnel"));
        let other =
            ParsedMail::parse(b"From: ada@example.com\r\nSubject: hi\r\n\r\nbody 2\r\n").unwrap();
        assert_ne!(one.message_id, other.message_id);
    }

    #[test]
    fn malformed_messages_say_why() {
        assert_eq!(
            ParsedMail::parse(b"just some text\r\nwith lines\r\n"),
            Err(MalformedMail::NoHeaders)
        );
        assert_eq!(ParsedMail::parse(b""), Err(MalformedMail::NoHeaders));
        assert_eq!(
            ParsedMail::parse(b"Subject: no sender\r\n\r\nbody\r\n"),
            Err(MalformedMail::NoSender)
        );
        assert!(matches!(
            ParsedMail::parse(b"From: not an address\r\n\r\nbody\r\n"),
            Err(MalformedMail::NoSender | MalformedMail::BadSender(_))
        ));
    }

    #[test]
    fn html_only_mail_becomes_text_and_truncation_keeps_characters_whole() {
        let raw = b"From: ada@example.com\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>there</b></p>\r\n";
        let mail = ParsedMail::parse(raw).unwrap();
        assert!(mail.text.contains("Hello"), "{}", mail.text);
        assert!(!mail.text.contains("<p>"), "{}", mail.text);
        assert_eq!(truncate_to("héllo", 2), "h");
        assert_eq!(truncate_to("héllo", 3), "hé");
        assert_eq!(truncate_to("abc", 10), "abc");
    }
}
