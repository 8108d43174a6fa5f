//! The overlay engine: members, sessions, switching, mesh gossip, relays
//! and timers. Sans-IO: it takes datagrams, frames and time, and emits
//! through an [`Outbox`].
//!
//! Invariants:
//! - A frame reaches [`Outbox::deliver`] only after its data packet
//!   authenticated on a live session of a member (configured, or vouched
//!   for by gossip from an authenticated member) and passed the replay
//!   window.
//! - Frames from the overlay are never sent back into the overlay (split
//!   horizon): every member floods its own broadcasts to all members, so
//!   no loops can form. The only forwarding is an explicit one-hop relay
//!   envelope (`RelayTo` → `RelayFrom`), which cannot nest.
//! - Fixed capacity: at most [`MAX_PEERS`] slots; a session index carries
//!   its slot in the low 8 bits, so lookups need no map.
//! - Timers run from [`Node::handle_timeout`] at a fixed tick; nothing
//!   here reads the clock.
//!
//! Split by concern, as boringtun splits `noise/`: this file holds the
//! state (`Node`, `Peer`) and lookups; `membership` (peer list, gossip),
//! `send` (routes, sealing, frames, relay envelope), `receive` (handshakes,
//! cookies, data, inner messages, MAC learning), `timers` (retries,
//! keepalives, rekeying, gossip rounds) and `report` (console views) each
//! add their part of `impl Node`.

use std::net::SocketAddr;

use super::noise::{self, GuardVerdict, HandshakeGuard, Identity, Initiation, Responder, Session};
use super::offload::PartialCsum;
use super::switch::{is_multicast, MacTable};
use super::wire::{self, GossipEntry, GossipWriter, Message, Packet, DATA_HEADER_LEN, TAG_LEN};
use super::{peer_id, Outbox, OverlayStats, PeerId, PeerInfo, PeerState, PublicKey};
use crate::limits::*;
use crate::time::{Duration, Instant, TokenBucket};
use crate::{debug, info};

/// Timer resolution of the engine (handshake retries, keepalives).
pub const TICK: Duration = Duration::from_millis(250);
/// A learned member nobody has vouched for in this long is forgotten.
const LEARNED_EXPIRY: Duration = Duration::from_secs(300);
/// A relay route not confirmed by gossip for this long is dropped.
const RELAY_EXPIRY: Duration = Duration::from_secs(35);
/// A responder that has not been rekeyed by the initiator does it itself.
const RESPONDER_REKEY: Duration = Duration::from_secs(150);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

const _: () = assert!(
    MAX_PEERS <= 256,
    "slot must fit the low byte of a session index"
);

/// One configured peer, endpoints already resolved by the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    pub name: String,
    pub key: PublicKey,
    pub endpoints: Vec<SocketAddr>,
}

/// What the engine needs to run.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub name: String,
    pub cloud: String,
    pub private_key: [u8; 32],
    pub public_key: PublicKey,
    pub peers: Vec<PeerSpec>,
    /// The cloud authority, when the cloud has one.
    pub trust: Option<TrustConfig>,
}

struct Pending {
    init: Initiation,
    sent_at: Instant,
    /// Where the initiation went: only a cookie reply from there is read.
    to: SocketAddr,
}

struct Peer {
    key: PublicKey,
    id: PeerId,
    /// Configured name, or `~name` as the member calls itself.
    name: String,
    configured: bool,
    endpoints: Vec<SocketAddr>,
    gossip_endpoint: Option<SocketAddr>,
    /// Source of the last authenticated packet: where we send.
    endpoint: Option<SocketAddr>,
    handshake: Option<Pending>,
    current: Option<Session>,
    previous: Option<Session>,
    /// Responder session waiting for the initiator's first data packet.
    next: Option<Session>,
    last_rx: Option<Instant>,
    last_handshake: Option<Instant>,
    last_init_timestamp: u64,
    rtt_us: Option<u64>,
    ping_seq: u32,
    ping_due: Instant,
    /// When the last keepalive went out, until an answer or its timeout.
    probe_sent: Option<Instant>,
    gossip_due: Instant,
    /// Slot of the member that relays for us, while no direct session.
    relay: Option<usize>,
    relay_seen: Instant,
    relay_rtt_us: Option<u64>,
    next_attempt: Instant,
    backoff: Duration,
    attempt: usize,
    cookie: Option<([u8; wire::COOKIE_LEN], Instant)>,
    /// Learned members: last time a member vouched for it.
    vouched: Instant,
    rx_bytes: u64,
    tx_bytes: u64,
    /// Its certificate (checked when stored), to pass on to other members.
    cert: Option<Vec<u8>>,
    /// The certificate's not_after (Unix seconds).
    cert_until: u64,
}

