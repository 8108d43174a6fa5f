//! The overlay's local end: a TAP device or an AF_PACKET raw socket.
//!
//! Both move whole Ethernet frames (destination MAC, source MAC,
//! ethertype, payload; no packet-info header) through [`FrameDevice`].
//! An offloading TAP ([`Tap::create_offloaded`], [`FrameDevice::offload`])
//! puts a virtio-net header (`overlay::offload::VnetHdr`) before each
//! frame, both ways, and reads TCP super-frames of up to 64 KiB. Both are nonblocking and close-on-exec; reads that
//! would block return `Ok(None)`, `EINTR` is retried a bounded number of
//! times.
//!
//! - [`Tap`]: a non-persistent TAP created by the agent; closing the fd
//!   (dropping the value) removes the interface.
//! - [`RawSocket`]: `ETH_P_ALL` on an existing interface, promiscuous.
//!   Frames the host (or we) send out on it are not read back
//!   (`PACKET_IGNORE_OUTGOING`, or `sll_pkttype` on kernels before 4.20).
//!   AF_PACKET sees what the stack sees: a LAN host's TSO/GSO and the
//!   NIC's GRO hand it TCP super-frames of up to 64 KiB with the checksum
//!   unfinished (`CHECKSUM_PARTIAL`). [`RawSocket::open_offloaded`] asks
//!   for a virtio-net header before every frame (`PACKET_VNET_HDR`, host
//!   byte order, as `virtio_net_hdr_from_skb` writes it), the same header
//!   an offloading TAP uses, so the runtime segments and coalesces both
//!   alike; on send, a GSO header lets the kernel (or the NIC) segment
//!   again. A frame the header cannot describe (a GSO type it has no name
//!   for) makes `recvmsg` fail with `EINVAL` and is consumed: counted in
//!   [`RawSocket::unsegmentable`]. Without the header (old kernel,
//!   qemu-user), locally generated frames flagged `TP_STATUS_CSUMNOTREADY`
//!   (`PACKET_AUXDATA`) get their checksum finished by
//!   [`complete_l4_checksum`], since the far end sees a wire frame.
//!
//! Frames longer than the caller's buffer are dropped and counted
//! ([`RawSocket::truncated`], [`Tap::truncated`]).

use std::ffi::CString;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::offload::headers::L4Frame;
use super::offload::{complete_checksum, Endian, VNET_HDR_LEN};
use crate::runtime::netif;
use crate::sys::cmsg::{CmsgBuf, Control};
use crate::sys::ioctl::{self, IfRequest};
use crate::sys::packet::{self, TpacketStats};
use crate::sys::socket;
use crate::sys::sockopt::{getsockopt, set_socket_buffers, setsockopt};
use crate::sys::zeroed;

/// `EINTR` retries of one read or write.
const EINTR_RETRIES: usize = 8;
/// Frames skipped (outgoing, truncated) in one [`RawSocket::recv`] call.
const MAX_SKIPPED: usize = 64;
/// Kernel buffer asked for on a raw socket, each way: room for about 60
/// 64 KiB super-frames, so a LAN host's TSO bursts wait for the next
/// wakeup instead of being dropped (the default holds three).
const RAW_SOCKET_BUFFER_BYTES: libc::c_int = 4 << 20;

/// Buffer a [`FrameDevice`] with offloads needs for `recv`: virtio header
/// plus the largest super-frame (Ethernet header + 64 KiB IP packet).
pub const OFFLOAD_RECV_BUF: usize = VNET_HDR_LEN + 14 + 65535;

/// A source and sink of whole Ethernet frames.
///
/// When [`FrameDevice::offload`] is `Some(order)`, every frame `recv`
/// returns and every frame given to `send` starts with a
/// [`VNET_HDR_LEN`]-byte virtio-net header in byte order `order`, reads
/// may be TCP super-frames (give `recv` [`OFFLOAD_RECV_BUF`] bytes), and
/// writes may be super-frames with `NEEDS_CSUM` (see `overlay::offload`).
pub trait FrameDevice {
    /// The descriptor to poll for readability.
    fn fd(&self) -> RawFd;
    /// Reads one frame into `buf`; `Ok(None)` when none is waiting.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;
    /// Writes one frame. A full queue is an error of kind `WouldBlock`
    /// (the caller drops the frame).
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;
    /// The interface name.
    fn name(&self) -> &str;
    /// Whether frames carry a virtio-net header, and its byte order.
    fn offload(&self) -> Option<Endian> {
        None
    }
    /// What the device dropped or fixed on the way in.
    fn counters(&self) -> DeviceCounters {
        DeviceCounters::default()
    }
}

