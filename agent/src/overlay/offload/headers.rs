//! Checked views of the headers offloading reads and rewrites: the legacy
//! virtio-net header, Ethernet with up to two VLAN tags, IPv4, IPv6 (with
//! extension headers), TCP and UDP. No state, no IO.
//!
//! smoltcp's wire idiom (`src/wire/udp.rs`): a `*Packet<T: AsRef<[u8]>>`
//! wraps a buffer, its offsets in a private `mod field`; `new_checked`
//! checks the lengths the getters rely on. Getters and setters read and
//! write through `get`, so they cannot panic even on a `new_unchecked`
//! view (a short buffer reads as zero, writes are dropped): the hot paths
//! re-use offsets [`L4Frame::parse`] checked once and wrap each segment
//! unchecked. A `*Repr` is the validated form: `parse(&Packet) ->
//! Result`, `emit(&mut Packet)`, `buffer_len()`. Checksums are not part of
//! a `Repr` (they are partial or filled in by the caller), except IPv4's
//! header checksum, which `emit` fills.
//!
//! [`L4Frame::parse`] is the one parser of a frame's header stack: the
//! segmenter, the coalescer, MSS clamping and both checksum completers
//! (`offload::complete_checksum`, `device::complete_l4_checksum`) use it.
//!
//! smoltcp's own `wire` module was not used: it has no virtio-net header,
//! no VLAN stacking (QinQ), and its `Ipv4Packet::new_checked` refuses a
//! super-frame's headers once copied into a segment (total length beyond
//! the buffer), so the segmenter would need its unchecked views anyway;
//! the crate with `proto-ipv4`/`proto-ipv6` also costs more flash than
//! these few hundred lines.

use core::fmt;
use core::ops::Range;

/// Why a header did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The buffer is shorter than the header or the length it announces.
    Truncated,
    /// A field is impossible (version, header length, option length).
    Malformed,
    /// Well-formed but not handled here (other ethertype or protocol, a
    /// fragment, an IPv6 jumbogram, too many extension headers).
    Unsupported,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Truncated => write!(f, "truncated header"),
            HeaderError::Malformed => write!(f, "malformed header"),
            HeaderError::Unsupported => write!(f, "unsupported header"),
        }
    }
}

pub type Result<T> = core::result::Result<T, HeaderError>;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const ETH_LEN: usize = 14;
pub const VLAN_TAG_LEN: usize = 4;
/// VLAN tags walked before the IP header.
pub const MAX_VLAN_TAGS: usize = 2;
pub const IPV4_LEN: usize = 20;
pub const IPV6_LEN: usize = 40;
pub const TCP_LEN: usize = 20;
pub const UDP_LEN: usize = 8;
/// IPv6 extension headers walked at most.
pub const MAX_EXT_HEADERS: usize = 8;

// ---- byte access: never panics, whatever the buffer ----

fn rd16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[h, l]) => u16::from_be_bytes([h, l]),
        _ => 0,
    }
}

fn rd32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

fn rd8(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

fn wr(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(s) = b.get_mut(at..at + v.len()) {
        s.copy_from_slice(v);
    }
}

fn wr8(b: &mut [u8], at: usize, v: u8) {
    if let Some(s) = b.get_mut(at) {
        *s = v;
    }
}

fn array<const N: usize>(b: &[u8], r: Range<usize>) -> [u8; N] {
    b.get(r).and_then(|s| s.try_into().ok()).unwrap_or([0; N])
}

// ---- checksums (RFC 1071) ----

/// Ones' complement sum of `bytes` as big-endian 16-bit words (an odd
/// tail padded with zero), folded to at most 0xffff (as a `u32`, so
/// callers can add a few sums and [`fold`] again). Sums 32-bit words: the
/// end-around carry makes the folded result the same, with half the
/// additions.
pub fn ones_sum(bytes: &[u8]) -> u32 {
    let mut sum: u64 = 0;
    let mut words = bytes.chunks_exact(4);
    for w in &mut words {
        sum += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    sum += u64::from(u32::from_be_bytes(tail));
    // At most 2^14 words per 64 KiB: no overflow of the u64 before folding.
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u32
}

/// Folds a ones' complement sum to 16 bits.
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The value a partial TCP/UDP checksum field holds: the folded
/// pseudo-header sum (`addrs` unfolded, protocol, L4 length), not
/// complemented.
pub fn pseudo_partial(addrs: u32, proto: u8, l4_len: usize) -> u16 {
    // l4_len ≤ 64 KiB + headers: it fits 32 bits on every target.
    let len = l4_len as u32;
    fold(u32::from(fold(addrs)) + u32::from(proto) + (len >> 16) + (len & 0xffff))
}

// ---------------------------------------------------------------------
// virtio-net header

/// Byte order of a virtio header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    /// The host's order: what a TAP uses when `TUNSETVNETLE` is unavailable.
    pub const NATIVE: Endian = if cfg!(target_endian = "little") {
        Endian::Little
    } else {
        Endian::Big
    };

    fn read(self, b: &[u8], at: usize) -> u16 {
        let v = rd16(b, at);
        match self {
            Endian::Big => v,
            Endian::Little => v.swap_bytes(),
        }
    }

    fn write(self, b: &mut [u8], at: usize, v: u16) {
        let v = match self {
            Endian::Big => v,
            Endian::Little => v.swap_bytes(),
        };
        wr(b, at, &v.to_be_bytes());
    }
}

/// Bytes of the legacy `struct virtio_net_hdr` (no `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;

mod vnet_field {
    pub const FLAGS: usize = 0;
    pub const GSO_TYPE: usize = 1;
    pub const HDR_LEN: usize = 2;
    pub const GSO_SIZE: usize = 4;
    pub const CSUM_START: usize = 6;
    pub const CSUM_OFFSET: usize = 8;
}

/// A view of a legacy virtio-net header in byte order `endian`.
#[derive(Clone, Copy, Debug)]
pub struct VnetPacket<T: AsRef<[u8]>> {
    buffer: T,
    endian: Endian,
}

impl<T: AsRef<[u8]>> VnetPacket<T> {
    pub const fn new_unchecked(buffer: T, endian: Endian) -> Self {
        VnetPacket { buffer, endian }
    }

    /// Wraps `buffer` if it holds at least [`VNET_HDR_LEN`] bytes.
    pub fn new_checked(buffer: T, endian: Endian) -> Result<Self> {
        if buffer.as_ref().len() < VNET_HDR_LEN {
            return Err(HeaderError::Truncated);
        }
        Ok(Self::new_unchecked(buffer, endian))
    }

    pub fn flags(&self) -> u8 {
        rd8(self.buffer.as_ref(), vnet_field::FLAGS)
    }
    pub fn gso_type(&self) -> u8 {
        rd8(self.buffer.as_ref(), vnet_field::GSO_TYPE)
    }
    pub fn hdr_len(&self) -> u16 {
        self.endian.read(self.buffer.as_ref(), vnet_field::HDR_LEN)
    }
    pub fn gso_size(&self) -> u16 {
        self.endian.read(self.buffer.as_ref(), vnet_field::GSO_SIZE)
    }
    pub fn csum_start(&self) -> u16 {
        self.endian
            .read(self.buffer.as_ref(), vnet_field::CSUM_START)
    }
    pub fn csum_offset(&self) -> u16 {
        self.endian
            .read(self.buffer.as_ref(), vnet_field::CSUM_OFFSET)
    }
    /// The bytes after the header (the frame).
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(VNET_HDR_LEN..).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VnetPacket<T> {
    pub fn set_flags(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), vnet_field::FLAGS, v)
    }
    pub fn set_gso_type(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), vnet_field::GSO_TYPE, v)
    }
    pub fn set_hdr_len(&mut self, v: u16) {
        self.endian
            .write(self.buffer.as_mut(), vnet_field::HDR_LEN, v)
    }
    pub fn set_gso_size(&mut self, v: u16) {
        self.endian
            .write(self.buffer.as_mut(), vnet_field::GSO_SIZE, v)
    }
    pub fn set_csum_start(&mut self, v: u16) {
        self.endian
            .write(self.buffer.as_mut(), vnet_field::CSUM_START, v)
    }
    pub fn set_csum_offset(&mut self, v: u16) {
        self.endian
            .write(self.buffer.as_mut(), vnet_field::CSUM_OFFSET, v)
    }
}

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: checksum from `csum_start`, stored at `+ csum_offset`.
pub const F_NEEDS_CSUM: u8 = 1;

