//! Discovery in the daemon: runs the sans-IO [`Mdns`] engine over the
//! multicast sockets of [`super::mcast`] and answers the console's
//! `publish`, `unpublish` and `search`.
//!
//! Interfaces: the overlay device plus `list mdns_interface`, each given a
//! fixed [`IfaceId`] while it stays configured; its subnets and addresses
//! are read from the kernel at start, on every reload and every
//! [`ADDRESS_REFRESH`] (a new TAP gets its IPv6 link-local address only
//! after duplicate address detection; an interface may come later). A datagram that
//! arrives on an interface not in that list is dropped and counted.
//! Send errors are counted, never fatal. In TAP mode the overlay device
//! is marked as such ([`Mdns::set_overlay`]): only members of the micro
//! cloud reach it, so its records are trusted over the LAN's. A raw-mode
//! device is a LAN port (its hosts are not members): it is not.
//!
//! Services: those of the configuration plus those published from the
//! console (kept apart, so a reload keeps console services; a console
//! service of the same instance name as a configured one is replaced by
//! the configured one at the next reload).
//!
//! Search freshness: a search starts browsing its type (all types through
//! `_services._dns-sd._udp` when none is given). For [`WARM_UP`] after the
//! first search of a type, the answer carries `retry_ms`, the time left,
//! and the daemon repeats the search every [`PUMP_INTERVAL`] meanwhile (so
//! types found by enumeration are browsed and instances resolved); the
//! CLI waits `retry_ms` and asks once more.
//!
//! [`services_view`] is the pure part of `search`: filter, join with the
//! overlay's peer table for RTT and hops, sort.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

use super::mcast::MdnsSockets;
use super::netif;
use crate::config::{uci, Config, Mode};
use crate::console::proto::{DiscoveryInfo, Response, ServiceInfo};
use crate::limits::{MDNS_MAX_BROWSES, MDNS_MAX_INTERFACES, MDNS_MAX_PACKET};
pub use crate::mdns::ServiceSpec;
use crate::mdns::{FoundService, IfaceId, Mdns, MdnsOutbox};
use crate::overlay::PeerInfo;
use crate::time::{earliest, Duration, Instant};
use crate::{error, info, warn};

/// How long after the first search of a type its answer is provisional.
pub const WARM_UP: Duration = Duration::from_millis(1500);
/// How often a warming search is repeated by the daemon.
pub const PUMP_INTERVAL: Duration = Duration::from_millis(250);
/// How often interface addresses are read again.
pub const ADDRESS_REFRESH: Duration = Duration::from_secs(5);
/// Datagrams read per socket per wakeup.
const MDNS_RECV_BATCH: usize = 16;
/// Search types remembered (beyond: answered at once, without waiting).
const MAX_WARM: usize = MDNS_MAX_BROWSES;
/// Console-published services kept across reloads.
const MAX_CONSOLE_SERVICES: usize = crate::limits::MAX_SERVICES;

/// One interface mDNS runs on.
#[derive(Clone, Debug)]
struct Iface {
    id: IfaceId,
    name: String,
    ifindex: u32,
}

/// Sends the engine's output through the multicast sockets.
struct SockOutbox<'a> {
    socks: &'a MdnsSockets,
    ifaces: &'a [Iface],
    errors: &'a mut u64,
}

impl MdnsOutbox for SockOutbox<'_> {
    fn send(&mut self, iface: IfaceId, to: SocketAddr, packet: &[u8]) {
        let Some(i) = self.ifaces.iter().find(|i| i.id == iface) else {
            *self.errors += 1;
            return;
        };
        if let Err(e) = self.socks.send(i.ifindex, to, packet) {
            *self.errors += 1;
            crate::debug!("mdns send on {} to {to}: {e}", i.name);
        }
    }
}

