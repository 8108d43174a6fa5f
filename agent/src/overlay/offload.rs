//! Kernel offloads at the overlay's edges, done in software where the
//! tunnel needs it. Pure: bytes in, bytes out, no IO.
//!
//! A TAP opened with `IFF_VNET_HDR` and `TUNSETOFFLOAD(CSUM|TSO4|TSO6)`,
//! or an AF_PACKET socket with `PACKET_VNET_HDR` (raw mode: it sees a
//! bridged LAN host's TSO/USO and the NIC's GRO output as they are),
//! hands TCP over as super-frames of up to 64 KiB, each behind a
//! `struct virtio_net_hdr` ([`VnetHdr`], virtio 1.x §5.1.6, "legacy"
//! 10-byte layout), and with the TCP/UDP checksum left unfinished
//! (`CHECKSUM_PARTIAL`). The tunnel keeps one MTU-sized Ethernet frame per
//! datagram (a lost datagram costs one segment, not 64 KiB), so:
//!
//! - sender: [`segment`] cuts a super-frame into frames as the kernel's
//!   `tcp_gso_segment` would (IPv4 total length, id + i, header checksum;
//!   IPv6 payload length; TCP seq + offset, FIN/PSH on the last segment
//!   only, CWR on the first only), and UDP super-frames (USO) into
//!   datagrams as `__udp_gso_segment`. The checksum stays *partial*: the
//!   field holds the folded pseudo-header sum of each segment's length and
//!   a [`PartialCsum`] says where, so the sender never sums payload bytes;
//! - sender: [`clamp_mss`] lowers the MSS option of SYNs entering the
//!   overlay to its MTU, so a bridged 1500-byte LAN's TCP segments fit
//!   one datagram (no outer fragmentation);
//! - receiver: a [`Coalescer`] merges consecutive segments of one TCP flow
//!   back into one super-frame with a GSO [`VnetHdr`] for its TAP (as the
//!   kernel's GRO, deliberately stricter); a receiver whose device takes no
//!   partial checksums finishes them with [`complete_checksum`].
//!
//! Trust: a partial checksum is only ever accepted from an authenticated
//! peer, and the receiving kernel treats `NEEDS_CSUM` frames as locally
//! generated (finished by the NIC or `skb_checksum_help` if forwarded).
//!
//! Byte order of the virtio header: the legacy header uses the host's
//! native order unless `TUNSETVNETLE(1)` switched the TAP to little-endian
//! (always possible since Linux 3.19 — `TUNSETVNETBE` is the one behind
//! `CONFIG_TUN_VNET_CROSS_LE`). The device says which ([`Endian`]); every
//! parse/emit takes it, so big-endian mips works either way.
//!
//! Headers are read and written only through [`headers`]' views
//! (smoltcp's wire idiom); [`headers::L4Frame::parse`] checks a frame's
//! header stack once, and the per-segment views reuse its offsets.
//!
//! Invariants: no function here panics on any input (every offset is
//! checked before use; fuzz-friendly); work is linear in the frame length;
//! memory is the caller's buffers plus one fixed [`Coalescer`] buffer.

use core::fmt;

pub mod headers;

pub use headers::{fold, ones_sum, Endian, PartialCsum, VnetHdr, F_NEEDS_CSUM, VNET_HDR_LEN};
use headers::{
    ipv4_field, ipv6_field, l3_end, pseudo_partial, tcp_field, HeaderError, Ipv4Packet, Ipv6Packet,
    L4Frame, TcpPacket, UdpPacket, ETH_LEN, IPV4_DF, IPV4_LEN, IPV6_LEN, PROTO_TCP, PROTO_UDP,
    TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH, TCP_SYN, UDP_LEN,
};

/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified.
pub const F_DATA_VALID: u8 = 2;
pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
/// UFO/USO: never asked for (no `TUN_F_UFO`/`TUN_F_USO*`), refused.
pub const GSO_UDP: u8 = 3;
pub const GSO_TCPV6: u8 = 4;
/// USO (`VIRTIO_NET_HDR_GSO_UDP_L4`): UDP datagrams of `gso_size` payload
/// each, as a sender's `UDP_SEGMENT` hands them over (a raw socket sees them).
pub const GSO_UDP_L4: u8 = 5;
/// Flag on a TCP GSO type: the segments carry ECN (CWR on the first only).
pub const GSO_ECN: u8 = 0x80;

/// Largest super-frame the [`Coalescer`] builds: Ethernet header plus the
/// largest IPv4 packet (its 16-bit total length).
pub const MAX_SUPER_FRAME: usize = 14 + 65535;
/// Size of the [`Coalescer`]'s one buffer (virtio header + super-frame).
pub const COALESCE_BUF_LEN: usize = VNET_HDR_LEN + MAX_SUPER_FRAME;
/// Longest header block (Ethernet, VLAN tags, IP, IPv6 options, TCP) that
/// [`segment`] copies per segment; longer ones are refused as malformed.
const MAX_HEADER: usize = 256;

/// Why [`segment`] refused a frame (the caller counts and drops it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffloadError {
    /// A GSO type other than TCPv4/TCPv6 (UFO/USO, unknown).
    UnsupportedGso(u8),
    /// Headers that do not parse, do not match the GSO type, or a
    /// zero/impossible segment size.
    Malformed,
    /// `NEEDS_CSUM` offsets outside the frame.
    BadChecksumOffsets,
}

impl fmt::Display for OffloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OffloadError::UnsupportedGso(t) => write!(f, "unsupported GSO type {t:#x}"),
            OffloadError::Malformed => write!(f, "malformed GSO frame"),
            OffloadError::BadChecksumOffsets => write!(f, "checksum offsets outside the frame"),
        }
    }
}

impl From<HeaderError> for OffloadError {
    fn from(_: HeaderError) -> Self {
        OffloadError::Malformed
    }
}

// ---------------------------------------------------------------------
// Views at checked offsets

/// The IPv4 header at `ip` in `frame` (unchecked: writes beyond are dropped).
fn ipv4_at(frame: &mut [u8], ip: usize) -> Ipv4Packet<&mut [u8]> {
    Ipv4Packet::new_unchecked(frame.get_mut(ip..).unwrap_or_default())
}

fn ipv6_at(frame: &mut [u8], ip: usize) -> Ipv6Packet<&mut [u8]> {
    Ipv6Packet::new_unchecked(frame.get_mut(ip..).unwrap_or_default())
}

fn tcp_at(frame: &mut [u8], l4: usize) -> TcpPacket<&mut [u8]> {
    TcpPacket::new_unchecked(frame.get_mut(l4..).unwrap_or_default())
}

fn tcp_ref(frame: &[u8], l4: usize) -> TcpPacket<&[u8]> {
    TcpPacket::new_unchecked(frame.get(l4..).unwrap_or_default())
}

/// The IP lengths of a packet whose IP header starts at `t.ip` and which
/// ends at `end`; for IPv4 also identification `id` (if any) and the
/// header checksum. Lengths are at most the super-frame's: they fit u16.
fn set_ip_lengths(frame: &mut [u8], t: &L4Frame, end: usize, id: Option<u16>) {
    if t.v6 {
        ipv6_at(frame, t.ip).set_payload_len((end - t.ip - IPV6_LEN) as u16);
    } else {
        let mut ip = ipv4_at(frame, t.ip);
        ip.set_total_len((end - t.ip) as u16);
        if let Some(id) = id {
            ip.set_ident(id);
        }
        ip.fill_checksum();
    }
}

