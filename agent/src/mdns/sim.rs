//! A simulated link for the engine: several [`Mdns`] on one segment
//! (192.0.2.0/24), a fake clock, 1 ms latency, seeded loss, and a log of
//! every datagram. External queriers are injected by hand. No sockets.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use super::wire::*;
use super::*;

const IF0: IfaceId = IfaceId(0);

#[derive(Default)]
struct Collect(Vec<(IfaceId, SocketAddr, Vec<u8>)>);

impl MdnsOutbox for Collect {
    fn send(&mut self, iface: IfaceId, to: SocketAddr, packet: &[u8]) {
        assert!(packet.len() <= MDNS_MAX_PAYLOAD_V4, "oversized packet");
        self.0.push((iface, to, packet.to_vec()));
    }
}

struct SimBox {
    m: Mdns,
    ip: IpAddr,
    alive: bool,
}

/// A datagram on the wire: when sent, by which box (None = injected), to where.
#[derive(Clone)]
struct Sent {
    at: Instant,
    from: Option<usize>,
    to: SocketAddr,
    msg: Message,
    len: usize,
}

struct Link {
    now: Instant,
    boxes: Vec<SimBox>,
    queue: VecDeque<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    loss_percent: u64,
    rng: u64,
    log: Vec<Sent>,
}

fn subnet() -> IpCidr {
    IpCidr {
        addr: "192.0.2.0".parse().unwrap(),
        prefix: 24,
    }
}

fn ip(i: usize) -> IpAddr {
    format!("192.0.2.{}", i + 1).parse().unwrap()
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn spec(instance: &str, ty: &str, port: u16, txt: &[&str]) -> ServiceSpec {
    ServiceSpec {
        instance: instance.into(),
        service_type: ty.into(),
        port,
        txt: txt.iter().map(|s| s.to_string()).collect(),
        host: None,
    }
}

fn name(s: &str) -> Name {
    Name::parse_str(s).unwrap()
}

impl Link {
    /// `hosts[i]` is box i's host label; all in cloud `cloud`.
    fn new(hosts: &[&str]) -> Link {
        let boxes = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mut m = Mdns::new(h, "cloud", Instant::ZERO, 1000 + i as u64);
                m.add_interface(IF0, &[subnet()], &[ip(i)], Instant::ZERO)
                    .unwrap();
                SimBox {
                    m,
                    ip: ip(i),
                    alive: true,
                }
            })
            .collect();
        Link {
            now: Instant::ZERO,
            boxes,
            queue: VecDeque::new(),
            loss_percent: 0,
            rng: 7,
            log: Vec::new(),
        }
    }

    fn lose(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 100 < self.loss_percent
    }

    fn push(&mut self, from: Option<usize>, src: SocketAddr, out: Collect) {
        for (_, to, bytes) in out.0 {
            let msg = Message::parse(&bytes).expect("engine sent an unparseable message");
            self.log.push(Sent {
                at: self.now,
                from,
                to,
                msg,
                len: bytes.len(),
            });
            if !self.lose() {
                self.queue
                    .push_back((self.now + Duration::from_millis(1), src, to, bytes));
            }
        }
    }

    fn src(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.boxes[i].ip, MDNS_PORT)
    }

    /// Let box `i` act now.
    fn with(&mut self, i: usize, f: impl FnOnce(&mut Mdns, Instant, &mut Collect)) {
        let mut out = Collect::default();
        let now = self.now;
        f(&mut self.boxes[i].m, now, &mut out);
        let src = self.src(i);
        self.push(Some(i), src, out);
    }

    /// A packet from outside (a querier not simulated) to box `i`.
    fn inject(&mut self, i: usize, from: SocketAddr, bytes: &[u8]) {
        let mut out = Collect::default();
        let now = self.now;
        self.boxes[i]
            .m
            .handle_packet(now, IF0, from, bytes, &mut out);
        let src = self.src(i);
        self.push(Some(i), src, out);
    }

    /// A multicast packet from outside to every live box.
    fn inject_all(&mut self, from: SocketAddr, bytes: &[u8]) {
        for i in 0..self.boxes.len() {
            if self.boxes[i].alive {
                self.inject(i, from, bytes);
            }
        }
    }

    fn deliver(&mut self, src: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        for i in 0..self.boxes.len() {
            let b = &self.boxes[i];
            let hit = if to.ip().is_multicast() {
                b.ip != src.ip()
            } else {
                b.ip == to.ip()
            };
            if hit && b.alive {
                self.inject(i, src, &bytes);
            }
        }
    }

    fn run_until(&mut self, until: Instant) {
        for _ in 0..1_000_000 {
            let q = self.queue.iter().map(|x| x.0).min();
            let p = self
                .boxes
                .iter()
                .filter(|b| b.alive)
                .filter_map(|b| b.m.poll_at())
                .min();
            let Some(next) = crate::time::earliest(q, p) else {
                break;
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            let (due, rest): (Vec<_>, Vec<_>) = self.queue.drain(..).partition(|x| x.0 <= self.now);
            self.queue = rest.into();
            for (_, src, to, bytes) in due {
                self.deliver(src, to, bytes);
            }
            for i in 0..self.boxes.len() {
                if self.boxes[i].alive && self.boxes[i].m.poll_at().is_some_and(|t| t <= self.now) {
                    self.with(i, |m, now, out| m.handle_timeout(now, out));
                }
            }
        }
        self.now = self.now.max(until);
    }

    fn run_for(&mut self, ms: u64) {
        let until = self.now + Duration::from_millis(ms);
        self.run_until(until);
    }

    fn sent_by(&self, i: usize) -> Vec<&Sent> {
        self.log.iter().filter(|s| s.from == Some(i)).collect()
    }
}

fn is_probe(m: &Message) -> bool {
    !m.is_response() && !m.authorities.is_empty()
}

