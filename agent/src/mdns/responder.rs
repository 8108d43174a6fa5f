//! This box's records: probing, announcing, conflict resolution,
//! answering and goodbyes (RFC 6762; DNS-SD records per RFC 6763).
//!
//! Records, per interface (§6.2: only the addresses valid on the link a
//! packet goes out on):
//! - host `NODE.CLOUD.local`: A/AAAA, unique, TTL 120 s (§10);
//! - per service `Name._type._proto.local`: SRV → host (unique, 120 s),
//!   TXT (unique, 4500 s), PTR `_type._proto.local` → instance (shared,
//!   4500 s), PTR `_services._dns-sd._udp.local` → type (shared, RFC 6763 §9).
//!
//! Each unique name is a *group* with one timer:
//! probing (§8.1: random 0–250 ms, then 3 probes 250 ms apart, QU on the
//! first, proposed records in the authority section; a lost tie-break
//! (§8.2) waits 1 s and probes again) → announcing (§8.3: 2 unsolicited
//! responses 1 s apart) → announced. A conflicting response while probing
//! renames (`Name (2)`, `node-2`); after announcing (§9) it re-probes
//! first. Over [`MDNS_MAX_CONFLICTS`] conflicts in 10 s slow probing to
//! one sequence per 5 s (§9).
//!
//! Answers (§6): unique records at once, shared ones after 20–120 ms
//! (400–500 ms for a truncated query, §7.2), aggregated per interface;
//! known answers with at least half our TTL are left out (§7.1); a pending
//! answer someone else multicasts first is dropped (§7.4); a record is
//! multicast at most once a second per interface (250 ms to defend a
//! probe, §6.2); QU questions (§5.4) are answered by unicast unless the
//! record was not multicast in the last quarter of its TTL; legacy
//! queries (source port ≠ 5353, §6.7) get a unicast reply with the same
//! ID, the question echoed, TTL ≤ 10 s and no cache-flush bits.
//! Additional records per RFC 6763 §12 and §6.2 of RFC 6762 (with NSEC
//! for a missing address family, §6.1); additionals are dropped first
//! when the packet is full.

use std::net::{IpAddr, SocketAddr};

use super::name::Name;
use super::wire::{
    Message, Nsec, Question, RData, Record, Section, Srv, Txt, Writer, FLAG_AA, FLAG_QR, TYPE_A,
    TYPE_AAAA, TYPE_ANY, TYPE_SRV, TYPE_TXT,
};
use super::{
    parse_service_type, payload_limit, type_string, Ctx, FoundService, Iface, IfaceId, MdnsError,
    PublishState, PublishedService, Rng, ServiceSpec, MDNS_GROUP_V4, MDNS_GROUP_V6, MDNS_PORT,
};
use crate::limits::*;
use crate::time::{Duration, Instant};

/// `_services._dns-sd._udp.local` (RFC 6763 §9).
pub fn services_name() -> Name {
    // Constant labels within bounds.
    Name::from_labels(["_services", "_dns-sd", "_udp", "local"]).unwrap_or_else(|_| Name::root())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Probes sent so far.
    Probing(u8),
    /// Announcements sent so far.
    Announcing(u8),
    Announced,
}

/// The state machine of one unique name.
#[derive(Clone, Debug)]
struct Group {
    phase: Phase,
    next: Instant,
    /// Probing completed for the current name (answers allowed while re-probing).
    verified: bool,
    /// Renamed after a conflict at least once.
    renamed: bool,
}

impl Group {
    fn new(at: Instant) -> Group {
        Group {
            phase: Phase::Probing(0),
            next: at,
            verified: false,
            renamed: false,
        }
    }

    fn reprobe(&mut self, at: Instant) {
        self.phase = Phase::Probing(0);
        self.next = at;
    }

    fn probing(&self) -> bool {
        matches!(self.phase, Phase::Probing(_))
    }

    fn answerable(&self) -> bool {
        self.verified || !self.probing()
    }
}

