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

use std::net::SocketAddr;

use super::noise::{self, GuardVerdict, HandshakeGuard, Identity, Initiation, Responder, Session};
use super::offload::PartialCsum;
use super::switch::{is_multicast, MacTable};
use super::wire::{self, GossipEntry, GossipWriter, Message, Packet, DATA_HEADER_LEN, TAG_LEN};
use super::{peer_id, Outbox, OverlayStats, PeerId, PeerInfo, PeerState, PublicKey};
use crate::limits::*;
use crate::time::{Duration, Instant};
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
}

struct Pending {
    init: Initiation,
    sent_at: Instant,
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
    stats: OverlayStats,
    scratch: Box<[u8; MAX_DATAGRAM]>,
    /// Wall-clock microseconds at `Instant::ZERO`, for handshake timestamps.
    clock_base: u64,
    last_timestamp: u64,
    next_tick: Instant,
}

impl Node {
    /// `wall_clock_micros` is the Unix time now, in microseconds: it makes
    /// handshake timestamps grow across restarts.
    pub fn new(cfg: &NodeConfig, now: Instant, wall_clock_micros: u64) -> Node {
        let mut node = Node {
            id: Identity::new(cfg.private_key, cfg.public_key, &cfg.name, &cfg.cloud),
            peers: (0..MAX_PEERS).map(|_| None).collect(),
            macs: MacTable::new(),
            guard: HandshakeGuard::new(&cfg.public_key, now),
            stats: OverlayStats::default(),
            scratch: Box::new([0u8; MAX_DATAGRAM]),
            clock_base: wall_clock_micros.saturating_sub(now.micros()),
            last_timestamp: 0,
            next_tick: now,
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

    /// Apply a new peer list: only added, removed or changed peers are
    /// touched; sessions of unchanged peers continue.
    pub fn set_peers(&mut self, now: Instant, specs: &[PeerSpec]) {
        // Remove configured peers that are gone.
        for slot in 0..self.peers.len() {
            let gone = match &self.peers[slot] {
                Some(p) => p.configured && !specs.iter().any(|s| s.key == p.key),
                None => false,
            };
            if gone {
                self.remove_slot(slot);
            }
        }
        for spec in specs {
            if spec.key == self.id.public {
                continue;
            }
            match self.slot_of_key(&spec.key) {
                Some(slot) => {
                    if let Some(p) = self.peers[slot].as_mut() {
                        p.configured = true;
                        p.name.clone_from(&spec.name);
                        if p.endpoints != spec.endpoints {
                            p.endpoints.clone_from(&spec.endpoints);
                            p.next_attempt = now;
                            p.backoff = FIRST_BACKOFF;
                        }
                    }
                }
                None => {
                    let peer = Peer::new(
                        spec.key,
                        spec.name.clone(),
                        true,
                        spec.endpoints.clone(),
                        now,
                    );
                    if self.insert(peer).is_none() {
                        crate::warn!("peer table full ({MAX_PEERS}): peer {} ignored", spec.name);
                    }
                }
            }
        }
    }

    fn insert(&mut self, peer: Peer) -> Option<usize> {
        let slot = self.peers.iter().position(Option::is_none)?;
        self.peers[slot] = Some(peer);
        Some(slot)
    }

    fn remove_slot(&mut self, slot: usize) {
        if let Some(p) = self.peers[slot].take() {
            info!("peer {} removed", p.name);
        }
        self.forget_routes_through(slot);
    }

    fn forget_routes_through(&mut self, slot: usize) {
        if let Ok(port) = u8::try_from(slot) {
            self.macs.forget_port(port);
        }
        for p in self.peers.iter_mut().flatten() {
            if p.relay == Some(slot) {
                p.relay = None;
            }
        }
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

    fn route(&self, now: Instant, dst: usize) -> Option<Route> {
        let p = self.peer(dst)?;
        if p.is_up(now) {
            return Some(Route::Direct(dst));
        }
        let relay = p.relay?;
        if now.since(p.relay_seen) < RELAY_EXPIRY && self.peer(relay)?.is_up(now) {
            Some(Route::Via { relay, dst })
        } else {
            None
        }
    }

    // -----------------------------------------------------------------
    // Sending

    /// Seal `scratch[DATA_HEADER_LEN..DATA_HEADER_LEN + len]` for the
    /// direct peer `slot` and hand it to the outbox.
    fn seal_and_send(
        &mut self,
        now: Instant,
        slot: usize,
        len: usize,
        out: &mut dyn Outbox,
    ) -> bool {
        let Some(p) = self.peers.get_mut(slot).and_then(Option::as_mut) else {
            return false;
        };
        let Some(to) = p.endpoint else { return false };
        let Some(session) = p.send_session(now) else {
            return false;
        };
        match session.seal(&mut self.scratch[..], len) {
            Ok(n) => {
                p.tx_bytes += n as u64;
                self.stats.tx_packets += 1;
                out.send(to, &self.scratch[..n]);
                true
            }
            Err(_) => false,
        }
    }

    /// Send an inner message (`kind` + `body`) to member `dst`, directly
    /// or through its relay. Relayed messages may only be frames or probes.
    fn send_message(
        &mut self,
        now: Instant,
        dst: usize,
        kind: u8,
        body: &[u8],
        out: &mut dyn Outbox,
    ) -> bool {
        self.send_message_with(now, dst, kind, &[], body, out)
    }

    /// [`Node::send_message`] with `head` written before `body`.
    fn send_message_with(
        &mut self,
        now: Instant,
        dst: usize,
        kind: u8,
        head: &[u8],
        body: &[u8],
        out: &mut dyn Outbox,
    ) -> bool {
        let Some(route) = self.route(now, dst) else {
            self.stats.dropped_no_route += 1;
            return false;
        };
        let (via, mut at) = match route {
            Route::Direct(d) => (d, DATA_HEADER_LEN),
            Route::Via { relay, dst } => {
                let Some(id) = self.peer(dst).map(|p| p.id) else {
                    return false;
                };
                self.scratch[DATA_HEADER_LEN] = wire::MSG_RELAY_TO;
                self.scratch[DATA_HEADER_LEN + 1..DATA_HEADER_LEN + 9].copy_from_slice(&id);
                (relay, DATA_HEADER_LEN + wire::RELAY_OVERHEAD)
            }
        };
        if at + 1 + head.len() + body.len() + TAG_LEN > self.scratch.len() {
            self.stats.dropped_oversize += 1;
            return false;
        }
        self.scratch[at] = kind;
        at += 1;
        self.scratch[at..at + head.len()].copy_from_slice(head);
        at += head.len();
        self.scratch[at..at + body.len()].copy_from_slice(body);
        at += body.len();
        self.seal_and_send(now, via, at - DATA_HEADER_LEN, out)
    }

    fn send_probe(
        &mut self,
        now: Instant,
        dst: usize,
        pong: bool,
        seq: u32,
        echo: u64,
        out: &mut dyn Outbox,
    ) {
        let mut b = [0u8; 13];
        wire::emit_probe(&mut b, pong, seq, echo);
        self.send_message(now, dst, b[0], &b[1..], out);
    }

    /// A frame read from the local overlay device.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8], out: &mut dyn Outbox) {
        self.handle_frame_partial(now, frame, None, out);
    }

    /// A frame read from the local overlay device whose TCP/UDP checksum
    /// may be partial (`csum`, from `offload::segment`): it travels as
    /// `FramePartial` and the receiver finishes or offloads it.
    pub fn handle_frame_partial(
        &mut self,
        now: Instant,
        frame: &[u8],
        csum: Option<PartialCsum>,
        out: &mut dyn Outbox,
    ) {
        if frame.len() < wire::MIN_FRAME {
            self.stats.dropped_malformed += 1;
            return;
        }
        if frame.len() > wire::MAX_OVERLAY_FRAME {
            self.stats.dropped_oversize += 1;
            return;
        }
        self.stats.tx_frames += 1;
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[..6]);
        if !is_multicast(&dst) {
            if let Some(slot) = self.macs.lookup(&dst, now) {
                let slot = usize::from(slot);
                if self.route(now, slot).is_some() {
                    self.send_frame(now, slot, frame, csum, out);
                    return;
                }
            }
        }
        // Broadcast, multicast or unknown unicast: flood to every member.
        for slot in 0..self.peers.len() {
            if self.route(now, slot).is_some() {
                self.send_frame(now, slot, frame, csum, out);
            }
        }
    }

    fn send_frame(
        &mut self,
        now: Instant,
        slot: usize,
        frame: &[u8],
        csum: Option<PartialCsum>,
        out: &mut dyn Outbox,
    ) {
        match csum {
            None => self.send_message(now, slot, wire::MSG_FRAME, frame, out),
            Some(c) => self.send_message_with(
                now,
                slot,
                wire::MSG_FRAME_PARTIAL,
                &wire::frame_partial_header(c),
                frame,
                out,
            ),
        };
    }

    // -----------------------------------------------------------------
    // Receiving

    /// One UDP datagram from the underlay. Decrypts in place.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &mut [u8],
        out: &mut dyn Outbox,
    ) {
        self.stats.rx_packets += 1;
        let parsed = match Packet::parse(packet) {
            Ok(p) => p,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                debug!("{from}: {e}");
                return;
            }
        };
        match parsed {
            Packet::HandshakeInit {
                sender_index,
                noise,
                mac1_covered,
                mac1,
                mac2_covered,
                mac2,
            } => {
                match self
                    .guard
                    .check(now, from, mac1_covered, mac1, mac2_covered, mac2)
                {
                    GuardVerdict::Reject => self.stats.dropped_auth += 1,
                    GuardVerdict::SendCookie(cookie) => {
                        self.stats.cookies_sent += 1;
                        let n =
                            wire::emit_cookie_reply(&mut self.scratch[..], sender_index, &cookie);
                        out.send(from, &self.scratch[..n]);
                    }
                    GuardVerdict::Accept => self.on_init(now, from, sender_index, noise, out),
                }
            }
            Packet::HandshakeResp {
                sender_index,
                receiver_index,
                noise,
                mac1_covered,
                mac1,
                ..
            } => {
                if !self.guard.mac1_ok(mac1_covered, mac1) {
                    self.stats.dropped_auth += 1;
                    return;
                }
                self.on_resp(now, from, sender_index, receiver_index, noise, out);
            }
            Packet::CookieReply {
                receiver_index,
                cookie,
            } => self.on_cookie(now, receiver_index, cookie, out),
            Packet::Data {
                receiver_index,
                counter,
            } => self.on_data(now, from, receiver_index, counter, packet, out),
        }
    }

    fn on_init(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender_index: u32,
        noise: &[u8],
        out: &mut dyn Outbox,
    ) {
        let resp = match Responder::read(&self.id, sender_index, noise) {
            Ok(r) => r,
            Err(e) => {
                self.stats.dropped_auth += 1;
                debug!("{from}: initiation: {e}");
                return;
            }
        };
        let Some(slot) = self.slot_of_key(&resp.remote_key) else {
            self.stats.dropped_unknown_key += 1;
            debug!("{from}: handshake from a key that is not a member");
            return;
        };
        let Some(p) = self.peers[slot].as_mut() else {
            return;
        };
        if resp.payload.timestamp <= p.last_init_timestamp {
            self.stats.dropped_replay += 1;
            debug!("{from}: replayed initiation of {}", p.name);
            return;
        }
        p.last_init_timestamp = resp.payload.timestamp;
        if !p.configured && !resp.payload.name.is_empty() {
            p.name = format!("~{}", resp.payload.name);
        }
        let local_index = session_index(slot);
        match resp.accept(&self.id, now, local_index, &mut self.scratch[..]) {
            Ok((session, n)) => {
                out.send(from, &self.scratch[..n]);
                if let Some(p) = self.peers[slot].as_mut() {
                    p.next = Some(session);
                }
            }
            Err(e) => {
                self.stats.dropped_auth += 1;
                debug!("{from}: response: {e}");
            }
        }
    }

    fn on_resp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender_index: u32,
        receiver_index: u32,
        noise: &[u8],
        out: &mut dyn Outbox,
    ) {
        let slot = slot_of_index(receiver_index);
        let matches = self
            .peer(slot)
            .and_then(|p| p.handshake.as_ref())
            .is_some_and(|h| h.init.local_index == receiver_index);
        if !matches {
            self.stats.dropped_stale += 1;
            return;
        }
        let Some(p) = self.peers[slot].as_mut() else {
            return;
        };
        let Some(pending) = p.handshake.take() else {
            return;
        };
        match pending.init.finish(now, sender_index, noise) {
            Ok((session, payload)) => {
                if !p.configured && !payload.name.is_empty() {
                    p.name = format!("~{}", payload.name);
                }
                p.previous = p.current.take();
                p.current = Some(session);
                p.endpoint = Some(from);
                self.established(now, slot, out);
                // Confirms the session to the responder and measures RTT.
                self.ping(now, slot, out);
            }
            Err(e) => {
                self.stats.dropped_auth += 1;
                debug!("{from}: handshake response: {e}");
            }
        }
    }

    fn established(&mut self, now: Instant, slot: usize, out: &mut dyn Outbox) {
        self.stats.handshakes_completed += 1;
        let Some(p) = self.peer_mut(slot) else { return };
        let was_up =
            p.last_rx.is_some_and(|t| now.since(t) < DEAD_AFTER) && p.last_handshake.is_some();
        p.last_rx = Some(now);
        p.last_handshake = Some(now);
        p.backoff = FIRST_BACKOFF;
        p.relay = None;
        p.gossip_due = now;
        if !was_up {
            info!(
                "peer {} up at {}",
                p.name,
                p.endpoint.map_or("?".into(), |e| e.to_string())
            );
            // Tell everyone else: they may now reach it through us.
            for q in self.peers.iter_mut().flatten() {
                q.gossip_due = now;
            }
        }
        let _ = out;
    }

    fn on_cookie(
        &mut self,
        now: Instant,
        receiver_index: u32,
        cookie: [u8; wire::COOKIE_LEN],
        out: &mut dyn Outbox,
    ) {
        let slot = slot_of_index(receiver_index);
        let Some(p) = self.peer_mut(slot) else { return };
        if p.handshake
            .as_ref()
            .is_none_or(|h| h.init.local_index != receiver_index)
        {
            self.stats.dropped_stale += 1;
            return;
        }
        let fresh = p.cookie.is_none_or(|(c, _)| c != cookie);
        p.cookie = Some((cookie, now));
        p.handshake = None;
        if fresh {
            self.initiate(now, slot, out);
        }
    }

    fn on_data(
        &mut self,
        now: Instant,
        from: SocketAddr,
        index: u32,
        counter: u64,
        packet: &mut [u8],
        out: &mut dyn Outbox,
    ) {
        let slot = slot_of_index(index);
        let Some(p) = self.peers.get_mut(slot).and_then(Option::as_mut) else {
            self.stats.dropped_stale += 1;
            return;
        };
        let is = |s: &Option<Session>| s.as_ref().is_some_and(|s| s.local_index == index);
        let (session, promote) = if is(&p.current) {
            (p.current.as_mut(), false)
        } else if is(&p.next) {
            (p.next.as_mut(), true)
        } else if is(&p.previous) {
            (p.previous.as_mut(), false)
        } else {
            (None, false)
        };
        let Some(session) = session.filter(|s| s.age(now) < REJECT_AFTER_TIME) else {
            self.stats.dropped_stale += 1;
            return;
        };
        let range = match session.open(counter, packet) {
            Ok(r) => r,
            Err(noise::NoiseError::Replay) => {
                self.stats.dropped_replay += 1;
                return;
            }
            Err(_) => {
                self.stats.dropped_auth += 1;
                return;
            }
        };
        p.rx_bytes += packet.len() as u64;
        p.last_rx = Some(now);
        if p.endpoint != Some(from) {
            if p.endpoint.is_some() {
                info!("peer {} moved to {from}", p.name);
            }
            p.endpoint = Some(from);
        }
        if promote {
            p.previous = p.current.take();
            p.current = p.next.take();
            self.established(now, slot, out);
        }
        self.on_message(now, slot, None, &packet[range], out);
    }

    /// An authenticated inner message from `slot`, or relayed by `via`.
    fn on_message(
        &mut self,
        now: Instant,
        slot: usize,
        via: Option<usize>,
        plain: &[u8],
        out: &mut dyn Outbox,
    ) {
        let msg = match Message::parse(plain) {
            Ok(m) => m,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        match msg {
            Message::Frame(frame) => {
                self.learn_source(now, slot, frame);
                out.deliver(frame);
            }
            Message::FramePartial { csum, frame } => {
                self.learn_source(now, slot, frame);
                out.deliver_partial(frame, csum);
            }
            Message::Ping { seq, echo } => self.send_probe(now, slot, true, seq, echo, out),
            Message::Pong { echo, .. } => {
                let sample = now.micros().saturating_sub(echo);
                if let Some(p) = self.peer_mut(slot) {
                    let rtt = if via.is_some() {
                        &mut p.relay_rtt_us
                    } else {
                        &mut p.rtt_us
                    };
                    *rtt = Some(rtt.map_or(sample, |old| (old * 7 + sample) / 8));
                }
            }
            Message::Gossip(g) if via.is_none() => {
                let entries: heapless::Vec<
                    (
                        PublicKey,
                        Option<SocketAddr>,
                        heapless::String<MAX_NAME_LEN>,
                    ),
                    MAX_GOSSIP_ENTRIES,
                > = g
                    .entries()
                    .map(|e| {
                        (
                            e.key,
                            e.endpoint,
                            heapless::String::try_from(e.name).unwrap_or_default(),
                        )
                    })
                    .collect();
                for (key, endpoint, name) in entries {
                    self.on_gossip_entry(now, slot, key, endpoint, &name);
                }
            }
            Message::RelayTo { dst, inner } if via.is_none() => {
                let Some(target) = self.slot_of_id(&dst) else {
                    self.stats.dropped_no_route += 1;
                    return;
                };
                if target == slot || !self.peer(target).is_some_and(|p| p.is_up(now)) {
                    self.stats.dropped_no_route += 1;
                    return;
                }
                let Some(src) = self.peer(slot).map(|p| p.id) else {
                    return;
                };
                let (kind, body) = (wire::MSG_RELAY_FROM, &mut [0u8; 8]);
                body.copy_from_slice(&src);
                let at = DATA_HEADER_LEN;
                if at + 9 + inner.len() + TAG_LEN > self.scratch.len() {
                    self.stats.dropped_oversize += 1;
                    return;
                }
                self.scratch[at] = kind;
                self.scratch[at + 1..at + 9].copy_from_slice(body);
                self.scratch[at + 9..at + 9 + inner.len()].copy_from_slice(inner);
                if self.seal_and_send(now, target, 9 + inner.len(), out) {
                    self.stats.relayed_frames += 1;
                }
            }
            Message::RelayFrom { src, inner } if via.is_none() => {
                let Some(origin) = self.slot_of_id(&src).filter(|&o| o != slot) else {
                    self.stats.dropped_unknown_key += 1;
                    return;
                };
                if let Some(p) = self.peer_mut(origin) {
                    if !p.is_up(now) {
                        p.relay = Some(slot);
                        p.relay_seen = now;
                    }
                }
                self.on_message(now, origin, Some(slot), inner, out);
            }
            // Gossip and relay envelopes are never valid inside a relay.
            _ => self.stats.dropped_malformed += 1,
        }
    }

    /// A frame from member `slot` is about to be delivered: its source MAC
    /// lives behind that member. (`frame` has at least `MIN_FRAME` bytes.)
    fn learn_source(&mut self, now: Instant, slot: usize, frame: &[u8]) {
        let mut src = [0u8; 6];
        src.copy_from_slice(&frame[6..12]);
        if let Ok(port) = u8::try_from(slot) {
            self.macs.learn(src, port, now);
        }
        self.stats.rx_frames += 1;
    }

    fn on_gossip_entry(
        &mut self,
        now: Instant,
        from: usize,
        key: PublicKey,
        endpoint: Option<SocketAddr>,
        name: &str,
    ) {
        if key == self.id.public {
            return;
        }
        let slot = match self.slot_of_key(&key) {
            Some(s) => s,
            None => {
                let display = format!("~{}", if name.is_empty() { "?" } else { name });
                let peer = Peer::new(key, display, false, Vec::new(), now);
                match self.insert(peer) {
                    Some(s) => {
                        info!("learned member {name} from gossip");
                        s
                    }
                    None => return,
                }
            }
        };
        if slot == from {
            return;
        }
        let Some(p) = self.peer_mut(slot) else { return };
        p.vouched = now;
        if endpoint.is_some() {
            p.gossip_endpoint = endpoint;
        }
        if !p.is_up(now) {
            p.relay = Some(from);
            p.relay_seen = now;
            // Hole punching: both sides hear of each other now and try at once.
            if p.handshake.is_none() && p.next_attempt > now + FIRST_BACKOFF {
                p.next_attempt = now;
            }
        }
    }

    // -----------------------------------------------------------------
    // Timers

    pub fn poll_at(&self) -> Option<Instant> {
        Some(self.next_tick)
    }

    pub fn handle_timeout(&mut self, now: Instant, out: &mut dyn Outbox) {
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        self.macs.expire(now);
        for slot in 0..self.peers.len() {
            if self.peers[slot].is_some() {
                self.peer_timers(now, slot, out);
            }
        }
    }

    fn peer_timers(&mut self, now: Instant, slot: usize, out: &mut dyn Outbox) {
        let Some(p) = self.peer_mut(slot) else { return };
        for s in [&mut p.current, &mut p.previous, &mut p.next] {
            if s.as_ref().is_some_and(|s| s.age(now) >= REJECT_AFTER_TIME) {
                *s = None;
            }
        }
        // Dead: nothing authenticated for DEAD_AFTER.
        let had_session = p.current.is_some() || p.previous.is_some();
        if had_session && p.last_rx.is_none_or(|t| now.since(t) >= DEAD_AFTER) {
            info!(
                "peer {} down (silent for {}s)",
                p.name,
                DEAD_AFTER.as_secs()
            );
            p.drop_sessions();
            p.rtt_us = None;
            p.next_attempt = now;
            p.backoff = FIRST_BACKOFF;
            self.forget_routes_through(slot);
            return;
        }
        if !p.configured && !p.is_up(now) && now.since(p.vouched) >= LEARNED_EXPIRY {
            self.remove_slot(slot);
            return;
        }
        let Some(p) = self.peer_mut(slot) else { return };
        // Handshake timeout and retry with backoff.
        if let Some(h) = &p.handshake {
            if now.since(h.sent_at) >= HANDSHAKE_TIMEOUT {
                p.handshake = None;
                p.next_attempt = now + p.backoff;
                p.backoff = (p.backoff * 2).min(MAX_BACKOFF);
            }
        }
        let up = p.is_up(now);
        let rekey = p.current.as_ref().is_some_and(|s| {
            let limit = if s.initiator {
                REKEY_AFTER_TIME
            } else {
                RESPONDER_REKEY
            };
            s.confirmed && (s.age(now) >= limit || s.sent_messages() >= REKEY_AFTER_MESSAGES)
        });
        if p.handshake.is_none() && ((!up && now >= p.next_attempt) || rekey) {
            if !up {
                p.next_attempt = now + p.backoff;
            }
            self.initiate(now, slot, out);
        }
        let Some(p) = self.peer_mut(slot) else { return };
        if up && now >= p.ping_due {
            p.ping_due = now + KEEPALIVE_INTERVAL;
            self.ping(now, slot, out);
        } else if !up && p.relay.is_some() && now >= p.ping_due {
            // Relayed members are probed through the relay for RTT.
            p.ping_due = now + KEEPALIVE_INTERVAL;
            self.ping(now, slot, out);
        }
        let Some(p) = self.peer_mut(slot) else { return };
        if up && now >= p.gossip_due {
            p.gossip_due = now + GOSSIP_INTERVAL;
            self.send_gossip(now, slot, out);
        }
    }

    fn ping(&mut self, now: Instant, slot: usize, out: &mut dyn Outbox) {
        let Some(p) = self.peer_mut(slot) else { return };
        p.ping_seq = p.ping_seq.wrapping_add(1);
        let seq = p.ping_seq;
        self.send_probe(now, slot, false, seq, now.micros(), out);
    }

    fn send_gossip(&mut self, now: Instant, to: usize, out: &mut dyn Outbox) {
        let members: Vec<(PublicKey, Option<SocketAddr>, String)> = self
            .peers
            .iter()
            .enumerate()
            .filter(|(s, _)| *s != to)
            .filter_map(|(_, p)| p.as_ref())
            .filter(|p| p.is_up(now))
            .map(|p| {
                (
                    p.key,
                    p.endpoint,
                    p.name.trim_start_matches('~').to_string(),
                )
            })
            .collect();
        let mut buf = [0u8; MAX_DATAGRAM - DATA_HEADER_LEN - TAG_LEN - 64];
        for chunk in members.chunks(MAX_GOSSIP_ENTRIES) {
            let mut w = GossipWriter::new(&mut buf[..1200]);
            for (key, endpoint, name) in chunk {
                w.push(&GossipEntry {
                    key: *key,
                    endpoint: *endpoint,
                    name,
                });
            }
            let n = w.finish();
            self.send_message(now, to, buf[0], &buf[1..n], out);
        }
    }

    fn initiate(&mut self, now: Instant, slot: usize, out: &mut dyn Outbox) {
        let timestamp = self.next_timestamp(now);
        let Some(p) = self.peers.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let candidates = p.candidates();
        if candidates.is_empty() {
            return;
        }
        let to = candidates[p.attempt % candidates.len()];
        p.attempt = p.attempt.wrapping_add(1);
        let cookie = p
            .cookie
            .filter(|(_, t)| now.since(*t) < COOKIE_SECRET_LIFETIME)
            .map(|(c, _)| c);
        let local_index = session_index(slot);
        match Initiation::start(
            &self.id,
            &p.key,
            local_index,
            timestamp,
            cookie.as_ref(),
            &mut self.scratch[..],
        ) {
            Ok((init, n)) => {
                debug!("handshake to {} at {to}", p.name);
                p.handshake = Some(Pending { init, sent_at: now });
                out.send(to, &self.scratch[..n]);
            }
            Err(e) => crate::warn!("handshake to {}: {e}", p.name),
        }
    }

    fn next_timestamp(&mut self, now: Instant) -> u64 {
        let t = self
            .clock_base
            .saturating_add(now.micros())
            .max(self.last_timestamp + 1);
        self.last_timestamp = t;
        t
    }

    // -----------------------------------------------------------------
    // Console

    pub fn peer_infos(&self, now: Instant) -> Vec<PeerInfo> {
        self.peers
            .iter()
            .enumerate()
            .filter_map(|(slot, p)| p.as_ref().map(|p| (slot, p)))
            .map(|(slot, p)| {
                let route = self.route(now, slot);
                let (state, hops, via, rtt) = match route {
                    Some(Route::Direct(_)) => (PeerState::Up, 1, None, p.rtt_us),
                    Some(Route::Via { relay, .. }) => (
                        PeerState::Relayed,
                        2,
                        self.peer(relay).map(|r| r.name.clone()),
                        p.relay_rtt_us,
                    ),
                    None if p.handshake.is_some() => (PeerState::Connecting, 0, None, None),
                    None => (PeerState::Down, 0, None, None),
                };
                PeerInfo {
                    name: p.name.clone(),
                    public_key: p.key,
                    endpoint: p
                        .endpoint
                        .or(p.gossip_endpoint)
                        .or(p.endpoints.first().copied()),
                    state,
                    rtt_us: rtt,
                    hops,
                    last_handshake_secs: p.last_handshake.map(|t| now.since(t).as_secs()),
                    via,
                    rx_bytes: p.rx_bytes,
                    tx_bytes: p.tx_bytes,
                }
            })
            .collect()
    }

    /// Count of (configured, known, direct up, relayed) members.
    pub fn peer_counts(&self, now: Instant) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for (slot, p) in self.peers.iter().enumerate() {
            let Some(p) = p else { continue };
            c.1 += 1;
            if p.configured {
                c.0 += 1;
            }
            match self.route(now, slot) {
                Some(Route::Direct(_)) => c.2 += 1,
                Some(Route::Via { .. }) => c.3 += 1,
                None => {}
            }
        }
        c
    }
}

fn session_index(slot: usize) -> u32 {
    // `slot` < MAX_PEERS ≤ 256 (checked at compile time above).
    (noise::random_u32() & !0xff) | (slot as u32 & 0xff)
}

fn slot_of_index(index: u32) -> usize {
    (index & 0xff) as usize
}

#[cfg(test)]
mod sim;
