//! Service announcement and discovery: a Multicast DNS responder, browser
//! and cache (RFC 6762) speaking DNS-SD (RFC 6763), interoperable with
//! Avahi, Bonjour and python-zeroconf.
//!
//! - [`name`]: bounded, case-insensitive DNS names; presentation form.
//! - [`wire`]: DNS message parse/emit with compression (RFC 1035 §4).
//! - [`responder`]: this box's records: probing, announcing, conflicts,
//!   answers, goodbyes (RFC 6762 §6–§11; RFC 6763 §9, §12).
//! - [`cache`]: other hosts' records, fixed capacity (§10), TTLs capped,
//!   evicted by trust (this micro cloud, answers, unsolicited).
//! - [`guard`]: tells answers to our questions from unsolicited responses
//!   and rate-limits the latter.
//! - [`browser`]: continuous querying and resolves (§5.2).
//!
//! [`Mdns`] ties them together, sans-IO: the runtime passes received
//! datagrams to [`Mdns::handle_packet`], calls [`Mdns::handle_timeout`]
//! at [`Mdns::poll_at`], and sends what lands in its [`MdnsOutbox`] from
//! port 5353 of the named interface. Nothing here reads the clock or
//! touches a socket.
//!
//! Invariants:
//! - Input is checked in this order, each rejection counted in
//!   [`MdnsStats`]: known interface, on-link source (§11: IPv4 in one of
//!   the interface's subnets, IPv6 link-local or in one of its prefixes),
//!   not our own multicast looped back, size ≤ [`MDNS_MAX_PACKET`], parse,
//!   opcode 0 (and rcode 0, source port 5353 for responses, §6, §18),
//!   per-interface query rate; for responses from the LAN that answer no
//!   question we sent lately, the per-source rate, then for each record
//!   new to the cache the budget of all sources ([`guard`]).
//! - Records received on the overlay interface ([`Mdns::set_overlay`])
//!   are this micro cloud's: exempt from the unsolicited limits (only
//!   members reach that link) and evicted last.
//! - Nothing is ever sent to an off-link address: replies go to the
//!   multicast groups or to the (on-link) source of the query.
//! - One query yields at most one response packet per destination, of at
//!   most [`MDNS_MAX_PAYLOAD_V4`]/[`MDNS_MAX_PAYLOAD_V6`] bytes, within a
//!   per-interface answer rate: no amplification.
//! - Memory is bounded by the `MDNS_*` capacities in [`crate::limits`].

pub mod browser;
pub mod cache;
pub mod guard;
pub mod name;
pub mod responder;
pub mod wire;

#[cfg(test)]
mod sim;

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use self::browser::Browser;
use self::cache::{Cache, Inserted, Origin, Trust};
use self::guard::Guard;
use self::name::Name;
use self::responder::Responder;
use self::wire::{
    Message, Question, RData, Record, Section, Writer, TYPE_A, TYPE_AAAA, TYPE_PTR, TYPE_SRV,
    TYPE_TXT,
};
use crate::config::IpCidr;
use crate::limits::*;
use crate::time::{earliest, Duration, Instant, TokenBucket};

/// The mDNS port (RFC 6762 §3).
pub const MDNS_PORT: u16 = 5353;
/// IPv4 group 224.0.0.251 (§3).
pub const MDNS_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// IPv6 group ff02::fb (§3).
pub const MDNS_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);

/// An interface as the runtime numbers it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct IfaceId(pub u8);

/// Where the engine's output goes: send `packet` from port 5353 of
/// interface `iface` to `to` (a multicast group or an on-link querier).
pub trait MdnsOutbox {
    fn send(&mut self, iface: IfaceId, to: SocketAddr, packet: &[u8]);
}

/// A service to publish (`config service` in UCI, `cloudy publish`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceSpec {
    /// Instance name: one label of UTF-8, 1–63 bytes; dots and spaces allowed.
    pub instance: String,
    /// `_http._tcp` (also accepted: `_http._tcp.local`, and `http` for `_http._tcp`).
    pub service_type: String,
    pub port: u16,
    /// `KEY=VALUE` strings (RFC 6763 §6), each ≤ 255 bytes, ≤ [`MDNS_MAX_TXT`] in all.
    pub txt: Vec<String>,
    /// Target host (`name.local`); default: this box's host name.
    pub host: Option<String>,
}

