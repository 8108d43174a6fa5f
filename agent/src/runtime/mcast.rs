//! The mDNS sockets: multicast on port 5353 per interface (RFC 6762).
//!
//! [`MdnsSockets`] is the IO side of the sans-IO mDNS core: one IPv4
//! socket on `0.0.0.0:5353` and one IPv6 socket on `[::]:5353`
//! (`IPV6_V6ONLY`), nonblocking and close-on-exec. The core names an
//! interface; this module turns that into kernel interface indexes.
//!
//! - **Coexistence.** Both sockets set `SO_REUSEADDR` and `SO_REUSEPORT`,
//!   so Avahi, umdns or a second responder can hold port 5353 on the same
//!   box (`SO_REUSEADDR` on both sides is what lets sockets of different
//!   users, e.g. Avahi's `avahi` user, share it). Every such socket gets
//!   each multicast; a *unicast* datagram to port 5353 (a QU response)
//!   reaches only one of them.
//! - **Interfaces.** [`MdnsSockets::join`] joins 224.0.0.251 / ff02::fb on
//!   one interface index; `IP_MULTICAST_ALL` / `IPV6_MULTICAST_ALL` are off,
//!   so the kernel delivers only groups joined *by this socket*, on the
//!   interfaces it joined them on. [`MdnsSockets::recv`] also drops (and
//!   counts) any datagram, unicast included, that arrived on an interface
//!   not joined in its family: the caller sees only its interfaces.
//! - **Arrival data.** `IP_PKTINFO` / `IPV6_RECVPKTINFO` give the arrival
//!   interface and destination address; `IP_RECVTTL` / `IPV6_RECVHOPLIMIT`
//!   the TTL / hop limit, exposed as [`Received::ttl`] (RFC 6762 §11: a
//!   packet with TTL 255 cannot have crossed a router). IPv6 link-local
//!   sources keep their scope id (the arrival interface).
//! - **Sending.** [`MdnsSockets::send`] sends out of exactly one interface
//!   (`IP_PKTINFO` / `IPV6_PKTINFO` with that index, per message), from
//!   port 5353, multicast or unicast. RFC 6762 §11: "All Multicast DNS
//!   responses (including responses sent via unicast) SHOULD be sent with
//!   IP TTL set to 255": multicast TTL, unicast TTL and both IPv6 hop
//!   limits are 255.
//! - **Loopback off.** `IP_MULTICAST_LOOP` / `IPV6_MULTICAST_LOOP` are 0:
//!   we never hear our own multicasts. The price: no other socket on this
//!   host hears them either — two cloudy daemons in one network namespace
//!   do not see each other, and a local Avahi does not see our
//!   announcements or probes (we still see its, as Avahi loops its own).
//!
//! Invariants: memberships are tracked in a fixed table of [`MAX_JOINED`]
//! interfaces that mirrors the kernel's state after every call (a
//! half-failed join records what succeeded); one datagram per
//! [`MdnsSockets::recv`] call, with at most [`RECV_SKIP_LIMIT`] datagrams
//! dropped inside one call; `EINTR` retries are bounded. Nothing allocates
//! on the success paths. Addresses are in network order (their octets) and
//! control messages in host order: correct on big-endian mips.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::limits::MAX_MDNS_INTERFACES;
use crate::sys::cmsg::{self, CmsgBuf};
use crate::sys::socket::{bind, if_name, local_addr, recvmsg, sendmsg, socket};
use crate::sys::sockopt::setsockopt;

/// The mDNS port (RFC 6762 §3).
pub const MDNS_PORT: u16 = 5353;
/// The IPv4 mDNS group (RFC 6762 §3).
pub const MDNS_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// The IPv6 mDNS group, link-local scope (RFC 6762 §3).
pub const MDNS_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);
/// Interfaces joined at once: the overlay device and the listed ones.
/// (Below the kernel's default `igmp_max_memberships` of 20 per socket.)
pub const MAX_JOINED: usize = 1 + MAX_MDNS_INTERFACES;
/// Datagrams dropped (truncated, foreign interface, no packet info)
/// inside one [`MdnsSockets::recv`] call before it returns `Ok(None)`;
/// the socket stays readable, so the next poll comes back.
pub const RECV_SKIP_LIMIT: usize = 16;
/// TTL and hop limit of everything sent (RFC 6762 §11).
const TTL: libc::c_int = 255;
/// `EINTR` retries of one system call.
const EINTR_RETRIES: usize = 8;
/// `IPV6_MULTICAST_ALL` (linux/in6.h, Linux ≥ 4.20), for every libc target.
const IPV6_MULTICAST_ALL: libc::c_int = 29;
/// Control buffer: room for a packet-info and an int message in either
/// family (CMSG_SPACE(20) + CMSG_SPACE(4) ≤ 64 on every target), 8-aligned.
type Cmsg = CmsgBuf<128>;

/// One datagram taken by [`MdnsSockets::recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Source; an IPv6 link-local source carries the arrival interface
    /// as scope id.
    pub from: SocketAddr,
    /// Destination address of the packet: a group (multicast) or one of
    /// ours (unicast, e.g. a direct query to port 5353).
    pub to: IpAddr,
    /// Arrival interface index.
    pub ifindex: u32,
    /// IPv4 TTL / IPv6 hop limit as received (`None` if the kernel gave none).
    pub ttl: Option<u8>,
    /// Bytes written at the start of the caller's buffer.
    pub len: usize,
}

/// Datagrams [`MdnsSockets::recv`] dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct McastStats {
    /// Larger than the caller's buffer.
    pub truncated: u64,
    /// Arrived on an interface not joined in that family.
    pub not_joined: u64,
    /// No interface index or unknown source family from the kernel.
    pub no_pktinfo: u64,
}

