//! The runtime: the only place that polls descriptors and reads the clock.
//!
//! One single-threaded loop (`run_daemon`): `poll(2)` over the signalfd,
//! the tunnel's UDP sockets, the overlay device and the console socket;
//! each wakeup handles at most [`UDP_BATCH`] datagrams per socket batch
//! and [`DEVICE_BATCH`] frames, so no source starves the others. The
//! engine's output is batched into one `sendmmsg` per wakeup.
//!
//! Reload (SIGHUP) parses the whole file first; an invalid file is
//! logged with file and line and changes nothing. A valid one is applied
//! by difference: peers added, removed or changed, addresses and MTU of
//! the device; a change of identity, port or device rebuilds only that part.
//!
//! Discovery (`option mdns`, [`discovery`]) adds the mDNS sockets to the
//! same loop; if port 5353 cannot be bound the daemon logs it and runs
//! without discovery. On SIGTERM/SIGINT it sends its goodbyes first.

#[cfg(feature = "discovery")]
pub mod discovery;
#[cfg(not(feature = "discovery"))]
#[path = "discovery_off.rs"]
pub mod discovery;
#[cfg(feature = "discovery")]
pub mod mcast;
pub mod netif;
pub mod netlink;
pub mod resolve;
pub mod signal;
pub mod store;
pub mod trust;
pub mod udp;

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use crate::config::diff::Change;
use crate::config::schema::{Part, Reload};
use crate::config::{uci, Config, Endpoint, Mode};
use crate::console::proto::{DeviceInfo, Request, Response, StatusInfo};
use crate::console::server::ControlServer;
use crate::limits::{DEVICE_BATCH, GSO_REPROBE_INTERVAL, MAX_DATAGRAM};
use crate::overlay::device::{stable_mac, FrameDevice, RawSocket, Tap, OFFLOAD_RECV_BUF};
use crate::overlay::node::{Node, NodeConfig, PeerSpec};
use crate::overlay::offload::{
    self, Coalescer, Endian, PartialCsum, VnetHdr, GSO_NONE, VNET_HDR_LEN,
};
use crate::overlay::Outbox;
use crate::sys;
use crate::time::Instant;
use crate::{error, info, keys, warn};
use discovery::{Discovery, ServiceSpec};
use resolve::Resolver;
use signal::{Signal, Signals};
use udp::{RecvBatch, SendBatch, UdpSockets};

/// How long the daemon waits at exit for its goodbyes to reach the device.
const DRAIN_TIME: crate::time::Duration = crate::time::Duration::from_millis(100);
/// Device reads at most at exit (each up to `DEVICE_BATCH` frames).
const DRAIN_ROUNDS: usize = 8;

/// Monotonic clock with its origin at the daemon's start.
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX))
    }
}

fn wall_clock_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The engine's view of the configured peers: addresses as given, host
/// names as the resolver last found them (never a blocking lookup here).
fn peer_specs(cfg: &Config, names: &Resolver) -> Vec<PeerSpec> {
    cfg.peers
        .iter()
        .map(|p| PeerSpec {
            name: p.name.clone(),
            key: p.public_key,
            endpoints: p
                .endpoints
                .iter()
                .flat_map(|e| match e {
                    Endpoint::Addr(a) => std::slice::from_ref(a),
                    Endpoint::Host(h, port) => names.addrs(h, *port),
                })
                .copied()
                .collect(),
        })
        .collect()
}

/// The engine's output during one wakeup: datagrams into the send batch,
/// frames to the device — through the coalescer when the device takes
/// virtio headers (flushed at the end of every receive batch).
struct RuntimeOutbox<'a> {
    batch: &'a mut SendBatch,
    socks: &'a UdpSockets,
    device: &'a mut dyn FrameDevice,
    device_drops: &'a mut u64,
    coalescer: &'a mut Coalescer,
}

fn write_frame(device: &mut dyn FrameDevice, drops: &mut u64, frame: &[u8]) {
    if let Err(e) = device.send(frame) {
        *drops += 1;
        if e.kind() != io::ErrorKind::WouldBlock {
            crate::debug!("{}: write: {e}", device.name());
        }
    }
}

impl RuntimeOutbox<'_> {
    /// Writes out what the coalescer holds (end of a receive batch).
    fn flush_frames(&mut self) {
        let (dev, drops) = (&mut *self.device, &mut *self.device_drops);
        self.coalescer.flush(&mut |b| write_frame(dev, drops, b));
    }
}