/// Why a call of the API was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MdnsError {
    InvalidInstance,
    InvalidType,
    InvalidHost,
    TxtTooLong,
    TooManyServices,
    TooManyInterfaces,
    NotFound,
}

impl fmt::Display for MdnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MdnsError::InvalidInstance => "instance name must be 1-63 bytes",
            MdnsError::InvalidType => "service type must look like _name._tcp or _name._udp",
            MdnsError::InvalidHost => "invalid host name",
            MdnsError::TxtTooLong => "TXT strings too long",
            MdnsError::TooManyServices => "too many published services",
            MdnsError::TooManyInterfaces => "too many mDNS interfaces",
            MdnsError::NotFound => "no such published service",
        })
    }
}

impl std::error::Error for MdnsError {}

/// State of a published service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PublishState {
    /// Probing its name (§8.1); not answered yet.
    Probing,
    /// Ours: announced and answered.
    Announced,
    /// Announced under a new name after a conflict (§9).
    ConflictRenamed,
}

impl PublishState {
    pub fn as_str(self) -> &'static str {
        match self {
            PublishState::Probing => "probing",
            PublishState::Announced => "announced",
            PublishState::ConflictRenamed => "conflict-renamed",
        }
    }
}

/// One published service as `cloudy status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublishedService {
    /// The name in use (`Name (2)` after a conflict).
    pub instance: String,
    /// The name asked for.
    pub requested: String,
    /// `_http._tcp`.
    pub service_type: String,
    pub port: u16,
    pub state: PublishState,
}

/// A resolved service (`cloudy search`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FoundService {
    /// Instance label, as UTF-8 (lossy).
    pub instance: String,
    /// `_http._tcp`.
    pub service_type: String,
    /// Target host in presentation form (`node.cloud.local`).
    pub host: String,
    /// Addresses of the host on the interface it was seen on (may be empty while resolving).
    pub addresses: Vec<IpAddr>,
    pub port: u16,
    pub txt: Vec<String>,
    /// Interface it was found on; `None` for this box's own services.
    pub iface: Option<IfaceId>,
}

/// Counters and sizes (`cloudy status`). Plain fields: single-threaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MdnsStats {
    pub published: u32,
    pub cached: u32,
    pub browsing: u32,
    pub interfaces: u32,
    pub packets_received: u64,
    /// Unparseable or oversized messages.
    pub dropped_malformed: u64,
    /// Sources not on the link (§11), or on an unknown interface.
    pub dropped_offlink: u64,
    /// Over the per-interface query or answer rate, or the pending-response cap.
    pub dropped_rate: u64,
    /// Well-formed but ignored: our own multicast looped back, nonzero
    /// opcode/rcode, responses not from port 5353.
    pub dropped_ignored: u64,
    pub conflicts: u64,
    pub probes_sent: u64,
    pub announcements_sent: u64,
    pub goodbyes_sent: u64,
    pub responses_sent: u64,
    pub queries_sent: u64,
    /// Cache entries evicted when full or when their source was at its quota.
    pub cache_evictions: u64,
    /// New records not cached: the cache was full of better-ranked ones.
    pub cache_refused: u64,
    /// Records received with a TTL above [`MDNS_MAX_TTL`], capped.
    pub ttl_capped: u64,
    /// Unsolicited responses from the LAN over their source's rate.
    pub dropped_unsolicited: u64,
    /// Records of unsolicited LAN responses not cached: over the budget
    /// of all sources.
    pub unsolicited_refused: u64,
}

/// A small deterministic generator (splitmix64) for protocol jitter.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, lo + span]` (millisecond steps).
    pub(crate) fn delay(&mut self, lo: Duration, span: Duration) -> Duration {
        let span_ms = u64::try_from(span.as_millis()).unwrap_or(0);
        lo + Duration::from_millis(self.next_u64() % (span_ms + 1))
    }
}

/// One interface the engine runs on.
#[derive(Clone, Debug)]
pub(crate) struct Iface {
    pub(crate) id: IfaceId,
    pub(crate) subnets: Vec<IpCidr>,
    /// Our addresses here: the A/AAAA records of the host name (§6.2).
    pub(crate) addrs: Vec<IpAddr>,
    queries: TokenBucket,
    pub(crate) answers: TokenBucket,
    /// The overlay device: its records are this micro cloud's.
    overlay: bool,
}