#[derive(Debug, Clone, Copy)]
struct Joined {
    ifindex: u32,
    v4: bool,
    v6: bool,
}

/// The two mDNS sockets and their group memberships.
#[derive(Debug)]
pub struct MdnsSockets {
    v4: Option<OwnedFd>,
    v6: Option<OwnedFd>,
    joined: heapless::Vec<Joined, MAX_JOINED>,
    stats: McastStats,
}

impl MdnsSockets {
    /// Binds both families on port 5353. Fails if either family fails,
    /// except that a kernel without IPv6 (`EAFNOSUPPORT`) gives an
    /// IPv4-only value: a port held by a socket without `SO_REUSEADDR`
    /// is an error for the operator to see, not a silent half-service.
    pub fn open() -> io::Result<MdnsSockets> {
        Self::bind(MDNS_PORT)
    }

    /// As [`MdnsSockets::open`] on another port (tests; port 0 gives each
    /// family its own ephemeral port).
    pub fn bind(port: u16) -> io::Result<MdnsSockets> {
        let v4 = open_socket(false, port)?;
        let v6 = match open_socket(true, port) {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => None,
            Err(e) => return Err(e),
        };
        Ok(MdnsSockets {
            v4: Some(v4),
            v6,
            joined: heapless::Vec::new(),
            stats: McastStats::default(),
        })
    }

    /// The IPv4 socket.
    pub fn v4_fd(&self) -> Option<RawFd> {
        self.v4.as_ref().map(|f| f.as_raw_fd())
    }

    /// The IPv6 socket, if the kernel has IPv6.
    pub fn v6_fd(&self) -> Option<RawFd> {
        self.v6.as_ref().map(|f| f.as_raw_fd())
    }

