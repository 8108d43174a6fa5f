//! Outer packet formats of the overlay (what travels in UDP) and the
//! inner messages carried, encrypted, inside data packets.
//!
//! Layout follows WireGuard's (Donenfeld, "WireGuard", §5.4) with the
//! Noise IK messages produced by `snow`. All integers are big-endian.
//! The cookie reply is WireGuard's (§5.4.7): the cookie sealed with
//! XChaCha20-Poly1305 under a key derived from the responder's public key,
//! the initiation's mac1 as associated data. `SessionUnknown` is ours: an
//! unauthenticated hint that the sender restarted (see `overlay::node`).
//!
//! ```text
//! HandshakeInit   0:type=1 1..4:zero 4..8:sender_index 8..n-32:noise msg1 | mac1(16) mac2(16)
//! HandshakeResp   0:type=2 1..4:zero 4..8:sender_index 8..12:receiver_index 12..n-32:noise msg2 | mac1 mac2
//! CookieReply     0:type=3 1..4:zero 4..8:receiver_index 8..32:nonce(24) 32..64:sealed cookie(16)+tag(16)
//! SessionUnknown  0:type=5 1..4:zero 4..8:receiver_index (of a data packet that matched no session)
//! Data            0:type=4 1..4:zero 4..8:receiver_index 8..16:counter 16..n:ciphertext+tag(16)
//! ```
//!
//! Inner messages (the plaintext of a data packet):
//!
//! ```text
//! Frame      1, ethernet frame
//! Ping       2, seq u32, echo u64
//! Pong       3, seq u32, echo u64
//! Gossip     4, count u8, count × entry (key 32, port u16, family u8 (0|4|6), ip 0|4|16, name_len u8, name)
//! RelayTo    5, destination id (8), inner message (Frame|FramePartial|Ping|Pong)
//! RelayFrom  6, source id (8),      inner message (Frame|FramePartial|Ping|Pong)
//! FramePartial 7, csum_start u16, csum_offset u16, ethernet frame whose
//!            TCP/UDP checksum is partial (see `overlay::offload`)
//! Cert       8, a member certificate (`trust::cert`, at most 326 bytes)
//! Revoked    9, the cloud's revocation list (`trust::revocation`)
//! ```
//!
//! Invariant: after `parse` succeeds no accessor can panic; every length
//! is checked before it is read.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::offload::PartialCsum;
use super::{PeerId, PublicKey};
use crate::limits::{MAX_GOSSIP_ENTRIES, MAX_NAME_LEN};

pub const TYPE_HANDSHAKE_INIT: u8 = 1;
pub const TYPE_HANDSHAKE_RESP: u8 = 2;
pub const TYPE_COOKIE_REPLY: u8 = 3;
pub const TYPE_DATA: u8 = 4;
pub const TYPE_SESSION_UNKNOWN: u8 = 5;

pub const MAC_LEN: usize = 16;
pub const COOKIE_LEN: usize = 16;
pub const TAG_LEN: usize = 16;
pub const DATA_HEADER_LEN: usize = 16;
pub const INIT_HEADER_LEN: usize = 8;
pub const RESP_HEADER_LEN: usize = 12;
/// XChaCha20-Poly1305 nonce of a cookie reply.
pub const COOKIE_NONCE_LEN: usize = 24;
/// The cookie and its tag.
pub const SEALED_COOKIE_LEN: usize = COOKIE_LEN + TAG_LEN;
pub const COOKIE_REPLY_LEN: usize = 8 + COOKIE_NONCE_LEN + SEALED_COOKIE_LEN;
pub const SESSION_UNKNOWN_LEN: usize = 8;
/// Noise IK message 1 without payload: e (32) + encrypted s (32 + 16) + payload tag (16).
pub const NOISE_INIT_MIN: usize = 32 + 48 + 16;
/// Noise IK message 2 without payload: e (32) + payload tag (16).
pub const NOISE_RESP_MIN: usize = 32 + 16;
/// Bytes the overlay adds around an Ethernet frame sent directly.
pub const DIRECT_OVERHEAD: usize = DATA_HEADER_LEN + 1 + TAG_LEN;
/// Extra bytes of the relay envelope (type + peer id).
pub const RELAY_OVERHEAD: usize = 1 + 8;

/// Why a datagram was rejected before any cryptography.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    Truncated,
    UnknownType(u8),
    /// Non-zero reserved bytes, bad family, oversized count or name.
    Malformed,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => write!(f, "truncated packet"),
            WireError::UnknownType(t) => write!(f, "unknown packet type {t}"),
            WireError::Malformed => write!(f, "malformed packet"),
        }
    }
}

fn be32(b: &[u8], at: usize) -> Result<u32, WireError> {
    let s = b.get(at..at + 4).ok_or(WireError::Truncated)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], at: usize) -> Result<u64, WireError> {
    let s = b.get(at..at + 8).ok_or(WireError::Truncated)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_be_bytes(a))
}

