//! The system layer: every `unsafe` of the crate lives here.
//!
//! `lib.rs` denies `unsafe_code` and allows it for this module only. Each
//! `unsafe` block carries a `SAFETY:` line; what leaves this module is
//! safe and typed: descriptors as `OwnedFd`/`RawFd`, addresses as
//! `SocketAddr`, buffers as slices. The IO modules (`runtime::{udp,
//! mcast, netif}`, `overlay::device`) keep the policy (which options,
//! retries, counting and dropping); this layer only makes the calls.
//!
//! - [`socket`]: `socket`, `bind`, `getsockname`, `send`/`recv`,
//!   `sendmsg`/`recvmsg` of one datagram, `open`/`read`/`write` of device
//!   nodes, `poll`, and process-wide settings.
//! - [`addr`]: `SocketAddr` ⇄ `sockaddr_storage`.
//! - [`sockopt`]: `setsockopt`/`getsockopt` of [`Plain`] values.
//! - [`cmsg`]: control messages, read from and written into [`cmsg::CmsgBuf`].
//! - [`mmsg`]: `recvmmsg`/`sendmmsg` batches (UDP GSO/GRO), without copies.
//! - [`ioctl`]: interface (`SIOC*`) and TUN/TAP ioctls over [`ioctl::Ifreq`].
//! - [`packet`]: AF_PACKET binding, receive with the link-layer address,
//!   `PACKET_*` option structs.
//! - `gf256_simd` (feature `store`): the SIMD kernels of GF(2^8) region
//!   arithmetic (GFNI, AVX2, SSSE3, NEON), chosen by CPU feature detection,
//!   behind one safe `combine` that checks the lengths itself.
//!
//! Nothing here allocates on a per-packet path, and no payload is copied:
//! the kernel reads and writes the caller's buffers.

pub(crate) mod addr;
pub(crate) mod cmsg;
#[cfg(feature = "store")]
pub(crate) mod gf256_simd;
pub(crate) mod ioctl;
pub(crate) mod mmsg;
pub(crate) mod packet;
pub(crate) mod socket;
pub(crate) mod sockopt;

pub(crate) use socket::{ignore_sigpipe, lock_all_memory, poll};

/// A plain C value: an integer, or a C struct of integers (and raw
/// pointers), with no invariant beyond its bytes.
///
/// # Safety
/// Every bit pattern, all-zero included, must be a valid value of the
/// type: the kernel writes such values (`getsockopt`, control messages)
/// and [`zeroed`] makes them.
pub(crate) unsafe trait Plain: Copy {}

// SAFETY: integers and C structs of integers (and raw pointers): any bit
// pattern is valid.
unsafe impl Plain for libc::c_int {}
// SAFETY: as above.
unsafe impl Plain for libc::c_uint {}
// SAFETY: as above.
unsafe impl Plain for u16 {}
// SAFETY: as above.
unsafe impl Plain for libc::ip_mreqn {}
// SAFETY: as above.
unsafe impl Plain for libc::ipv6_mreq {}
// SAFETY: as above.
unsafe impl Plain for libc::in_pktinfo {}
// SAFETY: as above.
unsafe impl Plain for libc::in6_pktinfo {}
// SAFETY: as above.
unsafe impl Plain for libc::packet_mreq {}
// SAFETY: as above.
unsafe impl Plain for libc::tpacket_auxdata {}
// SAFETY: as above.
unsafe impl Plain for libc::sockaddr_storage {}
// SAFETY: as above.
unsafe impl Plain for libc::sockaddr_ll {}

/// An all-zero `T`.
pub(crate) fn zeroed<T: Plain>() -> T {
    // SAFETY: `Plain` promises all-zero is a valid `T`.
    unsafe { std::mem::zeroed() }
}

/// A `c_int` syscall result: `-1` is the errno.
fn check(rc: libc::c_int) -> std::io::Result<libc::c_int> {
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

/// A `ssize_t` syscall result: negative is the errno.
fn check_size(n: isize) -> std::io::Result<usize> {
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}
