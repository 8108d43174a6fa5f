//! Socket options: `setsockopt(2)`/`getsockopt(2)` of [`Plain`] values.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd};

use super::{check, zeroed, Plain};

/// `setsockopt(2)` with a plain C value (`c_int`, or an option struct).
pub(crate) fn setsockopt<T: Plain>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a valid `T` (a C option struct or int) for the stated length.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `getsockopt(2)` into a plain C value; fails unless the kernel wrote
/// all of it.
pub(crate) fn getsockopt<T: Plain>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    let mut value: T = zeroed();
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is writable for `len` bytes (any bit pattern is a
    // valid `T`), and `len` is passed by pointer.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    })?;
    if len as usize != mem::size_of::<T>() {
        return Err(io::ErrorKind::InvalidData.into());
    }
    Ok(value)
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
