//! Interface and TUN/TAP ioctls.
//!
//! Each request is named by [`IfRequest`] (or has its own function), so
//! no caller can pass an ioctl that reads or writes more than the
//! argument given: an `ifreq` ([`Ifreq`]) or one integer.

use std::io;
use std::os::fd::RawFd;

use super::check;

/// `struct ifreq`: an interface name and one value (index, MTU, hardware
/// address or flags, depending on the request).
#[derive(Clone, Copy)]
pub(crate) struct Ifreq(libc::ifreq);

impl Ifreq {
    /// An `ifreq` naming `name`; refuses names the kernel would truncate.
    pub(crate) fn new(name: &str) -> io::Result<Ifreq> {
        if name.is_empty()
            || name.len() >= libc::IFNAMSIZ
            || name.bytes().any(|b| b == 0 || b == b'/')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{name:?}: invalid interface name (1 to {} bytes)",
                    libc::IFNAMSIZ - 1
                ),
            ));
        }
        // SAFETY: all-zero is a valid `ifreq` (a C struct of integers and arrays).
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        Ok(Ifreq(req))
    }

    /// The interface name (as the kernel wrote it back, e.g. after `%d`).
    pub(crate) fn name(&self) -> String {
        self.0
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| char::from(c as u8))
            .collect()
    }

    /// The value as an index or MTU (`ifru_ifindex`, `ifru_mtu`: one `int`).
    pub(crate) fn int(&self) -> libc::c_int {
        // SAFETY: every member of the union is plain integers; reading
        // its first `int` is valid whatever was written.
        unsafe { self.0.ifr_ifru.ifru_mtu }
    }

    pub(crate) fn set_int(&mut self, v: libc::c_int) {
        self.0.ifr_ifru.ifru_mtu = v;
    }

    /// The value as interface flags (`ifru_flags`).
    pub(crate) fn flags(&self) -> libc::c_short {
        // SAFETY: as in `int`: plain integers.
        unsafe { self.0.ifr_ifru.ifru_flags }
    }

    pub(crate) fn set_flags(&mut self, flags: libc::c_short) {
        self.0.ifr_ifru.ifru_flags = flags;
    }

    /// The value as an Ethernet address (first 6 bytes of `ifru_hwaddr`).
    pub(crate) fn hwaddr(&self) -> [u8; 6] {
        // SAFETY: as in `int`: plain integers.
        let sa = unsafe { self.0.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (dst, src) in mac.iter_mut().zip(sa.sa_data) {
            *dst = src as u8;
        }
        mac
    }

    /// Sets the value to Ethernet address `mac` (`ARPHRD_ETHER`).
    pub(crate) fn set_hwaddr(&mut self, mac: [u8; 6]) {
        // SAFETY: all-zero is a valid `sockaddr`.
        let mut sa: libc::sockaddr = unsafe { std::mem::zeroed() };
        sa.sa_family = libc::ARPHRD_ETHER;
        for (dst, src) in sa.sa_data.iter_mut().zip(mac) {
            *dst = src as libc::c_char;
        }
        self.0.ifr_ifru.ifru_hwaddr = sa;
    }
}

/// The ioctls that take one `ifreq`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IfRequest {
    GetIndex,
    GetMtu,
    SetMtu,
    GetHwAddr,
    SetHwAddr,
    GetFlags,
    SetFlags,
    /// `TUNSETIFF` on `/dev/net/tun`: reads name and flags, writes the name.
    TunSetIff,
}

impl IfRequest {
    fn code(self) -> libc::Ioctl {
        (match self {
            IfRequest::GetIndex => libc::SIOCGIFINDEX as libc::c_ulong,
            IfRequest::GetMtu => libc::SIOCGIFMTU as libc::c_ulong,
            IfRequest::SetMtu => libc::SIOCSIFMTU as libc::c_ulong,
            IfRequest::GetHwAddr => libc::SIOCGIFHWADDR as libc::c_ulong,
            IfRequest::SetHwAddr => libc::SIOCSIFHWADDR as libc::c_ulong,
            IfRequest::GetFlags => libc::SIOCGIFFLAGS as libc::c_ulong,
            IfRequest::SetFlags => libc::SIOCSIFFLAGS as libc::c_ulong,
            IfRequest::TunSetIff => libc::TUNSETIFF as libc::c_ulong,
        }) as libc::Ioctl
    }
}

/// `ioctl(fd, request, &mut req)`.
pub(crate) fn ifreq(fd: RawFd, request: IfRequest, req: &mut Ifreq) -> io::Result<()> {
    // SAFETY: `req` is a valid, NUL-terminated `ifreq` that outlives the
    // call; every `IfRequest` reads and writes at most one `ifreq`.
    check(unsafe { libc::ioctl(fd, request.code(), &mut req.0 as *mut libc::ifreq) })?;
    Ok(())
}

/// `TUNSETVNETHDRSZ`: the virtio-net header size of a TAP.
pub(crate) fn tun_set_vnet_hdr_size(fd: RawFd, size: libc::c_int) -> io::Result<()> {
    // SAFETY: TUNSETVNETHDRSZ reads one c_int through the pointer.
    check(unsafe { libc::ioctl(fd, libc::TUNSETVNETHDRSZ, &size as *const libc::c_int) })?;
    Ok(())
}

/// `TUNSETVNETLE`: the virtio-net header in little-endian order (`on`).
pub(crate) fn tun_set_vnet_le(fd: RawFd, on: bool) -> io::Result<()> {
    let v = libc::c_int::from(on);
    // SAFETY: TUNSETVNETLE reads one c_int through the pointer.
    check(unsafe { libc::ioctl(fd, libc::TUNSETVNETLE, &v as *const libc::c_int) })?;
    Ok(())
}

/// `TUNSETOFFLOAD`: the offloads (`TUN_F_*`) a TAP accepts.
pub(crate) fn tun_set_offload(fd: RawFd, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its flags by value (an unsigned long).
    check(unsafe { libc::ioctl(fd, libc::TUNSETOFFLOAD, flags as libc::c_ulong) })?;
    Ok(())
}
