//! The cache of other hosts' records (RFC 6762 §5.2, §7.1, §10).
//!
//! Invariants:
//! - At most `capacity` entries ([`MDNS_CACHE_SIZE`] in the engine); when
//!   full, the entry closest to expiry is evicted (the new record itself
//!   if it would expire first) and counted in [`Cache::evictions`].
//! - Only class IN records of types A, AAAA, PTR, SRV and TXT are kept,
//!   each bounded by the wire parser (name ≤ 255 bytes, RDATA ≤
//!   [`MDNS_MAX_RDATA`](crate::limits::MDNS_MAX_RDATA)).
//! - Entries are per interface: the same record seen on two links is two
//!   entries (§14: each link is its own namespace).
//!
//! Rules implemented:
//! - §10.1 goodbye: TTL 0 sets the entry to expire in one second.
//! - §10.2 cache-flush: a record with the bit set expires, one second
//!   later, the entries of the same name, type and class (same interface)
//!   received more than one second before it.
//! - §5.2 refresh: at 80, 85, 90 and 95 % of the TTL (plus 0–2 %
//!   jitter) an entry is due for a refresh query; [`Cache::due_refreshes`]
//!   hands them out and the caller decides whether anyone is interested.
//! - §7.1 known answers: [`Cache::known_answers`] lists entries with more
//!   than half their TTL left.
//! - §10.5 passive observation of failures: two or more multicast queries
//!   seen for an entry (not listing it as a known answer) and no answer
//!   within [`MDNS_POOF_WINDOW`] of the first flush it.

use super::wire::{
    Question, RData, Record, CLASS_IN, TYPE_A, TYPE_AAAA, TYPE_PTR, TYPE_SRV, TYPE_TXT,
};
use super::IfaceId;
use crate::limits::{MDNS_FLUSH_DELAY, MDNS_POOF_QUERIES, MDNS_POOF_WINDOW};
use crate::time::{Duration, Instant};

/// Refresh points in permille of the TTL (§5.2).
const REFRESH_PERMILLE: [u64; 4] = [800, 850, 900, 950];

/// One cached record.
#[derive(Clone, Debug)]
pub struct Entry {
    pub iface: IfaceId,
    /// The record; `ttl` is the TTL received (1 after a goodbye), `cache_flush` false.
    pub record: Record,
    pub received: Instant,
    pub expires: Instant,
    /// Set when the record is on its way out (goodbye, flush, poof): it
    /// is no longer listed or offered as a known answer.
    pub dying: bool,
    /// Refresh queries already due (0..=4).
    refreshes: u8,
    /// 0–20 permille added to each refresh point.
    jitter: u16,
    poof_count: u8,
    poof_first: Option<Instant>,
}

impl Entry {
    /// Seconds of TTL left at `now`.
    pub fn remaining(&self, now: Instant) -> u32 {
        u32::try_from(self.expires.since(now).as_secs()).unwrap_or(u32::MAX)
    }

    fn refresh_at(&self) -> Option<Instant> {
        let p = *REFRESH_PERMILLE.get(usize::from(self.refreshes))?;
        let ttl_ms = u64::from(self.record.ttl) * 1000;
        Some(self.received + Duration::from_millis(ttl_ms * (p + u64::from(self.jitter)) / 1000))
    }

    fn poof_at(&self) -> Option<Instant> {
        match self.poof_first {
            Some(t) if self.poof_count >= MDNS_POOF_QUERIES => Some(t + MDNS_POOF_WINDOW),
            _ => None,
        }
    }
}

/// What [`Cache::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    New,
    Refreshed,
    /// TTL 0: the entry now expires in one second.
    Goodbye,
    /// Not a cacheable record, a goodbye for an unknown record, or evicted at once.
    Ignored,
}

/// A refresh query the caller may send (§5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refresh {
    pub iface: IfaceId,
    pub record: Record,
}

/// A fixed-capacity record cache.
#[derive(Clone)]
pub struct Cache {
    entries: Vec<Entry>,
    capacity: usize,
    /// Entries evicted because the cache was full.
    pub evictions: u64,
}

