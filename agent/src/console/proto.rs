//! The control protocol between `cloudy` commands and the daemon.
//!
//! One request, one response, over a Unix stream socket. Each message is a
//! frame: a 4-byte big-endian body length, then the body, a
//! [postcard](https://postcard.jamesmunns.com/wire-format) encoding of
//! [`Request`] or [`Response`]. A body is at most
//! [`limits::MAX_CONSOLE_MESSAGE`] bytes; a longer declared length is an
//! error before any of it is buffered.
//!
//! Extension: postcard encodes an enum as its variant index (a varint)
//! followed by the variant's fields, so new variants are appended at the
//! end of [`Request`] and [`Response`] and old indices never change. An old
//! daemon answers a request it does not know with a decoding error
//! ([`Response::Error`]) and closes the connection. Struct fields are
//! positional: changing [`StatusInfo`] or `overlay::PeerInfo` changes the
//! protocol, and the CLI and the daemon ship in one binary.
//!
//! [`FrameDecoder`] is sans-IO: the caller pushes the bytes it read and pops
//! complete frames. Its buffer never holds more than one largest frame
//! ([`MAX_FRAME_BYTES`]), which is always enough to complete the frame at
//! its front, so it cannot stall. Malformed input gives a [`FrameError`],
//! never a panic.

use core::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::limits::MAX_CONSOLE_MESSAGE;
use crate::overlay::{OverlayStats, PeerInfo, PublicKey};

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;
/// Largest frame on the wire: the prefix and the largest body.
pub const MAX_FRAME_BYTES: usize = HEADER_LEN + MAX_CONSOLE_MESSAGE;
/// Longest text carried in [`Response::Error`] (longer ones are cut).
pub const MAX_ERROR_LEN: usize = 256;

/// What a `cloudy` command asks the daemon. Append new variants at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The box's overlay status (`cloudy status`).
    Status,
    /// The members and how they are reached (`cloudy peers`).
    Peers,
    /// This box's public key (`cloudy pubkey` when the key file is unreadable).
    PublicKey,
    /// Publish a DNS-SD service (`cloudy publish`); answered with
    /// [`Response::Ok`].
    Publish {
        instance: String,
        /// `http` or `_http._tcp`.
        service_type: String,
        port: u16,
        /// `KEY=VALUE` strings.
        txt: Vec<String>,
        /// Target host label; `None` for this box.
        host: Option<String>,
    },
    /// Withdraw a published service (`cloudy unpublish`), with goodbyes.
    Unpublish { instance: String },
    /// Services known now (`cloudy search`); answered with
    /// [`Response::Services`].
    Search {
        /// `http` or `_http._tcp`; `None` for all types.
        service_type: Option<String>,
        /// A host label or full host name, case-insensitive.
        host: Option<String>,
        /// Also hosts outside `CLOUD.local`.
        all: bool,
    },
    /// Put a member on the cloud's revocation list (`cloudy revoke`, on
    /// the authority's box); answered with [`Response::Ok`].
    Revoke {
        /// A member's name or its public key in base64.
        member: String,
    },
    /// A one-time invitation (`cloudy invite`, on the authority's box);
    /// answered with [`Response::Ok`] holding the token.
    Invite {
        /// The new member's name.
        name: String,
        /// Overlay addresses for its certificate and config.
        addresses: Vec<(IpAddr, u8)>,
        /// Where the new box reaches this one; empty: this box's own
        /// addresses and port.
        endpoints: Vec<SocketAddr>,
        /// How long the token is valid.
        hours: u32,
    },
}

