//! The cache of other hosts' records (RFC 6762 §5.2, §7.1, §10).
//!
//! Invariants:
//! - At most `capacity` entries ([`MDNS_CACHE_SIZE`] in the engine).
//! - Every entry carries its [`Origin`]: interface, source address and
//!   [`Trust`]. When the cache is full, the least trusted entry goes, the
//!   one closest to expiry among equals: unsolicited records from the LAN
//!   first, then LAN answers to our own queries, records of this micro
//!   cloud (the overlay) last. A new record ranked below every entry is
//!   refused. Counted in [`Cache::evictions`] and [`Cache::refused`].
//!   Trust only rises: a copy received with more trust raises the entry's,
//!   and so does a question we send that it answers ([`Cache::promote`]).
//! - A LAN source holds at most `per_source` entries
//!   ([`MDNS_CACHE_PER_SOURCE`]); a record beyond that takes the place of
//!   that source's own lowest-ranked entry (or is refused), so a flood from
//!   one host never displaces another host's records, whatever their TTLs.
//!   An entry counts against the source that first sent it. (A host may
//!   spoof many source addresses on its link: then what bounds its flood
//!   is the trust ranking and the guard's budget for unsolicited records.)
//! - TTLs are capped at [`MDNS_MAX_TTL`] (4500 s) on receipt, counted in
//!   [`Cache::ttl_capped`]: RFC 6762 §10 recommends 120 s for host records
//!   and 75 minutes for the rest, and Apple's mDNSResponder caps multicast
//!   TTLs at 4500 s, so a legitimate record is at worst refreshed sooner,
//!   while one with TTL 2^32-1 can no longer sit in the cache for 136 years.
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

use std::net::IpAddr;

use super::name::Name;
use super::wire::{
    Question, RData, Record, CLASS_IN, TYPE_A, TYPE_AAAA, TYPE_PTR, TYPE_SRV, TYPE_TXT,
};
use super::IfaceId;
#[cfg(doc)]
use crate::limits::{MDNS_CACHE_PER_SOURCE, MDNS_CACHE_SIZE};
use crate::limits::{MDNS_FLUSH_DELAY, MDNS_MAX_TTL, MDNS_POOF_QUERIES, MDNS_POOF_WINDOW};
use crate::time::{Duration, Instant};

/// Refresh points in permille of the TTL (§5.2).
const REFRESH_PERMILLE: [u64; 4] = [800, 850, 900, 950];

/// How far a cached record is trusted; the lowest is evicted first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trust {
    /// From the LAN, not answering a question we asked: announcements
    /// (§8.3), answers to other hosts' queries, floods.
    Unsolicited,
    /// From the LAN, answering a question we sent moments before.
    Answer,
    /// Received on the overlay: a member of this micro cloud.
    Overlay,
}

/// Where a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub iface: IfaceId,
    /// Source address of the response.
    pub from: IpAddr,
    pub trust: Trust,
}

