//! A simulated underlay for the engine: several [`Node`]s joined by a
//! packet queue with a fake clock, seeded loss, blocked paths and a NAT
//! model (address-restricted cone). No sockets.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;

use super::*;
use crate::keys::public_key_of;

#[derive(Default)]
struct Collect {
    sent: Vec<(SocketAddr, Vec<u8>)>,
    delivered: Vec<Vec<u8>>,
}

impl Outbox for Collect {
    fn send(&mut self, to: SocketAddr, packet: &[u8]) {
        self.sent.push((to, packet.to_vec()));
    }
    fn deliver(&mut self, frame: &[u8]) {
        self.delivered.push(frame.to_vec());
    }
}

struct SimBox {
    node: Node,
    cfg: NodeConfig,
    /// Address the box binds (private when behind NAT).
    addr: SocketAddr,
    /// Public address of its NAT, if any.
    nat: Option<SocketAddr>,
    alive: bool,
    delivered: Vec<Vec<u8>>,
}

struct Net {
    now: Instant,
    boxes: Vec<SimBox>,
    queue: VecDeque<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    /// Pairs of boxes with no direct path (both directions).
    blocked: HashSet<(usize, usize)>,
    /// (box behind NAT, remote address) pairs the NAT lets in.
    nat_open: HashSet<(usize, SocketAddr)>,
    loss_percent: u64,
    rng: u64,
    latency: Duration,
    /// Every datagram that crossed the wire, for replay tests.
    wire_log: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

fn key(seed: u8) -> ([u8; 32], PublicKey) {
    let private = [seed; 32];
    (private, public_key_of(&private))
}

fn addr(i: usize) -> SocketAddr {
    format!("192.0.2.{}:6556", i + 1).parse().unwrap()
}

fn frame(dst: [u8; 6], src: [u8; 6], tag: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[20] = tag;
    f
}

const BCAST: [u8; 6] = [0xff; 6];

/// Three boxes, each configured with the other two.
const ALL3: &[&[usize]] = &[&[1, 2], &[0, 2], &[0, 1]];

fn mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, i as u8 + 1]
}

impl Net {
    /// `links[i]` lists the boxes box `i` is configured with; `with_endpoint`
    /// decides whether the endpoint is given too.
    fn new(n: usize, links: &[&[usize]], with_endpoint: bool) -> Net {
        let mut boxes = Vec::new();
        for (i, link) in links.iter().enumerate().take(n) {
            let (private_key, public_key) = key(i as u8 + 1);
            let peers = link
                .iter()
                .map(|&j| PeerSpec {
                    name: format!("box{}", j + 1),
                    key: key(j as u8 + 1).1,
                    endpoints: if with_endpoint { vec![addr(j)] } else { vec![] },
                })
                .collect();
            let cfg = NodeConfig {
                name: format!("box{}", i + 1),
                cloud: "sim".into(),
                private_key,
                public_key,
                peers,
                trust: None,
            };
            let node = Node::new(&cfg, Instant::ZERO, 1_700_000_000_000_000);
            boxes.push(SimBox {
                node,
                cfg,
                addr: addr(i),
                nat: None,
                alive: true,
                delivered: vec![],
            });
        }
        Net {
            now: Instant::ZERO,
            boxes,
            queue: VecDeque::new(),
            blocked: HashSet::new(),
            nat_open: HashSet::new(),
            loss_percent: 0,
            rng: 0x2545_f491_4f6c_dd1d,
            latency: Duration::from_millis(2),
            wire_log: vec![],
        }
    }

    fn behind_nat(&mut self, i: usize) {
        self.boxes[i].nat = Some(format!("198.51.100.{}:40000", i + 1).parse().unwrap());
        self.boxes[i].addr = format!("10.0.0.{}:6556", i + 1).parse().unwrap();
    }

    fn block(&mut self, a: usize, b: usize) {
        self.blocked.insert((a, b));
        self.blocked.insert((b, a));
    }