impl Outbox for RuntimeOutbox<'_> {
    fn send(&mut self, to: SocketAddr, packet: &[u8]) {
        if !self.batch.push(to, packet) {
            self.batch.flush(self.socks);
            // After a flush the batch is empty, so this push fits.
            let _ = self.batch.push(to, packet);
        }
    }

    fn deliver(&mut self, frame: &[u8]) {
        let (dev, drops) = (&mut *self.device, &mut *self.device_drops);
        if dev.offload().is_some() {
            self.coalescer
                .push(frame, None, &mut |b| write_frame(dev, drops, b));
        } else {
            write_frame(dev, drops, frame);
        }
    }

    fn deliver_partial(&mut self, frame: &[u8], csum: PartialCsum) {
        let (dev, drops) = (&mut *self.device, &mut *self.device_drops);
        if dev.offload().is_some() {
            self.coalescer
                .push(frame, Some(csum), &mut |b| write_frame(dev, drops, b));
            return;
        }
        // No offloads here (raw socket, plain TAP): finish it in a copy.
        let mut copy = [0u8; MAX_DATAGRAM];
        if let Some(buf) = copy.get_mut(..frame.len()) {
            buf.copy_from_slice(frame);
            offload::complete_checksum(buf, csum);
            write_frame(dev, drops, buf);
        }
    }
}

/// What the engine's output goes to; kept apart from the receive side so
/// an outbox can borrow it while a receive batch is being read.
struct Io {
    socks: UdpSockets,
    device: Box<dyn FrameDevice>,
    send: SendBatch,
    /// Merges received TCP segments for an offloading device (one 64 KiB buffer).
    coalescer: Coalescer,
    device_drops: u64,
}

impl Io {
    fn outbox(&mut self) -> RuntimeOutbox<'_> {
        RuntimeOutbox {
            batch: &mut self.send,
            socks: &self.socks,
            device: self.device.as_mut(),
            device_drops: &mut self.device_drops,
            coalescer: &mut self.coalescer,
        }
    }
}

struct Daemon {
    cfg: Config,
    config_path: PathBuf,
    private: [u8; 32],
    public: [u8; 32],
    node: Node,
    /// Host-name endpoints, looked up by a worker thread.
    names: Resolver,
    io: Io,
    recv: RecvBatch,
    /// One reused device read buffer: room for a virtio header and a
    /// 64 KiB super-frame (`OFFLOAD_RECV_BUF`).
    frame_buf: Box<[u8]>,
    clock: Clock,
    /// Frames from the device that could not be segmented (malformed,
    /// unknown GSO type).
    offload_errors: u64,
    /// Super-frames from the device cut into segments.
    segmented: u64,
    /// SYNs whose MSS was lowered to the overlay MTU.
    mss_clamped: u64,
    /// GSO messages the kernel refused (resent plainly).
    gso_refused: u64,
    /// When UDP GSO is next tried again for every size, if it is limited.
    gso_reprobe_at: Option<Instant>,
    /// mDNS/DNS-SD; `None` when off or when port 5353 could not be bound.
    discovery: Option<Discovery>,
    /// The store of `config store` (its server runs on threads of its own).
    store: store::StoreRuntime,
    /// The cloud authority's signing key, on the box that holds it.
    authority_key: Option<crate::trust::AuthorityKey>,
    /// This box's certificate (the inviter sends it to new members).
    own_cert: Option<crate::trust::Certificate>,
    /// Invitations pending (`cloudy invite`), answered on the UDP port.
    invites: crate::trust::invite::Invites,
}

/// A seed for the mDNS engine's jitter: wall clock and process id.
fn mdns_seed() -> u64 {
    wall_clock_micros() ^ (u64::from(std::process::id()) << 32)
}

/// Starts discovery if the configuration wants it; failures are logged.
fn start_discovery(cfg: &Config, device: &str, now: Instant) -> Option<Discovery> {
    if !cfg.agent.mdns {
        return None;
    }
    match Discovery::start(cfg, device, now, mdns_seed()) {
        Ok(d) => Some(d),
        Err(e) => {
            error!("{e}: running without discovery");
            None
        }
    }
}

fn coalescer_for(device: &dyn FrameDevice) -> Coalescer {
    Coalescer::new(device.offload().unwrap_or(Endian::NATIVE))
}