/// An outer packet, borrowed from the receive buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    HandshakeInit {
        sender_index: u32,
        noise: &'a [u8],
        /// Everything covered by mac1 (the packet up to mac1).
        mac1_covered: &'a [u8],
        mac1: &'a [u8],
        /// Everything covered by mac2 (the packet up to mac2).
        mac2_covered: &'a [u8],
        mac2: &'a [u8],
    },
    HandshakeResp {
        sender_index: u32,
        receiver_index: u32,
        noise: &'a [u8],
        mac1_covered: &'a [u8],
        mac1: &'a [u8],
        mac2_covered: &'a [u8],
        mac2: &'a [u8],
    },
    CookieReply {
        receiver_index: u32,
        nonce: [u8; COOKIE_NONCE_LEN],
        sealed: [u8; SEALED_COOKIE_LEN],
    },
    SessionUnknown {
        receiver_index: u32,
    },
    Data {
        receiver_index: u32,
        counter: u64,
    },
}

impl<'a> Packet<'a> {
    /// Classify and check lengths; cryptographic checks come later.
    pub fn parse(b: &'a [u8]) -> Result<Packet<'a>, WireError> {
        let kind = *b.first().ok_or(WireError::Truncated)?;
        if b.len() < 4 {
            return Err(WireError::Truncated);
        }
        if b[1..4] != [0, 0, 0] {
            return Err(WireError::Malformed);
        }
        match kind {
            TYPE_HANDSHAKE_INIT => {
                if b.len() < INIT_HEADER_LEN + NOISE_INIT_MIN + 2 * MAC_LEN {
                    return Err(WireError::Truncated);
                }
                let macs = b.len() - 2 * MAC_LEN;
                Ok(Packet::HandshakeInit {
                    sender_index: be32(b, 4)?,
                    noise: &b[INIT_HEADER_LEN..macs],
                    mac1_covered: &b[..macs],
                    mac1: &b[macs..macs + MAC_LEN],
                    mac2_covered: &b[..macs + MAC_LEN],
                    mac2: &b[macs + MAC_LEN..],
                })
            }
            TYPE_HANDSHAKE_RESP => {
                if b.len() < RESP_HEADER_LEN + NOISE_RESP_MIN + 2 * MAC_LEN {
                    return Err(WireError::Truncated);
                }
                let macs = b.len() - 2 * MAC_LEN;
                Ok(Packet::HandshakeResp {
                    sender_index: be32(b, 4)?,
                    receiver_index: be32(b, 8)?,
                    noise: &b[RESP_HEADER_LEN..macs],
                    mac1_covered: &b[..macs],
                    mac1: &b[macs..macs + MAC_LEN],
                    mac2_covered: &b[..macs + MAC_LEN],
                    mac2: &b[macs + MAC_LEN..],
                })
            }
            TYPE_COOKIE_REPLY => {
                if b.len() != COOKIE_REPLY_LEN {
                    return Err(WireError::Truncated);
                }
                let mut nonce = [0u8; COOKIE_NONCE_LEN];
                nonce.copy_from_slice(&b[8..8 + COOKIE_NONCE_LEN]);
                let mut sealed = [0u8; SEALED_COOKIE_LEN];
                sealed.copy_from_slice(&b[8 + COOKIE_NONCE_LEN..COOKIE_REPLY_LEN]);
                Ok(Packet::CookieReply {
                    receiver_index: be32(b, 4)?,
                    nonce,
                    sealed,
                })
            }
            TYPE_SESSION_UNKNOWN => {
                if b.len() != SESSION_UNKNOWN_LEN {
                    return Err(WireError::Truncated);
                }
                Ok(Packet::SessionUnknown {
                    receiver_index: be32(b, 4)?,
                })
            }
            TYPE_DATA => {
                if b.len() < DATA_HEADER_LEN + TAG_LEN {
                    return Err(WireError::Truncated);
                }
                Ok(Packet::Data {
                    receiver_index: be32(b, 4)?,
                    counter: be64(b, 8)?,
                })
            }
            t => Err(WireError::UnknownType(t)),
        }
    }
}

impl Packet<'_> {
    /// Bytes [`Packet::emit`] writes: the whole packet for handshakes and
    /// cookie replies, the header for data (its ciphertext and tag follow,
    /// sealed in place by the session).
    pub fn buffer_len(&self) -> usize {
        match self {
            Packet::HandshakeInit { noise, .. } => INIT_HEADER_LEN + noise.len() + 2 * MAC_LEN,
            Packet::HandshakeResp { noise, .. } => RESP_HEADER_LEN + noise.len() + 2 * MAC_LEN,
            Packet::CookieReply { .. } => COOKIE_REPLY_LEN,
            Packet::SessionUnknown { .. } => SESSION_UNKNOWN_LEN,
            Packet::Data { .. } => DATA_HEADER_LEN,
        }
    }

