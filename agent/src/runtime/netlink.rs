//! rtnetlink messages for interface addresses (`RTM_NEWADDR`,
//! `RTM_DELADDR`, `RTM_GETADDR`; linux/netlink.h, linux/if_addr.h, a
//! stable kernel ABI). Pure: bytes in, bytes out; `runtime::netif` sends
//! and receives them.
//!
//! Headers are host byte order (`to_ne_bytes`), addresses network order
//! (their octets as they are): correct on big-endian mips too. Parsers
//! never panic: every length is checked before it is used (fuzzed:
//! `fuzz/fuzz_targets/netlink.rs`, which also checks that an address
//! parsed from a message is emitted and parsed back the same).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::IpCidr;

// From linux/netlink.h and linux/if_addr.h (stable kernel ABI).
pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const IFADDRMSG_LEN: usize = 8;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLMSG_ERROR: u16 = 0x2;
pub(crate) const NLMSG_DONE: u16 = 0x3;
pub(crate) const IFA_ADDRESS: u16 = 1;
pub(crate) const IFA_LOCAL: u16 = 2;
pub(crate) const IFA_BROADCAST: u16 = 4;
pub(crate) const IFA_F_NODAD: u8 = 0x02;

pub const RTM_NEWADDR: u16 = libc::RTM_NEWADDR;
pub const RTM_DELADDR: u16 = libc::RTM_DELADDR;
pub const RTM_GETADDR: u16 = libc::RTM_GETADDR;

/// Sequence number of our requests; each socket carries one request.
pub(crate) const SEQ: u32 = 1;

fn push_header(msg: &mut Vec<u8>, kind: u16, flags: u16) {
    msg.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish_len
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    msg.extend_from_slice(&SEQ.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
}

fn finish_len(msg: &mut [u8]) {
    // Messages built here are a few dozen bytes: the length fits u32.
    let len = msg.len() as u32;
    if let Some(field) = msg.get_mut(..4) {
        field.copy_from_slice(&len.to_ne_bytes());
    }
}

fn push_attr(msg: &mut Vec<u8>, kind: u16, data: &[u8]) {
    // Attribute payloads here are 4 or 16 bytes: the length fits u16.
    let len = (4 + data.len()) as u16;
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(data);
    while msg.len() % 4 != 0 {
        msg.push(0);
    }
}

/// An `RTM_NEWADDR`/`RTM_DELADDR` request for `cidr` on interface `index`.
pub fn address_message(kind: u16, flags: u16, index: u32, cidr: &IpCidr) -> io::Result<Vec<u8>> {
    let (family, max_prefix) = match cidr.addr {
        IpAddr::V4(_) => (libc::AF_INET, 32),
        IpAddr::V6(_) => (libc::AF_INET6, 128),
    };
    if cidr.prefix > max_prefix {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "prefix too long",
        ));
    }
    let ifa_flags = if kind == RTM_NEWADDR && family == libc::AF_INET6 {
        IFA_F_NODAD
    } else {
        0
    };
    let mut msg = Vec::with_capacity(NLMSG_HDRLEN + IFADDRMSG_LEN + 3 * 20);
    push_header(&mut msg, kind, flags | NLM_F_ACK);
    // struct ifaddrmsg: family, prefixlen, flags, scope, index.
    msg.extend_from_slice(&[
        family as u8,
        cidr.prefix,
        ifa_flags,
        libc::RT_SCOPE_UNIVERSE,
    ]);
    msg.extend_from_slice(&index.to_ne_bytes());
    match cidr.addr {
        IpAddr::V4(a) => {
            push_attr(&mut msg, IFA_LOCAL, &a.octets());
            push_attr(&mut msg, IFA_ADDRESS, &a.octets());
            if kind == RTM_NEWADDR && cidr.prefix <= 30 {
                let host_bits = u32::MAX.checked_shr(u32::from(cidr.prefix)).unwrap_or(0);
                let brd = Ipv4Addr::from(u32::from(a) | host_bits);
                push_attr(&mut msg, IFA_BROADCAST, &brd.octets());
            }
        }
        IpAddr::V6(a) => {
            push_attr(&mut msg, IFA_LOCAL, &a.octets());
            push_attr(&mut msg, IFA_ADDRESS, &a.octets());
        }
    }
    finish_len(&mut msg);
    Ok(msg)
}