fn query(id: u16, qs: &[(&str, u16, bool)], known: Vec<Record>) -> Vec<u8> {
    Message {
        id,
        flags: 0,
        questions: qs
            .iter()
            .map(|(n, ty, qu)| Question {
                name: name(n),
                qtype: *ty,
                qclass: CLASS_IN,
                unicast_response: *qu,
            })
            .collect(),
        answers: known,
        ..Message::default()
    }
    .emit(9000)
    .unwrap()
}

fn querier(port: u16) -> SocketAddr {
    SocketAddr::new("192.0.2.99".parse().unwrap(), port)
}

const HTTP: &str = "_http._tcp.local";

#[test]
fn probe_then_announce_timeline() {
    let mut l = Link::new(&["alpha"]);
    l.with(0, |m, now, out| {
        m.publish(now, spec("Web", "_http._tcp", 80, &["path=/"]), out)
            .unwrap()
    });
    assert_eq!(l.boxes[0].m.published()[0].state, PublishState::Probing);
    l.run_for(5000);
    let inst = name("Web._http._tcp.local");
    for target in [inst.clone(), name("alpha.cloud.local")] {
        let probes: Vec<&Sent> = l
            .sent_by(0)
            .into_iter()
            .filter(|s| is_probe(&s.msg) && s.msg.questions.iter().any(|q| q.name == target))
            .collect();
        assert_eq!(probes.len(), 3, "{target}");
        assert!(probes[0].at <= t(250));
        let q = |s: &Sent| {
            s.msg
                .questions
                .iter()
                .find(|q| q.name == target)
                .unwrap()
                .clone()
        };
        assert!(q(probes[0]).unicast_response, "QU on the first probe");
        assert!(!q(probes[1]).unicast_response);
        assert_eq!(q(probes[0]).qtype, TYPE_ANY);
        assert_eq!(probes[1].at - probes[0].at, Duration::from_millis(250));
        assert_eq!(probes[2].at - probes[1].at, Duration::from_millis(250));
        assert!(probes[0].msg.authorities.iter().all(|r| r.name == target));
        let ann: Vec<&Sent> = l
            .sent_by(0)
            .into_iter()
            .filter(|s| s.msg.is_response() && s.msg.answers.iter().any(|r| r.name == target))
            .collect();
        assert_eq!(ann.len(), 2, "{target}");
        assert_eq!(ann[0].at - probes[2].at, Duration::from_millis(250));
        assert_eq!(ann[1].at - ann[0].at, Duration::from_secs(1));
        assert_eq!(ann[0].to, SocketAddr::new(MDNS_GROUP_V4.into(), MDNS_PORT));
    }
    let ann = l
        .sent_by(0)
        .into_iter()
        .find(|s| s.msg.is_response() && s.msg.answers.iter().any(|r| r.name == inst))
        .unwrap();
    let a = &ann.msg.answers;
    let find = |ty: u16| a.iter().find(|r| r.rtype() == ty).unwrap();
    assert_eq!(find(TYPE_SRV).ttl, 120);
    assert!(find(TYPE_SRV).cache_flush);
    assert_eq!(find(TYPE_TXT).ttl, 4500);
    assert!(a
        .iter()
        .filter(|r| r.rtype() == TYPE_PTR)
        .all(|r| !r.cache_flush && r.ttl == 4500));
    assert!(a
        .iter()
        .any(|r| r.name == name("_services._dns-sd._udp.local")));
    assert_eq!(l.boxes[0].m.published()[0].state, PublishState::Announced);
    assert_eq!(l.boxes[0].m.stats().announcements_sent, 4);
    // Quiet afterwards: nothing scheduled but cache/browse work.
    let before = l.log.len();
    l.run_for(60_000);
    assert_eq!(l.log.len(), before);
}

#[test]
fn browse_resolve_across_boxes_with_loss() {
    let mut l = Link::new(&["alpha", "beta"]);
    l.loss_percent = 20;
    l.with(0, |m, now, out| {
        m.publish(
            now,
            spec("Web Ñ.1", "_http._tcp", 8080, &["a=1", "b=2"]),
            out,
        )
        .unwrap()
    });
    l.run_for(3000);
    let now = l.now;
    let _ = l.boxes[1].m.search(now, Some("_http._tcp"));
    let mut found = Vec::new();
    for _ in 0..20 {
        l.run_for(1000);
        let now = l.now;
        found = l.boxes[1].m.search(now, Some("http"));
        if found
            .first()
            .is_some_and(|f| !f.addresses.is_empty() && !f.txt.is_empty())
        {
            break;
        }
    }
    let f = &found[0];
    assert_eq!(f.instance, "Web Ñ.1");
    assert_eq!(f.service_type, "_http._tcp");
    assert_eq!(f.host, "alpha.cloud.local");
    assert_eq!(f.port, 8080);
    assert_eq!(f.txt, vec!["a=1", "b=2"]);
    assert_eq!(f.addresses, vec![ip(0)]);
    assert_eq!(f.iface, Some(IF0));
    // Own services are listed too, without an interface.
    let own = l.boxes[0].m.search(l.now, None);
    assert!(own.iter().any(|f| f.iface.is_none() && f.port == 8080));
    // search(None) finds the type through _services._dns-sd._udp.
    l.loss_percent = 0;
    let _ = l.boxes[1].m.search(l.now, None);
    l.run_for(5000);
    let all = l.boxes[1].m.search(l.now, None);
    assert!(all
        .iter()
        .any(|f| f.instance == "Web Ñ.1" && f.iface == Some(IF0)));
}

