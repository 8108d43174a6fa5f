//! The tunnel's UDP sockets and batched datagram IO.
//!
//! - [`UdpSockets`]: one IPv4 and one IPv6 socket on the same port
//!   (`IPV6_V6ONLY` so both coexist). Either may be missing, not both;
//!   when only IPv6 binds, it is dual-stack and IPv4 peers are reached
//!   through IPv4-mapped addresses. Nonblocking, close-on-exec, large
//!   kernel buffers (best effort).
//! - [`RecvBatch`]: up to `limits::UDP_BATCH` datagrams per `recvmmsg`.
//! - [`SendBatch`]: up to `limits::UDP_BATCH` queued datagrams, flushed
//!   with `sendmmsg` per address family.
//!
//! Memory is fixed: each batch owns `UDP_BATCH` buffers of
//! `MAX_DATAGRAM` bytes, allocated once. Every loop is bounded.
//! IPv4-mapped IPv6 source addresses are reported as plain IPv4.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::limits::{MAX_DATAGRAM, UDP_BATCH};

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

/// The tunnel's bound sockets.
#[derive(Debug)]
pub struct UdpSockets {
    v4: Option<OwnedFd>,
    v6: Option<OwnedFd>,
    port: u16,
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
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("udp bind")))
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
            }),
            // An ephemeral port free in v4 but taken in v6: try another.
            (Ok(_), Err(e)) if port == 0 && e.kind() == io::ErrorKind::AddrInUse => Err(e),
            (Ok(v4), Err(_)) => Ok(UdpSockets {
                v4: Some(v4),
                v6: None,
                port: port6,
            }),
            (Err(_), Ok(v6)) => {
                let port = local_port(&v6)?;
                Ok(UdpSockets {
                    v4: None,
                    v6: Some(v6),
                    port,
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
    // SAFETY: plain syscall; the fd is checked and owned below.
    let raw = unsafe {
        libc::socket(
            domain,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if addr.is_ipv6() {
        setsockopt_int(
            &fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            libc::c_int::from(v6only),
        )?;
    }
    // Best effort: the FORCE variants pass rmem_max/wmem_max as root only.
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if setsockopt_int(&fd, libc::SOL_SOCKET, force, SOCKET_BUFFER_BYTES).is_err() {
            let _ = setsockopt_int(&fd, libc::SOL_SOCKET, plain, SOCKET_BUFFER_BYTES);
        }
    }
    let (storage, len) = to_raw(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("bind {addr}: {e}")));
    }
    Ok(fd)
}

fn setsockopt_int(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the stated length.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn local_port(fd: &OwnedFd) -> io::Result<u16> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is valid for writes of `len` bytes.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    from_raw(&storage)
        .map(|a| a.port())
        .ok_or_else(|| io::Error::other("getsockname: unknown family"))
}

/// `addr` as a C socket address and its length.
fn to_raw(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            // s_addr is in network order: its memory bytes are the octets.
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            (
                storage,
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            (
                storage,
                mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// A C socket address as a `SocketAddr`; IPv4-mapped IPv6 becomes IPv4.
fn from_raw(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this is a sockaddr_in, which fits.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this is a sockaddr_in6, which fits.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::new(IpAddr::V4(v4), port),
                None => SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    u32::from_be(sin6.sin6_flowinfo),
                    sin6.sin6_scope_id,
                )),
            })
        }
        _ => None,
    }
}

const UNSPECIFIED: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// Fixed buffers for one `recvmmsg`.
pub struct RecvBatch {
    /// `UDP_BATCH` buffers (a boxed slice, so the batch is not on the stack).
    bufs: Box<[[u8; MAX_DATAGRAM]]>,
    lens: [usize; UDP_BATCH],
    from: [SocketAddr; UDP_BATCH],
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> RecvBatch {
        RecvBatch {
            bufs: vec![[0u8; MAX_DATAGRAM]; UDP_BATCH].into_boxed_slice(),
            lens: [0; UDP_BATCH],
            from: [UNSPECIFIED; UDP_BATCH],
            count: 0,
        }
    }