/// Whether the cache keeps records of this type.
pub fn cacheable(r: &Record) -> bool {
    r.class == CLASS_IN
        && matches!(
            r.rtype(),
            TYPE_A | TYPE_AAAA | TYPE_PTR | TYPE_SRV | TYPE_TXT
        )
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache {
            entries: Vec::with_capacity(capacity),
            capacity,
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Live entries (not dying, not expired) on `iface` (any if `None`)
    /// with this name and type.
    pub fn lookup<'a>(
        &'a self,
        now: Instant,
        iface: Option<IfaceId>,
        name: &'a super::name::Name,
        rtype: u16,
    ) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| {
            !e.dying
                && e.expires > now
                && iface.is_none_or(|i| i == e.iface)
                && e.record.rtype() == rtype
                && e.record.name == *name
        })
    }

    /// Take in one record received in a response on `iface`.
    /// `jitter` (0–20) spreads the refresh points (§5.2).
    pub fn insert(&mut self, now: Instant, iface: IfaceId, r: &Record, jitter: u16) -> Inserted {
        if !cacheable(r) {
            return Inserted::Ignored;
        }
        // §10.2: the bit asserts this is the whole RRset.
        if r.cache_flush && r.ttl > 0 {
            let cutoff = now - MDNS_FLUSH_DELAY;
            for e in &mut self.entries {
                if e.iface == iface
                    && e.received < cutoff
                    && e.record.same_rrset(r)
                    && e.record.data != r.data
                {
                    e.expires = e.expires.min(now + MDNS_FLUSH_DELAY);
                    e.dying = true;
                }
            }
        }
        let existing = self
            .entries
            .iter_mut()
            .find(|e| e.iface == iface && e.record.same_data(r));
        if r.ttl == 0 {
            // §10.1: keep it one more second, then drop it.
            return match existing {
                Some(e) => {
                    e.record.ttl = 1;
                    e.received = now;
                    e.expires = e.expires.min(now + MDNS_FLUSH_DELAY);
                    e.dying = true;
                    e.refreshes = REFRESH_PERMILLE.len() as u8;
                    Inserted::Goodbye
                }
                None => Inserted::Ignored,
            };
        }
        let expires = now + Duration::from_secs(u64::from(r.ttl));
        if let Some(e) = existing {
            e.record.ttl = r.ttl;
            e.received = now;
            e.expires = expires;
            e.dying = false;
            e.refreshes = 0;
            e.jitter = jitter.min(20);
            e.poof_count = 0;
            e.poof_first = None;
            return Inserted::Refreshed;
        }
        self.expire(now);
        if self.entries.len() >= self.capacity {
            self.evictions += 1;
            let soonest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.expires)
                .map(|(i, e)| (i, e.expires));
            match soonest {
                Some((i, t)) if t <= expires => {
                    self.entries.swap_remove(i);
                }
                _ => return Inserted::Ignored,
            }
        }
        let mut record = r.clone();
        record.cache_flush = false;
        self.entries.push(Entry {
            iface,
            record,
            received: now,
            expires,
            dying: false,
            refreshes: 0,
            jitter: jitter.min(20),
            poof_count: 0,
            poof_first: None,
        });
        Inserted::New
    }

    /// §10.5: a multicast query for `q` was seen on `iface` with these known answers.
    pub fn observe_query(&mut self, now: Instant, iface: IfaceId, q: &Question, known: &[Record]) {
        if q.unicast_response {
            // Answers to QU queries are unicast: we could not see them.
            return;
        }
        for e in &mut self.entries {
            if e.iface != iface || e.dying || !q.matches(&e.record) {
                continue;
            }
            // Recently multicast: responders will not repeat it within 1 s.
            if now.since(e.received) < MDNS_FLUSH_DELAY {
                continue;
            }
            // Listed as known: responders will rightly stay silent.
            if known.iter().any(|k| k.same_data(&e.record)) {
                continue;
            }
            match e.poof_first {
                Some(t) if now.since(t) <= MDNS_POOF_WINDOW => {
                    e.poof_count = e.poof_count.saturating_add(1)
                }
                _ => {
                    e.poof_first = Some(now);
                    e.poof_count = 1;
                }
            }
        }
    }

    /// Drop expired and failed (§10.5) entries; returns how many went.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|e| e.expires > now && e.poof_at().is_none_or(|t| t > now));
        before - self.entries.len()
    }

    /// Remove every entry of an interface.
    pub fn remove_iface(&mut self, iface: IfaceId) {
        self.entries.retain(|e| e.iface != iface);
    }

    /// Next expiry or failure deadline.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.entries
            .iter()
            .flat_map(|e| [Some(e.expires), e.poof_at()])
            .flatten()
            .min()
    }

    /// Next refresh point of any entry.
    pub fn next_refresh(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter(|e| !e.dying)
            .filter_map(Entry::refresh_at)
            .min()
    }

    /// Entries whose refresh point passed; each point is handed out once.
    pub fn due_refreshes(&mut self, now: Instant) -> Vec<Refresh> {
        let mut due = Vec::new();
        for e in &mut self.entries {
            if e.dying {
                continue;
            }
            let mut hit = false;
            while e.refresh_at().is_some_and(|t| t <= now) {
                e.refreshes += 1;
                hit = true;
            }
            if hit {
                due.push(Refresh {
                    iface: e.iface,
                    record: e.record.clone(),
                });
            }
        }
        due
    }

    /// Known answers for a query we send (§7.1): live entries on `iface`
    /// answering `q` with more than half their TTL left, TTL set to what remains.
    pub fn known_answers(&self, now: Instant, iface: IfaceId, q: &Question) -> Vec<Record> {
        self.entries
            .iter()
            .filter(|e| e.iface == iface && !e.dying && q.matches(&e.record))
            .filter(|e| u64::from(e.remaining(now)) * 2 > u64::from(e.record.ttl))
            .map(|e| {
                let mut r = e.record.clone();
                r.ttl = e.remaining(now);
                r
            })
            .collect()
    }

    /// Addresses cached for a host name on `iface`.
    pub fn addresses(
        &self,
        now: Instant,
        iface: IfaceId,
        host: &super::name::Name,
    ) -> Vec<std::net::IpAddr> {
        let mut v = Vec::new();
        for e in self
            .lookup(now, Some(iface), host, TYPE_A)
            .chain(self.lookup(now, Some(iface), host, TYPE_AAAA))
        {
            match e.record.data {
                RData::A(a) => v.push(a.into()),
                RData::Aaaa(a) => v.push(a.into()),
                _ => {}
            }
        }
        v
    }
}

