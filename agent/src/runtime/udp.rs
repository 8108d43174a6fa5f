//! The tunnel's UDP sockets and batched datagram IO.
//!
//! - [`UdpSockets`]: one IPv4 and one IPv6 socket on the same port
//!   (`IPV6_V6ONLY` so both coexist). Either may be missing, not both;
//!   when only IPv6 binds, it is dual-stack and IPv4 peers are reached
//!   through IPv4-mapped addresses. Nonblocking, close-on-exec, large
//!   kernel buffers (best effort).
//! - [`RecvBatch`]: up to `limits::UDP_BATCH` datagrams per `recvmmsg`;
//!   with UDP GRO (`UDP_GRO`, Linux ≥ 5.0), [`GRO_BUFS`] buffers of
//!   [`GRO_BUF_LEN`] bytes, each holding up to [`GRO_MAX_SEGMENTS`]
//!   equal-sized datagrams the kernel coalesced; the caller still sees
//!   datagrams one by one ([`RecvBatch::get_mut`]).
//! - [`SendBatch`]: up to [`SEND_SLOTS`] queued datagrams, flushed with
//!   `sendmmsg` per address family. With UDP GSO (`UDP_SEGMENT`, Linux ≥
//!   4.18), consecutive datagrams to one destination of one size (the
//!   last may be shorter) leave as one message (up to [`GSO_MAX_SEGMENTS`]
//!   and [`GSO_MAX_BYTES`]) that the kernel (or NIC) cuts into the same
//!   datagrams: fewer trips through the stack, same packets on the wire.
//!
//! Offloads are probed at bind ([`UdpSockets::gso`], [`UdpSockets::gro`])
//! by a real exchange over loopback (so kernels without them, or an
//! emulator that mistranslates the control messages, e.g. qemu-user
//! across byte orders, fall back to plain datagrams). A GSO send the
//! kernel refuses later is resent plainly, and only what was refused
//! stops using GSO: `EMSGSIZE`/`EINVAL` (the segment is larger than the
//! route's MTU: GSO cannot fragment, a plain datagram is fragmented by the
//! kernel) caps GSO below that segment size; `EIO` and the like (no
//! checksum offload on the route) turn it off. Either lasts until
//! [`SendBatch::reprobe_gso`] (the runtime calls it every
//! `limits::GSO_REPROBE_INTERVAL`), so one oversized datagram never
//! disables GSO for good.
//!
//! Memory is fixed and allocated once: a receive batch owns `UDP_BATCH`
//! × `MAX_DATAGRAM` (64 KiB), or with GRO `GRO_BUFS` × `GRO_BUF_LEN`
//! (512 KiB); a send batch `SEND_SLOTS` × `MAX_DATAGRAM` (128 KiB).
//! Every loop is bounded. IPv4-mapped IPv6 source addresses are reported
//! as plain IPv4.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::limits::{MAX_DATAGRAM, UDP_BATCH};
use crate::sys::cmsg::{CmsgBuf, Control};
use crate::sys::mmsg::{
    recvmmsg, MsgControl, SendMmsg, MMSG_CONTROL, NOTHING_RECEIVED, UDP_GRO, UDP_SEGMENT,
};
use crate::sys::socket::{bind, local_addr, poll_readable, sendmsg, socket};
use crate::sys::sockopt::{set_socket_buffers, setsockopt};

/// Kernel socket buffer asked for, each direction (capped by the kernel
/// unless `SO_*BUFFORCE` is allowed, i.e. as root).
const SOCKET_BUFFER_BYTES: libc::c_int = 4 << 20;
/// Attempts to find an ephemeral port free in both families.
const EPHEMERAL_ATTEMPTS: usize = 8;
/// `sendmmsg` calls per family in one flush: each call either sends at
/// least one message or skips one, so `UDP_BATCH` calls suffice; EINTR
/// retries are on top.
const MAX_SEND_CALLS: usize = UDP_BATCH + 8;
/// `EINTR` retries of one `recvmmsg`.
const EINTR_RETRIES: usize = 8;

/// Datagram slots of a [`SendBatch`] (a 64 KiB TSO super-frame is ~45
/// datagrams: it fits one GSO message).
pub const SEND_SLOTS: usize = 64;
/// Passes over one flush's datagrams: each GSO refusal lowers the limit
/// and resends the rest; the last pass is plain.
const GSO_ROUNDS: usize = 3;
/// Datagrams in one GSO message (the kernel's `UDP_MAX_SEGMENTS`).
pub const GSO_MAX_SEGMENTS: usize = 64;
/// Payload bytes of one GSO message (IPv4's 65535 − 20 − 8, with margin).
pub const GSO_MAX_BYTES: usize = 65000;
/// Receive buffers of a GRO [`RecvBatch`].
pub const GRO_BUFS: usize = 8;
/// Bytes of one GRO receive buffer (the largest UDP payload fits).
pub const GRO_BUF_LEN: usize = 65536;
/// Datagrams taken from one coalesced buffer (the kernel's
/// `UDP_GRO_CNT_MAX`); any beyond are dropped and counted.
pub const GRO_MAX_SEGMENTS: usize = 64;

