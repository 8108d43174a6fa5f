//! Query scheduling for browsing and resolving (RFC 6762 §5.2, RFC 6763 §4, §12).
//!
//! - Continuous querying (§5.2): a browsed service type is queried first
//!   after a random 20–120 ms, then at intervals doubling from
//!   [`MDNS_BROWSE_FIRST_INTERVAL`] up to [`MDNS_BROWSE_MAX_INTERVAL`].
//!   The engine adds known answers from the cache (§7.1).
//! - One-shot resolves: SRV/TXT of a found instance, A/AAAA of its host,
//!   asked at once, then retried 1 s, 2 s later, [`MDNS_RESOLVE_TRIES`]
//!   times at most; an answer cancels them.
//!
//! Bounded: [`MDNS_MAX_BROWSES`] browses (the least recently used is
//! dropped for a new one) and [`MDNS_MAX_RESOLVES`] resolves (new ones are
//! refused when full). No IO and no clock: the engine turns the due
//! questions into packets.

use super::name::Name;
use super::wire::{Question, Record, CLASS_IN, TYPE_PTR};
use crate::limits::{
    MDNS_BROWSE_FIRST_INTERVAL, MDNS_BROWSE_MAX_INTERVAL, MDNS_MAX_BROWSES, MDNS_MAX_RESOLVES,
    MDNS_RESOLVE_TRIES,
};
use crate::time::{Duration, Instant};

#[derive(Clone)]
struct Browse {
    service_type: Name,
    next: Instant,
    interval: Duration,
    last_used: Instant,
}

#[derive(Clone)]
struct Resolve {
    name: Name,
    qtype: u16,
    next: Instant,
    tries: u8,
}

/// Browses and resolves in progress.
#[derive(Clone, Default)]
pub struct Browser {
    browses: Vec<Browse>,
    resolves: Vec<Resolve>,
}

impl Browser {
    pub fn new() -> Browser {
        Browser::default()
    }

    /// Start (or keep) continuous querying for a type; `first` is the
    /// random initial delay (20–120 ms, chosen by the caller).
    pub fn browse(&mut self, now: Instant, service_type: &Name, first: Duration) {
        if let Some(b) = self
            .browses
            .iter_mut()
            .find(|b| b.service_type == *service_type)
        {
            b.last_used = now;
            return;
        }
        if self.browses.len() >= MDNS_MAX_BROWSES {
            if let Some(i) = self
                .browses
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.last_used)
                .map(|(i, _)| i)
            {
                self.browses.swap_remove(i);
            }
        }
        self.browses.push(Browse {
            service_type: service_type.clone(),
            next: now + first,
            interval: MDNS_BROWSE_FIRST_INTERVAL,
            last_used: now,
        });
    }

    pub fn is_browsing(&self, service_type: &Name) -> bool {
        self.browses.iter().any(|b| b.service_type == *service_type)
    }

    pub fn browsing(&self) -> impl Iterator<Item = &Name> {
        self.browses.iter().map(|b| &b.service_type)
    }

    pub fn count(&self) -> usize {
        self.browses.len()
    }

    /// Restart every browse from the first interval (a new link came up).
    pub fn restart(&mut self, now: Instant, first: Duration) {
        for b in &mut self.browses {
            b.next = now + first;
            b.interval = MDNS_BROWSE_FIRST_INTERVAL;
        }
    }

    /// Ask `qtype` of `name` once (with retries) unless already asked.
    pub fn resolve(&mut self, now: Instant, name: &Name, qtype: u16) {
        if self.resolves.len() >= MDNS_MAX_RESOLVES
            || self
                .resolves
                .iter()
                .any(|r| r.qtype == qtype && r.name == *name)
        {
            return;
        }
        self.resolves.push(Resolve {
            name: name.clone(),
            qtype,
            next: now,
            tries: 0,
        });
    }

    /// A record arrived: resolves it answers are done.
    pub fn answered(&mut self, r: &Record) {
        self.resolves
            .retain(|x| !(x.qtype == r.rtype() && x.name == r.name));
    }

    pub fn poll_at(&self) -> Option<Instant> {
        let b = self.browses.iter().map(|b| b.next);
        let r = self.resolves.iter().map(|r| r.next);
        b.chain(r).min()
    }

    /// Questions due at `now`, advancing their schedules.
    pub fn due(&mut self, now: Instant) -> Vec<Question> {
        let mut qs = Vec::new();
        for b in &mut self.browses {
            if b.next <= now {
                qs.push(question(&b.service_type, TYPE_PTR));
                b.next = now + b.interval;
                b.interval = (b.interval * 2).min(MDNS_BROWSE_MAX_INTERVAL);
            }
        }
        for r in &mut self.resolves {
            if r.next <= now {
                qs.push(question(&r.name, r.qtype));
                r.next = now + Duration::from_secs(1 << r.tries.min(10));
                r.tries += 1;
            }
        }
        // The last try has been sent: give up (a later search asks again).
        self.resolves.retain(|r| r.tries < MDNS_RESOLVE_TRIES);
        qs
    }
}