    /// Writes the packet (see [`Packet::buffer_len`]) to the front of
    /// `buf`; `Truncated` when `buf` is shorter, or when a handshake's
    /// macs are not [`MAC_LEN`] bytes. Parsing what it wrote gives `self`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let (header, noise, mac1, mac2) = match self {
            Packet::HandshakeInit {
                sender_index,
                noise,
                mac1,
                mac2,
                ..
            } => (emit_init_header(buf, *sender_index)?, *noise, *mac1, *mac2),
            Packet::HandshakeResp {
                sender_index,
                receiver_index,
                noise,
                mac1,
                mac2,
                ..
            } => (
                emit_resp_header(buf, *sender_index, *receiver_index)?,
                *noise,
                *mac1,
                *mac2,
            ),
            Packet::CookieReply {
                receiver_index,
                nonce,
                sealed,
            } => return emit_cookie_reply(buf, *receiver_index, nonce, sealed),
            Packet::SessionUnknown { receiver_index } => {
                return emit_session_unknown(buf, *receiver_index)
            }
            Packet::Data {
                receiver_index,
                counter,
            } => return emit_data_header(buf, *receiver_index, *counter),
        };
        if mac1.len() != MAC_LEN || mac2.len() != MAC_LEN {
            return Err(WireError::Truncated);
        }
        let len = self.buffer_len();
        let body = buf.get_mut(header..len).ok_or(WireError::Truncated)?;
        let (n, macs) = body.split_at_mut(noise.len());
        n.copy_from_slice(noise);
        macs[..MAC_LEN].copy_from_slice(mac1);
        macs[MAC_LEN..].copy_from_slice(mac2);
        Ok(len)
    }
}

/// The first `N` bytes of `buf`, for an emitter to fill; `Truncated` when
/// `buf` is shorter (emitters never panic on a short buffer).
fn head<const N: usize>(buf: &mut [u8]) -> Result<&mut [u8; N], WireError> {
    buf.get_mut(..N)
        .and_then(|b| <&mut [u8; N]>::try_from(b).ok())
        .ok_or(WireError::Truncated)
}

/// Write the fixed header of a handshake initiation; returns its length.
pub fn emit_init_header(buf: &mut [u8], sender_index: u32) -> Result<usize, WireError> {
    let b = head::<INIT_HEADER_LEN>(buf)?;
    b[..4].copy_from_slice(&[TYPE_HANDSHAKE_INIT, 0, 0, 0]);
    b[4..8].copy_from_slice(&sender_index.to_be_bytes());
    Ok(INIT_HEADER_LEN)
}

pub fn emit_resp_header(
    buf: &mut [u8],
    sender_index: u32,
    receiver_index: u32,
) -> Result<usize, WireError> {
    let b = head::<RESP_HEADER_LEN>(buf)?;
    b[..4].copy_from_slice(&[TYPE_HANDSHAKE_RESP, 0, 0, 0]);
    b[4..8].copy_from_slice(&sender_index.to_be_bytes());
    b[8..12].copy_from_slice(&receiver_index.to_be_bytes());
    Ok(RESP_HEADER_LEN)
}

pub fn emit_cookie_reply(
    buf: &mut [u8],
    receiver_index: u32,
    nonce: &[u8; COOKIE_NONCE_LEN],
    sealed: &[u8; SEALED_COOKIE_LEN],
) -> Result<usize, WireError> {
    let b = head::<COOKIE_REPLY_LEN>(buf)?;
    b[..4].copy_from_slice(&[TYPE_COOKIE_REPLY, 0, 0, 0]);
    b[4..8].copy_from_slice(&receiver_index.to_be_bytes());
    b[8..8 + COOKIE_NONCE_LEN].copy_from_slice(nonce);
    b[8 + COOKIE_NONCE_LEN..].copy_from_slice(sealed);
    Ok(COOKIE_REPLY_LEN)
}

pub fn emit_session_unknown(buf: &mut [u8], receiver_index: u32) -> Result<usize, WireError> {
    let b = head::<SESSION_UNKNOWN_LEN>(buf)?;
    b[..4].copy_from_slice(&[TYPE_SESSION_UNKNOWN, 0, 0, 0]);
    b[4..8].copy_from_slice(&receiver_index.to_be_bytes());
    Ok(SESSION_UNKNOWN_LEN)
}

pub fn emit_data_header(
    buf: &mut [u8],
    receiver_index: u32,
    counter: u64,
) -> Result<usize, WireError> {
    let b = head::<DATA_HEADER_LEN>(buf)?;
    b[..4].copy_from_slice(&[TYPE_DATA, 0, 0, 0]);
    b[4..8].copy_from_slice(&receiver_index.to_be_bytes());
    b[8..16].copy_from_slice(&counter.to_be_bytes());
    Ok(DATA_HEADER_LEN)
}

// ---------------------------------------------------------------------
// Inner messages