/// Frames a [`FrameDevice`] dropped or fixed while reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Longer than the read buffer.
    pub truncated: u64,
    /// A GSO type the virtio-net header cannot describe (raw socket).
    pub unsegmentable: u64,
    /// TCP/UDP checksums finished in software (raw socket without header).
    pub checksums_completed: u64,
    /// Dropped by the kernel on our full receive queue (raw socket).
    pub queue_drops: u64,
}

/// A locally administered unicast MAC derived from a public key, so a
/// restarted box keeps its MAC (all 32 key bytes are folded in).
pub fn stable_mac(public_key: &[u8; 32]) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (i, b) in public_key.iter().enumerate() {
        // Rotating each round spreads every key byte over the whole MAC.
        let slot = &mut mac[i % 6];
        *slot = slot.rotate_left(3) ^ b;
    }
    mac[0] = (mac[0] | 0x02) & !0x01;
    mac
}

// ---- TAP ----

/// A TAP interface owned by this process (removed when dropped).
#[derive(Debug)]
pub struct Tap {
    fd: OwnedFd,
    name: String,
    truncated: u64,
    /// Byte order of the virtio header, when opened with offloads.
    vnet: Option<Endian>,
}

/// `TUNSETOFFLOAD` flags: checksum offload and TCP segmentation both
/// families (the kernel then hands over TCP super-frames).
const TAP_OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

const TUN_PATH: &str = "/dev/net/tun";

impl Tap {
    /// Creates TAP `name` (`IFF_TAP | IFF_NO_PI`), nonblocking. A name
    /// with `%d` lets the kernel pick the number. If `/dev/net/tun` is
    /// missing, creates the node (char 10,200) first.
    pub fn create(name: &str) -> io::Result<Tap> {
        Self::create_with(name, false)
    }

    /// As [`Tap::create`], with offloads: `IFF_VNET_HDR`, a 10-byte header
    /// (`TUNSETVNETHDRSZ`), little-endian when `TUNSETVNETLE` exists (else
    /// the host's order), and `TUNSETOFFLOAD(CSUM | TSO4 | TSO6)`. If any of
    /// these fails, falls back to a plain TAP: check [`FrameDevice::offload`].
    pub fn create_offloaded(name: &str) -> io::Result<Tap> {
        match Self::create_with(name, true) {
            Ok(tap) => Ok(tap),
            Err(e) => {
                crate::info!("{name}: TAP offloads unavailable ({e}); plain TAP");
                Self::create_with(name, false)
            }
        }
    }

    fn create_with(name: &str, offload: bool) -> io::Result<Tap> {
        let mut req = if name.is_empty() {
            netif::ifreq("tap%d")?
        } else {
            netif::ifreq(name)?
        };
        let fd = open_tun()?;
        let vnet_flag = if offload { libc::IFF_VNET_HDR } else { 0 };
        req.set_flags((libc::IFF_TAP | libc::IFF_NO_PI | vnet_flag) as libc::c_short);
        if let Err(e) = ioctl::ifreq(fd.as_raw_fd(), IfRequest::TunSetIff, &mut req) {
            return Err(io::Error::new(
                e.kind(),
                format!("{name}: create TAP (TUNSETIFF): {e}"),
            ));
        }
        let name = req.name();
        let vnet = if offload {
            Some(
                enable_offloads(&fd)
                    .map_err(|e| io::Error::new(e.kind(), format!("{name}: offloads: {e}")))?,
            )
        } else {
            None
        };
        Ok(Tap {
            fd,
            name,
            truncated: 0,
            vnet,
        })
    }
}

/// Header size, byte order and offloads of a TAP opened with
/// `IFF_VNET_HDR`; returns the header's byte order.
fn enable_offloads(fd: &OwnedFd) -> io::Result<Endian> {
    let raw = fd.as_raw_fd();
    ioctl::tun_set_vnet_hdr_size(raw, VNET_HDR_LEN as libc::c_int)?;
    let endian = match ioctl::tun_set_vnet_le(raw, true) {
        Err(_) => Endian::NATIVE,
        Ok(()) => Endian::Little,
    };
    ioctl::tun_set_offload(raw, TAP_OFFLOADS)?;
    Ok(endian)
}

impl Tap {
    /// Frames dropped because they were longer than the receive buffer.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }
}

fn open_tun() -> io::Result<OwnedFd> {
    match open_rw(TUN_PATH) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Err(mk) = make_tun_node() {
                return Err(io::Error::new(
                    e.kind(),
                    format!("open {TUN_PATH}: {e}; creating the node (char 10,200) failed: {mk}; is the tun module loaded (kmod-tun)?"),
                ));
            }
            open_rw(TUN_PATH).map_err(|e2| {
                io::Error::new(
                    e2.kind(),
                    format!("open {TUN_PATH} (node just created, char 10,200): {e2}; is the tun module loaded (kmod-tun)?"),
                )
            })
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("open {TUN_PATH}: {e}"))),
        ok => ok,
    }
}

