//! Fuzz the console protocol: arbitrary bytes through the frame decoder
//! (pushed in uneven pieces, as reads deliver them) and straight into the
//! postcard decoders of `Request` and `Response`. Nothing may panic, the
//! decoder's buffer must stay bounded, and every message that decodes
//! must survive an encode/decode round trip.
#![no_main]

use cloudy::console::proto::{
    decode_body, encode_frame, FrameDecoder, Request, Response, MAX_FRAME_BYTES,
};
use libfuzzer_sys::fuzz_target;

/// Re-encoding a decoded message never makes it longer (postcard writes
/// minimal varints), so it fits a frame, and it decodes to the same value.
macro_rules! round_trip {
    ($ty:ty, $body:expr) => {
        if let Ok(msg) = decode_body::<$ty>($body) {
            let frame = encode_frame(&msg).expect("a decoded message encodes");
            assert_eq!(decode_body::<$ty>(&frame[4..]).as_ref(), Ok(&msg));
        }
    };
}

fuzz_target!(|data: &[u8]| {
    round_trip!(Request, data);
    round_trip!(Response, data);

    // The first byte picks the piece size, so frames straddle pushes.
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    let mut decoder = FrameDecoder::new();
    let mut input = rest;
    // Each pass takes at least one byte or pops a frame; bounded by the input.
    for _ in 0..=2 * rest.len() + 1 {
        let piece = &input[..step.min(input.len())];
        let took = decoder.push(piece);
        input = &input[took..];
        assert!(decoder.buffered() <= MAX_FRAME_BYTES);
        match decoder.next_frame() {
            Ok(Some(body)) => {
                round_trip!(Request, &body);
                round_trip!(Response, &body);
            }
            Ok(None) if input.is_empty() => break,
            Ok(None) => assert!(took > 0, "decoder stalled with room {}", decoder.room()),
            Err(_) => {
                assert!(decoder.next_frame().is_err(), "errors are sticky");
                break;
            }
        }
    }
});