pub const MSG_FRAME: u8 = 1;
pub const MSG_PING: u8 = 2;
pub const MSG_PONG: u8 = 3;
pub const MSG_GOSSIP: u8 = 4;
pub const MSG_RELAY_TO: u8 = 5;
pub const MSG_RELAY_FROM: u8 = 6;
pub const MSG_FRAME_PARTIAL: u8 = 7;
pub const MSG_CERT: u8 = 8;
pub const MSG_REVOKED: u8 = 9;
/// Bytes before the frame in a `FramePartial` body.
pub const FRAME_PARTIAL_HEADER: usize = 4;
/// Longest Ethernet frame the overlay carries in one datagram: what is
/// left of `MAX_DATAGRAM` after the data header, a relay envelope, the
/// message kind, a partial-checksum header and the tag. Longer frames
/// (jumbo frames on a raw device, super-frames nobody segmented) are
/// dropped and counted as oversize.
pub const MAX_OVERLAY_FRAME: usize = crate::limits::MAX_DATAGRAM
    - DATA_HEADER_LEN
    - RELAY_OVERHEAD
    - 1
    - FRAME_PARTIAL_HEADER
    - TAG_LEN;

/// Shortest Ethernet frame accepted from a peer (header only).
pub const MIN_FRAME: usize = 14;

/// A decrypted inner message.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Frame(&'a [u8]),
    /// A frame whose L4 checksum is partial: the field at
    /// `csum.start + csum.offset` (checked to lie in the frame) holds the
    /// pseudo-header sum.
    FramePartial {
        csum: PartialCsum,
        frame: &'a [u8],
    },
    Ping {
        seq: u32,
        echo: u64,
    },
    Pong {
        seq: u32,
        echo: u64,
    },
    Gossip(GossipView<'a>),
    RelayTo {
        dst: PeerId,
        inner: &'a [u8],
    },
    RelayFrom {
        src: PeerId,
        inner: &'a [u8],
    },
    /// A member certificate (its signature is checked by the receiver).
    Cert(&'a [u8]),
    /// The cloud's revocation list (signature checked by the receiver).
    Revoked(&'a [u8]),
}

impl<'a> Message<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Message<'a>, WireError> {
        let (&kind, rest) = b.split_first().ok_or(WireError::Truncated)?;
        match kind {
            MSG_FRAME => {
                if rest.len() < MIN_FRAME {
                    return Err(WireError::Truncated);
                }
                Ok(Message::Frame(rest))
            }
            MSG_FRAME_PARTIAL => {
                let (head, frame) = rest
                    .split_at_checked(FRAME_PARTIAL_HEADER)
                    .ok_or(WireError::Truncated)?;
                if frame.len() < MIN_FRAME {
                    return Err(WireError::Truncated);
                }
                let csum = PartialCsum {
                    start: u16::from_be_bytes([head[0], head[1]]),
                    offset: u16::from_be_bytes([head[2], head[3]]),
                };
                if usize::from(csum.start) + usize::from(csum.offset) + 2 > frame.len() {
                    return Err(WireError::Malformed);
                }
                Ok(Message::FramePartial { csum, frame })
            }
            MSG_PING | MSG_PONG => {
                if rest.len() != 12 {
                    return Err(WireError::Malformed);
                }
                let seq = be32(rest, 0)?;
                let echo = be64(rest, 4)?;
                Ok(if kind == MSG_PING {
                    Message::Ping { seq, echo }
                } else {
                    Message::Pong { seq, echo }
                })
            }
            MSG_GOSSIP => GossipView::new(rest).map(Message::Gossip),
            MSG_RELAY_TO | MSG_RELAY_FROM => {
                let id = rest.get(..8).ok_or(WireError::Truncated)?;
                let mut peer = [0u8; 8];
                peer.copy_from_slice(id);
                let inner = &rest[8..];
                // Only frames and probes may be relayed: never nested relays.
                match inner.first() {
                    Some(&MSG_FRAME)
                    | Some(&MSG_FRAME_PARTIAL)
                    | Some(&MSG_PING)
                    | Some(&MSG_PONG) => {}
                    Some(_) => return Err(WireError::Malformed),
                    None => return Err(WireError::Truncated),
                }
                Ok(if kind == MSG_RELAY_TO {
                    Message::RelayTo { dst: peer, inner }
                } else {
                    Message::RelayFrom { src: peer, inner }
                })
            }
            MSG_CERT | MSG_REVOKED => {
                let max = if kind == MSG_CERT {
                    crate::trust::cert::MAX_LEN
                } else {
                    crate::trust::revocation::MAX_LEN
                };
                if rest.is_empty() {
                    return Err(WireError::Truncated);
                }
                if rest.len() > max {
                    return Err(WireError::Malformed);
                }
                Ok(if kind == MSG_CERT {
                    Message::Cert(rest)
                } else {
                    Message::Revoked(rest)
                })
            }
            t => Err(WireError::UnknownType(t)),
        }
    }
}

impl Message<'_> {
    /// Bytes [`Message::emit`] writes (type byte included).
    pub fn buffer_len(&self) -> usize {
        1 + match self {
            Message::Frame(f) => f.len(),
            Message::FramePartial { frame, .. } => FRAME_PARTIAL_HEADER + frame.len(),
            Message::Ping { .. } | Message::Pong { .. } => PROBE_LEN - 1,
            Message::Gossip(g) => 1 + g.body.len(),
            Message::RelayTo { inner, .. } | Message::RelayFrom { inner, .. } => 8 + inner.len(),
            Message::Cert(b) | Message::Revoked(b) => b.len(),
        }
    }

    /// Writes the message (type byte first) to the front of `buf`; returns
    /// its length, [`Message::buffer_len`]. `Truncated` when `buf` is
    /// shorter; never panics. `Message::parse` of the bytes gives `self`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(WireError::Truncated)?;
        let (kind, rest) = out.split_at_mut(1);
        let parts: [&[u8]; 2] = match self {
            Message::Frame(f) => {
                kind[0] = MSG_FRAME;
                [f, &[]]
            }
            Message::FramePartial { csum, frame } => {
                kind[0] = MSG_FRAME_PARTIAL;
                rest[..FRAME_PARTIAL_HEADER].copy_from_slice(&frame_partial_header(*csum));
                rest[FRAME_PARTIAL_HEADER..].copy_from_slice(frame);
                return Ok(len);
            }
            Message::Ping { seq, echo } | Message::Pong { seq, echo } => {
                let pong = matches!(self, Message::Pong { .. });
                return emit_probe(out, pong, *seq, *echo);
            }
            Message::Gossip(g) => {
                kind[0] = MSG_GOSSIP;
                [std::slice::from_ref(&g.count), g.body]
            }
            Message::RelayTo { dst: id, inner } | Message::RelayFrom { src: id, inner } => {
                kind[0] = if matches!(self, Message::RelayTo { .. }) {
                    MSG_RELAY_TO
                } else {
                    MSG_RELAY_FROM
                };
                [id, inner]
            }
            Message::Cert(b) | Message::Revoked(b) => {
                kind[0] = if matches!(self, Message::Cert(_)) {
                    MSG_CERT
                } else {
                    MSG_REVOKED
                };
                [b, &[]]
            }
        };
        let (first, second) = rest.split_at_mut(parts[0].len());
        first.copy_from_slice(parts[0]);
        second.copy_from_slice(parts[1]);
        Ok(len)
    }
}