#[cfg(test)]
mod test {
    use super::super::name::Name;
    use super::super::wire::{RData, Srv};
    use super::*;

    fn a(host: &str, last: u8, ttl: u32, flush: bool) -> Record {
        Record::new(
            Name::parse_str(host).unwrap(),
            ttl,
            flush,
            RData::A([192, 0, 2, last].into()),
        )
    }

    const I: IfaceId = IfaceId(0);

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn ttl_expiry_and_refresh() {
        let mut c = Cache::new(4);
        assert_eq!(
            c.insert(t(0), I, &a("h.local", 1, 100, false), 0),
            Inserted::New
        );
        assert_eq!(
            c.insert(t(10), I, &a("H.LOCAL", 1, 100, false), 0),
            Inserted::Refreshed
        );
        assert_eq!(c.next_refresh(), Some(t(10 + 80_000)));
        assert!(c.due_refreshes(t(79_000)).is_empty());
        assert_eq!(c.due_refreshes(t(80_010)).len(), 1);
        assert_eq!(c.next_refresh(), Some(t(10 + 85_000)));
        // Late: all remaining points at once, reported once.
        assert_eq!(c.due_refreshes(t(99_000)).len(), 1);
        assert_eq!(c.next_refresh(), None);
        assert_eq!(c.next_expiry(), Some(t(100_010)));
        assert_eq!(c.expire(t(100_009)), 0);
        assert_eq!(c.expire(t(100_010)), 1);
        assert!(c.is_empty());
    }

