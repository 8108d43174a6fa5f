//! What the engine lets in from responses it did not ask for.
//!
//! RFC 6762 lets any host on the link multicast responses at any time
//! (announcements, §8.3; answers to other hosts' queries, §6) and asks
//! queriers to cache them (§10). Nothing in the protocol bounds how many
//! records one host sends, so this module tells answers to our own
//! questions from the rest and meters the rest:
//!
//! - [`Guard::asked`] remembers the questions we sent (at most
//!   [`MDNS_MAX_ASKED`], the oldest forgotten first, keyed by a hash of
//!   the case-folded name: a collision only makes a record look
//!   solicited, which a host that sees our multicast queries can get by
//!   answering them anyway).
//! - [`Guard::answers`] marks each record of a response that answers one
//!   of them sent on the same interface within [`MDNS_ANSWER_WINDOW`],
//!   directly (name and type, §6) or as an additional record named by a
//!   PTR or SRV record so marked (RFC 6763 §12: SRV and TXT of a PTR's
//!   instance, addresses of an SRV's target).
//! - [`Guard::take_packet`]: a response with no such record is
//!   unsolicited and costs its source address a token ([`MDNS_UNSOLICITED_PER_SEC`],
//!   burst [`MDNS_UNSOLICITED_BURST`]). Sources are kept in a fixed table of
//!   [`MDNS_UNSOLICITED_SOURCES`]; a slot is reused only once idle long
//!   enough for its bucket to be full again (it then holds nothing a new
//!   bucket would not), and while none is, new sources share one more
//!   bucket: spoofing many addresses buys at most one bucket per slot.
//! - [`Guard::take_record`]: each record an unsolicited LAN response would
//!   add to the cache costs a token of one budget for all sources
//!   ([`MDNS_UNSOLICITED_RECORDS_PER_SEC`], burst
//!   [`MDNS_UNSOLICITED_RECORDS_BURST`]), so spoofed source addresses
//!   cannot flood the cache past it either.
//!
//! Fixed size; time comes in as an argument; no input can make it panic.

use std::net::IpAddr;

use super::name::Name;
use super::wire::{Message, RData, Record, TYPE_ANY};
use super::IfaceId;
use crate::limits::{
    MDNS_ANSWER_WINDOW, MDNS_MAX_ASKED, MDNS_UNSOLICITED_BURST, MDNS_UNSOLICITED_PER_SEC,
    MDNS_UNSOLICITED_RECORDS_BURST, MDNS_UNSOLICITED_RECORDS_PER_SEC, MDNS_UNSOLICITED_SOURCES,
};
use crate::time::{Duration, Instant, TokenBucket};

/// A question we sent.
#[derive(Clone, Debug)]
struct Asked {
    iface: IfaceId,
    name: u64,
    qtype: u16,
    at: Instant,
}

/// A source of unsolicited responses and its bucket.
#[derive(Clone, Debug)]
struct Source {
    addr: IpAddr,
    bucket: TokenBucket,
    last: Instant,
}

/// Recent questions and the unsolicited-response limits.
#[derive(Clone, Debug)]
pub struct Guard {
    asked: heapless::Vec<Asked, MDNS_MAX_ASKED>,
    sources: heapless::Vec<Source, MDNS_UNSOLICITED_SOURCES>,
    /// Shared by new sources while every slot is busy.
    overflow: TokenBucket,
    /// New cache entries from unsolicited LAN responses, all sources.
    records: TokenBucket,
}

/// FNV-1a of the case-folded name.
fn name_key(n: &Name) -> u64 {
    struct Fnv(u64);
    impl std::hash::Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    std::hash::Hash::hash(n, &mut h);
    h.0
}

/// The name a PTR or SRV record points to.
fn target(r: &Record) -> Option<&Name> {
    match &r.data {
        RData::Ptr(n) => Some(n),
        RData::Srv(s) => Some(&s.target),
        _ => None,
    }
}