/// Where a partial (unfinished) L4 checksum is: sum from `start` (offset
/// in the Ethernet frame) to the end of the IP packet, complement, store
/// at `start + offset`. The field already holds the pseudo-header sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialCsum {
    pub start: u16,
    pub offset: u16,
}

/// The legacy `struct virtio_net_hdr` (Linux `include/uapi/linux/virtio_net.h`):
/// the `Repr` of a [`VnetPacket`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    /// Length of the headers; the kernel fills in its linear length here,
    /// so it is advice only: `segment` parses the headers itself.
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Every field is taken as it is (the segmenter checks them against
    /// the frame); never fails on a checked view.
    pub fn parse<T: AsRef<[u8]>>(p: &VnetPacket<T>) -> Result<VnetHdr> {
        if p.buffer.as_ref().len() < VNET_HDR_LEN {
            return Err(HeaderError::Truncated);
        }
        Ok(VnetHdr {
            flags: p.flags(),
            gso_type: p.gso_type(),
            hdr_len: p.hdr_len(),
            gso_size: p.gso_size(),
            csum_start: p.csum_start(),
            csum_offset: p.csum_offset(),
        })
    }

    /// Reads the first [`VNET_HDR_LEN`] bytes of `b` in order `e`.
    pub fn read(b: &[u8], e: Endian) -> Result<VnetHdr> {
        Self::parse(&VnetPacket::new_checked(b, e)?)
    }

    pub const fn buffer_len(&self) -> usize {
        VNET_HDR_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut VnetPacket<T>) {
        p.set_flags(self.flags);
        p.set_gso_type(self.gso_type);
        p.set_hdr_len(self.hdr_len);
        p.set_gso_size(self.gso_size);
        p.set_csum_start(self.csum_start);
        p.set_csum_offset(self.csum_offset);
    }

    /// The header's bytes in order `e`.
    pub fn to_bytes(&self, e: Endian) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        self.emit(&mut VnetPacket::new_unchecked(&mut b[..], e));
        b
    }

    /// A header for a plain frame: `NEEDS_CSUM` with `partial`, or all zero.
    pub fn for_frame(partial: Option<PartialCsum>) -> VnetHdr {
        match partial {
            Some(p) => VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: 0,
                hdr_len: p.start.saturating_add(p.offset).saturating_add(2),
                gso_size: 0,
                csum_start: p.start,
                csum_offset: p.offset,
            },
            None => VnetHdr::default(),
        }
    }

    /// The partial checksum this header announces, if any.
    pub fn partial(&self) -> Option<PartialCsum> {
        (self.flags & F_NEEDS_CSUM != 0).then_some(PartialCsum {
            start: self.csum_start,
            offset: self.csum_offset,
        })
    }
}

// ---------------------------------------------------------------------
// Ethernet + VLAN

/// One 802.1Q / 802.1ad tag: its TPID and TCI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VlanTag {
    pub tpid: u16,
    pub tci: u16,
}

/// The Ethernet header and its VLAN tags (at most [`MAX_VLAN_TAGS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EthernetRepr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// `tags[..n_tags]`, outermost first; the rest zero.
    pub tags: [VlanTag; MAX_VLAN_TAGS],
    pub n_tags: u8,
    /// The payload's ethertype (after the tags).
    pub ethertype: u16,
}

/// Length of the Ethernet header, tags included, and the payload's
/// ethertype; tags are walked only when `vlan`.
pub fn ethernet_header(frame: &[u8], vlan: bool) -> Result<(usize, u16)> {
    let mut at = ETH_LEN - 2;
    if frame.len() < ETH_LEN {
        return Err(HeaderError::Truncated);
    }
    let mut ethertype = rd16(frame, at);
    if vlan {
        for _ in 0..MAX_VLAN_TAGS {
            if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
                break;
            }
            at += VLAN_TAG_LEN;
            if frame.len() < at + 2 {
                return Err(HeaderError::Truncated);
            }
            ethertype = rd16(frame, at);
        }
    }
    Ok((at + 2, ethertype))
}

