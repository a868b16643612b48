//! Any bytes a client sends as a binary frame: decoding never panics, gives the same verdict
//! twice, yields at most `MAX_MESSAGES_PER_FRAME` messages, and every refusal has a close code and a reason that fits in a close frame. An
//! awareness message that decodes holds only states a stock client can parse: `null` or a JSON
//! object (y-protocols' `JSON.parse` throws on anything else; the `awareness-*` seeds start
//! there).
#![no_main]

use bytes::Bytes;
use funnel_protocol::wire::{
    ClientMessage, MAX_CLOSE_REASON_BYTES, MAX_MESSAGES_PER_FRAME, close_reason,
    decode_client_frame,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    let first = decode_client_frame(&frame);
    // (Messages hold hash maps, so their Debug text is not comparable; the verdict is.)
    assert_eq!(first.is_ok(), decode_client_frame(&frame).is_ok());
    if let Ok(messages) = &first {
        assert!((1..=MAX_MESSAGES_PER_FRAME).contains(&messages.len()));
    }
    for message in first.iter().flatten() {
        let ClientMessage::Awareness(incoming) = message else {
            continue;
        };
        for entry in incoming.update.clients.values() {
            let json = entry.json.as_ref();
            assert!(
                json == "null"
                    || serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
                        .is_ok(),
                "relayed a state stock clients cannot parse: {json:?}"
            );
        }
        // What is relayed is this one message, a frame a stock client reads whole.
        let alone = decode_client_frame(&incoming.frame);
        assert!(
            alone.is_ok_and(|m| m.len() == 1),
            "an awareness frame holds one message"
        );
    }
    if let Err(e) = first {
        let _ = e.close_code();
        assert!(close_reason(&e.to_string()).len() <= MAX_CLOSE_REASON_BYTES);
    }
});