/// Also mark the records named by a marked PTR or SRV record, in two
/// steps (PTR -> SRV/TXT -> A/AAAA, RFC 6763 §12). `marked` has one flag
/// per record.
pub(super) fn mark_additionals(records: &[&Record], marked: &mut [bool]) {
    for _ in 0..2 {
        let targets: Vec<u64> = records
            .iter()
            .zip(marked.iter())
            .filter(|(_, m)| **m)
            .filter_map(|(r, _)| target(r).map(name_key))
            .collect();
        if targets.is_empty() {
            return;
        }
        for (r, m) in records.iter().zip(marked.iter_mut()) {
            if !*m && targets.contains(&name_key(&r.name)) {
                *m = true;
            }
        }
    }
}

/// A source slot idle this long has a full bucket again.
fn idle() -> Duration {
    Duration::from_millis(
        1000 * u64::from(MDNS_UNSOLICITED_BURST) / u64::from(MDNS_UNSOLICITED_PER_SEC.max(1)),
    )
}

impl Guard {
    pub fn new(now: Instant) -> Guard {
        Guard {
            asked: heapless::Vec::new(),
            sources: heapless::Vec::new(),
            overflow: TokenBucket::new(MDNS_UNSOLICITED_PER_SEC, MDNS_UNSOLICITED_BURST, now),
            records: TokenBucket::new(
                MDNS_UNSOLICITED_RECORDS_PER_SEC,
                MDNS_UNSOLICITED_RECORDS_BURST,
                now,
            ),
        }
    }

    /// We sent a question for `name`, type `qtype`, on `iface`.
    pub fn asked(&mut self, now: Instant, iface: IfaceId, name: &Name, qtype: u16) {
        let a = Asked {
            iface,
            name: name_key(name),
            qtype,
            at: now,
        };
        let same = |x: &Asked| x.iface == a.iface && x.name == a.name && x.qtype == a.qtype;
        if let Some(x) = self.asked.iter_mut().find(|x| same(x)) {
            x.at = now;
        } else if let Err(a) = self.asked.push(a) {
            if let Some(oldest) = self.asked.iter_mut().min_by_key(|x| x.at) {
                *oldest = a;
            }
        }
    }

    fn was_asked(&self, now: Instant, iface: IfaceId, r: &Record) -> bool {
        let key = name_key(&r.name);
        self.asked.iter().any(|a| {
            a.iface == iface
                && now.since(a.at) <= MDNS_ANSWER_WINDOW
                && a.name == key
                && (a.qtype == r.rtype() || a.qtype == TYPE_ANY)
        })
    }

    /// For each record of `msg` (answers, then additionals): whether it
    /// answers a question we sent on `iface` lately, directly or as an
    /// additional record of one that does (see the module doc).
    pub fn answers(&self, now: Instant, iface: IfaceId, msg: &Message) -> Vec<bool> {
        let records: Vec<&Record> = msg.answers.iter().chain(&msg.additionals).collect();
        let mut marked: Vec<bool> = records
            .iter()
            .map(|r| self.was_asked(now, iface, r))
            .collect();
        mark_additionals(&records, &mut marked);
        marked
    }

    /// One unsolicited response from `from`: whether it is within its
    /// source's rate.
    pub fn take_packet(&mut self, now: Instant, from: IpAddr) -> bool {
        if let Some(s) = self.sources.iter_mut().find(|s| s.addr == from) {
            s.last = now;
            return s.bucket.take(now);
        }
        let fresh = Source {
            addr: from,
            bucket: TokenBucket::new(MDNS_UNSOLICITED_PER_SEC, MDNS_UNSOLICITED_BURST, now),
            last: now,
        };
        let fresh = match self.sources.push(fresh) {
            Ok(()) => return self.sources.last_mut().is_some_and(|s| s.bucket.take(now)),
            Err(f) => f,
        };
        let idle_slot = self
            .sources
            .iter_mut()
            .filter(|s| now.since(s.last) >= idle())
            .min_by_key(|s| s.last);
        match idle_slot {
            Some(s) => {
                *s = fresh;
                s.bucket.take(now)
            }
            None => self.overflow.take(now),
        }
    }

    /// One new record from an unsolicited LAN response: whether the
    /// budget of all sources allows caching it.
    pub fn take_record(&mut self, now: Instant) -> bool {
        self.records.take(now)
    }
}

#[cfg(test)]
mod test {
    use super::super::wire::{Srv, TYPE_A, TYPE_PTR, TYPE_SRV};
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn name(s: &str) -> Name {
        Name::parse_str(s).unwrap()
    }

