//! Batches of datagrams: `recvmmsg(2)` and `sendmmsg(2)`.
//!
//! The kernel reads from and writes into the caller's buffers directly:
//! no payload is copied and nothing is allocated. The C arrays
//! (`mmsghdr`, `iovec`, addresses, control data) live on the stack of
//! one call ([`recvmmsg`]) or in a [`SendMmsg`] that borrows the
//! payloads; their pointers are set right before each system call, so
//! moving a batch never leaves one dangling.

use std::io;
use std::marker::PhantomData;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::addr::{from_raw, to_raw};
use super::check;
use super::cmsg::CmsgBuf;
use super::socket::{control_len, Received};

/// `UDP_SEGMENT` (Linux ≥ 4.18): socket option and control message
/// with the GSO segment size (`u16`).
pub(crate) const UDP_SEGMENT: libc::c_int = 103;
/// `UDP_GRO` (Linux ≥ 5.0): socket option turning GRO on, and control
/// message with the segment size of a coalesced buffer (`c_int`).
pub(crate) const UDP_GRO: libc::c_int = 104;

/// Control space per message of a batch: one `UDP_GRO` or `UDP_SEGMENT`
/// message (`CMSG_SPACE` of 4 bytes is at most 24 on every target).
pub(crate) const MMSG_CONTROL: usize = 32;

/// Control data of one message of a batch.
pub(crate) type MsgControl = CmsgBuf<MMSG_CONTROL>;

/// One nonblocking `recvmmsg` (`MSG_DONTWAIT`, no timeout) into `bufs`
/// cut in buffers of `buf_len` bytes (at most `N`), with the control data
/// of message `i` in `ctrl[i]` and what came in `out[i]`; returns how
/// many messages (`out[..n]`). A source of an unknown family is `None`.
pub(crate) fn recvmmsg<const N: usize>(
    fd: RawFd,
    bufs: &mut [u8],
    buf_len: usize,
    ctrl: &mut [MsgControl; N],
    out: &mut [Received<Option<SocketAddr>>; N],
) -> io::Result<usize> {
    // SAFETY: all-zero is valid for these C structs (null pointers, zero lengths).
    let mut names: [libc::sockaddr_storage; N] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut iovs: [libc::iovec; N] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; N] = unsafe { mem::zeroed() };
    let mut vlen = 0;
    if buf_len > 0 {
        for ((((buf, iov), name), m), c) in bufs
            .chunks_exact_mut(buf_len)
            .zip(&mut iovs)
            .zip(&mut names)
            .zip(&mut msgs)
            .zip(ctrl.iter_mut())
        {
            iov.iov_base = buf.as_mut_ptr().cast();
            iov.iov_len = buf.len();
            m.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            m.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m.msg_hdr.msg_control = c.as_mut_ptr();
            m.msg_hdr.msg_controllen = MMSG_CONTROL as _;
            vlen += 1;
        }
    }
    // SAFETY: `msgs` holds `vlen` entries pointing at live buffers
    // (`bufs`, `names`, `iovs`, `ctrl`) of the stated lengths; no timeout.
    let n = check(unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            vlen as libc::c_uint,
            libc::MSG_DONTWAIT as _,
            std::ptr::null_mut(),
        )
    })?;
    let n = (n as usize).min(vlen);
    for ((o, m), name) in out.iter_mut().zip(&msgs).zip(&names).take(n) {
        *o = Received {
            len: m.msg_len as usize,
            truncated: m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            control_len: control_len(m.msg_hdr.msg_controllen),
            from: from_raw(name),
        };
    }
    Ok(n)
}

/// An empty receive result, to initialise the `out` array of [`recvmmsg`].
pub(crate) const NOTHING_RECEIVED: Received<Option<SocketAddr>> = Received {
    len: 0,
    truncated: false,
    control_len: 0,
    from: None,
};