impl Iface {
    pub(crate) fn has_v4(&self) -> bool {
        self.addrs.iter().any(IpAddr::is_ipv4)
    }

    pub(crate) fn has_v6(&self) -> bool {
        self.addrs.iter().any(IpAddr::is_ipv6)
    }

    /// §11: on-link sources only.
    fn on_link(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None if v6.segments()[0] & 0xffc0 == 0xfe80 => return true,
                None => ip,
            },
            v4 => v4,
        };
        self.subnets.iter().any(|c| in_subnet(ip, c))
    }

    /// Multicast groups of the families this interface has addresses of.
    pub(crate) fn groups(&self) -> heapless::Vec<SocketAddr, 2> {
        let mut v = heapless::Vec::new();
        if self.has_v4() {
            let _ = v.push(SocketAddr::new(MDNS_GROUP_V4.into(), MDNS_PORT));
        }
        if self.has_v6() {
            let _ = v.push(SocketAddr::new(MDNS_GROUP_V6.into(), MDNS_PORT));
        }
        v
    }
}

/// Payload limit for a destination.
pub(crate) fn payload_limit(to: &SocketAddr) -> usize {
    if to.is_ipv4() {
        MDNS_MAX_PAYLOAD_V4
    } else {
        MDNS_MAX_PAYLOAD_V6
    }
}

fn in_subnet(ip: IpAddr, c: &IpCidr) -> bool {
    match (ip, c.addr) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let p = u32::from(c.prefix.min(32));
            let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let p = u32::from(c.prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - p).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// What the responder needs from the engine for one call.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) ifaces: &'a mut [Iface],
    pub(crate) out: &'a mut dyn MdnsOutbox,
    pub(crate) stats: &'a mut MdnsStats,
    pub(crate) rng: &'a mut Rng,
}

/// Parse a service type (`_http._tcp`, `_http._tcp.local`, or `http` for
/// `_http._tcp`) into `_http._tcp.local`, by the rules of [`crate::dnssd`]
/// (RFC 6763 §7, RFC 6335 §5.1), which the config and console share.
pub fn parse_service_type(s: &str) -> Result<Name, MdnsError> {
    let t = crate::dnssd::parse_type(s).map_err(|_| MdnsError::InvalidType)?;
    let service = format!("_{}", t.name);
    Name::from_labels([service.as_str(), t.proto.label(), "local"])
        .map_err(|_| MdnsError::InvalidType)
}

