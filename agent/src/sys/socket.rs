//! Descriptors: sockets, device nodes, one-message IO, `poll`, and the
//! process-wide settings the daemon makes at start.

use std::ffi::CStr;
use std::io::{self, IoSliceMut};
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::addr::{from_raw, to_raw};
use super::cmsg::{zeroed_msghdr, CmsgBuf};
use super::{check, check_size, zeroed, Plain};

/// `socket(2)`; `ty` carries the flags (`SOCK_NONBLOCK`, `SOCK_CLOEXEC`).
pub(crate) fn socket(
    domain: libc::c_int,
    ty: libc::c_int,
    proto: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the fd is checked and owned below.
    let raw = check(unsafe { libc::socket(domain, ty, proto) })?;
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `bind(2)` to an IP address.
pub(crate) fn bind(fd: RawFd, addr: SocketAddr) -> io::Result<()> {
    let (storage, len) = to_raw(addr);
    bind_raw(fd, &storage, len)
}

/// `bind(2)` to any C socket address `sa` of `len` bytes.
pub(crate) fn bind_raw<A: Plain>(fd: RawFd, sa: &A, len: libc::socklen_t) -> io::Result<()> {
    let len = len.min(mem::size_of::<A>() as libc::socklen_t);
    // SAFETY: `sa` is a valid socket address of at least `len` bytes.
    check(unsafe { libc::bind(fd, (sa as *const A).cast(), len) })?;
    Ok(())
}

/// The address a socket is bound to (`getsockname(2)`).
pub(crate) fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut storage: libc::sockaddr_storage = zeroed();
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is valid for writes of `len` bytes.
    check(unsafe {
        libc::getsockname(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    from_raw(&storage).ok_or_else(|| io::Error::other("getsockname: unknown family"))
}

/// `open(2)` of `path` with `flags`.
pub(crate) fn open(path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; the returned fd is checked and owned.
    let fd = check(unsafe { libc::open(path.as_ptr(), flags) })?;
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mknod(2)`: a character device node `major,minor` at `path`.
pub(crate) fn mknod_char(
    path: &CStr,
    mode: libc::mode_t,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated; mknod has no other preconditions.
    check(unsafe {
        libc::mknod(
            path.as_ptr(),
            libc::S_IFCHR | mode,
            libc::makedev(major, minor),
        )
    })?;
    Ok(())
}

/// `readv(2)` into `bufs`; returns the bytes read.
pub(crate) fn readv(fd: RawFd, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` on Unix; each
    // describes a live, writable buffer of its length.
    check_size(unsafe {
        libc::readv(
            fd,
            bufs.as_mut_ptr().cast::<libc::iovec>(),
            bufs.len() as libc::c_int,
        )
    })
}

/// `write(2)` of `data`; returns the bytes written.
pub(crate) fn write(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is valid for reads of its length.
    check_size(unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) })
}

/// `send(2)` of `data` on a connected or bound socket.
pub(crate) fn send(fd: RawFd, data: &[u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `data` is valid for reads of its length; no address.
    check_size(unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), flags) })
}

/// `recv(2)` into `buf`; with `MSG_TRUNC` the result may exceed its length.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length.
    check_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
}

/// What one `recvmsg` returned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received<A> {
    /// Bytes of the datagram (with `MSG_TRUNC` in the flags: its full
    /// length, possibly beyond the buffer).
    pub len: usize,
    /// `MSG_TRUNC` came back: the datagram did not fit.
    pub truncated: bool,
    /// Bytes of control data written into the control buffer.
    pub control_len: usize,
    /// The source address.
    pub from: A,
}

/// `recvmsg(2)` of one datagram into `buf`, its source into `name`
/// (any C socket address) and control data into `ctrl`.
pub(crate) fn recvmsg_raw<A: Plain, const N: usize>(
    fd: RawFd,
    buf: &mut [u8],
    name: &mut A,
    ctrl: &mut CmsgBuf<N>,
    flags: libc::c_int,
) -> io::Result<Received<()>> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg = zeroed_msghdr();
    msg.msg_name = (name as *mut A).cast();
    msg.msg_namelen = mem::size_of::<A>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.as_mut_ptr();
    msg.msg_controllen = N as _;
    // SAFETY: every pointer in `msg` points to live buffers of the stated
    // lengths, which outlive the call.
    let n = check_size(unsafe { libc::recvmsg(fd, &mut msg, flags) })?;
    Ok(Received {
        len: n,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        control_len: control_len(msg.msg_controllen),
        from: (),
    })
}

