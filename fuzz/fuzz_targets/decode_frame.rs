//! Any bytes a client sends as a binary frame: decoding never panics, and a frame that decodes
//! is one whole message (a second decode of it agrees).
#![no_main]

use bytes::Bytes;
use funnel_protocol::wire::decode_client_frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    if let Ok(message) = decode_client_frame(&frame) {
        let again = decode_client_frame(&frame).expect("a frame that decoded decodes again");
        assert_eq!(format!("{message:?}"), format!("{again:?}"));
    } else if let Err(e) = decode_client_frame(&frame) {
        // Every refusal maps to a close code and a reason that fits a close frame.
        let _ = e.close_code();
        assert!(funnel_protocol::wire::close_reason(&e.to_string()).len() <= 123);
    }
});