/// Finishes a partial checksum in software (for a device that cannot take
/// `NEEDS_CSUM`, or a raw socket): sums from `p.start` to the end of the
/// IP packet (or of the frame, if it does not parse as IP), stores the
/// complement at `p.start + p.offset` (0 is sent as 0xffff, as the kernel's
/// `skb_checksum_help`). Returns `false`, leaving `frame` alone, when the
/// offsets fall outside it.
pub fn complete_checksum(frame: &mut [u8], p: PartialCsum) -> bool {
    let start = usize::from(p.start);
    let field = start + usize::from(p.offset);
    let end = l3_end(frame).unwrap_or(frame.len());
    if field + 2 > end {
        return false;
    }
    let Some(span) = frame.get(start..end) else {
        return false;
    };
    let c = !fold(ones_sum(span));
    let c = if c == 0 { 0xffff } else { c };
    match frame.get_mut(field..field + 2) {
        Some(slot) => {
            slot.copy_from_slice(&c.to_be_bytes());
            true
        }
        None => false,
    }
}

// ---------------------------------------------------------------------
// Segmentation (software TSO)

/// One segment [`cut`] is writing.
struct Piece {
    index: usize,
    count: usize,
    /// Offset of its payload in the super-frame's payload.
    offset: usize,
    /// Its payload bytes.
    len: usize,
    /// Unfolded sum of the pseudo-header addresses.
    addrs: u32,
}

/// What both segmenters share: cuts the payload after the headers
/// (`..t.hdr`, at most [`MAX_HEADER`]) into pieces of `mss` bytes; writes
/// the headers before each piece (copied, IP lengths and IPv4 id by
/// [`set_ip_lengths`], the L4 fields by `fix_l4`, given the L4 header)
/// and emits it with its checksum partial. Returns how many.
fn cut(
    frame: &mut [u8],
    t: &L4Frame,
    mss: usize,
    emit: &mut dyn FnMut(&[u8], Option<PartialCsum>),
    fix_l4: &mut dyn FnMut(&mut [u8], &Piece),
) -> Result<usize, OffloadError> {
    let h = t.hdr;
    if h > MAX_HEADER || mss == 0 {
        return Err(OffloadError::Malformed);
    }
    let payload = t.end - h;
    let count = payload.div_ceil(mss).max(1);
    let mut template = [0u8; MAX_HEADER];
    let (Some(head), Some(tmpl)) = (frame.get(..h), template.get_mut(..h)) else {
        return Err(OffloadError::Malformed);
    };
    tmpl.copy_from_slice(head);
    let addrs = t.addr_sum(&template);
    let id = Ipv4Packet::new_unchecked(template.get(t.ip..).unwrap_or_default()).ident();
    let partial = t.partial();
    for index in 0..count {
        let offset = index * mss;
        let len = mss.min(payload - offset);
        // Headers at [offset, offset + h), payload already at
        // [offset + h, offset + h + len): `offset + h + len ≤ t.end ≤ frame.len()`.
        let (Some(seg), Some(tmpl)) = (frame.get_mut(offset..offset + h + len), template.get(..h))
        else {
            return Err(OffloadError::Malformed);
        };
        let (head, _) = seg.split_at_mut(h);
        head.copy_from_slice(tmpl);
        set_ip_lengths(seg, t, h + len, Some(id.wrapping_add(index as u16)));
        let piece = Piece {
            index,
            count,
            offset,
            len,
            addrs,
        };
        fix_l4(seg.get_mut(t.l4..).unwrap_or_default(), &piece);
        emit(seg, Some(partial));
    }
    Ok(count)
}

/// Cuts one frame read from an offloading TAP into wire frames and hands
/// each to `emit` with its partial checksum, if any. Returns how many
/// frames were emitted.
///
/// - `GSO_NONE`: the frame as it is, with its [`PartialCsum`] when
///   `NEEDS_CSUM` (offsets checked against the frame).
/// - `GSO_TCPV4`/`GSO_TCPV6` (± `GSO_ECN`): segments of at most
///   `hdr.gso_size` payload bytes and `max_frame_len` bytes in all; each
///   with the TCP checksum partial (`PartialCsum { start: tcp, offset: 16 }`).
///   The headers are parsed here (`hdr_len` is not trusted); up to two
///   VLAN tags, IPv4 options and IPv6 hop-by-hop/destination options are
///   carried over.
/// - anything else: an error, nothing emitted.
///
/// `frame` is scratch: segment `i`'s headers are written just before its
/// payload, over payload already emitted, so nothing is copied but the
/// headers. Its bytes are unspecified afterwards.
pub fn segment(
    hdr: &VnetHdr,
    frame: &mut [u8],
    max_frame_len: usize,
    emit: &mut dyn FnMut(&[u8], Option<PartialCsum>),
) -> Result<usize, OffloadError> {
    let want_v6 = match hdr.gso_type & !GSO_ECN {
        GSO_NONE => {
            let partial = hdr.partial();
            if let Some(p) = partial {
                let field = usize::from(p.start) + usize::from(p.offset);
                if field + 2 > frame.len() {
                    return Err(OffloadError::BadChecksumOffsets);
                }
            }
            emit(frame, partial);
            return Ok(1);
        }
        GSO_TCPV4 => false,
        GSO_TCPV6 => true,
        GSO_UDP_L4 => return segment_udp(hdr, frame, emit),
        other => return Err(OffloadError::UnsupportedGso(other)),
    };
    let t = L4Frame::parse_tcp(frame, true)?;
    let h = t.hdr;
    if t.v6 != want_v6 || h > MAX_HEADER || hdr.gso_size == 0 {
        return Err(OffloadError::Malformed);
    }
    let mss = usize::from(hdr.gso_size).min(max_frame_len.saturating_sub(h));
    if mss == 0 {
        return Err(OffloadError::Malformed);
    }
    let first = tcp_ref(frame, t.l4);
    let (seq, flags) = (first.seq_number(), first.flags());
    cut(frame, &t, mss, emit, &mut |l4, piece| {
        let mut tcp = TcpPacket::new_unchecked(l4);
        // Sequence numbers wrap modulo 2^32 (RFC 9293 §3.4).
        tcp.set_seq_number(seq.wrapping_add(piece.offset as u32));
        let mut f = flags;
        if piece.index + 1 < piece.count {
            f &= !(TCP_FIN | TCP_PSH);
        }
        if piece.index > 0 {
            f &= !TCP_CWR;
        }
        tcp.set_flags(f);
        tcp.set_checksum(pseudo_partial(piece.addrs, PROTO_TCP, h - t.l4 + piece.len));
    })
}

/// [`segment`] for `GSO_UDP_L4`: independent datagrams of `gso_size`
/// payload bytes (the last may be shorter), each with its own UDP header
/// (length, partial checksum) and IP header, as the kernel's
/// `__udp_gso_segment`. Payloads are never cut smaller than `gso_size`:
/// a UDP datagram's boundaries are the application's (a segment longer
/// than the tunnel's MTU crosses it in fragmented datagrams).
fn segment_udp(
    hdr: &VnetHdr,
    frame: &mut [u8],
    emit: &mut dyn FnMut(&[u8], Option<PartialCsum>),
) -> Result<usize, OffloadError> {
    let t = L4Frame::parse(frame, true)?;
    if t.proto != PROTO_UDP || !t.plain {
        return Err(OffloadError::Malformed);
    }
    // `cut` refuses a zero size or oversized headers.
    cut(
        frame,
        &t,
        usize::from(hdr.gso_size),
        emit,
        &mut |l4, piece| {
            let mut udp = UdpPacket::new_unchecked(l4);
            // Every length here ≤ the original's: fits u16.
            udp.set_length((UDP_LEN + piece.len) as u16);
            udp.set_checksum(pseudo_partial(piece.addrs, PROTO_UDP, UDP_LEN + piece.len));
        },
    )
}