/// The tunnel's bound sockets.
#[derive(Debug)]
pub struct UdpSockets {
    v4: Option<OwnedFd>,
    v6: Option<OwnedFd>,
    port: u16,
    gso: bool,
    gro: bool,
}

impl UdpSockets {
    /// Binds `0.0.0.0:port` and `[::]:port`. Port 0 picks one ephemeral
    /// port for both (see [`UdpSockets::local_port`]). Fails only when
    /// neither family binds.
    pub fn bind(port: u16) -> io::Result<UdpSockets> {
        let mut last = None;
        let attempts = if port == 0 { EPHEMERAL_ATTEMPTS } else { 1 };
        for _ in 0..attempts {
            match Self::bind_once(port) {
                Ok(mut s) => {
                    s.enable_offloads(probe_offloads());
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("udp bind")))
    }

    /// As [`UdpSockets::bind`], without probing: no GSO, no GRO.
    pub fn bind_plain(port: u16) -> io::Result<UdpSockets> {
        let mut last = None;
        let attempts = if port == 0 { EPHEMERAL_ATTEMPTS } else { 1 };
        for _ in 0..attempts {
            match Self::bind_once(port) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("udp bind")))
    }

    fn enable_offloads(&mut self, (gso, gro): (bool, bool)) {
        self.gso = gso;
        self.gro = gro
            && [&self.v4, &self.v6]
                .into_iter()
                .flatten()
                .all(|fd| setsockopt_int(fd, libc::SOL_UDP, UDP_GRO, 1).is_ok());
        if gro && !self.gro {
            for fd in [&self.v4, &self.v6].into_iter().flatten() {
                let _ = setsockopt_int(fd, libc::SOL_UDP, UDP_GRO, 0);
            }
        }
    }

    /// Whether UDP GSO works here (use [`SendBatch::set_gso`]).
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// Whether GRO is on: receive with [`RecvBatch::for_sockets`].
    pub fn gro(&self) -> bool {
        self.gro
    }

    fn bind_once(port: u16) -> io::Result<UdpSockets> {
        let v4 = bind_socket(
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)),
            true,
        );
        let (port6, v6only) = match &v4 {
            Ok(fd) => (local_port(fd)?, true),
            Err(_) => (port, false),
        };
        let v6 = bind_socket(
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port6, 0, 0)),
            v6only,
        );
        match (v4, v6) {
            (Ok(v4), Ok(v6)) => Ok(UdpSockets {
                v4: Some(v4),
                v6: Some(v6),
                port: port6,
                gso: false,
                gro: false,
            }),
            // An ephemeral port free in v4 but taken in v6: try another.
            (Ok(_), Err(e)) if port == 0 && e.kind() == io::ErrorKind::AddrInUse => Err(e),
            (Ok(v4), Err(_)) => Ok(UdpSockets {
                v4: Some(v4),
                v6: None,
                port: port6,
                gso: false,
                gro: false,
            }),
            (Err(_), Ok(v6)) => {
                let port = local_port(&v6)?;
                Ok(UdpSockets {
                    v4: None,
                    v6: Some(v6),
                    port,
                    gso: false,
                    gro: false,
                })
            }
            (Err(e4), Err(e6)) => Err(io::Error::new(
                e4.kind(),
                format!("udp bind port {port}: IPv4: {e4}; IPv6: {e6}"),
            )),
        }
    }

    /// The bound port (the same for both families).
    pub fn local_port(&self) -> u16 {
        self.port
    }

    /// The IPv4 socket, if bound.
    pub fn v4_fd(&self) -> Option<RawFd> {
        self.v4.as_ref().map(|f| f.as_raw_fd())
    }

    /// The IPv6 socket, if bound.
    pub fn v6_fd(&self) -> Option<RawFd> {
        self.v6.as_ref().map(|f| f.as_raw_fd())
    }

    /// The descriptors to poll (one or two).
    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.v4_fd().into_iter().chain(self.v6_fd())
    }
}

fn bind_socket(addr: SocketAddr, v6only: bool) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let fd = socket(
        domain,
        libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0,
    )?;
    if addr.is_ipv6() {
        setsockopt_int(
            &fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            libc::c_int::from(v6only),
        )?;
    }
    set_socket_buffers(&fd, SOCKET_BUFFER_BYTES);
    if let Err(e) = bind(fd.as_raw_fd(), addr) {
        return Err(io::Error::new(e.kind(), format!("bind {addr}: {e}")));
    }
    Ok(fd)
}

fn local_port(fd: &OwnedFd) -> io::Result<u16> {
    local_addr(fd.as_raw_fd()).map(|a| a.port())
}

fn setsockopt_int(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    setsockopt(fd, level, name, &value)
}