/// One cached record.
#[derive(Clone, Debug)]
pub struct Entry {
    pub iface: IfaceId,
    /// Source of the response that first brought it.
    pub from: IpAddr,
    /// The highest trust any copy of it was received with.
    pub trust: Trust,
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
    /// Not a cacheable record, or a goodbye for an unknown record.
    Ignored,
    /// Full (or the source at its quota) of entries ranked above it.
    Refused,
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
    per_source: usize,
    /// Entries evicted because the cache was full or their source at its quota.
    pub evictions: u64,
    /// New records not cached because everything there ranked above them.
    pub refused: u64,
    /// Records received with a TTL above [`MDNS_MAX_TTL`].
    pub ttl_capped: u64,
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
    /// A cache of `capacity` entries, at most `per_source` of them from
    /// one LAN source address.
    pub fn new(capacity: usize, per_source: usize) -> Cache {
        Cache {
            entries: Vec::with_capacity(capacity),
            capacity,
            per_source,
            evictions: 0,
            refused: 0,
            ttl_capped: 0,
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
        name: &'a Name,
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

    /// Whether `r` (same name, type, class and data) is cached on `iface`.
    pub fn contains(&self, iface: IfaceId, r: &Record) -> bool {
        self.entries
            .iter()
            .any(|e| e.iface == iface && e.record.same_data(r))
    }

    /// Take in one record received in a response from `origin`.
    /// `jitter` (0–20) spreads the refresh points (§5.2).
    pub fn insert(&mut self, now: Instant, origin: Origin, r: &Record, jitter: u16) -> Inserted {
        if !cacheable(r) {
            return Inserted::Ignored;
        }
        let iface = origin.iface;
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
        if r.ttl > MDNS_MAX_TTL {
            self.ttl_capped += 1;
        }
        let ttl = r.ttl.min(MDNS_MAX_TTL);
        let expires = now + Duration::from_secs(u64::from(ttl));
        if let Some(e) = existing {
            e.record.ttl = ttl;
            e.trust = e.trust.max(origin.trust);
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
        // A LAN source at its quota makes room among its own entries only.
        let lan = |e: &Entry| e.trust < Trust::Overlay && e.from == origin.from;
        let at_quota = origin.trust < Trust::Overlay
            && self.entries.iter().filter(|e| lan(e)).count() >= self.per_source;
        if at_quota || self.entries.len() >= self.capacity {
            let lowest = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !at_quota || lan(e))
                .min_by_key(|(_, e)| (e.trust, e.expires))
                .map(|(i, e)| (i, (e.trust, e.expires)));
            match lowest {
                Some((i, rank)) if rank <= (origin.trust, expires) => {
                    self.entries.swap_remove(i);
                    self.evictions += 1;
                }
                _ => {
                    self.refused += 1;
                    return Inserted::Refused;
                }
            }
        }
        let mut record = r.clone();
        record.cache_flush = false;
        record.ttl = ttl;
        self.entries.push(Entry {
            iface,
            from: origin.from,
            trust: origin.trust,
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

    /// We are sending `q` on `iface`: the entries answering it, and their
    /// additional records (SRV/TXT of a PTR's instance, addresses of an
    /// SRV's target: RFC 6763 §12), now rank as answers to our query.
    /// A record first heard in an announcement (§8.3) is listed as a known
    /// answer (§7.1) and so never sent to us again in answer: without
    /// this, it would stay [`Trust::Unsolicited`] until its refresh.
    pub fn promote(&mut self, iface: IfaceId, q: &Question) {
        let here: Vec<&Record> = self
            .entries
            .iter()
            .filter(|e| e.iface == iface)
            .map(|e| &e.record)
            .collect();
        let mut marked: Vec<bool> = here.iter().map(|r| q.matches(r)).collect();
        super::guard::mark_additionals(&here, &mut marked);
        let here = self.entries.iter_mut().filter(|e| e.iface == iface);
        for (e, m) in here.zip(marked) {
            if m {
                e.trust = e.trust.max(Trust::Answer);
            }
        }
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
    pub fn addresses(&self, now: Instant, iface: IfaceId, host: &Name) -> Vec<std::net::IpAddr> {
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

    /// A LAN answer from 192.0.2.9 on `iface`.
    fn o(iface: IfaceId) -> Origin {
        from(iface, 9, Trust::Answer)
    }

    fn from(iface: IfaceId, host: u8, trust: Trust) -> Origin {
        Origin {
            iface,
            from: [192, 0, 2, host].into(),
            trust,
        }
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn ttl_expiry_and_refresh() {
        let mut c = Cache::new(4, 64);
        assert_eq!(
            c.insert(t(0), o(I), &a("h.local", 1, 100, false), 0),
            Inserted::New
        );
        assert_eq!(
            c.insert(t(10), o(I), &a("H.LOCAL", 1, 100, false), 0),
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
        let mut c = Cache::new(3, 64);
        c.insert(t(0), o(I), &a("a.local", 1, 50, false), 0);
        c.insert(t(0), o(I), &a("b.local", 1, 10, false), 0);
        c.insert(t(0), o(I), &a("c.local", 1, 90, false), 0);
        assert_eq!(
            c.insert(t(0), o(I), &a("d.local", 1, 70, false), 0),
            Inserted::New
        );
        assert_eq!(c.len(), 3);
        assert_eq!(c.evictions, 1);
        let b = Name::parse_str("b.local").unwrap();
        assert_eq!(c.lookup(t(0), None, &b, TYPE_A).count(), 0);
        // A record expiring before all others is not let in.
        assert_eq!(
            c.insert(t(0), o(I), &a("e.local", 1, 5, false), 0),
            Inserted::Refused
        );
        assert_eq!((c.evictions, c.refused), (1, 1));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn goodbye_expires_in_one_second() {
        let mut c = Cache::new(4, 64);
        c.insert(t(0), o(I), &a("h.local", 1, 120, true), 0);
        assert_eq!(
            c.insert(t(5000), o(I), &a("h.local", 2, 0, true), 0),
            Inserted::Ignored
        );
        assert_eq!(
            c.insert(t(5000), o(I), &a("h.local", 1, 0, true), 0),
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
        let mut c = Cache::new(8, 64);
        c.insert(t(0), o(I), &a("h.local", 1, 120, true), 0);
        c.insert(t(0), o(IfaceId(1)), &a("h.local", 1, 120, true), 0);
        // Two addresses in one packet: both stay.
        c.insert(t(3000), o(I), &a("h.local", 2, 120, true), 0);
        c.insert(t(3000), o(I), &a("h.local", 3, 120, true), 0);
        let h = Name::parse_str("h.local").unwrap();
        let live: Vec<_> = c.lookup(t(3000), Some(I), &h, TYPE_A).collect();
        assert_eq!(live.len(), 2);
        // Other interface untouched.
        assert_eq!(c.lookup(t(3000), Some(IfaceId(1)), &h, TYPE_A).count(), 1);
        c.expire(t(4000));
        assert_eq!(c.len(), 3);
        // Without the bit nothing is flushed.
        c.insert(t(9000), o(I), &a("h.local", 4, 120, false), 0);
        assert_eq!(c.lookup(t(9000), Some(I), &h, TYPE_A).count(), 3);
    }

    #[test]
    fn passive_failure_observation() {
        let mut c = Cache::new(4, 64);
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
        c.insert(t(0), o(I), &srv, 0);
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
        c.insert(t(20_000), o(I), &srv, 0);
        c.observe_query(t(25_000), I, &q, &[]);
        c.observe_query(t(26_000), I, &q, &[]);
        c.insert(t(27_000), o(I), &srv, 0);
        assert_eq!(c.expire(t(36_000)), 0);
    }

    #[test]
    fn known_answers_need_half_ttl() {
        let mut c = Cache::new(4, 64);
        let r = Record::new(
            Name::parse_str("_http._tcp.local").unwrap(),
            100,
            false,
            RData::Ptr(Name::parse_str("x._http._tcp.local").unwrap()),
        );
        c.insert(t(0), o(I), &r, 0);
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

    #[test]
    fn ttls_capped_on_receipt() {
        let mut c = Cache::new(4, 64);
        c.insert(t(0), o(I), &a("h.local", 1, u32::MAX, false), 0);
        c.insert(t(0), o(I), &a("h.local", 2, MDNS_MAX_TTL, false), 0);
        assert_eq!(c.ttl_capped, 1);
        assert!(c.iter().all(|e| e.record.ttl == MDNS_MAX_TTL));
        let end = u64::from(MDNS_MAX_TTL) * 1000;
        assert_eq!(c.next_expiry(), Some(t(end)));
        // A refresh is capped too.
        c.insert(t(1000), o(I), &a("h.local", 1, u32::MAX - 1, false), 0);
        assert_eq!(c.ttl_capped, 2);
        assert_eq!(c.expire(t(end)), 1);
        assert_eq!(c.expire(t(end + 1000)), 1);
    }

    #[test]
    fn full_cache_evicts_the_least_trusted_first() {
        let mut c = Cache::new(4, 64);
        let legit = from(I, 1, Trust::Answer);
        let cloud = from(I, 2, Trust::Overlay);
        c.insert(t(0), legit, &a("web.local", 1, 120, false), 0);
        c.insert(t(0), cloud, &a("box.c.local", 1, 10, false), 0);
        // Unsolicited records from many (spoofed) sources, huge TTLs.
        for i in 0..50u8 {
            let r = a(&format!("x{i}.local"), i, u32::MAX, false);
            c.insert(t(u64::from(i)), from(I, 100 + i, Trust::Unsolicited), &r, 0);
        }
        assert_eq!(c.len(), 4);
        let web = Name::parse_str("web.local").unwrap();
        let bx = Name::parse_str("box.c.local").unwrap();
        assert_eq!(c.lookup(t(100), None, &web, TYPE_A).count(), 1);
        assert_eq!(c.lookup(t(100), None, &bx, TYPE_A).count(), 1);
        // Among equals the soonest to expire went: the last two stayed.
        assert_eq!(
            c.iter().filter(|e| e.trust == Trust::Unsolicited).count(),
            2
        );
        assert_eq!(c.evictions, 48);
        // An answer displaces unsolicited records, never the overlay's.
        for i in 0..3u8 {
            let r = a(&format!("y{i}.local"), i, 30, false);
            c.insert(t(200), from(I, 3, Trust::Answer), &r, 0);
        }
        assert_eq!(c.lookup(t(200), None, &bx, TYPE_A).count(), 1);
        assert_eq!(
            c.iter().filter(|e| e.trust == Trust::Unsolicited).count(),
            0
        );
        // Then unsolicited ones are refused, and counted.
        let r = a("z.local", 9, u32::MAX, false);
        let got = c.insert(t(300), from(I, 7, Trust::Unsolicited), &r, 0);
        assert_eq!((got, c.refused), (Inserted::Refused, 1));
    }

    #[test]
    fn one_source_displaces_only_its_own_entries() {
        let mut c = Cache::new(16, 4);
        let legit = from(I, 1, Trust::Unsolicited);
        let flood = from(I, 66, Trust::Answer);
        c.insert(t(0), legit, &a("web.local", 1, 120, false), 0);
        c.insert(t(0), legit, &a("web.local", 2, 120, false), 0);
        for i in 0..100u8 {
            let r = a(&format!("f{i}.local"), i, u32::MAX, false);
            c.insert(t(u64::from(i)), flood, &r, 0);
        }
        let web = Name::parse_str("web.local").unwrap();
        assert_eq!(c.lookup(t(100), None, &web, TYPE_A).count(), 2);
        assert_eq!(c.len(), 6);
        assert_eq!(c.evictions, 96);
        // The overlay has no quota.
        for i in 0..8u8 {
            let r = a(&format!("o{i}.c.local"), i, 120, false);
            c.insert(t(100), from(I, 9, Trust::Overlay), &r, 0);
        }
        assert_eq!(c.len(), 14);
        // A refresh from another source keeps the first one and the
        // highest trust.
        c.insert(t(200), flood, &a("web.local", 1, 120, false), 0);
        assert!(c
            .iter()
            .all(|e| e.from != flood.from || e.record.name != web));
        assert!(c
            .iter()
            .filter(|e| e.record.name == web)
            .any(|e| e.trust == Trust::Answer));
    }

    #[test]
    fn our_question_promotes_what_answers_it() {
        let mut c = Cache::new(8, 64);
        let o = from(I, 1, Trust::Unsolicited);
        let ptr = Record::new(
            Name::parse_str("_http._tcp.local").unwrap(),
            4500,
            false,
            RData::Ptr(Name::parse_str("Web._http._tcp.local").unwrap()),
        );
        let srv = Record::new(
            Name::parse_str("web._http._tcp.local").unwrap(),
            120,
            true,
            RData::Srv(Srv {
                priority: 0,
                weight: 0,
                port: 80,
                target: Name::parse_str("h.local").unwrap(),
            }),
        );
        c.insert(t(0), o, &ptr, 0);
        c.insert(t(0), o, &srv, 0);
        c.insert(t(0), o, &a("h.local", 1, 120, true), 0);
        c.insert(t(0), o, &a("other.local", 1, 120, true), 0);
        c.insert(t(0), from(IfaceId(1), 1, Trust::Unsolicited), &ptr, 0);
        let q = Question {
            name: ptr.name.clone(),
            qtype: TYPE_PTR,
            qclass: CLASS_IN,
            unicast_response: false,
        };
        c.promote(I, &q);
        let trust: Vec<(String, IfaceId, Trust)> = c
            .iter()
            .map(|e| (e.record.name.to_string(), e.iface, e.trust))
            .collect();
        assert_eq!(
            trust,
            [
                ("_http._tcp.local".into(), I, Trust::Answer),
                ("web._http._tcp.local".into(), I, Trust::Answer),
                ("h.local".into(), I, Trust::Answer),
                ("other.local".into(), I, Trust::Unsolicited),
                ("_http._tcp.local".into(), IfaceId(1), Trust::Unsolicited),
            ]
        );
    }
}