    fn public_addr(&self, i: usize) -> SocketAddr {
        self.boxes[i].nat.unwrap_or(self.boxes[i].addr)
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn emit(&mut self, i: usize, out: Collect) {
        let from = self.public_addr(i);
        for (to, bytes) in out.sent {
            if self.boxes[i].nat.is_some() {
                self.nat_open.insert((i, to));
            }
            self.wire_log.push((from, to, bytes.clone()));
            self.queue
                .push_back((self.now + self.latency, from, to, bytes));
        }
        self.boxes[i].delivered.extend(out.delivered);
    }

    fn inject(&mut self, from: SocketAddr, to: usize, bytes: Vec<u8>) {
        let to = self.public_addr(to);
        self.queue.push_back((self.now, from, to, bytes));
    }

    fn step(&mut self) {
        self.now = self.now + Duration::from_millis(10);
        while self.queue.front().is_some_and(|q| q.0 <= self.now) {
            let Some((_, from, to, mut bytes)) = self.queue.pop_front() else {
                break;
            };
            let Some(dst) = (0..self.boxes.len()).find(|&j| self.public_addr(j) == to) else {
                continue;
            };
            let src = (0..self.boxes.len()).find(|&j| self.public_addr(j) == from);
            if !self.boxes[dst].alive {
                continue;
            }
            if let Some(s) = src {
                if self.blocked.contains(&(s, dst)) {
                    continue;
                }
            }
            if self.boxes[dst].nat.is_some() && !self.nat_open.contains(&(dst, from)) {
                continue;
            }
            if self.loss_percent > 0 && self.random() % 100 < self.loss_percent {
                continue;
            }
            let mut out = Collect::default();
            let now = self.now;
            self.boxes[dst]
                .node
                .handle_packet(now, from, &mut bytes, &mut out);
            self.emit(dst, out);
        }
        for i in 0..self.boxes.len() {
            if !self.boxes[i].alive {
                continue;
            }
            let mut out = Collect::default();
            let now = self.now;
            self.boxes[i].node.handle_timeout(now, &mut out);
            self.emit(i, out);
        }
    }

    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    fn send_frame(&mut self, i: usize, f: &[u8]) {
        let mut out = Collect::default();
        let now = self.now;
        self.boxes[i].node.handle_frame(now, f, &mut out);
        self.emit(i, out);
    }

    fn info(&self, i: usize, name: &str) -> PeerInfo {
        let infos = self.boxes[i].node.peer_infos(self.now);
        infos
            .into_iter()
            .find(|p| p.name.trim_start_matches('~') == name)
            .unwrap_or_else(|| panic!("box{} does not know {name}", i + 1))
    }

    fn restart(&mut self, i: usize) {
        let cfg = self.boxes[i].cfg.clone();
        // A later wall clock, as after a real restart.
        self.boxes[i].node = Node::new(
            &cfg,
            self.now,
            1_700_000_000_000_000 + self.now.micros() + 1,
        );
        self.boxes[i].alive = true;
    }

    fn delivered_tags(&self, i: usize) -> Vec<u8> {
        self.boxes[i].delivered.iter().map(|f| f[20]).collect()
    }
}

#[test]
fn two_boxes_exchange_frames_and_measure_rtt() {
    let mut net = Net::new(2, &[&[1], &[0]], true);
    net.run(Duration::from_secs(2));
    assert_eq!(net.info(0, "box2").state, PeerState::Up);
    assert_eq!(net.info(1, "box1").state, PeerState::Up);
    net.send_frame(0, &frame(BCAST, mac(0), 1));
    net.run(Duration::from_millis(50));
    assert_eq!(net.delivered_tags(1), vec![1]);
    net.send_frame(1, &frame(mac(0), mac(1), 2));
    net.run(Duration::from_millis(50));
    assert_eq!(net.delivered_tags(0), vec![2]);
    net.run(Duration::from_secs(6));
    let rtt = net.info(0, "box2").rtt_us.expect("rtt measured");
    assert!(
        (3_000..=40_000).contains(&rtt),
        "rtt {rtt}us for 2x2ms latency at 10ms steps"
    );
    assert_eq!(net.info(0, "box2").hops, 1);
    assert_eq!(net.boxes[0].node.mac_entries(), 1);
}

/// The largest frame one datagram carries crosses, also relayed; one
/// byte more is counted as oversize, never as "no route", and the peer
/// stays up.
#[test]
fn oversize_frames_are_counted_as_such() {
    let mut net = Net::new(3, ALL3, true);
    net.block(0, 2);
    net.run(Duration::from_secs(20));
    assert_eq!(net.info(0, "box3").state, PeerState::Relayed);
    let mut big = frame(BCAST, mac(0), 3);
    big.resize(wire::MAX_OVERLAY_FRAME, 0xab);
    net.send_frame(0, &big);
    net.run(Duration::from_millis(100));
    assert_eq!(net.delivered_tags(1), vec![3], "direct");
    assert_eq!(net.delivered_tags(2), vec![3], "through the relay");
    assert_eq!(net.boxes[2].delivered[0], big);
    let before = net.boxes[0].node.stats().clone();
    big.push(0);
    net.send_frame(0, &big);
    net.run(Duration::from_millis(100));
    let after = net.boxes[0].node.stats().clone();
    assert_eq!(after.dropped_oversize, before.dropped_oversize + 1);
    assert_eq!(after.dropped_no_route, before.dropped_no_route);
    assert_eq!(after.tx_frames, before.tx_frames);
    assert_eq!(net.delivered_tags(1), vec![3]);
    assert_eq!(net.info(0, "box2").state, PeerState::Up);
}

#[test]
fn one_endpoint_is_enough() {
    // Every box has every key; box1 and box3 know only where the hub
    // (box2) is, and learn each other's endpoints from its gossip.
    let mut net = Net::new(3, ALL3, false);
    // Only box1 and box3 know where the hub is.
    net.boxes[0].cfg.peers[0].endpoints = vec![addr(1)];
    net.boxes[2].cfg.peers[1].endpoints = vec![addr(1)];
    net.restart(0);
    net.restart(2);
    net.run(Duration::from_secs(15));
    let c = net.info(0, "box3");
    assert_eq!(
        c.state,
        PeerState::Up,
        "box1 reaches box3 directly after gossip: {c:?}"
    );
    assert_eq!(c.hops, 1);
    net.send_frame(2, &frame(BCAST, mac(2), 8));
    net.run(Duration::from_millis(100));
    // box1 has learned box3's MAC: its unicast goes to box3 only.
    net.send_frame(0, &frame(mac(2), mac(0), 7));
    net.run(Duration::from_millis(100));
    assert_eq!(net.delivered_tags(2), vec![7]);
    assert_eq!(net.delivered_tags(0), vec![8]);
    assert_eq!(
        net.delivered_tags(1),
        vec![8],
        "the hub gets the broadcast once, and not box1's unicast"
    );
}

#[test]
fn blocked_path_is_relayed_with_two_hops() {
    let mut net = Net::new(3, ALL3, true);
    net.block(0, 2);
    net.run(Duration::from_secs(20));
    let c = net.info(0, "box3");
    assert_eq!(
        (c.state, c.hops, c.via.as_deref()),
        (PeerState::Relayed, 2, Some("box2")),
        "{c:?}"
    );
    assert!(c.rtt_us.is_some(), "RTT measured through the relay");
    net.send_frame(0, &frame(BCAST, mac(0), 1));
    net.run(Duration::from_millis(100));
    assert_eq!(net.delivered_tags(2), vec![1]);
    net.send_frame(2, &frame(mac(0), mac(2), 2));
    net.run(Duration::from_millis(100));
    assert_eq!(net.delivered_tags(0), vec![2]);
    assert!(net.boxes[1].node.stats().relayed_frames >= 2);
    assert!(
        net.boxes[1].delivered.iter().all(|f| f[20] == 1),
        "the relay does not deliver relayed unicast"
    );
    // Unblock: direct path found again.
    net.blocked.clear();
    net.run(Duration::from_secs(40));
    assert_eq!(net.info(0, "box3").state, PeerState::Up);
}

#[test]
fn nat_box_is_reached_by_hole_punching() {
    let mut net = Net::new(3, ALL3, true);
    net.behind_nat(2);
    // Nobody can know box3's private address: box2 learns its public one
    // when box3 connects, and box1 learns it from box2's gossip.
    net.boxes[0].cfg.peers[1].endpoints.clear();
    net.boxes[1].cfg.peers[1].endpoints.clear();
    net.restart(0);
    net.restart(1);
    net.block(0, 2);
    net.run(Duration::from_secs(5));
    net.blocked.clear();
    net.run(Duration::from_secs(20));
    let c = net.info(0, "box3");
    assert_eq!(c.state, PeerState::Up, "{c:?}");
    assert_eq!(c.endpoint, Some(net.public_addr(2)));
}

#[test]
fn dead_peer_noticed_and_restart_rejoins() {
    let mut net = Net::new(2, &[&[1], &[0]], true);
    net.run(Duration::from_secs(2));
    assert_eq!(net.info(0, "box2").state, PeerState::Up);
    net.boxes[1].alive = false;
    net.run(DEAD_AFTER + Duration::from_secs(1));
    assert_ne!(
        net.info(0, "box2").state,
        PeerState::Up,
        "dead within 3 keepalives"
    );
    net.run(Duration::from_secs(20));
    net.restart(1);
    net.run(MAX_BACKOFF + Duration::from_secs(2));
    assert_eq!(net.info(0, "box2").state, PeerState::Up);
    net.send_frame(0, &frame(BCAST, mac(0), 3));
    net.run(Duration::from_millis(50));
    assert_eq!(net.delivered_tags(1), vec![3]);
}

#[test]
fn rekey_keeps_traffic_flowing_for_seven_minutes() {
    let mut net = Net::new(2, &[&[1], &[0]], true);
    net.run(Duration::from_secs(2));
    let mut sent = 0u32;
    for second in 0..420u32 {
        net.send_frame(0, &frame(mac(1), mac(0), (second % 250) as u8));
        sent += 1;
        net.run(Duration::from_secs(1));
    }
    assert_eq!(
        net.boxes[1].delivered.len() as u32,
        sent,
        "no frame lost across rekeys"
    );
    assert!(net.boxes[0].node.stats().handshakes_completed >= 3);
    assert_eq!(net.boxes[1].node.stats().dropped_auth, 0);
}

#[test]
fn lossy_underlay_still_converges() {
    let mut net = Net::new(3, &[&[1, 2], &[0, 2], &[0, 1]], true);
    net.loss_percent = 30;
    net.run(Duration::from_secs(30));
    for i in 0..3 {
        for j in 0..3 {
            if i != j {
                assert_eq!(net.info(i, &format!("box{}", j + 1)).state, PeerState::Up);
            }
        }
    }
}

#[test]
fn hostile_packets_never_reach_the_device() {
    let mut net = Net::new(2, &[&[1], &[0]], true);
    net.run(Duration::from_secs(2));
    net.send_frame(0, &frame(BCAST, mac(0), 9));
    net.run(Duration::from_millis(50));
    assert_eq!(net.delivered_tags(1), vec![9]);
    let attacker: SocketAddr = "203.0.113.9:1234".parse().unwrap();
    // Replay every datagram box1 ever sent to box2, from the attacker and from box1's address.
    let replays: Vec<_> = net
        .wire_log
        .iter()
        .filter(|w| w.1 == addr(1))
        .cloned()
        .collect();
    for (from, _, bytes) in &replays {
        net.inject(attacker, 1, bytes.clone());
        net.inject(*from, 1, bytes.clone());
    }
    // Garbage, truncated and bit-flipped data packets.
    let data = replays
        .iter()
        .rev()
        .find(|w| w.2[0] == wire::TYPE_DATA)
        .unwrap()
        .2
        .clone();
    for cut in [0, 1, 3, 4, 16, 31, data.len() - 1] {
        net.inject(attacker, 1, data[..cut].to_vec());
    }
    for i in 16..data.len() {
        let mut d = data.clone();
        d[i] ^= 0x40;
        d[8..16].copy_from_slice(&(1000 + i as u64).to_be_bytes());
        net.inject(attacker, 1, d);
    }
    net.inject(attacker, 1, vec![0xff; 300]);
    // A valid cloudy with a key box2 has never heard of.
    let (private_key, public_key) = key(99);
    let stranger_cfg = NodeConfig {
        name: "stranger".into(),
        cloud: "sim".into(),
        private_key,
        public_key,
        peers: vec![PeerSpec {
            name: "box2".into(),
            key: key(2).1,
            endpoints: vec![addr(1)],
        }],
        trust: None,
    };
    let mut stranger = Node::new(&stranger_cfg, net.now, 1);
    let mut out = Collect::default();
    stranger.handle_timeout(net.now, &mut out);
    for (_, bytes) in out.sent {
        net.inject(attacker, 1, bytes);
    }
    let before = net.boxes[1].delivered.len();
    net.run(Duration::from_millis(100));
    assert_eq!(
        net.boxes[1].delivered.len(),
        before,
        "nothing hostile delivered"
    );
    let s = net.boxes[1].node.stats().clone();
    assert!(
        s.dropped_replay > 0
            && s.dropped_malformed > 0
            && s.dropped_auth > 0
            && s.dropped_unknown_key > 0,
        "{s:?}"
    );
    // Still serving.
    net.send_frame(0, &frame(BCAST, mac(0), 10));
    net.run(Duration::from_millis(50));
    assert_eq!(net.delivered_tags(1), vec![9, 10]);
    assert_eq!(net.info(1, "box1").state, PeerState::Up);
}

#[test]
fn roaming_peer_keeps_its_session() {
    let mut net = Net::new(2, &[&[1], &[0]], true);
    net.run(Duration::from_secs(2));
    let handshakes = net.boxes[1].node.stats().handshakes_completed;
    net.boxes[0].addr = "192.0.2.77:5000".parse().unwrap();
    net.send_frame(0, &frame(BCAST, mac(0), 4));
    net.run(Duration::from_millis(50));
    assert_eq!(net.delivered_tags(1), vec![4]);
    assert_eq!(
        net.info(1, "box1").endpoint,
        Some("192.0.2.77:5000".parse().unwrap())
    );
    net.send_frame(1, &frame(mac(0), mac(1), 5));
    net.run(Duration::from_millis(50));
    assert_eq!(net.delivered_tags(0), vec![5]);
    assert_eq!(net.boxes[1].node.stats().handshakes_completed, handshakes);
}

#[test]
fn handshake_flood_is_answered_with_cookies() {
    let mut net = Net::new(2, &[&[1], &[0]], true);
    // Capture one initiation of box1 and make many fresh ones.
    let mut flood = Vec::new();
    for t in 0..(HANDSHAKE_BURST as u64 + 20) {
        let mut buf = [0u8; 256];
        let id = Identity::new(key(1).0, key(1).1, "box1", "sim");
        let (_, n) = Initiation::start(&id, &key(2).1, 5, 10 + t, None, &mut buf).unwrap();
        flood.push(buf[..n].to_vec());
    }
    let mut out = Collect::default();
    for mut p in flood {
        net.boxes[1]
            .node
            .handle_packet(Instant::ZERO, addr(0), &mut p, &mut out);
    }
    let s = net.boxes[1].node.stats();
    assert_eq!(s.cookies_sent, 20);
    assert!(
        out.sent
            .iter()
            .filter(|(_, b)| b[0] == wire::TYPE_COOKIE_REPLY)
            .count()
            == 20
    );
    // The real box1 still gets in: it retries with the cookie.
    net.run(Duration::from_secs(5));
    assert_eq!(net.info(0, "box2").state, PeerState::Up);
}

#[test]
fn reload_adds_and_removes_peers_without_disturbing_others() {
    let mut net = Net::new(3, &[&[1], &[0], &[]], true);
    net.run(Duration::from_secs(2));
    let hs = net.boxes[0].node.stats().handshakes_completed;
    // Add box3 to box1 and box1 to box3.
    let specs = vec![
        PeerSpec {
            name: "box2".into(),
            key: key(2).1,
            endpoints: vec![addr(1)],
        },
        PeerSpec {
            name: "box3".into(),
            key: key(3).1,
            endpoints: vec![addr(2)],
        },
    ];
    let now = net.now;
    net.boxes[0].node.set_peers(now, &specs);
    let specs3 = vec![PeerSpec {
        name: "box1".into(),
        key: key(1).1,
        endpoints: vec![],
    }];
    net.boxes[2].node.set_peers(now, &specs3);
    net.run(Duration::from_secs(3));
    assert_eq!(net.info(0, "box3").state, PeerState::Up);
    assert_eq!(net.info(0, "box2").state, PeerState::Up);
    assert_eq!(
        net.boxes[0].node.stats().handshakes_completed,
        hs + 1,
        "box2's session untouched"
    );
    // Remove box2.
    let now = net.now;
    net.boxes[0].node.set_peers(now, &specs[1..]);
    assert!(net.boxes[0]
        .node
        .peer_infos(net.now)
        .iter()
        .all(|p| p.name != "box2"));
}

/// A box restarted (new sessions, no memory) is reached again within 3 s
/// by a peer behind NAT that it cannot reach itself: the peer's next
/// keepalive draws a "session unknown" hint and it handshakes at once
/// (it used to wait for `DEAD_AFTER`, about 16 s).
#[test]
fn restarted_box_is_found_within_three_seconds_through_nat() {
    // box1 public, box2 behind NAT; box1 has no endpoint for box2.
    let mut net = Net::new(2, &[&[1], &[0]], true);
    net.behind_nat(1);
    net.boxes[0].cfg.peers[0].endpoints.clear();
    net.restart(0);
    net.restart(1);
    net.run(Duration::from_secs(3));
    assert_eq!(net.info(0, "box2").state, PeerState::Up);
    for _ in 0..5 {
        net.boxes[0].alive = false;
        net.run(Duration::from_millis(300));
        net.restart(0);
        net.run(Duration::from_secs(3));
        assert_eq!(
            net.info(0, "box2").state,
            PeerState::Up,
            "box1 after restart"
        );
        assert_eq!(net.info(1, "box1").state, PeerState::Up);
        let tag = 7;
        net.send_frame(0, &frame(BCAST, mac(0), tag));
        net.run(Duration::from_millis(50));
        assert_eq!(
            net.delivered_tags(1).last(),
            Some(&tag),
            "frame after restart"
        );
        net.run(Duration::from_secs(4));
    }
    assert!(net.boxes[1].node.stats().hints_received >= 5);
}

/// A sniffer on the segment answers every initiation it sees with a
/// cookie reply sealed exactly as the responder would (it knows the public
/// key and sees mac1), from the responder's address. The handshake in
/// flight is never cancelled, so the session still comes up at once and
/// the victim sends no storm of initiations (it used to: ~2,800/s).
#[test]
fn forged_cookie_replies_do_not_keep_a_box_out() {
    let mut net = Net::new(2, &[&[1], &[0]], true);
    // The forger's replies arrive before the real response.
    net.latency = Duration::from_millis(5);
    let responder = key(2).1;
    let mut seen = 0;
    let mut initiations = 0;
    let end = net.now + Duration::from_secs(2);
    while net.now < end {
        net.step();
        let new: Vec<_> = net.wire_log[seen..].to_vec();
        seen = net.wire_log.len();
        for (from, to, bytes) in new {
            if from != addr(0) || bytes[0] != wire::TYPE_HANDSHAKE_INIT {
                continue;
            }
            initiations += 1;
            let Ok(Packet::HandshakeInit {
                sender_index, mac1, ..
            }) = Packet::parse(&bytes)
            else {
                continue;
            };
            for junk in 0..3u8 {
                let (nonce, sealed) =
                    noise::seal_cookie(&noise::cookie_key(&responder), &[junk; 16], mac1);
                let mut reply = vec![0u8; wire::COOKIE_REPLY_LEN];
                wire::emit_cookie_reply(&mut reply, sender_index, &nonce, &sealed).unwrap();
                net.queue.push_front((net.now, to, from, reply));
            }
        }
    }
    assert_eq!(
        net.info(0, "box2").state,
        PeerState::Up,
        "session within 2 s"
    );
    assert!(initiations <= 2, "{initiations} initiations in 2 s");
    assert!(net.boxes[0].node.stats().cookies_received >= 3);
    // Replies to no handshake in flight, or from elsewhere, are refused.
    let mut out = Collect::default();
    let (nonce, sealed) = noise::seal_cookie(&noise::cookie_key(&responder), &[1; 16], &[0; 16]);
    let mut reply = vec![0u8; wire::COOKIE_REPLY_LEN];
    wire::emit_cookie_reply(&mut reply, 1, &nonce, &sealed).unwrap();
    let refused = net.boxes[0].node.stats().cookies_refused;
    net.boxes[0]
        .node
        .handle_packet(net.now, addr(1), &mut reply, &mut out);
    assert_eq!(net.boxes[0].node.stats().cookies_refused, refused + 1);
    assert!(out.sent.is_empty());
}

/// A member gone bad gossips a foreign key and 64 made-up ones: no box
/// admits any of them (they used to be accepted as `~name` and fill the
/// peer table), and a peer configured afterwards still gets in.
#[test]
fn gossip_never_admits_members() {
    let mut net = Net::new(3, &[&[1], &[0, 2], &[1]], true);
    net.run(Duration::from_secs(3));
    assert_eq!(net.info(0, "box2").state, PeerState::Up);
    // box2 (a member) vouches for box3, whom box1 does not have in its
    // config: box1 must not accept box3.
    net.run(GOSSIP_INTERVAL + Duration::from_secs(2));
    assert!(
        net.boxes[0]
            .node
            .peer_infos(net.now)
            .iter()
            .all(|p| p.name != "~box3" && p.name != "box3"),
        "box1 admitted box3 from gossip"
    );
    assert!(net.boxes[0].node.stats().gossip_unknown > 0);
    // box2 turns bad: 64 made-up members (authenticated gossip on its
    // real session, as its own engine would send them).
    let mut buf = [0u8; 1200];
    for chunk in 0..(MAX_PEERS / MAX_GOSSIP_ENTRIES) {
        let mut w = GossipWriter::new(&mut buf[..]).unwrap();
        for i in 0..MAX_GOSSIP_ENTRIES {
            let k = key(100 + (chunk * MAX_GOSSIP_ENTRIES + i) as u8).1;
            w.push(&GossipEntry {
                key: k,
                endpoint: Some("203.0.113.66:6556".parse().unwrap()),
                name: "evil",
            });
        }
        let n = w.finish();
        let mut out = Collect::default();
        let now = net.now;
        let slot = net.boxes[1].node.slot_of_key(&key(1).1).unwrap();
        net.boxes[1]
            .node
            .send_message(now, slot, buf[0], &buf[1..n], &mut out);
        net.emit(1, out);
        net.run(Duration::from_millis(50));
    }
    let infos = net.boxes[0].node.peer_infos(net.now);
    assert_eq!(infos.len(), 1, "{infos:?}");
    assert!(
        !net.wire_log
            .iter()
            .any(|(_, to, _)| to.to_string() == "203.0.113.66:6556"),
        "handshakes aimed at the attacker's address"
    );
    // A peer configured now still gets in.
    net.boxes[0].cfg.peers.push(PeerSpec {
        name: "box3".into(),
        key: key(3).1,
        endpoints: vec![addr(2)],
    });
    net.boxes[2].cfg.peers.push(PeerSpec {
        name: "box1".into(),
        key: key(1).1,
        endpoints: vec![addr(0)],
    });
    for i in [0, 2] {
        let specs = net.boxes[i].cfg.peers.clone();
        let now = net.now;
        net.boxes[i].node.set_peers(now, &specs);
    }
    net.run(Duration::from_secs(3));
    assert_eq!(net.info(0, "box3").state, PeerState::Up);
}

// ---- cloud authority ----

const SIM_UNIX: u64 = 1_700_000_000;

fn sim_authority() -> crate::trust::AuthorityKey {
    crate::trust::AuthorityKey::from_seed(&[42; 32])
}

fn sim_cert(
    authority: &crate::trust::AuthorityKey,
    name: &str,
    k: PublicKey,
) -> crate::trust::Certificate {
    crate::trust::Certificate::issue(authority, name, "sim", k, SIM_UNIX, 86_400, vec![]).unwrap()
}

impl Net {
    /// [`Net::new`] with an authority: every box holds a certificate.
    fn with_authority(n: usize, links: &[&[usize]]) -> Net {
        let mut net = Net::new(n, links, true);
        let authority = sim_authority();
        for i in 0..n {
            let name = format!("box{}", i + 1);
            net.boxes[i].cfg.trust = Some(TrustConfig {
                authority: authority.public(),
                cert: Some(sim_cert(&authority, &name, key(i as u8 + 1).1)),
                revoked: None,
            });
            net.restart(i);
        }
        net
    }