/// The daemon's discovery part.
pub struct Discovery {
    mdns: Mdns,
    socks: MdnsSockets,
    ifaces: Vec<Iface>,
    /// The configured interface names (some may not exist yet).
    names: Vec<String>,
    /// The TAP device among them, if any.
    overlay: Option<String>,
    next_refresh: Instant,
    node: String,
    cloud: String,
    config_services: Vec<ServiceSpec>,
    console_services: Vec<ServiceSpec>,
    /// Searches (by normalised type, `None` = all) and when the first of
    /// each started; at most [`MAX_WARM`], forgotten on a new identity.
    warm: Vec<(Option<String>, Instant)>,
    next_pump: Option<Instant>,
    buf: Box<[u8]>,
    unknown_iface: u64,
    send_errors: u64,
}

/// The overlay TAP device mDNS runs on for `cfg` (none in raw mode).
fn overlay_name(cfg: &Config, overlay_device: &str) -> Option<String> {
    let tap = cfg.agent.mode == Mode::Tap && !overlay_device.is_empty() && overlay_device != "-";
    tap.then(|| overlay_device.to_string())
}

/// The interface names mDNS should run on for `cfg`.
pub fn interface_names(cfg: &Config, overlay_device: &str) -> Vec<String> {
    let a = &cfg.agent;
    let mut names = Vec::new();
    let overlay = match a.mode {
        Mode::Tap => overlay_device.to_string(),
        Mode::Raw => a.raw_device.clone().unwrap_or_default(),
    };
    if !overlay.is_empty() && overlay != "-" {
        names.push(overlay);
    }
    for n in &a.mdns_interfaces {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names.truncate(MDNS_MAX_INTERFACES);
    names
}

fn config_specs(cfg: &Config) -> Vec<ServiceSpec> {
    let mut specs: Vec<ServiceSpec> = cfg
        .services
        .iter()
        .map(|s| ServiceSpec {
            instance: s.name.clone(),
            service_type: s.service_type.clone(),
            port: s.port,
            txt: s.txt.clone(),
            host: s.host.clone(),
        })
        .collect();
    // A box serving storage says so, under its node name (unique in the
    // cloud); clients find the store boxes of members by this type.
    if let Some(st) = cfg.store.as_ref().filter(|s| s.serving_path().is_some()) {
        specs.push(ServiceSpec {
            instance: cfg.agent.name.clone(),
            service_type: crate::dnssd::STORE_SERVICE_TYPE.into(),
            port: st.port,
            txt: vec!["v=1".into()],
            host: None,
        });
    }
    specs
}

impl Discovery {
    /// Binds port 5353 and starts on the interfaces and services of `cfg`.
    pub fn start(
        cfg: &Config,
        overlay_device: &str,
        now: Instant,
        seed: u64,
    ) -> Result<Discovery, String> {
        let socks = MdnsSockets::open().map_err(|e| format!("cannot bind mDNS port 5353: {e}"))?;
        let mut d = Discovery {
            mdns: Mdns::new(&cfg.agent.name, &cfg.agent.cloud, now, seed),
            socks,
            ifaces: Vec::new(),
            names: Vec::new(),
            overlay: None,
            next_refresh: now + ADDRESS_REFRESH,
            node: cfg.agent.name.clone(),
            cloud: cfg.agent.cloud.clone(),
            config_services: Vec::new(),
            console_services: Vec::new(),
            warm: Vec::new(),
            next_pump: None,
            buf: vec![0u8; MDNS_MAX_PACKET + 1].into_boxed_slice(),
            unknown_iface: 0,
            send_errors: 0,
        };
        d.reload(cfg, overlay_device, now, seed);
        info!(
            "discovery on {} as {}",
            d.iface_names().join(", "),
            d.mdns.host_name()
        );
        Ok(d)
    }

    fn iface_names(&self) -> Vec<String> {
        self.ifaces.iter().map(|i| i.name.clone()).collect()
    }

    fn split(&mut self) -> (&mut Mdns, SockOutbox<'_>) {
        (
            &mut self.mdns,
            SockOutbox {
                socks: &self.socks,
                ifaces: &self.ifaces,
                errors: &mut self.send_errors,
            },
        )
    }

    /// Applies `cfg` by difference: a new identity restarts the engine
    /// (goodbyes first), interfaces are added, updated or removed, the
    /// services re-set (the engine touches only what changed).
    pub fn reload(&mut self, cfg: &Config, overlay_device: &str, now: Instant, seed: u64) {
        if cfg.agent.name != self.node || cfg.agent.cloud != self.cloud {
            let (m, mut out) = self.split();
            m.shutdown(now, &mut out);
            self.mdns = Mdns::new(&cfg.agent.name, &cfg.agent.cloud, now, seed);
            self.node = cfg.agent.name.clone();
            self.cloud = cfg.agent.cloud.clone();
            for i in std::mem::take(&mut self.ifaces) {
                let _ = self.socks.leave(i.ifindex);
            }
            self.warm.clear();
        }
        self.names = interface_names(cfg, overlay_device);
        self.overlay = overlay_name(cfg, overlay_device);
        self.set_interfaces(now);
        self.config_services = config_specs(cfg);
        self.apply_services(now);
    }

    fn apply_services(&mut self, now: Instant) {
        let mut all = self.config_services.clone();
        for s in &self.console_services {
            if !all
                .iter()
                .any(|c| c.instance.eq_ignore_ascii_case(&s.instance))
            {
                all.push(s.clone());
            }
        }
        let (m, mut out) = self.split();
        for (name, e) in m.set_services(now, &all, &mut out) {
            error!("service {name}: {e}");
        }
    }

    fn set_interfaces(&mut self, now: Instant) {
        let names = self.names.clone();
        let names = &names;
        let gone: Vec<Iface> = self
            .ifaces
            .iter()
            .filter(|i| !names.contains(&i.name))
            .cloned()
            .collect();
        for i in gone {
            let (m, mut out) = self.split();
            m.remove_interface(now, i.id, &mut out);
            let _ = self.socks.leave(i.ifindex);
            self.ifaces.retain(|x| x.id != i.id);
            info!("discovery: stopped on {}", i.name);
        }
        for name in names {
            let ifindex = match netif::if_index(name) {
                Ok(x) => x,
                Err(e) => {
                    if self.ifaces.iter().any(|i| i.name == *name) || now < self.next_refresh {
                        warn!("discovery: interface {name}: {e}");
                    }
                    self.drop_iface(now, name);
                    continue;
                }
            };
            let cidrs = netif::addresses(name).unwrap_or_else(|e| {
                warn!("discovery: addresses of {name}: {e}");
                Vec::new()
            });
            let addrs: Vec<IpAddr> = cidrs.iter().map(|c| c.addr).collect();
            // A re-created interface has a new index: join it afresh.
            if let Some(old) = self.ifaces.iter().find(|i| i.name == *name) {
                if old.ifindex != ifindex {
                    self.drop_iface(now, name);
                }
            }
            // Idempotent; follows an interface that gained or lost IPv4.
            let has_v4 = addrs.iter().any(IpAddr::is_ipv4);
            let has_v6 = addrs.iter().any(IpAddr::is_ipv6);
            if let Err(e) = self.socks.join(ifindex, has_v4, has_v6) {
                warn!("discovery: cannot join the mDNS groups on {name}: {e}");
                self.drop_iface(now, name);
                continue;
            }
            let id = match self.ifaces.iter().find(|i| i.name == *name) {
                Some(i) => i.id,
                None => {
                    let Some(id) = (0..=u8::MAX)
                        .map(IfaceId)
                        .find(|id| !self.ifaces.iter().any(|i| i.id == *id))
                    else {
                        continue;
                    };
                    self.ifaces.push(Iface {
                        id,
                        name: name.clone(),
                        ifindex,
                    });
                    id
                }
            };
            if let Err(e) = self.mdns.add_interface(id, &cidrs, &addrs, now) {
                warn!("discovery: {name}: {e}");
                let _ = self.socks.leave(ifindex);
                self.ifaces.retain(|i| i.id != id);
                continue;
            }
            self.mdns
                .set_overlay(id, self.overlay.as_deref() == Some(name.as_str()));
        }
    }

    fn drop_iface(&mut self, now: Instant, name: &str) {
        if let Some(i) = self.ifaces.iter().find(|i| i.name == name).cloned() {
            let (m, mut out) = self.split();
            m.remove_interface(now, i.id, &mut out);
            let _ = self.socks.leave(i.ifindex);
            self.ifaces.retain(|x| x.id != i.id);
        }
    }

    /// Descriptors to poll for input.
    pub fn fds(&self) -> Vec<RawFd> {
        self.socks.fds().collect()
    }

    /// Reads up to [`MDNS_RECV_BATCH`] datagrams from `fd`.
    pub fn input(&mut self, now: Instant, fd: RawFd) {
        for _ in 0..MDNS_RECV_BATCH {
            let r = match self.socks.recv(fd, &mut self.buf) {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    crate::debug!("mdns recv: {e}");
                    return;
                }
            };
            let Some(id) = self
                .ifaces
                .iter()
                .find(|i| i.ifindex == r.ifindex)
                .map(|i| i.id)
            else {
                self.unknown_iface += 1;
                continue;
            };
            let Some(packet) = self.buf.get(..r.len) else {
                continue;
            };
            let mut out = SockOutbox {
                socks: &self.socks,
                ifaces: &self.ifaces,
                errors: &mut self.send_errors,
            };
            self.mdns.handle_packet(now, id, r.from, packet, &mut out);
        }
    }

    /// When [`Discovery::timers`] wants to run next.
    pub fn poll_at(&self) -> Option<Instant> {
        let t = earliest(self.mdns.poll_at(), self.next_pump);
        earliest(t, Some(self.next_refresh))
    }

    /// Runs the engine's timers and repeats warming searches.
    pub fn timers(&mut self, now: Instant) {
        if self.next_refresh <= now {
            self.set_interfaces(now);
            self.next_refresh = now + ADDRESS_REFRESH;
        }
        if self.mdns.poll_at().is_some_and(|t| t <= now) {
            let (m, mut out) = self.split();
            m.handle_timeout(now, &mut out);
        }
        if self.next_pump.is_some_and(|t| t <= now) {
            let mut any = false;
            for (ty, t) in &self.warm {
                if now.since(*t) < WARM_UP {
                    let _ = self.mdns.search(now, ty.as_deref());
                    any = true;
                }
            }
            self.next_pump = any.then(|| now + PUMP_INTERVAL);
        }
    }

    /// Goodbyes for everything published (SIGTERM).
    pub fn shutdown(&mut self, now: Instant) {
        let (m, mut out) = self.split();
        m.shutdown(now, &mut out);
    }

    /// `cloudy publish`.
    pub fn publish(&mut self, now: Instant, spec: ServiceSpec) -> Response {
        let service_type = match uci::normalize_service_type(&spec.service_type) {
            Ok(t) => t,
            Err(e) => return Response::error(&format!("bad service type: expected {e}")),
        };
        if spec.port == 0 {
            return Response::error("port must be 1-65535");
        }
        let spec = ServiceSpec {
            service_type: service_type.clone(),
            ..spec
        };
        let existing = self
            .console_services
            .iter()
            .position(|s| s.instance.eq_ignore_ascii_case(&spec.instance));
        if existing.is_none() && self.console_services.len() >= MAX_CONSOLE_SERVICES {
            return Response::error("too many published services");
        }
        let (m, mut out) = self.split();
        if let Err(e) = m.publish(now, spec.clone(), &mut out) {
            return Response::error(&e.to_string());
        }
        let text = format!(
            "published '{}' as {} on port {} (probing)",
            spec.instance, service_type, spec.port
        );
        match existing {
            Some(i) => {
                if let Some(s) = self.console_services.get_mut(i) {
                    *s = spec;
                }
            }
            None => self.console_services.push(spec),
        }
        Response::Ok(text)
    }

    /// `cloudy unpublish`.
    pub fn unpublish(&mut self, now: Instant, instance: &str) -> Response {
        let (m, mut out) = self.split();
        match m.unpublish(now, instance, &mut out) {
            Ok(()) => {
                self.console_services
                    .retain(|s| !s.instance.eq_ignore_ascii_case(instance));
                Response::Ok(format!("unpublished '{instance}'"))
            }
            Err(crate::mdns::MdnsError::NotFound) => {
                Response::error(&format!("no published service named '{instance}'"))
            }
            Err(e) => Response::error(&e.to_string()),
        }
    }

    /// `cloudy search`.
    pub fn search(
        &mut self,
        now: Instant,
        service_type: Option<&str>,
        host: Option<&str>,
        all: bool,
        peers: &[PeerInfo],
    ) -> Response {
        let ty = match service_type.map(uci::normalize_service_type) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => return Response::error(&format!("bad service type: expected {e}")),
        };
        let found = self.mdns.search(now, ty.as_deref());
        // The first search of a type waits for answers; later ones are
        // answered from the cache, kept fresh by continuous browsing.
        let left = match self.warm.iter().find(|(t, _)| *t == ty) {
            Some((_, t)) => (*t + WARM_UP).since(now),
            None if self.warm.len() < MAX_WARM => {
                self.warm.push((ty.clone(), now));
                self.next_pump = Some(now + PUMP_INTERVAL);
                WARM_UP
            }
            None => Duration::ZERO,
        };
        let retry_ms = u32::try_from(left.as_millis()).unwrap_or(0);
        let mut services =
            services_view(found, &self.mdns.host_name(), &self.cloud, peers, host, all);
        // The answer must fit one console frame: drop the tail if not.
        while !services.is_empty()
            && crate::console::proto::encode_frame(&Response::Services {
                services: services.clone(),
                retry_ms,
            })
            .is_err()
        {
            services.truncate(services.len() / 2);
        }
        Response::Services { services, retry_ms }
    }

    /// The discovery lines of `cloudy status`.
    pub fn info(&self) -> DiscoveryInfo {
        let s = self.mdns.stats();
        DiscoveryInfo {
            host: self.mdns.host_name(),
            interfaces: self.iface_names(),
            published: s.published,
            cached: s.cached,
            browsing: s.browsing,
            packets_received: s.packets_received,
            dropped_malformed: s.dropped_malformed,
            dropped_offlink: s.dropped_offlink,
            dropped_rate: s.dropped_rate,
            dropped_ignored: s.dropped_ignored,
            dropped_unknown_iface: self.unknown_iface,
            conflicts: s.conflicts,
            queries_sent: s.queries_sent,
            responses_sent: s.responses_sent,
            goodbyes_sent: s.goodbyes_sent,
            send_errors: self.send_errors,
            cache_evictions: s.cache_evictions,
            cache_refused: s.cache_refused,
            ttl_capped: s.ttl_capped,
            dropped_unsolicited: s.dropped_unsolicited,
            unsolicited_refused: s.unsolicited_refused,
        }
    }
}