/// The header of a `FramePartial` body (after the type byte).
pub fn frame_partial_header(csum: PartialCsum) -> [u8; FRAME_PARTIAL_HEADER] {
    let [a, b] = csum.start.to_be_bytes();
    let [c, d] = csum.offset.to_be_bytes();
    [a, b, c, d]
}

/// Bytes of a ping or pong message.
pub const PROBE_LEN: usize = 13;

pub fn emit_probe(buf: &mut [u8], pong: bool, seq: u32, echo: u64) -> Result<usize, WireError> {
    let b = head::<PROBE_LEN>(buf)?;
    b[0] = if pong { MSG_PONG } else { MSG_PING };
    b[1..5].copy_from_slice(&seq.to_be_bytes());
    b[5..13].copy_from_slice(&echo.to_be_bytes());
    Ok(PROBE_LEN)
}

/// One member as a peer describes it in gossip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipEntry<'a> {
    pub key: PublicKey,
    /// The endpoint the gossiping peer sees for this member, if any.
    pub endpoint: Option<SocketAddr>,
    pub name: &'a str,
}

/// A validated gossip message (every entry was checked by `new`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GossipView<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> GossipView<'a> {
    fn new(b: &'a [u8]) -> Result<Self, WireError> {
        let (&count, body) = b.split_first().ok_or(WireError::Truncated)?;
        if usize::from(count) > MAX_GOSSIP_ENTRIES {
            return Err(WireError::Malformed);
        }
        let view = GossipView { count, body };
        let mut at = 0;
        for _ in 0..count {
            let (_, next) = parse_entry(body, at)?;
            at = next;
        }
        if at != body.len() {
            return Err(WireError::Malformed);
        }
        Ok(view)
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn entries(&self) -> impl Iterator<Item = GossipEntry<'a>> + 'a {
        let body = self.body;
        let mut at = 0;
        (0..self.count).map_while(move |_| {
            let (entry, next) = parse_entry(body, at).ok()?;
            at = next;
            Some(entry)
        })
    }
}

fn parse_entry(b: &[u8], at: usize) -> Result<(GossipEntry<'_>, usize), WireError> {
    let key_bytes = b.get(at..at + 32).ok_or(WireError::Truncated)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(key_bytes);
    let mut at = at + 32;
    let port_bytes = b.get(at..at + 3).ok_or(WireError::Truncated)?;
    let port = u16::from_be_bytes([port_bytes[0], port_bytes[1]]);
    let family = port_bytes[2];
    at += 3;
    let ip = match family {
        0 => None,
        4 => {
            let o = b.get(at..at + 4).ok_or(WireError::Truncated)?;
            at += 4;
            Some(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])))
        }
        6 => {
            let o = b.get(at..at + 16).ok_or(WireError::Truncated)?;
            at += 16;
            let mut a = [0u8; 16];
            a.copy_from_slice(o);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => return Err(WireError::Malformed),
    };
    let name_len = usize::from(*b.get(at).ok_or(WireError::Truncated)?);
    at += 1;
    if name_len > MAX_NAME_LEN {
        return Err(WireError::Malformed);
    }
    let name_bytes = b.get(at..at + name_len).ok_or(WireError::Truncated)?;
    let name = core::str::from_utf8(name_bytes).map_err(|_| WireError::Malformed)?;
    at += name_len;
    let endpoint = ip.map(|ip| SocketAddr::new(ip, port));
    Ok((
        GossipEntry {
            key,
            endpoint,
            name,
        },
        at,
    ))
}