    /// The descriptors to poll (one or two).
    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.v4_fd().into_iter().chain(self.v6_fd())
    }

    /// The local address of the socket of `v6`'s family (tests, status).
    pub fn local_addr(&self, v6: bool) -> io::Result<SocketAddr> {
        let fd = if v6 { &self.v6 } else { &self.v4 };
        let fd = fd
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no IPv6 socket"))?;
        local_addr(fd.as_raw_fd())
    }

    /// Dropped-datagram counters.
    pub fn stats(&self) -> McastStats {
        self.stats
    }

    /// Joined interfaces: (index, IPv4 group joined, IPv6 group joined).
    pub fn joined(&self) -> impl Iterator<Item = (u32, bool, bool)> + '_ {
        self.joined.iter().map(|j| (j.ifindex, j.v4, j.v6))
    }

    /// Joins the mDNS groups on interface `ifindex`: 224.0.0.251 if
    /// `has_v4`, ff02::fb if `has_v6` (and the IPv6 socket exists), and
    /// leaves a group of the other flag's family joined earlier. Calling
    /// it again with the same arguments changes nothing. Both `false` is
    /// [`MdnsSockets::leave`]. Pass `has_v4` only if the interface has an
    /// IPv4 address: without one the kernel still joins, but multicasts
    /// sent there leave from 0.0.0.0 (tested), which peers treat as
    /// off-link. Likewise `has_v6` needs a usable (non-tentative) link-local
    /// address (after duplicate address detection), or the kernel picks
    /// another interface's address as source, or none.
    ///
    /// On error (the message names the interface) the groups that did
    /// change stay changed and are tracked. An interface that disappears
    /// and comes back has a new index: leave the old, join the new.
    pub fn join(&mut self, ifindex: u32, has_v4: bool, has_v6: bool) -> io::Result<()> {
        if !has_v4 && !has_v6 {
            return self.leave(ifindex);
        }
        let index = c_index(ifindex)?;
        let has_v6 = has_v6 && self.v6.is_some();
        let pos = match self.joined.iter().position(|j| j.ifindex == ifindex) {
            Some(p) => p,
            None => {
                let entry = Joined {
                    ifindex,
                    v4: false,
                    v6: false,
                };
                self.joined.push(entry).map_err(|_| {
                    iface_error(
                        ifindex,
                        "join mDNS groups",
                        io::Error::other(format!("more than {MAX_JOINED} interfaces")),
                    )
                })?;
                self.joined.len() - 1
            }
        };
        let r4 = self.set_v4(pos, index, has_v4);
        let r6 = self.set_v6(pos, index, has_v6);
        self.forget_if_empty(ifindex);
        r4.and(r6)
    }

    /// Leaves both groups on `ifindex`; nothing if not joined. Forgets the
    /// interface even when the kernel refuses (e.g. it is already gone).
    pub fn leave(&mut self, ifindex: u32) -> io::Result<()> {
        let Some(pos) = self.joined.iter().position(|j| j.ifindex == ifindex) else {
            return Ok(());
        };
        let index = c_index(ifindex)?;
        let r4 = self.set_v4(pos, index, false);
        let r6 = self.set_v6(pos, index, false);
        self.joined.swap_remove(pos);
        r4.and(r6)
    }

    fn forget_if_empty(&mut self, ifindex: u32) {
        if let Some(pos) = self
            .joined
            .iter()
            .position(|j| j.ifindex == ifindex && !j.v4 && !j.v6)
        {
            self.joined.swap_remove(pos);
        }
    }

    /// Brings the IPv4 membership of `joined[pos]` to `want`.
    fn set_v4(&mut self, pos: usize, index: libc::c_int, want: bool) -> io::Result<()> {
        let (Some(fd), Some(entry)) = (&self.v4, self.joined.get_mut(pos)) else {
            return Ok(());
        };
        if entry.v4 == want {
            return Ok(());
        }
        let req = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr {
                s_addr: u32::from_ne_bytes(MDNS_GROUP_V4.octets()),
            },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: index,
        };
        let (opt, what) = if want {
            (libc::IP_ADD_MEMBERSHIP, "join 224.0.0.251")
        } else {
            (libc::IP_DROP_MEMBERSHIP, "leave 224.0.0.251")
        };
        let r = setsockopt(fd, libc::IPPROTO_IP, opt, &req);
        let r = membership_result(r, want);
        if r.is_ok() || !want {
            // A failed leave means the kernel no longer has it.
            entry.v4 = want;
        }
        r.map_err(|e| iface_error(entry.ifindex, what, e))
    }

    /// Brings the IPv6 membership of `joined[pos]` to `want`.
    fn set_v6(&mut self, pos: usize, index: libc::c_int, want: bool) -> io::Result<()> {
        let (Some(fd), Some(entry)) = (&self.v6, self.joined.get_mut(pos)) else {
            return Ok(());
        };
        if entry.v6 == want {
            return Ok(());
        }
        let req = libc::ipv6_mreq {
            ipv6mr_multiaddr: libc::in6_addr {
                s6_addr: MDNS_GROUP_V6.octets(),
            },
            // Checked non-negative by `c_index`.
            ipv6mr_interface: index as libc::c_uint,
        };
        let (opt, what) = if want {
            (libc::IPV6_ADD_MEMBERSHIP, "join ff02::fb")
        } else {
            (libc::IPV6_DROP_MEMBERSHIP, "leave ff02::fb")
        };
        let r = setsockopt(fd, libc::IPPROTO_IPV6, opt, &req);
        let r = membership_result(r, want);
        if r.is_ok() || !want {
            entry.v6 = want;
        }
        r.map_err(|e| iface_error(entry.ifindex, what, e))
    }

    /// Takes one datagram from `fd` (one of [`MdnsSockets::fds`]) into
    /// `buf`. `Ok(None)`: nothing (more) to read now. Datagrams longer than
    /// `buf` (use 9000 bytes, RFC 6762 §17), from interfaces not joined in
    /// that family, or without packet info are dropped and counted
    /// ([`MdnsSockets::stats`]), at most [`RECV_SKIP_LIMIT`] per call.
    pub fn recv(&mut self, fd: RawFd, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let v6 = if self.v4_fd() == Some(fd) {
            false
        } else if self.v6_fd() == Some(fd) {
            true
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mdns recv: fd {fd} is not an mDNS socket"),
            ));
        };
        let mut tries = 0;
        let mut skipped = 0;
        while tries < EINTR_RETRIES && skipped < RECV_SKIP_LIMIT {
            let raw = match recv_one(fd, buf) {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    tries += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            skipped += 1;
            if raw.truncated {
                self.stats.truncated += 1;
                continue;
            }
            let (Some(from), Some(ifindex), Some(to)) = (raw.from, raw.ifindex, raw.to) else {
                self.stats.no_pktinfo += 1;
                continue;
            };
            if from.is_ipv6() != v6 {
                self.stats.no_pktinfo += 1;
                continue;
            }
            let joined = self
                .joined
                .iter()
                .any(|j| j.ifindex == ifindex && if v6 { j.v6 } else { j.v4 });
            if !joined {
                self.stats.not_joined += 1;
                continue;
            }
            let from = match from {
                SocketAddr::V6(a) if needs_scope(a.ip()) && a.scope_id() == 0 => {
                    SocketAddr::V6(SocketAddrV6::new(*a.ip(), a.port(), 0, ifindex))
                }
                other => other,
            };
            return Ok(Some(Received {
                from,
                to,
                ifindex,
                ttl: raw.ttl,
                len: raw.len,
            }));
        }
        Ok(None)
    }

    /// Sends `packet` to `to` out of interface `ifindex` only, from port
    /// 5353: to a group (224.0.0.251:5353, [ff02::fb]:5353) or unicast to
    /// a querier (legacy unicast, QU). A link-scoped IPv6 destination gets
    /// `ifindex` as scope id; IPv4-mapped IPv6 goes out as IPv4. The kernel
    /// picks the source address of that interface. A full send buffer is
    /// `ErrorKind::WouldBlock` (count and drop); other errors name the
    /// interface and destination.
    pub fn send(&self, ifindex: u32, to: SocketAddr, packet: &[u8]) -> io::Result<()> {
        let index = c_index(ifindex)?;
        let to = match to {
            SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, a.port())),
                None if needs_scope(a.ip()) => {
                    SocketAddr::V6(SocketAddrV6::new(*a.ip(), a.port(), a.flowinfo(), ifindex))
                }
                None => SocketAddr::V6(SocketAddrV6::new(*a.ip(), a.port(), a.flowinfo(), 0)),
            },
            v4 => v4,
        };
        let fd = match to {
            SocketAddr::V4(_) => &self.v4,
            SocketAddr::V6(_) => &self.v6,
        };
        let Some(fd) = fd else {
            return Err(iface_error(
                ifindex,
                "send",
                io::Error::new(io::ErrorKind::Unsupported, format!("{to}: no IPv6 socket")),
            ));
        };
        let mut tries = 0;
        loop {
            match send_one(fd, index, to, packet) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted && tries < EINTR_RETRIES => {
                    tries += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(e) => {
                    let what = format!("send to {to}");
                    return Err(iface_error(ifindex, &what, e));
                }
            }
        }
    }
}

/// Link-scoped IPv6 addresses: they need an interface (scope id).
fn needs_scope(ip: &Ipv6Addr) -> bool {
    let s = ip.segments();
    (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xff0f) == 0xff02 || (s[0] & 0xff0f) == 0xff01
}

fn c_index(ifindex: u32) -> io::Result<libc::c_int> {
    match libc::c_int::try_from(ifindex) {
        Ok(i) if i > 0 => Ok(i),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface index {ifindex}"),
        )),
    }
}

