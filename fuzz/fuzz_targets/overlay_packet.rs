//! Arbitrary datagrams into the overlay: the outer parser, the inner
//! message parser, and a whole engine with an established session (so
//! data packets reach decryption). Nothing may panic, and nothing forged
//! may be delivered.
#![no_main]

use cloudy::overlay::node::{Node, NodeConfig, PeerSpec};
use cloudy::overlay::wire::{Message, Packet};
use cloudy::overlay::Outbox;
use cloudy::time::Instant;
use libfuzzer_sys::fuzz_target;

struct Count(usize);

impl Outbox for Count {
    fn send(&mut self, _: std::net::SocketAddr, _: &[u8]) {}
    fn deliver(&mut self, _: &[u8]) {
        self.0 += 1;
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = Packet::parse(data);
    if let Ok(Message::Gossip(g)) = Message::parse(data) {
        assert!(g.entries().count() == g.len());
    }
    let private = [7u8; 32];
    let public = cloudy::keys::public_key_of(&private);
    let peer = cloudy::keys::public_key_of(&[8u8; 32]);
    let cfg = NodeConfig {
        name: "fuzz".into(),
        cloud: "fuzz".into(),
        private_key: private,
        public_key: public,
        peers: vec![PeerSpec { name: "p".into(), key: peer, endpoints: vec!["192.0.2.1:1".parse().unwrap()] }],
    };
    let mut node = Node::new(&cfg, Instant::ZERO, 1);
    let mut out = Count(0);
    let mut buf = data.to_vec();
    node.handle_packet(Instant::from_secs(1), "192.0.2.1:1".parse().unwrap(), &mut buf, &mut out);
    assert_eq!(out.0, 0, "a forged packet was delivered");
});
