//! What the TAP hands us with offloads on: a virtio-net header and a
//! frame, possibly a 64 KiB TCP super-frame. Segmenting, completing
//! checksums and coalescing must never panic, and every emitted segment
//! must fit the frame limit.
#![no_main]

use cloudy::overlay::offload::{complete_checksum, segment, Coalescer, Endian, VnetHdr, VNET_HDR_LEN};
use libfuzzer_sys::fuzz_target;

const MAX_FRAME: usize = 1406;

fuzz_target!(|data: &[u8]| {
    let Some(hdr) = VnetHdr::parse(data, Endian::Little) else { return };
    let mut frame = data[VNET_HDR_LEN..].to_vec();
    let mut segments: Vec<(Vec<u8>, _)> = Vec::new();
    let _ = segment(&hdr, &mut frame, MAX_FRAME, &mut |seg, partial| {
        assert!(seg.len() <= MAX_FRAME.max(data.len()), "segment of {} bytes", seg.len());
        segments.push((seg.to_vec(), partial));
    });
    let mut coalescer = Coalescer::new(Endian::Little);
    let mut out = |merged: &[u8]| assert!(merged.len() >= VNET_HDR_LEN);
    for (seg, partial) in &segments {
        coalescer.push(seg, *partial, &mut out);
        if let Some(p) = partial {
            let mut copy = seg.clone();
            let _ = complete_checksum(&mut copy, *p);
        }
    }
    coalescer.flush(&mut out);
});