impl Peer {
    fn new(
        key: PublicKey,
        name: String,
        configured: bool,
        endpoints: Vec<SocketAddr>,
        now: Instant,
    ) -> Peer {
        Peer {
            key,
            id: peer_id(&key),
            name,
            configured,
            endpoints,
            gossip_endpoint: None,
            endpoint: None,
            handshake: None,
            current: None,
            previous: None,
            next: None,
            last_rx: None,
            last_handshake: None,
            last_init_timestamp: 0,
            rtt_us: None,
            ping_seq: 0,
            ping_due: now,
            probe_sent: None,
            gossip_due: now,
            relay: None,
            relay_seen: now,
            relay_rtt_us: None,
            next_attempt: now,
            backoff: FIRST_BACKOFF,
            attempt: 0,
            cookie: None,
            vouched: now,
            rx_bytes: 0,
            tx_bytes: 0,
            cert: None,
            cert_until: 0,
        }
    }

    /// A confirmed, unexpired session we can send on.
    fn is_up(&self, now: Instant) -> bool {
        self.send_session_ref(now).is_some()
    }

    fn send_session_ref(&self, now: Instant) -> Option<&Session> {
        [self.current.as_ref(), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|s| s.confirmed && s.age(now) < REJECT_AFTER_TIME)
    }

    fn send_session(&mut self, now: Instant) -> Option<&mut Session> {
        let ok = |s: &Option<Session>| {
            s.as_ref()
                .is_some_and(|s| s.confirmed && s.age(now) < REJECT_AFTER_TIME)
        };
        if ok(&self.current) {
            self.current.as_mut()
        } else if ok(&self.previous) {
            self.previous.as_mut()
        } else {
            None
        }
    }

    fn drop_sessions(&mut self) {
        self.current = None;
        self.previous = None;
        self.next = None;
        self.handshake = None;
    }

    fn candidates(&self) -> heapless::Vec<SocketAddr, { MAX_ENDPOINTS_PER_PEER + 2 }> {
        let mut c = heapless::Vec::new();
        let all = self
            .endpoint
            .iter()
            .chain(self.gossip_endpoint.iter())
            .chain(self.endpoints.iter());
        for &a in all {
            if !c.contains(&a) && c.push(a).is_err() {
                break;
            }
        }
        c
    }
}

/// Where to send a message for a member right now.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    Direct(usize),
    Via { relay: usize, dst: usize },
}

/// The overlay engine of one box.
pub struct Node {
    id: Identity,
    peers: Vec<Option<Peer>>,
    macs: MacTable<u8>,
    guard: HandshakeGuard,
    /// Rate of "session unknown" hints we send.
    hint_bucket: TokenBucket,
    stats: OverlayStats,
    scratch: Box<[u8; MAX_DATAGRAM]>,
    /// Wall-clock microseconds at `Instant::ZERO`, for handshake timestamps.
    clock_base: u64,
    last_timestamp: u64,
    next_tick: Instant,
    /// The cloud authority, if any (`trust`).
    trust: Option<Trust>,
}

impl Node {
    /// `wall_clock_micros` is the Unix time now, in microseconds: it makes
    /// handshake timestamps grow across restarts.
    pub fn new(cfg: &NodeConfig, now: Instant, wall_clock_micros: u64) -> Node {
        let mut id = Identity::new(cfg.private_key, cfg.public_key, &cfg.name, &cfg.cloud);
        if let Some(cert) = cfg.trust.as_ref().and_then(|t| t.cert.as_ref()) {
            id.cert = cert.to_bytes().unwrap_or_default();
        }
        let mut node = Node {
            id,
            peers: (0..MAX_PEERS).map(|_| None).collect(),
            // A random hash key: a LAN host cannot aim MAC addresses at one bucket.
            macs: MacTable::with_seed(u64::from_ne_bytes(noise::random_bytes())),
            guard: HandshakeGuard::new(&cfg.public_key, now),
            hint_bucket: TokenBucket::new(HINTS_PER_SEC, HINT_BURST, now),
            stats: OverlayStats::default(),
            scratch: Box::new([0u8; MAX_DATAGRAM]),
            clock_base: wall_clock_micros.saturating_sub(now.micros()),
            last_timestamp: 0,
            next_tick: now,
            trust: cfg.trust.as_ref().map(|t| Trust::new(t, &cfg.cloud)),
        };
        node.set_peers(now, &cfg.peers);
        node
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.id.public
    }

    pub fn stats(&self) -> &OverlayStats {
        &self.stats
    }

    pub fn mac_entries(&self) -> usize {
        self.macs.len()
    }

    fn slot_of_key(&self, key: &PublicKey) -> Option<usize> {
        self.peers
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| &p.key == key))
    }

    fn slot_of_id(&self, id: &PeerId) -> Option<usize> {
        self.peers
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| &p.id == id))
    }

    fn peer(&self, slot: usize) -> Option<&Peer> {
        self.peers.get(slot).and_then(Option::as_ref)
    }

    fn peer_mut(&mut self, slot: usize) -> Option<&mut Peer> {
        self.peers.get_mut(slot).and_then(Option::as_mut)
    }
}

fn session_index(slot: usize) -> u32 {
    // `slot` < MAX_PEERS ≤ 256 (checked at compile time above).
    (noise::random_u32() & !0xff) | (slot as u32 & 0xff)
}

fn slot_of_index(index: u32) -> usize {
    (index & 0xff) as usize
}

mod membership;
mod receive;
mod report;
mod send;
mod timers;
mod trust;

use trust::Trust;
pub use trust::TrustConfig;

#[cfg(test)]
mod sim;
