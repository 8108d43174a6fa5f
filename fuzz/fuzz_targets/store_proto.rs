//! The store protocol's frames (`store::proto`) on arbitrary bytes:
//! - the input as a byte stream through a `FrameReader`, once in one read
//!   and once in reads of 1 to 7 bytes (the first byte chooses): both give
//!   the same frames and the same error;
//! - every frame, and the input itself as `type | body`, parsed as a
//!   request and as an answer. What parses re-emits to a frame that parses
//!   equal, byte for byte the same (but for an Error's text, cut at its
//!   first byte that is not UTF-8), and the header helpers
//!   (`emit_block_header`, `emit_block_data_header`, `emit_checked`) write
//!   the same bytes as `emit`;
//! - the first 16 bytes as a parameters block: parse -> to_bytes is the
//!   identity.
//!
//! Nothing may panic. Seeds (one frame per message type) are written by
//! `cargo test -p cloudy write_store_proto_seeds -- --ignored`.
#![no_main]

use cloudy::store::proto::{
    emit_block_data_header, emit_block_header, emit_checked, Answer, FrameReader, Params,
    ProtoError, Request, MAX_FRAME_BYTES, PARAMS_LEN,
};
use libfuzzer_sys::fuzz_target;

type Frames = Vec<Result<(u8, Vec<u8>), ProtoError>>;

/// The frames of `data` read `step` bytes at a time (or what fits).
fn frames(reader: &mut FrameReader, data: &[u8], step: usize) -> Frames {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        while let Some(f) = reader.next_frame() {
            match f {
                Ok((kind, body)) => out.push(Ok((kind, body.to_vec()))),
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
        if at == data.len() {
            return out;
        }
        let spare = reader.spare_mut();
        assert!(!spare.is_empty(), "the reader stalled");
        let n = spare.len().min(step).min(data.len() - at);
        spare[..n].copy_from_slice(&data[at..at + n]);
        reader.filled(n);
        at += n;
    }
}

fn check(kind: u8, body: &[u8], buf: &mut [u8]) {
    if let Ok(r) = Request::parse(kind, body) {
        let n = r.emit(buf).expect("a parsed request emits");
        assert_eq!(n, r.buffer_len());
        assert_eq!(buf[..4], ((n - 4) as u32).to_be_bytes());
        assert_eq!((buf[4], &buf[5..n]), (kind, body), "request emit differs");
        assert_eq!(Request::parse(buf[4], &buf[5..n]), Ok(r));
        if let Request::Block { segment, data } = r {
            let mut head = [0u8; 9];
            assert_eq!(emit_block_header(&mut head, segment, data.len()), Ok(9));
            assert_eq!(head, buf[..9]);
        }
    }
    if let Ok(a) = Answer::parse(kind, body) {
        let n = a.emit(buf).expect("a parsed answer emits");
        assert_eq!(n, a.buffer_len());
        assert_eq!(Answer::parse(buf[4], &buf[5..n]), Ok(a));
        if !matches!(a, Answer::Error { .. }) {
            assert_eq!((buf[4], &buf[5..n]), (kind, body), "answer emit differs");
        }
        match a {
            Answer::BlockData {
                segment,
                proof,
                data,
            } => {
                let mut head = vec![0u8; n];
                let h = emit_block_data_header(&mut head, segment, proof, data.len()).unwrap();
                assert_eq!(h + data.len(), n);
                assert_eq!(head[..h], buf[..h]);
            }
            Answer::Checked(c) => {
                let entries: Vec<_> = c.iter().collect();
                assert_eq!(entries.len(), c.len());
                let mut again = vec![0u8; n];
                assert_eq!(emit_checked(&mut again, &entries), Ok(n));
                assert_eq!(again[..], buf[..n]);
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(p) = data
        .get(..PARAMS_LEN)
        .and_then(|p| <&[u8; PARAMS_LEN]>::try_from(p).ok())
    {
        if let Ok(params) = Params::parse(p) {
            assert_eq!(&params.to_bytes(), p);
        }
    }
    let mut buf = vec![0u8; MAX_FRAME_BYTES];
    if let Some((&kind, body)) = data.split_first() {
        check(kind, body, &mut buf);
    }
    let whole = frames(&mut FrameReader::new(), data, usize::MAX);
    let step = usize::from(data.first().map_or(0, |b| b % 7)) + 1;
    let mut reader = FrameReader::new();
    assert_eq!(frames(&mut reader, data, step), whole, "reads of {step}");
    for (kind, body) in whole.iter().flatten() {
        check(*kind, body, &mut buf);
    }
});
