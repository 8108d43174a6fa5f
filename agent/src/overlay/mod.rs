//! The encrypted layer-2 overlay: the boxes of one micro cloud on one
//! Ethernet segment.
//!
//! - [`wire`]: outer packet formats (views, parse/emit; no state).
//! - [`noise`]: Noise IK handshake, transport sessions, replay window, cookies.
//! - [`switch`]: the learning switch's MAC table.
//! - [`node`]: the sans-IO engine: peers, sessions, mesh gossip, relays, timers.
//! - [`offload`]: virtio-net headers, software TSO and GRO for an offloading TAP.
//! - [`device`]: TAP device and AF_PACKET raw socket (the only IO here).
//!
//! The engine takes bytes and time in and emits through an [`Outbox`]; the
//! runtime owns every socket and the clock.

pub mod device;
pub mod node;
pub mod noise;
pub mod offload;
pub mod switch;
pub mod wire;

use std::net::SocketAddr;

/// Where the engine's output goes. The runtime batches `send` into
/// sendmmsg and writes `deliver` to the TAP/raw device; tests collect both.
pub trait Outbox {
    /// Send one UDP datagram to an underlay address.
    fn send(&mut self, to: SocketAddr, packet: &[u8]);
    /// Hand one Ethernet frame to the local overlay device.
    fn deliver(&mut self, frame: &[u8]);
    /// Hand one frame whose TCP/UDP checksum is partial (`csum` lies in
    /// the frame). The default finishes the checksum in a copy and calls
    /// [`Outbox::deliver`]; an offloading device takes it as it is.
    fn deliver_partial(&mut self, frame: &[u8], csum: offload::PartialCsum) {
        let mut copy = [0u8; crate::limits::MAX_DATAGRAM];
        if let Some(buf) = copy.get_mut(..frame.len()) {
            buf.copy_from_slice(frame);
            offload::complete_checksum(buf, csum);
            self.deliver(buf);
        }
    }
}

/// A public key identifies a box; its first 8 bytes name it on the wire.
pub type PublicKey = [u8; 32];

/// Short on-wire name of a member (first 8 bytes of its public key).
pub type PeerId = [u8; 8];

pub fn peer_id(key: &PublicKey) -> PeerId {
    let mut id = [0u8; 8];
    id.copy_from_slice(&key[..8]);
    id
}

/// Reachability of a peer as `cloudy peers` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PeerState {
    /// No session and no relay; retrying with backoff.
    Down,
    /// Handshake sent, no answer yet.
    Connecting,
    /// Direct session established.
    Up,
    /// Reached through another member (`hops` > 1).
    Relayed,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Down => "down",
            PeerState::Connecting => "connecting",
            PeerState::Up => "up",
            PeerState::Relayed => "relayed",
        }
    }
}

/// One row of `cloudy peers`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PeerInfo {
    /// Configured name, or `~name` as the peer calls itself when learned by gossip.
    pub name: String,
    pub public_key: PublicKey,
    pub endpoint: Option<SocketAddr>,
    pub state: PeerState,
    /// Smoothed round-trip time in microseconds, if measured.
    pub rtt_us: Option<u64>,
    /// 1 = direct, 2 = through one relay; 0 when unreachable.
    pub hops: u8,
    /// Seconds since the last completed handshake.
    pub last_handshake_secs: Option<u64>,
    /// Name of the relay when `state` is `Relayed`.
    pub via: Option<String>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Counters of the engine (`cloudy status`). Plain `u64` fields: the loop
/// is single-threaded, so no 64-bit atomics are needed (mips32 has none).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OverlayStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_frames: u64,
    pub tx_frames: u64,
    pub handshakes_completed: u64,
    /// Malformed or truncated datagrams.
    pub dropped_malformed: u64,
    /// Handshakes from keys that are not members of this cloud.
    pub dropped_unknown_key: u64,
    /// Failed authentication (bad tag, bad mac1, failed handshake).
    pub dropped_auth: u64,
    /// Replayed or too-old counters.
    pub dropped_replay: u64,
    /// Data for a session that no longer exists or has expired.
    pub dropped_stale: u64,
    /// Handshakes answered with a cookie instead (under load).
    pub cookies_sent: u64,
    /// Cookie replies that opened for a handshake in flight (used on its retry).
    pub cookies_received: u64,
    /// Cookie replies refused: no handshake in flight to that address, or
    /// not sealed for it (forged).
    pub cookies_refused: u64,
    /// "Session unknown" hints sent for data that matched no session (we restarted).
    pub hints_sent: u64,
    /// Hints received that started a new handshake at once (the peer restarted).
    pub hints_received: u64,
    /// Frames to a member with no route right now.
    pub dropped_no_route: u64,
    pub relayed_frames: u64,
    /// Gossip entries naming a key this box does not accept (ignored).
    pub gossip_unknown: u64,
    /// Frames from the device longer than one datagram can carry
    /// (`wire::MAX_OVERLAY_FRAME`), and relayed messages too long to re-wrap.
    pub dropped_oversize: u64,
    /// Handshakes and members refused because the authority revoked the key.
    pub dropped_revoked: u64,
    /// Certificates and revocation lists that did not verify (forged,
    /// another cloud, expired, another key).
    pub dropped_bad_cert: u64,
    /// Certified members refused because the table is full of members
    /// that are up or configured.
    pub dropped_table_full: u64,
}