/// `recvmsg(2)` of one datagram from an IP socket; an unknown source
/// family gives `from: None`.
#[cfg(feature = "discovery")]
pub(crate) fn recvmsg<const N: usize>(
    fd: RawFd,
    buf: &mut [u8],
    ctrl: &mut CmsgBuf<N>,
    flags: libc::c_int,
) -> io::Result<Received<Option<SocketAddr>>> {
    let mut storage: libc::sockaddr_storage = zeroed();
    let r = recvmsg_raw(fd, buf, &mut storage, ctrl, flags)?;
    Ok(Received {
        len: r.len,
        truncated: r.truncated,
        control_len: r.control_len,
        from: from_raw(&storage),
    })
}

/// `msg_controllen` as a length: `size_t` on glibc, `socklen_t` on musl.
pub(crate) fn control_len<T: TryInto<usize>>(len: T) -> usize {
    len.try_into().unwrap_or(0)
}

/// `sendmsg(2)` of `data` to `to`, with the first `control_len` bytes
/// of `ctrl` as control data (none when 0); returns the bytes sent.
pub(crate) fn sendmsg<const N: usize>(
    fd: RawFd,
    to: SocketAddr,
    data: &[u8],
    ctrl: &CmsgBuf<N>,
    control_len: usize,
    flags: libc::c_int,
) -> io::Result<usize> {
    let (mut storage, namelen) = to_raw(to);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut msg = zeroed_msghdr();
    msg.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = namelen;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if control_len > 0 {
        msg.msg_control = ctrl.as_ptr() as *mut libc::c_void;
        msg.msg_controllen = control_len.min(N) as _;
    }
    // SAFETY: `msg` points to live buffers of the stated lengths; the
    // kernel only reads them (`data` is never written through `iov`).
    check_size(unsafe { libc::sendmsg(fd, &msg, flags) })
}

/// `poll(2)` over `fds` for up to `timeout_ms` (negative: forever);
/// returns how many have events.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, initialised array of pollfd of the given length.
    let n = check(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) })?;
    Ok(n as usize)
}

/// Waits up to `timeout_ms` for `fd` to become readable.
pub(crate) fn poll_readable(fd: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    Ok(poll(std::slice::from_mut(&mut p), timeout_ms)? > 0)
}

/// `mlockall(MCL_CURRENT | MCL_FUTURE)`: every page of the process stays
/// in memory (the Quark erratum workaround, `console::cli::quark`).
pub(crate) fn lock_all_memory() -> io::Result<()> {
    // SAFETY: mlockall takes flags only and changes no Rust-visible state.
    check(unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) })?;
    Ok(())
}

/// Ignores `SIGPIPE` for the process: a closed console socket gives
/// `EPIPE` instead of killing the agent.
pub(crate) fn ignore_sigpipe() -> io::Result<()> {
    // SAFETY: setting the disposition of SIGPIPE to SIG_IGN is always valid
    // and installs no handler code.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The name of interface `ifindex` (`if_indextoname(3)`), if it exists.
#[cfg(feature = "discovery")]
pub(crate) fn if_name(ifindex: u32) -> Option<String> {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` has the IF_NAMESIZE bytes if_indextoname may write.
    let p = unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    let bytes: Vec<u8> = name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Test helpers that change the calling thread only.
#[cfg(test)]
pub(crate) mod thread {
    use std::io;

    /// Moves this thread to a fresh network namespace (`unshare(2)`).
    pub(crate) fn unshare_net() -> io::Result<()> {
        // SAFETY: unshare only changes this thread's namespace.
        super::check(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
        Ok(())
    }

    /// Moves this thread into the network namespace `ns` (`setns(2)`).
    #[cfg(feature = "discovery")]
    pub(crate) fn enter_net(ns: &std::os::fd::OwnedFd) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a namespace descriptor the caller owns; only
        // this thread moves.
        super::check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
        Ok(())
    }

    /// Sets this thread's effective uid (the raw syscall: libc's
    /// `setresuid` would change every thread's).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub(crate) fn set_euid(euid: libc::uid_t) -> io::Result<()> {
        // SAFETY: the raw syscall changes this thread's credentials only.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_setresuid,
                -1 as libc::c_long,
                euid as libc::c_long,
                -1 as libc::c_long,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