#[test]
fn instance_conflict_sequential_renames_newcomer() {
    let mut l = Link::new(&["alpha", "beta"]);
    l.with(0, |m, now, out| {
        m.publish(now, spec("Printer", "_ipp._tcp", 631, &[]), out)
            .unwrap()
    });
    l.run_for(5000);
    l.with(1, |m, now, out| {
        m.publish(now, spec("Printer", "_ipp._tcp", 632, &[]), out)
            .unwrap()
    });
    l.run_for(5000);
    assert_eq!(l.boxes[0].m.published()[0].instance, "Printer");
    let p = &l.boxes[1].m.published()[0];
    assert_eq!(p.instance, "Printer (2)");
    assert_eq!(p.requested, "Printer");
    assert_eq!(p.state, PublishState::ConflictRenamed);
    assert!(l.boxes[1].m.stats().conflicts >= 1);
    // Both resolvable from a third view.
    let _ = l.boxes[0].m.search(l.now, Some("_ipp._tcp"));
    l.run_for(3000);
    let names: Vec<String> = l.boxes[0]
        .m
        .search(l.now, Some("_ipp._tcp"))
        .into_iter()
        .map(|f| f.instance)
        .collect();
    assert_eq!(names, vec!["Printer", "Printer (2)"]);
}

#[test]
fn instance_conflict_simultaneous_tie_break() {
    let mut l = Link::new(&["alpha", "beta"]);
    for i in 0..2 {
        l.with(i, |m, now, out| {
            m.publish(now, spec("Printer", "_ipp._tcp", 631 + i as u16, &[]), out)
                .unwrap()
        });
    }
    l.run_for(8000);
    let mut names: Vec<String> = (0..2)
        .map(|i| l.boxes[i].m.published()[0].instance.clone())
        .collect();
    names.sort();
    assert_eq!(names, vec!["Printer", "Printer (2)"]);
    // Port 632 > 631 in the SRV RDATA: beta's set is later and wins (§8.2).
    assert_eq!(l.boxes[1].m.published()[0].instance, "Printer");
    for b in &l.boxes {
        assert_ne!(b.m.published()[0].state, PublishState::Probing);
    }
}

#[test]
fn host_name_conflict_renames_to_node_2() {
    let mut l = Link::new(&["node", "node"]);
    l.run_for(5000);
    // 192.0.2.2 > 192.0.2.1: box 1 keeps the name.
    assert_eq!(l.boxes[1].m.host_name(), "node.cloud.local");
    assert_eq!(l.boxes[0].m.host_name(), "node-2.cloud.local");
    // A third box joining with the same name defers to the owner.
    let mut m = Mdns::new("node", "cloud", l.now, 9);
    m.add_interface(IF0, &[subnet()], &[ip(2)], l.now).unwrap();
    l.boxes.push(SimBox {
        m,
        ip: ip(2),
        alive: true,
    });
    l.run_for(5000);
    assert_eq!(l.boxes[2].m.host_name(), "node-3.cloud.local");
    assert_eq!(l.boxes[1].m.host_name(), "node.cloud.local");
    assert_eq!(l.boxes[0].m.host_name(), "node-2.cloud.local");
}

#[test]
fn probe_tie_break_defers_loser_one_second() {
    let mut l = Link::new(&["alpha"]);
    l.with(0, |m, now, out| {
        m.publish(now, spec("X", "_http._tcp", 80, &[]), out)
            .unwrap()
    });
    // Run to the first probe of X.
    let inst = name("X._http._tcp.local");
    let mut first = None;
    for _ in 0..100 {
        l.run_for(10);
        first = l
            .log
            .iter()
            .find(|s| is_probe(&s.msg) && s.msg.questions.iter().any(|q| q.name == inst))
            .map(|s| s.at);
        if first.is_some() {
            break;
        }
    }
    let first = first.unwrap();
    // A competing probe with a later SRV (port 81 > 80).
    let competitor = |port: u16| {
        Message {
            questions: vec![Question {
                name: inst.clone(),
                qtype: TYPE_ANY,
                qclass: CLASS_IN,
                unicast_response: false,
            }],
            authorities: vec![Record::new(
                inst.clone(),
                120,
                true,
                RData::Srv(Srv {
                    priority: 0,
                    weight: 0,
                    port,
                    target: name("other.local"),
                }),
            )],
            ..Message::default()
        }
        .emit(1500)
        .unwrap()
    };
    // An earlier set loses to us: nothing changes.
    l.inject(0, querier(5353), &competitor(79));
    l.run_for(5);
    l.inject(0, querier(5353), &competitor(81));
    let lost_at = l.now;
    l.run_for(4000);
    let probes: Vec<Instant> = l
        .log
        .iter()
        .filter(|s| is_probe(&s.msg) && s.msg.questions.iter().any(|q| q.name == inst))
        .map(|s| s.at)
        .collect();
    assert!(probes.len() >= 4, "{probes:?}");
    assert!(probes[0] == first);
    let restart = probes.iter().find(|&&p| p > lost_at).unwrap();
    assert!(*restart >= lost_at + Duration::from_secs(1));
    // Nobody answered: after the deferred sequence the name is still X.
    assert_eq!(l.boxes[0].m.published()[0].instance, "X");
    assert_eq!(l.boxes[0].m.published()[0].state, PublishState::Announced);
}

fn announced_box() -> Link {
    let mut l = Link::new(&["alpha"]);
    l.with(0, |m, now, out| {
        m.publish(now, spec("Web", "_http._tcp", 80, &["x=y"]), out)
            .unwrap()
    });
    l.run_for(4000);
    l
}

#[test]
fn qu_query_gets_unicast_reply() {
    let mut l = announced_box();
    let n0 = l.log.len();
    l.inject(
        0,
        querier(5353),
        &query(0, &[("Web._http._tcp.local", TYPE_SRV, true)], vec![]),
    );
    let r = &l.log[n0..];
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].to, querier(5353));
    assert_eq!(r[0].msg.answers[0].rtype(), TYPE_SRV);
    // The host address comes along as additional (RFC 6763 §12.2).
    assert!(r[0]
        .msg
        .additionals
        .iter()
        .any(|a| a.data == RData::A([192, 0, 2, 1].into())));
    // Not multicast for a quarter of its TTL (30 s): QU then gets multicast.
    l.run_for(31_000);
    let n1 = l.log.len();
    l.inject(
        0,
        querier(5353),
        &query(0, &[("Web._http._tcp.local", TYPE_SRV, true)], vec![]),
    );
    assert_eq!(l.log[n1..].len(), 1);
    assert!(l.log[n1].to.ip().is_multicast());
}