fn open_rw(path: &str) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    socket::open(&c, libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC)
}

fn make_tun_node() -> io::Result<()> {
    std::fs::create_dir_all("/dev/net")?;
    let c = CString::new(TUN_PATH).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    match socket::mknod_char(&c, 0o666, 10, 200) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// `read`/`recv` result → `Ok(None)` on EAGAIN, retry on EINTR.
fn retry_read(mut op: impl FnMut() -> io::Result<usize>) -> io::Result<Option<usize>> {
    for _ in 0..EINTR_RETRIES {
        let e = match op() {
            Ok(n) => return Ok(Some(n)),
            Err(e) => e,
        };
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(e),
        }
    }
    Ok(None)
}

fn retry_write(len: usize, mut op: impl FnMut() -> io::Result<usize>) -> io::Result<()> {
    for _ in 0..EINTR_RETRIES {
        let e = match op() {
            Ok(n) if n != len => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "short frame write",
                ))
            }
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Err(io::Error::from(io::ErrorKind::Interrupted))
}

impl FrameDevice for Tap {
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A frame longer than `buf` is dropped and counted
    /// ([`Tap::truncated`]); give at least MTU + 14 bytes (`limits::MAX_FRAME`),
    /// or [`OFFLOAD_RECV_BUF`] with offloads.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let fd = self.fd.as_raw_fd();
        // The kernel silently truncates a frame to the buffer and returns
        // the copied length: one spare byte tells a longer frame apart.
        let mut spare = [0u8; 1];
        for _ in 0..MAX_SKIPPED {
            let mut iov = [IoSliceMut::new(buf), IoSliceMut::new(&mut spare)];
            let Some(n) = retry_read(|| socket::readv(fd, &mut iov))? else {
                return Ok(None);
            };
            if n > buf.len() {
                self.truncated += 1;
                continue;
            }
            return Ok(Some(n));
        }
        Ok(None)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let fd = self.fd.as_raw_fd();
        retry_write(frame.len(), || socket::write(fd, frame))
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn offload(&self) -> Option<Endian> {
        self.vnet
    }

    fn counters(&self) -> DeviceCounters {
        DeviceCounters {
            truncated: self.truncated,
            ..DeviceCounters::default()
        }
    }
}

// ---- AF_PACKET ----

/// An AF_PACKET raw socket bound to an existing interface.
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
    name: String,
    /// The kernel lacks `PACKET_IGNORE_OUTGOING`; outgoing frames are
    /// skipped by `sll_pkttype` (always checked anyway).
    filter_outgoing: bool,
    truncated: u64,
    checksums_completed: u64,
    /// Frames carry a virtio-net header, in this byte order.
    vnet: Option<Endian>,
    /// Frames the kernel could not describe with a virtio-net header.
    unsegmentable: u64,
    /// Frames the kernel dropped because our receive queue was full
    /// (`PACKET_STATISTICS`, which resets on each read: summed here).
    queue_drops: std::cell::Cell<u64>,
}

fn eth_p_all_be() -> u16 {
    (libc::ETH_P_ALL as u16).to_be()
}

impl RawSocket {
    /// Opens `ETH_P_ALL` on `ifname`, promiscuous, not reading back
    /// outgoing frames, with `PACKET_AUXDATA` for checksum completion.
    pub fn open(ifname: &str) -> io::Result<RawSocket> {
        Self::open_with(ifname, false)
    }