/// `(interface index, address)` of one `RTM_NEWADDR` payload.
pub fn parse_address(payload: &[u8]) -> Option<(u32, IpCidr)> {
    let head = payload.get(..IFADDRMSG_LEN)?;
    let family = libc::c_int::from(head[0]);
    let prefix = head[1];
    let index = u32::from_ne_bytes(head.get(4..8)?.try_into().ok()?);
    let mut local = None;
    let mut address = None;
    for (kind, data) in attributes(payload.get(IFADDRMSG_LEN..)?) {
        let addr = match (family, data.len()) {
            (libc::AF_INET, 4) => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?)),
            (libc::AF_INET6, 16) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?)),
            _ => continue,
        };
        match kind {
            IFA_LOCAL => local = Some(addr),
            IFA_ADDRESS => address = Some(addr),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
    // point-to-point links); IPv6 usually sends only IFA_ADDRESS.
    let addr = local.or(address)?;
    Some((index, IpCidr { addr, prefix }))
}

/// Iterates the `rtattr`s of `buf`: (type without flag bits, payload).
pub fn attributes(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = buf;
    core::iter::from_fn(move || {
        let len = usize::from(u16::from_ne_bytes(rest.get(..2)?.try_into().ok()?));
        let kind = u16::from_ne_bytes(rest.get(2..4)?.try_into().ok()?) & 0x3fff;
        if len < 4 {
            return None;
        }
        let data = rest.get(4..len)?;
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some((kind, data))
    })
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Netlink messages of one received buffer: (type, seq, payload).
pub fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    let mut rest = buf;
    core::iter::from_fn(move || {
        let len = u32::from_ne_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(rest.get(4..6)?.try_into().ok()?);
        let seq = u32::from_ne_bytes(rest.get(8..12)?.try_into().ok()?);
        if len < NLMSG_HDRLEN {
            return None;
        }
        let payload = rest.get(NLMSG_HDRLEN..len)?;
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some((kind, seq, payload))
    })
}

/// The errno of an `NLMSG_ERROR` payload (0 = acknowledgement).
pub fn error_code(payload: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(payload.get(..4)?.try_into().ok()?))
}

/// A dump request for `kind` (`RTM_GETADDR`) over both families.
pub fn dump_request(kind: u16) -> Vec<u8> {
    let mut msg = Vec::with_capacity(NLMSG_HDRLEN + IFADDRMSG_LEN);
    push_header(&mut msg, kind, NLM_F_REQUEST | NLM_F_DUMP);
    msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    msg.extend_from_slice(&0u32.to_ne_bytes());
    finish_len(&mut msg);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::cidr;

    #[test]
    fn address_message_bytes() {
        // RTM_NEWADDR 10.1.2.3/24 on index 7, host byte order headers.
        let msg = address_message(
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_REPLACE,
            7,
            &cidr("10.1.2.3/24"),
        )
        .unwrap();
        let mut want = Vec::new();
        want.extend_from_slice(&48u32.to_ne_bytes());
        want.extend_from_slice(&20u16.to_ne_bytes());
        want.extend_from_slice(&(0x1u16 | 0x4 | 0x400 | 0x100).to_ne_bytes());
        want.extend_from_slice(&1u32.to_ne_bytes());
        want.extend_from_slice(&0u32.to_ne_bytes());
        want.extend_from_slice(&[2, 24, 0, 0]);
        want.extend_from_slice(&7u32.to_ne_bytes());
        for (t, a) in [
            (2u16, [10, 1, 2, 3]),
            (1, [10, 1, 2, 3]),
            (4, [10, 1, 2, 255]),
        ] {
            want.extend_from_slice(&8u16.to_ne_bytes());
            want.extend_from_slice(&t.to_ne_bytes());
            want.extend_from_slice(&a);
        }
        assert_eq!(msg, want);
        // Parsed back (payload after the netlink header).
        let (i, c) = parse_address(&msg[16..]).unwrap();
        assert_eq!((i, c), (7, cidr("10.1.2.3/24")));

        let v6 = address_message(RTM_DELADDR, 0, 3, &cidr("fd00::5/64")).unwrap();
        assert_eq!(v6.len(), 16 + 8 + 2 * 20);
        assert_eq!(&v6[16..20], &[10, 64, 0, 0]);
        assert_eq!(parse_address(&v6[16..]).unwrap(), (3, cidr("fd00::5/64")));
        assert!(address_message(RTM_NEWADDR, 0, 1, &cidr("10.0.0.1/33")).is_err());
    }

    #[test]
    fn parsers_never_panic_on_garbage() {
        let mut buf = [0u8; 64];
        for seed in 0u32..2000 {
            let mut x = seed.wrapping_mul(2654435761);
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let n = (seed as usize) % buf.len();
            let _ = messages(&buf[..n]).count();
            let _ = attributes(&buf[..n]).count();
            let _ = parse_address(&buf[..n]);
        }
    }
}