const UNSPECIFIED: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// Fixed buffers for one `recvmmsg`, and the datagrams found in them.
pub struct RecvBatch {
    /// `nbufs` buffers of `buf_len` bytes, back to back.
    bufs: Box<[u8]>,
    buf_len: usize,
    nbufs: usize,
    /// Source of each buffer.
    from: [SocketAddr; UDP_BATCH],
    /// Datagrams: (buffer, start, length); capacity fixed at creation.
    segs: Vec<(usize, usize, usize)>,
    /// The last `recvmmsg` filled every buffer: more may be waiting.
    full: bool,
    gro_dropped: u64,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// `UDP_BATCH` buffers of `MAX_DATAGRAM`: for sockets without GRO.
    pub fn new() -> RecvBatch {
        Self::with_layout(UDP_BATCH, MAX_DATAGRAM, 1)
    }

    /// [`GRO_BUFS`] buffers of [`GRO_BUF_LEN`]: for sockets with GRO.
    pub fn new_gro() -> RecvBatch {
        Self::with_layout(GRO_BUFS, GRO_BUF_LEN, GRO_MAX_SEGMENTS)
    }

    /// The layout `socks` need ([`UdpSockets::gro`]).
    pub fn for_sockets(socks: &UdpSockets) -> RecvBatch {
        if socks.gro() {
            Self::new_gro()
        } else {
            Self::new()
        }
    }

    fn with_layout(nbufs: usize, buf_len: usize, segs_per_buf: usize) -> RecvBatch {
        let nbufs = nbufs.min(UDP_BATCH);
        RecvBatch {
            bufs: vec![0u8; nbufs * buf_len].into_boxed_slice(),
            buf_len,
            nbufs,
            from: [UNSPECIFIED; UDP_BATCH],
            segs: Vec::with_capacity(nbufs * segs_per_buf),
            full: false,
            gro_dropped: 0,
        }
    }

    /// Whether this batch takes GRO-coalesced buffers.
    pub fn is_gro(&self) -> bool {
        self.buf_len > MAX_DATAGRAM
    }

    /// Receives with one nonblocking `recvmmsg` from `sock_fd`; returns how
    /// many datagrams (0 when none waits). A coalesced buffer (its
    /// `UDP_GRO` control message gives the segment size) counts as its
    /// datagrams. A datagram longer than `MAX_DATAGRAM` is returned empty
    /// (the engine drops it as malformed); one from an unknown address
    /// family has source `0.0.0.0:0`.
    pub fn recv(&mut self, sock_fd: RawFd) -> io::Result<usize> {
        self.segs.clear();
        self.full = false;
        let n_bufs = self.nbufs;
        let mut ctrl = [MsgControl::new(); UDP_BATCH];
        let mut got = [NOTHING_RECEIVED; UDP_BATCH];
        // `bufs` holds exactly `nbufs` (≤ UDP_BATCH) buffers of `buf_len`.
        let mut n = Err(io::ErrorKind::Interrupted.into());
        for _ in 0..EINTR_RETRIES {
            n = recvmmsg(sock_fd, &mut self.bufs, self.buf_len, &mut ctrl, &mut got);
            if !matches!(&n, Err(e) if e.kind() == io::ErrorKind::Interrupted) {
                break;
            }
        }
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                return match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                    _ => Err(e),
                }
            }
        };
        let n = n.min(n_bufs);
        self.full = n == n_bufs;
        for (i, (m, c)) in got.iter().zip(&ctrl).enumerate().take(n) {
            let len = m.len.min(self.buf_len);
            self.from[i] = m.from.unwrap_or(UNSPECIFIED);
            if m.truncated {
                self.push_seg(i, 0, 0);
                continue;
            }
            let seg = gro_segment_size(c.received(m.control_len)).filter(|&s| s > 0 && s < len);
            let Some(seg) = seg else {
                self.push_seg(i, 0, if len > MAX_DATAGRAM { 0 } else { len });
                continue;
            };
            let mut at = 0;
            for _ in 0..GRO_MAX_SEGMENTS {
                if at >= len {
                    break;
                }
                let l = seg.min(len - at);
                self.push_seg(i, at, if l > MAX_DATAGRAM { 0 } else { l });
                at += l;
            }
            if at < len {
                self.gro_dropped += (len - at).div_ceil(seg) as u64;
            }
        }
        Ok(self.segs.len())
    }

    fn push_seg(&mut self, buf: usize, start: usize, len: usize) {
        // Capacity is nbufs × segments per buffer: never grows.
        if self.segs.len() < self.segs.capacity() {
            self.segs.push((buf, start, len));
        } else {
            self.gro_dropped += 1;
        }
    }

    /// Datagrams held from the last [`RecvBatch::recv`].
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Whether the last `recvmmsg` filled every buffer (read again soon).
    pub fn was_full(&self) -> bool {
        self.full
    }

    /// Datagrams dropped beyond [`GRO_MAX_SEGMENTS`] per buffer.
    pub fn gro_dropped(&self) -> u64 {
        self.gro_dropped
    }

    /// Source and bytes of datagram `i` (mutable: decryption is in place).
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn get_mut(&mut self, i: usize) -> (SocketAddr, &mut [u8]) {
        assert!(
            i < self.segs.len(),
            "RecvBatch index {i} out of {}",
            self.segs.len()
        );
        let (b, start, len) = self.segs[i];
        let at = b * self.buf_len + start;
        (self.from[b], &mut self.bufs[at..at + len])
    }
}