#[test]
fn legacy_unicast_reply() {
    let mut l = announced_box();
    let n0 = l.log.len();
    l.inject(
        0,
        querier(40000),
        &query(0x4242, &[("alpha.cloud.local", TYPE_A, false)], vec![]),
    );
    let r = &l.log[n0..];
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].to, querier(40000));
    let m = &r[0].msg;
    assert_eq!(m.id, 0x4242);
    assert_eq!(m.questions.len(), 1);
    assert_eq!(m.questions[0].name, name("alpha.cloud.local"));
    assert_eq!(m.answers[0].data, RData::A([192, 0, 2, 1].into()));
    for rec in m.answers.iter().chain(&m.additionals) {
        assert!(rec.ttl <= 10);
        assert!(!rec.cache_flush);
    }
    // A legacy PTR query works too (dig -p 5353 style), uncompressed SRV rdata.
    let n1 = l.log.len();
    l.inject(
        0,
        querier(40001),
        &query(7, &[(HTTP, TYPE_PTR, false)], vec![]),
    );
    let m = &l.log[n1].msg;
    assert_eq!(l.log[n1].to, querier(40001));
    assert!(m
        .additionals
        .iter()
        .any(|r| r.rtype() == TYPE_SRV && r.ttl == 10));
}

fn our_ptr(ttl: u32) -> Record {
    Record::new(
        name(HTTP),
        ttl,
        false,
        RData::Ptr(name("Web._http._tcp.local")),
    )
}

#[test]
fn known_answer_suppression() {
    let mut l = announced_box();
    l.run_for(2000);
    let n0 = l.log.len();
    l.inject(
        0,
        querier(5353),
        &query(0, &[(HTTP, TYPE_PTR, false)], vec![our_ptr(4000)]),
    );
    l.run_for(500);
    assert_eq!(
        l.log.len(),
        n0,
        "known answer with TTL ≥ half must suppress"
    );
    l.inject(
        0,
        querier(5353),
        &query(0, &[(HTTP, TYPE_PTR, false)], vec![our_ptr(2000)]),
    );
    l.run_for(500);
    let r = &l.log[n0..];
    assert_eq!(r.len(), 1);
    // Shared record: delayed 20-120 ms.
    let delay = r[0].at - (l.now - Duration::from_millis(500));
    assert!(
        delay >= Duration::from_millis(20) && delay <= Duration::from_millis(120),
        "{delay:?}"
    );
}

#[test]
fn duplicate_answer_suppression() {
    let mut l = announced_box();
    l.run_for(2000);
    let n0 = l.log.len();
    l.inject(
        0,
        querier(5353),
        &query(0, &[(HTTP, TYPE_PTR, false)], vec![]),
    );
    // Another responder multicasts the same answer before our delay ends.
    let other = Message {
        flags: FLAG_QR | FLAG_AA,
        answers: vec![our_ptr(4500)],
        ..Message::default()
    }
    .emit(1500)
    .unwrap();
    l.run_for(10);
    l.inject(
        0,
        SocketAddr::new("192.0.2.77".parse().unwrap(), 5353),
        &other,
    );
    l.run_for(500);
    assert_eq!(l.log.len(), n0, "duplicate answer must be suppressed");
    // Without it, we answer.
    l.run_for(2000);
    l.inject(
        0,
        querier(5353),
        &query(0, &[(HTTP, TYPE_PTR, false)], vec![]),
    );
    l.run_for(500);
    assert_eq!(l.log.len(), n0 + 1);
}

#[test]
fn multicast_rate_limited_to_once_per_second() {
    let mut l = announced_box();
    l.run_for(2000);
    let n0 = l.log.len();
    for _ in 0..5 {
        l.inject(
            0,
            querier(5353),
            &query(0, &[("Web._http._tcp.local", TYPE_SRV, false)], vec![]),
        );
        l.run_for(100);
    }
    assert_eq!(l.log.len() - n0, 1);
    l.run_for(1000);
    l.inject(
        0,
        querier(5353),
        &query(0, &[("Web._http._tcp.local", TYPE_SRV, false)], vec![]),
    );
    assert_eq!(l.log.len() - n0, 2);
}

#[test]
fn per_interface_rate_limits() {
    let mut l = announced_box();
    l.run_for(2000);
    let n0 = l.log.len();
    // Legacy queries are answered each time: only the token buckets bound them.
    for i in 0..500u16 {
        l.inject(
            0,
            querier(40000 + i),
            &query(i, &[("alpha.cloud.local", TYPE_A, false)], vec![]),
        );
    }
    let sent = l.log.len() - n0;
    assert_eq!(sent, MDNS_ANSWER_BURST as usize);
    let s = l.boxes[0].m.stats();
    assert_eq!(s.dropped_rate, 500 - MDNS_ANSWER_BURST as u64);
    // Refilled after a while.
    l.run_for(2000);
    l.inject(
        0,
        querier(40000),
        &query(1, &[("alpha.cloud.local", TYPE_A, false)], vec![]),
    );
    assert_eq!(l.log.len() - n0, sent + 1);
}