/// Joining twice (`EADDRINUSE`) is success; leaving a group the kernel
/// already dropped (interface gone: `ENODEV`, `EADDRNOTAVAIL`, `ENOENT`,
/// `EINVAL`) too.
fn membership_result(r: io::Result<()>, joining: bool) -> io::Result<()> {
    match r {
        Err(e) if joining && e.raw_os_error() == Some(libc::EADDRINUSE) => Ok(()),
        Err(e)
            if !joining
                && matches!(
                    e.raw_os_error(),
                    Some(libc::ENODEV | libc::EADDRNOTAVAIL | libc::ENOENT | libc::EINVAL)
                ) =>
        {
            Ok(())
        }
        r => r,
    }
}

/// An error naming interface `ifindex` (by name if it still exists).
fn iface_error(ifindex: u32, what: &str, e: io::Error) -> io::Error {
    let label = match if_name(ifindex) {
        None => format!("interface index {ifindex}"),
        Some(name) => format!("{name} (index {ifindex})"),
    };
    io::Error::new(e.kind(), format!("{label}: mdns {what}: {e}"))
}

fn open_socket(v6: bool, port: u16) -> io::Result<OwnedFd> {
    let family = if v6 { "IPv6" } else { "IPv4" };
    let ctx = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("mdns {family} socket: {what}: {e}"))
    };
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    let fd = match socket(
        domain,
        libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0,
    ) {
        Ok(fd) => fd,
        // Keep the raw errno: `bind` tells EAFNOSUPPORT apart.
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => return Err(e),
        Err(e) => return Err(ctx("socket", e)),
    };
    let on: libc::c_int = 1;
    let off: libc::c_int = 0;
    let mut opts: Vec<(libc::c_int, libc::c_int, libc::c_int, &str)> = vec![
        (libc::SOL_SOCKET, libc::SO_REUSEADDR, on, "SO_REUSEADDR"),
        (libc::SOL_SOCKET, libc::SO_REUSEPORT, on, "SO_REUSEPORT"),
    ];
    if v6 {
        let p = libc::IPPROTO_IPV6;
        opts.extend([
            (p, libc::IPV6_V6ONLY, on, "IPV6_V6ONLY"),
            (p, libc::IPV6_MULTICAST_HOPS, TTL, "IPV6_MULTICAST_HOPS"),
            (p, libc::IPV6_UNICAST_HOPS, TTL, "IPV6_UNICAST_HOPS"),
            (p, libc::IPV6_MULTICAST_LOOP, off, "IPV6_MULTICAST_LOOP"),
            (p, libc::IPV6_RECVPKTINFO, on, "IPV6_RECVPKTINFO"),
            (p, libc::IPV6_RECVHOPLIMIT, on, "IPV6_RECVHOPLIMIT"),
        ]);
    } else {
        let p = libc::IPPROTO_IP;
        opts.extend([
            (p, libc::IP_MULTICAST_TTL, TTL, "IP_MULTICAST_TTL"),
            (p, libc::IP_TTL, TTL, "IP_TTL"),
            (p, libc::IP_MULTICAST_LOOP, off, "IP_MULTICAST_LOOP"),
            (p, libc::IP_PKTINFO, on, "IP_PKTINFO"),
            (p, libc::IP_RECVTTL, on, "IP_RECVTTL"),
        ]);
    }
    for (level, name, value, label) in opts {
        setsockopt(&fd, level, name, &value).map_err(|e| ctx(label, e))?;
    }
    // Best effort: IPV6_MULTICAST_ALL is Linux ≥ 4.20, and qemu-user
    // translates neither. Without it the kernel also delivers groups other
    // sockets joined, on their interfaces; `recv`'s interface check drops
    // those (and counts them as `not_joined`).
    let _ = if v6 {
        setsockopt(&fd, libc::IPPROTO_IPV6, IPV6_MULTICAST_ALL, &off)
    } else {
        setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, &off)
    };
    let addr = if v6 {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0))
    } else {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
    };
    if let Err(e) = bind(fd.as_raw_fd(), addr) {
        return Err(ctx(&format!("bind {addr}"), e));
    }
    Ok(fd)
}

/// What one `recvmsg` returned, before filtering.
struct RawRecv {
    from: Option<SocketAddr>,
    to: Option<IpAddr>,
    ifindex: Option<u32>,
    ttl: Option<u8>,
    len: usize,
    truncated: bool,
}

/// One `recvmsg`; `Ok(None)` when nothing waits.
fn recv_one(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<RawRecv>> {
    let mut ctrl = Cmsg::new();
    let r = match recvmsg(fd, buf, &mut ctrl, libc::MSG_DONTWAIT) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = RawRecv {
        from: r.from,
        to: None,
        ifindex: None,
        ttl: None,
        len: r.len.min(buf.len()),
        truncated: r.truncated,
    };
    ctrl.received(r.control_len)
        .find_map(8, |level, kind, data| {
            match (level, kind) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    if let Some(p) = cmsg::read::<libc::in_pktinfo>(data) {
                        out.ifindex = u32::try_from(p.ipi_ifindex).ok().filter(|&i| i > 0);
                        out.to = Some(IpAddr::V4(Ipv4Addr::from(p.ipi_addr.s_addr.to_ne_bytes())));
                    }
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    if let Some(p) = cmsg::read::<libc::in6_pktinfo>(data) {
                        out.ifindex = Some(p.ipi6_ifindex).filter(|&i| i > 0);
                        out.to = Some(IpAddr::V6(Ipv6Addr::from(p.ipi6_addr.s6_addr)));
                    }
                }
                (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    if let Some(v) = cmsg::read::<libc::c_int>(data) {
                        out.ttl = u8::try_from(v).ok();
                    }
                }
                _ => {}
            }
            None::<()>
        });
    Ok(Some(out))
}