    /// As [`RawSocket::open`], with a virtio-net header on every frame
    /// both ways (`PACKET_VNET_HDR`): reads may be super-frames (give
    /// `recv` [`OFFLOAD_RECV_BUF`] bytes) with partial checksums, writes
    /// may be GSO super-frames. Falls back to a plain socket when the
    /// kernel refuses the option: check [`FrameDevice::offload`].
    pub fn open_offloaded(ifname: &str) -> io::Result<RawSocket> {
        match Self::open_with(ifname, true) {
            Ok(raw) => Ok(raw),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                crate::info!("{ifname}: raw socket offloads unavailable ({e}); plain frames");
                Self::open_with(ifname, false)
            }
            Err(e) => Err(e),
        }
    }

    fn open_with(ifname: &str, offload: bool) -> io::Result<RawSocket> {
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("{ifname}: raw socket: {what}: {e}"))
        };
        let index = netif::if_index(ifname)?;
        let index_c = libc::c_int::try_from(index)
            .map_err(|_| ctx("index", io::ErrorKind::InvalidData.into()))?;
        // Protocol 0: receive nothing until bound to the interface, so no
        // frame of another interface slips into the queue.
        let fd = socket::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
        .map_err(|e| ctx("socket", e))?;
        let one: libc::c_int = 1;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &one)
            .map_err(|e| ctx("PACKET_AUXDATA", e))?;
        set_socket_buffers(&fd, RAW_SOCKET_BUFFER_BYTES);
        let filter_outgoing =
            match setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one) {
                Ok(()) => false,
                Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => true,
                Err(e) => return Err(ctx("PACKET_IGNORE_OUTGOING", e)),
            };
        let vnet = if offload {
            setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &one).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("{ifname}: PACKET_VNET_HDR: {e}"),
                )
            })?;
            // `vio_le()`: the legacy header is in the host's order.
            Some(Endian::NATIVE)
        } else {
            None
        };
        let mut mreq: libc::packet_mreq = zeroed();
        mreq.mr_ifindex = index_c;
        mreq.mr_type = libc::PACKET_MR_PROMISC as libc::c_ushort;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| ctx("promiscuous", e))?;
        packet::bind(fd.as_raw_fd(), index_c, eth_p_all_be()).map_err(|e| ctx("bind", e))?;
        Ok(RawSocket {
            fd,
            name: ifname.to_string(),
            filter_outgoing,
            truncated: 0,
            checksums_completed: 0,
            vnet,
            unsegmentable: 0,
            queue_drops: std::cell::Cell::new(0),
        })
    }

    /// Frames dropped by the kernel on a full receive queue, so far.
    pub fn queue_drops(&self) -> u64 {
        let stats: io::Result<TpacketStats> =
            getsockopt(&self.fd, libc::SOL_PACKET, libc::PACKET_STATISTICS);
        if let Ok(st) = stats {
            self.queue_drops
                .set(self.queue_drops.get() + u64::from(st.tp_drops));
        }
        self.queue_drops.get()
    }

    /// Frames dropped because the kernel could not give them a virtio-net
    /// header (a GSO type other than TCP or UDP segmentation).
    pub fn unsegmentable(&self) -> u64 {
        self.unsegmentable
    }

    /// Frames dropped because they were longer than the receive buffer.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    /// Frames whose TCP/UDP checksum was completed in software.
    pub fn checksums_completed(&self) -> u64 {
        self.checksums_completed
    }

    /// Whether outgoing frames are filtered here (kernel before 4.20).
    pub fn filters_outgoing(&self) -> bool {
        self.filter_outgoing
    }
}

/// Control buffer for one `tpacket_auxdata`.
type AuxBuf = CmsgBuf<64>;

impl FrameDevice for RawSocket {
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        for _ in 0..MAX_SKIPPED {
            let mut cbuf = AuxBuf::new();
            let fd = self.fd.as_raw_fd();
            let mut got_msg = None;
            let read = retry_read(|| {
                let r = packet::recvmsg(fd, buf, &mut cbuf, libc::MSG_TRUNC)?;
                got_msg = Some(r);
                Ok(r.len)
            });
            let got = match read {
                // The frame was consumed: its GSO type has no virtio name.
                Err(e) if self.vnet.is_some() && e.raw_os_error() == Some(libc::EINVAL) => {
                    self.unsegmentable += 1;
                    continue;
                }
                other => other?,
            };
            let (Some(n), Some(msg)) = (got, got_msg) else {
                return Ok(None);
            };
            if msg.from == libc::PACKET_OUTGOING {
                continue;
            }
            if n > buf.len() || msg.truncated {
                self.truncated += 1;
                continue;
            }
            // With a virtio header, a partial checksum stays partial: the
            // header says where it is, and the tunnel carries it so.
            if self.vnet.is_none() && csum_not_ready(cbuf.received(msg.control_len)) {
                if let Some(frame) = buf.get_mut(..n) {
                    if complete_l4_checksum(frame) {
                        self.checksums_completed += 1;
                    }
                }
            }
            return Ok(Some(n));
        }
        Ok(None)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let fd = self.fd.as_raw_fd();
        // The socket is bound: no address is needed.
        retry_write(frame.len(), || socket::send(fd, frame, libc::MSG_DONTWAIT))
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn offload(&self) -> Option<Endian> {
        self.vnet
    }

    fn counters(&self) -> DeviceCounters {
        DeviceCounters {
            truncated: self.truncated,
            unsegmentable: self.unsegmentable,
            checksums_completed: self.checksums_completed,
            queue_drops: self.queue_drops(),
        }
    }
}

/// Whether the `PACKET_AUXDATA` control message of `msg` flags an
/// unfinished checksum.
fn csum_not_ready(control: Control<'_>) -> bool {
    control
        .find::<libc::tpacket_auxdata>(libc::SOL_PACKET, libc::PACKET_AUXDATA, 8)
        .is_some_and(|aux| aux.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0)
}