#[test]
fn goodbye_on_unpublish_and_shutdown() {
    let mut l = Link::new(&["alpha", "beta"]);
    l.with(0, |m, now, out| {
        m.publish(now, spec("Web", "_http._tcp", 80, &[]), out)
            .unwrap()
    });
    l.with(0, |m, now, out| {
        m.publish(now, spec("Ssh", "_ssh._tcp", 22, &[]), out)
            .unwrap()
    });
    l.run_for(3000);
    let _ = l.boxes[1].m.search(l.now, None);
    let _ = l.boxes[1].m.search(l.now, Some("_http._tcp"));
    let _ = l.boxes[1].m.search(l.now, Some("_ssh._tcp"));
    l.run_for(4000);
    assert_eq!(l.boxes[1].m.search(l.now, None).len(), 2);
    let cached = l.boxes[1].m.stats().cached;
    l.with(0, |m, now, out| m.unpublish(now, "web", out).unwrap());
    let bye = l.log.last().unwrap();
    assert!(bye.msg.answers.iter().all(|r| r.ttl == 0));
    assert!(bye.msg.answers.iter().any(|r| r.rtype() == TYPE_SRV));
    l.run_for(5);
    assert_eq!(
        l.boxes[1].m.search(l.now, None).len(),
        1,
        "gone at once from listings"
    );
    l.run_for(1000);
    assert!(l.boxes[1].m.stats().cached < cached, "expired within 1 s");
    assert_eq!(
        l.boxes[0]
            .m
            .unpublish(l.now, "web", &mut Collect::default()),
        Err(MdnsError::NotFound)
    );
    // Shutdown: everything, host address included.
    l.with(0, |m, now, out| m.shutdown(now, out));
    let bye = l.log.last().unwrap();
    assert!(bye
        .msg
        .answers
        .iter()
        .any(|r| r.rtype() == TYPE_A && r.ttl == 0));
    l.run_for(1100);
    assert!(l.boxes[1].m.search(l.now, None).is_empty());
    let left: Vec<_> = l.boxes[1]
        .m
        .cache
        .iter()
        .filter(|e| e.iface == IF0)
        .map(|e| e.record.name.to_string())
        .collect();
    assert!(
        left.iter()
            .all(|n| !n.contains("alpha") && !n.starts_with("Ssh")),
        "{left:?}"
    );
    assert_eq!(l.boxes[0].m.poll_at(), None);
}

#[test]
fn cache_flush_on_update_and_cache_capacity() {
    let mut l = Link::new(&["alpha", "beta"]);
    l.with(0, |m, now, out| {
        m.publish(now, spec("Web", "_http._tcp", 80, &[]), out)
            .unwrap()
    });
    l.run_for(3000);
    let _ = l.boxes[1].m.search(l.now, Some("_http._tcp"));
    l.run_for(3000);
    assert_eq!(l.boxes[1].m.search(l.now, Some("_http._tcp"))[0].port, 80);
    // New port: re-announced with cache-flush; the old SRV goes within 1 s.
    l.with(0, |m, now, out| {
        m.publish(now, spec("Web", "_http._tcp", 81, &[]), out)
            .unwrap()
    });
    l.run_for(1100);
    let found = l.boxes[1].m.search(l.now, Some("_http._tcp"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].port, 81);
    let srvs = l.boxes[1]
        .m
        .cache
        .iter()
        .filter(|e| e.record.rtype() == TYPE_SRV)
        .count();
    assert_eq!(srvs, 1);
    // Ten hosts announce 50 records each, 5 s apart (within the
    // unsolicited budget): the cache stays at its capacity and counts
    // evictions (or refusals of records expiring before all others).
    for batch in 0..10u32 {
        let from = SocketAddr::new(format!("192.0.2.{}", 50 + batch).parse().unwrap(), 5353);
        l.run_for(5000);
        let answers = (0..50u32)
            .map(|i| {
                let host = Name::from_labels([format!("h{batch}-{i}").as_str(), "local"]).unwrap();
                Record::new(
                    host,
                    100 + i,
                    true,
                    RData::A([10, 0, batch as u8, i as u8].into()),
                )
            })
            .collect();
        let p = Message {
            flags: FLAG_QR | FLAG_AA,
            answers,
            ..Message::default()
        }
        .emit(9000)
        .unwrap();
        l.inject(1, from, &p);
    }
    let s = l.boxes[1].m.stats();
    assert_eq!(s.cached as usize, MDNS_CACHE_SIZE);
    assert!(s.cache_evictions + s.cache_refused >= (500 - MDNS_CACHE_SIZE) as u64);
    assert_eq!((s.dropped_unsolicited, s.unsolicited_refused), (0, 0));
    // Everything expires.
    l.run_for(200_000);
    assert!(l.boxes[1].m.stats().cached < 10);
}

/// A response from a hostile host: `n` services of type `ty` (PTR, SRV,
/// TXT), instance names unique to `round`, on host `evil.local` (A), all
/// with TTL `ttl`.
fn flood(round: u32, n: u32, ty: &str, ttl: u32) -> Vec<u8> {
    let t = name(ty);
    let host = name("evil.local");
    let mut answers = Vec::new();
    for i in 0..n {
        let inst = t.prepend(format!("Flood {round}-{i}").as_bytes()).unwrap();
        answers.push(Record::new(t.clone(), ttl, false, RData::Ptr(inst.clone())));
        let srv = Srv {
            priority: 0,
            weight: 0,
            port: 9,
            target: host.clone(),
        };
        answers.push(Record::new(inst.clone(), ttl, true, RData::Srv(srv)));
        let txt = Txt::from_strings(&["x=1"], 100).unwrap();
        answers.push(Record::new(inst, ttl, true, RData::Txt(txt)));
    }
    answers.push(Record::new(
        host,
        ttl,
        true,
        RData::A([192, 0, 2, 66].into()),
    ));
    Message {
        flags: FLAG_QR | FLAG_AA,
        answers,
        ..Message::default()
    }
    .emit(9000)
    .unwrap()
}

/// alpha publishes "Web"; beta has found it with `cloudy search`.
fn web_found() -> Link {
    let mut l = Link::new(&["alpha", "beta"]);
    l.with(0, |m, now, out| {
        m.publish(now, spec("Web", "_http._tcp", 80, &["x=y"]), out)
            .unwrap()
    });
    l.run_for(3000);
    let _ = l.boxes[1].m.search(l.now, Some("_http._tcp"));
    l.run_for(3000);
    assert!(web_in_search(&mut l));
    l
}

