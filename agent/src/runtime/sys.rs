//! Small safe wrappers over libc calls shared by the IO modules.

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