// ---------------------------------------------------------------------
// TCP MSS clamping

/// IPv4 and TCP headers without options: the MSS a 1-byte-larger IP
/// packet would need (RFC 9293 §3.7.1: MSS = MTU − fixed IP and TCP headers).
const IPV4_TCP_FIXED: u16 = 40;
/// IPv6 and TCP headers without options or extension headers.
const IPV6_TCP_FIXED: u16 = 60;

/// Lowers the MSS option of a TCP SYN (or SYN-ACK) in `frame` so that the
/// peer's segments fit IP packets of `mtu` bytes: at most `mtu − 40`
/// (IPv4) or `mtu − 60` (IPv6), as `iptables -j TCPMSS
/// --clamp-mss-to-pmtu` does. Bridged hosts then send segments the
/// tunnel carries whole, without fragmenting the outer datagrams.
///
/// `partial`: the TCP checksum is unfinished (`NEEDS_CSUM`, it covers
/// only the pseudo-header, which the option does not change); otherwise
/// the checksum is updated incrementally (RFC 1624, eqn. 3). Returns
/// whether the frame was changed. Anything that is not a SYN with an MSS
/// option above the limit (fragments, other protocols, malformed
/// options) is left alone.
pub fn clamp_mss(frame: &mut [u8], partial: bool, mtu: u16) -> bool {
    let Ok(t) = L4Frame::parse_tcp(frame, true) else {
        return false;
    };
    let Some(seg) = frame.get_mut(t.l4..t.hdr) else {
        return false;
    };
    let mut tcp = TcpPacket::new_unchecked(seg);
    if tcp.flags() & TCP_SYN == 0 {
        return false;
    }
    let Ok(Some(at)) = headers::mss_option(tcp.options()) else {
        return false;
    };
    let at = tcp_field::OPTIONS + at;
    let fixed = if t.v6 { IPV6_TCP_FIXED } else { IPV4_TCP_FIXED };
    let limit = mtu.saturating_sub(fixed);
    let mss = match tcp
        .options()
        .get(at - tcp_field::OPTIONS..at - tcp_field::OPTIONS + 2)
    {
        Some(&[h, l]) => u16::from_be_bytes([h, l]),
        _ => return false,
    };
    if mss <= limit {
        return false;
    }
    tcp.replace16(at, limit, partial);
    true
}

// ---------------------------------------------------------------------
// Coalescing (software GRO)

/// The super-frame being built.
#[derive(Clone, Copy, Debug)]
struct Pending {
    t: L4Frame,
    /// Payload bytes of the first segment: every segment but the last has it.
    mss: usize,
    next_seq: u32,
    segments: u16,
}

/// Counters of a [`Coalescer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoalesceStats {
    /// Segments merged into a super-frame (beyond its first).
    pub merged: u64,
    /// Super-frames of two segments or more written out.
    pub super_frames: u64,
    /// Frames refused: longer than the buffer, or invalid partial checksum offsets.
    pub dropped: u64,
}

/// Merges consecutive TCP segments of one flow into one super-frame for
/// an offloading TAP (receive-side GRO), one flow at a time, in a fixed
/// [`COALESCE_BUF_LEN`]-byte buffer.
///
/// A segment joins the pending super-frame only when all hold (else the
/// pending one is written out first; ordering is kept):
/// - untagged IPv4 without options, DF set, not a fragment — or IPv6
///   without extension headers; TCP, frame ends at the IP packet's end;
/// - its checksum is partial at the TCP checksum field (from the sender's
///   [`segment`]; frames with finished checksums are passed through, so
///   the kernel still verifies them);
/// - flags exactly ACK or ACK|PSH; PSH, or a segment shorter than the
///   first, ends the super-frame;
/// - same Ethernet header, IP header (but id/length/checksum), TCP ports,
///   ack, window, urgent pointer and identical options bytes;
/// - its seq is the next expected one, its payload ≤ the first's, and
///   the merged IP packet stays ≤ 65535 bytes.
///
/// Output ([`Coalescer::push`], [`Coalescer::flush`]): virtio header +
/// frame, ready for the TAP. Call `flush` at the end of every receive
/// batch: nothing waits longer than that.
pub struct Coalescer {
    /// Virtio header room, then the pending frame.
    buf: Box<[u8]>,
    /// Length of the pending frame (0: none).
    len: usize,
    pending: Option<Pending>,
    endian: Endian,
    stats: CoalesceStats,
}

impl Coalescer {
    pub fn new(endian: Endian) -> Coalescer {
        Coalescer {
            buf: vec![0u8; COALESCE_BUF_LEN].into_boxed_slice(),
            len: 0,
            pending: None,
            endian,
            stats: CoalesceStats::default(),
        }
    }

    pub fn stats(&self) -> CoalesceStats {
        self.stats
    }

    /// Whether a super-frame is waiting for [`Coalescer::flush`].
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Adds one decrypted frame. `out` receives virtio header + frame for
    /// everything ready (possibly nothing, possibly two writes).
    pub fn push(&mut self, frame: &[u8], partial: Option<PartialCsum>, out: &mut dyn FnMut(&[u8])) {
        let Some(t) = coalescable(frame, partial) else {
            self.flush(out);
            self.pass(frame, partial, out);
            return;
        };
        let payload = t.end - t.hdr;
        let tcp = tcp_ref(frame, t.l4);
        let (seq, flags) = (tcp.seq_number(), tcp.flags());
        if let Some(p) = self.pending {
            if self.joins(&p, &t, frame, seq, payload) {
                let at = VNET_HDR_LEN + self.len;
                if let (Some(dst), Some(src)) =
                    (self.buf.get_mut(at..at + payload), frame.get(t.hdr..t.end))
                {
                    dst.copy_from_slice(src);
                    self.len += payload;
                    self.stats.merged += 1;
                    let last = flags & TCP_PSH != 0 || payload < p.mss;
                    if flags & TCP_PSH != 0 {
                        let pending = self.buf.get_mut(VNET_HDR_LEN..).unwrap_or_default();
                        let mut first = tcp_at(pending, p.t.l4);
                        first.set_flags(first.flags() | TCP_PSH);
                    }
                    self.pending = Some(Pending {
                        next_seq: seq.wrapping_add(payload as u32),
                        segments: p.segments.saturating_add(1),
                        ..p
                    });
                    if last {
                        self.flush(out);
                    }
                    return;
                }
            }
            self.flush(out);
        }
        if flags & TCP_PSH != 0 {
            // Would end at once: no point copying it twice.
            self.pass(frame, partial, out);
            return;
        }
        let Some(dst) = self.buf.get_mut(VNET_HDR_LEN..VNET_HDR_LEN + frame.len()) else {
            self.pass(frame, partial, out);
            return;
        };
        dst.copy_from_slice(frame);
        self.len = frame.len();
        self.pending = Some(Pending {
            t,
            mss: payload,
            next_seq: seq.wrapping_add(payload as u32),
            segments: 1,
        });
    }

