//! Small safe wrappers over libc calls shared by the IO modules.
//!
//! `unsafe` is denied in the whole crate (`lib.rs`) and allowed only here
//! and in the modules that talk to the kernel directly (`overlay::device`,
//! `runtime::{udp, mcast, netif}`), each use with a `SAFETY:` line.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd};

/// `setsockopt(2)` with a plain C value (`c_int`, or an option struct).
pub(crate) fn setsockopt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a valid `T` (a C option struct or int) for the stated length.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `poll(2)` over `fds` for up to `timeout_ms` (negative: forever);
/// returns how many have events.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, initialised array of pollfd of the given length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// `mlockall(MCL_CURRENT | MCL_FUTURE)`: every page of the process stays
/// in memory (the Quark erratum workaround, `console::cli::quark`).
pub(crate) fn lock_all_memory() -> io::Result<()> {
    // SAFETY: mlockall takes flags only and changes no Rust-visible state.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } < 0 {
        return Err(io::Error::last_os_error());
    }
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

/// Asks for `bytes` of kernel receive and send buffer on a socket, best
/// effort: the `FORCE` variants pass `rmem_max`/`wmem_max` as root only,
/// the plain ones are capped by them.
pub(crate) fn set_socket_buffers(fd: &OwnedFd, bytes: libc::c_int) {
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if setsockopt(fd, libc::SOL_SOCKET, force, &bytes).is_err() {
            let _ = setsockopt(fd, libc::SOL_SOCKET, plain, &bytes);
        }
    }
}

/// `getsockopt(2)` into a plain C value (`c_int`, or an option struct
/// valid for any bit pattern); fails unless the kernel wrote all of it.
pub(crate) fn getsockopt<T: Copy + Default>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    let mut value = T::default();
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is writable for `len` bytes, and `len` is passed by pointer.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != mem::size_of::<T>() {
        return Err(io::ErrorKind::InvalidData.into());
    }
    Ok(value)
}

/// The payload of the first control message of `level`/`kind` in `msg`
/// that is large enough for a `T`, read unaligned; at most `limit`
/// messages are looked at. `T` must be a plain C value (an integer or a
/// C struct of integers), valid for any bit pattern.
pub(crate) fn cmsg_find<T: Copy>(
    msg: &libc::msghdr,
    level: libc::c_int,
    kind: libc::c_int,
    limit: usize,
) -> Option<T> {
    // SAFETY: `msg` was filled by recvmsg/recvmmsg; the CMSG macros stay
    // within `msg_controllen`, and the payload is read unaligned only after
    // its length was checked against `T`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        let mut seen = 0;
        while !c.is_null() && seen < limit {
            seen += 1;
            let h = &*c;
            let data_len = (h.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            if h.cmsg_level == level && h.cmsg_type == kind && data_len >= mem::size_of::<T>() {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()));
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}
