//! Interface configuration without shelling out to `ip`.
//!
//! - Link settings (MTU, MAC, up/down, index) use the classic `SIOC*`
//!   ioctls on a throw-away datagram socket.
//! - Addresses use rtnetlink (`RTM_NEWADDR` / `RTM_DELADDR` / `RTM_GETADDR`
//!   on a `NETLINK_ROUTE` socket), so an interface can carry several
//!   addresses of both families (the `SIOCSIFADDR` ioctl would replace the
//!   primary IPv4 address instead).
//!
//! Every call opens its own socket in the calling thread's network
//! namespace and closes it before returning; nothing is cached. Errors are
//! `io::Error`s of the underlying kind whose message names the interface
//! and the operation.
//!
//! The netlink messages themselves are built and parsed in
//! `runtime::netlink` (pure); here they are sent and their replies read,
//! with a timeout and a bounded number of `recv` calls.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::netlink::{
    address_message, dump_request, error_code, messages, parse_address, NLMSG_DONE, NLMSG_ERROR,
    NLM_F_CREATE, NLM_F_REPLACE, RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR, SEQ,
};
use crate::config::IpCidr;
use crate::sys::ioctl::{self as sys_ioctl, IfRequest, Ifreq};
use crate::sys::socket::{poll_readable, recv, send};

/// Bytes of one netlink receive (the kernel's dump messages fit 32 KiB).
const NETLINK_RECV_BYTES: usize = 32 * 1024;
/// Receives while waiting for one acknowledgement or one dump.
const NETLINK_MAX_RECVS: usize = 64;
/// Wait for each netlink reply at most this long.
const NETLINK_TIMEOUT_MS: libc::c_int = 2000;
/// Addresses returned by [`addresses`] at most (the rest are ignored).
const MAX_LISTED_ADDRESSES: usize = 256;

// ---- link settings by ioctl ----

/// Index of interface `name`.
pub fn if_index(name: &str) -> io::Result<u32> {
    let mut req = ifreq(name)?;
    ioctl(name, "get index", IfRequest::GetIndex, &mut req)?;
    u32::try_from(req.int()).map_err(|_| err_other(name, "get index", "negative index"))
}

/// Sets the MTU of `name`.
pub fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.set_int(libc::c_int::try_from(mtu).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name}: set mtu {mtu}: too large"),
        )
    })?);
    ioctl(name, "set mtu", IfRequest::SetMtu, &mut req)
}

/// The MTU of `name`.
pub fn mtu(name: &str) -> io::Result<u32> {
    let mut req = ifreq(name)?;
    ioctl(name, "get mtu", IfRequest::GetMtu, &mut req)?;
    u32::try_from(req.int()).map_err(|_| err_other(name, "get mtu", "negative mtu"))
}

/// Sets the Ethernet address of `name`. Drivers without live address
/// change (not TAP nor veth) need the interface down first.
pub fn set_mac(name: &str, mac: [u8; 6]) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.set_hwaddr(mac);
    ioctl(name, "set mac", IfRequest::SetHwAddr, &mut req)
}

/// The hardware address of `name` (first 6 bytes).
pub fn mac(name: &str) -> io::Result<[u8; 6]> {
    let mut req = ifreq(name)?;
    ioctl(name, "get mac", IfRequest::GetHwAddr, &mut req)?;
    Ok(req.hwaddr())
}

/// Brings `name` administratively up or down (`IFF_UP`).
pub fn set_up(name: &str, up: bool) -> io::Result<()> {
    let mut req = ifreq(name)?;
    ioctl(name, "get flags", IfRequest::GetFlags, &mut req)?;
    let flags = req.flags();
    // IFF_UP is 1: fits a c_short.
    let up_flag = libc::IFF_UP as libc::c_short;
    req.set_flags(if up {
        flags | up_flag
    } else {
        flags & !up_flag
    });
    ioctl(name, "set flags", IfRequest::SetFlags, &mut req)
}

/// Whether `name` is administratively up.
pub fn is_up(name: &str) -> io::Result<bool> {
    let mut req = ifreq(name)?;
    ioctl(name, "get flags", IfRequest::GetFlags, &mut req)?;
    Ok(libc::c_int::from(req.flags()) & libc::IFF_UP != 0)
}

/// An `ifreq` naming `name`; refuses names the kernel would truncate.
pub(crate) fn ifreq(name: &str) -> io::Result<Ifreq> {
    Ifreq::new(name)
}

fn ioctl(name: &str, what: &str, request: IfRequest, req: &mut Ifreq) -> io::Result<()> {
    let sock = socket(libc::AF_INET, libc::SOCK_DGRAM, 0).map_err(|e| with_name(name, what, e))?;
    sys_ioctl::ifreq(sock.as_raw_fd(), request, req).map_err(|e| with_name(name, what, e))
}

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    crate::sys::socket::socket(domain, ty | libc::SOCK_CLOEXEC, proto)
}