impl EthernetRepr {
    pub fn parse(frame: &[u8], vlan: bool) -> Result<EthernetRepr> {
        let (len, ethertype) = ethernet_header(frame, vlan)?;
        let n = (len - ETH_LEN) / VLAN_TAG_LEN;
        let mut tags = [VlanTag::default(); MAX_VLAN_TAGS];
        for (i, t) in tags.iter_mut().take(n).enumerate() {
            let at = ETH_LEN - 2 + i * VLAN_TAG_LEN;
            *t = VlanTag {
                tpid: rd16(frame, at),
                tci: rd16(frame, at + 2),
            };
        }
        Ok(EthernetRepr {
            dst: array(frame, 0..6),
            src: array(frame, 6..12),
            tags,
            n_tags: n as u8,
            ethertype,
        })
    }

    pub fn buffer_len(&self) -> usize {
        ETH_LEN + usize::from(self.n_tags).min(MAX_VLAN_TAGS) * VLAN_TAG_LEN
    }

    /// Writes the header into the first [`buffer_len`](Self::buffer_len)
    /// bytes of `frame` (as much as fits).
    pub fn emit(&self, frame: &mut [u8]) {
        wr(frame, 0, &self.dst);
        wr(frame, 6, &self.src);
        let mut at = ETH_LEN - 2;
        for t in self.tags.iter().take(usize::from(self.n_tags)) {
            wr(frame, at, &t.tpid.to_be_bytes());
            wr(frame, at + 2, &t.tci.to_be_bytes());
            at += VLAN_TAG_LEN;
        }
        wr(frame, at, &self.ethertype.to_be_bytes());
    }
}

// ---------------------------------------------------------------------
// IPv4 (RFC 791)

pub(crate) mod ipv4_field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    /// Source and destination: the pseudo-header's addresses.
    pub const ADDRS: Range<usize> = 12..20;
}

/// Flags/fragment field: DF, MF, offset.
pub const IPV4_DF: u16 = 0x4000;
const IPV4_MF_OFFSET: u16 = 0x3fff;

/// A view of an IPv4 packet. `new_checked`: version 4, a header length of
/// at least 20 within the buffer, a total length covering the header and
/// within the buffer (Ethernet padding may follow).
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < IPV4_LEN {
            return Err(HeaderError::Truncated);
        }
        let hl = self.header_len();
        if self.version() != 4 || hl < IPV4_LEN || usize::from(self.total_len()) < hl {
            return Err(HeaderError::Malformed);
        }
        if hl > len || usize::from(self.total_len()) > len {
            return Err(HeaderError::Truncated);
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        rd8(self.buffer.as_ref(), ipv4_field::VER_IHL) >> 4
    }
    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(rd8(self.buffer.as_ref(), ipv4_field::VER_IHL) & 0x0f) * 4
    }
    pub fn tos(&self) -> u8 {
        rd8(self.buffer.as_ref(), ipv4_field::TOS)
    }
    pub fn total_len(&self) -> u16 {
        rd16(self.buffer.as_ref(), ipv4_field::LENGTH)
    }
    pub fn ident(&self) -> u16 {
        rd16(self.buffer.as_ref(), ipv4_field::IDENT)
    }
    /// Flags and fragment offset, as on the wire.
    pub fn flags_frag(&self) -> u16 {
        rd16(self.buffer.as_ref(), ipv4_field::FLG_OFF)
    }
    /// MF set or a non-zero offset.
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & IPV4_MF_OFFSET != 0
    }
    pub fn ttl(&self) -> u8 {
        rd8(self.buffer.as_ref(), ipv4_field::TTL)
    }
    pub fn protocol(&self) -> u8 {
        rd8(self.buffer.as_ref(), ipv4_field::PROTOCOL)
    }
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), ipv4_field::CHECKSUM)
    }
    pub fn src_addr(&self) -> [u8; 4] {
        array(self.buffer.as_ref(), ipv4_field::SRC)
    }
    pub fn dst_addr(&self) -> [u8; 4] {
        array(self.buffer.as_ref(), ipv4_field::DST)
    }
    /// Unfolded sum of source and destination (for the pseudo-header).
    pub fn addr_sum(&self) -> u32 {
        ones_sum(
            self.buffer
                .as_ref()
                .get(ipv4_field::ADDRS)
                .unwrap_or_default(),
        )
    }
    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        let h = self.buffer.as_ref().get(..self.header_len());
        fold(ones_sum(h.unwrap_or_default())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    pub fn set_version_ihl(&mut self, header_len: usize) {
        let ihl = (header_len / 4).min(15) as u8;
        wr8(self.buffer.as_mut(), ipv4_field::VER_IHL, 0x40 | ihl);
    }
    pub fn set_tos(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), ipv4_field::TOS, v)
    }
    pub fn set_total_len(&mut self, v: u16) {
        wr(self.buffer.as_mut(), ipv4_field::LENGTH, &v.to_be_bytes())
    }
    pub fn set_ident(&mut self, v: u16) {
        wr(self.buffer.as_mut(), ipv4_field::IDENT, &v.to_be_bytes())
    }
    pub fn set_flags_frag(&mut self, v: u16) {
        wr(self.buffer.as_mut(), ipv4_field::FLG_OFF, &v.to_be_bytes())
    }
    pub fn set_ttl(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), ipv4_field::TTL, v)
    }
    pub fn set_protocol(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), ipv4_field::PROTOCOL, v)
    }
    pub fn set_checksum(&mut self, v: u16) {
        wr(self.buffer.as_mut(), ipv4_field::CHECKSUM, &v.to_be_bytes())
    }
    pub fn set_src_addr(&mut self, v: [u8; 4]) {
        wr(self.buffer.as_mut(), ipv4_field::SRC.start, &v)
    }
    pub fn set_dst_addr(&mut self, v: [u8; 4]) {
        wr(self.buffer.as_mut(), ipv4_field::DST.start, &v)
    }
    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = !fold(ones_sum(self.buffer.as_ref().get(..hl).unwrap_or_default()));
        self.set_checksum(c);
    }
}