#[derive(Clone)]
struct Service {
    spec: ServiceSpec,
    /// Rename counter: 1 = the requested name.
    n: u32,
    instance: Name,
    stype: Name,
    /// `spec.host`, parsed; `None` = our host name.
    target: Option<Name>,
    txt: Txt,
    group: Group,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupRef {
    Host,
    Service(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dest {
    Multicast { v6: bool },
    Unicast(SocketAddr),
}

/// A delayed multicast answer (§6).
#[derive(Clone)]
struct Pending {
    iface: IfaceId,
    dest: Dest,
    due: Instant,
    answers: Vec<Record>,
    probe: bool,
}

/// When a record was last multicast on an interface (§6.2).
#[derive(Clone)]
struct Recent {
    iface: IfaceId,
    key: u64,
    at: Instant,
}

/// FNV-1a over name (case-folded), type and RDATA: identifies a record.
fn record_key(r: &Record) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for &b in r.name.as_wire() {
        eat(b.to_ascii_lowercase());
    }
    for b in r.rtype().to_be_bytes() {
        eat(b);
    }
    for b in r.data.to_bytes() {
        eat(b);
    }
    h
}

/// §8.2: compare record sets by class, type, then raw RDATA, sorted.
fn compare_sets(ours: &[Record], theirs: &[&Record]) -> core::cmp::Ordering {
    let key = |r: &Record| (r.class, r.rtype(), r.data.to_bytes());
    let mut a: Vec<_> = ours.iter().map(key).collect();
    let mut b: Vec<_> = theirs.iter().map(|r| key(r)).collect();
    a.sort();
    b.sort();
    a.cmp(&b)
}

/// Keep `[A-Za-z0-9-]`, at most 63 bytes; `fallback` if nothing is left.
fn host_label_clean(s: &str, fallback: &str) -> String {
    let l: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(MAX_LABEL)
        .collect();
    if l.is_empty() {
        fallback.to_string()
    } else {
        l
    }
}

const MAX_LABEL: usize = super::name::MAX_LABEL_LEN;

/// Cut `s` to at most `max` bytes on a character boundary.
fn truncate_str(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `base`, `base (2)`, `base (3)`… within 63 bytes (RFC 6763 §4.1 style).
fn instance_label(base: &str, n: u32) -> String {
    if n <= 1 {
        return truncate_str(base, MAX_LABEL).to_string();
    }
    let suffix = format!(" ({n})");
    format!("{}{suffix}", truncate_str(base, MAX_LABEL - suffix.len()))
}

/// `base`, `base-2`, `base-3`… within 63 bytes.
fn host_label(base: &str, n: u32) -> String {
    if n <= 1 {
        return truncate_str(base, MAX_LABEL).to_string();
    }
    let suffix = format!("-{n}");
    format!("{}{suffix}", truncate_str(base, MAX_LABEL - suffix.len()))
}

fn group_addr(v6: bool) -> SocketAddr {
    if v6 {
        SocketAddr::new(MDNS_GROUP_V6.into(), MDNS_PORT)
    } else {
        SocketAddr::new(MDNS_GROUP_V4.into(), MDNS_PORT)
    }
}

/// The responder of one box.
#[derive(Clone)]
pub struct Responder {
    host_base: String,
    domain: Option<String>,
    host_n: u32,
    host: Name,
    host_group: Group,
    services: Vec<Service>,
    pending: Vec<Pending>,
    recent: Vec<Recent>,
    conflict_window: Instant,
    conflict_count: u32,
    enum_name: Name,
}

impl Responder {
    pub(crate) fn new(
        host_label: &str,
        domain_label: &str,
        now: Instant,
        rng: &mut Rng,
    ) -> Responder {
        let host_base = host_label_clean(host_label, "cloudy");
        let domain = Some(host_label_clean(domain_label, "")).filter(|d| !d.is_empty());
        let mut r = Responder {
            host: Name::root(),
            host_base,
            domain,
            host_n: 1,
            host_group: Group::new(now + rng.delay(Duration::ZERO, MDNS_PROBE_WAIT_MAX)),
            services: Vec::new(),
            pending: Vec::new(),
            recent: Vec::new(),
            conflict_window: now,
            conflict_count: 0,
            enum_name: services_name(),
        };
        r.host = r.make_host();
        r
    }

    fn make_host(&self) -> Name {
        let label = host_label(&self.host_base, self.host_n);
        let mut labels = vec![label.as_str()];
        if let Some(d) = &self.domain {
            labels.push(d);
        }
        labels.push("local");
        // Labels are cleaned and ≤ 63 bytes: 3 × 64 + 1 < 255.
        Name::from_labels(labels).unwrap_or_else(|_| Name::root())
    }

    pub fn host(&self) -> &Name {
        &self.host
    }

    // ---- records ----

    fn host_records(&self, iface: &Iface) -> Vec<Record> {
        iface
            .addrs
            .iter()
            .map(|a| {
                let data = match a {
                    IpAddr::V4(v4) => RData::A(*v4),
                    IpAddr::V6(v6) => RData::Aaaa(*v6),
                };
                Record::new(self.host.clone(), MDNS_TTL_HOST, true, data)
            })
            .collect()
    }

    fn host_all(&self, ifaces: &[Iface]) -> Vec<Record> {
        let mut v: Vec<Record> = Vec::new();
        for i in ifaces {
            for r in self.host_records(i) {
                if !v.iter().any(|x| x.same_data(&r)) {
                    v.push(r);
                }
            }
        }
        v
    }

    /// NSEC naming the address types we have here (§6.1), if one is missing.
    fn host_nsec(&self, iface: &Iface) -> Option<Record> {
        let mut types = heapless::Vec::<u16, 2>::new();
        if iface.has_v4() {
            let _ = types.push(TYPE_A);
        }
        if iface.has_v6() {
            let _ = types.push(TYPE_AAAA);
        }
        (types.len() < 2).then(|| {
            Record::new(
                self.host.clone(),
                MDNS_TTL_HOST,
                true,
                RData::Nsec(Nsec::new(self.host.clone(), &types)),
            )
        })
    }

    fn target(&self, s: &Service) -> Name {
        s.target.clone().unwrap_or_else(|| self.host.clone())
    }

    fn srv(&self, s: &Service) -> Record {
        Record::new(
            s.instance.clone(),
            MDNS_TTL_HOST,
            true,
            RData::Srv(Srv {
                priority: 0,
                weight: 0,
                port: s.spec.port,
                target: self.target(s),
            }),
        )
    }

    fn txt(s: &Service) -> Record {
        Record::new(
            s.instance.clone(),
            MDNS_TTL_OTHER,
            true,
            RData::Txt(s.txt.clone()),
        )
    }

    fn ptr(s: &Service) -> Record {
        Record::new(
            s.stype.clone(),
            MDNS_TTL_OTHER,
            false,
            RData::Ptr(s.instance.clone()),
        )
    }

    fn enum_ptr(&self, s: &Service) -> Record {
        Record::new(
            self.enum_name.clone(),
            MDNS_TTL_OTHER,
            false,
            RData::Ptr(s.stype.clone()),
        )
    }

    fn group(&self, g: GroupRef) -> Option<&Group> {
        match g {
            GroupRef::Host => Some(&self.host_group),
            GroupRef::Service(i) => self.services.get(i).map(|s| &s.group),
        }
    }

    fn group_mut(&mut self, g: GroupRef) -> Option<&mut Group> {
        match g {
            GroupRef::Host => Some(&mut self.host_group),
            GroupRef::Service(i) => self.services.get_mut(i).map(|s| &mut s.group),
        }
    }

    fn group_name(&self, g: GroupRef) -> Option<&Name> {
        match g {
            GroupRef::Host => Some(&self.host),
            GroupRef::Service(i) => self.services.get(i).map(|s| &s.instance),
        }
    }

    fn groups(&self) -> Vec<GroupRef> {
        let mut v = vec![GroupRef::Host];
        v.extend((0..self.services.len()).map(GroupRef::Service));
        v
    }

    /// The unique records of a group on an interface (probed, §8.1).
    fn unique_records(&self, g: GroupRef, iface: &Iface) -> Vec<Record> {
        match g {
            GroupRef::Host => self.host_records(iface),
            GroupRef::Service(i) => match self.services.get(i) {
                Some(s) => vec![self.srv(s), Self::txt(s)],
                None => Vec::new(),
            },
        }
    }

    /// Everything announced for a group (§8.3).
    fn announce_records(&self, g: GroupRef, iface: &Iface) -> Vec<Record> {
        match g {
            GroupRef::Host => self.host_records(iface),
            GroupRef::Service(i) => match self.services.get(i) {
                Some(s) => vec![Self::ptr(s), self.srv(s), Self::txt(s), self.enum_ptr(s)],
                None => Vec::new(),
            },
        }
    }

    /// Goodbye records of a group: its announced records with TTL 0; the
    /// type enumeration PTR only if no other answerable service shares the type.
    fn goodbye_records(&self, g: GroupRef, iface: &Iface) -> Vec<Record> {
        let mut v = self.announce_records(g, iface);
        if let GroupRef::Service(i) = g {
            if let Some(s) = self.services.get(i) {
                let shared = self
                    .services
                    .iter()
                    .enumerate()
                    .any(|(j, o)| j != i && o.group.answerable() && o.stype == s.stype);
                if shared {
                    v.retain(|r| r.name != self.enum_name);
                }
            }
        }
        for r in &mut v {
            r.ttl = 0;
        }
        v
    }

    // ---- recently multicast (§6.2) ----

    fn last_multicast(&self, iface: IfaceId, r: &Record) -> Option<Instant> {
        let key = record_key(r);
        self.recent
            .iter()
            .find(|x| x.iface == iface && x.key == key)
            .map(|x| x.at)
    }

    fn mark_multicast(&mut self, iface: IfaceId, r: &Record, now: Instant) {
        let key = record_key(r);
        if let Some(x) = self
            .recent
            .iter_mut()
            .find(|x| x.iface == iface && x.key == key)
        {
            x.at = now;
            return;
        }
        if self.recent.len() >= MDNS_MAX_RECENT {
            if let Some(i) = self
                .recent
                .iter()
                .enumerate()
                .min_by_key(|(_, x)| x.at)
                .map(|(i, _)| i)
            {
                self.recent.swap_remove(i);
            }
        }
        self.recent.push(Recent {
            iface,
            key,
            at: now,
        });
    }

    // ---- publishing ----

    /// Re-probe every name (a link came up or changed, §8.1). Names
    /// already ours stay answerable meanwhile.
    pub(crate) fn reprobe_all(&mut self, now: Instant, rng: &mut Rng) {
        let at = now + rng.delay(Duration::ZERO, MDNS_PROBE_WAIT_MAX);
        self.host_group.reprobe(at);
        for s in &mut self.services {
            s.group.reprobe(at);
        }
    }

    fn validate(&self, spec: &ServiceSpec) -> Result<(Name, Name, Option<Name>, Txt), MdnsError> {
        let stype = parse_service_type(&spec.service_type)?;
        if spec.instance.is_empty() || spec.instance.len() > MAX_LABEL {
            return Err(MdnsError::InvalidInstance);
        }
        let instance = stype
            .prepend(spec.instance.as_bytes())
            .map_err(|_| MdnsError::InvalidInstance)?;
        let target = match &spec.host {
            None => None,
            Some(h) => {
                let n = Name::parse_str(h).map_err(|_| MdnsError::InvalidHost)?;
                let n = match n.label_count() {
                    0 => return Err(MdnsError::InvalidHost),
                    1 => n
                        .join(&Name::from_labels(["local"]).map_err(|_| MdnsError::InvalidHost)?)
                        .map_err(|_| MdnsError::InvalidHost)?,
                    _ => n,
                };
                Some(n)
            }
        };
        let txt = Txt::from_strings(&spec.txt, MDNS_MAX_TXT).ok_or(MdnsError::TxtTooLong)?;
        Ok((stype, instance, target, txt))
    }

    fn find(&self, instance: &str) -> Option<usize> {
        self.services.iter().position(|s| {
            s.spec.instance.eq_ignore_ascii_case(instance)
                || s.instance
                    .first_label()
                    .is_some_and(|l| l.eq_ignore_ascii_case(instance.as_bytes()))
        })
    }

    pub(crate) fn publish(&mut self, cx: &mut Ctx<'_>, spec: ServiceSpec) -> Result<(), MdnsError> {
        let (stype, instance, target, txt) = self.validate(&spec)?;
        if let Some(i) = self
            .services
            .iter()
            .position(|s| s.spec.instance.eq_ignore_ascii_case(&spec.instance))
        {
            let s = &mut self.services[i];
            if s.spec == spec {
                return Ok(());
            }
            if s.stype == stype {
                // Same name, new data: announce it again (§8.4), no probing.
                s.spec = spec;
                s.target = target;
                s.txt = txt;
                if s.group.answerable() {
                    s.group.phase = Phase::Announcing(0);
                    s.group.next = cx.now;
                }
                return Ok(());
            }
            self.remove(cx, i);
        }
        if self.services.len() >= MDNS_MAX_SERVICES {
            return Err(MdnsError::TooManyServices);
        }
        let at = cx.now + cx.rng.delay(Duration::ZERO, MDNS_PROBE_WAIT_MAX);
        self.services.push(Service {
            spec,
            n: 1,
            instance,
            stype,
            target,
            txt,
            group: Group::new(at),
        });
        Ok(())
    }

    pub(crate) fn unpublish(&mut self, cx: &mut Ctx<'_>, instance: &str) -> Result<(), MdnsError> {
        let i = self.find(instance).ok_or(MdnsError::NotFound)?;
        self.remove(cx, i);
        Ok(())
    }

    /// Withdraw service `i`: goodbyes if it was answerable, pending answers dropped.
    fn remove(&mut self, cx: &mut Ctx<'_>, i: usize) {
        let Some(s) = self.services.get(i) else {
            return;
        };
        let name = s.instance.clone();
        if s.group.answerable() {
            for idx in 0..cx.ifaces.len() {
                let recs = self.goodbye_records(GroupRef::Service(i), &cx.ifaces[idx]);
                self.send_records(cx, idx, &recs, Kind::Goodbye);
            }
        }
        self.drop_pending_for(&name);
        self.services.remove(i);
    }

    /// Diff-based reload: only added, changed or removed services are touched.
    pub(crate) fn set_services(
        &mut self,
        cx: &mut Ctx<'_>,
        specs: &[ServiceSpec],
    ) -> Vec<(String, MdnsError)> {
        let mut i = 0;
        while i < self.services.len() {
            let keep = specs.iter().any(|sp| {
                sp.instance
                    .eq_ignore_ascii_case(&self.services[i].spec.instance)
            });
            if keep {
                i += 1;
            } else {
                self.remove(cx, i);
            }
        }
        let mut errors = Vec::new();
        for sp in specs {
            if let Err(e) = self.publish(cx, sp.clone()) {
                errors.push((sp.instance.clone(), e));
            }
        }
        errors
    }

    /// Goodbyes for everything answerable on every interface.
    pub(crate) fn shutdown(&mut self, cx: &mut Ctx<'_>) {
        for idx in 0..cx.ifaces.len() {
            self.goodbye_iface(cx, idx);
        }
        self.pending.clear();
    }

    /// Goodbyes on one interface (it is going away).
    pub(crate) fn goodbye_iface(&mut self, cx: &mut Ctx<'_>, idx: usize) {
        let Some(iface) = cx.ifaces.get(idx) else {
            return;
        };
        let mut recs: Vec<Record> = Vec::new();
        for g in self.groups() {
            if self.group(g).is_some_and(Group::answerable) {
                for r in self.goodbye_records(g, iface) {
                    if !recs.iter().any(|x| x.same_data(&r)) {
                        recs.push(r);
                    }
                }
            }
        }
        self.send_records(cx, idx, &recs, Kind::Goodbye);
    }

    pub(crate) fn forget_iface(&mut self, id: IfaceId) {
        self.pending.retain(|p| p.iface != id);
        self.recent.retain(|r| r.iface != id);
    }

    fn drop_pending_for(&mut self, name: &Name) {
        for p in &mut self.pending {
            p.answers.retain(|r| {
                r.name != *name
                    && !matches!(&r.data, RData::Ptr(n) if n == name)
                    && !matches!(&r.data, RData::Srv(s) if s.target == *name)
            });
        }
        self.pending.retain(|p| !p.answers.is_empty());
    }

    pub fn published(&self) -> Vec<PublishedService> {
        self.services
            .iter()
            .map(|s| PublishedService {
                instance: String::from_utf8_lossy(s.instance.first_label().unwrap_or_default())
                    .into_owned(),
                requested: s.spec.instance.clone(),
                service_type: type_string(&s.stype),
                port: s.spec.port,
                state: if !s.group.answerable() {
                    PublishState::Probing
                } else if s.group.renamed {
                    PublishState::ConflictRenamed
                } else {
                    PublishState::Announced
                },
            })
            .collect()
    }

    /// Our answerable services as search results.
    pub(crate) fn own_services(
        &self,
        ifaces: &[Iface],
        filter: Option<&Name>,
    ) -> Vec<FoundService> {
        let mut addrs: Vec<IpAddr> = Vec::new();
        for a in ifaces.iter().flat_map(|i| &i.addrs) {
            if !addrs.contains(a) {
                addrs.push(*a);
            }
        }
        self.services
            .iter()
            .filter(|s| s.group.answerable() && filter.is_none_or(|t| *t == s.stype))
            .map(|s| FoundService {
                instance: String::from_utf8_lossy(s.instance.first_label().unwrap_or_default())
                    .into_owned(),
                service_type: type_string(&s.stype),
                host: self.target(s).to_string(),
                addresses: if s.target.is_none() {
                    addrs.clone()
                } else {
                    Vec::new()
                },
                port: s.spec.port,
                txt: s.txt.to_strings(),
                iface: None,
            })
            .collect()
    }

    // ---- conflicts (§8.1, §8.2, §9) ----

    /// The group `r` conflicts with, if any.
    fn conflicting(&self, ifaces: &[Iface], r: &Record) -> Option<GroupRef> {
        if r.ttl == 0 {
            return None;
        }
        if r.name == self.host {
            let g = &self.host_group;
            let relevant = g.probing() || matches!(r.rtype(), TYPE_A | TYPE_AAAA);
            if relevant && !self.host_all(ifaces).iter().any(|o| o.same_data(r)) {
                return Some(GroupRef::Host);
            }
        }
        for (i, s) in self.services.iter().enumerate() {
            if r.name != s.instance {
                continue;
            }
            let relevant = s.group.probing() || matches!(r.rtype(), TYPE_SRV | TYPE_TXT);
            let ours = [self.srv(s), Self::txt(s)];
            if relevant && !ours.iter().any(|o| o.same_data(r)) {
                return Some(GroupRef::Service(i));
            }
        }
        None
    }

    fn conflict(&mut self, cx: &mut Ctx<'_>, g: GroupRef) {
        cx.stats.conflicts += 1;
        let now = cx.now;
        if now.since(self.conflict_window) > MDNS_CONFLICT_WINDOW {
            self.conflict_window = now;
            self.conflict_count = 0;
        }
        self.conflict_count += 1;
        let delay = if self.conflict_count > MDNS_MAX_CONFLICTS {
            MDNS_CONFLICT_BACKOFF
        } else {
            cx.rng.delay(Duration::ZERO, MDNS_PROBE_WAIT_MAX)
        };
        let at = now + delay;
        let Some(grp) = self.group(g) else {
            return;
        };
        if grp.probing() && !grp.verified {
            self.rename(g, at);
        } else if let Some(grp) = self.group_mut(g) {
            // §9: back to probing; a second conflict then renames.
            grp.verified = false;
            grp.reprobe(at);
        }
    }

    fn rename(&mut self, g: GroupRef, at: Instant) {
        match g {
            GroupRef::Host => {
                let old = self.host.clone();
                self.host_n += 1;
                self.host = self.make_host();
                self.host_group.renamed = true;
                self.host_group.reprobe(at);
                crate::info!("host name conflict: {old} renamed to {}", self.host);
                self.drop_pending_for(&old);
                // SRV records pointing at us changed: announce them again.
                for s in &mut self.services {
                    if s.target.is_none() && s.group.answerable() {
                        s.group.reprobe(at);
                    }
                }
            }
            GroupRef::Service(i) => {
                let Some(s) = self.services.get_mut(i) else {
                    return;
                };
                let old = s.instance.clone();
                s.n += 1;
                let label = instance_label(&s.spec.instance, s.n);
                if let Ok(n) = s.stype.prepend(label.as_bytes()) {
                    s.instance = n;
                }
                s.group.renamed = true;
                s.group.reprobe(at);
                crate::info!("service name conflict: {old} renamed to {}", s.instance);
                self.drop_pending_for(&old);
            }
        }
    }

    /// §8.2: another host probes a name we are probing; the
    /// lexicographically later record set wins, the loser waits 1 s.
    fn tie_break(&mut self, cx: &mut Ctx<'_>, idx: usize, msg: &Message) {
        let Some(iface) = cx.ifaces.get(idx) else {
            return;
        };
        for g in self.groups() {
            let (Some(grp), Some(name)) = (self.group(g), self.group_name(g)) else {
                continue;
            };
            if !grp.probing() {
                continue;
            }
            let theirs: Vec<&Record> = msg.authorities.iter().filter(|r| r.name == *name).collect();
            if theirs.is_empty() {
                continue;
            }
            let ours = self.unique_records(g, iface);
            if compare_sets(&ours, &theirs) == core::cmp::Ordering::Less {
                crate::debug!("simultaneous probe for {name} lost; probing again in 1 s");
                let at = cx.now + MDNS_PROBE_DEFER;
                if let Some(grp) = self.group_mut(g) {
                    grp.reprobe(at);
                }
            }
        }
    }

    // ---- input ----

    pub(crate) fn handle_response(&mut self, cx: &mut Ctx<'_>, idx: usize, msg: &Message) {
        let mut hits = Vec::new();
        for r in msg.answers.iter().chain(&msg.additionals) {
            if let Some(g) = self.conflicting(cx.ifaces, r) {
                if !hits.contains(&g) {
                    hits.push(g);
                }
            }
        }
        // Renaming a service does not shift indices, so refs stay valid.
        for g in hits {
            self.conflict(cx, g);
        }
        // §7.4: someone else multicast an answer we were about to give.
        if let Some(iface) = cx.ifaces.get(idx) {
            let id = iface.id;
            let all: Vec<&Record> = msg.answers.iter().chain(&msg.additionals).collect();
            for p in &mut self.pending {
                if p.iface == id {
                    p.answers
                        .retain(|a| !all.iter().any(|k| k.same_data(a) && k.ttl >= a.ttl));
                }
            }
            self.pending.retain(|p| !p.answers.is_empty());
        }
    }

    /// Answers to one question on an interface: (record, unique).
    fn answers_for(
        &self,
        iface: &Iface,
        q: &Question,
        ans: &mut Vec<(Record, bool, bool)>,
        neg: &mut Vec<Record>,
    ) {
        let push = |r: Record, unique: bool, ans: &mut Vec<(Record, bool, bool)>| {
            if q.matches(&r) {
                match ans.iter_mut().find(|(x, ..)| x.same_data(&r)) {
                    // Asked twice: QU only if every asker wants unicast.
                    Some(e) => e.2 &= q.unicast_response,
                    None => ans.push((r, unique, q.unicast_response)),
                }
            }
        };
        let before = ans.len();
        if self.host_group.answerable() && q.name == self.host {
            for r in self.host_records(iface) {
                push(r, true, ans);
            }
            if ans.len() == before && q.qtype != TYPE_ANY {
                neg.extend(self.host_nsec(iface));
            }
        }
        for s in self.services.iter().filter(|s| s.group.answerable()) {
            if q.name == s.instance {
                push(self.srv(s), true, ans);
                push(Self::txt(s), true, ans);
            }
            if q.name == s.stype {
                push(Self::ptr(s), false, ans);
            }
            if q.name == self.enum_name {
                push(self.enum_ptr(s), false, ans);
            }
        }
    }

    /// Additional records for answers (RFC 6763 §12; RFC 6762 §6.2, §6.1).
    fn additionals_for(&self, iface: &Iface, answers: &[Record]) -> Vec<Record> {
        let mut add: Vec<Record> = Vec::new();
        let push = |r: Record, add: &mut Vec<Record>| {
            if !answers.iter().any(|a| a.same_data(&r)) && !add.iter().any(|a| a.same_data(&r)) {
                add.push(r);
            }
        };
        let host_ok = self.host_group.answerable();
        let host_addrs = |add: &mut Vec<Record>| {
            if host_ok {
                for r in self.host_records(iface) {
                    push(r, add);
                }
                if let Some(n) = self.host_nsec(iface) {
                    push(n, add);
                }
            }
        };
        for a in answers {
            match &a.data {
                RData::Ptr(inst) if a.name != self.enum_name => {
                    if let Some(s) = self
                        .services
                        .iter()
                        .find(|s| s.instance == *inst && s.group.answerable())
                    {
                        push(self.srv(s), &mut add);
                        push(Self::txt(s), &mut add);
                        if s.target.is_none() {
                            host_addrs(&mut add);
                        }
                    }
                }
                RData::Srv(srv) if srv.target == self.host => host_addrs(&mut add),
                RData::A(_) | RData::Aaaa(_) if a.name == self.host => host_addrs(&mut add),
                _ => {}
            }
        }
        add
    }

    pub(crate) fn handle_query(
        &mut self,
        cx: &mut Ctx<'_>,
        idx: usize,
        from: SocketAddr,
        msg: &Message,
    ) {
        if !msg.authorities.is_empty() {
            self.tie_break(cx, idx, msg);
        }
        let Some(iface) = cx.ifaces.get(idx) else {
            return;
        };
        let id = iface.id;
        let now = cx.now;
        let legacy = from.port() != MDNS_PORT;
        let known = |r: &Record| {
            msg.answers
                .iter()
                .any(|k| k.same_data(r) && u64::from(k.ttl) * 2 >= u64::from(r.ttl))
        };
        if !legacy {
            // §7.2: known answers in follow-up packets suppress pending answers.
            for p in &mut self.pending {
                if p.iface == id {
                    p.answers.retain(|a| !known(a));
                }
            }
            self.pending.retain(|p| !p.answers.is_empty());
        }
        let mut ans = Vec::new();
        let mut neg = Vec::new();
        for q in &msg.questions {
            self.answers_for(iface, q, &mut ans, &mut neg);
        }
        // §7.1 known-answer suppression.
        ans.retain(|(r, ..)| !known(r));
        if ans.is_empty() && neg.is_empty() {
            return;
        }
        if legacy {
            let recs = ans.into_iter().map(|(r, ..)| r).collect();
            let q = Some((msg.id, msg.questions.as_slice()));
            self.send_response(cx, idx, Dest::Unicast(from), recs, neg, q, false);
            return;
        }
        let probe = !msg.authorities.is_empty();
        let v6 = from.is_ipv6();
        // §5.4: unicast unless not multicast within a quarter of the TTL.
        let (uni, multi): (Vec<_>, Vec<_>) = ans.into_iter().partition(|(r, _, qu)| {
            *qu && self
                .last_multicast(id, r)
                .is_some_and(|t| now.since(t) < Duration::from_millis(u64::from(r.ttl) * 250))
        });
        let all_qu = msg.questions.iter().all(|q| q.unicast_response);
        let mut neg = Some(neg).filter(|n| !n.is_empty());
        if !uni.is_empty() {
            let recs = uni.into_iter().map(|(r, ..)| r).collect();
            let n = neg.take().unwrap_or_default();
            self.send_response(cx, idx, Dest::Unicast(from), recs, n, None, probe);
        }
        if !multi.is_empty() {
            let all_unique = multi.iter().all(|(_, unique, _)| *unique);
            let recs: Vec<Record> = multi.into_iter().map(|(r, ..)| r).collect();
            let dest = Dest::Multicast { v6 };
            if all_unique && !msg.truncated() {
                let n = neg.take().unwrap_or_default();
                self.send_response(cx, idx, dest, recs, n, None, probe);
            } else {
                let delay = if msg.truncated() {
                    cx.rng.delay(MDNS_TC_DELAY, Duration::from_millis(100))
                } else {
                    cx.rng
                        .delay(Duration::from_millis(20), MDNS_RESPONSE_JITTER)
                };
                self.enqueue(cx, id, dest, now + delay, recs, probe);
            }
        }
        if let Some(n) = neg {
            let dest = if all_qu {
                Dest::Unicast(from)
            } else {
                Dest::Multicast { v6 }
            };
            self.send_response(cx, idx, dest, Vec::new(), n, None, probe);
        }
    }

    fn enqueue(
        &mut self,
        cx: &mut Ctx<'_>,
        iface: IfaceId,
        dest: Dest,
        due: Instant,
        recs: Vec<Record>,
        probe: bool,
    ) {
        if let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.iface == iface && p.dest == dest)
        {
            for r in recs {
                if !p.answers.iter().any(|a| a.same_data(&r))
                    && p.answers.len() < MDNS_MAX_RECORDS_PER_MESSAGE
                {
                    p.answers.push(r);
                }
            }
            p.due = p.due.min(due);
            p.probe |= probe;
            return;
        }
        if self.pending.len() >= MDNS_MAX_PENDING {
            cx.stats.dropped_rate += 1;
            return;
        }
        self.pending.push(Pending {
            iface,
            dest,
            due,
            answers: recs,
            probe,
        });
    }

    // ---- output ----

    /// Send one response packet: answers first, then additionals while
    /// they fit (§6: bounded, no amplification).
    #[allow(clippy::too_many_arguments)]
    fn send_response(
        &mut self,
        cx: &mut Ctx<'_>,
        idx: usize,
        dest: Dest,
        mut answers: Vec<Record>,
        extra: Vec<Record>,
        legacy: Option<(u16, &[Question])>,
        probe: bool,
    ) {
        let now = cx.now;
        let Some(iface) = cx.ifaces.get(idx) else {
            return;
        };
        let id = iface.id;
        if let Dest::Multicast { .. } = dest {
            let min = if probe {
                MDNS_PROBE_DEFENSE_INTERVAL
            } else {
                MDNS_MIN_MULTICAST_INTERVAL
            };
            let had = !answers.is_empty();
            answers.retain(|r| {
                self.last_multicast(id, r)
                    .is_none_or(|t| now.since(t) >= min)
            });
            if had && answers.is_empty() {
                return;
            }
        }
        let mut additionals = self.additionals_for(iface, &answers);
        for r in extra {
            if !additionals.iter().any(|a| a.same_data(&r)) {
                additionals.push(r);
            }
        }
        if answers.is_empty() && additionals.is_empty() {
            return;
        }
        let to = match dest {
            Dest::Multicast { v6 } => group_addr(v6),
            Dest::Unicast(a) => a,
        };
        let (msg_id, questions) = legacy.unwrap_or((0, &[]));
        let Ok(mut w) = Writer::new(msg_id, FLAG_QR | FLAG_AA, payload_limit(&to)) else {
            return;
        };
        let fix = |r: &Record| {
            let mut r = r.clone();
            if legacy.is_some() {
                // §6.7: TTL ≤ 10 s, no cache-flush bits.
                r.ttl = r.ttl.min(MDNS_LEGACY_TTL);
                r.cache_flush = false;
            }
            r
        };
        if legacy.is_some() {
            w.set_compress_rdata(false);
            for q in questions {
                let _ = w.question(q);
            }
        }
        let mut sent = Vec::new();
        for r in &answers {
            if w.record(Section::Answer, &fix(r)).is_ok() {
                sent.push(r);
            }
        }
        if sent.is_empty() && !answers.is_empty() {
            return;
        }
        for r in &additionals {
            if w.record(Section::Additional, &fix(r)).is_ok() {
                sent.push(r);
            }
        }
        if sent.is_empty() {
            return;
        }
        let Some(iface) = cx.ifaces.get_mut(idx) else {
            return;
        };
        if !iface.answers.take(now) {
            cx.stats.dropped_rate += 1;
            return;
        }
        cx.out.send(id, to, &w.finish());
        cx.stats.responses_sent += 1;
        if let Dest::Multicast { .. } = dest {
            let sent: Vec<Record> = sent.into_iter().cloned().collect();
            for r in &sent {
                self.mark_multicast(id, r, now);
            }
        }
    }

    /// Multicast `records` (announcement or goodbye) on one interface,
    /// in as many packets as needed, to each group of its families.
    fn send_records(&mut self, cx: &mut Ctx<'_>, idx: usize, records: &[Record], kind: Kind) {
        let Some(iface) = cx.ifaces.get(idx) else {
            return;
        };
        if records.is_empty() {
            return;
        }
        let id = iface.id;
        for to in iface.groups() {
            let mut i = 0;
            while i < records.len() {
                let Ok(mut w) = Writer::new(0, FLAG_QR | FLAG_AA, payload_limit(&to)) else {
                    return;
                };
                let start = i;
                while i < records.len() && w.record(Section::Answer, &records[i]).is_ok() {
                    i += 1;
                }
                if i == start {
                    // A record larger than a packet: skip it.
                    i += 1;
                    continue;
                }
                cx.out.send(id, to, &w.finish());
                match kind {
                    Kind::Announce => cx.stats.announcements_sent += 1,
                    Kind::Goodbye => cx.stats.goodbyes_sent += 1,
                }
            }
        }
        if kind == Kind::Announce {
            for r in records {
                self.mark_multicast(id, r, cx.now);
            }
        }
    }

    /// Probe packets for groups on one interface (§8.1): questions
    /// (type ANY, QU on the first probe), proposed records as authority.
    fn send_probes(&mut self, cx: &mut Ctx<'_>, idx: usize, groups: &[(GroupRef, bool)]) {
        let Some(iface) = cx.ifaces.get(idx) else {
            return;
        };
        let id = iface.id;
        let items: Vec<(Question, Vec<Record>)> = groups
            .iter()
            .filter_map(|&(g, first)| {
                let name = self.group_name(g)?.clone();
                let q = Question {
                    name,
                    qtype: TYPE_ANY,
                    qclass: super::wire::CLASS_IN,
                    unicast_response: first,
                };
                Some((q, self.unique_records(g, iface)))
            })
            .collect();
        let build = |batch: &[&(Question, Vec<Record>)], limit: usize| {
            let m = Message {
                questions: batch.iter().map(|(q, _)| q.clone()).collect(),
                authorities: batch.iter().flat_map(|(_, r)| r.iter().cloned()).collect(),
                ..Message::default()
            };
            m.emit(limit)
        };
        for to in iface.groups() {
            let limit = payload_limit(&to);
            let mut batch: Vec<&(Question, Vec<Record>)> = Vec::new();
            for item in &items {
                batch.push(item);
                if build(&batch, limit).is_err() {
                    batch.pop();
                    if let Ok(p) = build(&batch, limit) {
                        if !batch.is_empty() {
                            cx.out.send(id, to, &p);
                            cx.stats.probes_sent += 1;
                        }
                    }
                    batch.clear();
                    batch.push(item);
                }
            }
            if let Ok(p) = build(&batch, limit) {
                if !batch.is_empty() {
                    cx.out.send(id, to, &p);
                    cx.stats.probes_sent += 1;
                }
            }
        }
    }

    // ---- timers ----

    pub(crate) fn handle_timeout(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.now;
        let mut probes = Vec::new();
        let mut announces = Vec::new();
        for g in self.groups() {
            let Some(grp) = self.group_mut(g) else {
                continue;
            };
            if grp.phase == Phase::Announced || grp.next > now {
                continue;
            }
            if let Phase::Probing(n) = grp.phase {
                if n < MDNS_PROBE_COUNT {
                    probes.push((g, n == 0));
                    grp.phase = Phase::Probing(n + 1);
                    grp.next = now + MDNS_PROBE_INTERVAL;
                    continue;
                }
                // Three probes and 250 ms of silence: the name is ours.
                grp.verified = true;
                grp.phase = Phase::Announcing(0);
            }
            if let Phase::Announcing(n) = grp.phase {
                announces.push(g);
                if n + 1 >= MDNS_ANNOUNCE_COUNT {
                    grp.phase = Phase::Announced;
                } else {
                    grp.phase = Phase::Announcing(n + 1);
                    grp.next = now + MDNS_ANNOUNCE_INTERVAL;
                }
            }
        }
        for idx in 0..cx.ifaces.len() {
            if !probes.is_empty() {
                self.send_probes(cx, idx, &probes);
            }
            if !announces.is_empty() {
                let mut recs: Vec<Record> = Vec::new();
                for &g in &announces {
                    for r in self.announce_records(g, &cx.ifaces[idx]) {
                        if !recs.iter().any(|x| x.same_data(&r)) {
                            recs.push(r);
                        }
                    }
                }
                self.send_records(cx, idx, &recs, Kind::Announce);
            }
        }
        let (due, rest): (Vec<Pending>, Vec<Pending>) = core::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.due <= now);
        self.pending = rest;
        for p in due {
            if let Some(idx) = cx.ifaces.iter().position(|i| i.id == p.iface) {
                self.send_response(cx, idx, p.dest, p.answers, Vec::new(), None, p.probe);
            }
        }
    }

    pub(crate) fn poll_at(&self) -> Option<Instant> {
        let groups = core::iter::once(&self.host_group)
            .chain(self.services.iter().map(|s| &s.group))
            .filter(|g| g.phase != Phase::Announced)
            .map(|g| g.next);
        groups.chain(self.pending.iter().map(|p| p.due)).min()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Announce,
    Goodbye,
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn rename_labels() {
        assert_eq!(instance_label("My Web", 1), "My Web");
        assert_eq!(instance_label("My Web", 2), "My Web (2)");
        let long = "é".repeat(40); // 80 bytes
        let l = instance_label(&long, 12);
        assert!(l.len() <= 63 && l.ends_with(" (12)"));
        assert_eq!(host_label("node", 3), "node-3");
        assert_eq!(host_label_clean("my box!", "x"), "mybox");
        assert_eq!(host_label_clean("!!", "cloudy"), "cloudy");
    }

    #[test]
    fn tie_break_order() {
        let n = Name::parse_str("h.local").unwrap();
        let a = |x: u8| Record::new(n.clone(), 120, true, RData::A([10, 0, 0, x].into()));
        let ours = vec![a(1)];
        let b2 = a(2);
        assert_eq!(compare_sets(&ours, &[&b2]), core::cmp::Ordering::Less);
        let b0 = a(0);
        assert_eq!(compare_sets(&ours, &[&b0]), core::cmp::Ordering::Greater);
        let b1 = a(1);
        assert_eq!(compare_sets(&ours, &[&b1]), core::cmp::Ordering::Equal);
        // A longer set with an equal prefix wins.
        assert_eq!(compare_sets(&ours, &[&b1, &b2]), core::cmp::Ordering::Less);
        // Type before rdata: AAAA (28) beats any A (1).
        let v6 = Record::new(n.clone(), 120, true, RData::Aaaa("::1".parse().unwrap()));
        assert_eq!(compare_sets(&[a(255)], &[&v6]), core::cmp::Ordering::Less);
    }
}