    fn knows(&self, i: usize, name: &str) -> Option<PeerState> {
        self.boxes[i]
            .node
            .peer_infos(self.now)
            .into_iter()
            .find(|p| p.name.trim_start_matches('~') == name)
            .map(|p| p.state)
    }
}

#[test]
fn certified_members_find_each_other_through_one_box() {
    // box1 lists nobody; box2 and box3 list only box1. Certificates in
    // the handshakes admit them at box1, which passes them on.
    let mut net = Net::with_authority(3, &[&[], &[0], &[0]]);
    net.run(Duration::from_secs(4));
    assert_eq!(net.knows(0, "box2"), Some(PeerState::Up));
    assert_eq!(net.knows(0, "box3"), Some(PeerState::Up));
    net.run(GOSSIP_INTERVAL + Duration::from_secs(3));
    assert_eq!(net.knows(1, "box3"), Some(PeerState::Up));
    assert_eq!(net.knows(2, "box2"), Some(PeerState::Up));
    let tags = [7u8];
    net.send_frame(1, &frame(BCAST, mac(1), tags[0]));
    net.run(Duration::from_millis(100));
    assert_eq!(net.delivered_tags(2), vec![7]);
}

#[test]
fn forged_and_foreign_certificates_are_refused() {
    let mut net = Net::with_authority(2, &[&[1], &[0]]);
    net.run(Duration::from_secs(2));
    assert_eq!(net.knows(0, "box2"), Some(PeerState::Up));
    // A box with a certificate from another authority, and one presenting
    // box2's genuine certificate with its own key.
    let rogue = crate::trust::AuthorityKey::from_seed(&[66; 32]);
    let (p1, k1) = key(50);
    let (p2, k2) = key(51);
    for (private_key, public_key, cert) in [
        (p1, k1, sim_cert(&rogue, "evil", k1)),
        (p2, k2, sim_cert(&sim_authority(), "box2", key(2).1)),
    ] {
        let cfg = NodeConfig {
            name: "evil".into(),
            cloud: "sim".into(),
            private_key,
            public_key,
            peers: vec![PeerSpec {
                name: "box1".into(),
                key: key(1).1,
                endpoints: vec![addr(0)],
            }],
            trust: Some(TrustConfig {
                authority: sim_authority().public(),
                cert: Some(cert),
                revoked: None,
            }),
        };
        let mut evil = Node::new(&cfg, net.now, SIM_UNIX * 1_000_000);
        let mut out = Collect::default();
        evil.handle_timeout(net.now, &mut out);
        let from: SocketAddr = "203.0.113.9:6556".parse().unwrap();
        for (_, mut bytes) in out.sent {
            let mut back = Collect::default();
            let now = net.now;
            net.boxes[0]
                .node
                .handle_packet(now, from, &mut bytes, &mut back);
            assert!(
                back.sent.is_empty(),
                "box1 answered a handshake it must refuse"
            );
        }
    }
    assert_eq!(net.boxes[0].node.stats().dropped_bad_cert, 2);
    assert_eq!(net.boxes[0].node.peer_infos(net.now).len(), 1);
    // A member passing on a forged certificate: counted, not admitted.
    let forged = sim_cert(&rogue, "ghost", key(60).1).to_bytes().unwrap();
    let mut out = Collect::default();
    let now = net.now;
    let slot = net.boxes[1].node.slot_of_key(&key(1).1).unwrap();
    net.boxes[1]
        .node
        .send_message(now, slot, wire::MSG_CERT, &forged, &mut out);
    net.emit(1, out);
    net.run(Duration::from_millis(50));
    assert_eq!(net.boxes[0].node.stats().dropped_bad_cert, 3);
    assert_eq!(net.knows(0, "ghost"), None);
}

#[test]
fn revocation_reaches_every_box_at_once() {
    let mut net = Net::with_authority(3, &[&[1, 2], &[0], &[0]]);
    net.run(Duration::from_secs(4) + GOSSIP_INTERVAL);
    assert_eq!(net.knows(1, "box3"), Some(PeerState::Up));
    let list = crate::trust::RevocationList::revoke(
        &sim_authority(),
        None,
        "sim",
        key(3).1,
        SIM_UNIX + 86_400,
        SIM_UNIX,
    )
    .unwrap();
    let now = net.now;
    assert_eq!(
        net.boxes[0].node.install_revocation(now, list.clone()),
        Ok(true)
    );
    let mut out = Collect::default();
    net.boxes[0].node.announce_revocation(now, &mut out);
    net.emit(0, out);
    net.run(Duration::from_millis(100));
    for i in [0, 1] {
        assert_eq!(net.knows(i, "box3"), None, "box{} still has box3", i + 1);
        assert_eq!(
            net.boxes[i].node.take_revocation_change().map(|l| l.serial),
            Some(list.serial)
        );
    }
    // box3 keeps trying: every box refuses it.
    net.run(Duration::from_secs(5));
    for i in [0, 1] {
        assert_eq!(net.knows(i, "box3"), None);
        assert!(net.boxes[i].node.stats().dropped_revoked > 0);
    }
    // An older or forged list changes nothing.
    let now = net.now;
    assert_eq!(net.boxes[1].node.install_revocation(now, list), Ok(false));
    let forged = crate::trust::RevocationList::revoke(
        &crate::trust::AuthorityKey::from_seed(&[66; 32]),
        None,
        "sim",
        key(1).1,
        SIM_UNIX + 86_400,
        SIM_UNIX + 99,
    )
    .unwrap();
    assert!(net.boxes[1].node.install_revocation(now, forged).is_err());
    assert_eq!(net.knows(1, "box1"), Some(PeerState::Up));
}

#[test]
fn older_certificates_are_not_passed_on() {
    // A member sends box3's certificate in two versions, an older and a
    // newer one, again and again: only what replaces a held certificate
    // goes on, so the flood dies out instead of circling the cloud.
    let mut net = Net::with_authority(4, &[&[1, 2, 3], &[0, 2, 3], &[0, 1, 3], &[0, 1, 2]]);
    net.run(Duration::from_secs(4));
    assert_eq!(net.knows(0, "box3"), Some(PeerState::Up));
    let a = sim_authority();
    let older =
        crate::trust::Certificate::issue(&a, "box3", "sim", key(3).1, SIM_UNIX, 100, vec![])
            .unwrap()
            .to_bytes()
            .unwrap();
    let newer =
        crate::trust::Certificate::issue(&a, "box3", "sim", key(3).1, SIM_UNIX, 200_000, vec![])
            .unwrap()
            .to_bytes()
            .unwrap();
    let before = net.wire_log.len();
    for round in 0..10 {
        let bytes = if round % 2 == 0 { &older } else { &newer };
        let mut out = Collect::default();
        let now = net.now;
        let slot = net.boxes[1].node.slot_of_key(&key(1).1).unwrap();
        net.boxes[1]
            .node
            .send_message(now, slot, wire::MSG_CERT, bytes, &mut out);
        net.emit(1, out);
        net.run(Duration::from_millis(20));
    }
    net.run(Duration::from_millis(500));
    // 10 injected, the newer one passed on once by each box, keepalives.
    let sent = net.wire_log.len() - before;
    assert!(
        sent < 60,
        "{sent} datagrams: the certificates keep circling"
    );
}