fn web_in_search(l: &mut Link) -> bool {
    let now = l.now;
    l.boxes[1]
        .m
        .search(now, Some("_http._tcp"))
        .iter()
        .any(|f| f.instance == "Web" && f.port == 80 && !f.addresses.is_empty())
}

/// Issue 9, item 5: one LAN host multicasts 30 services with TTL
/// 2^32-1 ten times a second for 20 s, of the type beta browses. TTLs are
/// capped; outside the 2 s after each of beta's queries its packets beyond
/// 5/s are dropped and its records beyond the global budget refused
/// (inside, its PTRs answer beta's question: they count as answers); it
/// never holds more than its quota of the cache. "Web" stays found
/// throughout.
#[test]
fn lan_flood_from_one_host_cannot_push_out_answers() {
    let mut l = web_found();
    let evil = SocketAddr::new("192.0.2.66".parse().unwrap(), 5353);
    for round in 0..200 {
        let p = flood(round, 30, HTTP, u32::MAX);
        l.inject(1, evil, &p);
        l.run_for(100);
        if round % 10 == 0 {
            assert!(web_in_search(&mut l), "round {round}");
        }
    }
    let m = &l.boxes[1].m;
    let s = m.stats();
    assert!(s.dropped_unsolicited > 0, "{s:?}");
    assert!(s.unsolicited_refused > 0, "{s:?}");
    assert!(s.ttl_capped > 0, "{s:?}");
    let held = m.cache.iter().filter(|e| e.from == evil.ip()).count();
    assert!(held <= MDNS_CACHE_PER_SOURCE, "{held}");
    assert!(m.cache.iter().all(|e| e.record.ttl <= MDNS_MAX_TTL));
    assert!(m.cache.next_expiry() <= Some(l.now + Duration::from_secs(4500)));
}

/// The same flood from a new (spoofed) source address each time, of a
/// type nobody asked for, for 60 s: the global budget lets 20 records a
/// second in, they fill the cache and churn among themselves; the records
/// that answered beta's queries stay.
#[test]
fn spoofed_unsolicited_flood_cannot_evict_answers() {
    let mut l = web_found();
    for round in 0..600u32 {
        let from = SocketAddr::new(
            format!("192.0.2.{}", 100 + round % 150).parse().unwrap(),
            5353,
        );
        let p = flood(round, 30, "_flood._tcp.local", u32::MAX);
        l.inject(1, from, &p);
        l.run_for(100);
        if round % 50 == 0 {
            assert!(web_in_search(&mut l), "round {round}");
        }
    }
    let s = l.boxes[1].m.stats();
    assert_eq!(s.cached as usize, MDNS_CACHE_SIZE);
    let budget = 60 * MDNS_UNSOLICITED_RECORDS_PER_SEC + MDNS_UNSOLICITED_RECORDS_BURST;
    let cached_from_flood = s.cache_evictions + s.cached as u64;
    assert!(cached_from_flood <= u64::from(budget) + 20, "{s:?}");
    assert!(s.unsolicited_refused > 10_000, "{s:?}");
    assert!(web_in_search(&mut l));
}

/// On the overlay (only members reach it) nothing is rate-limited as
/// unsolicited, and what comes from there is kept over LAN records.
#[test]
fn overlay_records_exempt_and_kept() {
    let mut l = Link::new(&["alpha", "beta"]);
    l.boxes[1].m.set_overlay(IF0, true);
    let member = SocketAddr::new("192.0.2.77".parse().unwrap(), 5353);
    for round in 0..20 {
        l.inject(1, member, &flood(round, 30, HTTP, 120));
    }
    let s = l.boxes[1].m.stats();
    assert_eq!((s.dropped_unsolicited, s.unsolicited_refused), (0, 0));
    assert_eq!(s.cached as usize, MDNS_CACHE_SIZE);
    assert!(l.boxes[1]
        .m
        .cache
        .iter()
        .all(|e| e.trust == cache::Trust::Overlay));
}

#[test]
fn passive_failure_observation_flushes_silent_service() {
    let mut l = Link::new(&["alpha", "beta"]);
    l.with(0, |m, now, out| {
        m.publish(now, spec("Web", "_http._tcp", 80, &[]), out)
            .unwrap()
    });
    l.run_for(3000);
    let _ = l.boxes[1].m.search(l.now, Some("_http._tcp"));
    l.run_for(3000);
    assert_eq!(l.boxes[1].m.search(l.now, Some("_http._tcp")).len(), 1);
    // alpha vanishes without goodbye; someone asks for its SRV twice.
    l.boxes[0].alive = false;
    l.run_for(2000);
    let q = query(0, &[("Web._http._tcp.local", TYPE_SRV, false)], vec![]);
    l.inject_all(querier(5353), &q);
    l.run_for(1000);
    l.inject_all(querier(5353), &q);
    l.run_for(9500);
    assert!(
        l.boxes[1].m.search(l.now, Some("_http._tcp")).is_empty(),
        "flushed per §10.5"
    );
}

#[test]
fn browse_queries_back_off() {
    let mut l = Link::new(&["alpha"]);
    l.boxes[0].m.browse(l.now, "_http._tcp").unwrap();
    l.run_for(40_000);
    let times: Vec<u64> = l
        .sent_by(0)
        .into_iter()
        .filter(|s| {
            !s.msg.is_response()
                && s.msg.authorities.is_empty()
                && s.msg
                    .questions
                    .iter()
                    .any(|q| q.name == name(HTTP) && q.qtype == TYPE_PTR)
        })
        .map(|s| s.at.millis())
        .collect();
    assert!(times[0] >= 20 && times[0] <= 120, "{times:?}");
    let gaps: Vec<u64> = times
        .windows(2)
        .map(|w| (w[1] - w[0] + 500) / 1000)
        .collect();
    assert_eq!(gaps, vec![1, 2, 4, 8, 16], "{times:?}");
}