/// `host` without a final dot, lower case.
fn plain(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The preferred address to show: IPv4, then global IPv6, then any.
fn pick_address(addrs: &[IpAddr]) -> Option<IpAddr> {
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| {
            addrs.iter().find(|a| match a {
                IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
                IpAddr::V4(_) => false,
            })
        })
        .or_else(|| addrs.first())
        .copied()
}

/// What `cloudy search` shows for `found`: services whose host is under
/// `CLOUD.local` (all when `all`), matching `host_filter` (host label or
/// full name, case-insensitive), one per (instance, type, host, port),
/// with RTT and hops of the overlay peer named like the host's first label
/// (`NODE` or `~NODE` in `peers`); this box's own (`own_host`, or found
/// without an interface) get 0 and 0. Sorted by RTT (unknown last), hops,
/// instance name, type.
pub fn services_view(
    found: Vec<FoundService>,
    own_host: &str,
    cloud: &str,
    peers: &[PeerInfo],
    host_filter: Option<&str>,
    all: bool,
) -> Vec<ServiceInfo> {
    let suffix = format!(".{}.local", cloud.to_ascii_lowercase());
    let own_host = plain(own_host);
    let want = host_filter.map(plain);
    let mut out: Vec<ServiceInfo> = Vec::new();
    for f in found {
        let host = plain(&f.host);
        let label = host.split('.').next().unwrap_or_default().to_string();
        if !all && !host.ends_with(&suffix) {
            continue;
        }
        if let Some(w) = &want {
            if *w != host && *w != label {
                continue;
            }
        }
        let local = f.iface.is_none() || host == own_host;
        let (rtt_us, hops) = if local {
            (Some(0), 0)
        } else {
            peers
                .iter()
                .find(|p| {
                    let n = p.name.strip_prefix('~').unwrap_or(&p.name);
                    n.eq_ignore_ascii_case(&label) && host.ends_with(&suffix)
                })
                .map_or((None, 0), |p| (p.rtt_us, p.hops))
        };
        let dup = out.iter().any(|s| {
            s.instance == f.instance
                && s.service_type == f.service_type
                && plain(&s.host) == host
                && s.port == f.port
        });
        if dup {
            continue;
        }
        out.push(ServiceInfo {
            instance: f.instance,
            service_type: f.service_type,
            host: f.host.trim_end_matches('.').to_string(),
            address: pick_address(&f.addresses),
            port: f.port,
            txt: f.txt,
            rtt_us,
            hops,
            local,
        });
    }
    out.sort_by(|a, b| {
        let key = |s: &ServiceInfo| (s.rtt_us.is_none(), s.rtt_us, s.hops);
        key(a)
            .cmp(&key(b))
            .then_with(|| a.instance.to_lowercase().cmp(&b.instance.to_lowercase()))
            .then_with(|| a.service_type.cmp(&b.service_type))
    });
    out
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::overlay::PeerState;

    fn found(instance: &str, host: &str, iface: Option<u8>) -> FoundService {
        FoundService {
            instance: instance.into(),
            service_type: "_http._tcp".into(),
            host: host.into(),
            addresses: vec!["fe80::1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
            port: 80,
            txt: vec!["path=/".into()],
            iface: iface.map(IfaceId),
        }
    }

    fn peer(name: &str, rtt: Option<u64>, hops: u8) -> PeerInfo {
        PeerInfo {
            name: name.into(),
            public_key: [0; 32],
            endpoint: None,
            state: PeerState::Up,
            rtt_us: rtt,
            hops,
            last_handshake_secs: None,
            via: None,
            rx_bytes: 0,
            tx_bytes: 0,
        }
    }

    #[test]
    fn join_filter_and_sort() {
        let peers = [peer("b", Some(3000), 1), peer("~c", Some(1000), 2)];
        let list = vec![
            found("zz", "unknown.c1.local", Some(0)),
            found("web", "b.c1.local", Some(0)),
            found("web", "B.c1.local", Some(1)), // same service, other interface
            found("mine", "a.c1.local", None),
            found("far", "c.c1.local", Some(0)),
            found("printer", "avahi.local", Some(0)),
        ];
        let v = services_view(list.clone(), "a.c1.local", "c1", &peers, None, false);
        let got: Vec<(&str, Option<u64>, u8, bool)> = v
            .iter()
            .map(|s| (s.instance.as_str(), s.rtt_us, s.hops, s.local))
            .collect();
        assert_eq!(
            got,
            [
                ("mine", Some(0), 0, true),
                ("far", Some(1000), 2, false),
                ("web", Some(3000), 1, false),
                ("zz", None, 0, false),
            ]
        );
        assert_eq!(v[0].address, Some("10.0.0.2".parse().unwrap()));
        let v = services_view(list.clone(), "a.c1.local", "c1", &peers, None, true);
        assert_eq!(v.len(), 5);
        assert_eq!(v[3].instance, "printer");
        let v = services_view(list.clone(), "a.c1.local", "c1", &peers, Some("B"), false);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].host, "b.c1.local");
        let v = services_view(list, "a.c1.local", "c1", &peers, Some("c.c1.local."), true);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].instance, "far");
    }

    #[test]
    fn peers_of_other_clouds_do_not_match() {
        let peers = [peer("b", Some(3000), 1)];
        let v = services_view(
            vec![found("x", "b.other.local", Some(0))],
            "a.c1.local",
            "c1",
            &peers,
            None,
            true,
        );
        assert_eq!(v[0].rtt_us, None);
        assert_eq!(v[0].hops, 0);
    }

    #[test]
    fn addresses_preferred() {
        let a = |s: &str| -> IpAddr { s.parse().unwrap() };
        assert_eq!(pick_address(&[]), None);
        assert_eq!(
            pick_address(&[a("fe80::1"), a("2001:db8::1")]),
            Some(a("2001:db8::1"))
        );
        assert_eq!(pick_address(&[a("fe80::1")]), Some(a("fe80::1")));
    }
}