fn open_device(cfg: &Config, public: &[u8; 32]) -> Result<Box<dyn FrameDevice>, String> {
    let a = &cfg.agent;
    match a.mode {
        Mode::Tap => {
            let tap = Tap::create_offloaded(&a.interface)
                .map_err(|e| format!("cannot create TAP {}: {e}", a.interface))?;
            let name = tap.name().to_string();
            let setup = || -> io::Result<()> {
                netif::set_mac(&name, stable_mac(public))?;
                netif::set_mtu(&name, u32::from(a.mtu))?;
                for addr in &a.addresses {
                    netif::add_address(&name, addr)?;
                }
                netif::set_up(&name, true)
            };
            setup().map_err(|e| format!("cannot configure {name}: {e}"))?;
            info!(
                "device {name} up, mtu {}, offloads {}",
                a.mtu,
                if tap.offload().is_some() { "on" } else { "off" }
            );
            Ok(Box::new(tap))
        }
        Mode::Raw => {
            let dev = a.raw_device.as_deref().unwrap_or_default();
            let raw = RawSocket::open_offloaded(dev)
                .map_err(|e| format!("cannot open raw socket on {dev}: {e}"))?;
            info!(
                "raw mode on {dev}, overlay mtu {} (TCP MSS clamped to it), offloads {}",
                a.mtu,
                if raw.offload().is_some() { "on" } else { "off" }
            );
            Ok(Box::new(raw))
        }
    }
}

fn node_config(
    cfg: &Config,
    names: &Resolver,
    private: [u8; 32],
    public: [u8; 32],
    trust: Option<crate::overlay::node::TrustConfig>,
) -> NodeConfig {
    NodeConfig {
        name: cfg.agent.name.clone(),
        cloud: cfg.agent.cloud.clone(),
        private_key: private,
        public_key: public,
        peers: peer_specs(cfg, names),
        trust,
    }
}

/// The identity at start: the key file, created on the very first start.
fn load_or_create_key(cfg: &Config) -> Result<([u8; 32], [u8; 32]), String> {
    let path = &cfg.agent.key_file;
    let (private, created) = keys::load_or_create(path).map_err(|e| e.to_string())?;
    if created {
        warn!(
            "no key file: generated a NEW node identity in {} (public key {})",
            path.display(),
            keys::encode_public(&keys::public_key_of(&private))
        );
    }
    checked_identity(cfg, private)
}

/// The identity on reload: read only. A missing or unreadable key file
/// is an error and the running identity stays (a typo in `key_file` must
/// never make a new one and drop the box out of its cloud).
fn reload_key(cfg: &Config) -> Result<([u8; 32], [u8; 32]), String> {
    let private = keys::read_private(&cfg.agent.key_file).map_err(|e| e.to_string())?;
    checked_identity(cfg, private)
}

fn checked_identity(cfg: &Config, private: [u8; 32]) -> Result<([u8; 32], [u8; 32]), String> {
    let path = &cfg.agent.key_file;
    if keys::is_too_open(path) {
        warn!("{} is readable by others: chmod 600 it", path.display());
    }
    let public = keys::public_key_of(&private);
    cfg.check_own_key(&public)?;
    Ok((private, public))
}