/// Up to `M` messages for `sendmmsg`, each of one or more segments
/// borrowed from the caller (a UDP GSO message: several equal-sized
/// datagrams the kernel cuts apart), at most `M` segments in all.
pub(crate) struct SendMmsg<'a, const M: usize> {
    names: [libc::sockaddr_storage; M],
    namelens: [libc::socklen_t; M],
    iovs: [libc::iovec; M],
    msgs: [libc::mmsghdr; M],
    ctrl: [MsgControl; M],
    ctrl_lens: [usize; M],
    /// Per message: first iovec, number of iovecs.
    spans: [(usize, usize); M],
    nmsg: usize,
    niov: usize,
    /// First iovec of the message being built.
    open: usize,
    _payload: PhantomData<&'a [u8]>,
}

impl<'a, const M: usize> SendMmsg<'a, M> {
    /// An empty batch.
    #[inline]
    pub(crate) fn new() -> Self {
        SendMmsg {
            // SAFETY: all-zero is valid for these C structs (null
            // pointers, zero lengths).
            names: unsafe { mem::zeroed() },
            namelens: [0; M],
            // SAFETY: as above.
            iovs: unsafe { mem::zeroed() },
            // SAFETY: as above.
            msgs: unsafe { mem::zeroed() },
            ctrl: [MsgControl::new(); M],
            ctrl_lens: [0; M],
            spans: [(0, 0); M],
            nmsg: 0,
            niov: 0,
            open: 0,
            _payload: PhantomData,
        }
    }

    /// Messages ended so far.
    pub(crate) fn len(&self) -> usize {
        self.nmsg
    }

    /// Adds `segment` to the message being built; `false` when all `M`
    /// segments are used.
    pub(crate) fn push_segment(&mut self, segment: &'a [u8]) -> bool {
        let Some(iov) = self.iovs.get_mut(self.niov) else {
            return false;
        };
        *iov = libc::iovec {
            iov_base: segment.as_ptr() as *mut libc::c_void,
            iov_len: segment.len(),
        };
        self.niov += 1;
        true
    }

    /// Ends the message being built (the segments pushed since the last
    /// end) as one message to `to`; with `gso`, a `UDP_SEGMENT` control
    /// message of that segment size. `false` (nothing ended) when all `M`
    /// messages are used or no segment was pushed.
    pub(crate) fn end_message(&mut self, to: SocketAddr, gso: Option<u16>) -> bool {
        let i = self.nmsg;
        if i >= M || self.niov == self.open {
            return false;
        }
        (self.names[i], self.namelens[i]) = to_raw(to);
        self.ctrl_lens[i] = match gso {
            Some(seg) => self.ctrl[i]
                .write(libc::SOL_UDP, UDP_SEGMENT, seg)
                .unwrap_or(0),
            None => 0,
        };
        self.spans[i] = (self.open, self.niov - self.open);
        self.open = self.niov;
        self.nmsg += 1;
        true
    }

    /// One nonblocking `sendmmsg` (`MSG_DONTWAIT`) of the messages from
    /// `start` on; returns how many the kernel took (may be 0).
    pub(crate) fn send(&mut self, fd: RawFd, start: usize) -> io::Result<usize> {
        let end = self.nmsg;
        if start >= end {
            return Ok(0);
        }
        // Pointers are taken now: the arrays do not move during the call.
        for i in start..end {
            let (first, count) = self.spans[i];
            let m = &mut self.msgs[i].msg_hdr;
            m.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            m.msg_namelen = self.namelens[i];
            m.msg_iov = &mut self.iovs[first];
            m.msg_iovlen = count as _;
            if self.ctrl_lens[i] > 0 {
                m.msg_control = self.ctrl[i].as_mut_ptr();
                m.msg_controllen = self.ctrl_lens[i] as _;
            } else {
                m.msg_control = std::ptr::null_mut();
                m.msg_controllen = 0;
            }
        }
        let rest = &mut self.msgs[start..end];
        // SAFETY: `rest` entries point at live names, iovecs, control
        // data and payloads (borrowed for 'a) of the stated lengths; the
        // kernel only reads them.
        let rc = check(unsafe {
            libc::sendmmsg(
                fd,
                rest.as_mut_ptr(),
                rest.len() as libc::c_uint,
                libc::MSG_DONTWAIT as _,
            )
        })?;
        Ok((rc as usize).min(end - start))
    }
}
