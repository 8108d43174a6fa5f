//! Control messages (`cmsg(3)`): read from a received message's control
//! data, or written into a buffer for a send.
//!
//! A [`CmsgBuf`] is 8-aligned (as `cmsghdr` needs on every target); the
//! `CMSG_*` macros walk it only within the length the kernel reported,
//! and payloads are read and written unaligned, by value, as [`Plain`]
//! types: the kernel's bytes never become a reference.

use std::mem;

use super::Plain;

/// Control-message space of `N` bytes, aligned for `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct CmsgBuf<const N: usize>([u8; N]);

impl<const N: usize> CmsgBuf<N> {
    pub(crate) const fn new() -> Self {
        CmsgBuf([0; N])
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.0.as_mut_ptr().cast()
    }

    pub(crate) fn as_ptr(&self) -> *const libc::c_void {
        self.0.as_ptr().cast()
    }

    /// The control messages the kernel wrote: its first `len` bytes.
    pub(crate) fn received(&self, len: usize) -> Control<'_> {
        Control {
            bytes: &self.0[..len.min(N)],
        }
    }

    /// Writes one control message (`level`, `kind`, `value`) at the
    /// start; returns the control length to send (`CMSG_SPACE`), `None`
    /// if it does not fit.
    pub(crate) fn write<T: Plain>(
        &mut self,
        level: libc::c_int,
        kind: libc::c_int,
        value: T,
    ) -> Option<usize> {
        let size = mem::size_of::<T>() as libc::c_uint;
        // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic on a length.
        let (space, len) = unsafe { (libc::CMSG_SPACE(size) as usize, libc::CMSG_LEN(size)) };
        if space > N {
            return None;
        }
        let mut msg: libc::msghdr = zeroed_msghdr();
        msg.msg_control = self.as_mut_ptr();
        msg.msg_controllen = space as _;
        // SAFETY: the buffer is 8-aligned and holds `space` bytes, room
        // for the header and the payload; the payload is written unaligned.
        unsafe {
            let h = libc::CMSG_FIRSTHDR(&msg);
            if h.is_null() {
                return None;
            }
            (*h).cmsg_level = level;
            (*h).cmsg_type = kind;
            (*h).cmsg_len = len as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(h).cast::<T>(), value);
        }
        Some(space)
    }
}

/// All-zero `msghdr`: null pointers, zero lengths.
pub(crate) fn zeroed_msghdr() -> libc::msghdr {
    // SAFETY: msghdr holds integers and raw pointers: all-zero is valid.
    unsafe { mem::zeroed() }
}

/// Received control messages (see [`CmsgBuf::received`]).
#[derive(Clone, Copy)]
pub(crate) struct Control<'a> {
    bytes: &'a [u8],
}

impl Control<'_> {
    /// Calls `f(level, kind, payload)` on each control message, at most
    /// `limit` of them, until it returns `Some`.
    pub(crate) fn find_map<R>(
        &self,
        limit: usize,
        mut f: impl FnMut(libc::c_int, libc::c_int, &[u8]) -> Option<R>,
    ) -> Option<R> {
        let mut msg: libc::msghdr = zeroed_msghdr();
        msg.msg_control = self.bytes.as_ptr() as *mut libc::c_void;
        msg.msg_controllen = self.bytes.len() as _;
        let base = self.bytes.as_ptr() as usize;
        // SAFETY: `bytes` is 8-aligned (it starts a `CmsgBuf`) and the
        // CMSG macros stay within `msg_controllen` of it; each payload
        // slice is clamped to the end of `bytes`.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            let mut seen = 0;
            while !c.is_null() && seen < limit {
                seen += 1;
                let h = &*c;
                let data = libc::CMSG_DATA(c);
                let at = (data as usize).saturating_sub(base).min(self.bytes.len());
                let data_len = (h.cmsg_len as usize)
                    .saturating_sub(libc::CMSG_LEN(0) as usize)
                    .min(self.bytes.len() - at);
                let payload = self.bytes.get(at..at + data_len).unwrap_or(&[]);
                if let Some(r) = f(h.cmsg_level, h.cmsg_type, payload) {
                    return Some(r);
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        None
    }

    /// The payload of the first control message of `level`/`kind` that
    /// is large enough for a `T`; at most `limit` messages are looked at.
    pub(crate) fn find<T: Plain>(
        &self,
        level: libc::c_int,
        kind: libc::c_int,
        limit: usize,
    ) -> Option<T> {
        self.find_map(limit, |l, k, data| {
            if l == level && k == kind {
                read(data)
            } else {
                None
            }
        })
    }
}

/// A `T` from the start of `data` (read unaligned), if long enough.
pub(crate) fn read<T: Plain>(data: &[u8]) -> Option<T> {
    if data.len() < mem::size_of::<T>() {
        return None;
    }
    // SAFETY: `data` holds at least size_of::<T>() bytes, and any bit
    // pattern is a valid `T` (`Plain`).
    Some(unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_back() {
        let mut c = CmsgBuf::<32>::new();
        let len = c.write(libc::SOL_UDP, 103, 1400u16).unwrap();
        assert_eq!(
            c.received(len).find::<u16>(libc::SOL_UDP, 103, 4),
            Some(1400)
        );
        assert_eq!(c.received(len).find::<u16>(libc::SOL_UDP, 104, 4), None);
        assert_eq!(c.received(len).find::<u32>(libc::SOL_UDP, 103, 4), None);
        assert_eq!(c.received(0).find::<u16>(libc::SOL_UDP, 103, 4), None);
        assert!(CmsgBuf::<8>::new()
            .write(libc::SOL_UDP, 103, 1u16)
            .is_none());
    }
}
