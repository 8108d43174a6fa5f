//! AF_PACKET: binding to an interface, receiving with the link-layer
//! address (packet type) and control data (`PACKET_AUXDATA`), and the
//! option structs of `SOL_PACKET`.

use std::io;
use std::mem;
use std::os::fd::RawFd;

use super::cmsg::CmsgBuf;
use super::socket::{bind_raw, recvmsg_raw, Received};
use super::{zeroed, Plain};

/// `struct tpacket_stats` (`PACKET_STATISTICS` for TPACKET_V1/V2 sockets).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TpacketStats {
    pub tp_packets: libc::c_uint,
    pub tp_drops: libc::c_uint,
}

// SAFETY: two integers: any bit pattern is valid.
unsafe impl Plain for TpacketStats {}

/// Binds `fd` to interface `ifindex` for protocol `protocol_be` (network
/// order, e.g. `ETH_P_ALL`).
pub(crate) fn bind(fd: RawFd, ifindex: libc::c_int, protocol_be: u16) -> io::Result<()> {
    let mut sll: libc::sockaddr_ll = zeroed();
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = protocol_be;
    sll.sll_ifindex = ifindex;
    bind_raw(
        fd,
        &sll,
        mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
    )
}

/// `recvmsg(2)` of one frame into `buf`, with its control data in
/// `ctrl`; `from` is the frame's `sll_pkttype` (`PACKET_OUTGOING`, ...).
pub(crate) fn recvmsg<const N: usize>(
    fd: RawFd,
    buf: &mut [u8],
    ctrl: &mut CmsgBuf<N>,
    flags: libc::c_int,
) -> io::Result<Received<u8>> {
    let mut sll: libc::sockaddr_ll = zeroed();
    let r = recvmsg_raw(fd, buf, &mut sll, ctrl, flags)?;
    Ok(Received {
        len: r.len,
        truncated: r.truncated,
        control_len: r.control_len,
        from: sll.sll_pkttype,
    })
}