    fn joins(&self, p: &Pending, t: &L4Frame, frame: &[u8], seq: u32, payload: usize) -> bool {
        if t.v6 != p.t.v6 || t.hdr != p.t.hdr || seq != p.next_seq || payload > p.mss {
            return false;
        }
        if self.len + payload > MAX_SUPER_FRAME {
            return false;
        }
        let Some(first) = self.buf.get(VNET_HDR_LEN..VNET_HDR_LEN + t.hdr) else {
            return false;
        };
        let Some(this) = frame.get(..t.hdr) else {
            return false;
        };
        let (ip, tcp, hdr) = (t.ip, t.l4, t.hdr);
        // Pending flags are exactly ACK (PSH ends a super-frame).
        let same = |a: usize, b: usize| first.get(a..b) == this.get(a..b);
        let ip_same = if t.v6 {
            // version/class/flow, next header, hop limit, addresses.
            same(ip, ip + ipv6_field::LENGTH) && same(ip + ipv6_field::NXT_HDR, ip + IPV6_LEN)
        } else {
            // version/ihl, tos; flags/fragment, ttl, protocol; addresses.
            same(ip, ip + ipv4_field::LENGTH)
                && same(ip + ipv4_field::FLG_OFF, ip + ipv4_field::CHECKSUM)
                && same(ip + ipv4_field::ADDRS.start, ip + ipv4_field::ADDRS.end)
        };
        same(0, ETH_LEN)
            && ip_same
            && same(tcp + tcp_field::PORTS.start, tcp + tcp_field::PORTS.end)
            && same(tcp + tcp_field::ACK, tcp + tcp_field::FLAGS)
            && same(tcp + tcp_field::WINDOW, tcp + tcp_field::CHECKSUM)
            && same(tcp + tcp_field::URGENT, hdr)
    }

    /// Writes out the pending super-frame, if any.
    pub fn flush(&mut self, out: &mut dyn FnMut(&[u8])) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let len = self.len;
        self.len = 0;
        let Some(frame) = self.buf.get_mut(VNET_HDR_LEN..VNET_HDR_LEN + len) else {
            return;
        };
        let t = p.t;
        set_ip_lengths(frame, &t, len, None);
        let addrs = t.addr_sum(frame);
        tcp_at(frame, t.l4).set_checksum(pseudo_partial(addrs, PROTO_TCP, len - t.l4));
        let mut vh = VnetHdr::for_frame(Some(t.partial()));
        if p.segments > 1 {
            vh.gso_type = if t.v6 { GSO_TCPV6 } else { GSO_TCPV4 };
            // mss < 64 KiB, hdr ≤ 14 + 40 + 60: both fit u16.
            vh.gso_size = p.mss as u16;
            vh.hdr_len = t.hdr as u16;
            self.stats.super_frames += 1;
        }
        self.write_header(&vh, len, out);
    }

    /// Emits the virtio header before the `len` frame bytes in `buf`.
    fn write_header(&mut self, vh: &VnetHdr, len: usize, out: &mut dyn FnMut(&[u8])) {
        let endian = self.endian;
        vh.emit(&mut headers::VnetPacket::new_unchecked(
            &mut self.buf[..],
            endian,
        ));
        if let Some(b) = self.buf.get(..VNET_HDR_LEN + len) {
            out(b);
        }
    }

    /// A frame that is not merged: written behind its own virtio header.
    fn pass(&mut self, frame: &[u8], partial: Option<PartialCsum>, out: &mut dyn FnMut(&[u8])) {
        if let Some(p) = partial {
            if usize::from(p.start) + usize::from(p.offset) + 2 > frame.len() {
                self.stats.dropped += 1;
                return;
            }
        }
        let Some(dst) = self.buf.get_mut(VNET_HDR_LEN..VNET_HDR_LEN + frame.len()) else {
            self.stats.dropped += 1;
            return;
        };
        dst.copy_from_slice(frame);
        self.write_header(&VnetHdr::for_frame(partial), frame.len(), out);
    }
}