/// One `sendmsg` of `packet` to `to` with the packet-info control
/// message naming interface `index` (the source address is left to the
/// kernel).
fn send_one(fd: &OwnedFd, index: libc::c_int, to: SocketAddr, packet: &[u8]) -> io::Result<()> {
    let mut ctrl = Cmsg::new();
    let written = match to {
        SocketAddr::V4(_) => ctrl.write(
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            libc::in_pktinfo {
                ipi_ifindex: index,
                ipi_spec_dst: libc::in_addr { s_addr: 0 },
                ipi_addr: libc::in_addr { s_addr: 0 },
            },
        ),
        SocketAddr::V6(_) => ctrl.write(
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr { s6_addr: [0; 16] },
                // Checked positive by `c_index`.
                ipi6_ifindex: index as libc::c_uint,
            },
        ),
    };
    let Some(control_len) = written else {
        return Err(io::Error::other("control buffer too small"));
    };
    sendmsg(
        fd.as_raw_fd(),
        to,
        packet,
        &ctrl,
        control_len,
        libc::MSG_DONTWAIT,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::netif;
    use std::net::UdpSocket;
    use std::process::Command;
    use std::time::{Duration, Instant};

    const GROUP4: SocketAddr = SocketAddr::V4(SocketAddrV4::new(MDNS_GROUP_V4, MDNS_PORT));
    const GROUP6: SocketAddr = SocketAddr::V6(SocketAddrV6::new(MDNS_GROUP_V6, MDNS_PORT, 0, 0));
    /// How long a test waits for a datagram that must not come.
    const QUIET_MS: u64 = 250;

    /// The next datagram on `s`'s socket of family `v6` within `ms`.
    fn wait_recv(s: &mut MdnsSockets, v6: bool, ms: u64) -> Option<(Received, Vec<u8>)> {
        let fd = if v6 { s.v6_fd() } else { s.v4_fd() }.expect("socket");
        let deadline = Instant::now() + Duration::from_millis(ms);
        let mut buf = [0u8; 9000];
        for _ in 0..1000 {
            if let Some(r) = s.recv(fd, &mut buf).expect("recv") {
                return Some((r, buf[..r.len].to_vec()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ = crate::sys::socket::poll_readable(fd, left.as_millis().max(1) as libc::c_int);
        }
        None
    }

    fn nothing(s: &mut MdnsSockets, v6: bool) {
        if let Some((r, p)) = wait_recv(s, v6, QUIET_MS) {
            panic!(
                "unexpected datagram {r:?} {:?}",
                String::from_utf8_lossy(&p)
            );
        }
    }

    use crate::testutil::cidr;

    /// Network namespaces created by one test thread, which moves between
    /// them with `setns`. They vanish with the thread's descriptors (and
    /// with the process, whatever happens): nothing is named or mounted.
    struct Lab {
        ns: Vec<OwnedFd>,
    }

    /// Whether this test binary runs under a user-mode emulator: an
    /// x86_64 kernel running a binary of another architecture.
    fn emulated() -> bool {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/arch").unwrap_or_default();
        kernel.trim() == "x86_64" && !matches!(std::env::consts::ARCH, "x86_64" | "x86")
    }

    /// Whether the socket options and control messages this module uses
    /// can be tested here: natively yes. qemu-user 7.2 mistranslates them:
    /// on 64-bit targets it hands the kernel a 12-byte `ip_mreqn` whose
    /// interface index it never filled in (random `ENODEV` or a wrong
    /// interface); across byte orders it copies packet-info control
    /// messages unswapped (interface indexes arrive byte-swapped); it knows
    /// no `IP_MULTICAST_ALL`. So under an emulator these tests skip, loudly.
    fn usable_here(test: &str) -> bool {
        if emulated() {
            crate::testutil::skip(
                test,
                "multicast socket options are mistranslated by user-mode \
                 emulators (qemu-user); run natively",
            );
            return false;
        }
        true
    }

    fn lab(test: &'static str, n: usize, f: impl FnOnce(&Lab) + Send + 'static) {
        if !netif::tests::is_root() {
            crate::testutil::skip(test, "needs root (network namespaces)");
            return;
        }
        if !usable_here(test) {
            return;
        }
        let h = crate::testutil::spawn_named(move || {
            let mut ns = Vec::new();
            for _ in 0..n {
                if let Err(e) = crate::sys::socket::thread::unshare_net() {
                    panic!("unshare: {e}");
                }
                netif::set_up("lo", true).unwrap();
                // No duplicate address detection: link-local addresses are
                // usable as soon as the link is up (instead of ~1-2 s).
                for conf in ["all", "default"] {
                    let path = format!("/proc/sys/net/ipv6/conf/{conf}/accept_dad");
                    std::fs::write(&path, "0").unwrap();
                }
                let f = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
                ns.push(OwnedFd::from(f));
            }
            f(&Lab { ns });
        });
        h.join().expect("lab thread panicked");
    }

    impl Lab {
        fn enter(&self, i: usize) {
            if let Err(e) = crate::sys::socket::thread::enter_net(&self.ns[i]) {
                panic!("setns: {e}");
            }
        }

        /// A veth pair `na` (namespace `a`) – `nb` (namespace `b`), both up,
        /// with IPv4 addresses when given; returns the two indexes once
        /// both ends have their IPv6 link-local address.
        fn veth(
            &self,
            a: usize,
            na: &str,
            b: usize,
            nb: &str,
            v4: Option<(&str, &str)>,
        ) -> (u32, u32) {
            self.enter(a);
            let target = format!("/proc/{}/fd/{}", std::process::id(), self.ns[b].as_raw_fd());
            let ok = Command::new("ip")
                .args([
                    "link", "add", na, "type", "veth", "peer", "name", nb, "netns", &target,
                ])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ip link add {na} veth {nb}");
            for (i, name, addr) in [(a, na, v4.map(|v| v.0)), (b, nb, v4.map(|v| v.1))] {
                self.enter(i);
                if let Some(addr) = addr {
                    netif::add_address(name, &cidr(addr)).unwrap();
                }
                netif::set_up(name, true).unwrap();
            }
            let ia = {
                self.enter(a);
                netif::if_index(na).unwrap()
            };
            self.enter(b);
            let ib = netif::if_index(nb).unwrap();
            self.link_local(a, na);
            self.link_local(b, nb);
            (ia, ib)
        }

        fn link_local(&self, i: usize, name: &str) -> Ipv6Addr {
            self.enter(i);
            for _ in 0..300 {
                let found =
                    netif::addresses(name)
                        .unwrap()
                        .into_iter()
                        .find_map(|c| match c.addr {
                            IpAddr::V6(a) if a.segments()[0] == 0xfe80 => Some(a),
                            _ => None,
                        });
                if let Some(a) = found {
                    return a;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("{name}: no IPv6 link-local address after 3 s");
        }
    }

    /// Addresses, ports, interface indexes and TTLs in both directions and
    /// both families, multicast and unicast, legacy unicast included.
    #[test]
    fn multicast_and_unicast_between_namespaces() {
        lab(
            "mcast::multicast_and_unicast_between_namespaces",
            2,
            |lab| {
                let (ia, ib) = lab.veth(0, "mca", 1, "mcb", Some(("10.61.0.1/24", "10.61.0.2/24")));
                let lla = lab.link_local(0, "mca");
                let llb = lab.link_local(1, "mcb");
                lab.enter(0);
                let mut a = MdnsSockets::open().unwrap();
                a.join(ia, true, true).unwrap();
                lab.enter(1);
                let mut b = MdnsSockets::open().unwrap();
                b.join(ib, true, true).unwrap();

                // B queries by multicast, both families.
                b.send(ib, GROUP4, b"q4").unwrap();
                b.send(ib, GROUP6, b"q6").unwrap();
                let (r4, p) = wait_recv(&mut a, false, 2000).expect("IPv4 multicast");
                assert_eq!(p, b"q4");
                assert_eq!(r4.from, "10.61.0.2:5353".parse().unwrap());
                assert_eq!(
                    (r4.to, r4.ifindex, r4.ttl),
                    (IpAddr::V4(MDNS_GROUP_V4), ia, Some(255))
                );
                let (r6, p) = wait_recv(&mut a, true, 2000).expect("IPv6 multicast");
                assert_eq!(p, b"q6");
                assert_eq!(r6.from, SocketAddr::V6(SocketAddrV6::new(llb, 5353, 0, ia)));
                assert_eq!(
                    (r6.to, r6.ifindex, r6.ttl),
                    (IpAddr::V6(MDNS_GROUP_V6), ia, Some(255))
                );

                // A answers by unicast to the querier's source (QU style).
                a.send(ia, r4.from, b"r4").unwrap();
                a.send(ia, r6.from, b"r6").unwrap();
                let (u4, p) = wait_recv(&mut b, false, 2000).expect("IPv4 unicast reply");
                assert_eq!(p, b"r4");
                assert_eq!(u4.from, "10.61.0.1:5353".parse().unwrap());
                assert_eq!(
                    (u4.to, u4.ifindex, u4.ttl),
                    ("10.61.0.2".parse().unwrap(), ib, Some(255))
                );
                let (u6, p) = wait_recv(&mut b, true, 2000).expect("IPv6 unicast reply");
                assert_eq!(p, b"r6");
                assert_eq!(u6.from, SocketAddr::V6(SocketAddrV6::new(lla, 5353, 0, ib)));
                assert_eq!(
                    (u6.to, u6.ifindex, u6.ttl),
                    (IpAddr::V6(llb), ib, Some(255))
                );
                // A link-local destination without scope id gets the interface's.
                let bare = SocketAddr::V6(SocketAddrV6::new(llb, 5353, 0, 0));
                a.send(ia, bare, b"r6 bare").unwrap();
                let (_, p) = wait_recv(&mut b, true, 2000).expect("IPv6 unicast, no scope");
                assert_eq!(p, b"r6 bare");

                // Multicast loop is off: nobody hears himself.
                nothing(&mut a, false);
                nothing(&mut a, true);

                // Legacy unicast (RFC 6762 §6.7): a one-shot querier on an
                // ephemeral port; the reply goes back to that port.
                let q = UdpSocket::bind("0.0.0.0:0").unwrap();
                q.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                q.send_to(b"legacy", "10.61.0.1:5353").unwrap();
                let (l, p) = wait_recv(&mut a, false, 2000).expect("legacy query");
                assert_eq!(p, b"legacy");
                assert_eq!(l.from.port(), q.local_addr().unwrap().port());
                assert_eq!((l.to, l.ifindex), ("10.61.0.1".parse().unwrap(), ia));
                assert_eq!(l.ttl, Some(64), "the querier's default TTL");
                a.send(ia, l.from, b"legacy answer").unwrap();
                let mut buf = [0u8; 64];
                let (n, src) = q.recv_from(&mut buf).unwrap();
                assert_eq!(
                    (&buf[..n], src),
                    (&b"legacy answer"[..], "10.61.0.1:5353".parse().unwrap())
                );

                // A sender with the default multicast TTL of 1 (possibly
                // routed, RFC 6762 §11): the TTL is reported as received.
                let ok = Command::new("ip")
                    .args(["route", "add", "224.0.0.0/4", "dev", "mcb"])
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "ip route add");
                q.send_to(b"ttl1", GROUP4).unwrap();
                let (t, p) = wait_recv(&mut a, false, 2000).expect("TTL 1 multicast");
                assert_eq!((p.as_slice(), t.ttl), (&b"ttl1"[..], Some(1)));
                assert_eq!(a.stats(), McastStats::default());
                assert_eq!(b.stats(), McastStats::default());
            },
        );
    }

    /// A multicast sent on interface X reaches X's far side only.
    #[test]
    fn sends_leave_by_the_chosen_interface_only() {
        lab(
            "mcast::sends_leave_by_the_chosen_interface_only",
            3,
            |lab| {
                let (iab, iba) = lab.veth(0, "ab", 1, "ba", Some(("10.62.1.1/24", "10.62.1.2/24")));
                let (iac, ica) = lab.veth(0, "ac", 2, "ca", Some(("10.62.2.1/24", "10.62.2.3/24")));
                assert_ne!(iab, iac);
                let lla_b = lab.link_local(0, "ab");
                let lla_c = lab.link_local(0, "ac");
                lab.enter(0);
                let mut a = MdnsSockets::open().unwrap();
                a.join(iab, true, true).unwrap();
                a.join(iac, true, true).unwrap();
                lab.enter(1);
                let mut b = MdnsSockets::open().unwrap();
                b.join(iba, true, true).unwrap();
                lab.enter(2);
                let mut c = MdnsSockets::open().unwrap();
                c.join(ica, true, true).unwrap();

                for (group, v6) in [(GROUP4, false), (GROUP6, true)] {
                    a.send(iab, group, b"for b").unwrap();
                    let (r, p) = wait_recv(&mut b, v6, 2000).expect("b hears a on ab");
                    assert_eq!(p, b"for b");
                    let want_src: IpAddr = if v6 {
                        IpAddr::V6(lla_b)
                    } else {
                        "10.62.1.1".parse().unwrap()
                    };
                    assert_eq!((r.from.ip(), r.ifindex, r.ttl), (want_src, iba, Some(255)));
                    nothing(&mut c, v6);

                    a.send(iac, group, b"for c").unwrap();
                    let (r, p) = wait_recv(&mut c, v6, 2000).expect("c hears a on ac");
                    assert_eq!(p, b"for c");
                    let want_src: IpAddr = if v6 {
                        IpAddr::V6(lla_c)
                    } else {
                        "10.62.2.1".parse().unwrap()
                    };
                    assert_eq!((r.from.ip(), r.ifindex), (want_src, ica));
                    nothing(&mut b, v6);
                    nothing(&mut a, v6);

                    // And A tells its two interfaces apart on receipt.
                    b.send(iba, group, b"from b").unwrap();
                    c.send(ica, group, b"from c").unwrap();
                    let mut got = Vec::new();
                    for _ in 0..2 {
                        let (r, p) = wait_recv(&mut a, v6, 2000).expect("a hears b and c");
                        got.push((r.ifindex, p));
                    }
                    got.sort();
                    let mut want = vec![(iab, b"from b".to_vec()), (iac, b"from c".to_vec())];
                    want.sort();
                    assert_eq!(got, want);
                }
            },
        );
    }

    /// join is idempotent, follows the family flags, and leave stops reception.
    #[test]
    fn join_and_leave() {
        lab("mcast::join_and_leave", 2, |lab| {
            let (ia, ib) = lab.veth(0, "mca", 1, "mcb", None);
            lab.enter(0);
            let mut a = MdnsSockets::open().unwrap();
            lab.enter(1);
            let b = MdnsSockets::open().unwrap();
            let probe = |a: &mut MdnsSockets, want4: bool, want6: bool| {
                b.send(ib, GROUP4, b"p4").unwrap();
                b.send(ib, GROUP6, b"p6").unwrap();
                for (v6, want) in [(false, want4), (true, want6)] {
                    let got = wait_recv(a, v6, if want { 2000 } else { QUIET_MS });
                    assert_eq!(got.is_some(), want, "v6 {v6}: {got:?}");
                }
            };
            probe(&mut a, false, false);
            a.join(ia, true, true).unwrap();
            a.join(ia, true, true).unwrap();
            assert_eq!(a.joined().collect::<Vec<_>>(), [(ia, true, true)]);
            probe(&mut a, true, true);
            a.join(ia, true, false).unwrap();
            probe(&mut a, true, false);
            a.join(ia, false, true).unwrap();
            assert_eq!(a.joined().collect::<Vec<_>>(), [(ia, false, true)]);
            probe(&mut a, false, true);
            a.leave(ia).unwrap();
            a.leave(ia).unwrap();
            assert_eq!(a.joined().count(), 0);
            probe(&mut a, false, false);
            a.join(ia, true, true).unwrap();
            probe(&mut a, true, true);

            // Pitfall: the interface has no IPv4 address, so B's IPv4
            // multicast leaves with source 0.0.0.0 (nothing on-link).
            b.send(ib, GROUP4, b"no address").unwrap();
            let (r, _) = wait_recv(&mut a, false, 2000).expect("sent anyway");
            assert_eq!(r.from, "0.0.0.0:5353".parse().unwrap());

            // The interface disappears: leave still forgets it.
            lab.enter(0);
            let ok = Command::new("ip")
                .args(["link", "del", "mca"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ip link del");
            a.leave(ia).unwrap();
            assert_eq!(a.joined().count(), 0);
            let e = a.join(ia, true, true).unwrap_err();
            assert!(e.to_string().contains(&format!("index {ia}")), "{e}");
        });
    }

    /// Two sockets on port 5353 in one namespace (as with Avahi on the same
    /// box) both get every multicast; a unicast reaches one of them.
    #[test]
    fn two_responders_share_the_port() {
        lab("mcast::two_responders_share_the_port", 2, |lab| {
            let (ia, ib) = lab.veth(0, "mca", 1, "mcb", Some(("10.61.0.1/24", "10.61.0.2/24")));
            lab.enter(0);
            let mut socks = vec![MdnsSockets::open().unwrap(), MdnsSockets::open().unwrap()];
            if let Some(s) = open_as_other_user() {
                socks.push(s);
            }
            for s in &mut socks {
                s.join(ia, true, true).unwrap();
            }
            // Not joined: the kernel gives it nothing (IP_MULTICAST_ALL and
            // IPV6_MULTICAST_ALL off), even though its neighbours joined.
            let mut idle = MdnsSockets::open().unwrap();
            lab.enter(1);
            let mut b = MdnsSockets::open().unwrap();
            b.join(ib, true, true).unwrap();
            b.send(ib, GROUP4, b"all4").unwrap();
            b.send(ib, GROUP6, b"all6").unwrap();
            for (i, s) in socks.iter_mut().enumerate() {
                let (_, p) = wait_recv(s, false, 2000).unwrap_or_else(|| panic!("socket {i} v4"));
                assert_eq!(p, b"all4");
                let (_, p) = wait_recv(s, true, 2000).unwrap_or_else(|| panic!("socket {i} v6"));
                assert_eq!(p, b"all6");
            }
            nothing(&mut idle, false);
            nothing(&mut idle, true);
            assert_eq!(
                idle.stats(),
                McastStats::default(),
                "filtered by the kernel"
            );
            drop(idle); // it would take its share of unicasts
            b.send(ib, "10.61.0.1:5353".parse().unwrap(), b"one")
                .unwrap();
            let got = socks
                .iter_mut()
                .map(|s| wait_recv(s, false, QUIET_MS).is_some())
                .filter(|&heard| heard)
                .count();
            assert_eq!(got, 1, "a unicast to 5353 reaches one socket");
        });
    }

    /// As Avahi does: a socket owned by another user (here `nobody`), made
    /// while this thread alone runs with that effective uid.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn open_as_other_user() -> Option<MdnsSockets> {
        // This thread only (libc's setresuid would change every
        // thread's); saved uid 0 lets us come back.
        let set = |euid: libc::uid_t| {
            if let Err(e) = crate::sys::socket::thread::set_euid(euid) {
                panic!("setresuid: {e}");
            }
        };
        set(65534);
        let s = MdnsSockets::open();
        set(0);
        Some(s.expect("open as nobody next to root's sockets"))
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn open_as_other_user() -> Option<MdnsSockets> {
        None
    }

    /// Unprivileged, over loopback: interface filtering, packet info,
    /// unicast TTL, argument errors.
    #[test]
    fn loopback_unicast() {
        if !usable_here("mcast::loopback_unicast") {
            return;
        }
        let mut m = MdnsSockets::bind(0).unwrap();
        let lo = netif::if_index("lo").unwrap();
        let q = UdpSocket::bind("127.0.0.1:0").unwrap();
        q.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let port4 = m.local_addr(false).unwrap().port();
        q.send_to(b"early", ("127.0.0.1", port4)).unwrap();
        assert!(
            wait_recv(&mut m, false, QUIET_MS).is_none(),
            "lo not joined"
        );
        assert_eq!(m.stats().not_joined, 1);
        m.join(lo, true, true).unwrap();
        q.send_to(b"hello", ("127.0.0.1", port4)).unwrap();
        let (r, p) = wait_recv(&mut m, false, 2000).expect("unicast on lo");
        assert_eq!(p, b"hello");
        assert_eq!(
            (r.from, r.to, r.ifindex),
            (q.local_addr().unwrap(), "127.0.0.1".parse().unwrap(), lo)
        );
        assert!(r.ttl.is_some());
        m.send(lo, r.from, b"back").unwrap();
        let mut buf = [0u8; 16];
        let (n, src) = q.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], src.port()), (&b"back"[..], port4));
        // Unicast from an mDNS socket carries TTL 255 (RFC 6762 §11).
        let mut peer = MdnsSockets::bind(0).unwrap();
        peer.join(lo, true, true).unwrap();
        let to = SocketAddr::new(
            "127.0.0.1".parse().unwrap(),
            peer.local_addr(false).unwrap().port(),
        );
        m.send(lo, to, b"ttl").unwrap();
        let (r, _) = wait_recv(&mut peer, false, 2000).expect("unicast 255");
        assert_eq!(r.ttl, Some(255));
        // A datagram larger than the buffer is dropped and counted.
        m.send(lo, to, &[7u8; 100]).unwrap();
        let fd = peer.v4_fd().unwrap();
        let mut small = [0u8; 10];
        let mut got = None;
        for _ in 0..200 {
            got = peer.recv(fd, &mut small).unwrap();
            if peer.stats().truncated == 1 || got.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!((got, peer.stats().truncated), (None, 1));
        if let Ok(a6) = peer.local_addr(true) {
            let to = SocketAddr::new("::1".parse().unwrap(), a6.port());
            m.send(lo, to, b"six").unwrap();
            let (r, p) = wait_recv(&mut peer, true, 2000).expect("unicast on ::1");
            assert_eq!(
                (p.as_slice(), r.ttl, r.ifindex),
                (&b"six"[..], Some(255), lo)
            );
        }
        // Argument errors.
        assert_eq!(
            m.send(0, to, b"x").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            m.recv(0, &mut buf).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let e = m.join(999_999, true, true).unwrap_err();
        assert!(e.to_string().contains("999999"), "{e}");
        assert_eq!(m.joined().count(), 1, "failed join is not recorded");
        m.leave(999_998).unwrap();
        for i in 0..MAX_JOINED as u32 {
            let _ = m.join(lo + 1000 + i, true, false);
        }
        assert!(m.joined().count() <= MAX_JOINED);
    }

    #[test]
    fn scope_rules() {
        for (s, want) in [
            ("fe80::1", true),
            ("febf::1", true),
            ("fec0::1", false),
            ("ff02::fb", true),
            ("ff12::1", true),
            ("ff05::1", false),
            ("2001:db8::1", false),
        ] {
            assert_eq!(needs_scope(&s.parse().unwrap()), want, "{s}");
        }
    }
}