/// The fixed IPv4 header (options are not represented: `emit` writes a
/// 20-byte header; the segmenter copies options as bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub protocol: u8,
    /// Bytes after the header (options excluded from both).
    pub payload_len: usize,
    pub tos: u8,
    pub ident: u16,
    pub flags_frag: u16,
    pub ttl: u8,
}

impl Ipv4Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        p.check_len()?;
        Ok(Ipv4Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
            tos: p.tos(),
            ident: p.ident(),
            flags_frag: p.flags_frag(),
            ttl: p.ttl(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        IPV4_LEN
    }

    /// Writes a 20-byte header with its checksum. A `payload_len` beyond
    /// what a total length can say is written as 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv4Packet<T>) {
        p.set_version_ihl(IPV4_LEN);
        p.set_tos(self.tos);
        let total = u16::try_from(IPV4_LEN + self.payload_len).unwrap_or(u16::MAX);
        p.set_total_len(total);
        p.set_ident(self.ident);
        p.set_flags_frag(self.flags_frag);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        p.fill_checksum();
    }
}

// ---------------------------------------------------------------------
// IPv6 (RFC 8200)

pub(crate) mod ipv6_field {
    use core::ops::Range;
    /// Version, traffic class, flow label.
    pub const VER_TC_FLOW: usize = 0;
    pub const LENGTH: usize = 4;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
    pub const ADDRS: Range<usize> = 8..40;
}

/// A view of an IPv6 packet. `new_checked`: version 6, the fixed header
/// and the payload length within the buffer.
#[derive(Clone, Copy, Debug)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < IPV6_LEN {
            return Err(HeaderError::Truncated);
        }
        if self.version() != 6 {
            return Err(HeaderError::Malformed);
        }
        if IPV6_LEN + usize::from(self.payload_len()) > len {
            return Err(HeaderError::Truncated);
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        rd8(self.buffer.as_ref(), ipv6_field::VER_TC_FLOW) >> 4
    }
    /// Traffic class and flow label (the low 28 bits of the first word).
    pub fn class_flow(&self) -> u32 {
        rd32(self.buffer.as_ref(), ipv6_field::VER_TC_FLOW) & 0x0fff_ffff
    }
    pub fn payload_len(&self) -> u16 {
        rd16(self.buffer.as_ref(), ipv6_field::LENGTH)
    }
    pub fn next_header(&self) -> u8 {
        rd8(self.buffer.as_ref(), ipv6_field::NXT_HDR)
    }
    pub fn hop_limit(&self) -> u8 {
        rd8(self.buffer.as_ref(), ipv6_field::HOP_LIMIT)
    }
    pub fn src_addr(&self) -> [u8; 16] {
        array(self.buffer.as_ref(), ipv6_field::SRC)
    }
    pub fn dst_addr(&self) -> [u8; 16] {
        array(self.buffer.as_ref(), ipv6_field::DST)
    }
    /// Unfolded sum of source and destination (for the pseudo-header).
    pub fn addr_sum(&self) -> u32 {
        ones_sum(
            self.buffer
                .as_ref()
                .get(ipv6_field::ADDRS)
                .unwrap_or_default(),
        )
    }
    /// The payload (extension headers and upper layer), without padding.
    pub fn payload(&self) -> &[u8] {
        let end = IPV6_LEN + usize::from(self.payload_len());
        self.buffer.as_ref().get(IPV6_LEN..end).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    pub fn set_version_class_flow(&mut self, class_flow: u32) {
        let v = 6 << 28 | (class_flow & 0x0fff_ffff);
        wr(
            self.buffer.as_mut(),
            ipv6_field::VER_TC_FLOW,
            &v.to_be_bytes(),
        )
    }
    pub fn set_payload_len(&mut self, v: u16) {
        wr(self.buffer.as_mut(), ipv6_field::LENGTH, &v.to_be_bytes())
    }
    pub fn set_next_header(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), ipv6_field::NXT_HDR, v)
    }
    pub fn set_hop_limit(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), ipv6_field::HOP_LIMIT, v)
    }
    pub fn set_src_addr(&mut self, v: [u8; 16]) {
        wr(self.buffer.as_mut(), ipv6_field::SRC.start, &v)
    }
    pub fn set_dst_addr(&mut self, v: [u8; 16]) {
        wr(self.buffer.as_mut(), ipv6_field::DST.start, &v)
    }
}

/// The fixed IPv6 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub next_header: u8,
    pub payload_len: usize,
    pub hop_limit: u8,
    /// Traffic class and flow label (28 bits).
    pub class_flow: u32,
}

impl Ipv6Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Result<Ipv6Repr> {
        p.check_len()?;
        Ok(Ipv6Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: usize::from(p.payload_len()),
            hop_limit: p.hop_limit(),
            class_flow: p.class_flow(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        IPV6_LEN
    }

    /// A `payload_len` beyond 65535 is written as 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv6Packet<T>) {
        p.set_version_class_flow(self.class_flow);
        p.set_payload_len(u16::try_from(self.payload_len).unwrap_or(u16::MAX));
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
    }
}

/// IPv6 extension headers that may precede TCP/UDP (RFC 8200 §4.1).
const EXT_HOP_BY_HOP: u8 = 0;
const EXT_ROUTING: u8 = 43;
const EXT_AH: u8 = 51;
const EXT_DEST_OPTS: u8 = 60;

/// Walks the extension headers at the start of an IPv6 payload (`first`
/// is the fixed header's next header). Returns the upper-layer protocol,
/// its offset in `payload`, and whether every header walked was
/// hop-by-hop or destination options (a routing header changes the
/// pseudo-header's destination, AH covers the payload: neither may be
/// segmented).
pub fn ipv6_upper_layer(payload: &[u8], first: u8) -> Result<(u8, usize, bool)> {
    let (mut next, mut at, mut plain) = (first, 0usize, true);
    for _ in 0..MAX_EXT_HEADERS {
        let len = match next {
            EXT_HOP_BY_HOP | EXT_DEST_OPTS => (usize::from(rd8(payload, at + 1)) + 1) * 8,
            EXT_ROUTING => {
                plain = false;
                (usize::from(rd8(payload, at + 1)) + 1) * 8
            }
            // RFC 4302 §2.2: in 4-octet units, minus 2.
            EXT_AH => {
                plain = false;
                (usize::from(rd8(payload, at + 1)) + 2) * 4
            }
            _ => return Ok((next, at, plain)),
        };
        if payload.len() < at + 2 {
            return Err(HeaderError::Truncated);
        }
        next = rd8(payload, at);
        at += len;
    }
    Err(HeaderError::Unsupported)
}