    /// Receives up to `UDP_BATCH` datagrams from `sock_fd` with one
    /// nonblocking `recvmmsg`; returns how many (0 when none waits).
    /// A datagram longer than `MAX_DATAGRAM` is returned empty (the
    /// engine drops it as malformed); one from an unknown address family
    /// has source `0.0.0.0:0`.
    pub fn recv(&mut self, sock_fd: RawFd) -> io::Result<usize> {
        self.count = 0;
        // SAFETY: all-zero is valid for these C structs (null pointers, zero lengths).
        let mut names: [libc::sockaddr_storage; UDP_BATCH] = unsafe { mem::zeroed() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; UDP_BATCH] = unsafe { mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; UDP_BATCH] = unsafe { mem::zeroed() };
        for (((buf, iov), name), m) in self
            .bufs
            .iter_mut()
            .zip(&mut iovs)
            .zip(&mut names)
            .zip(&mut msgs)
        {
            iov.iov_base = buf.as_mut_ptr().cast();
            iov.iov_len = buf.len();
            m.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            m.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
        }
        let vlen = self.bufs.len().min(UDP_BATCH) as libc::c_uint;
        let mut n = -1;
        for _ in 0..EINTR_RETRIES {
            // SAFETY: `msgs` holds `vlen` entries pointing at live buffers
            // (`self.bufs`, `names`) of the stated lengths; no timeout.
            n = unsafe {
                libc::recvmmsg(
                    sock_fd,
                    msgs.as_mut_ptr(),
                    vlen,
                    libc::MSG_DONTWAIT as _,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = (n as usize).min(UDP_BATCH);
        for i in 0..n {
            let m = &msgs[i];
            let len = m.msg_len as usize;
            let truncated = m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || len > MAX_DATAGRAM;
            self.lens[i] = if truncated { 0 } else { len };
            self.from[i] = from_raw(&names[i]).unwrap_or(UNSPECIFIED);
        }
        self.count = n;
        Ok(n)
    }

    /// Datagrams held from the last [`RecvBatch::recv`].
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Source and bytes of datagram `i` (mutable: decryption is in place).
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn get_mut(&mut self, i: usize) -> (SocketAddr, &mut [u8]) {
        assert!(i < self.count, "RecvBatch index {i} out of {}", self.count);
        let len = self.lens[i];
        (self.from[i], &mut self.bufs[i][..len])
    }
}

/// What a [`SendBatch::flush`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushStats {
    pub sent: usize,
    /// Dropped: socket full, per-message error, no socket of the family,
    /// or oversized at `push`.
    pub dropped: usize,
    /// The last errno seen, for a log line.
    pub last_error: Option<i32>,
}

/// Fixed slots of datagrams waiting for one `sendmmsg` per family.
pub struct SendBatch {
    bufs: Box<[[u8; MAX_DATAGRAM]]>,
    lens: [usize; UDP_BATCH],
    to: [SocketAddr; UDP_BATCH],
    count: usize,
    /// Oversized datagrams refused by `push` since the last flush.
    oversized: usize,
}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl SendBatch {
    pub fn new() -> SendBatch {
        SendBatch {
            bufs: vec![[0u8; MAX_DATAGRAM]; UDP_BATCH].into_boxed_slice(),
            lens: [0; UDP_BATCH],
            to: [UNSPECIFIED; UDP_BATCH],
            count: 0,
            oversized: 0,
        }
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
        let Some(slot) = self.bufs.get_mut(self.count) else {
            return false;
        };
        if self.count >= UDP_BATCH {
            return false;
        }
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
        let count = self.count.min(UDP_BATCH);
        self.count = 0;
        if count == 0 {
            return stats;
        }
        // Route each message: (socket, destination as the socket needs it).
        let mut v4: [(usize, SocketAddr); UDP_BATCH] = [(0, UNSPECIFIED); UDP_BATCH];
        let mut v6: [(usize, SocketAddr); UDP_BATCH] = [(0, UNSPECIFIED); UDP_BATCH];
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

    fn send_group(&mut self, fd: RawFd, group: &[(usize, SocketAddr)], stats: &mut FlushStats) {
        if group.is_empty() {
            return;
        }
        // SAFETY: all-zero is valid for these C structs (null pointers, zero lengths).
        let mut names: [libc::sockaddr_storage; UDP_BATCH] = unsafe { mem::zeroed() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; UDP_BATCH] = unsafe { mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; UDP_BATCH] = unsafe { mem::zeroed() };
        let mut namelens: [libc::socklen_t; UDP_BATCH] = [0; UDP_BATCH];
        let mut n = 0;
        for &(slot, to) in group.iter().take(UDP_BATCH) {
            let (Some(buf), Some(&len)) = (self.bufs.get_mut(slot), self.lens.get(slot)) else {
                continue;
            };
            (names[n], namelens[n]) = to_raw(to);
            iovs[n] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: len.min(MAX_DATAGRAM),
            };
            n += 1;
        }
        // Pointers are taken once the arrays are filled and no longer move.
        for i in 0..n {
            let m = &mut msgs[i];
            m.msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            m.msg_hdr.msg_namelen = namelens[i];
            m.msg_hdr.msg_iov = &mut iovs[i];
            m.msg_hdr.msg_iovlen = 1;
        }
        let mut start = 0;
        let mut interrupts = 0;
        for _ in 0..MAX_SEND_CALLS {
            if start >= n {
                break;
            }
            let rest = &mut msgs[start..n];
            // SAFETY: `rest` entries point at live names, iovecs and buffers
            // of the stated lengths; the kernel only reads them.
            let rc = unsafe {
                libc::sendmmsg(
                    fd,
                    rest.as_mut_ptr(),
                    rest.len() as libc::c_uint,
                    libc::MSG_DONTWAIT as _,
                )
            };
            if rc > 0 {
                let sent = (rc as usize).min(n - start);
                stats.sent += sent;
                start += sent;
                continue;
            }
            let errno = if rc == 0 {
                0
            } else {
                io::Error::last_os_error().raw_os_error().unwrap_or(0)
            };
            if errno == libc::EINTR && interrupts < EINTR_RETRIES {
                interrupts += 1;
                continue;
            }
            if errno != 0 {
                stats.last_error = Some(errno);
            }
            if errno == libc::EAGAIN || errno == libc::EWOULDBLOCK || errno == libc::ENOBUFS {
                break; // socket full: the rest is dropped below
            }
            // The first message failed on its own (unreachable, too big,
            // ...): skip it and go on with the next.
            stats.dropped += 1;
            start += 1;
        }
        stats.dropped += n - start.min(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_readable(fd: RawFd, ms: i32) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, ms) > 0 }
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
                assert_eq!((st.sent, st.dropped), (UDP_BATCH, 0), "{st:?}");
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
            eprintln!("SKIPPED udp::loopback_v6_batches: no IPv6 socket on this host");
            return;
        };
        if std::net::UdpSocket::bind("[::1]:0").is_err() {
            eprintln!("SKIPPED udp::loopback_v6_batches: ::1 unavailable");
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
        for _ in 0..UDP_BATCH {
            assert!(out.push(to, b"x"));
        }
        assert!(!out.push(to, b"x"), "full");
        assert_eq!(out.len(), UDP_BATCH);
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
                last_error: None
            }
        );
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
