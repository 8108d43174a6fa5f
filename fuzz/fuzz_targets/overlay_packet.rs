//! Every input as an outer packet and as an inner message: parse -> emit
//! gives the same bytes. Then arbitrary datagrams into the overlay engine,
//! three ways (the first input byte chooses):
//! - 0: as they are, to a box with an established session (the outer
//!   parser, index lookup, handshake paths);
//! - 1: as changes to a genuine data packet of that session: the header
//!   still names the live session, so the packet reaches the replay window
//!   and the AEAD — nothing changed may be delivered;
//! - 2: as the plaintext of an authenticated message from a member gone
//!   bad (sealed with the real session key): the inner message parser and
//!   every handler behind it.
//! Nothing may panic. The two boxes are made once (a real Noise IK
//! handshake between two engines) and kept across inputs.
#![no_main]

use std::net::SocketAddr;
use std::sync::Mutex;

use cloudy::overlay::node::{Node, NodeConfig, PeerSpec, TrustConfig};
use cloudy::trust::AuthorityKey;
use cloudy::overlay::wire::{Message, Packet};
use cloudy::overlay::{Outbox, PeerState};
use cloudy::time::{Duration, Instant};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Collect {
    sent: Vec<(SocketAddr, Vec<u8>)>,
    delivered: usize,
}

impl Outbox for Collect {
    fn send(&mut self, to: SocketAddr, packet: &[u8]) {
        self.sent.push((to, packet.to_vec()));
    }
    fn deliver(&mut self, _: &[u8]) {
        self.delivered += 1;
    }
}

const A: &str = "192.0.2.1:6556";
const B: &str = "192.0.2.2:6556";
/// The engines' clock stays here: no session expires during fuzzing.
const NOW: Instant = Instant::from_secs(5);

struct Pair {
    a: Node,
    b: Node,
    key_a: [u8; 32],
    key_b: [u8; 32],
}

fn node(private: u8, name: &str, peer: &[u8; 32], at: &str) -> Node {
    let private = [private; 32];
    let cfg = NodeConfig {
        name: name.into(),
        cloud: "fuzz".into(),
        private_key: private,
        public_key: cloudy::keys::public_key_of(&private),
        peers: vec![PeerSpec { name: "peer".into(), key: *peer, endpoints: vec![at.parse().unwrap()] }],
        // An authority, so Cert and Revoked messages reach verification
        // (seeds mode2_cert, mode2_revoked are signed by it).
        trust: Some(TrustConfig {
            authority: AuthorityKey::from_seed(&[1; 32]).public(),
            cert: None,
            revoked: None,
        }),
    };
    Node::new(&cfg, Instant::ZERO, 1_700_000_000_000_000)
}

/// Two engines that completed a handshake through an in-memory wire.
fn pair() -> Pair {
    let key_a = cloudy::keys::public_key_of(&[7u8; 32]);
    let key_b = cloudy::keys::public_key_of(&[8u8; 32]);
    let mut a = node(7, "a", &key_b, B);
    let mut b = node(8, "b", &key_a, A);
    let mut now = Instant::ZERO;
    for _ in 0..40 {
        let mut out_a = Collect::default();
        let mut out_b = Collect::default();
        a.handle_timeout(now, &mut out_a);
        b.handle_timeout(now, &mut out_b);
        // Bounded ping-pong: answers to answers within one step.
        for _ in 0..4 {
            for (_, mut p) in std::mem::take(&mut out_a.sent) {
                b.handle_packet(now, A.parse().unwrap(), &mut p, &mut out_b);
            }
            for (_, mut p) in std::mem::take(&mut out_b.sent) {
                a.handle_packet(now, B.parse().unwrap(), &mut p, &mut out_a);
            }
        }
        let up = |n: &Node| n.peer_infos(now).iter().all(|p| p.state == PeerState::Up);
        if up(&a) && up(&b) {
            return Pair { a, b, key_a, key_b };
        }
        now = now + Duration::from_millis(100);
    }
    panic!("the fuzz harness could not establish a session");
}

static PAIR: Mutex<Option<Pair>> = Mutex::new(None);

/// A 60-byte broadcast frame from `a`'s side.
fn frame() -> [u8; 60] {
    let mut f = [0u8; 60];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

fuzz_target!(|data: &[u8]| {
    // Outer packets: parse -> emit gives the bytes back (a data packet's
    // header only: its ciphertext is sealed in place).
    if let Ok(p) = Packet::parse(data) {
        let mut out = vec![0u8; p.buffer_len()];
        assert_eq!(p.emit(&mut out), Ok(out.len()));
        assert_eq!(&out[..], &data[..out.len()], "packet emit differs");
        if !matches!(p, Packet::Data { .. }) {
            assert_eq!(out.len(), data.len());
        }
    }
    // Inner messages: parse -> emit gives the same bytes (parse takes the
    // whole input), and parse again the same message.
    if let Ok(m) = Message::parse(data) {
        if let Message::Gossip(g) = &m {
            assert!(g.entries().count() == g.len());
        }
        let mut out = vec![0u8; m.buffer_len()];
        assert_eq!(m.emit(&mut out), Ok(data.len()));
        assert_eq!(out, data, "emit differs from the parsed bytes");
        assert_eq!(Message::parse(&out), Ok(m));
    }
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut guard = PAIR.lock().unwrap_or_else(|e| e.into_inner());
    let pair = guard.get_or_insert_with(pair);
    let from_a: SocketAddr = A.parse().unwrap();
    let mut out = Collect::default();
    match mode % 3 {
        0 => {
            let mut buf = rest.to_vec();
            pair.b.handle_packet(NOW, from_a, &mut buf, &mut out);
            assert_eq!(out.delivered, 0, "a forged packet was delivered");
        }
        1 => {
            let mut sent = Collect::default();
            pair.a.handle_frame(NOW, &frame(), &mut sent);
            let Some((_, genuine)) = sent.sent.pop() else { return };
            // rest[0]: where the changes start; the rest is XORed in.
            let Some((&at, xor)) = rest.split_first() else { return };
            let mut p = genuine.clone();
            for (i, x) in xor.iter().enumerate() {
                if let Some(b) = p.get_mut(usize::from(at) % genuine.len() + i) {
                    *b ^= x;
                }
            }
            let changed = p != genuine;
            pair.b.handle_packet(NOW, from_a, &mut p, &mut out);
            if changed {
                assert_eq!(out.delivered, 0, "a changed data packet was delivered");
            } else {
                assert!(out.delivered <= 1);
            }
        }
        _ => {
            let key_b = pair.key_b;
            let mut sent = Collect::default();
            if !pair.a.fuzz_send_inner(NOW, &key_b, rest, &mut sent) {
                return;
            }
            for (_, mut p) in sent.sent {
                pair.b.handle_packet(NOW, from_a, &mut p, &mut out);
            }
        }
    }
    let _ = pair.key_a;
});
