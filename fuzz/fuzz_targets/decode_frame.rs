//! Any bytes a client sends as a binary frame: decoding never panics, gives the same verdict
//! twice, and every refusal has a close code and a reason that fits in a close frame.
#![no_main]

use bytes::Bytes;
use funnel_protocol::wire::{MAX_CLOSE_REASON_BYTES, close_reason, decode_client_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    let first = decode_client_frame(&frame);
    // (Messages hold hash maps, so their Debug text is not comparable; the verdict is.)
    assert_eq!(first.is_ok(), decode_client_frame(&frame).is_ok());
    if let Err(e) = first {
        let _ = e.close_code();
        assert!(close_reason(&e.to_string()).len() <= MAX_CLOSE_REASON_BYTES);
    }
});