/// The daemon's answer. Append new variants at the end.
// One response exists at a time, briefly: its size does not matter, and
// `Status(StatusInfo)` keeps matching simple.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Status(StatusInfo),
    Peers(Vec<PeerInfo>),
    PublicKey(PublicKey),
    /// The request failed or was not understood; one line of text.
    Error(String),
    /// The request was done; one line of text for the operator.
    Ok(String),
    /// Services found, sorted by RTT, then hops, then instance name.
    Services {
        services: Vec<ServiceInfo>,
        /// Nonzero while the browse behind this answer has just started:
        /// ask again after this many milliseconds for a complete list.
        retry_ms: u32,
    },
    /// Every console slot is taken and the request was not complete when
    /// the daemon looked: nothing was done, ask again shortly on a new
    /// connection. Sent once, then the daemon closes the connection.
    Busy,
}

/// One service of `cloudy search`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub instance: String,
    /// `_http._tcp`.
    pub service_type: String,
    /// `node.cloud.local`.
    pub host: String,
    pub address: Option<IpAddr>,
    pub port: u16,
    pub txt: Vec<String>,
    /// Round-trip time to the box behind `host` over the overlay; 0 for
    /// this box, `None` when not an overlay member.
    pub rtt_us: Option<u64>,
    /// Overlay hops to that box: 0 for this box or unknown boxes.
    pub hops: u8,
    /// Published by this box.
    pub local: bool,
}

/// The discovery part of `cloudy status` (absent when mDNS is off).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryInfo {
    /// Our host name, `node.cloud.local` (or `node-2...` after a conflict).
    pub host: String,
    /// Interfaces mDNS runs on.
    pub interfaces: Vec<String>,
    pub published: u32,
    pub cached: u32,
    pub browsing: u32,
    pub packets_received: u64,
    pub dropped_malformed: u64,
    pub dropped_offlink: u64,
    pub dropped_rate: u64,
    pub dropped_ignored: u64,
    /// Datagrams from an interface mDNS does not run on.
    pub dropped_unknown_iface: u64,
    pub conflicts: u64,
    pub queries_sent: u64,
    pub responses_sent: u64,
    pub goodbyes_sent: u64,
    /// Sends the kernel refused.
    pub send_errors: u64,
    /// Cache entries evicted (full, or their source at its quota).
    pub cache_evictions: u64,
    /// New records not cached: the cache was full of better-ranked ones.
    pub cache_refused: u64,
    /// Records received with a TTL above 4500 s, capped.
    pub ttl_capped: u64,
    /// Unsolicited LAN responses over their source's rate.
    pub dropped_unsolicited: u64,
    /// Records of unsolicited LAN responses over the budget of all sources.
    pub unsolicited_refused: u64,
}

impl Response {
    /// Milliseconds after which asking again gives a complete answer
    /// (a `search` whose browse has just started), if so.
    pub fn retry_after_ms(&self) -> Option<u32> {
        match self {
            Response::Services { retry_ms, .. } if *retry_ms > 0 => Some(*retry_ms),
            _ => None,
        }
    }

    /// An error response, its text cut to [`MAX_ERROR_LEN`] bytes (at a
    /// character boundary) so that it always fits a frame.
    pub fn error(message: &str) -> Response {
        let mut end = message.len().min(MAX_ERROR_LEN);
        while !message.is_char_boundary(end) {
            end -= 1; // terminates: 0 is a char boundary
        }
        Response::Error(message.get(..end).unwrap_or_default().to_string())
    }
}

/// The overlay device part of `cloudy status`: what was dropped or
/// changed between the device and the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Frames carry virtio-net headers: super-frames are read and written.
    pub offload: bool,
    /// Frames longer than the read buffer, dropped.
    pub truncated: u64,
    /// Super-frames that could not be segmented (a GSO type we do not
    /// know, malformed headers), dropped.
    pub unsegmentable: u64,
    /// Frames the device refused on write (queue full, too long), dropped.
    pub write_drops: u64,
    /// Frames the kernel dropped because the raw socket's receive queue
    /// was full (the agent did not keep up).
    pub queue_drops: u64,
    /// TCP SYNs whose MSS option was lowered to fit the overlay MTU.
    pub mss_clamped: u64,
    /// TCP super-frames cut into MTU-sized segments.
    pub segmented: u64,
    /// Datagrams sent one by one because the kernel refused UDP GSO for
    /// their size (each refusal is retried after a while).
    pub gso_refused: u64,
}