/// The `UDP_GRO` segment size in a received message's control data.
fn gro_segment_size(control: Control<'_>) -> Option<usize> {
    let v: libc::c_int = control.find(libc::SOL_UDP, UDP_GRO, 4)?;
    usize::try_from(v).ok()
}

/// Probes UDP GSO and GRO with a real exchange over loopback: three
/// segments (100, 100, 50 bytes) sent as one GSO message must arrive as
/// those three datagrams, or as one 250-byte buffer announcing segment
/// size 100. Returns (gso, gro); anything unexpected turns both off.
fn probe_offloads() -> (bool, bool) {
    for lo in [
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
    ] {
        let (Ok(rx), Ok(tx)) = (bind_socket(lo, true), bind_socket(lo, true)) else {
            continue;
        };
        let Ok(port) = local_port(&rx) else { continue };
        let gro_set = setsockopt_int(&rx, libc::SOL_UDP, UDP_GRO, 1).is_ok();
        let to = SocketAddr::new(lo.ip(), port);
        let mut payload = [0u8; 250];
        for (i, b) in payload.iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut c = CmsgBuf::<MMSG_CONTROL>::new();
        let clen = c.write(libc::SOL_UDP, UDP_SEGMENT, 100u16).unwrap_or(0);
        let rc = sendmsg(tx.as_raw_fd(), to, &payload, &c, clen, libc::MSG_DONTWAIT);
        if !matches!(rc, Ok(250)) {
            return (false, false);
        }
        let mut batch = RecvBatch::new_gro();
        let mut got: Vec<usize> = Vec::new();
        let mut coalesced = false;
        for _ in 0..10 {
            if got.iter().sum::<usize>() >= 250 {
                break;
            }
            if !matches!(poll_readable(rx.as_raw_fd(), 50), Ok(true)) {
                continue;
            }
            let Ok(n) = batch.recv(rx.as_raw_fd()) else {
                break;
            };
            let bufs: std::collections::BTreeSet<usize> = batch.segs.iter().map(|s| s.0).collect();
            coalesced |= bufs.len() < n;
            for i in 0..n {
                let (_, b) = batch.get_mut(i);
                let ok = b
                    .iter()
                    .enumerate()
                    .all(|(j, &v)| v == (got.iter().sum::<usize>() + j) as u8);
                got.push(if ok { b.len() } else { 0 });
            }
        }
        let gso = got == [100, 100, 50];
        return (gso, gso && gro_set && coalesced);
    }
    (false, false)
}

/// What a [`SendBatch::flush`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Datagrams sent (a GSO message counts as its segments).
    pub sent: usize,
    /// Dropped: socket full, per-message error, no socket of the family,
    /// or oversized at `push`.
    pub dropped: usize,
    /// The last errno seen, for a log line.
    pub last_error: Option<i32>,
    /// The kernel refused a GSO message of this segment size with this
    /// errno: its datagrams were resent plainly, and GSO is now limited
    /// ([`SendBatch::gso_limit`]) until [`SendBatch::reprobe_gso`].
    pub gso_refused: Option<(usize, i32)>,
}