fn question(name: &Name, qtype: u16) -> Question {
    Question {
        name: name.clone(),
        qtype,
        qclass: CLASS_IN,
        unicast_response: false,
    }
}

#[cfg(test)]
mod test {
    use super::super::wire::{RData, TYPE_SRV};
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn browse_backoff_doubles_to_one_hour() {
        let ty = Name::parse_str("_http._tcp.local").unwrap();
        let mut b = Browser::new();
        b.browse(t(0), &ty, Duration::from_millis(50));
        assert_eq!(b.poll_at(), Some(t(50)));
        assert!(b.due(t(49)).is_empty());
        let mut sent = Vec::new();
        let mut now = t(0);
        for _ in 0..20 {
            now = b.poll_at().unwrap();
            let q = b.due(now);
            assert_eq!(q.len(), 1);
            assert_eq!(q[0].qtype, TYPE_PTR);
            sent.push(now.millis());
        }
        let gaps: Vec<u64> = sent.windows(2).map(|w| (w[1] - w[0]) / 1000).collect();
        assert_eq!(
            &gaps[..13],
            &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600]
        );
        assert!(gaps[13..].iter().all(|&g| g == 3600));
        // Browsing again does not reset the backoff.
        b.browse(now, &ty, Duration::ZERO);
        assert_eq!(b.poll_at(), Some(now + Duration::from_secs(3600)));
        b.restart(now, Duration::from_millis(20));
        assert_eq!(b.poll_at(), Some(now + Duration::from_millis(20)));
    }

    #[test]
    fn browses_bounded_lru() {
        let mut b = Browser::new();
        for i in 0..MDNS_MAX_BROWSES + 3 {
            let ty = Name::from_labels([format!("_s{i}").as_str(), "_tcp", "local"]).unwrap();
            b.browse(t(i as u64), &ty, Duration::ZERO);
        }
        assert_eq!(b.count(), MDNS_MAX_BROWSES);
        assert!(!b.is_browsing(&Name::parse_str("_s0._tcp.local").unwrap()));
        assert!(b.is_browsing(&Name::parse_str("_s3._tcp.local").unwrap()));
    }

    #[test]
    fn resolve_retries_then_gives_up_or_is_answered() {
        let n = Name::parse_str("x._http._tcp.local").unwrap();
        let mut b = Browser::new();
        b.resolve(t(0), &n, TYPE_SRV);
        b.resolve(t(0), &n, TYPE_SRV);
        let mut times = Vec::new();
        while let Some(at) = b.poll_at() {
            let q = b.due(at);
            times.push((at.millis(), q.len()));
            assert!(times.len() < 10);
        }
        assert_eq!(times, vec![(0, 1), (1000, 1), (3000, 1)]);
        b.resolve(t(5000), &n, TYPE_SRV);
        assert_eq!(b.due(t(5000)).len(), 1);
        b.answered(&Record::new(
            n.clone(),
            120,
            true,
            RData::Srv(super::super::wire::Srv {
                priority: 0,
                weight: 0,
                port: 1,
                target: n.clone(),
            }),
        ));
        assert_eq!(b.poll_at(), None);
    }
}