/// `cloudy status`: who this box is and how its overlay is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    pub version: String,
    pub name: String,
    pub cloud: String,
    pub public_key: PublicKey,
    pub interface: String,
    /// `tap` or `raw`.
    pub mode: String,
    pub listen_port: u16,
    pub uptime_secs: u64,
    pub peers_configured: u32,
    pub peers_known: u32,
    pub peers_up: u32,
    pub peers_relayed: u32,
    pub mac_entries: u32,
    pub stats: OverlayStats,
    pub device: DeviceInfo,
    /// `None` when discovery is off (`option mdns '0'`) or failed to start.
    pub discovery: Option<DiscoveryInfo>,
    /// `None` on a box without a store (a client only).
    pub store: Option<StoreInfo>,
}

/// The store part of `cloudy status` and `cloudy store`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInfo {
    pub path: String,
    pub port: u16,
    /// Serving now; when not, `error` says why.
    pub serving: bool,
    pub error: Option<String>,
    /// Bytes of share files, and reserved by puts in progress.
    pub used: u64,
    pub reserved: u64,
    pub quota: u64,
    /// Share files, and distinct files (storage indexes) they belong to.
    pub shares: u32,
    pub files: u32,
    pub connections: u64,
    pub refused_busy: u64,
    pub errors: u64,
    pub shares_stored: u64,
    pub blocks_served: u64,
}

/// Why a frame was rejected. After any of these the byte stream is out of
/// step and the connection should be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix (or an encoded message) exceeds
    /// [`MAX_CONSOLE_MESSAGE`].
    Oversized(u32),
    /// The body is not a valid encoding of the expected message.
    Malformed,
    /// The body decodes but has bytes left over.
    TrailingBytes,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Oversized(n) => {
                write!(
                    f,
                    "message of {n} bytes exceeds the limit of {MAX_CONSOLE_MESSAGE}"
                )
            }
            FrameError::Malformed => f.write_str("malformed message"),
            FrameError::TrailingBytes => f.write_str("trailing bytes after the message"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Encodes `msg` as one frame (length prefix + postcard body).
///
/// Fails with [`FrameError::Oversized`] if the body would exceed
/// [`MAX_CONSOLE_MESSAGE`] (the receiver would refuse it).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out =
        postcard::to_extend(msg, vec![0u8; HEADER_LEN]).map_err(|_| FrameError::Malformed)?;
    let body_len = out.len().saturating_sub(HEADER_LEN);
    let len = u32::try_from(body_len).unwrap_or(u32::MAX);
    if body_len > MAX_CONSOLE_MESSAGE {
        return Err(FrameError::Oversized(len));
    }
    if let Some(head) = out.get_mut(..HEADER_LEN) {
        head.copy_from_slice(&len.to_be_bytes());
    }
    Ok(out)
}

/// Decodes one frame body; the whole body must be consumed.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    if body.len() > MAX_CONSOLE_MESSAGE {
        return Err(FrameError::Oversized(
            u32::try_from(body.len()).unwrap_or(u32::MAX),
        ));
    }
    match postcard::take_from_bytes::<T>(body) {
        Ok((msg, [])) => Ok(msg),
        Ok(_) => Err(FrameError::TrailingBytes),
        Err(_) => Err(FrameError::Malformed),
    }
}

