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