    fn rec(n: &str, data: RData) -> Record {
        Record::new(name(n), 120, false, data)
    }

    const I: IfaceId = IfaceId(0);

    #[test]
    fn answers_to_our_questions_and_their_additionals() {
        let mut g = Guard::new(t(0));
        g.asked(t(1000), I, &name("_HTTP._tcp.local"), TYPE_PTR);
        let msg = Message {
            answers: vec![
                rec("_http._tcp.local", RData::Ptr(name("Web._http._tcp.local"))),
                rec("_ipp._tcp.local", RData::Ptr(name("P._ipp._tcp.local"))),
            ],
            additionals: vec![
                rec(
                    "web._http._tcp.local",
                    RData::Srv(Srv {
                        priority: 0,
                        weight: 0,
                        port: 80,
                        target: name("h.local"),
                    }),
                ),
                rec("h.local", RData::A([192, 0, 2, 7].into())),
                rec("p._ipp._tcp.local", RData::A([192, 0, 2, 8].into())),
                rec("x.local", RData::A([192, 0, 2, 9].into())),
            ],
            ..Message::default()
        };
        let want = [true, false, true, true, false, false];
        assert_eq!(g.answers(t(1100), I, &msg), want);
        // Another interface, or too late: nothing is an answer.
        assert_eq!(g.answers(t(1100), IfaceId(1), &msg), [false; 6]);
        let late = t(1000) + MDNS_ANSWER_WINDOW + Duration::from_millis(1);
        assert_eq!(g.answers(late, I, &msg), [false; 6]);
        // Type must match (ANY matches all).
        g.asked(t(5000), I, &name("x.local"), TYPE_SRV);
        assert!(!g.answers(t(5000), I, &msg)[5]);
        g.asked(t(5000), I, &name("x.local"), TYPE_ANY);
        assert!(g.answers(t(5000), I, &msg)[5]);
    }

    #[test]
    fn asked_is_bounded_and_forgets_the_oldest() {
        let mut g = Guard::new(t(0));
        for i in 0..(MDNS_MAX_ASKED as u64 + 10) {
            let n = Name::from_labels([format!("h{i}").as_str(), "local"]).unwrap();
            g.asked(t(i), I, &n, TYPE_A);
        }
        assert_eq!(g.asked.len(), MDNS_MAX_ASKED);
        let a = |n: &str| rec(n, RData::A([192, 0, 2, 1].into()));
        assert!(!g.was_asked(t(100), I, &a("h0.local")));
        assert!(g.was_asked(t(100), I, &a("H73.local")));
    }

    #[test]
    fn per_source_rate_and_shared_overflow() {
        let mut g = Guard::new(t(0));
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0xc000_0200 + i));
        let burst = MDNS_UNSOLICITED_BURST as usize;
        // One source: its burst, then its rate.
        assert_eq!(
            (0..100).filter(|_| g.take_packet(t(0), ip(1))).count(),
            burst
        );
        assert!(!g.take_packet(t(100), ip(1)));
        assert!(g.take_packet(t(200), ip(1)));
        // A busy table: new sources share one bucket, whatever their number.
        for i in 2..=MDNS_UNSOLICITED_SOURCES as u32 {
            assert!(g.take_packet(t(300), ip(i)));
        }
        let spoofed = (1000..2000)
            .filter(|i| g.take_packet(t(300), ip(*i)))
            .count();
        assert_eq!(spoofed, burst);
        // A slot idle long enough is reused for a new source.
        let later = t(300) + idle();
        assert!(g.take_packet(later, ip(5000)));
        assert!(g.sources.iter().any(|s| s.addr == ip(5000)));
        assert_eq!(g.sources.len(), MDNS_UNSOLICITED_SOURCES);
    }

    #[test]
    fn record_budget() {
        let mut g = Guard::new(t(0));
        let n = MDNS_UNSOLICITED_RECORDS_BURST as usize;
        assert_eq!((0..1000).filter(|_| g.take_record(t(0))).count(), n);
        let per_sec = MDNS_UNSOLICITED_RECORDS_PER_SEC as usize;
        assert_eq!(
            (0..1000).filter(|_| g.take_record(t(1000))).count(),
            per_sec
        );
    }
}