/// Reassembles frames from a byte stream (sans-IO).
///
/// Invariant: `buf.len() <= MAX_FRAME_BYTES`. Once an error is returned
/// it is returned again on every later call (the stream is out of step).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Bytes [`push`](Self::push) accepts right now.
    pub fn room(&self) -> usize {
        MAX_FRAME_BYTES.saturating_sub(self.buf.len())
    }

    /// Bytes held that are not yet part of a popped frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends up to [`room`](Self::room) bytes of `bytes`; returns how many
    /// were taken. Pop frames to make room for the rest.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let take = self.room().min(bytes.len());
        self.buf
            .extend_from_slice(bytes.get(..take).unwrap_or_default());
        take
    }

    /// True when [`next_frame`](Self::next_frame) would return something
    /// other than `Ok(None)`: a complete frame or an error.
    pub fn has_frame(&self) -> bool {
        if self.failed.is_some() {
            return true;
        }
        let Some(&[a, b, c, d]) = self.buf.get(..HEADER_LEN) else {
            return false;
        };
        let len = usize::try_from(u32::from_be_bytes([a, b, c, d])).unwrap_or(usize::MAX);
        len > MAX_CONSOLE_MESSAGE || self.buf.len() >= HEADER_LEN + len
    }

    /// The body of the next complete frame, `Ok(None)` if more bytes are
    /// needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let Some(head) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; HEADER_LEN];
        len_bytes.copy_from_slice(head);
        let len32 = u32::from_be_bytes(len_bytes);
        let len = usize::try_from(len32).unwrap_or(usize::MAX);
        if len > MAX_CONSOLE_MESSAGE {
            self.failed = Some(FrameError::Oversized(len32));
            return Err(FrameError::Oversized(len32));
        }
        // `len <= MAX_CONSOLE_MESSAGE`, so `end <= MAX_FRAME_BYTES`: no overflow.
        let end = HEADER_LEN + len;
        let Some(body) = self.buf.get(HEADER_LEN..end) else {
            return Ok(None);
        };
        let body = body.to_vec();
        self.buf.drain(..end);
        Ok(Some(body))
    }

    /// The next complete frame decoded as `T`, `Ok(None)` if more bytes
    /// are needed. A body that does not decode makes the decoder fail.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        match self.next_frame()? {
            None => Ok(None),
            Some(body) => match decode_body(&body) {
                Ok(msg) => Ok(Some(msg)),
                Err(e) => {
                    self.failed = Some(e);
                    Err(e)
                }
            },
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::overlay::PeerState;

    fn status_fixture() -> StatusInfo {
        StatusInfo {
            version: "0.1.0".into(),
            name: "a".into(),
            cloud: "c".into(),
            public_key: [1; 32],
            interface: "cloudy0".into(),
            mode: "tap".into(),
            listen_port: 6556,
            uptime_secs: 300,
            peers_configured: 2,
            peers_known: 3,
            peers_up: 1,
            peers_relayed: 1,
            mac_entries: 5,
            stats: OverlayStats {
                rx_packets: 1,
                relayed_frames: 200,
                ..OverlayStats::default()
            },
            device: DeviceInfo {
                offload: true,
                mss_clamped: 3,
                ..DeviceInfo::default()
            },
            discovery: None,
            store: None,
        }
    }

    fn status_bytes() -> Vec<u8> {
        let mut b = vec![0x00]; // Response::Status
        b.extend_from_slice(&[5, b'0', b'.', b'1', b'.', b'0']);
        b.extend_from_slice(&[1, b'a', 1, b'c']);
        b.extend_from_slice(&[1; 32]);
        b.extend_from_slice(&[7, b'c', b'l', b'o', b'u', b'd', b'y', b'0']);
        b.extend_from_slice(&[3, b't', b'a', b'p']);
        b.extend_from_slice(&[0x9c, 0x33]); // 6556 as a varint
        b.extend_from_slice(&[0xac, 0x02]); // 300
        b.extend_from_slice(&[2, 3, 1, 1, 5]);
        b.push(1); // rx_packets
        b.extend_from_slice(&[0; 15]); // .. cookies and restart hints
        b.extend_from_slice(&[0xc8, 0x01]); // relayed_frames = 200
        b.push(0); // gossip_unknown
        b.push(0); // dropped_oversize
        b.extend_from_slice(&[0, 0, 0]); // dropped_revoked, _bad_cert, _table_full
        b.extend_from_slice(&[1, 0, 0, 0, 0, 3, 0, 0]); // device: offload, .., mss_clamped = 3
        b.push(0); // discovery: None
        b.push(0); // store: None
        let mut frame = (b.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&b);
        frame
    }

    fn peer_fixture() -> PeerInfo {
        PeerInfo {
            name: "b".into(),
            public_key: [2; 32],
            endpoint: Some("192.0.2.1:6556".parse().unwrap()),
            state: PeerState::Up,
            rtt_us: Some(1500),
            hops: 1,
            last_handshake_secs: Some(12),
            via: None,
            rx_bytes: 1000,
            tx_bytes: 0,
        }
    }

    fn peers_bytes() -> Vec<u8> {
        let mut b = vec![0x01, 1, 1, b'b']; // Response::Peers, 1 entry, name
        b.extend_from_slice(&[2; 32]);
        b.extend_from_slice(&[1, 0, 192, 0, 2, 1, 0x9c, 0x33]); // Some(V4(ip, port))
        b.push(2); // PeerState::Up
        b.extend_from_slice(&[1, 0xdc, 0x0b]); // Some(1500)
        b.push(1); // hops
        b.extend_from_slice(&[1, 12]); // Some(12)
        b.push(0); // via: None
        b.extend_from_slice(&[0xe8, 0x07, 0]); // rx 1000, tx 0
        let mut frame = (b.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&b);
        frame
    }

    #[test]
    fn request_fixtures() {
        assert_eq!(encode_frame(&Request::Status).unwrap(), [0, 0, 0, 1, 0]);
        assert_eq!(encode_frame(&Request::Peers).unwrap(), [0, 0, 0, 1, 1]);
        assert_eq!(encode_frame(&Request::PublicKey).unwrap(), [0, 0, 0, 1, 2]);
        let mut d = FrameDecoder::new();
        d.push(&[0, 0, 0, 1, 2, 0, 0, 0, 1, 0]);
        assert_eq!(d.next_message::<Request>(), Ok(Some(Request::PublicKey)));
        assert_eq!(d.next_message::<Request>(), Ok(Some(Request::Status)));
        assert_eq!(d.next_message::<Request>(), Ok(None));
    }

    #[test]
    fn response_fixtures() {
        let frame = encode_frame(&Response::Error("hi".into())).unwrap();
        assert_eq!(frame, [0, 0, 0, 4, 3, 2, b'h', b'i']);
        let mut key = vec![0, 0, 0, 33, 2];
        key.extend_from_slice(&[7; 32]);
        assert_eq!(encode_frame(&Response::PublicKey([7; 32])).unwrap(), key);
        assert_eq!(
            decode_body::<Response>(&key[4..]),
            Ok(Response::PublicKey([7; 32]))
        );

        let status = Response::Status(status_fixture());
        assert_eq!(encode_frame(&status).unwrap(), status_bytes());
        assert_eq!(decode_body::<Response>(&status_bytes()[4..]), Ok(status));

        let peers = Response::Peers(vec![peer_fixture()]);
        assert_eq!(encode_frame(&peers).unwrap(), peers_bytes());
        assert_eq!(decode_body::<Response>(&peers_bytes()[4..]), Ok(peers));
    }

    #[test]
    fn discovery_requests() {
        let publish = Request::Publish {
            instance: "web".into(),
            service_type: "http".into(),
            port: 8080,
            txt: vec!["a=b".into()],
            host: None,
        };
        let mut want = vec![
            0, 0, 0, 18, 3, 3, b'w', b'e', b'b', 4, b'h', b't', b't', b'p',
        ];
        want.extend_from_slice(&[0x90, 0x3f]); // 8080
        want.extend_from_slice(&[1, 3, b'a', b'=', b'b', 0]);
        assert_eq!(encode_frame(&publish).unwrap(), want);
        assert_eq!(decode_body::<Request>(&want[4..]), Ok(publish));
        let unpublish = Request::Unpublish {
            instance: "web".into(),
        };
        let want = [0, 0, 0, 5, 4, 3, b'w', b'e', b'b'];
        assert_eq!(encode_frame(&unpublish).unwrap(), want);
        assert_eq!(decode_body::<Request>(&want[4..]), Ok(unpublish));
        let search = Request::Search {
            service_type: Some("ssh".into()),
            host: None,
            all: true,
        };
        let want = [0, 0, 0, 8, 5, 1, 3, b's', b's', b'h', 0, 1];
        assert_eq!(encode_frame(&search).unwrap(), want);
        assert_eq!(decode_body::<Request>(&want[4..]), Ok(search));
    }

    #[test]
    fn discovery_responses() {
        let ok = Response::Ok("done".into());
        let want = [0, 0, 0, 6, 4, 4, b'd', b'o', b'n', b'e'];
        assert_eq!(encode_frame(&ok).unwrap(), want);
        assert_eq!(decode_body::<Response>(&want[4..]), Ok(ok));
        let services = Response::Services {
            services: vec![ServiceInfo {
                instance: "w".into(),
                service_type: "_h._tcp".into(),
                host: "a.c.local".into(),
                address: Some("10.0.0.1".parse().unwrap()),
                port: 80,
                txt: vec![],
                rtt_us: Some(1000),
                hops: 1,
                local: false,
            }],
            retry_ms: 1500,
        };
        let mut want = vec![5, 1, 1, b'w', 7];
        want.extend_from_slice(b"_h._tcp");
        want.push(9);
        want.extend_from_slice(b"a.c.local");
        want.extend_from_slice(&[1, 0, 10, 0, 0, 1, 80, 0, 1, 0xe8, 0x07, 1, 0]);
        want.extend_from_slice(&[0xdc, 0x0b]); // 1500
        let frame = encode_frame(&services).unwrap();
        assert_eq!(&frame[4..], &want[..]);
        assert_eq!(decode_body::<Response>(&want), Ok(services));
        let mut st = status_fixture();
        st.discovery = Some(DiscoveryInfo {
            host: "a.c.local".into(),
            published: 2,
            ..DiscoveryInfo::default()
        });
        let r = Response::Status(st);
        let frame = encode_frame(&r).unwrap();
        assert_eq!(decode_body::<Response>(&frame[4..]), Ok(r));
    }

    #[test]
    fn busy_fixture() {
        // Appended after `Services` (index 5): index 6, no fields.
        let want = [0, 0, 0, 1, 6];
        assert_eq!(encode_frame(&Response::Busy).unwrap(), want);
        assert_eq!(decode_body::<Response>(&want[4..]), Ok(Response::Busy));
        assert_eq!(
            decode_body::<Response>(&[6, 0]),
            Err(FrameError::TrailingBytes)
        );
    }

    #[test]
    fn byte_at_a_time() {
        let bytes = peers_bytes();
        let mut d = FrameDecoder::new();
        for (i, b) in bytes.iter().enumerate() {
            assert!(!d.has_frame());
            assert_eq!(d.next_message::<Response>(), Ok(None), "early frame at {i}");
            assert_eq!(d.push(&[*b]), 1);
        }
        assert!(d.has_frame());
        assert_eq!(
            d.next_message::<Response>(),
            Ok(Some(Response::Peers(vec![peer_fixture()])))
        );
        assert_eq!(d.buffered(), 0);
        assert!(!d.has_frame());
    }

    #[test]
    fn oversized_length_rejected_and_sticky() {
        let mut d = FrameDecoder::new();
        let len = (MAX_CONSOLE_MESSAGE as u32 + 1).to_be_bytes();
        d.push(&len);
        assert!(d.has_frame());
        assert_eq!(
            d.next_frame(),
            Err(FrameError::Oversized(MAX_CONSOLE_MESSAGE as u32 + 1))
        );
        assert!(d.next_frame().is_err());
        let mut d = FrameDecoder::new();
        d.push(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(d.next_frame(), Err(FrameError::Oversized(u32::MAX)));
    }

    #[test]
    fn largest_frame_fits_buffer() {
        let mut frame = (MAX_CONSOLE_MESSAGE as u32).to_be_bytes().to_vec();
        frame.resize(MAX_FRAME_BYTES, 0xaa);
        frame.extend_from_slice(&[0, 0, 0, 1, 0]);
        let mut d = FrameDecoder::new();
        let took = d.push(&frame);
        assert_eq!(took, MAX_FRAME_BYTES);
        assert_eq!(d.room(), 0);
        assert_eq!(d.next_frame().unwrap().unwrap().len(), MAX_CONSOLE_MESSAGE);
        assert_eq!(d.push(&frame[took..]), 5);
        assert_eq!(d.next_message::<Request>(), Ok(Some(Request::Status)));
    }

    #[test]
    fn malformed_bodies() {
        assert_eq!(decode_body::<Request>(&[]), Err(FrameError::Malformed));
        assert_eq!(decode_body::<Request>(&[9]), Err(FrameError::Malformed));
        assert_eq!(
            decode_body::<Request>(&[0, 0]),
            Err(FrameError::TrailingBytes)
        );
        // A string claiming more bytes than there are, and invalid UTF-8.
        assert_eq!(
            decode_body::<Response>(&[3, 0xff, 0xff, 0x03, b'x']),
            Err(FrameError::Malformed)
        );
        assert_eq!(
            decode_body::<Response>(&[3, 1, 0xff]),
            Err(FrameError::Malformed)
        );
        // A Vec length far beyond the body.
        assert_eq!(
            decode_body::<Response>(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(FrameError::Malformed)
        );
        let mut d = FrameDecoder::new();
        d.push(&[0, 0, 0, 1, 7, 0, 0, 0, 1, 0]);
        assert_eq!(d.next_message::<Request>(), Err(FrameError::Malformed));
        assert_eq!(d.next_message::<Request>(), Err(FrameError::Malformed));
    }

    #[test]
    fn oversized_message_not_encoded() {
        let big = Response::Error("x".repeat(MAX_CONSOLE_MESSAGE));
        assert!(matches!(encode_frame(&big), Err(FrameError::Oversized(_))));
        let cut = Response::error(&"é".repeat(MAX_ERROR_LEN));
        match &cut {
            Response::Error(s) => assert!(s.len() <= MAX_ERROR_LEN && s.len() >= MAX_ERROR_LEN - 1),
            _ => unreachable!(),
        }
        assert!(encode_frame(&cut).is_ok());
    }

    #[test]
    fn largest_peer_list_fits() {
        let long = "~".to_string() + &"n".repeat(crate::limits::MAX_NAME_LEN);
        let peer = PeerInfo {
            name: long.clone(),
            public_key: [0xff; 32],
            endpoint: Some(
                "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
                    .parse()
                    .unwrap(),
            ),
            state: PeerState::Relayed,
            rtt_us: Some(u64::MAX),
            hops: u8::MAX,
            last_handshake_secs: Some(u64::MAX),
            via: Some(long),
            rx_bytes: u64::MAX,
            tx_bytes: u64::MAX,
        };
        let all = Response::Peers(vec![peer; crate::limits::MAX_PEERS]);
        assert!(encode_frame(&all).is_ok());
    }

    /// Deterministic pseudo-random inputs, as the fuzz target does.
    #[test]
    fn random_input_never_panics() {
        let mut x: u32 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if bytes.len() >= 4 && next() % 2 == 0 {
                bytes[0] = 0;
                bytes[1] = 0;
                bytes[2] = 0;
            }
            let _ = decode_body::<Request>(&bytes);
            let _ = decode_body::<Response>(&bytes);
            let mut d = FrameDecoder::new();
            d.push(&bytes);
            for _ in 0..64 {
                match d.next_message::<Response>() {
                    Ok(Some(_)) => continue,
                    _ => break,
                }
            }
        }
    }
}
