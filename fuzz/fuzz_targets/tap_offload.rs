//! What the TAP (or a raw socket with `PACKET_VNET_HDR`) hands us with
//! offloads on: a virtio-net header and a frame, possibly a 64 KiB TCP or
//! UDP (USO) super-frame. Clamping the MSS, segmenting, completing
//! checksums and coalescing must never panic; clamping is idempotent and
//! keeps the length; every emitted segment fits the frame limit.
#![no_main]

use cloudy::overlay::offload::{
    clamp_mss, complete_checksum, segment, Coalescer, Endian, VnetHdr, VNET_HDR_LEN,
};
use libfuzzer_sys::fuzz_target;

const MAX_FRAME: usize = 1406;

fuzz_target!(|data: &[u8]| {
    let Some(hdr) = VnetHdr::parse(data, Endian::Little) else { return };
    let mut frame = data[VNET_HDR_LEN..].to_vec();
    let partial = hdr.partial().is_some();
    if clamp_mss(&mut frame, partial, 1392) {
        assert_eq!(frame.len(), data.len() - VNET_HDR_LEN);
        assert!(!clamp_mss(&mut frame, partial, 1392), "clamping twice changed it again");
    }
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