/// Run the agent in the foreground until SIGTERM or SIGINT.
pub fn run_daemon(config_path: &Path, socket_path: &Path) -> Result<(), String> {
    let cfg = uci::load(config_path).map_err(|e| e.to_string())?;
    crate::log::set_level(cfg.agent.log_level);
    let (private, public) = load_or_create_key(&cfg)?;
    let authority = trust::load(&cfg, &public)?;
    let own_cert = authority.engine.as_ref().and_then(|t| t.cert.clone());
    let mut signals = Signals::new().map_err(|e| format!("signals: {e}"))?;
    let socks = UdpSockets::bind(cfg.agent.listen_port)
        .map_err(|e| format!("cannot bind UDP port {}: {e}", cfg.agent.listen_port))?;
    let device = open_device(&cfg, &public)?;
    let mut server = ControlServer::bind(socket_path).map_err(|e| e.to_string())?;
    let clock = Clock(std::time::Instant::now());
    let mut names = Resolver::start();
    names.configure(clock.now(), &cfg);
    let node = Node::new(
        &node_config(&cfg, &names, private, public, authority.engine),
        clock.now(),
        wall_clock_micros(),
    );
    info!(
        "cloudy {} node {} of cloud {} listening on port {} ({} peers configured, udp gso {}, gro {})",
        crate::VERSION,
        cfg.agent.name,
        cfg.agent.cloud,
        socks.local_port(),
        cfg.peers.len(),
        socks.gso(),
        socks.gro()
    );
    let recv = RecvBatch::for_sockets(&socks);
    let mut send = SendBatch::new();
    send.set_gso(socks.gso());
    let coalescer = coalescer_for(device.as_ref());
    let mut d = Daemon {
        cfg,
        config_path: config_path.to_path_buf(),
        private,
        public,
        node,
        names,
        io: Io {
            socks,
            device,
            send,
            coalescer,
            device_drops: 0,
        },
        recv,
        frame_buf: vec![0u8; OFFLOAD_RECV_BUF].into_boxed_slice(),
        clock,
        offload_errors: 0,
        segmented: 0,
        mss_clamped: 0,
        gso_refused: 0,
        gso_reprobe_at: None,
        discovery: None,
        store: store::StoreRuntime::off(),
        authority_key: authority.key,
        own_cert: own_cert.clone(),
        invites: crate::trust::invite::Invites::new(),
    };
    let started = d.clock.now();
    d.discovery = start_discovery(&d.cfg, d.io.device.name(), started);
    d.store = store::StoreRuntime::start(&d.cfg, d.io.device.name(), started);
    loop {
        let now = d.clock.now();
        d.timers(now);
        let deadline = crate::time::earliest(d.node.poll_at(), server.poll_at());
        let deadline = crate::time::earliest(deadline, d.names.poll_at());
        let deadline =
            crate::time::earliest(deadline, d.discovery.as_ref().and_then(Discovery::poll_at));
        let deadline = crate::time::earliest(deadline, d.store.poll_at());
        // At most 1 s, so the wait always fits an i32 of milliseconds.
        let timeout_ms = deadline.map_or(1000, |t| t.since(now).as_millis().min(1000) as i32);
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(8);
        let poll = |fd: RawFd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        fds.push(poll(signals.fd()));
        fds.push(poll(d.io.device.fd()));
        let udp_fds: Vec<RawFd> = d.io.socks.fds().collect();
        fds.extend(udp_fds.iter().map(|&fd| poll(fd)));
        let mdns_start = fds.len();
        let mdns_fds: Vec<RawFd> = d.discovery.as_ref().map(Discovery::fds).unwrap_or_default();
        fds.extend(mdns_fds.iter().map(|&fd| poll(fd)));
        let console_start = fds.len();
        fds.extend(server.fds().map(poll));
        fds.extend(server.fds_writable().map(|fd| libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        }));
        if let Err(e) = sys::poll(&mut fds, timeout_ms) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        let now = d.clock.now();
        let ready = |i: usize| fds.get(i).is_some_and(|p| p.revents != 0);
        if ready(0) {
            match signals.read() {
                Some(Signal::Terminate) => {
                    info!("terminating");
                    if let Some(disc) = d.discovery.as_mut() {
                        disc.shutdown(now);
                        d.drain_device();
                    }
                    break;
                }
                Some(Signal::Reload) => d.reload(now),
                None => {}
            }
        }
        for (i, &fd) in udp_fds.iter().enumerate() {
            if ready(2 + i) {
                d.udp_input(now, fd);
            }
        }
        if ready(1) {
            d.device_input(now);
        }
        if let Some(disc) = d.discovery.as_mut() {
            for (i, &fd) in mdns_fds.iter().enumerate() {
                if ready(mdns_start + i) {
                    disc.input(now, fd);
                }
            }
        }
        d.flush_udp();
        let console_ready = fds[console_start..].iter().any(|p| p.revents != 0);
        if console_ready || server.poll_at().is_some_and(|t| t <= now) {
            server.handle_ready(now, &mut |req| d.answer(now, started, req));
        }
        server.handle_timeout(now);
    }
    drop(server);
    drop(d);
    Ok(())
}

impl Daemon {
    fn timers(&mut self, now: Instant) {
        self.names.handle_timeout(now);
        if self.names.poll() {
            self.node
                .set_peers(now, &peer_specs(&self.cfg, &self.names));
        }
        if self.gso_reprobe_at.is_some_and(|t| t <= now) {
            self.gso_reprobe_at = None;
            if self.io.send.reprobe_gso() {
                crate::debug!("trying UDP GSO again for every datagram size");
            }
        }
        let device = self.io.device.name().to_string();
        self.store.timers(&device, now);
        let mut out = self.io.outbox();
        self.node.handle_timeout(now, &mut out);
        out.flush_frames();
        self.flush_udp();
        if let Some(list) = self.node.take_revocation_change() {
            trust::persist_revocation(&self.cfg, &list);
        }
        if let Some(disc) = self.discovery.as_mut() {
            disc.timers(now);
        }
    }

    /// Forwards what the kernel routed into the overlay device just now
    /// (the goodbyes of [`Discovery::shutdown`] on the overlay) before
    /// the daemon exits: waits for device input up to [`DRAIN_TIME`].
    fn drain_device(&mut self) {
        let fd = self.io.device.fd();
        if fd < 0 {
            return;
        }
        let end = self.clock.now() + DRAIN_TIME;
        for _ in 0..DRAIN_ROUNDS {
            let now = self.clock.now();
            if now >= end {
                break;
            }
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = end.since(now).as_millis().min(1000) as i32;
            if !matches!(sys::poll(std::slice::from_mut(&mut p), ms), Ok(n) if n > 0) {
                break;
            }
            self.device_input(self.clock.now());
            self.flush_udp();
        }
    }