/// `_http._tcp` from `_http._tcp.local`.
fn type_string(t: &Name) -> String {
    t.labels()
        .take(2)
        .map(name::label_to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether `n` looks like a DNS-SD service type (`_x._tcp.local`).
fn is_service_type(n: &Name) -> bool {
    let l: Vec<&[u8]> = n.labels().collect();
    matches!(l.as_slice(), [s, p, d] if s.first() == Some(&b'_')
        && (p.eq_ignore_ascii_case(b"_tcp") || p.eq_ignore_ascii_case(b"_udp"))
        && d.eq_ignore_ascii_case(b"local"))
}

/// The mDNS/DNS-SD engine of one box.
#[derive(Clone)]
pub struct Mdns {
    responder: Responder,
    cache: Cache,
    guard: Guard,
    browser: Browser,
    ifaces: Vec<Iface>,
    stats: MdnsStats,
    rng: Rng,
    stopped: bool,
}

impl Mdns {
    /// An engine for host `host_label.domain_label.local` (node, cloud).
    pub fn new(host_label: &str, domain_label: &str, now: Instant, seed: u64) -> Mdns {
        let mut rng = Rng(seed);
        let responder = Responder::new(host_label, domain_label, now, &mut rng);
        Mdns {
            responder,
            cache: Cache::new(MDNS_CACHE_SIZE, MDNS_CACHE_PER_SOURCE),
            guard: Guard::new(now),
            browser: Browser::new(),
            ifaces: Vec::new(),
            stats: MdnsStats::default(),
            rng,
            stopped: false,
        }
    }

    fn ctx<'a>(
        &'a mut self,
        now: Instant,
        out: &'a mut dyn MdnsOutbox,
    ) -> (&'a mut Responder, Ctx<'a>) {
        (
            &mut self.responder,
            Ctx {
                now,
                ifaces: &mut self.ifaces,
                out,
                stats: &mut self.stats,
                rng: &mut self.rng,
            },
        )
    }

    /// Run on an interface (or update it). `subnets` decide what is
    /// on-link (§11); `addresses` are our A/AAAA there. A new or changed
    /// interface restarts probing of all our names (§8.1) and browsing.
    pub fn add_interface(
        &mut self,
        id: IfaceId,
        subnets: &[IpCidr],
        addresses: &[IpAddr],
        now: Instant,
    ) -> Result<(), MdnsError> {
        let subnets: Vec<IpCidr> = subnets.iter().copied().take(MDNS_MAX_IFACE_ADDRS).collect();
        let addrs: Vec<IpAddr> = addresses
            .iter()
            .copied()
            .take(MDNS_MAX_IFACE_ADDRS)
            .collect();
        let count = self.ifaces.len();
        match self.ifaces.iter_mut().find(|i| i.id == id) {
            Some(i) if i.subnets == subnets && i.addrs == addrs => return Ok(()),
            Some(i) => {
                i.subnets = subnets;
                i.addrs = addrs;
            }
            None if count >= MDNS_MAX_INTERFACES => return Err(MdnsError::TooManyInterfaces),
            None => self.ifaces.push(Iface {
                id,
                subnets,
                addrs,
                queries: TokenBucket::new(MDNS_QUERIES_PER_SEC, MDNS_QUERY_BURST, now),
                answers: TokenBucket::new(MDNS_ANSWERS_PER_SEC, MDNS_ANSWER_BURST, now),
                overlay: false,
            }),
        }
        self.responder.reprobe_all(now, &mut self.rng);
        let first = self
            .rng
            .delay(Duration::from_millis(20), Duration::from_millis(100));
        self.browser.restart(now, first);
        Ok(())
    }

    /// Mark `id` as the overlay device (or not): what arrives there comes
    /// from members of this micro cloud.
    pub fn set_overlay(&mut self, id: IfaceId, overlay: bool) {
        if let Some(i) = self.ifaces.iter_mut().find(|i| i.id == id) {
            i.overlay = overlay;
        }
    }

    /// Stop using an interface: goodbyes there first (§10.1).
    pub fn remove_interface(&mut self, now: Instant, id: IfaceId, out: &mut dyn MdnsOutbox) {
        let Some(idx) = self.ifaces.iter().position(|i| i.id == id) else {
            return;
        };
        if !self.stopped {
            let (r, mut cx) = self.ctx(now, out);
            r.goodbye_iface(&mut cx, idx);
        }
        self.responder.forget_iface(id);
        self.cache.remove_iface(id);
        self.ifaces.remove(idx);
    }

    /// Publish the services of the configuration, touching only those
    /// added, changed or removed (umdns-style reload). Returns the
    /// rejected ones.
    pub fn set_services(
        &mut self,
        now: Instant,
        services: &[ServiceSpec],
        out: &mut dyn MdnsOutbox,
    ) -> Vec<(String, MdnsError)> {
        let (r, mut cx) = self.ctx(now, out);
        r.set_services(&mut cx, services)
    }

    /// Publish one service (or update it in place if its instance name is
    /// already published).
    pub fn publish(
        &mut self,
        now: Instant,
        spec: ServiceSpec,
        out: &mut dyn MdnsOutbox,
    ) -> Result<(), MdnsError> {
        let (r, mut cx) = self.ctx(now, out);
        r.publish(&mut cx, spec)
    }

    /// Withdraw a service by its requested or current instance name,
    /// with goodbyes (§10.1).
    pub fn unpublish(
        &mut self,
        now: Instant,
        instance: &str,
        out: &mut dyn MdnsOutbox,
    ) -> Result<(), MdnsError> {
        let (r, mut cx) = self.ctx(now, out);
        r.unpublish(&mut cx, instance)
    }

    /// Start continuous querying for a service type (§5.2).
    pub fn browse(&mut self, now: Instant, service_type: &str) -> Result<(), MdnsError> {
        let t = parse_service_type(service_type)?;
        let first = self
            .rng
            .delay(Duration::from_millis(20), Duration::from_millis(100));
        self.browser.browse(now, &t, first);
        Ok(())
    }

    /// Services known now: this box's own and those resolved from the
    /// cache (PTR → SRV/TXT → A/AAAA). Starts browsing the type (all
    /// types, via `_services._dns-sd._udp`, when `None`) and queues
    /// resolve queries for what is missing; call again later for more.
    pub fn search(&mut self, now: Instant, service_type: Option<&str>) -> Vec<FoundService> {
        let filter = match service_type.map(parse_service_type) {
            Some(Ok(t)) => Some(t),
            Some(Err(_)) => return Vec::new(),
            None => None,
        };
        let first = self
            .rng
            .delay(Duration::from_millis(20), Duration::from_millis(100));
        match &filter {
            Some(t) => self.browser.browse(now, t, first),
            None => {
                let enum_name = responder::services_name();
                self.browser.browse(now, &enum_name, first);
                let types: Vec<Name> = self
                    .cache
                    .lookup(now, None, &enum_name, TYPE_PTR)
                    .filter_map(|e| match &e.record.data {
                        RData::Ptr(t) if is_service_type(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect();
                for t in types {
                    self.browser.browse(now, &t, first);
                }
            }
        }
        let mut found = self.responder.own_services(&self.ifaces, filter.as_ref());
        let ptrs: Vec<(IfaceId, Name, Name)> = self
            .cache
            .iter()
            .filter(|e| !e.dying && e.expires > now && e.record.rtype() == TYPE_PTR)
            .filter(|e| match &filter {
                Some(t) => e.record.name == *t,
                None => is_service_type(&e.record.name),
            })
            .filter_map(|e| match &e.record.data {
                RData::Ptr(inst) => Some((e.iface, e.record.name.clone(), inst.clone())),
                _ => None,
            })
            .collect();
        for (iface, stype, inst) in ptrs {
            let srv = self
                .cache
                .lookup(now, Some(iface), &inst, TYPE_SRV)
                .find_map(|e| match &e.record.data {
                    RData::Srv(s) => Some(s.clone()),
                    _ => None,
                });
            let txt = self
                .cache
                .lookup(now, Some(iface), &inst, TYPE_TXT)
                .find_map(|e| match &e.record.data {
                    RData::Txt(t) => Some(t.to_strings()),
                    _ => None,
                });
            if txt.is_none() {
                self.browser.resolve(now, &inst, TYPE_TXT);
            }
            let Some(srv) = srv else {
                self.browser.resolve(now, &inst, TYPE_SRV);
                continue;
            };
            let addresses = self.cache.addresses(now, iface, &srv.target);
            if addresses.is_empty() {
                self.browser.resolve(now, &srv.target, TYPE_A);
                self.browser.resolve(now, &srv.target, TYPE_AAAA);
            }
            let f = FoundService {
                instance: String::from_utf8_lossy(inst.first_label().unwrap_or_default())
                    .into_owned(),
                service_type: type_string(&stype),
                host: srv.target.to_string(),
                addresses,
                port: srv.port,
                txt: txt.unwrap_or_default(),
                iface: Some(iface),
            };
            if !found.contains(&f) {
                found.push(f);
            }
        }
        found.sort_by(|a, b| {
            (&a.service_type, &a.instance, a.iface).cmp(&(&b.service_type, &b.instance, b.iface))
        });
        found
    }

    /// Take in one datagram received on port 5353 of `iface` from `from`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        iface: IfaceId,
        from: SocketAddr,
        packet: &[u8],
        out: &mut dyn MdnsOutbox,
    ) {
        self.stats.packets_received += 1;
        if self.stopped {
            return;
        }
        let Some(idx) = self.ifaces.iter().position(|i| i.id == iface) else {
            self.stats.dropped_offlink += 1;
            return;
        };
        let ifc = &mut self.ifaces[idx];
        if !ifc.on_link(from.ip()) {
            self.stats.dropped_offlink += 1;
            crate::debug!("off-link mDNS packet from {from} dropped");
            return;
        }
        if from.port() == MDNS_PORT && ifc.addrs.contains(&from.ip()) {
            // Our own multicast, looped back.
            self.stats.dropped_ignored += 1;
            return;
        }
        if packet.len() > MDNS_MAX_PACKET {
            self.stats.dropped_malformed += 1;
            return;
        }
        let msg = match Message::parse(packet) {
            Ok(m) => m,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                crate::debug!("malformed mDNS packet from {from}: {e}");
                return;
            }
        };
        if msg.opcode() != 0 {
            self.stats.dropped_ignored += 1;
            return;
        }
        if msg.is_response() {
            // §6: responses come from port 5353; §18.11: rcode 0.
            if from.port() != MDNS_PORT || msg.rcode() != 0 {
                self.stats.dropped_ignored += 1;
                return;
            }
            let overlay = self.ifaces[idx].overlay;
            let answers = self.guard.answers(now, iface, &msg);
            let solicited = answers.contains(&true);
            if !overlay && !solicited && !self.guard.take_packet(now, from.ip()) {
                self.stats.dropped_unsolicited += 1;
                return;
            }
            {
                let (r, mut cx) = self.ctx(now, out);
                r.handle_response(&mut cx, idx, &msg);
            }
            let records = msg.answers.iter().chain(&msg.additionals);
            for (rec, answer) in records.zip(answers) {
                let trust = match (overlay, answer) {
                    (true, _) => Trust::Overlay,
                    (false, true) => Trust::Answer,
                    (false, false) => Trust::Unsolicited,
                };
                if trust == Trust::Unsolicited
                    && rec.ttl > 0
                    && cache::cacheable(rec)
                    && !self.cache.contains(iface, rec)
                    && !self.guard.take_record(now)
                {
                    self.stats.unsolicited_refused += 1;
                    continue;
                }
                let jitter = (self.rng.next_u64() % 21) as u16;
                let origin = Origin {
                    iface,
                    from: from.ip(),
                    trust,
                };
                if self.cache.insert(now, origin, rec, jitter) == Inserted::Refused {
                    continue;
                }
                if rec.ttl > 0 {
                    self.browser.answered(rec);
                }
            }
        } else {
            if !self.ifaces[idx].queries.take(now) {
                self.stats.dropped_rate += 1;
                return;
            }
            if from.port() == MDNS_PORT {
                for q in &msg.questions {
                    self.cache.observe_query(now, iface, q, &msg.answers);
                }
            }
            let (r, mut cx) = self.ctx(now, out);
            r.handle_query(&mut cx, idx, from, &msg);
        }
    }

    /// Run timers due at `now`: probes, announcements, delayed answers,
    /// cache expiry, browse/refresh/resolve queries.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut dyn MdnsOutbox) {
        if self.stopped {
            return;
        }
        self.cache.expire(now);
        {
            let (r, mut cx) = self.ctx(now, out);
            r.handle_timeout(&mut cx);
        }
        let due = self.browser.due(now);
        let refresh: Vec<(IfaceId, Question)> = self
            .cache
            .due_refreshes(now)
            .into_iter()
            .filter(|x| self.interested(x.iface, &x.record))
            .map(|x| {
                (
                    x.iface,
                    Question {
                        name: x.record.name.clone(),
                        qtype: x.record.rtype(),
                        qclass: x.record.class,
                        unicast_response: false,
                    },
                )
            })
            .collect();
        if due.is_empty() && refresh.is_empty() {
            return;
        }
        for idx in 0..self.ifaces.len() {
            let id = self.ifaces[idx].id;
            let mut qs = due.clone();
            for (i, q) in &refresh {
                if *i == id && !qs.contains(q) {
                    qs.push(q.clone());
                }
            }
            self.send_queries(now, idx, &qs, out);
        }
    }

    /// Whether anyone wants `r` kept fresh (§5.2): browsed types and the
    /// SRV/TXT/A/AAAA of their instances.
    fn interested(&self, iface: IfaceId, r: &Record) -> bool {
        let browsed = |n: &Name| self.browser.is_browsing(n);
        match r.rtype() {
            TYPE_PTR => browsed(&r.name),
            TYPE_SRV | TYPE_TXT => r.name.parent().is_some_and(|p| browsed(&p)),
            TYPE_A | TYPE_AAAA => self.cache.iter().any(|e| {
                e.iface == iface
                    && matches!(&e.record.data, RData::Srv(s) if s.target == r.name)
                    && e.record.name.parent().is_some_and(|p| browsed(&p))
            }),
            _ => false,
        }
    }

    /// Multicast `qs` on one interface with known answers (§7.1); a list
    /// that does not fit is split, known answers that do not fit are left out.
    fn send_queries(
        &mut self,
        now: Instant,
        idx: usize,
        qs: &[Question],
        out: &mut dyn MdnsOutbox,
    ) {
        let Some(ifc) = self.ifaces.get(idx) else {
            return;
        };
        let id = ifc.id;
        let groups = ifc.groups();
        for q in qs {
            self.guard.asked(now, id, &q.name, q.qtype);
            self.cache.promote(id, q);
        }
        for to in groups {
            let mut i = 0;
            while i < qs.len() {
                let Ok(mut w) = Writer::new(0, 0, payload_limit(&to)) else {
                    return;
                };
                let start = i;
                while i < qs.len() && w.question(&qs[i]).is_ok() {
                    i += 1;
                }
                if i == start {
                    i += 1;
                    continue;
                }
                'known: for q in &qs[start..i] {
                    for k in self.cache.known_answers(now, id, q) {
                        if w.record(Section::Answer, &k).is_err() {
                            break 'known;
                        }
                    }
                }
                out.send(id, to, &w.finish());
                self.stats.queries_sent += 1;
            }
        }
    }

    /// When [`Mdns::handle_timeout`] wants to run next.
    pub fn poll_at(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let t = earliest(self.responder.poll_at(), self.browser.poll_at());
        let t = earliest(t, self.cache.next_expiry());
        earliest(t, self.cache.next_refresh())
    }

    /// Goodbyes for everything announced (§10.1); the engine then stays silent.
    pub fn shutdown(&mut self, now: Instant, out: &mut dyn MdnsOutbox) {
        if self.stopped {
            return;
        }
        let (r, mut cx) = self.ctx(now, out);
        r.shutdown(&mut cx);
        self.stopped = true;
    }

    pub fn stats(&self) -> MdnsStats {
        let mut s = self.stats.clone();
        s.published = self.responder.published().len() as u32;
        s.cached = self.cache.len() as u32;
        s.browsing = self.browser.count() as u32;
        s.interfaces = self.ifaces.len() as u32;
        s.cache_evictions = self.cache.evictions;
        s.cache_refused = self.cache.refused;
        s.ttl_capped = self.cache.ttl_capped;
        s
    }

    /// Our host name now (`node.cloud.local`, `node-2.cloud.local` after a conflict).
    pub fn host_name(&self) -> String {
        self.responder.host().to_string()
    }

    pub fn published(&self) -> Vec<PublishedService> {
        self.responder.published()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn service_types() {
        let t = |s| parse_service_type(s).map(|n| n.to_string());
        assert_eq!(t("_http._tcp").unwrap(), "_http._tcp.local");
        assert_eq!(t("_http._tcp.local.").unwrap(), "_http._tcp.local");
        assert_eq!(t("_IPP._udp.LOCAL").unwrap(), "_IPP._udp.local");
        assert_eq!(t("http").unwrap(), "_http._tcp.local");
        for bad in [
            "_http",
            "_http._sctp",
            "http._tcp",
            "_a_b._tcp",
            "_x._tcp.foo",
            "_0123456789abcdef._tcp",
            "",
        ] {
            assert_eq!(t(bad), Err(MdnsError::InvalidType), "{bad}");
        }
        assert_eq!(
            type_string(&parse_service_type("ssh").unwrap()),
            "_ssh._tcp"
        );
    }

    #[test]
    fn subnets_and_link_local() {
        let ifc = Iface {
            id: IfaceId(0),
            subnets: vec![
                IpCidr {
                    addr: "10.1.2.3".parse().unwrap(),
                    prefix: 24,
                },
                IpCidr {
                    addr: "fd00:1::1".parse().unwrap(),
                    prefix: 64,
                },
            ],
            addrs: vec!["10.1.2.3".parse().unwrap()],
            queries: TokenBucket::new(1, 1, Instant::ZERO),
            answers: TokenBucket::new(1, 1, Instant::ZERO),
            overlay: false,
        };
        assert!(ifc.on_link("10.1.2.200".parse().unwrap()));
        assert!(!ifc.on_link("10.1.3.1".parse().unwrap()));
        assert!(ifc.on_link("fe80::1234".parse().unwrap()));
        assert!(ifc.on_link("fd00:1::99".parse().unwrap()));
        assert!(!ifc.on_link("fd00:2::99".parse().unwrap()));
        assert!(ifc.on_link("::ffff:10.1.2.9".parse().unwrap()));
        assert!(in_subnet(
            "1.2.3.4".parse().unwrap(),
            &IpCidr {
                addr: "0.0.0.0".parse().unwrap(),
                prefix: 0
            }
        ));
        assert_eq!(ifc.groups().len(), 1);
    }
}
