//! Arbitrary bytes as an mDNS message: the parser must never panic; a
//! message it accepts must re-emit and re-parse to the same message; and
//! a whole engine (one announced service) must take it as a query
//! (multicast and legacy unicast) and as a response without panicking,
//! sending only bounded output.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use cloudy::config::IpCidr;
use cloudy::limits::{MDNS_MAX_PAYLOAD_V4, MDNS_MAX_PAYLOAD_V6};
use cloudy::mdns::wire::Message;
use cloudy::mdns::{IfaceId, Mdns, MdnsOutbox, ServiceSpec};
use cloudy::time::{Duration, Instant};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Bounded {
    packets: usize,
}

impl MdnsOutbox for Bounded {
    fn send(&mut self, _: IfaceId, to: SocketAddr, packet: &[u8]) {
        let limit = if to.is_ipv4() { MDNS_MAX_PAYLOAD_V4 } else { MDNS_MAX_PAYLOAD_V6 };
        assert!(packet.len() <= limit, "oversized packet");
        assert!(Message::parse(packet).is_ok(), "engine sent an unparseable message");
        self.packets += 1;
    }
}

fn announced() -> Mdns {
    let mut m = Mdns::new("fuzz", "cloud", Instant::ZERO, 1);
    let subnet = IpCidr { addr: "192.0.2.0".parse().unwrap(), prefix: 24 };
    m.add_interface(IfaceId(0), &[subnet], &["192.0.2.1".parse().unwrap(), "fe80::1".parse().unwrap()], Instant::ZERO)
        .unwrap();
    let mut out = Bounded::default();
    let spec = ServiceSpec {
        instance: "Web".into(),
        service_type: "_http._tcp".into(),
        port: 80,
        txt: vec!["path=/".into()],
        host: None,
    };
    m.publish(Instant::ZERO, spec, &mut out).unwrap();
    m.browse(Instant::ZERO, "_http._tcp").unwrap();
    for _ in 0..32 {
        match m.poll_at() {
            Some(t) if t < Instant::from_secs(3) => m.handle_timeout(t, &mut out),
            _ => break,
        }
    }
    m
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let bytes = m.emit(usize::MAX).expect("a parsed message re-emits");
        let again = Message::parse(&bytes).expect("a re-emitted message parses");
        assert_eq!(m, again);
    }
    static TEMPLATE: OnceLock<Mdns> = OnceLock::new();
    let mut m = TEMPLATE.get_or_init(announced).clone();
    let mut out = Bounded::default();
    let now = Instant::from_secs(5);
    for from in ["192.0.2.9:5353", "192.0.2.9:40000", "[fe80::9]:5353"] {
        m.handle_packet(now, IfaceId(0), from.parse().unwrap(), data, &mut out);
    }
    // One query or response yields a handful of packets at most.
    assert!(out.packets <= 6, "{} packets", out.packets);
    let mut t = now;
    for _ in 0..16 {
        match m.poll_at() {
            Some(p) if p < now + Duration::from_secs(2) => {
                t = t.max(p);
                m.handle_timeout(t, &mut out);
            }
            _ => break,
        }
    }
    assert!(out.packets <= 24, "{} packets", out.packets);
});