/// The frame's offsets if it may join a super-frame (see [`Coalescer`]).
fn coalescable(frame: &[u8], partial: Option<PartialCsum>) -> Option<L4Frame> {
    let p = partial?;
    let t = L4Frame::parse_tcp(frame, false).ok()?;
    if p != t.partial() || t.end != frame.len() {
        return None;
    }
    if t.hdr >= t.end {
        return None; // no payload
    }
    if t.v6 {
        if t.l4 != t.ip + IPV6_LEN {
            return None;
        }
    } else {
        let ip = Ipv4Packet::new_unchecked(frame.get(t.ip..)?);
        if t.l4 != t.ip + IPV4_LEN || ip.flags_frag() != IPV4_DF {
            return None;
        }
    }
    let flags = tcp_ref(frame, t.l4).flags();
    if flags != TCP_ACK && flags != TCP_ACK | TCP_PSH {
        return None;
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use headers::{TCP_CSUM, UDP_CSUM};

    // ---- the old hand-offset helpers, for the fixtures below ----

    fn be16(b: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
    }

    fn be32(b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at + 4)?;
        Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn put16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    fn parse_tcp(frame: &[u8], vlan: bool) -> Option<L4Frame> {
        L4Frame::parse_tcp(frame, vlan).ok()
    }

    fn parse_l4(frame: &[u8], vlan: bool, proto: u8) -> Option<L4Frame> {
        L4Frame::parse(frame, vlan)
            .ok()
            .filter(|t| t.proto == proto)
    }

    fn addr_sum(frame: &[u8], t: &L4Frame) -> Option<u32> {
        Some(t.addr_sum(frame))
    }

    fn pseudo_partial(addrs: u32, l4_len: usize) -> u16 {
        headers::pseudo_partial(addrs, PROTO_TCP, l4_len)
    }

    fn pseudo_partial_for(addrs: u32, proto: u8, l4_len: usize) -> u16 {
        headers::pseudo_partial(addrs, proto, l4_len)
    }

    fn ipv4_header_checksum(frame: &mut [u8], ip: usize) {
        ipv4_at(frame, ip).fill_checksum();
    }

    trait ReadOpt {
        fn read_opt(b: &[u8], e: Endian) -> Option<VnetHdr>;
    }

    impl ReadOpt for VnetHdr {
        fn read_opt(b: &[u8], e: Endian) -> Option<VnetHdr> {
            VnetHdr::read(b, e).ok()
        }
    }

    // ---- an independent reference: 16-bit word sums, the RFC 1071 way ----

    fn ref_sum16(b: &[u8]) -> u64 {
        let mut s = 0u64;
        let mut i = 0;
        while i + 1 < b.len() {
            s += u64::from(b[i]) << 8 | u64::from(b[i + 1]);
            i += 2;
        }
        if i < b.len() {
            s += u64::from(b[i]) << 8;
        }
        s
    }

    fn ref_fold(mut s: u64) -> u16 {
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// Verifies IPv4 header and TCP checksums of an untagged frame.
    fn verify_full(frame: &[u8]) {
        let v6 = frame[12..14] == [0x86, 0xdd];
        let (tcp, end, pseudo) = if v6 {
            let plen = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
            let end = 54 + plen;
            let mut next = frame[20];
            let mut at = 54;
            while next == 0 || next == 60 {
                next = frame[at];
                at += (usize::from(frame[at + 1]) + 1) * 8;
            }
            let l4 = (end - at) as u64;
            (at, end, ref_sum16(&frame[22..54]) + 6 + l4)
        } else {
            let ihl = usize::from(frame[14] & 15) * 4;
            assert_eq!(
                ref_fold(ref_sum16(&frame[14..14 + ihl])),
                0xffff,
                "IPv4 header checksum"
            );
            let end = 14 + usize::from(u16::from_be_bytes([frame[16], frame[17]]));
            let l4 = (end - 14 - ihl) as u64;
            (14 + ihl, end, ref_sum16(&frame[26..34]) + 6 + l4)
        };
        assert_eq!(end, frame.len());
        assert_eq!(
            ref_fold(pseudo + ref_sum16(&frame[tcp..end])),
            0xffff,
            "TCP checksum"
        );
    }

    // ---- fixtures ----

    const MAC: [u8; 12] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    /// TCP options: NOP NOP timestamp(10).
    const TS_OPT: [u8; 12] = [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78];

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn tcp_header(seq: u32, flags: u8) -> Vec<u8> {
        let mut t = vec![0x9c, 0x40, 0x14, 0x51]; // 40000 → 5201
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&0x0102_0304u32.to_be_bytes()); // ack
        t.push(((20 + TS_OPT.len()) / 4) as u8 * 16);
        t.push(flags);
        t.extend_from_slice(&[0x01, 0xf5, 0, 0, 0, 0]); // window, csum, urg
        t.extend_from_slice(&TS_OPT);
        t
    }

    /// Ethernet + IPv4 (DF, ihl 5 + `opts` words) + TCP; checksum fields
    /// left zero.
    fn frame4(opts: usize, seq: u32, flags: u8, data: &[u8]) -> Vec<u8> {
        let mut f = MAC.to_vec();
        f.extend_from_slice(&[0x08, 0x00]);
        let ihl = 5 + opts;
        let tcp = tcp_header(seq, flags);
        let total = (ihl * 4 + tcp.len() + data.len()) as u16;
        f.push(0x40 | ihl as u8);
        f.push(0);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 6, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        for _ in 0..opts {
            f.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
        }
        f.extend_from_slice(&tcp);
        f.extend_from_slice(data);
        f
    }

    fn frame6(seq: u32, flags: u8, data: &[u8]) -> Vec<u8> {
        let mut f = MAC.to_vec();
        f.extend_from_slice(&[0x86, 0xdd]);
        let tcp = tcp_header(seq, flags);
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&((tcp.len() + data.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[6, 64]);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f.extend_from_slice(&tcp);
        f.extend_from_slice(data);
        f
    }

    /// A GSO header as the kernel writes it (hdr_len = its linear length).
    fn gso(kind: u8, mss: u16, tcp_off: u16) -> VnetHdr {
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: kind,
            hdr_len: 128,
            gso_size: mss,
            csum_start: tcp_off,
            csum_offset: 16,
        }
    }

    type Segments = Vec<(Vec<u8>, Option<PartialCsum>)>;

    fn collect(hdr: &VnetHdr, frame: &[u8], max: usize) -> (Result<usize, OffloadError>, Segments) {
        let mut f = frame.to_vec();
        let mut got = Vec::new();
        let r = segment(hdr, &mut f, max, &mut |s, p| got.push((s.to_vec(), p)));
        (r, got)
    }

    // ---- VnetHdr ----

    /// flags NEEDS_CSUM, TCPV4|ECN, hdr_len 66, gso_size 1448, start 34, offset 16.
    const VNET_LE: [u8; 10] = [0x01, 0x81, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00];
    const VNET_BE: [u8; 10] = [0x01, 0x81, 0x00, 0x42, 0x05, 0xa8, 0x00, 0x22, 0x00, 0x10];

    #[test]
    fn vnet_header_both_orders() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4 | GSO_ECN,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::read_opt(&VNET_LE, Endian::Little), Some(h));
        assert_eq!(VnetHdr::read_opt(&VNET_BE, Endian::Big), Some(h));
        assert_eq!(h.to_bytes(Endian::Little), VNET_LE);
        assert_eq!(h.to_bytes(Endian::Big), VNET_BE);
        assert_eq!(VnetHdr::read_opt(&VNET_LE[..9], Endian::Little), None);
        assert_eq!(
            h.partial(),
            Some(PartialCsum {
                start: 34,
                offset: 16
            })
        );
        assert_eq!(VnetHdr::default().partial(), None);
        let native = if cfg!(target_endian = "little") {
            VNET_LE
        } else {
            VNET_BE
        };
        assert_eq!(h.to_bytes(Endian::NATIVE), native);
    }

    // ---- checksums ----

    #[test]
    fn ones_sum_matches_reference() {
        let data = payload(1001);
        for n in 0..data.len() {
            assert_eq!(
                fold(ones_sum(&data[..n])),
                ref_fold(ref_sum16(&data[..n])),
                "{n}"
            );
        }
        assert_eq!(fold(ones_sum(&[0xff; 65536])), 0xffff);
    }

    #[test]
    fn complete_checksum_fixture() {
        // IPv4/TCP "abc": fill the pseudo-header sum, complete, verify.
        let mut f = frame4(0, 1, TCP_ACK | TCP_PSH, b"abc");
        ipv4_header_checksum(&mut f, 14);
        let t = parse_tcp(&f, false).unwrap();
        let a = addr_sum(&f, &t).unwrap();
        put16(&mut f, t.l4 + 16, pseudo_partial(a, t.end - t.l4));
        let p = PartialCsum {
            start: t.l4 as u16,
            offset: 16,
        };
        assert!(complete_checksum(&mut f, p));
        verify_full(&f);
        // Ethernet padding after the IP packet is not summed.
        let good = f.clone();
        put16(&mut f, t.l4 + 16, pseudo_partial(a, t.end - t.l4));
        f.extend_from_slice(&[0xee; 7]);
        assert!(complete_checksum(&mut f, p));
        assert_eq!(&f[..good.len()], &good[..]);
        // Offsets beyond the frame: untouched.
        let before = f.clone();
        assert!(!complete_checksum(
            &mut f,
            PartialCsum {
                start: 60,
                offset: 60
            }
        ));
        assert!(!complete_checksum(
            &mut f,
            PartialCsum {
                start: u16::MAX,
                offset: u16::MAX
            }
        ));
        assert_eq!(f, before);
    }

    // ---- segmentation ----

    fn check_segments(orig: &[u8], segs: &[(Vec<u8>, Option<PartialCsum>)], mss: usize, v6: bool) {
        let t = parse_tcp(orig, true).unwrap();
        let data = &orig[t.hdr..t.end];
        let seq0 = be32(orig, t.l4 + 4).unwrap();
        let mut joined = Vec::new();
        for (i, (s, p)) in segs.iter().enumerate() {
            let st = parse_tcp(s, true).unwrap();
            assert_eq!((st.ip, st.l4, st.hdr, st.end), (t.ip, t.l4, t.hdr, s.len()));
            let len = st.end - st.hdr;
            assert!(len <= mss && len > 0, "segment {i}: {len}");
            if i + 1 < segs.len() {
                assert_eq!(len, mss);
            }
            assert_eq!(
                be32(s, st.l4 + 4).unwrap(),
                seq0.wrapping_add(joined.len() as u32)
            );
            assert_eq!(
                *p,
                Some(PartialCsum {
                    start: t.l4 as u16,
                    offset: 16
                })
            );
            if !v6 {
                assert_eq!(
                    be16(s, 18).unwrap(),
                    0x1234u16.wrapping_add(i as u16),
                    "IPv4 id"
                );
            }
            // Everything else in the headers is the original's.
            for r in [
                0..t.ip + 2,
                t.l4..t.l4 + 4,
                t.l4 + 8..t.l4 + 13,
                t.l4 + 14..t.l4 + 16,
                t.l4 + 18..t.hdr,
            ] {
                assert_eq!(s[r.clone()], orig[r.clone()], "segment {i} bytes {r:?}");
            }
            joined.extend_from_slice(&s[st.hdr..]);
            // Finishing the partial checksum gives valid checksums.
            let mut full = s.clone();
            assert!(complete_checksum(&mut full, p.unwrap()));
            verify_full(&full);
        }
        assert_eq!(joined, data);
    }

    #[test]
    fn segments_64k_ipv4() {
        let data = payload(65535 - 20 - 32);
        let orig = frame4(0, 0xffff_f000, TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR, &data);
        let (r, segs) = collect(&gso(GSO_TCPV4 | GSO_ECN, 1448, 34), &orig, 1514);
        assert_eq!(r, Ok(segs.len()));
        assert_eq!(segs.len(), data.len().div_ceil(1448));
        check_segments(&orig, &segs, 1448, false);
        for (i, (s, _)) in segs.iter().enumerate() {
            let f = s[47];
            let last = i + 1 == segs.len();
            assert_eq!(f & (TCP_FIN | TCP_PSH) != 0, last, "FIN/PSH on {i}");
            assert_eq!(f & TCP_CWR != 0, i == 0, "CWR on {i}");
            assert!(f & TCP_ACK != 0);
            assert!(s.len() <= 1514);
        }
        // The sequence wraps.
        assert!(be32(&segs.last().unwrap().0, 38).unwrap() < 0x1_0000);
    }

    #[test]
    fn segments_64k_ipv6_and_limits_by_frame_len() {
        let data = payload(65000);
        let orig = frame6(7, TCP_ACK, &data);
        let (r, segs) = collect(&gso(GSO_TCPV6, 1428, 54), &orig, 1514);
        assert_eq!(r, Ok(segs.len()));
        check_segments(&orig, &segs, 1428, true);
        // A gso_size larger than the frame allows is cut to fit.
        let (_, segs) = collect(&gso(GSO_TCPV6, 9000, 54), &orig, 1400);
        assert!(segs.iter().all(|(s, _)| s.len() <= 1400));
        check_segments(&orig, &segs, 1400 - 86, true);
    }

    #[test]
    fn segments_ipv4_options_vlan_and_tiny_mss() {
        let data = payload(300);
        let orig = frame4(2, 5, TCP_ACK, &data);
        let (r, segs) = collect(&gso(GSO_TCPV4, 1, 42), &orig, 1514);
        assert_eq!(r, Ok(300));
        check_segments(&orig, &segs, 1, false);
        // VLAN-tagged: the tag is carried, offsets move by 4.
        let mut tagged = orig[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        tagged.extend_from_slice(&orig[12..]);
        let (r, segs) = collect(&gso(GSO_TCPV4, 100, 46), &tagged, 1514);
        assert_eq!(r, Ok(3));
        for (s, p) in &segs {
            assert_eq!(&s[12..16], &[0x81, 0, 0, 7]);
            assert_eq!(p.unwrap().start, 46);
        }
    }

    #[test]
    fn hdr_len_is_not_trusted_and_bad_input_is_refused() {
        let data = payload(3000);
        let orig = frame4(0, 1, TCP_ACK, &data);
        let mut h = gso(GSO_TCPV4, 1448, 34);
        for lie in [0, 1, 54, 66, 4000, u16::MAX] {
            h.hdr_len = lie;
            let (r, segs) = collect(&h, &orig, 1514);
            assert_eq!(r, Ok(3), "hdr_len {lie}");
            check_segments(&orig, &segs, 1448, false);
        }
        // Wrong family, UDP GSO, zero gso_size, frame too short for headers.
        assert_eq!(
            collect(&gso(GSO_TCPV6, 1448, 34), &orig, 1514).0,
            Err(OffloadError::Malformed)
        );
        assert_eq!(
            collect(&gso(GSO_UDP, 1448, 34), &orig, 1514).0,
            Err(OffloadError::UnsupportedGso(GSO_UDP))
        );
        assert_eq!(
            collect(&gso(GSO_TCPV4, 0, 34), &orig, 1514).0,
            Err(OffloadError::Malformed)
        );
        assert_eq!(
            collect(&gso(GSO_TCPV4, 1448, 34), &orig, 60).0,
            Err(OffloadError::Malformed)
        );
        // IPv4 total length beyond the frame (truncated read).
        assert_eq!(
            collect(&gso(GSO_TCPV4, 1448, 34), &orig[..1000], 1514).0,
            Err(OffloadError::Malformed)
        );
        // A fragment.
        let mut frag = orig.clone();
        frag[20] = 0x20;
        assert_eq!(
            collect(&gso(GSO_TCPV4, 1448, 34), &frag, 1514).0,
            Err(OffloadError::Malformed)
        );
        // Every prefix and many mutations: errors or well-formed output, never a panic.
        for n in 0..120 {
            let (r, segs) = collect(&gso(GSO_TCPV4, 50, 34), &orig[..n], 1514);
            assert!(
                r.is_err() || segs.iter().all(|(s, _)| s.len() <= n),
                "prefix {n}"
            );
        }
        for i in 0..80 {
            for v in [0u8, 0x45, 0xff, 0x50, 0xf0] {
                let mut m = orig[..400].to_vec();
                m[i] = v;
                for kind in [GSO_TCPV4, GSO_TCPV6, GSO_NONE, GSO_UDP, 0x7f] {
                    let _ = collect(&gso(kind, 7, 34), &m, 200);
                }
            }
        }
    }

    #[test]
    fn non_gso_frames_pass_with_their_partial() {
        let f = frame4(0, 1, TCP_ACK, b"hello");
        let h = VnetHdr::for_frame(Some(PartialCsum {
            start: 34,
            offset: 16,
        }));
        let (r, segs) = collect(&h, &f, 1514);
        assert_eq!(r, Ok(1));
        assert_eq!(
            segs,
            vec![(
                f.clone(),
                Some(PartialCsum {
                    start: 34,
                    offset: 16
                })
            )]
        );
        let (_, segs) = collect(&VnetHdr::default(), &f, 1514);
        assert_eq!(segs, vec![(f.clone(), None)]);
        let bad = VnetHdr::for_frame(Some(PartialCsum {
            start: 60,
            offset: 16,
        }));
        assert_eq!(
            collect(&bad, &f, 1514).0,
            Err(OffloadError::BadChecksumOffsets)
        );
    }

    /// Ethernet + IPv4 (DF) or IPv6 + UDP 5000 → 443 carrying `data`,
    /// the UDP checksum field holding the pseudo-header sum (partial).
    fn udp_frame(v6: bool, data: &[u8]) -> Vec<u8> {
        let mut f = MAC.to_vec();
        let udp_len = (UDP_LEN + data.len()) as u16;
        if v6 {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&udp_len.to_be_bytes());
            f.extend_from_slice(&[17, 64]);
            f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        } else {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            f.extend_from_slice(&(20 + udp_len).to_be_bytes());
            f.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 17, 0, 0]);
            f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
            ipv4_header_checksum(&mut f, 14);
        }
        let l4 = f.len();
        f.extend_from_slice(&[0x13, 0x88, 0x01, 0xbb]);
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(data);
        let t = parse_l4(&f, false, PROTO_UDP).unwrap();
        let a = addr_sum(&f, &t).unwrap();
        put16(
            &mut f,
            l4 + 6,
            pseudo_partial_for(a, PROTO_UDP, UDP_LEN + data.len()),
        );
        f
    }

    /// Verifies the IPv4 header checksum and the UDP checksum (reference sums).
    fn verify_udp(frame: &[u8]) {
        let v6 = frame[12..14] == [0x86, 0xdd];
        let (l4, pseudo_addrs) = if v6 {
            (54, ref_sum16(&frame[22..54]))
        } else {
            assert_eq!(
                ref_fold(ref_sum16(&frame[14..34])),
                0xffff,
                "IPv4 header checksum"
            );
            (34, ref_sum16(&frame[26..34]))
        };
        let len = u16::from_be_bytes([frame[l4 + 4], frame[l4 + 5]]);
        assert_eq!(usize::from(len), frame.len() - l4, "UDP length");
        let sum = pseudo_addrs + 17 + u64::from(len) + ref_sum16(&frame[l4..]);
        assert_eq!(ref_fold(sum), 0xffff, "UDP checksum");
    }

    #[test]
    fn segments_udp_l4_both_families() {
        for v6 in [false, true] {
            let data = payload(3000);
            let f = udp_frame(v6, &data);
            let l4: u16 = if v6 { 54 } else { 34 };
            let h = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_UDP_L4,
                hdr_len: l4 + 8,
                gso_size: 1200,
                csum_start: l4,
                csum_offset: UDP_CSUM,
            };
            // The tunnel's frame limit never cuts a datagram smaller.
            let (r, segs) = collect(&h, &f, 600);
            assert_eq!(r, Ok(3), "v6 {v6}");
            let mut joined = Vec::new();
            for (i, (s, p)) in segs.iter().enumerate() {
                let p = p.expect("partial");
                assert_eq!((p.start, p.offset), (l4, UDP_CSUM));
                let mut s = s.clone();
                assert!(complete_checksum(&mut s, p));
                verify_udp(&s);
                if !v6 {
                    let id = u16::from_be_bytes([s[18], s[19]]);
                    assert_eq!(id, 0x1234 + i as u16);
                }
                joined.extend_from_slice(&s[usize::from(l4) + UDP_LEN..]);
            }
            assert_eq!(segs.iter().map(|s| s.0.len()).collect::<Vec<_>>(), {
                let h = usize::from(l4) + UDP_LEN;
                vec![h + 1200, h + 1200, h + 600]
            });
            assert_eq!(joined, data);
        }
        // A TCP frame under a UDP GSO header is refused, not cut.
        let tcp = frame4(0, 1, TCP_ACK, &payload(3000));
        let h = VnetHdr {
            gso_type: GSO_UDP_L4,
            ..gso(GSO_TCPV4, 1000, 34)
        };
        assert_eq!(collect(&h, &tcp, 1514).0, Err(OffloadError::Malformed));
    }

    /// A SYN with `opts` as its TCP options and a finished checksum.
    fn syn(v6: bool, opts: &[u8]) -> Vec<u8> {
        let mut f = if v6 {
            frame6(7, TCP_SYN, &[])
        } else {
            frame4(0, 7, TCP_SYN, &[])
        };
        let t = parse_tcp(&f, false).unwrap();
        // Swap the fixture's timestamp options for `opts` (a multiple of 4).
        f.truncate(t.l4 + 20);
        f.extend_from_slice(opts);
        f[t.l4 + 12] = ((20 + opts.len()) / 4) as u8 * 16;
        let l4_len = (20 + opts.len()) as u16;
        if v6 {
            put16(&mut f, 18, l4_len);
        } else {
            put16(&mut f, 16, 20 + l4_len);
            ipv4_header_checksum(&mut f, 14);
        }
        let t = parse_tcp(&f, false).unwrap();
        let a = addr_sum(&f, &t).unwrap();
        put16(&mut f, t.l4 + 16, pseudo_partial(a, t.end - t.l4));
        assert!(complete_checksum(
            &mut f,
            PartialCsum {
                start: t.l4 as u16,
                offset: TCP_CSUM
            }
        ));
        verify_full(&f);
        f
    }

    fn mss_of(f: &[u8], at: usize) -> u16 {
        let t = parse_tcp(f, false).unwrap();
        be16(f, t.l4 + 20 + at + 2).unwrap()
    }

    #[test]
    fn clamp_mss_fixes_syns_only() {
        // MSS 1460 first (even offset), or after one NOP (odd offset).
        let even = [2, 4, 0x05, 0xb4, 1, 3, 3, 7];
        let odd = [1, 2, 4, 0x05, 0xb4, 1, 1, 0];
        for (v6, limit) in [(false, 1352), (true, 1332)] {
            for (opts, at) in [(&even, 0), (&odd, 1)] {
                let mut f = syn(v6, opts);
                assert!(clamp_mss(&mut f, false, 1392), "v6 {v6} at {at}");
                assert_eq!(mss_of(&f, at), limit);
                verify_full(&f);
                // Idempotent: already at the limit.
                let before = f.clone();
                assert!(!clamp_mss(&mut f, false, 1392));
                assert_eq!(f, before);
            }
        }
        // SYN-ACK too; a partial checksum is left alone.
        let mut f = syn(false, &even);
        f[34 + 13] = TCP_SYN | TCP_ACK;
        let check = be16(&f, 34 + 16).unwrap();
        assert!(clamp_mss(&mut f, true, 1400));
        assert_eq!((mss_of(&f, 0), be16(&f, 34 + 16).unwrap()), (1360, check));
        // Not a SYN, an MSS below the limit, a 1500-byte MTU: untouched.
        for (flags, mtu) in [(TCP_ACK, 1392), (TCP_SYN, 1500), (TCP_SYN, 1600)] {
            let mut f = syn(false, &even);
            f[34 + 13] = flags;
            let before = f.clone();
            assert!(!clamp_mss(&mut f, false, mtu));
            assert_eq!(f, before);
        }
        // Malformed options (zero length, past the header), END first,
        // every prefix, garbage: untouched, no panic.
        for opts in [[2, 0, 5, 0xb4], [3, 9, 0, 0], [0, 2, 4, 5]] {
            let mut f = syn(false, &opts);
            let before = f.clone();
            assert!(!clamp_mss(&mut f, false, 1000));
            assert_eq!(f, before);
        }
        let f = syn(true, &odd);
        for n in 0..f.len() {
            let mut p = f[..n].to_vec();
            let _ = clamp_mss(&mut p, false, 576);
        }
        let mut garbage: Vec<u8> = (0..200).map(|i| (i * 37) as u8).collect();
        for i in 0..garbage.len() {
            garbage[i] ^= 0x5a;
            let _ = clamp_mss(&mut garbage, false, 576);
        }
    }

    // ---- coalescing ----

    fn run(c: &mut Coalescer, frames: &[(Vec<u8>, Option<PartialCsum>)]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (f, p) in frames {
            c.push(f, *p, &mut |b| out.push(b.to_vec()));
        }
        c.flush(&mut |b| out.push(b.to_vec()));
        out
    }

    /// The super-frame as the kernel would take it: finish the checksum and
    /// compare with the original (after the same fix-ups).
    fn check_super(out: &[u8], orig: &[u8], v6: bool, mss: usize) {
        let vh = VnetHdr::read_opt(out, Endian::Little).unwrap();
        let frame = &out[VNET_HDR_LEN..];
        assert_eq!(frame.len(), orig.len());
        let t = parse_tcp(frame, false).unwrap();
        assert_eq!(vh.gso_type, if v6 { GSO_TCPV6 } else { GSO_TCPV4 });
        assert_eq!(usize::from(vh.gso_size), mss);
        assert_eq!(usize::from(vh.hdr_len), t.hdr);
        assert_eq!(vh.flags, F_NEEDS_CSUM);
        assert_eq!((usize::from(vh.csum_start), vh.csum_offset), (t.l4, 16));
        let mut full = frame.to_vec();
        assert!(complete_checksum(&mut full, vh.partial().unwrap()));
        verify_full(&full);
        // Same bytes as the original but for the checksum fields.
        let mut a = full.clone();
        let mut b = orig.to_vec();
        for f in [&mut a, &mut b] {
            put16(f, t.l4 + 16, 0);
            if !v6 {
                put16(f, 24, 0);
            }
        }
        assert_eq!(a, b);
    }

    #[test]
    fn segment_then_coalesce_round_trips() {
        for v6 in [false, true] {
            let data = payload(60000);
            let mut orig = if v6 {
                frame6(99, TCP_ACK | TCP_PSH, &data)
            } else {
                frame4(0, 99, TCP_ACK | TCP_PSH, &data)
            };
            if !v6 {
                ipv4_header_checksum(&mut orig, 14);
            }
            let kind = if v6 { GSO_TCPV6 } else { GSO_TCPV4 };
            let tcp = if v6 { 54 } else { 34 };
            let (_, segs) = collect(&gso(kind, 1400, tcp), &orig, 1514);
            let mut c = Coalescer::new(Endian::Little);
            let out = run(&mut c, &segs);
            assert_eq!(out.len(), 1, "one super-frame (v6 {v6})");
            check_super(&out[0], &orig, v6, 1400);
            assert_eq!(c.stats().merged as usize, segs.len() - 1);
            assert!(!c.is_pending());
        }
    }

    #[test]
    fn coalescer_splits_on_gaps_flags_and_size() {
        let p = Some(PartialCsum {
            start: 34,
            offset: 16,
        });
        let seg = |seq: u32, flags: u8, n: usize| (frame4(0, seq, flags, &payload(n)), p);
        let mut c = Coalescer::new(Endian::Big);
        // Non-contiguous seq: two outputs.
        let out = run(
            &mut c,
            &[
                seg(0, TCP_ACK, 100),
                seg(100, TCP_ACK, 100),
                seg(300, TCP_ACK, 100),
            ],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(
            VnetHdr::read_opt(&out[0], Endian::Big).unwrap().gso_type,
            GSO_TCPV4
        );
        let single = VnetHdr::read_opt(&out[1], Endian::Big).unwrap();
        assert_eq!((single.gso_type, single.flags), (GSO_NONE, F_NEEDS_CSUM));
        // A short segment ends it; the next starts anew.
        let out = run(
            &mut c,
            &[
                seg(0, TCP_ACK, 100),
                seg(100, TCP_ACK, 50),
                seg(150, TCP_ACK, 100),
            ],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), VNET_HDR_LEN + 14 + 20 + 32 + 150);
        // A longer segment than the first: flush, restart.
        let out = run(
            &mut c,
            &[
                seg(0, TCP_ACK, 50),
                seg(50, TCP_ACK, 100),
                seg(150, TCP_ACK, 100),
            ],
        );
        assert_eq!(out.len(), 2);
        // PSH ends it and is kept; SYN/FIN/RST/URG/ECE pass through alone.
        let out = run(
            &mut c,
            &[
                seg(0, TCP_ACK, 100),
                seg(100, TCP_ACK | TCP_PSH, 100),
                seg(200, TCP_ACK, 100),
            ],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0][VNET_HDR_LEN + 47] & TCP_PSH, TCP_PSH);
        for bad in [0x02u8, 0x11, 0x04, 0x30, 0x50, 0x90] {
            let out = run(
                &mut c,
                &[
                    seg(0, TCP_ACK, 100),
                    seg(100, bad, 100),
                    seg(200, TCP_ACK, 100),
                ],
            );
            assert_eq!(out.len(), 3, "flags {bad:#x}");
            assert_eq!(
                VnetHdr::read_opt(&out[1], Endian::Big).unwrap().gso_type,
                GSO_NONE
            );
        }
        // Different options, ack or window: not merged.
        let mut other = seg(100, TCP_ACK, 100);
        other.0[34 + 20 + 11] ^= 1; // timestamp
        assert_eq!(run(&mut c, &[seg(0, TCP_ACK, 100), other]).len(), 2);
        let mut other = seg(100, TCP_ACK, 100);
        other.0[34 + 15] ^= 1; // window
        assert_eq!(run(&mut c, &[seg(0, TCP_ACK, 100), other]).len(), 2);
        // IPv4 options, no DF, full checksum (no partial), padding: passed through.
        let opts = (
            frame4(1, 0, TCP_ACK, &payload(100)),
            Some(PartialCsum {
                start: 38,
                offset: 16,
            }),
        );
        let mut nodf = seg(100, TCP_ACK, 100);
        nodf.0[20] = 0;
        let full = (seg(200, TCP_ACK, 100).0, None);
        let mut padded = seg(300, TCP_ACK, 100);
        padded.0.push(0);
        let out = run(&mut c, &[opts, nodf, full.clone(), padded]);
        assert_eq!(out.len(), 4);
        assert_eq!(
            VnetHdr::read_opt(&out[2], Endian::Big).unwrap(),
            VnetHdr::default()
        );
        assert_eq!(&out[2][VNET_HDR_LEN..], &full.0[..]);
        // The super-frame never exceeds 64 KiB.
        let many: Vec<_> = (0..100).map(|i| seg(i * 1000, TCP_ACK, 1000)).collect();
        let out = run(&mut c, &many);
        assert!(out.len() >= 2);
        for o in &out {
            assert!(o.len() <= COALESCE_BUF_LEN);
            let f = &o[VNET_HDR_LEN..];
            assert_eq!(usize::from(be16(f, 16).unwrap()), f.len() - 14);
        }
        assert_eq!(
            out.iter()
                .map(|o| o.len() - VNET_HDR_LEN - 66)
                .sum::<usize>(),
            100_000
        );
    }

    #[test]
    fn coalescer_survives_garbage() {
        let base = frame4(0, 0, TCP_ACK, &payload(64));
        let mut c = Coalescer::new(Endian::Little);
        let mut n = 0;
        for i in 0..base.len() {
            for v in [0u8, 1, 0x10, 0x45, 0x50, 0xff] {
                let mut f = base.clone();
                f[i] = v;
                for p in [
                    None,
                    Some(PartialCsum {
                        start: 34,
                        offset: 16,
                    }),
                    Some(PartialCsum {
                        start: u16::MAX,
                        offset: u16::MAX,
                    }),
                ] {
                    c.push(&f, p, &mut |_| n += 1);
                    c.push(&f[..i], p, &mut |_| n += 1);
                }
            }
        }
        c.flush(&mut |_| n += 1);
        assert!(n > 0);
        // An oversized frame is dropped, not written.
        let mut out = 0;
        c.push(&vec![0u8; COALESCE_BUF_LEN], None, &mut |_| out += 1);
        assert_eq!(out, 0);
        assert!(c.stats().dropped >= 1);
    }
}