/// Fixed slots of datagrams waiting for one `sendmmsg` per family.
pub struct SendBatch {
    bufs: Box<[[u8; MAX_DATAGRAM]]>,
    lens: [usize; SEND_SLOTS],
    to: [SocketAddr; SEND_SLOTS],
    count: usize,
    /// Oversized datagrams refused by `push` since the last flush.
    oversized: usize,
    gso: bool,
    /// Largest datagram sent in a GSO message: below the last segment
    /// size the kernel refused (0: none), `usize::MAX` when nothing was.
    gso_limit: usize,
}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl SendBatch {
    /// An empty batch, GSO off.
    pub fn new() -> SendBatch {
        SendBatch {
            bufs: vec![[0u8; MAX_DATAGRAM]; SEND_SLOTS].into_boxed_slice(),
            lens: [0; SEND_SLOTS],
            to: [UNSPECIFIED; SEND_SLOTS],
            count: 0,
            oversized: 0,
            gso: false,
            gso_limit: usize::MAX,
        }
    }

    /// Turns GSO on or off (on only where [`UdpSockets::gso`] said so),
    /// forgetting any refusal.
    pub fn set_gso(&mut self, on: bool) {
        self.gso = on;
        self.gso_limit = usize::MAX;
    }

    pub fn gso(&self) -> bool {
        self.gso
    }

    /// Largest datagram that may leave in a GSO message now.
    pub fn gso_limit(&self) -> usize {
        if self.gso {
            self.gso_limit
        } else {
            0
        }
    }

    /// Forgets what the kernel refused, so GSO is tried again for every
    /// size (routes and MTUs change). Returns whether anything was limited.
    pub fn reprobe_gso(&mut self) -> bool {
        let limited = self.gso_limit != usize::MAX;
        self.gso_limit = usize::MAX;
        limited
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Copies `bytes` for `to` into a free slot. `false` when full: flush,
    /// then push again. A datagram longer than `MAX_DATAGRAM` is dropped
    /// (counted in the next flush) and `true` returned.
    pub fn push(&mut self, to: SocketAddr, bytes: &[u8]) -> bool {
        if bytes.len() > MAX_DATAGRAM {
            self.oversized += 1;
            return true;
        }
        if self.count >= SEND_SLOTS {
            return false;
        }
        let Some(slot) = self.bufs.get_mut(self.count) else {
            return false;
        };
        slot[..bytes.len()].copy_from_slice(bytes);
        self.lens[self.count] = bytes.len();
        self.to[self.count] = to;
        self.count += 1;
        true
    }

    /// Sends everything queued: IPv4 destinations on the IPv4 socket (or
    /// mapped on a dual-stack IPv6 one), IPv6 on the IPv6 socket. Never
    /// blocks; a full socket drops the rest of its family, a per-message
    /// error (unreachable, too big, ...) drops that message only. Empties
    /// the batch.
    pub fn flush(&mut self, socks: &UdpSockets) -> FlushStats {
        let mut stats = FlushStats {
            dropped: mem::take(&mut self.oversized),
            ..FlushStats::default()
        };
        let count = self.count.min(SEND_SLOTS);
        self.count = 0;
        if count == 0 {
            return stats;
        }
        // Route each message: (socket, destination as the socket needs it).
        let mut v4: [(usize, SocketAddr); SEND_SLOTS] = [(0, UNSPECIFIED); SEND_SLOTS];
        let mut v6: [(usize, SocketAddr); SEND_SLOTS] = [(0, UNSPECIFIED); SEND_SLOTS];
        let (mut n4, mut n6) = (0, 0);
        for (i, to) in self.to.iter().take(count).enumerate() {
            let to = SocketAddr::new(to.ip().to_canonical(), to.port());
            match (to, socks.v4.is_some(), socks.v6.is_some()) {
                (SocketAddr::V4(_), true, _) => {
                    v4[n4] = (i, to);
                    n4 += 1;
                }
                (SocketAddr::V4(a), false, true) => {
                    let mapped = SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0);
                    v6[n6] = (i, SocketAddr::V6(mapped));
                    n6 += 1;
                }
                (SocketAddr::V6(_), _, true) => {
                    v6[n6] = (i, to);
                    n6 += 1;
                }
                _ => {
                    stats.dropped += 1;
                    stats.last_error = Some(libc::EAFNOSUPPORT);
                }
            }
        }
        if let Some(fd) = socks.v4_fd() {
            self.send_group(fd, &v4[..n4], &mut stats);
        }
        if let Some(fd) = socks.v6_fd() {
            self.send_group(fd, &v6[..n6], &mut stats);
        }
        stats
    }

    /// Sends `group` (slots with their destinations); with GSO where
    /// allowed, and again from the first message the kernel refused as
    /// GSO, with GSO limited below the refused size (the last round plain).
    fn send_group(&mut self, fd: RawFd, group: &[(usize, SocketAddr)], stats: &mut FlushStats) {
        let mut from = 0;
        for round in 0..GSO_ROUNDS {
            let plain = round + 1 == GSO_ROUNDS;
            match self.send_round(fd, group.get(from..).unwrap_or(&[]), plain, stats) {
                Some((rest, seg, errno)) => {
                    // Too large for the route: smaller segments may pass.
                    let size_refused = errno == libc::EMSGSIZE || errno == libc::EINVAL;
                    let limit = if size_refused {
                        seg.saturating_sub(1)
                    } else {
                        0
                    };
                    self.gso_limit = self.gso_limit.min(limit);
                    stats.gso_refused = Some((seg, errno));
                    from += rest;
                }
                None => return,
            }
        }
    }

    /// One pass over `group` (`plain`: no GSO at all). Returns, when a
    /// GSO message was refused in a way plain datagrams may not be, the
    /// index in `group` to resend from, the segment size and the errno.
    fn send_round(
        &mut self,
        fd: RawFd,
        group: &[(usize, SocketAddr)],
        plain: bool,
        stats: &mut FlushStats,
    ) -> Option<(usize, usize, i32)> {
        if group.is_empty() {
            return None;
        }
        let mut batch = SendMmsg::<SEND_SLOTS>::new();
        // Per message: first group index, datagrams, segment size (0:
        // plain).
        let mut shape: [(usize, usize, usize); SEND_SLOTS] = [(0, 0, 0); SEND_SLOTS];
        let mut gi = 0;
        let group = &group[..group.len().min(SEND_SLOTS)];
        while gi < group.len() {
            let (slot, to) = group[gi];
            let (Some(buf), Some(&len)) = (self.bufs.get(slot), self.lens.get(slot)) else {
                gi += 1;
                continue;
            };
            batch.push_segment(&buf[..len.min(MAX_DATAGRAM)]);
            let start = gi;
            gi += 1;
            let (mut segs, mut bytes) = (1, len);
            // Extend a GSO run: same destination, same size (the last may
            // be shorter, then the run ends).
            let gso = self.gso && !plain && len <= self.gso_limit;
            while gso && len > 0 && gi < group.len() && segs < GSO_MAX_SEGMENTS {
                let (s2, to2) = group[gi];
                let Some(&l2) = self.lens.get(s2) else { break };
                if to2 != to || l2 > len || l2 == 0 || bytes + l2 > GSO_MAX_BYTES {
                    break;
                }
                let Some(b2) = self.bufs.get(s2).and_then(|b| b.get(..l2)) else {
                    break;
                };
                batch.push_segment(b2);
                gi += 1;
                segs += 1;
                bytes += l2;
                if l2 < len {
                    break;
                }
            }
            // len ≤ MAX_DATAGRAM (2048): fits u16.
            let seg = if segs > 1 { Some(len as u16) } else { None };
            shape[batch.len()] = (start, segs, if segs > 1 { len } else { 0 });
            batch.end_message(to, seg);
        }
        let nmsg = batch.len();
        let mut start = 0;
        let mut interrupts = 0;
        for _ in 0..MAX_SEND_CALLS {
            if start >= nmsg {
                break;
            }
            let rc = batch.send(fd, start);
            if let Ok(sent @ 1..) = rc {
                let sent = sent.min(nmsg - start);
                stats.sent += shape[start..start + sent]
                    .iter()
                    .map(|s| s.1)
                    .sum::<usize>();
                start += sent;
                continue;
            }
            let errno = match rc {
                Ok(_) => 0,
                Err(e) => e.raw_os_error().unwrap_or(0),
            };
            if errno == libc::EINTR && interrupts < EINTR_RETRIES {
                interrupts += 1;
                continue;
            }
            if errno != 0 {
                stats.last_error = Some(errno);
            }
            let gso_refused = matches!(
                errno,
                libc::EIO | libc::EINVAL | libc::EMSGSIZE | libc::ENOPROTOOPT | libc::EOPNOTSUPP
            );
            if shape[start].2 > 0 && gso_refused {
                return Some((shape[start].0, shape[start].2, errno));
            }
            if errno == libc::EAGAIN || errno == libc::EWOULDBLOCK || errno == libc::ENOBUFS {
                break; // socket full: the rest is dropped below
            }
            // The first message failed on its own (unreachable, too big,
            // ...): skip it and go on with the next.
            stats.dropped += shape[start].1;
            start += 1;
        }
        stats.dropped += shape[start.min(nmsg)..nmsg]
            .iter()
            .map(|s| s.1)
            .sum::<usize>();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sys::addr::{from_raw, to_raw};

    fn wait_readable(fd: RawFd, ms: i32) -> bool {
        matches!(poll_readable(fd, ms), Ok(true))
    }

    fn payload(i: usize) -> Vec<u8> {
        let len = 1 + (i * 97) % MAX_DATAGRAM.min(1400);
        (0..len).map(|j| (i * 31 + j) as u8).collect()
    }

    /// Sends 40 datagrams (more than one batch) from `a` to `b` at `dst`,
    /// receives them all on `rfd`, checks contents and source.
    fn exchange(a: &UdpSockets, src_ip: IpAddr, dst: SocketAddr, rfd: RawFd) {
        let mut out = SendBatch::new();
        let mut sent = 0;
        for i in 0..40 {
            let p = payload(i);
            if !out.push(dst, &p) {
                let st = out.flush(a);
                assert_eq!((st.sent, st.dropped), (SEND_SLOTS, 0), "{st:?}");
                sent += st.sent;
                assert!(out.push(dst, &p));
            }
        }
        let st = out.flush(a);
        sent += st.sent;
        assert_eq!((sent, st.dropped), (40, 0), "{st:?}");

        let mut inb = RecvBatch::new();
        let mut got = Vec::new();
        let mut batches = 0;
        for _ in 0..100 {
            if got.len() == 40 || !wait_readable(rfd, 1000) {
                break;
            }
            let n = inb.recv(rfd).unwrap();
            assert!(n <= UDP_BATCH);
            batches += usize::from(n > 0);
            for i in 0..n {
                let (from, bytes) = inb.get_mut(i);
                assert_eq!(from, SocketAddr::new(src_ip, a.local_port()));
                got.push(bytes.to_vec());
            }
        }
        assert_eq!(got.len(), 40);
        assert!(
            batches >= 2,
            "40 datagrams need at least two recvmmsg calls"
        );
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g, &payload(i), "datagram {i}");
        }
        assert_eq!(inb.recv(rfd).unwrap(), 0);
    }

    #[test]
    fn loopback_v4_batches() {
        let a = UdpSockets::bind(0).unwrap();
        let b = UdpSockets::bind(0).unwrap();
        assert_ne!(a.local_port(), 0);
        assert!(a.fds().count() >= 1);
        let rfd = b.v4_fd().expect("IPv4 socket");
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        exchange(&a, lo, SocketAddr::new(lo, b.local_port()), rfd);
    }

    #[test]
    fn loopback_v6_batches() {
        let (a, b) = (UdpSockets::bind(0).unwrap(), UdpSockets::bind(0).unwrap());
        let (Some(_), Some(rfd)) = (a.v6_fd(), b.v6_fd()) else {
            crate::testutil::skip("udp::loopback_v6_batches", "no IPv6 socket on this host");
            return;
        };
        if std::net::UdpSocket::bind("[::1]:0").is_err() {
            crate::testutil::skip("udp::loopback_v6_batches", "::1 unavailable");
            return;
        }
        let lo = IpAddr::V6(Ipv6Addr::LOCALHOST);
        exchange(&a, lo, SocketAddr::new(lo, b.local_port()), rfd);
        // Both sockets share the port.
        assert_eq!(local_port(a.v6.as_ref().unwrap()).unwrap(), a.local_port());
        assert_eq!(local_port(a.v4.as_ref().unwrap()).unwrap(), a.local_port());
    }

    #[test]
    fn mapped_source_becomes_v4() {
        // A dual-stack socket sees IPv4 senders as ::ffff:a.b.c.d.
        let dual = bind_socket("[::]:0".parse().unwrap(), false).unwrap();
        let port = local_port(&dual).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"hi", ("127.0.0.1", port)).unwrap();
        assert!(wait_readable(dual.as_raw_fd(), 2000));
        let mut inb = RecvBatch::default();
        assert_eq!(inb.recv(dual.as_raw_fd()).unwrap(), 1);
        let (from, bytes) = inb.get_mut(0);
        assert_eq!(from, tx.local_addr().unwrap());
        assert_eq!(bytes, b"hi");
    }

    #[test]
    fn unreachable_destinations_do_not_wedge_the_batch() {
        let a = UdpSockets::bind(0).unwrap();
        let b = UdpSockets::bind(0).unwrap();
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed); // ICMP port unreachable from now on
        let good = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), b.local_port());
        // 0.0.0.0:0 and port 0 are refused by the kernel per message;
        // 255.255.255.255 without SO_BROADCAST is EACCES.
        let bad: [SocketAddr; 3] = [
            "127.0.0.1:0".parse().unwrap(),
            "255.255.255.255:9".parse().unwrap(),
            closed_addr,
        ];
        let mut out = SendBatch::new();
        for (i, &to) in bad.iter().enumerate() {
            for round in 0..2 {
                assert!(out.push(to, b"lost"));
                assert!(out.push(good, &[i as u8, round]));
            }
        }
        let st = out.flush(&a);
        assert!(out.is_empty());
        // Port-unreachable sends succeed locally (the ICMP is ignored on an
        // unconnected socket); the others fail per message.
        assert_eq!(st.sent + st.dropped, 12, "{st:?}");
        assert!(st.sent >= 6 + 2 && st.dropped >= 2, "{st:?}");
        let rfd = b.v4_fd().unwrap();
        let mut inb = RecvBatch::new();
        let mut got = 0;
        for _ in 0..20 {
            if got == 6 || !wait_readable(rfd, 1000) {
                break;
            }
            got += inb.recv(rfd).unwrap();
        }
        assert_eq!(got, 6, "every good datagram arrives");
        // A second flush after the port-unreachable ICMPs still works.
        assert!(out.push(closed_addr, b"again"));
        assert!(out.push(good, b"after"));
        let st = out.flush(&a);
        assert_eq!(st.sent, 2, "{st:?}");
        assert!(wait_readable(rfd, 1000));
        assert_eq!(inb.recv(rfd).unwrap(), 1);
        assert_eq!(inb.get_mut(0).1, b"after");
    }

    #[test]
    fn push_limits() {
        let mut out = SendBatch::new();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for _ in 0..SEND_SLOTS {
            assert!(out.push(to, b"x"));
        }
        assert!(!out.push(to, b"x"), "full");
        assert_eq!(out.len(), SEND_SLOTS);
        let mut out = SendBatch::new();
        assert!(
            out.push(to, &[0; MAX_DATAGRAM + 1]),
            "oversized is dropped, not refused"
        );
        assert!(out.is_empty());
        let socks = UdpSockets::bind(0).unwrap();
        assert_eq!(
            out.flush(&socks),
            FlushStats {
                sent: 0,
                dropped: 1,
                last_error: None,
                gso_refused: None,
            }
        );
    }

    /// 45 datagrams of 1400 bytes and a short one, to one destination:
    /// with GSO one message; received (with GRO, coalesced) as the same
    /// 46 datagrams in order, on GRO and on plain receivers alike.
    #[test]
    fn gso_and_gro_on_loopback() {
        let a = UdpSockets::bind(0).unwrap();
        eprintln!("udp offloads here: gso {} gro {}", a.gso(), a.gro());
        if !a.gso() {
            crate::testutil::skip("udp::gso_and_gro_on_loopback", "no UDP GSO on this kernel");
            return;
        }
        for plain_rx in [false, true] {
            let b = if plain_rx {
                UdpSockets::bind_plain(0).unwrap()
            } else {
                UdpSockets::bind(0).unwrap()
            };
            let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let dst = SocketAddr::new(lo, b.local_port());
            let mut out = SendBatch::new();
            out.set_gso(true);
            let dgram = |i: usize| -> Vec<u8> {
                let len = if i == 45 { 100 } else { 1400 };
                (0..len).map(|j| (i * 3 + j) as u8).collect()
            };
            for i in 0..46 {
                assert!(out.push(dst, &dgram(i)));
            }
            let st = out.flush(&a);
            assert_eq!(
                (st.sent, st.dropped, st.gso_refused),
                (46, 0, None),
                "{st:?}"
            );
            let mut inb = RecvBatch::for_sockets(&b);
            assert_eq!(inb.is_gro(), b.gro());
            let rfd = b.v4_fd().unwrap();
            let mut got = Vec::new();
            let mut calls = 0;
            for _ in 0..50 {
                if got.len() == 46 || !wait_readable(rfd, 1000) {
                    break;
                }
                calls += 1;
                let n = inb.recv(rfd).unwrap();
                for i in 0..n {
                    let (from, bytes) = inb.get_mut(i);
                    assert_eq!(from.port(), a.local_port());
                    got.push(bytes.to_vec());
                }
            }
            assert_eq!(got.len(), 46, "plain receiver {plain_rx}");
            for (i, g) in got.iter().enumerate() {
                assert_eq!(g, &dgram(i), "datagram {i}");
            }
            if b.gro() {
                assert!(calls <= 2, "{calls} recvmmsg calls for one GSO message");
            }
        }
    }

    /// A GSO message the kernel refuses (segment larger than the route's
    /// MTU) goes out plainly (fragmented), and only datagrams of that size
    /// or more stop using GSO, until the next reprobe.
    #[test]
    fn gso_refused_falls_back_to_plain() {
        use crate::runtime::netif;
        let Some(()) = netif::tests::in_netns("udp::gso_refused_falls_back_to_plain", || {
            let ok = std::process::Command::new("ip")
                .args([
                    "link", "add", "clgso0", "type", "veth", "peer", "name", "clgso1",
                ])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                crate::testutil::skip("udp::gso_refused_falls_back_to_plain", "no veth");
                return;
            }
            netif::set_mtu("clgso0", 1280).unwrap();
            netif::set_up("clgso0", true).unwrap();
            netif::set_up("clgso1", true).unwrap();
            netif::add_address(
                "clgso0",
                &crate::config::IpCidr {
                    addr: "10.70.0.1".parse().unwrap(),
                    prefix: 24,
                },
            )
            .unwrap();
            let _ = std::process::Command::new("ip")
                .args([
                    "neigh",
                    "replace",
                    "10.70.0.9",
                    "lladdr",
                    "02:00:00:00:00:09",
                    "dev",
                    "clgso0",
                ])
                .status();
            let a = UdpSockets::bind(0).unwrap();
            if !a.gso() {
                crate::testutil::skip("udp::gso_refused_falls_back_to_plain", "no UDP GSO");
                return;
            }
            let mut out = SendBatch::new();
            out.set_gso(true);
            let dst: SocketAddr = "10.70.0.9:9".parse().unwrap();
            for _ in 0..10 {
                assert!(out.push(dst, &[7u8; 1400]));
            }
            assert!(out.push("127.0.0.1:9".parse().unwrap(), b"x"));
            let st = out.flush(&a);
            // Refused for its size: resent plainly, GSO capped below 1400.
            assert!(
                matches!(st.gso_refused, Some((1400, e)) if e == libc::EMSGSIZE || e == libc::EINVAL),
                "{st:?}"
            );
            assert!(out.gso(), "GSO stays on for smaller datagrams");
            assert_eq!(out.gso_limit(), 1399);
            assert_eq!((st.sent, st.dropped), (11, 0), "{st:?}");
            // Smaller datagrams still leave as one GSO message (no
            // refusal); the big ones go plain without a new refusal.
            for _ in 0..10 {
                assert!(out.push(dst, &[7u8; 1000]));
            }
            for _ in 0..3 {
                assert!(out.push(dst, &[8u8; 1400]));
            }
            let st = out.flush(&a);
            assert_eq!(
                (st.sent, st.dropped, st.gso_refused),
                (13, 0, None),
                "{st:?}"
            );
            // Probing again forgets the cap; the refusal comes back.
            assert!(out.reprobe_gso());
            assert_eq!(out.gso_limit(), usize::MAX);
            assert!(!out.reprobe_gso());
            for _ in 0..4 {
                assert!(out.push(dst, &[7u8; 1400]));
            }
            let st = out.flush(&a);
            assert!(st.gso_refused.is_some(), "{st:?}");
            assert_eq!((st.sent, st.dropped), (4, 0), "{st:?}");
        }) else {
            return;
        };
    }

    #[test]
    fn raw_address_round_trip() {
        for s in ["1.2.3.4:5", "[fe80::1%3]:443", "[2001:db8::1]:65535"] {
            let a: SocketAddr = s.parse().unwrap();
            let (raw, _) = to_raw(a);
            assert_eq!(from_raw(&raw), Some(a), "{s}");
        }
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:80".parse().unwrap();
        assert_eq!(
            from_raw(&to_raw(mapped).0),
            Some("10.0.0.1:80".parse().unwrap())
        );
    }
}