// ---------------------------------------------------------------------
// TCP (RFC 9293 §3.1)

pub(crate) mod tcp_field {
    use core::ops::Range;
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const PORTS: Range<usize> = 0..4;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DOFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
    pub const OPTIONS: usize = 20;
}

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;
pub const TCP_CWR: u8 = 0x80;
/// Offset of the checksum in a TCP header.
pub const TCP_CSUM: u16 = tcp_field::CHECKSUM as u16;

/// A view of a TCP segment. `new_checked`: the fixed header, a data
/// offset of at least 20 and the whole header within the buffer.
#[derive(Clone, Copy, Debug)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < TCP_LEN {
            return Err(HeaderError::Truncated);
        }
        if self.header_len() < TCP_LEN {
            return Err(HeaderError::Malformed);
        }
        if self.header_len() > len {
            return Err(HeaderError::Truncated);
        }
        Ok(())
    }

    pub fn src_port(&self) -> u16 {
        rd16(self.buffer.as_ref(), tcp_field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        rd16(self.buffer.as_ref(), tcp_field::DST_PORT)
    }
    pub fn seq_number(&self) -> u32 {
        rd32(self.buffer.as_ref(), tcp_field::SEQ)
    }
    pub fn ack_number(&self) -> u32 {
        rd32(self.buffer.as_ref(), tcp_field::ACK)
    }
    /// Data offset in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(rd8(self.buffer.as_ref(), tcp_field::DOFF) >> 4) * 4
    }
    /// The flag byte (CWR ECE URG ACK PSH RST SYN FIN).
    pub fn flags(&self) -> u8 {
        rd8(self.buffer.as_ref(), tcp_field::FLAGS)
    }
    pub fn window(&self) -> u16 {
        rd16(self.buffer.as_ref(), tcp_field::WINDOW)
    }
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), tcp_field::CHECKSUM)
    }
    pub fn urgent(&self) -> u16 {
        rd16(self.buffer.as_ref(), tcp_field::URGENT)
    }
    pub fn options(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(tcp_field::OPTIONS..self.header_len())
            .unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        wr(self.buffer.as_mut(), tcp_field::SRC_PORT, &v.to_be_bytes())
    }
    pub fn set_dst_port(&mut self, v: u16) {
        wr(self.buffer.as_mut(), tcp_field::DST_PORT, &v.to_be_bytes())
    }
    pub fn set_seq_number(&mut self, v: u32) {
        wr(self.buffer.as_mut(), tcp_field::SEQ, &v.to_be_bytes())
    }
    pub fn set_ack_number(&mut self, v: u32) {
        wr(self.buffer.as_mut(), tcp_field::ACK, &v.to_be_bytes())
    }
    /// Data offset in bytes (a multiple of 4, at most 60).
    pub fn set_header_len(&mut self, len: usize) {
        wr8(
            self.buffer.as_mut(),
            tcp_field::DOFF,
            ((len / 4).min(15) as u8) << 4,
        )
    }
    pub fn set_flags(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), tcp_field::FLAGS, v)
    }
    pub fn set_window(&mut self, v: u16) {
        wr(self.buffer.as_mut(), tcp_field::WINDOW, &v.to_be_bytes())
    }
    pub fn set_checksum(&mut self, v: u16) {
        wr(self.buffer.as_mut(), tcp_field::CHECKSUM, &v.to_be_bytes())
    }
    pub fn set_urgent(&mut self, v: u16) {
        wr(self.buffer.as_mut(), tcp_field::URGENT, &v.to_be_bytes())
    }
    /// Replaces the 16-bit word at `at` (from the header's start, maybe
    /// odd) by `new`, updating a finished checksum incrementally (RFC
    /// 1624 eqn. 3: HC' = ~(~HC + ~m + m')) unless `partial`.
    pub fn replace16(&mut self, at: usize, new: u16, partial: bool) {
        let b = self.buffer.as_mut();
        let start = at & !1;
        let end = if at % 2 == 0 { start + 2 } else { start + 4 };
        let Some(old) = b.get(start..end) else {
            return;
        };
        let mut words = [0u8; 4];
        words[..end - start].copy_from_slice(old);
        let old_sum = ones_sum(&words[..end - start]);
        wr(&mut words, at - start, &new.to_be_bytes());
        let new_sum = ones_sum(&words[..end - start]);
        wr(b, start, &words[..end - start]);
        if !partial {
            let check = u32::from(!rd16(b, tcp_field::CHECKSUM));
            let c = !fold(check + u32::from(!fold(old_sum)) + new_sum);
            wr(b, tcp_field::CHECKSUM, &c.to_be_bytes());
        }
    }
}

/// TCP option kinds (RFC 9293 §3.2).
const TCPOPT_END: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_MSS: u8 = 2;

/// Offset in `options` of the MSS option's value, if there is one before
/// END; `Malformed` for an option length below 2 or past the end.
pub fn mss_option(options: &[u8]) -> Result<Option<usize>> {
    let mut at = 0;
    // Each step advances at least one byte.
    while let Some(&kind) = options.get(at) {
        match kind {
            TCPOPT_END => return Ok(None),
            TCPOPT_NOP => at += 1,
            _ => {
                let len = usize::from(*options.get(at + 1).ok_or(HeaderError::Truncated)?);
                if len < 2 || at + len > options.len() {
                    return Err(HeaderError::Malformed);
                }
                if kind == TCPOPT_MSS && len == 4 {
                    return Ok(Some(at + 2));
                }
                at += len;
            }
        }
    }
    Ok(None)
}