fn with_name(name: &str, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{name}: {what}: {e}"))
}

fn err_other(name: &str, what: &str, msg: &str) -> io::Error {
    io::Error::other(format!("{name}: {what}: {msg}"))
}

// ---- addresses by rtnetlink ----

/// Adds `cidr` to `name` (replacing it if present, so re-adding is not an
/// error). IPv4 gets the subnet broadcast; IPv6 skips duplicate address
/// detection (`IFA_F_NODAD`) so the address is usable at once.
pub fn add_address(name: &str, cidr: &IpCidr) -> io::Result<()> {
    let what = format!("add address {cidr}");
    let index = if_index(name)?;
    let msg = address_message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, index, cidr)
        .map_err(|e| with_name(name, &what, e))?;
    request_ack(&msg).map_err(|e| with_name(name, &what, e))
}

/// Removes `cidr` from `name`. An address that is not there gives an
/// error of kind `AddrNotAvailable`.
pub fn remove_address(name: &str, cidr: &IpCidr) -> io::Result<()> {
    let what = format!("remove address {cidr}");
    let index = if_index(name)?;
    let msg =
        address_message(RTM_DELADDR, 0, index, cidr).map_err(|e| with_name(name, &what, e))?;
    request_ack(&msg).map_err(|e| with_name(name, &what, e))
}

/// Addresses of `name`, both families, in kernel order (at most
/// `MAX_LISTED_ADDRESSES`).
pub fn addresses(name: &str) -> io::Result<Vec<IpCidr>> {
    let what = "list addresses";
    let index = if_index(name)?;
    let msg = dump_request(RTM_GETADDR);
    let mut out = Vec::new();
    dump(&msg, |kind, payload| {
        if kind == RTM_NEWADDR && out.len() < MAX_LISTED_ADDRESSES {
            if let Some((i, cidr)) = parse_address(payload) {
                if i == index {
                    out.push(cidr);
                }
            }
        }
    })
    .map_err(|e| with_name(name, what, e))?;
    Ok(out)
}

fn netlink_socket() -> io::Result<OwnedFd> {
    socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)
}

fn send_all(sock: &OwnedFd, msg: &[u8]) -> io::Result<()> {
    // No address means the kernel.
    let n = send(sock.as_raw_fd(), msg, 0)?;
    if n != msg.len() {
        return Err(io::Error::other("short netlink send"));
    }
    Ok(())
}

/// Waits (bounded) for a reply and receives it into `buf`.
fn recv_reply<'a>(sock: &OwnedFd, buf: &'a mut [u8]) -> io::Result<&'a [u8]> {
    for _ in 0..4 {
        match poll_readable(sock.as_raw_fd(), NETLINK_TIMEOUT_MS) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(false) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no netlink reply"));
            }
            Ok(true) => {}
        }
        let n = match recv(sock.as_raw_fd(), buf, libc::MSG_TRUNC) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(n) => n,
        };
        if n > buf.len() {
            return Err(io::Error::other("netlink reply truncated"));
        }
        return Ok(buf.get(..n).unwrap_or(&[]));
    }
    Err(io::Error::new(
        io::ErrorKind::Interrupted,
        "netlink receive interrupted",
    ))
}

/// Sends one request carrying `NLM_F_ACK` and waits for its acknowledgement.
fn request_ack(msg: &[u8]) -> io::Result<()> {
    let sock = netlink_socket()?;
    send_all(&sock, msg)?;
    let mut buf = vec![0u8; NETLINK_RECV_BYTES];
    for _ in 0..NETLINK_MAX_RECVS {
        let got = recv_reply(&sock, &mut buf)?;
        for (kind, seq, payload) in messages(got) {
            if kind == NLMSG_ERROR && seq == SEQ {
                return match error_code(payload) {
                    Some(0) => Ok(()),
                    Some(e) => Err(io::Error::from_raw_os_error(e.saturating_neg())),
                    None => Err(io::Error::other("malformed netlink error")),
                };
            }
        }
    }
    Err(io::Error::other("no netlink acknowledgement"))
}