/// Builds a gossip message into a buffer; refuses entries that do not fit.
pub struct GossipWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    count: u8,
}

impl<'b> GossipWriter<'b> {
    /// A writer over `buf`; `Truncated` if it cannot hold the 2-byte head.
    pub fn new(buf: &'b mut [u8]) -> Result<Self, WireError> {
        *head::<2>(buf)? = [MSG_GOSSIP, 0];
        Ok(GossipWriter {
            buf,
            len: 2,
            count: 0,
        })
    }

    /// Append one entry; `false` if full (count or space).
    pub fn push(&mut self, entry: &GossipEntry<'_>) -> bool {
        let name = entry.name.as_bytes();
        let name = &name[..name.len().min(MAX_NAME_LEN)];
        let ip_len = match entry.endpoint {
            None => 0,
            Some(SocketAddr::V4(_)) => 4,
            Some(SocketAddr::V6(_)) => 16,
        };
        let need = 32 + 3 + ip_len + 1 + name.len();
        if usize::from(self.count) >= MAX_GOSSIP_ENTRIES || self.len + need > self.buf.len() {
            return false;
        }
        let b = &mut self.buf[self.len..self.len + need];
        b[..32].copy_from_slice(&entry.key);
        let port = entry.endpoint.map_or(0, |e| e.port());
        b[32..34].copy_from_slice(&port.to_be_bytes());
        let mut at = 35;
        match entry.endpoint {
            None => b[34] = 0,
            Some(SocketAddr::V4(a)) => {
                b[34] = 4;
                b[at..at + 4].copy_from_slice(&a.ip().octets());
                at += 4;
            }
            Some(SocketAddr::V6(a)) => {
                b[34] = 6;
                b[at..at + 16].copy_from_slice(&a.ip().octets());
                at += 16;
            }
        }
        // `name` was cut to MAX_NAME_LEN (32), so it fits a u8.
        b[at] = name.len() as u8;
        b[at + 1..].copy_from_slice(name);
        self.len += need;
        self.count += 1;
        self.buf[1] = self.count;
        true
    }

    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// Length of the message written so far.
    pub fn finish(self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static DATA_BYTES: [u8; 32] = [
        0x04, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
        0x88, 0x99,
    ];

    #[test]
    fn data_header_both_ways() {
        assert_eq!(
            Packet::parse(&DATA_BYTES),
            Ok(Packet::Data {
                receiver_index: 0x1234_5678,
                counter: 0x0102
            })
        );
        let mut buf = [0u8; 16];
        emit_data_header(&mut buf, 0x1234_5678, 0x0102).unwrap();
        assert_eq!(&buf[..], &DATA_BYTES[..16]);
    }

    #[test]
    fn rejects_short_and_unknown() {
        assert_eq!(Packet::parse(&[]), Err(WireError::Truncated));
        assert_eq!(Packet::parse(&DATA_BYTES[..31]), Err(WireError::Truncated));
        assert_eq!(
            Packet::parse(&[9, 0, 0, 0, 1]),
            Err(WireError::UnknownType(9))
        );
        assert_eq!(Packet::parse(&[4, 1, 0, 0]), Err(WireError::Malformed));
        let mut init = [0u8; INIT_HEADER_LEN + NOISE_INIT_MIN + 2 * MAC_LEN - 1];
        init[0] = TYPE_HANDSHAKE_INIT;
        assert_eq!(Packet::parse(&init), Err(WireError::Truncated));
        assert_eq!(
            Packet::parse(&[3, 0, 0, 0, 0, 0, 0, 1]),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn handshake_layout() {
        let mut b = [0u8; INIT_HEADER_LEN + NOISE_INIT_MIN + 2 * MAC_LEN];
        emit_init_header(&mut b, 7).unwrap();
        let n = b.len();
        b[n - 32] = 0xa1; // mac1 first byte
        b[n - 16] = 0xb2; // mac2 first byte
        match Packet::parse(&b) {
            Ok(Packet::HandshakeInit {
                sender_index,
                noise,
                mac1,
                mac2,
                mac1_covered,
                mac2_covered,
            }) => {
                assert_eq!(sender_index, 7);
                assert_eq!(noise.len(), NOISE_INIT_MIN);
                assert_eq!(mac1[0], 0xa1);
                assert_eq!(mac2[0], 0xb2);
                assert_eq!(mac1_covered.len(), n - 32);
                assert_eq!(mac2_covered.len(), n - 16);
            }
            other => panic!("{other:?}"),
        }
        let mut r = [0u8; RESP_HEADER_LEN + NOISE_RESP_MIN + 2 * MAC_LEN];
        emit_resp_header(&mut r, 1, 2).unwrap();
        assert!(matches!(
            Packet::parse(&r),
            Ok(Packet::HandshakeResp {
                sender_index: 1,
                receiver_index: 2,
                ..
            })
        ));
        let mut c = [0u8; COOKIE_REPLY_LEN];
        emit_cookie_reply(&mut c, 9, &[5; 24], &[6; 32]).unwrap();
        assert_eq!(
            Packet::parse(&c),
            Ok(Packet::CookieReply {
                receiver_index: 9,
                nonce: [5; 24],
                sealed: [6; 32],
            })
        );
        let mut u = [0u8; SESSION_UNKNOWN_LEN];
        emit_session_unknown(&mut u, 0x0102_0304).unwrap();
        assert_eq!(u, [5, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(
            Packet::parse(&u),
            Ok(Packet::SessionUnknown {
                receiver_index: 0x0102_0304
            })
        );
    }

    #[test]
    fn probes_and_relays() {
        let mut b = [0u8; 13];
        emit_probe(&mut b, false, 3, 0x0102_0304_0506_0708).unwrap();
        assert_eq!(b, [2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            Message::parse(&b),
            Ok(Message::Ping {
                seq: 3,
                echo: 0x0102_0304_0506_0708
            })
        );
        assert_eq!(Message::parse(&b[..12]), Err(WireError::Malformed));
        let mut relay = vec![MSG_RELAY_TO, 1, 2, 3, 4, 5, 6, 7, 8];
        relay.extend_from_slice(&b);
        assert_eq!(
            Message::parse(&relay),
            Ok(Message::RelayTo {
                dst: [1, 2, 3, 4, 5, 6, 7, 8],
                inner: &b[..]
            })
        );
        relay[9] = MSG_RELAY_FROM; // nested relay refused
        assert_eq!(Message::parse(&relay), Err(WireError::Malformed));
        assert_eq!(
            Message::parse(&[MSG_FRAME, 1, 2]),
            Err(WireError::Truncated)
        );
    }

    /// Type 7, start 34, offset 16, then a 60-byte frame.
    #[test]
    fn frame_partial_both_ways() {
        let mut b = vec![MSG_FRAME_PARTIAL, 0x00, 0x22, 0x00, 0x10];
        let frame: Vec<u8> = (0..60u8).collect();
        b.extend_from_slice(&frame);
        let csum = PartialCsum {
            start: 34,
            offset: 16,
        };
        assert_eq!(frame_partial_header(csum), [0x00, 0x22, 0x00, 0x10]);
        assert_eq!(
            Message::parse(&b),
            Ok(Message::FramePartial {
                csum,
                frame: &frame[..]
            })
        );
        // The checksum field must lie in the frame; the frame must be one.
        let mut bad = b.clone();
        bad[2] = 59;
        assert_eq!(Message::parse(&bad), Err(WireError::Malformed));
        assert_eq!(Message::parse(&b[..5 + 13]), Err(WireError::Truncated));
        assert_eq!(Message::parse(&b[..3]), Err(WireError::Truncated));
        // It may be relayed.
        let mut relay = vec![MSG_RELAY_FROM, 1, 2, 3, 4, 5, 6, 7, 8];
        relay.extend_from_slice(&b);
        assert!(matches!(
            Message::parse(&relay),
            Ok(Message::RelayFrom { .. })
        ));
    }

    #[test]
    fn gossip_round_trip() {
        let mut buf = [0u8; 1400];
        let mut w = GossipWriter::new(&mut buf).unwrap();
        let a = GossipEntry {
            key: [1; 32],
            endpoint: Some("192.0.2.1:6556".parse().unwrap()),
            name: "box1",
        };
        let b = GossipEntry {
            key: [2; 32],
            endpoint: Some("[2001:db8::1]:7".parse().unwrap()),
            name: "",
        };
        let c = GossipEntry {
            key: [3; 32],
            endpoint: None,
            name: "box3",
        };
        assert!(w.push(&a) && w.push(&b) && w.push(&c));
        let n = w.finish();
        assert_eq!(
            n,
            2 + (32 + 3 + 4 + 1 + 4) + (32 + 3 + 16 + 1) + (32 + 3 + 1 + 4)
        );
        let Ok(Message::Gossip(g)) = Message::parse(&buf[..n]) else {
            panic!()
        };
        let got: Vec<_> = g.entries().collect();
        assert_eq!(got, vec![a, b, c]);
        // A truncated or padded message is refused.
        assert!(Message::parse(&buf[..n - 1]).is_err());
        assert!(Message::parse(&buf[..n + 1]).is_err());
        buf[1] = 200;
        assert_eq!(Message::parse(&buf[..n]), Err(WireError::Malformed));
    }

    #[test]
    fn gossip_writer_bounds() {
        let mut buf = [0u8; 100];
        let mut w = GossipWriter::new(&mut buf).unwrap();
        let e = GossipEntry {
            key: [1; 32],
            endpoint: None,
            name: "a",
        };
        assert!(w.push(&e) && w.push(&e));
        assert!(!w.push(&e), "third entry does not fit 100 bytes");
        assert_eq!(w.count(), 2);
    }

    /// Every emitter refuses a buffer one byte short (and every shorter
    /// one) with `Truncated`, and fills one of exactly its length.
    #[test]
    fn emitters_never_panic_on_short_buffers() {
        type Emit = fn(&mut [u8]) -> Result<usize, WireError>;
        let emitters: [(usize, Emit); 6] = [
            (INIT_HEADER_LEN, |b| emit_init_header(b, 1)),
            (RESP_HEADER_LEN, |b| emit_resp_header(b, 1, 2)),
            (COOKIE_REPLY_LEN, |b| {
                emit_cookie_reply(b, 1, &[3; COOKIE_NONCE_LEN], &[4; SEALED_COOKIE_LEN])
            }),
            (SESSION_UNKNOWN_LEN, |b| emit_session_unknown(b, 1)),
            (DATA_HEADER_LEN, |b| emit_data_header(b, 1, 2)),
            (PROBE_LEN, |b| emit_probe(b, true, 1, 2)),
        ];
        for (len, emit) in emitters {
            let mut buf = vec![0u8; len];
            assert_eq!(emit(&mut buf), Ok(len));
            for short in 0..len {
                assert_eq!(
                    emit(&mut buf[..short]),
                    Err(WireError::Truncated),
                    "{len}/{short}"
                );
            }
        }
        let mut one = [0u8; 1];
        assert!(GossipWriter::new(&mut one).is_err());
        let mut two = [0u8; 2];
        let mut w = GossipWriter::new(&mut two).unwrap();
        let entry = GossipEntry {
            key: [1; 32],
            endpoint: None,
            name: "x",
        };
        assert!(!w.push(&entry), "no room: refused, not a panic");
        assert_eq!(w.finish(), 2);
    }

    /// Every kind of inner message: parse → emit gives the same bytes, and
    /// emitting into a buffer one byte short is refused.
    #[test]
    fn messages_round_trip() {
        let mut frame = vec![0u8; 60];
        frame[12] = 0x08;
        let mut probe = [0u8; PROBE_LEN];
        let mut gossip = [0u8; 200];
        let n = {
            let mut w = GossipWriter::new(&mut gossip).unwrap();
            assert!(w.push(&GossipEntry {
                key: [9; 32],
                endpoint: Some("192.0.2.9:6556".parse().unwrap()),
                name: "box9",
            }));
            w.finish()
        };
        let mut cases: Vec<Vec<u8>> = vec![
            [&[MSG_FRAME][..], &frame].concat(),
            [&[MSG_FRAME_PARTIAL, 0, 34, 0, 16][..], &frame].concat(),
            gossip[..n].to_vec(),
            [
                &[MSG_RELAY_TO, 1, 2, 3, 4, 5, 6, 7, 8, MSG_FRAME][..],
                &frame,
            ]
            .concat(),
        ];
        for pong in [false, true] {
            let n = emit_probe(&mut probe, pong, 7, 8).unwrap();
            cases.push(probe[..n].to_vec());
        }
        let mut relayed_probe = vec![MSG_RELAY_FROM, 8, 7, 6, 5, 4, 3, 2, 1];
        relayed_probe.extend_from_slice(&probe);
        cases.push(relayed_probe);
        for bytes in cases {
            let m = Message::parse(&bytes).unwrap();
            assert_eq!(m.buffer_len(), bytes.len(), "{m:?}");
            let mut out = vec![0u8; bytes.len()];
            assert_eq!(m.emit(&mut out), Ok(bytes.len()));
            assert_eq!(out, bytes, "{m:?}");
            assert_eq!(
                m.emit(&mut out[..bytes.len() - 1]),
                Err(WireError::Truncated)
            );
        }
    }

    /// Outer packets: parse -> emit gives the bytes back (the header only
    /// for data), and one byte short is refused.
    #[test]
    fn packets_round_trip() {
        let mut init = vec![1, 0, 0, 0, 0, 0, 0, 7];
        init.extend((0..NOISE_INIT_MIN + 2 * MAC_LEN + 9).map(|i| i as u8));
        let mut resp = vec![2, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9];
        resp.extend((0..NOISE_RESP_MIN + 2 * MAC_LEN).map(|i| (i * 3) as u8));
        let mut cookie = vec![3, 0, 0, 0, 0, 0, 0, 9];
        cookie.extend_from_slice(&[0xc0; COOKIE_NONCE_LEN + SEALED_COOKIE_LEN]);
        let unknown = vec![5, 0, 0, 0, 0, 0, 0, 9];
        let data = DATA_BYTES.to_vec();
        for bytes in [init, resp, cookie, unknown, data] {
            let p = Packet::parse(&bytes).unwrap();
            let len = p.buffer_len();
            let mut out = vec![0u8; len];
            assert_eq!(p.emit(&mut out), Ok(len), "{p:?}");
            assert_eq!(out, bytes[..len], "{p:?}");
            assert_eq!(p.emit(&mut out[..len - 1]), Err(WireError::Truncated));
        }
    }
}