/// A TCP header; the checksum is the caller's (partial or finished).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    /// At most 40 bytes, a multiple of 4 (as parsed).
    pub options: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &'a TcpPacket<&'a T>) -> Result<TcpRepr<'a>> {
        p.check_len()?;
        Ok(TcpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq_number(),
            ack: p.ack_number(),
            flags: p.flags(),
            window: p.window(),
            urgent: p.urgent(),
            options: p
                .buffer
                .as_ref()
                .get(tcp_field::OPTIONS..p.header_len())
                .unwrap_or_default(),
        })
    }

    /// 20 bytes plus the options, rounded up to a multiple of 4, at most 60.
    pub fn buffer_len(&self) -> usize {
        (TCP_LEN + self.options.len().div_ceil(4) * 4).min(60)
    }

    /// Writes the header (checksum zero, options padded with END).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut TcpPacket<T>) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq);
        p.set_ack_number(self.ack);
        let len = self.buffer_len();
        p.set_header_len(len);
        p.set_flags(self.flags);
        p.set_window(self.window);
        p.set_checksum(0);
        p.set_urgent(self.urgent);
        if let Some(o) = p.buffer.as_mut().get_mut(tcp_field::OPTIONS..len) {
            o.fill(TCPOPT_END);
            let n = self.options.len().min(o.len());
            o[..n].copy_from_slice(&self.options[..n]);
        }
    }
}

// ---------------------------------------------------------------------
// UDP (RFC 768)

pub(crate) mod udp_field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// Offset of the checksum in a UDP header.
pub const UDP_CSUM: u16 = udp_field::CHECKSUM as u16;

/// A view of a UDP datagram. `new_checked`: the 8-byte header. The length
/// field is not checked against the buffer (a USO super-frame's is the
/// whole).
#[derive(Clone, Copy, Debug)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < UDP_LEN {
            return Err(HeaderError::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    pub fn src_port(&self) -> u16 {
        rd16(self.buffer.as_ref(), udp_field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        rd16(self.buffer.as_ref(), udp_field::DST_PORT)
    }
    pub fn length(&self) -> u16 {
        rd16(self.buffer.as_ref(), udp_field::LENGTH)
    }
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), udp_field::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        wr(self.buffer.as_mut(), udp_field::SRC_PORT, &v.to_be_bytes())
    }
    pub fn set_dst_port(&mut self, v: u16) {
        wr(self.buffer.as_mut(), udp_field::DST_PORT, &v.to_be_bytes())
    }
    pub fn set_length(&mut self, v: u16) {
        wr(self.buffer.as_mut(), udp_field::LENGTH, &v.to_be_bytes())
    }
    pub fn set_checksum(&mut self, v: u16) {
        wr(self.buffer.as_mut(), udp_field::CHECKSUM, &v.to_be_bytes())
    }
}

/// A UDP header; the checksum is the caller's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    /// The length field as on the wire.
    pub len: u16,
}

impl UdpRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &UdpPacket<T>) -> Result<UdpRepr> {
        if p.buffer.as_ref().len() < UDP_LEN {
            return Err(HeaderError::Truncated);
        }
        Ok(UdpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            len: p.length(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        UDP_LEN
    }

    /// Writes the header, checksum zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut UdpPacket<T>) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_length(self.len);
        p.set_checksum(0);
    }
}

// ---------------------------------------------------------------------
// The header stack

/// Offsets of a TCP/IP or UDP/IP packet inside an Ethernet frame, as
/// [`L4Frame::parse`] checked them: `ip < l4 < hdr ≤ end ≤ frame.len()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L4Frame {
    /// Start of the IP header.
    pub ip: usize,
    pub v6: bool,
    /// [`PROTO_TCP`] or [`PROTO_UDP`].
    pub proto: u8,
    /// IPv4, or IPv6 with only hop-by-hop / destination options before
    /// the L4 header (no routing header, no AH).
    pub plain: bool,
    /// Start of the TCP or UDP header.
    pub l4: usize,
    /// End of the TCP or UDP header (= start of the payload).
    pub hdr: usize,
    /// End of the IP packet (≤ frame length; Ethernet padding follows).
    pub end: usize,
}

impl L4Frame {
    /// Parses Ethernet (+ up to two VLAN tags if `vlan`) / IPv4 or IPv6 /
    /// TCP or UDP. IPv4 must not be a fragment; IPv6 may carry up to
    /// [`MAX_EXT_HEADERS`] hop-by-hop, routing, destination options or AH
    /// headers (see `plain`); jumbograms are refused.
    pub fn parse(frame: &[u8], vlan: bool) -> Result<L4Frame> {
        let (ip, ethertype) = ethernet_header(frame, vlan)?;
        let l3 = frame.get(ip..).unwrap_or_default();
        let (v6, proto, plain, l4, end) = match ethertype {
            ETHERTYPE_IPV4 => {
                let p = Ipv4Packet::new_checked(l3)?;
                if p.is_fragment() {
                    return Err(HeaderError::Unsupported);
                }
                let end = ip + usize::from(p.total_len());
                (false, p.protocol(), true, ip + p.header_len(), end)
            }
            ETHERTYPE_IPV6 => {
                let p = Ipv6Packet::new_checked(l3)?;
                if p.payload_len() == 0 {
                    return Err(HeaderError::Unsupported); // jumbogram / BIG TCP
                }
                let (proto, at, plain) = ipv6_upper_layer(p.payload(), p.next_header())?;
                let end = ip + IPV6_LEN + usize::from(p.payload_len());
                (true, proto, plain, ip + IPV6_LEN + at, end)
            }
            _ => return Err(HeaderError::Unsupported),
        };
        let seg = frame.get(l4..end).ok_or(HeaderError::Truncated)?;
        let hdr = match proto {
            PROTO_TCP => l4 + TcpPacket::new_checked(seg)?.header_len(),
            PROTO_UDP => l4 + UdpPacket::new_checked(seg).map(|_| UDP_LEN)?,
            _ => return Err(HeaderError::Unsupported),
        };
        Ok(L4Frame {
            ip,
            v6,
            proto,
            plain,
            l4,
            hdr,
            end,
        })
    }

    /// TCP only, and `plain` (what segmenting and coalescing accept).
    pub fn parse_tcp(frame: &[u8], vlan: bool) -> Result<L4Frame> {
        let t = Self::parse(frame, vlan)?;
        if t.proto != PROTO_TCP || !t.plain {
            return Err(HeaderError::Unsupported);
        }
        Ok(t)
    }