#[test]
fn known_answers_in_our_queries() {
    let mut l = Link::new(&["alpha", "beta"]);
    l.with(0, |m, now, out| {
        m.publish(now, spec("Web", "_http._tcp", 80, &[]), out)
            .unwrap()
    });
    l.run_for(3000);
    l.boxes[1].m.browse(l.now, "_http._tcp").unwrap();
    l.run_for(20_000);
    let later: Vec<&Sent> = l
        .sent_by(1)
        .into_iter()
        .filter(|s| !s.msg.is_response() && s.msg.questions.iter().any(|q| q.name == name(HTTP)))
        .collect();
    assert!(later.len() >= 3);
    assert!(later
        .last()
        .unwrap()
        .msg
        .answers
        .iter()
        .any(|r| r.data == RData::Ptr(name("Web._http._tcp.local"))));
    // ... so alpha stays silent to them (nothing after its announcements but one answer).
    let answers = l
        .sent_by(0)
        .into_iter()
        .filter(|s| s.at > t(4000) && s.msg.is_response())
        .count();
    assert!(answers <= 1, "{answers}");
}

#[test]
fn reload_by_diff_touches_only_changes() {
    let mut l = Link::new(&["alpha"]);
    let a = spec("A", "_http._tcp", 80, &[]);
    let b = spec("B", "_http._tcp", 81, &[]);
    let errs = l.boxes[0]
        .m
        .set_services(l.now, &[a.clone(), b.clone()], &mut Collect::default());
    assert!(errs.is_empty());
    l.run_for(4000);
    let n0 = l.log.len();
    l.with(0, |m, now, out| {
        assert!(m.set_services(now, &[a.clone(), b.clone()], out).is_empty())
    });
    l.run_for(4000);
    assert_eq!(l.log.len(), n0, "unchanged services send nothing");
    let b2 = spec("B", "_http._tcp", 82, &["v=2"]);
    l.with(0, |m, now, out| {
        assert!(m
            .set_services(now, &[a.clone(), b2.clone()], out)
            .is_empty())
    });
    l.run_for(4000);
    let names = |s: &Sent| {
        s.msg
            .answers
            .iter()
            .map(|r| r.name.to_string())
            .collect::<Vec<_>>()
    };
    let changed: Vec<&Sent> = l.log[n0..].iter().collect();
    assert_eq!(changed.len(), 2, "two announcements of B");
    for s in &changed {
        assert!(
            names(s).iter().all(|n| !n.starts_with("A.")),
            "{:?}",
            names(s)
        );
        assert!(s
            .msg
            .answers
            .iter()
            .any(|r| matches!(&r.data, RData::Srv(x) if x.port == 82)));
    }
    let n1 = l.log.len();
    let bad = spec("C", "nope.nope", 1, &[]);
    l.with(0, |m, now, out| {
        let errs = m.set_services(now, &[a.clone(), bad.clone()], out);
        assert_eq!(errs, vec![("C".to_string(), MdnsError::InvalidType)]);
    });
    let bye = &l.log[n1..];
    assert_eq!(bye.len(), 1);
    assert!(bye[0]
        .msg
        .answers
        .iter()
        .all(|r| r.ttl == 0 && !r.name.to_string().starts_with("A.")));
    assert_eq!(l.boxes[0].m.published().len(), 1);
}

#[test]
fn off_link_and_malformed_dropped_and_counted() {
    let mut l = announced_box();
    let n0 = l.log.len();
    let q = query(0, &[("alpha.cloud.local", TYPE_A, false)], vec![]);
    l.inject(0, "10.9.9.9:5353".parse().unwrap(), &q);
    l.inject(0, "[2001:db8::1]:5353".parse().unwrap(), &q);
    assert_eq!(l.log.len(), n0);
    assert_eq!(l.boxes[0].m.stats().dropped_offlink, 2);
    // IPv6 link-local is on-link.
    l.inject(0, "[fe80::99]:5353".parse().unwrap(), &q);
    assert_eq!(l.log.len(), n0 + 1);
    let bad: [&[u8]; 4] = [
        &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1],
        &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, b'a'],
        &[0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1],
        &[1, 2, 3],
    ];
    for b in bad {
        l.inject(0, querier(5353), b);
    }
    assert_eq!(l.boxes[0].m.stats().dropped_malformed, 4);
    // Responses from a port other than 5353 are ignored.
    let resp = Message {
        flags: FLAG_QR,
        answers: vec![our_ptr(10)],
        ..Message::default()
    }
    .emit(512)
    .unwrap();
    l.inject(0, querier(1234), &resp);
    assert_eq!(l.boxes[0].m.stats().dropped_ignored, 1);
}