/// Sends a dump request and hands each reply message (type, payload) to `f`.
fn dump(msg: &[u8], mut f: impl FnMut(u16, &[u8])) -> io::Result<()> {
    let sock = netlink_socket()?;
    send_all(&sock, msg)?;
    let mut buf = vec![0u8; NETLINK_RECV_BYTES];
    for _ in 0..NETLINK_MAX_RECVS {
        let got = recv_reply(&sock, &mut buf)?;
        for (kind, seq, payload) in messages(got) {
            if seq != SEQ {
                continue;
            }
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => match error_code(payload) {
                    Some(0) => return Ok(()),
                    Some(e) => return Err(io::Error::from_raw_os_error(e.saturating_neg())),
                    None => return Err(io::Error::other("malformed netlink error")),
                },
                _ => f(kind, payload),
            }
        }
    }
    Err(io::Error::other("netlink dump too long"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Set (to the emulator's name) by the qemu-user runner of `make
    /// test-cross`: system calls then go through qemu's translation,
    /// which lacks some socket options and does not translate the errno
    /// inside netlink error messages. Only tests of such kernel
    /// interfaces skip a part (loudly); protocol tests never do.
    pub(crate) const ENV_UNDER_QEMU: &str = "CLOUDY_UNDER_QEMU";

    /// True (after a counted skip of the whole test) under qemu-user.
    pub(crate) fn skip_under_qemu(test: &str, why: &str) -> bool {
        under_qemu(test, why, crate::testutil::skip)
    }

    /// True (after a counted skip of a part) under qemu-user.
    pub(crate) fn skip_part_under_qemu(test: &str, why: &str) -> bool {
        under_qemu(test, why, crate::testutil::skip_part)
    }

    fn under_qemu(test: &str, why: &str, record: fn(&str, &str)) -> bool {
        match std::env::var(ENV_UNDER_QEMU) {
            Ok(q) if !q.is_empty() => {
                record(test, &format!("under qemu-user ({q}): {why}"));
                true
            }
            _ => false,
        }
    }

    /// Runs `f` in a thread moved to a fresh network namespace (gone when
    /// the thread ends). `None` (after a loud message) when not root.
    pub(crate) fn in_netns<T: Send + 'static>(
        test: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        if !is_root() {
            crate::testutil::skip(test, "needs root (network namespace)");
            return None;
        }
        let handle = crate::testutil::spawn_named(move || {
            if let Err(e) = crate::sys::socket::thread::unshare_net() {
                panic!("unshare(CLONE_NEWNET): {e}");
            }
            set_up("lo", true).expect("lo up");
            f()
        });
        Some(handle.join().expect("namespace thread panicked"))
    }

    use crate::testutil::cidr;

    #[test]
    fn bad_names_are_refused() {
        assert!(if_index("").is_err());
        assert!(if_index("0123456789abcdef").is_err());
        assert!(if_index("a\0b").is_err());
        let e = if_index("nonexistent0").unwrap_err();
        assert!(e.to_string().contains("nonexistent0"), "{e}");
    }

    #[test]
    fn configure_in_namespace() {
        let Some(()) = in_netns("netif::configure_in_namespace", || {
            assert!(is_up("lo").unwrap());
            assert_eq!(if_index("lo").unwrap(), 1);
            // A TAP is the only interface we can create without extra tools.
            let tap = crate::overlay::device::Tap::create("cltest0").unwrap();
            let name = crate::overlay::device::FrameDevice::name(&tap).to_string();
            set_mtu(&name, 1380).unwrap();
            assert_eq!(mtu(&name).unwrap(), 1380);
            let m = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
            set_mac(&name, m).unwrap();
            assert_eq!(mac(&name).unwrap(), m);
            let want = [
                cidr("10.77.0.1/24"),
                cidr("10.78.0.1/16"),
                cidr("fd00:77::1/64"),
            ];
            for c in &want {
                add_address(&name, c).unwrap();
            }
            add_address(&name, &want[0]).unwrap(); // idempotent
            set_up(&name, true).unwrap();
            assert!(is_up(&name).unwrap());
            let got = addresses(&name).unwrap();
            for c in &want {
                assert!(got.contains(c), "{c} missing from {got:?}");
            }
            remove_address(&name, &want[1]).unwrap();
            let e = remove_address(&name, &want[1]).unwrap_err();
            if !skip_part_under_qemu(
                "netif::configure_in_namespace (errno of a refused removal)",
                "the netlink error carries the host's errno number",
            ) {
                assert_eq!(e.kind(), io::ErrorKind::AddrNotAvailable, "{e}");
            }
            assert!(e.to_string().contains(&name), "{e}");
            let got = addresses(&name).unwrap();
            assert!(
                !got.contains(&want[1]) && got.contains(&want[0]) && got.contains(&want[2]),
                "{got:?}"
            );
            set_up(&name, false).unwrap();
            assert!(!is_up(&name).unwrap());
            drop(tap);
            assert!(if_index(&name).is_err(), "TAP must vanish when dropped");
        }) else {
            return;
        };
    }
}