    /// Offset of the checksum in the L4 header.
    pub fn csum_offset(&self) -> u16 {
        if self.proto == PROTO_TCP {
            TCP_CSUM
        } else {
            UDP_CSUM
        }
    }

    /// The partial checksum of this packet's L4 header.
    pub fn partial(&self) -> PartialCsum {
        PartialCsum {
            // l4 ≤ 14 + 8 + 60 + 8 × 2040: an IPv6 chain could in theory
            // pass 64 KiB only in a frame longer than that; saturate.
            start: u16::try_from(self.l4).unwrap_or(u16::MAX),
            offset: self.csum_offset(),
        }
    }

    /// Unfolded sum of the pseudo-header's addresses.
    pub fn addr_sum(&self, frame: &[u8]) -> u32 {
        let l3 = frame.get(self.ip..).unwrap_or_default();
        if self.v6 {
            Ipv6Packet::new_unchecked(l3).addr_sum()
        } else {
            Ipv4Packet::new_unchecked(l3).addr_sum()
        }
    }
}

/// End of the IP packet in `frame` (after up to two VLAN tags), if it
/// parses and fits.
pub fn l3_end(frame: &[u8]) -> Option<usize> {
    let (ip, ethertype) = ethernet_header(frame, true).ok()?;
    let l3 = frame.get(ip..)?;
    match ethertype {
        ETHERTYPE_IPV4 => Some(ip + usize::from(Ipv4Packet::new_checked(l3).ok()?.total_len())),
        ETHERTYPE_IPV6 => {
            Some(ip + IPV6_LEN + usize::from(Ipv6Packet::new_checked(l3).ok()?.payload_len()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// flags NEEDS_CSUM, TCPV4|ECN, hdr_len 66, gso_size 1448, start 34, offset 16.
    const VNET_LE: [u8; 10] = [0x01, 0x81, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00];
    const VNET_BE: [u8; 10] = [0x01, 0x81, 0x00, 0x42, 0x05, 0xa8, 0x00, 0x22, 0x00, 0x10];
    const VNET_REPR: VnetHdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: 0x81,
        hdr_len: 66,
        gso_size: 1448,
        csum_start: 34,
        csum_offset: 16,
    };

    #[test]
    fn vnet_parse_and_emit() {
        for (bytes, e) in [(VNET_LE, Endian::Little), (VNET_BE, Endian::Big)] {
            let p = VnetPacket::new_checked(&bytes[..], e).unwrap();
            assert_eq!(p.gso_size(), 1448);
            assert_eq!(VnetHdr::parse(&p), Ok(VNET_REPR));
            let mut out = [0u8; 10];
            VNET_REPR.emit(&mut VnetPacket::new_checked(&mut out[..], e).unwrap());
            assert_eq!(out, bytes);
            assert_eq!(VNET_REPR.buffer_len(), 10);
        }
        assert_eq!(
            VnetHdr::read(&VNET_LE[..9], Endian::Little),
            Err(HeaderError::Truncated)
        );
    }

    /// Ethernet, one 802.1Q tag (VID 5), IPv4 (options: 4 × NOP), TCP
    /// (MSS 1460 option) 1000 → 80, "hi". Checksums computed independently.
    const TCP4_VLAN: [u8; 18 + 24 + 24 + 2] = [
        2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, // MACs
        0x81, 0x00, 0x00, 0x05, 0x08, 0x00, // tag, IPv4
        0x46, 0x00, 0x00, 0x32, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x11, 0x8e, //
        10, 0, 0, 1, 10, 0, 0, 2, 1, 1, 1, 1, // addresses, options
        0x03, 0xe8, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, 0x60, 0x12, 0x20, 0x00, //
        0xf7, 0x6d, 0, 0, 2, 4, 0x05, 0xb4, // checksum, urgent, MSS
        b'h', b'i',
    ];

    #[test]
    fn tcp4_vlan_fixture_both_ways() {
        let f = &TCP4_VLAN;
        let t = L4Frame::parse(f, true).unwrap();
        assert_eq!(
            t,
            L4Frame {
                ip: 18,
                v6: false,
                proto: PROTO_TCP,
                plain: true,
                l4: 42,
                hdr: 66,
                end: 68
            }
        );
        assert_eq!(
            L4Frame::parse(f, false),
            Err(HeaderError::Unsupported),
            "tags not walked"
        );
        let eth = EthernetRepr::parse(f, true).unwrap();
        assert_eq!(eth.n_tags, 1);
        assert_eq!(
            eth.tags[0],
            VlanTag {
                tpid: 0x8100,
                tci: 5
            }
        );
        assert_eq!(eth.ethertype, ETHERTYPE_IPV4);
        let ip = Ipv4Packet::new_checked(&f[18..]).unwrap();
        assert!(ip.verify_checksum());
        let ip4 = Ipv4Repr::parse(&ip).unwrap();
        assert_eq!(
            ip4,
            Ipv4Repr {
                src: [10, 0, 0, 1],
                dst: [10, 0, 0, 2],
                protocol: 6,
                payload_len: 26,
                tos: 0,
                ident: 0x1234,
                flags_frag: IPV4_DF,
                ttl: 64
            }
        );
        let tcp = TcpPacket::new_checked(&f[42..68]).unwrap();
        let tr = TcpRepr::parse(&tcp).unwrap();
        assert_eq!(
            (
                tr.src_port,
                tr.dst_port,
                tr.seq,
                tr.ack,
                tr.flags,
                tr.window
            ),
            (1000, 80, 1, 2, TCP_SYN | TCP_ACK, 0x2000)
        );
        assert_eq!(tr.options, &[2, 4, 0x05, 0xb4]);
        assert_eq!(mss_option(tr.options), Ok(Some(2)));
        // The pseudo-header sum plus the segment verifies.
        let sum = t.addr_sum(f) + 6 + 26 + ones_sum(&f[42..68]);
        assert_eq!(fold(sum), 0xffff);

        // Emit: the same bytes but for the IPv4 options (the repr has none).
        let mut out = [0u8; 68];
        eth.emit(&mut out);
        assert_eq!(out[..18], f[..18]);
        let mut tcp_out = [0u8; 24];
        tr.emit(&mut TcpPacket::new_unchecked(&mut tcp_out[..]));
        tcp_out[16..18].copy_from_slice(&f[58..60]);
        assert_eq!(tcp_out[..], f[42..66]);
        let mut ip_out = [0u8; 20 + 26];
        Ipv4Repr {
            payload_len: 26,
            ..ip4
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut ip_out[..]));
        let back = Ipv4Packet::new_checked(&ip_out[..]).unwrap();
        assert!(back.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&back), Ok(ip4));
        assert_eq!(ip_out[..10], [0x45, 0, 0, 46, 0x12, 0x34, 0x40, 0, 0x40, 6]);
    }

    /// IPv6 (hop-by-hop) + UDP fd00::1:4660 → fd00::2:22136, "hello".
    const UDP6: [u8; 14 + 40 + 8 + 8 + 5] = [
        2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd, //
        0x60, 0x0a, 0xbc, 0xde, 0x00, 0x15, 0x00, 0x40, // class 0, flow 0xabcde
        0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
        0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, //
        17, 0, 1, 4, 0, 0, 0, 0, // HBH: next UDP, PadN
        0x12, 0x34, 0x56, 0x78, 0x00, 0x0d, 0, 0, // UDP, checksum left zero
        b'h', b'e', b'l', b'l', b'o',
    ];

    #[test]
    fn udp6_fixture_both_ways() {
        let t = L4Frame::parse(&UDP6, true).unwrap();
        assert_eq!(
            (t.ip, t.v6, t.proto, t.plain, t.l4, t.hdr, t.end),
            (14, true, PROTO_UDP, true, 62, 70, 75)
        );
        assert_eq!(
            t.partial(),
            PartialCsum {
                start: 62,
                offset: 6
            }
        );
        let ip = Ipv6Packet::new_checked(&UDP6[14..]).unwrap();
        let r = Ipv6Repr::parse(&ip).unwrap();
        assert_eq!(
            (r.class_flow, r.payload_len, r.next_header, r.hop_limit),
            (0xabcde, 21, 0, 64)
        );
        let u = UdpRepr::parse(&UdpPacket::new_checked(&UDP6[62..]).unwrap()).unwrap();
        assert_eq!(
            u,
            UdpRepr {
                src_port: 0x1234,
                dst_port: 0x5678,
                len: 13
            }
        );
        let mut out = [0u8; 40];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
        assert_eq!(out[..], UDP6[14..54]);
        let mut out = [0u8; 8];
        u.emit(&mut UdpPacket::new_unchecked(&mut out[..]));
        assert_eq!(out[..], UDP6[62..70]);
        // A routing header is walked but makes the packet not plain; too
        // many extension headers, an unknown protocol, a jumbogram: refused.
        let mut routed = UDP6;
        routed[20] = EXT_ROUTING;
        assert!(!L4Frame::parse(&routed, true).unwrap().plain);
        assert_eq!(
            L4Frame::parse_tcp(&UDP6, true),
            Err(HeaderError::Unsupported)
        );
        let mut other = UDP6;
        other[54] = 58; // ICMPv6
        assert_eq!(L4Frame::parse(&other, true), Err(HeaderError::Unsupported));
        let mut loop_ = UDP6;
        loop_[54] = 0;
        loop_[55] = 0;
        assert!(L4Frame::parse(&loop_, true).is_err());
        let mut jumbo = UDP6;
        jumbo[18..20].copy_from_slice(&[0, 0]);
        assert_eq!(L4Frame::parse(&jumbo, true), Err(HeaderError::Unsupported));
    }

    #[test]
    fn short_and_bad_lengths_are_errors() {
        for n in 0..TCP4_VLAN.len() {
            assert!(L4Frame::parse(&TCP4_VLAN[..n], true).is_err(), "prefix {n}");
        }
        for n in 0..UDP6.len() {
            assert!(L4Frame::parse(&UDP6[..n], true).is_err(), "prefix {n}");
        }
        let ip = &TCP4_VLAN[18..];
        let mut bad = ip.to_vec();
        bad[0] = 0x44; // IHL 16 bytes
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).err(),
            Some(HeaderError::Malformed)
        );
        bad[0] = 0x46;
        bad[3] = 0x10; // total length below the header
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).err(),
            Some(HeaderError::Malformed)
        );
        let mut frag = TCP4_VLAN;
        frag[24] = 0x20; // MF
        assert_eq!(L4Frame::parse(&frag, true), Err(HeaderError::Unsupported));
        let mut doff = TCP4_VLAN;
        doff[54] = 0x40;
        assert_eq!(L4Frame::parse(&doff, true), Err(HeaderError::Malformed));
        // Unchecked views of nothing read zero and write nothing.
        let mut empty: [u8; 0] = [];
        let mut t = TcpPacket::new_unchecked(&mut empty[..]);
        t.set_seq_number(7);
        t.replace16(3, 9, false);
        assert_eq!(
            (t.seq_number(), t.header_len(), t.options()),
            (0, 0, &[][..])
        );
        let mut i = Ipv4Packet::new_unchecked(&mut empty[..]);
        i.fill_checksum();
        assert_eq!(i.total_len(), 0);
        assert_eq!(mss_option(&[2, 0, 5, 0xb4]), Err(HeaderError::Malformed));
        assert_eq!(mss_option(&[3, 9, 0, 0]), Err(HeaderError::Malformed));
        assert_eq!(mss_option(&[0, 2, 4, 5]), Ok(None));
        assert_eq!(mss_option(&[1, 2]), Err(HeaderError::Truncated));
    }

    #[test]
    fn replace16_updates_the_checksum_incrementally() {
        let f = &TCP4_VLAN;
        for at in [22usize, 23] {
            let mut seg = f[42..68].to_vec();
            let mut tcp = TcpPacket::new_unchecked(&mut seg[..]);
            tcp.replace16(at, 0x0400, false);
            assert_eq!(rd16(&seg, at), 0x0400);
            let sum = L4Frame::parse(f, true).unwrap().addr_sum(f) + 6 + 26 + ones_sum(&seg);
            assert_eq!(fold(sum), 0xffff, "at {at}");
        }
    }
}