    fn flush_udp(&mut self) {
        let st = self.io.send.flush(&self.io.socks);
        if let Some((size, errno)) = st.gso_refused {
            self.gso_refused += 1;
            if self.gso_reprobe_at.is_none() {
                // Once per reprobe interval at most.
                info!(
                    "UDP GSO refused for {size}-byte datagrams ({}): those leave one by one \
                     (the kernel fragments them); trying again in {} s",
                    io::Error::from_raw_os_error(errno),
                    GSO_REPROBE_INTERVAL.as_secs()
                );
                self.gso_reprobe_at = Some(self.clock.now() + GSO_REPROBE_INTERVAL);
            }
        }
    }

    fn udp_input(&mut self, now: Instant, fd: RawFd) {
        // Two batches at most per wakeup: the device and console get their turn.
        for _ in 0..2 {
            let n = match self.recv.recv(fd) {
                Ok(n) => n,
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        crate::debug!("udp recv: {e}");
                    }
                    return;
                }
            };
            let mut out = self.io.outbox();
            for i in 0..n {
                let (from, packet) = self.recv.get_mut(i);
                if packet.first() == Some(&crate::trust::invite::TYPE_JOIN_REQUEST) {
                    let issuer = match (&self.authority_key, &self.own_cert) {
                        (Some(authority), Some(certificate)) => trust::Issuer {
                            authority,
                            cloud: &self.cfg.agent.cloud,
                            private: &self.private,
                            certificate,
                            lifetime: crate::console::authority::DEFAULT_LIFETIME_DAYS * 86_400,
                        },
                        // Not the authority's box: not for us.
                        _ => continue,
                    };
                    trust::answer_join(&mut self.invites, &issuer, now, from, packet, &mut out);
                    continue;
                }
                self.node.handle_packet(now, from, packet, &mut out);
            }
            // Nothing waits in the coalescer beyond its receive batch.
            out.flush_frames();
            if !self.recv.was_full() {
                return;
            }
        }
    }

    /// Frames from the TAP or raw device into the overlay. TCP SYNs get
    /// their MSS clamped to the overlay MTU (a bridged LAN's 1500-byte
    /// segments would not fit one datagram), and super-frames (TAP or
    /// raw socket with virtio headers) are cut into segments of at most
    /// one overlay-MTU-sized Ethernet frame.
    fn device_input(&mut self, now: Instant) {
        let mtu = self.cfg.agent.mtu;
        let max_frame = usize::from(mtu) + 14;
        for _ in 0..DEVICE_BATCH {
            let len = match self.io.device.recv(&mut self.frame_buf[..]) {
                Ok(Some(len)) => len,
                Ok(None) => return,
                Err(e) => {
                    crate::debug!("{}: read: {e}", self.io.device.name());
                    return;
                }
            };
            let Some(buf) = self.frame_buf.get_mut(..len) else {
                continue;
            };
            let offload = self.io.device.offload();
            let mut out = self.io.outbox();
            let Some(order) = offload else {
                if offload::clamp_mss(buf, false, mtu) {
                    self.mss_clamped += 1;
                }
                self.node.handle_frame(now, buf, &mut out);
                continue;
            };
            let (head, frame) = buf.split_at_mut(VNET_HDR_LEN.min(len));
            let Ok(hdr) = VnetHdr::read(head, order) else {
                self.offload_errors += 1;
                continue;
            };
            // A SYN is never a super-frame.
            if hdr.gso_type == GSO_NONE && offload::clamp_mss(frame, hdr.partial().is_some(), mtu) {
                self.mss_clamped += 1;
            }
            let node = &mut self.node;
            match offload::segment(&hdr, frame, max_frame, &mut |seg, csum| {
                node.handle_frame_partial(now, seg, csum, &mut out)
            }) {
                Ok(_) if hdr.gso_type != GSO_NONE => self.segmented += 1,
                Ok(_) => {}
                Err(e) => {
                    self.offload_errors += 1;
                    crate::debug!("{}: {e}", self.io.device.name());
                }
            }
        }
    }

    fn device_info(&self) -> DeviceInfo {
        let c = self.io.device.counters();
        DeviceInfo {
            offload: self.io.device.offload().is_some(),
            truncated: c.truncated,
            unsegmentable: c.unsegmentable + self.offload_errors,
            write_drops: self.io.device_drops,
            queue_drops: c.queue_drops,
            mss_clamped: self.mss_clamped,
            segmented: self.segmented,
            gso_refused: self.gso_refused,
        }
    }

    fn answer(&mut self, now: Instant, started: Instant, req: Request) -> Response {
        const NO_DISCOVERY: &str = "discovery is off on this box (option mdns, or port 5353 busy)";
        match req {
            Request::Publish {
                instance,
                service_type,
                port,
                txt,
                host,
            } => match self.discovery.as_mut() {
                Some(disc) => disc.publish(
                    now,
                    ServiceSpec {
                        instance,
                        service_type,
                        port,
                        txt,
                        host,
                    },
                ),
                None => Response::error(NO_DISCOVERY),
            },
            Request::Unpublish { instance } => match self.discovery.as_mut() {
                Some(disc) => disc.unpublish(now, &instance),
                None => Response::error(NO_DISCOVERY),
            },
            Request::Search {
                service_type,
                host,
                all,
            } => match self.discovery.as_mut() {
                Some(disc) => {
                    let peers = self.node.peer_infos(now);
                    disc.search(now, service_type.as_deref(), host.as_deref(), all, &peers)
                }
                None => Response::error(NO_DISCOVERY),
            },
            Request::Invite {
                name,
                addresses,
                endpoints,
                hours,
            } => match self.invite(&name, addresses, endpoints, hours) {
                Ok(text) => Response::Ok(text),
                Err(e) => Response::error(&e),
            },
            Request::Revoke { member } => match self.revoke(now, &member) {
                Ok(text) => Response::Ok(text),
                Err(e) => Response::error(&e),
            },
            Request::Peers => Response::Peers(self.node.peer_infos(now)),
            Request::PublicKey => Response::PublicKey(self.public),
            Request::Status => {
                let (configured, known, up, relayed) = self.node.peer_counts(now);
                let a = &self.cfg.agent;
                Response::Status(StatusInfo {
                    version: crate::VERSION.to_string(),
                    name: a.name.clone(),
                    cloud: a.cloud.clone(),
                    public_key: self.public,
                    interface: match a.mode {
                        Mode::Tap => self.io.device.name().to_string(),
                        Mode::Raw => a.raw_device.clone().unwrap_or_default(),
                    },
                    mode: match a.mode {
                        Mode::Tap => "tap".into(),
                        Mode::Raw => "raw".into(),
                    },
                    listen_port: self.io.socks.local_port(),
                    uptime_secs: now.since(started).as_secs(),
                    peers_configured: configured as u32,
                    peers_known: known as u32,
                    peers_up: up as u32,
                    peers_relayed: relayed as u32,
                    mac_entries: self.node.mac_entries() as u32,
                    stats: self.node.stats().clone(),
                    device: self.device_info(),
                    discovery: self.discovery.as_ref().map(Discovery::info),
                    store: self.store.info(),
                })
            }
        }
    }

    /// Read the authority's files again (a new certificate after `cloudy
    /// join` or `cloudy sign`, a list copied by hand, the signing key).
    fn refresh_trust(&mut self, now: Instant) {
        if self.cfg.agent.authority.is_none() {
            return;
        }
        match trust::load(&self.cfg, &self.public) {
            Ok(loaded) => {
                self.authority_key = loaded.key;
                self.own_cert = loaded.engine.as_ref().and_then(|t| t.cert.clone());
                if let Some(t) = loaded.engine {
                    self.node.set_own_certificate(t.cert.as_ref());
                    if let Some(list) = t.revoked {
                        let _ = self.node.install_revocation(now, list);
                        // Already on disk: nothing to write back.
                        let _ = self.node.take_revocation_change();
                    }
                }
            }
            Err(e) => error!("reload: {e}; keeping the certificate in use"),
        }
    }

    /// `cloudy invite`: a one-time token naming this box's endpoints.
    fn invite(
        &mut self,
        name: &str,
        addresses: Vec<(std::net::IpAddr, u8)>,
        endpoints: Vec<SocketAddr>,
        hours: u32,
    ) -> Result<String, String> {
        if self.authority_key.is_none() {
            return Err(format!(
                "this box does not hold the cloud's authority key ({})",
                self.cfg.agent.authority_key_file.display()
            ));
        }
        if self.own_cert.is_none() {
            return Err(format!(
                "this box has no certificate ({}): run `cloudy authority init` again?",
                self.cfg.agent.certificate_file.display()
            ));
        }
        if self.node.key_of_name(name).is_some() {
            return Err(format!(
                "a member called {name} exists already: choose another name (or revoke it)"
            ));
        }
        let endpoints = if endpoints.is_empty() {
            trust::local_endpoints(self.io.device.name(), self.io.socks.local_port())
        } else {
            endpoints
        };
        if endpoints.is_empty() {
            return Err("no address of this box to put in the token: give one with \
                        --endpoint IP:PORT"
                .into());
        }
        let token = self
            .invites
            .create(
                Some(name),
                addresses,
                u64::from(hours) * 3600,
                &endpoints,
                self.public,
                trust::unix_now(),
            )
            .map_err(|e| format!("cannot invite {name}: {e}"))?;
        let text = token.to_text().ok_or("cannot write the token")?;
        let at: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
        info!(
            "invitation for {name}, valid {hours} h, at {}",
            at.join(" ")
        );
        Ok(format!(
            "{text}\n(for {name}, once, within {hours} h; on the new box: cloudy join TOKEN; \
             it reaches this box at {})",
            at.join(" ")
        ))
    }

    /// `cloudy revoke`: a new revocation list signed here, applied and
    /// sent to every member at once (each passes it on).
    fn revoke(&mut self, now: Instant, member: &str) -> Result<String, String> {
        let Some(authority) = self.authority_key.as_ref() else {
            return Err(format!(
                "this box does not hold the cloud's authority key ({})",
                self.cfg.agent.authority_key_file.display()
            ));
        };
        let key = keys::decode_public(member)
            .or_else(|| self.node.key_of_name(member))
            .ok_or_else(|| format!("no member called {member} here: give its public key"))?;
        if key == self.public {
            return Err("this is the authority's own box: it cannot revoke itself".into());
        }
        let unix = trust::unix_now();
        let until = self.node.member_certificate(&key).map_or(
            unix + crate::console::authority::MAX_LIFETIME_DAYS * 86_400,
            |c| c.not_after,
        );
        let list = crate::trust::RevocationList::revoke(
            authority,
            self.node.revocation_list(),
            &self.cfg.agent.cloud,
            key,
            until,
            unix,
        )
        .map_err(|e| format!("revocation list: {e}"))?;
        let serial = list.serial;
        self.node
            .install_revocation(now, list)
            .map_err(|e| format!("revocation list: {e}"))?;
        let mut out = self.io.outbox();
        self.node.announce_revocation(now, &mut out);
        out.flush_frames();
        self.flush_udp();
        info!(
            "revoked {member} ({}): list {serial}",
            keys::encode_public(&key)
        );
        Ok(format!(
            "revoked {member} ({}); revocation list {serial} sent to every member",
            keys::encode_public(&key)
        ))
    }

    /// SIGHUP: parse everything first, then apply only the difference:
    /// `Config::diff` lists what changed, each change with the reload
    /// effect its option declares (`config::schema`), and only those parts
    /// are touched.
    fn reload(&mut self, now: Instant) {
        let new = match uci::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                error!("reload refused, keeping the running configuration: {e}");
                return;
            }
        };
        let changes = Config::diff(&self.cfg, &new);
        let engine_restarts = changes
            .iter()
            .any(|c| c.reload() == Reload::Restart(Part::Engine));
        if !engine_restarts {
            // The certificate, revocation list and authority key are files
            // of their own: read them again on every reload.
            self.refresh_trust(now);
        }
        if changes.is_empty() {
            info!(
                "configuration reloaded from {}: nothing changed",
                self.config_path.display()
            );
            return;
        }
        let restart = |part: Part| changes.iter().any(|c| c.reload() == Reload::Restart(part));
        let agent = |option: &str| {
            changes
                .iter()
                .any(|c| matches!(c, Change::Agent { option: o, .. } if *o == option))
        };
        let peers_changed = changes.iter().any(|c| {
            matches!(
                c,
                Change::PeerAdded(_) | Change::PeerRemoved(_) | Change::PeerChanged { .. }
            )
        });
        let old = std::mem::replace(&mut self.cfg, new);
        let (o, n) = (&old.agent, &self.cfg.agent);
        crate::log::set_level(n.log_level);
        let identity = if agent("key_file") {
            reload_key(&self.cfg)
        } else {
            self.cfg
                .check_own_key(&self.public)
                .map(|()| (self.private, self.public))
        };
        match identity {
            Ok((private, public)) => {
                self.private = private;
                self.public = public;
            }
            Err(e) => {
                error!("reload refused, keeping the running configuration: {e}");
                self.cfg = old;
                return;
            }
        }
        let authority = if restart(Part::Engine) {
            match trust::load(&self.cfg, &self.public) {
                Ok(a) => Some(a),
                Err(e) => {
                    error!("reload refused, keeping the running configuration: {e}");
                    self.cfg = old;
                    return;
                }
            }
        } else {
            None
        };
        if restart(Part::Sockets) {
            let (port, old_port) = (n.listen_port, o.listen_port);
            match UdpSockets::bind(port) {
                Ok(s) => {
                    info!("now listening on port {port}");
                    if s.gro() != self.recv.is_gro() {
                        self.recv = RecvBatch::for_sockets(&s);
                    }
                    self.io.send.set_gso(s.gso());
                    self.io.socks = s;
                }
                Err(e) => {
                    error!("reload: cannot bind port {port}: {e}; keeping port {old_port}");
                    self.cfg.agent.listen_port = old_port;
                }
            }
        }
        let (o, n) = (&old.agent, &self.cfg.agent);
        if restart(Part::Device) {
            // Close the old device first: the new one may reuse its name.
            let placeholder: Box<dyn FrameDevice> = Box::new(NullDevice);
            drop(std::mem::replace(&mut self.io.device, placeholder));
            match open_device(&self.cfg, &self.public) {
                Ok(dev) => {
                    self.io.coalescer = coalescer_for(dev.as_ref());
                    self.io.device = dev;
                }
                Err(e) => error!("reload: {e}; the overlay has no device until the next reload"),
            }
        } else if n.mode == Mode::Tap {
            // Live: the TAP's MTU and addresses (in raw mode the MTU is
            // read where it is used: segmenting and MSS clamping).
            let name = self.io.device.name().to_string();
            if agent("mtu") {
                if let Err(e) = netif::set_mtu(&name, u32::from(n.mtu)) {
                    error!("reload: {name}: mtu {}: {e}", n.mtu);
                }
            }
            for a in o.addresses.iter().filter(|a| !n.addresses.contains(a)) {
                if let Err(e) = netif::remove_address(&name, a) {
                    warn!("reload: {name}: remove {a}: {e}");
                }
            }
            for a in n.addresses.iter().filter(|a| !o.addresses.contains(a)) {
                if let Err(e) = netif::add_address(&name, a) {
                    error!("reload: {name}: add {a}: {e}");
                }
            }
        }
        if let Some(authority) = authority {
            info!("identity changed: restarting the overlay engine");
            self.names.configure(now, &self.cfg);
            self.authority_key = authority.key;
            self.own_cert = authority.engine.as_ref().and_then(|t| t.cert.clone());
            self.node = Node::new(
                &node_config(
                    &self.cfg,
                    &self.names,
                    self.private,
                    self.public,
                    authority.engine,
                ),
                now,
                wall_clock_micros(),
            );
        } else if peers_changed {
            self.names.configure(now, &self.cfg);
            self.node
                .set_peers(now, &peer_specs(&self.cfg, &self.names));
        }
        let device = self.io.device.name().to_string();
        match (self.discovery.as_mut(), self.cfg.agent.mdns) {
            // Services, interfaces, the host name: Discovery::reload diffs
            // its own part again (umdns's vlist_update).
            (Some(disc), true) => disc.reload(&self.cfg, &device, now, mdns_seed()),
            (Some(disc), false) => {
                disc.shutdown(now);
                self.discovery = None;
                info!("discovery stopped");
            }
            (None, true) => self.discovery = start_discovery(&self.cfg, &device, now),
            (None, false) => {}
        }
        self.store
            .reload(&self.cfg, &device, restart(Part::Device), now);
        info!(
            "configuration reloaded from {}: {}",
            self.config_path.display(),
            describe(&changes)
        );
    }
}

/// The changes of a reload in one log line.
fn describe(changes: &[Change]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in changes {
        parts.push(match c {
            Change::Agent { option, reload } => format!("{option} ({})", reload.describe()),
            Change::PeerAdded(p) => format!("peer {p} added"),
            Change::PeerRemoved(p) => format!("peer {p} removed"),
            Change::PeerChanged { name, options, .. } => {
                format!("peer {name}: {}", options.join(", "))
            }
            Change::ServiceAdded(s) => format!("service {s} added"),
            Change::ServiceRemoved(s) => format!("service {s} removed"),
            Change::ServiceChanged { name, options, .. } => {
                format!("service {name}: {}", options.join(", "))
            }
            Change::Store { option, reload } => {
                format!("store {option} ({})", reload.describe())
            }
        });
    }
    parts.join("; ")
}

/// Stands in while a device is being replaced or failed to open.
struct NullDevice;

impl FrameDevice for NullDevice {
    fn fd(&self) -> RawFd {
        -1
    }
    fn recv(&mut self, _: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
    fn send(&mut self, _: &[u8]) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::NotConnected, "no device"))
    }
    fn name(&self) -> &str {
        "-"
    }
}