#[test]
fn answer_to_one_query_is_one_bounded_packet() {
    let mut l = Link::new(&["alpha"]);
    let big = "k=".to_string() + &"v".repeat(250);
    for i in 0..MDNS_MAX_SERVICES {
        let s = spec(
            &format!("svc{i}"),
            &format!("_t{i}._tcp"),
            1000 + i as u16,
            &[&big, &big],
        );
        l.with(0, |m, now, out| m.publish(now, s, out).unwrap());
    }
    assert_eq!(
        l.boxes[0].m.publish(
            l.now,
            spec("one-more", "_x._tcp", 1, &[]),
            &mut Collect::default()
        ),
        Err(MdnsError::TooManyServices)
    );
    l.run_for(5000);
    // Announcements split into several packets, each bounded.
    assert!(l.sent_by(0).iter().all(|s| s.len <= MDNS_MAX_PAYLOAD_V4));
    l.run_for(2000);
    let n0 = l.log.len();
    // One query naming every instance (ANY) and the type enumeration.
    let owned: Vec<String> = (0..MDNS_MAX_SERVICES)
        .map(|i| format!("svc{i}._t{i}._tcp.local"))
        .collect();
    let mut qs: Vec<(&str, u16, bool)> = owned
        .iter()
        .map(|s| (s.as_str(), TYPE_ANY, false))
        .collect();
    qs.push(("_services._dns-sd._udp.local", TYPE_PTR, false));
    l.inject(0, querier(5353), &query(0, &qs, vec![]));
    l.run_for(1000);
    let r = &l.log[n0..];
    // Unique answers at once, the shared enumeration after a delay: ≤ 2 packets, each bounded.
    assert!(!r.is_empty() && r.len() <= 2, "{}", r.len());
    assert!(r.iter().all(|s| s.len <= MDNS_MAX_PAYLOAD_V4));
    let enum_q = query(
        0,
        &[("_services._dns-sd._udp.local", TYPE_PTR, false)],
        vec![],
    );
    l.run_for(2000);
    let n1 = l.log.len();
    l.inject(0, querier(40000), &enum_q);
    assert_eq!(l.log.len() - n1, 1);
    assert!(l.log[n1].len <= MDNS_MAX_PAYLOAD_V4);
    assert_eq!(l.log[n1].msg.answers.len(), MDNS_MAX_SERVICES);
}

#[test]
fn remove_interface_says_goodbye() {
    let mut l = announced_box();
    let n0 = l.log.len();
    l.with(0, |m, now, out| m.remove_interface(now, IF0, out));
    let bye = &l.log[n0..];
    assert_eq!(bye.len(), 1);
    assert!(bye[0].msg.answers.iter().all(|r| r.ttl == 0));
    assert!(bye[0].msg.answers.iter().any(|r| r.rtype() == TYPE_A));
    assert_eq!(l.boxes[0].m.stats().interfaces, 0);
}

#[test]
fn probe_for_our_name_is_defended() {
    let mut l = announced_box();
    l.run_for(2000);
    let n0 = l.log.len();
    let inst = name("Web._http._tcp.local");
    let probe = Message {
        questions: vec![Question {
            name: inst.clone(),
            qtype: TYPE_ANY,
            qclass: CLASS_IN,
            unicast_response: false,
        }],
        authorities: vec![Record::new(
            inst.clone(),
            120,
            true,
            RData::Srv(Srv {
                priority: 0,
                weight: 0,
                port: 9,
                target: name("x.local"),
            }),
        )],
        ..Message::default()
    }
    .emit(1500)
    .unwrap();
    l.inject(0, querier(5353), &probe);
    let r = &l.log[n0..];
    assert_eq!(r.len(), 1, "immediate answer");
    assert!(r[0].msg.answers.iter().any(|a| a.rtype() == TYPE_SRV));
    // NSEC for the missing AAAA comes along with the host address.
    assert!(r[0]
        .msg
        .additionals
        .iter()
        .any(|a| matches!(&a.data, RData::Nsec(n) if n.has(TYPE_A) && !n.has(TYPE_AAAA))));
}

/// A capture from the namespace harness (`fuzz/corpus/dns_message`), if present.
fn capture(file: &str) -> Option<Vec<u8>> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus/dns_message")
        .join(file);
    let b = std::fs::read(&p).ok();
    if b.is_none() {
        crate::testutil::skip(file, &format!("capture {} not found", p.display()));
    }
    b
}

#[test]
fn real_avahi_announcement_and_goodbye() {
    let (Some(ann), Some(bye)) = (
        capture("avahi_announce_service.bin"),
        capture("avahi_goodbye_service.bin"),
    ) else {
        return;
    };
    let net = IpCidr {
        addr: "10.201.0.0".parse().unwrap(),
        prefix: 24,
    };
    let mut m = Mdns::new("node", "cloud", Instant::ZERO, 3);
    m.add_interface(IF0, &[net], &["10.201.0.9".parse().unwrap()], Instant::ZERO)
        .unwrap();
    let mut out = Collect::default();
    let avahi: SocketAddr = "10.201.0.1:5353".parse().unwrap();
    m.handle_packet(t(10), IF0, avahi, &ann, &mut out);
    let found = m.search(t(20), Some("_http._tcp"));
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f.instance, "Test Service");
    assert_eq!(f.host, "cyt2803n0a.local");
    assert_eq!(f.port, 8080);
    assert_eq!(f.addresses, vec!["10.201.0.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(f.txt, vec!["a=1", "path=/index.html"]);
    m.handle_packet(t(5000), IF0, avahi, &bye, &mut out);
    assert!(m.search(t(5001), Some("_http._tcp")).is_empty());
    m.handle_timeout(t(6001), &mut out);
    assert!(
        m.cache.iter().all(|e| e.record.rtype() == TYPE_A),
        "only the host A (TTL 120) stays"
    );
    assert_eq!(m.stats().dropped_malformed, 0);
}

#[test]
fn real_zeroconf_announcement_with_nsec() {
    let Some(ann) = capture("zeroconf_announce_additionals_nsec.bin") else {
        return;
    };
    let net = IpCidr {
        addr: "10.201.0.0".parse().unwrap(),
        prefix: 24,
    };
    let mut m = Mdns::new("node", "cloud", Instant::ZERO, 3);
    m.add_interface(IF0, &[net], &["10.201.0.9".parse().unwrap()], Instant::ZERO)
        .unwrap();
    let mut out = Collect::default();
    m.handle_packet(
        t(10),
        IF0,
        "10.201.0.3:5353".parse().unwrap(),
        &ann,
        &mut out,
    );
    let found = m.search(t(20), Some("_ipp._tcp"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].instance, "ZC Service");
    assert_eq!(found[0].port, 631);
    assert_eq!(
        found[0].addresses,
        vec!["10.201.0.3".parse::<IpAddr>().unwrap()]
    );
}