// ---- checksum completion ----

/// Finishes the TCP or UDP checksum of a `CHECKSUM_PARTIAL` Ethernet
/// frame: the checksum field already holds the folded pseudo-header sum,
/// so the checksum is the complement of the sum over the whole L4 segment
/// (as the kernel's `skb_checksum_help`). The headers are found by the
/// offload path's one parser, [`L4Frame::parse`]: up to two VLAN tags,
/// IPv4 (unfragmented) and IPv6 (hop-by-hop, routing, destination
/// options, AH headers). Returns whether a checksum was written; anything
/// else (other protocols, fragments, malformed or short frames) is left
/// untouched.
pub fn complete_l4_checksum(frame: &mut [u8]) -> bool {
    match L4Frame::parse(frame, true) {
        Ok(t) => complete_checksum(frame, t.partial()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::offload::{fold, ones_sum};
    use crate::runtime::netif::tests::in_netns;
    use std::process::Command;
    use std::time::{Duration, Instant};

    #[test]
    fn stable_mac_is_local_unicast_and_stable() {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8 * 7 + 1;
        }
        let a = stable_mac(&k);
        assert_eq!(a, stable_mac(&k));
        assert_eq!(a[0] & 0x03, 0x02);
        k[31] ^= 1;
        assert_ne!(a, stable_mac(&k), "every key byte counts");
        assert_eq!(stable_mac(&[0xff; 32])[0] & 0x03, 0x02);
        assert_eq!(stable_mac(&[0; 32]), [2, 0, 0, 0, 0, 0]);
    }

    /// Ethernet + IPv4 + UDP 10.0.0.1:4660 → 10.0.0.2:22136, payload
    /// "hello", with its correct checksum (0x3f53, computed independently).
    const UDP4_FRAME: [u8; 47] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08,
        0x00, // eth
        0x45, 0x00, 0x00, 0x21, 0x00, 0x01, 0x40, 0x00, 0x40, 0x11, 0x26, 0xc9, // ipv4
        0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, //
        0x12, 0x34, 0x56, 0x78, 0x00, 0x0d, 0x3f, 0x53, // udp
        b'h', b'e', b'l', b'l', b'o',
    ];
    /// The same as the kernel hands it over: the field holds the folded
    /// pseudo-header sum (0x0a00+0x0001+0x0a00+0x0002+0x0011+0x000d = 0x1421).
    const UDP4_PARTIAL_CHECK: [u8; 2] = [0x14, 0x21];

    /// Ethernet + IPv6 (hop-by-hop header) + TCP fd00::1:1000 → fd00::2:80,
    /// SYN, payload "abc", correct checksum 0xcd3f (computed independently).
    const TCP6_FRAME: [u8; 14 + 40 + 8 + 20 + 3] = [
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd, // eth
        0x60, 0, 0, 0, 0x00, 0x1f, 0x00, 0x40, // ipv6: payload 31, next HBH
        0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
        0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, //
        0x06, 0x00, 0x01, 0x04, 0, 0, 0, 0, // HBH: next TCP, PadN
        0x03, 0xe8, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0x00, 0xcd, 0x3f, 0,
        0, // tcp
        b'a', b'b', b'c',
    ];
    /// Pseudo-header sum: 0xfd00*2 + 1 + 2 + 23 (len) + 6 folded = 0xfa21.
    const TCP6_PARTIAL_CHECK: [u8; 2] = [0xfa, 0x21];

    fn verify(frame: &[u8]) -> bool {
        // A correct segment sums, with its pseudo-header, to 0xffff.
        let t = L4Frame::parse(frame, true).unwrap();
        let (start, end) = (t.l4, t.end);
        let ip = 14;
        let (src_dst, proto) = if frame[12] == 0x08 {
            (&frame[ip + 12..ip + 20], frame[ip + 9])
        } else {
            (&frame[ip + 8..ip + 40], 6)
        };
        let sum = ones_sum(src_dst)
            + ones_sum(&frame[start..end])
            + u32::from(proto)
            + (end - start) as u32;
        fold(sum) == 0xffff
    }

    #[test]
    fn completes_udp4_checksum() {
        assert!(verify(&UDP4_FRAME));
        let mut f = UDP4_FRAME;
        f[40..42].copy_from_slice(&UDP4_PARTIAL_CHECK);
        assert!(complete_l4_checksum(&mut f));
        assert_eq!(f, UDP4_FRAME);
    }

    #[test]
    fn completes_tcp6_checksum_past_extension_header() {
        assert!(verify(&TCP6_FRAME));
        let mut f = TCP6_FRAME;
        f[78..80].copy_from_slice(&TCP6_PARTIAL_CHECK);
        assert!(complete_l4_checksum(&mut f));
        assert_eq!(f, TCP6_FRAME);
    }

    #[test]
    fn vlan_tagged_frame() {
        let mut tagged = Vec::from(&UDP4_FRAME[..12]);
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&UDP4_FRAME[12..]);
        let good = tagged.clone();
        tagged[44..46].copy_from_slice(&UDP4_PARTIAL_CHECK);
        assert!(complete_l4_checksum(&mut tagged));
        assert_eq!(tagged, good);
    }

    #[test]
    fn leaves_others_alone() {
        // Fragment, ARP, truncated, every prefix: untouched, no panic.
        let mut frag = UDP4_FRAME;
        frag[20] = 0x20; // MF
        assert!(!complete_l4_checksum(&mut frag));
        assert_eq!(frag, {
            let mut f = UDP4_FRAME;
            f[20] = 0x20;
            f
        });
        let mut arp = UDP4_FRAME;
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!complete_l4_checksum(&mut arp));
        for n in 0..TCP6_FRAME.len() {
            let mut f = TCP6_FRAME;
            assert!(!complete_l4_checksum(&mut f[..n]), "prefix {n}");
        }
        let mut garbage = [0xffu8; 120];
        for i in 0..garbage.len() {
            garbage[i] = (i as u8).wrapping_mul(37);
            let _ = complete_l4_checksum(&mut garbage);
        }
    }

    use crate::testutil::cidr;

    fn wait_readable(fd: RawFd, ms: i32) -> bool {
        matches!(crate::sys::socket::poll_readable(fd, ms), Ok(true))
    }

    /// Reads frames from `dev` for up to `ms` until `pred` matches one.
    fn read_until(
        dev: &mut dyn FrameDevice,
        ms: u64,
        pred: impl Fn(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_millis(ms);
        let mut buf = vec![0u8; 2048];
        while Instant::now() < deadline {
            if !wait_readable(dev.fd(), 100) {
                continue;
            }
            for _ in 0..64 {
                match dev.recv(&mut buf).unwrap() {
                    Some(n) if pred(&buf[..n]) => return Some(buf[..n].to_vec()),
                    Some(_) => {}
                    None => break,
                }
            }
        }
        None
    }

    #[test]
    fn tap_emits_arp_for_a_neighbour() {
        let Some(()) = in_netns("device::tap_emits_arp_for_a_neighbour", || {
            let mut tap = Tap::create("cltap%d").unwrap();
            assert!(tap.name().starts_with("cltap"), "{}", tap.name());
            let mac = stable_mac(&[9; 32]);
            netif::set_mtu(tap.name(), 1400).unwrap();
            netif::set_mac(tap.name(), mac).unwrap();
            netif::add_address(tap.name(), &cidr("10.66.0.1/24")).unwrap();
            netif::set_up(tap.name(), true).unwrap();
            // Writing a frame is accepted (a gratuitous ARP-ish broadcast).
            let mut frame = [0u8; 60];
            frame[..6].copy_from_slice(&[0xff; 6]);
            frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 9]);
            frame[12..14].copy_from_slice(&[0x88, 0xb5]);
            tap.send(&frame).unwrap();
            let udp = std::net::UdpSocket::bind("10.66.0.1:0").unwrap();
            udp.send_to(b"x", "10.66.0.2:9").unwrap();
            let arp = read_until(&mut tap, 3000, |f| {
                f.len() >= 42 && f[12..14] == [0x08, 0x06]
            })
            .expect("an ARP request on the TAP");
            assert_eq!(&arp[6..12], &mac);
            assert_eq!(&arp[38..42], &[10, 66, 0, 2], "target protocol address");
            // A frame longer than the buffer is dropped and counted, never
            // reported with a length beyond the buffer.
            udp.send_to(b"y", "10.66.0.3:9").unwrap();
            assert!(wait_readable(tap.fd(), 3000));
            let mut small = [0u8; 20];
            for _ in 0..8 {
                if let Some(n) = tap.recv(&mut small).unwrap() {
                    assert!(n <= small.len(), "{n}");
                }
            }
            assert!(tap.truncated() >= 1, "truncated {}", tap.truncated());
        }) else {
            return;
        };
    }

    /// The kernel takes our virtio headers: a TCP connection to a local
    /// listener is driven from the TAP side, its data written as one
    /// coalesced GSO super-frame with a partial checksum; and the kernel's
    /// own frames read back are valid once [`segment`] and
    /// `complete_checksum` have been applied.
    #[test]
    fn offloaded_tap_round_trips_with_the_kernel() {
        use crate::overlay::offload::{
            complete_checksum, segment, Coalescer, PartialCsum, VnetHdr,
        };
        use std::io::{Read, Write};
        let Some(()) = in_netns("device::offloaded_tap_round_trips_with_the_kernel", || {
            let mut tap = Tap::create_offloaded("cloff%d").unwrap();
            let Some(order) = tap.offload() else {
                crate::testutil::skip(
                    "device::offloaded_tap_round_trips_with_the_kernel",
                    "no TAP offloads",
                );
                return;
            };
            assert_eq!(order, Endian::Little, "TUNSETVNETLE exists since 3.19");
            let name = tap.name().to_string();
            netif::set_mtu(&name, 1400).unwrap();
            netif::add_address(&name, &cidr("10.68.0.1/24")).unwrap();
            netif::set_up(&name, true).unwrap();
            let mac = netif::mac(&name).unwrap();
            let peer_mac = [0x02, 0, 0, 0, 0, 0x42];
            assert!(ip(&[
                "neigh",
                "replace",
                "10.68.0.2",
                "lladdr",
                "02:00:00:00:00:42",
                "dev",
                &name
            ]));
            let listener = std::net::TcpListener::bind("10.68.0.1:5555").unwrap();

            // Frames we inject: Ethernet + IPv4 (DF) + TCP, checksums partial.
            let tcp_frame = |seq: u32, ack: u32, flags: u8, data: &[u8]| -> Vec<u8> {
                let mut f = mac.to_vec();
                f.extend_from_slice(&peer_mac);
                f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
                f.extend_from_slice(&((40 + data.len()) as u16).to_be_bytes());
                f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 10, 68, 0, 2, 10, 68, 0, 1]);
                let c = !fold(ones_sum(&f[14..34]));
                f[24..26].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&[0x9c, 0x40, 0x15, 0xb3]); // 40000 → 5555
                f.extend_from_slice(&seq.to_be_bytes());
                f.extend_from_slice(&ack.to_be_bytes());
                f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
                f.extend_from_slice(data);
                let pseudo = ones_sum(&f[26..34]) + 6 + (20 + data.len()) as u32;
                f[50..52].copy_from_slice(&fold(pseudo).to_be_bytes());
                f
            };
            let csum = PartialCsum {
                start: 34,
                offset: 16,
            };
            let partial = Some(csum);
            let mut c = Coalescer::new(order);
            let mut write = |tap: &mut Tap, frame: &[u8], p: Option<PartialCsum>| {
                let mut frames = Vec::new();
                c.push(frame, p, &mut |b| frames.push(b.to_vec()));
                c.flush(&mut |b| frames.push(b.to_vec()));
                for f in frames {
                    tap.send(&f).unwrap();
                }
            };
            // The handshake, from our side.
            let isn = 1000u32;
            let mut syn = tcp_frame(isn, 0, 0x02, &[]);
            assert!(complete_checksum(&mut syn, csum));
            let mut buf = vec![0u8; OFFLOAD_RECV_BUF];
            let mut server_isn = None;
            for _ in 0..30 {
                write(&mut tap, &syn, None);
                if let Some(f) = read_until(&mut tap, 100, |f| {
                    f.len() >= VNET_HDR_LEN + 54 && f[VNET_HDR_LEN + 47] == 0x12
                }) {
                    let f = &f[VNET_HDR_LEN..];
                    server_isn = Some(u32::from_be_bytes([f[38], f[39], f[40], f[41]]));
                    break;
                }
            }
            let server_isn = server_isn.expect("SYN-ACK");
            write(
                &mut tap,
                &tcp_frame(isn + 1, server_isn + 1, 0x10, &[]),
                partial,
            );
            // 20 segments of 1000 bytes, the last with PSH: one super-frame.
            let data: Vec<u8> = (0..20_000).map(|i| (i % 251) as u8).collect();
            let mut frames = Vec::new();
            for (i, chunk) in data.chunks(1000).enumerate() {
                let flags = if i == 19 { 0x18 } else { 0x10 };
                let f = tcp_frame(isn + 1 + (i * 1000) as u32, server_isn + 1, flags, chunk);
                c.push(&f, partial, &mut |b| frames.push(b.to_vec()));
            }
            c.flush(&mut |b| frames.push(b.to_vec()));
            assert_eq!(frames.len(), 1, "one super-frame");
            assert_eq!(VnetHdr::read(&frames[0], order).unwrap().gso_size, 1000);
            tap.send(&frames[0]).unwrap();
            listener.set_nonblocking(false).unwrap();
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut got = vec![0u8; data.len()];
            conn.read_exact(&mut got).unwrap();
            assert_eq!(got, data, "the kernel took the super-frame");

            // The kernel's answer: 30 KB in one go arrives as super-frame(s)
            // (as much as its initial window allows, since we never ACK);
            // segmented and completed, every segment is a valid TCP segment.
            conn.write_all(&data[..]).unwrap();
            conn.write_all(&data[..10_000]).unwrap();
            let mut seen = 0;
            let mut super_frames = 0;
            let deadline = Instant::now() + Duration::from_secs(3);
            while seen < 4_000 && Instant::now() < deadline {
                if !wait_readable(tap.fd(), 100) {
                    continue;
                }
                let Some(n) = tap.recv(&mut buf).unwrap() else {
                    continue;
                };
                let h = VnetHdr::read(&buf[..n], order).unwrap();
                if h.gso_type != 0 {
                    super_frames += 1;
                }
                let mut segs = Vec::new();
                let _ = segment(&h, &mut buf[VNET_HDR_LEN..n], 1414, &mut |s, p| {
                    segs.push((s.to_vec(), p));
                });
                for (mut s, p) in segs {
                    if s.len() < 54 || s[23] != 6 {
                        continue;
                    }
                    if let Some(p) = p {
                        assert!(complete_checksum(&mut s, p));
                    }
                    assert!(verify(&s), "bad segment checksum");
                    assert!(s.len() <= 1414);
                    seen += s.len() - 54;
                }
            }
            assert!(seen >= 4_000, "read {seen} bytes");
            assert!(super_frames >= 1, "no super-frame read");
            eprintln!("offloaded TAP: {super_frames} super-frame(s) read from the kernel");
        }) else {
            return;
        };
    }

    fn ip(args: &[&str]) -> bool {
        match Command::new("ip").args(args).status() {
            Ok(s) => s.success(),
            Err(e) => {
                crate::testutil::skip("ip", &format!("cannot run `ip`: {e}"));
                false
            }
        }
    }

    #[test]
    fn raw_socket_over_veth() {
        if netif::tests::skip_under_qemu(
            "device::raw_socket_over_veth",
            "qemu-user has no PACKET_AUXDATA socket option",
        ) {
            return;
        }
        let Some(()) = in_netns("device::raw_socket_over_veth", || {
            // Children forked from this thread inherit its namespace.
            if !ip(&[
                "link", "add", "clva", "type", "veth", "peer", "name", "clvb",
            ]) {
                crate::testutil::skip("device::raw_socket_over_veth", "cannot create veth");
                return;
            }
            netif::set_up("clva", true).unwrap();
            netif::set_up("clvb", true).unwrap();
            let mut a = RawSocket::open("clva").unwrap();
            let mut b = RawSocket::open("clvb").unwrap();
            assert_eq!(a.name(), "clva");

            // An injected frame comes out at the other end, not back here.
            let mut frame = [0u8; 64];
            frame[..6].copy_from_slice(&[0x02, 0xaa, 0, 0, 0, 1]); // not b's MAC: needs promisc
            frame[6..12].copy_from_slice(&[0x02, 0xbb, 0, 0, 0, 2]);
            frame[12..14].copy_from_slice(&[0x88, 0xb5]);
            frame[14..20].copy_from_slice(b"cloudy");
            // Until link watch activates the qdisc (asynchronously, after
            // `up`), frames are dropped: resend until one arrives.
            let mut got = None;
            for _ in 0..30 {
                a.send(&frame).unwrap();
                got = read_until(&mut b, 100, |f| f[12..14] == [0x88, 0xb5]);
                if got.is_some() {
                    break;
                }
            }
            let got = got.expect("frame on clvb");
            assert_eq!(&got[..], &frame[..]);
            assert!(
                read_until(&mut a, 300, |f| f[12..14] == [0x88, 0xb5]).is_none(),
                "own frame read back"
            );

            // A UDP packet the host sends out of clva leaves with a partial
            // checksum (veth offload); the raw socket on clvb completes it.
            netif::add_address("clva", &cidr("10.67.0.1/24")).unwrap();
            let peer_mac = netif::mac("clvb").unwrap();
            let lladdr = peer_mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            assert!(ip(&[
                "neigh",
                "replace",
                "10.67.0.2",
                "lladdr",
                &lladdr,
                "dev",
                "clva"
            ]));
            let udp = std::net::UdpSocket::bind("10.67.0.1:0").unwrap();
            let payload = b"checksum me, please: odd length";
            udp.send_to(payload, "10.67.0.2:5555").unwrap();
            let got = read_until(&mut b, 3000, |f| {
                f.len() > 42 && f[12..14] == [0x08, 0x00] && f[23] == 17
            })
            .expect("UDP frame on clvb");
            assert!(got.ends_with(payload));
            assert!(verify(&got), "checksum not valid: {got:02x?}");
            eprintln!(
                "raw_socket_over_veth: {} checksum(s) completed in software",
                b.checksums_completed()
            );
        }) else {
            return;
        };
    }
}