    #[test]
    fn capacity_evicts_soonest_to_expire() {
        let mut c = Cache::new(3);
        c.insert(t(0), I, &a("a.local", 1, 50, false), 0);
        c.insert(t(0), I, &a("b.local", 1, 10, false), 0);
        c.insert(t(0), I, &a("c.local", 1, 90, false), 0);
        assert_eq!(
            c.insert(t(0), I, &a("d.local", 1, 70, false), 0),
            Inserted::New
        );
        assert_eq!(c.len(), 3);
        assert_eq!(c.evictions, 1);
        let b = Name::parse_str("b.local").unwrap();
        assert_eq!(c.lookup(t(0), None, &b, TYPE_A).count(), 0);
        // A record expiring before all others is not let in.
        assert_eq!(
            c.insert(t(0), I, &a("e.local", 1, 5, false), 0),
            Inserted::Ignored
        );
        assert_eq!(c.evictions, 2);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn goodbye_expires_in_one_second() {
        let mut c = Cache::new(4);
        c.insert(t(0), I, &a("h.local", 1, 120, true), 0);
        assert_eq!(
            c.insert(t(5000), I, &a("h.local", 2, 0, true), 0),
            Inserted::Ignored
        );
        assert_eq!(
            c.insert(t(5000), I, &a("h.local", 1, 0, true), 0),
            Inserted::Goodbye
        );
        let h = Name::parse_str("h.local").unwrap();
        assert_eq!(c.lookup(t(5000), None, &h, TYPE_A).count(), 0);
        assert_eq!(c.len(), 1);
        c.expire(t(6000));
        assert!(c.is_empty());
    }

    #[test]
    fn cache_flush_replaces_older_rrset_members() {
        let mut c = Cache::new(8);
        c.insert(t(0), I, &a("h.local", 1, 120, true), 0);
        c.insert(t(0), IfaceId(1), &a("h.local", 1, 120, true), 0);
        // Two addresses in one packet: both stay.
        c.insert(t(3000), I, &a("h.local", 2, 120, true), 0);
        c.insert(t(3000), I, &a("h.local", 3, 120, true), 0);
        let h = Name::parse_str("h.local").unwrap();
        let live: Vec<_> = c.lookup(t(3000), Some(I), &h, TYPE_A).collect();
        assert_eq!(live.len(), 2);
        // Other interface untouched.
        assert_eq!(c.lookup(t(3000), Some(IfaceId(1)), &h, TYPE_A).count(), 1);
        c.expire(t(4000));
        assert_eq!(c.len(), 3);
        // Without the bit nothing is flushed.
        c.insert(t(9000), I, &a("h.local", 4, 120, false), 0);
        assert_eq!(c.lookup(t(9000), Some(I), &h, TYPE_A).count(), 3);
    }

    #[test]
    fn passive_failure_observation() {
        let mut c = Cache::new(4);
        let srv = Record::new(
            Name::parse_str("x._http._tcp.local").unwrap(),
            120,
            true,
            RData::Srv(Srv {
                priority: 0,
                weight: 0,
                port: 80,
                target: Name::parse_str("h.local").unwrap(),
            }),
        );
        c.insert(t(0), I, &srv, 0);
        let q = Question {
            name: srv.name.clone(),
            qtype: TYPE_SRV,
            qclass: CLASS_IN,
            unicast_response: false,
        };
        // A query listing it as known does not count; nor does a QU one.
        c.observe_query(t(5000), I, &q, std::slice::from_ref(&srv));
        let qu = Question {
            unicast_response: true,
            ..q.clone()
        };
        c.observe_query(t(5000), I, &qu, &[]);
        assert_eq!(c.next_expiry(), Some(t(120_000)));
        c.observe_query(t(5000), I, &q, &[]);
        c.observe_query(t(6000), I, &q, &[]);
        assert_eq!(c.next_expiry(), Some(t(15_000)));
        assert_eq!(c.expire(t(14_999)), 0);
        assert_eq!(c.expire(t(15_000)), 1);
        // An answer in time resets the count.
        c.insert(t(20_000), I, &srv, 0);
        c.observe_query(t(25_000), I, &q, &[]);
        c.observe_query(t(26_000), I, &q, &[]);
        c.insert(t(27_000), I, &srv, 0);
        assert_eq!(c.expire(t(36_000)), 0);
    }

    #[test]
    fn known_answers_need_half_ttl() {
        let mut c = Cache::new(4);
        let r = Record::new(
            Name::parse_str("_http._tcp.local").unwrap(),
            100,
            false,
            RData::Ptr(Name::parse_str("x._http._tcp.local").unwrap()),
        );
        c.insert(t(0), I, &r, 0);
        let q = Question {
            name: r.name.clone(),
            qtype: TYPE_PTR,
            qclass: CLASS_IN,
            unicast_response: false,
        };
        let k = c.known_answers(t(10_000), I, &q);
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].ttl, 90);
        assert!(c.known_answers(t(50_000), I, &q).is_empty());
        assert!(c.known_answers(t(10_000), IfaceId(3), &q).is_empty());
    }
}
