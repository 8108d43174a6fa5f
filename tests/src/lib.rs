//! Namespace harness for the multi-box tests of `cloudy` (root only).
//!
//! A [`Net`] is one test's private world: a bridge namespace holding one
//! Linux bridge per LAN [`Segment`], and one namespace per host, joined to
//! a segment by a veth pair. Underlay addresses are `10.201.S.H/24`
//! (segment S, host H); overlay addresses are `10.201.200.N/24` and
//! `fd99:200::N/64`. These ranges exist only inside the namespaces made
//! here; no packet leaves them.
//!
//! Invariants:
//! - every namespace name starts with `cyt<pid>n<k>`, so tests in one
//!   process never collide and leftovers of a dead test process are found
//!   (and removed) by the next [`Net::new`];
//! - [`Net`]'s `Drop` kills every daemon and every process left in its
//!   namespaces, then deletes the namespaces, also while unwinding from a
//!   panic (then it first prints the tail of every daemon log);
//! - every wait is bounded: commands get a timeout, [`wait_until`] a
//!   deadline.
//!
//! The `cloudy` binary is `$CLOUDY_BIN`, or built from this workspace into
//! `<target>/cloudy-tests-build` (a separate target dir, because the
//! running `cargo test` holds the lock of the usual one).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod hostile;
pub mod mdns;

pub use serde_json::Value;

/// UDP port every test daemon listens on (one namespace each, no clash).
pub const PORT: u16 = 6556;
/// Name of the TAP device in tap mode.
pub const TAP: &str = "cloudy0";
/// Prefix of every namespace a test makes.
const NS_PREFIX: &str = "cyt";
/// Segment whose /24 holds the overlay addresses (never a bridge).
const OVERLAY_NET: u8 = 200;
/// Default timeout of one helper command.
const CMD_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a daemon may take to answer its console after start.
const START_TIMEOUT: Duration = Duration::from_secs(10);

static NET_COUNTER: AtomicU32 = AtomicU32::new(0);

/// True when running as root (namespaces need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Path of the `cloudy` binary under test: `$CLOUDY_BIN`, or a release
/// build of this workspace made once per test process.
///
/// # Panics
/// If `$CLOUDY_BIN` is not a file or the build fails.
pub fn cloudy_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(locate_or_build).clone()
}

fn locate_or_build() -> PathBuf {
    if let Some(p) = std::env::var_os("CLOUDY_BIN") {
        let p = PathBuf::from(p);
        let p = if p.is_relative() {
            workspace_root().join(p)
        } else {
            p
        };
        assert!(p.is_file(), "CLOUDY_BIN={} is not a file", p.display());
        return p;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let dir = target.join("cloudy-tests-build");
    eprintln!(
        "cloudy-tests: CLOUDY_BIN unset; building cloudy into {} (set CLOUDY_BIN to skip)",
        dir.display()
    );
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "-p", "cloudy", "--bin", "cloudy"])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &dir)
        .status()
        .expect("cannot run cargo to build cloudy");
    assert!(status.success(), "building cloudy failed: {status}");
    dir.join("release").join("cloudy")
}

/// Skip the whole test, loudly and counted: `SKIPPED TEST: REASON` straight
/// to fd 2 (libtest captures `eprintln!` of passing tests) and, when
/// `$CLOUDY_SKIP_LOG` names a file, a line `NAME<TAB>whole<TAB>REASON` in it,
/// NAME being libtest's name of the running test (its thread's name). The
/// format is agent/src/testutil.rs's; `make test` counts such a test as
/// skipped (scripts/test_summary.py).
pub fn skip(test: &str, reason: &str) {
    record_skip(test, "whole", reason);
}

/// A part of the test was left out (listed by `make test`; the test counts).
pub fn skip_part(test: &str, reason: &str) {
    record_skip(test, "part", reason);
}

fn record_skip(test: &str, kind: &str, reason: &str) {
    let what = if kind == "part" { "part of " } else { "" };
    let _ = writeln!(std::io::stderr(), "SKIPPED {what}{test}: {reason}");
    let Some(path) = std::env::var_os("CLOUDY_SKIP_LOG") else {
        return;
    };
    let current = std::thread::current();
    let name = current.name().filter(|n| *n != "main").unwrap_or(test);
    let line = format!("{name}\t{kind}\t{}\n", reason.replace(['\t', '\n'], " "));
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Skip (loudly, counted) and return true when not root.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    skip(
        test,
        "needs root: network namespaces and TAP devices need root",
    );
    true
}

/// Panics, naming the fix, when a tool the namespace tests run is not
/// installed: without `ping` every test would time out waiting for a
/// reply and blame the daemon.
pub fn require_tools(tools: &[&str]) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !std::env::split_paths(&path).any(|d| d.join(t).is_file()))
        .collect();
    assert!(
        missing.is_empty(),
        "not installed: {}; run `bash scripts/deps.sh test` (make test does)",
        missing.join(", ")
    );
}

/// Output of a command run with a timeout.
#[derive(Debug)]
pub struct Run {
    /// None when killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "[{s}]")?,
            None => write!(f, "[timed out]")?,
        }
        write!(
            f,
            " stdout: {:?} stderr: {:?}",
            self.stdout.trim(),
            self.stderr.trim()
        )
    }
}

/// Run `cmd`, killing it after `timeout`; output is captured.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Run {
                status: None,
                stdout: String::new(),
                stderr: format!("spawn {cmd:?}: {e}"),
            }
        }
    };
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = wait_child(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Run {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Wait for `child` at most `timeout`; None if still running.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// Run a command line (program + args) with the default timeout.
pub fn sh(args: &[&str]) -> Run {
    let (prog, rest) = args.split_first().expect("sh: empty command");
    run_timeout(Command::new(prog).args(rest), CMD_TIMEOUT)
}

/// Run a command and panic with its output if it fails.
pub fn must(args: &[&str]) -> String {
    let r = sh(args);
    assert!(r.ok(), "command failed: {}\n{r}", args.join(" "));
    r.stdout
}

/// Poll `f` every `step` until it returns Some, at most `timeout`.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    step: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(step);
    }
}

/// Run `f` on a thread that has entered namespace `ns` (sockets created
/// there stay in it).
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    // Named like the test's thread, so a skip recorded there is the test's.
    let mut builder = std::thread::Builder::new();
    if let Some(name) = std::thread::current().name() {
        builder = builder.name(name.to_string());
    }
    std::thread::scope(|s| {
        builder
            .spawn_scoped(s, move || {
                enter_netns(&path);
                f()
            })
            .expect("spawn a thread for the namespace")
            .join()
            .expect("thread in netns panicked")
    })
}

fn enter_netns(path: &str) {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: fd is a valid open netns file; setns only changes this thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// One UDP datagram seen by [`capture_udp`].
#[derive(Clone, Debug)]
pub struct Captured {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
}

/// Capture incoming IPv4/UDP datagrams to `dport` on `ifname` inside `ns`
/// with an AF_PACKET socket, for at most `duration` or `max` datagrams.
/// Returns once the socket is open; join the handle for the datagrams.
pub fn capture_udp(
    ns: &str,
    ifname: &str,
    dport: u16,
    duration: Duration,
    max: usize,
) -> JoinHandle<Vec<Captured>> {
    let path = format!("/run/netns/{ns}");
    let ifname = ifname.to_string();
    let (ready_tx, ready_rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        enter_netns(&path);
        let fd = open_packet_socket(&ifname);
        let _ = ready_tx.send(());
        let mut out = Vec::new();
        let deadline = Instant::now() + duration;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline && out.len() < max {
            // SAFETY: an all-zero sockaddr_ll is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buf and sll are valid for the sizes given.
            let n = unsafe {
                libc::recvfrom(
                    fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n <= 0 || sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            if let Some(c) = parse_udp_frame(buf.get(..n as usize).unwrap_or(&[])) {
                if c.dport == dport {
                    out.push(c);
                }
            }
        }
        // SAFETY: fd is ours and closed once.
        unsafe { libc::close(fd) };
        out
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(5));
    h
}

/// A sniffer with a hand on the wire, as in issue 9's attack: on
/// `ifname` in `ns` it watches for overlay handshake initiations (type 1)
/// coming from `victim`, and answers each at once with `copies` forged
/// cookie replies (type 3, the initiation's sender index, 56 random bytes
/// of nonce and sealed cookie: `docs/architecture.md` and
/// `agent/src/overlay/wire.rs` document the layout) that claim to come from
/// the address the initiation went to. Runs for `duration`; the handle
/// gives (initiations seen, replies forged).
pub fn forge_cookie_replies(
    ns: &str,
    ifname: &str,
    victim: Ipv4Addr,
    copies: usize,
    duration: Duration,
) -> JoinHandle<(usize, usize)> {
    let path = format!("/run/netns/{ns}");
    let ifname = ifname.to_string();
    let (ready_tx, ready_rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        enter_netns(&path);
        let fd = open_packet_socket(&ifname);
        let cname = std::ffi::CString::new(ifname).expect("ifname has NUL");
        // SAFETY: cname is a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        let _ = ready_tx.send(());
        let mut rng = Rng::new(0xc00c);
        let (mut seen, mut forged) = (0, 0);
        let deadline = Instant::now() + duration;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            // SAFETY: buf is valid for its length; no address wanted.
            let n = unsafe {
                libc::recvfrom(
                    fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            let Some(frame) = usize::try_from(n).ok().and_then(|n| buf.get(..n)) else {
                continue;
            };
            let Some(c) = parse_udp_frame(frame) else {
                continue;
            };
            if c.src != victim || c.payload.first() != Some(&1) || c.payload.len() < 8 {
                continue;
            }
            seen += 1;
            let mut reply = vec![3, 0, 0, 0];
            reply.extend_from_slice(&c.payload[4..8]);
            for _ in 0..copies {
                reply.truncate(8);
                reply.extend(rng.bytes(56));
                let f = udp_frame(
                    &frame[6..12],
                    &frame[..6],
                    (c.dst, c.dport),
                    (c.src, c.sport),
                    &reply,
                );
                // SAFETY: an all-zero sockaddr_ll is a valid value.
                let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_ifindex = ifindex as i32;
                sll.sll_halen = 6;
                sll.sll_addr[..6].copy_from_slice(&frame[6..12]);
                // SAFETY: f and sll are valid for the sizes given.
                let sent = unsafe {
                    libc::sendto(
                        fd,
                        f.as_ptr().cast(),
                        f.len(),
                        0,
                        (&sll as *const libc::sockaddr_ll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                    )
                };
                if sent > 0 {
                    forged += 1;
                }
            }
        }
        // SAFETY: fd is ours and closed once.
        unsafe { libc::close(fd) };
        (seen, forged)
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(5));
    h
}

/// An Ethernet/IPv4/UDP frame (UDP checksum 0: none, RFC 768).
pub fn udp_frame(
    dst_mac: &[u8],
    src_mac: &[u8],
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + payload.len());
    f.extend_from_slice(dst_mac);
    f.extend_from_slice(src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.0.octets());
    ip[16..20].copy_from_slice(&dst.0.octets());
    let mut sum: u32 = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

fn open_packet_socket(ifname: &str) -> libc::c_int {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as libc::c_int) };
    assert!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    let cname = std::ffi::CString::new(ifname).expect("ifname has NUL");
    // SAFETY: cname is a valid C string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    assert!(ifindex != 0, "no interface {ifname}");
    // SAFETY: an all-zero sockaddr_ll is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a valid sockaddr_ll of the given size.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: tv is a valid timeval of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    fd
}

/// Ethernet/IPv4/UDP → [`Captured`]; None for anything else or short input.
pub fn parse_udp_frame(f: &[u8]) -> Option<Captured> {
    let be16 = |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*f.get(i)?, *f.get(i + 1)?])) };
    if be16(12)? != 0x0800 {
        return None;
    }
    let ihl = usize::from(f.get(14)? & 0x0f) * 4;
    if ihl < 20 || *f.get(14 + 9)? != 17 {
        return None;
    }
    let ip = |i: usize| -> Option<Ipv4Addr> {
        let b = f.get(i..i + 4)?;
        Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    };
    let u = 14 + ihl;
    let udp_len = usize::from(be16(u + 4)?);
    if udp_len < 8 {
        return None;
    }
    Some(Captured {
        src: ip(26)?,
        dst: ip(30)?,
        sport: be16(u)?,
        dport: be16(u + 2)?,
        payload: f.get(u + 8..u + udp_len)?.to_vec(),
    })
}

/// A small deterministic PRNG (xorshift64*) for hostile inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A LAN: one bridge in the bridge namespace, subnet `10.201.<index>.0/24`.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub index: u8,
}

impl Segment {
    fn bridge(self) -> String {
        format!("br{}", self.index)
    }
    /// Address of host `h` on this segment.
    pub fn addr(self, h: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 201, self.index, h)
    }
}

/// A namespace joined to a segment (eth0) with an underlay address.
#[derive(Clone, Debug)]
pub struct Host {
    pub ns: String,
    pub addr: Ipv4Addr,
}

/// A box running (or about to run) `cloudy daemon`.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub ns: String,
    /// Underlay address (eth0); peers reach it at `underlay:PORT`.
    pub underlay: Ipv4Addr,
    pub overlay4: Option<Ipv4Addr>,
    pub overlay6: Option<Ipv6Addr>,
    /// `Some(dev)`: raw mode on `dev` instead of a TAP.
    pub raw_device: Option<String>,
    pub conf: PathBuf,
    pub sock: PathBuf,
    pub log: PathBuf,
    pub key_file: PathBuf,
    pub public_key: String,
    pub log_level: String,
}

impl Node {
    /// `ip:port` of its underlay socket.
    pub fn endpoint(&self) -> String {
        format!("{}:{PORT}", self.underlay)
    }

    /// Its IPv4 overlay address.
    ///
    /// # Panics
    /// If it has none (raw mode).
    pub fn o4(&self) -> Ipv4Addr {
        self.overlay4.expect("node has no IPv4 overlay address")
    }

    /// The UCI text of its configuration; `peers` are (node, list its endpoint?).
    pub fn config_text(&self, cloud: &str, peers: &[(&Node, bool)]) -> String {
        let mut s = String::new();
        s += "config agent\n";
        s += &format!("\toption name '{}'\n", self.name);
        s += &format!("\toption cloud '{cloud}'\n");
        s += &format!("\toption key_file '{}'\n", self.key_file.display());
        s += &format!("\toption listen_port '{PORT}'\n");
        match &self.raw_device {
            Some(dev) => {
                s += "\toption mode 'raw'\n";
                s += &format!("\toption raw_device '{dev}'\n");
            }
            None => {
                s += "\toption mode 'tap'\n";
                s += &format!("\toption interface '{TAP}'\n");
            }
        }
        if let Some(a) = self.overlay4 {
            s += &format!("\tlist address '{a}/24'\n");
        }
        if let Some(a) = self.overlay6 {
            s += &format!("\tlist address '{a}/64'\n");
        }
        s += &format!("\toption log_level '{}'\n", self.log_level);
        for (p, with_endpoint) in peers {
            s += &format!("\nconfig peer '{}'\n", p.name);
            s += &format!("\toption public_key '{}'\n", p.public_key);
            if *with_endpoint {
                s += &format!("\tlist endpoint '{}'\n", p.endpoint());
            }
        }
        s
    }
}

/// One test's namespaces, daemons and files; all removed on drop.
pub struct Net {
    /// `cyt<pid>n<k>`: prefix of every namespace of this net.
    pub prefix: String,
    /// Scratch directory: configs, keys, sockets, logs.
    pub dir: PathBuf,
    /// Cloud name written into configs.
    pub cloud: String,
    /// IPv6 in host namespaces (set before creating hosts); off gives
    /// quiet devices (no router solicitations, MLD, DAD).
    pub ipv6: bool,
    bridge_ns: String,
    namespaces: Vec<String>,
    segments: u8,
    next_host: [u8; 256],
    veths: u32,
    nodes: u8,
    daemons: Vec<(String, Node, Child)>,
    /// `/etc/netns/NS` directories made by [`Net::etc_file`].
    etc_dirs: Vec<PathBuf>,
    test: String,
}

impl Net {
    /// A new world for `test`, or None (after a loud SKIP) when not root.
    pub fn new(test: &str) -> Option<Net> {
        if skip_unless_root(test) {
            return None;
        }
        require_tools(&["ip", "ping", "nft", "pkill"]);
        remove_stale_namespaces();
        let k = NET_COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{NS_PREFIX}{}n{k}", std::process::id());
        let dir = std::env::temp_dir().join("cloudy-tests").join(&prefix);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create test dir");
        let mut net = Net {
            bridge_ns: format!("{prefix}br"),
            cloud: format!("test{k}"),
            prefix,
            dir,
            ipv6: true,
            namespaces: Vec::new(),
            segments: 0,
            next_host: [1; 256],
            veths: 0,
            nodes: 0,
            daemons: Vec::new(),
            etc_dirs: Vec::new(),
            test: test.to_string(),
        };
        let br = net.bridge_ns.clone();
        must(&["ip", "netns", "add", &br]);
        net.namespaces.push(br.clone());
        must(&["ip", "-n", &br, "link", "set", "lo", "up"]);
        sysctl(&br, "net.ipv6.conf.all.disable_ipv6", "1");
        sysctl(&br, "net.ipv6.conf.default.disable_ipv6", "1");
        Some(net)
    }

    /// A new LAN segment (bridge).
    pub fn segment(&mut self) -> Segment {
        let seg = Segment {
            index: self.segments,
        };
        assert!(self.segments < OVERLAY_NET, "too many segments");
        self.segments += 1;
        let br = self.bridge_ns.clone();
        must(&[
            "ip",
            "-n",
            &br,
            "link",
            "add",
            &seg.bridge(),
            "type",
            "bridge",
        ]);
        must(&["ip", "-n", &br, "link", "set", &seg.bridge(), "up"]);
        seg
    }

    /// A new empty namespace `<prefix><short>` with lo up.
    pub fn namespace(&mut self, short: &str) -> String {
        let ns = format!("{}{short}", self.prefix);
        must(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        if !self.ipv6 {
            sysctl(&ns, "net.ipv6.conf.all.disable_ipv6", "1");
            sysctl(&ns, "net.ipv6.conf.default.disable_ipv6", "1");
        }
        ns
    }

    /// Join `ns` to `seg` by a veth named `ifname`; with `addr`, give it
    /// the next free address of the segment and return it.
    pub fn link(&mut self, ns: &str, seg: Segment, ifname: &str, addr: bool) -> Option<Ipv4Addr> {
        let br = self.bridge_ns.clone();
        let outer = format!("v{}", self.veths);
        self.veths += 1;
        must(&[
            "ip", "-n", &br, "link", "add", &outer, "type", "veth", "peer", "name", ifname,
            "netns", ns,
        ]);
        must(&[
            "ip",
            "-n",
            &br,
            "link",
            "set",
            &outer,
            "master",
            &seg.bridge(),
            "up",
        ]);
        must(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        if !addr {
            return None;
        }
        let slot = &mut self.next_host[usize::from(seg.index)];
        let a = seg.addr(*slot);
        *slot = slot.checked_add(1).expect("segment full");
        must(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{a}/24"),
            "dev",
            ifname,
        ]);
        Some(a)
    }

    /// A plain host on `seg` (eth0 with an address).
    pub fn host(&mut self, short: &str, seg: Segment) -> Host {
        let ns = self.namespace(short);
        let addr = self.link(&ns, seg, "eth0", true).expect("address");
        Host { ns, addr }
    }

    /// A router with eth0 on `outer` and eth1 on a new inner segment, which
    /// masquerades (nftables) what leaves by eth0. Hosts on the inner
    /// segment need [`Net::default_route`] via the router's inner address.
    /// Returns (router host, its inner address, inner segment).
    pub fn nat_router(&mut self, short: &str, outer: Segment) -> (Host, Ipv4Addr, Segment) {
        let inner = self.segment();
        let router = self.host(short, outer);
        let inner_addr = self.link(&router.ns, inner, "eth1", true).expect("address");
        sysctl(&router.ns, "net.ipv4.ip_forward", "1");
        self.nft(
            &router.ns,
            "table ip nat {\n\
             \tchain postrouting { type nat hook postrouting priority srcnat; oifname \"eth0\" masquerade; }\n\
             }\n\
             table ip filter {\n\
             \tchain forward { type filter hook forward priority filter; policy accept; }\n\
             }\n",
        );
        (router, inner_addr, inner)
    }

    /// Load an nftables ruleset (text) into namespace `ns`.
    pub fn nft(&self, ns: &str, rules: &str) {
        let path = self.dir.join(format!("{ns}.nft"));
        fs::write(&path, rules).expect("write nft rules");
        must(&[
            "ip",
            "netns",
            "exec",
            ns,
            "nft",
            "-f",
            &path.to_string_lossy(),
        ]);
    }

    /// Route everything from `ns` via `gw`.
    pub fn default_route(&self, ns: &str, gw: Ipv4Addr) {
        must(&[
            "ip",
            "-n",
            ns,
            "route",
            "add",
            "default",
            "via",
            &gw.to_string(),
        ]);
    }

    /// A cloudy box on `seg`: namespace, eth0, key file, overlay addresses.
    pub fn node(&mut self, name: &str, seg: Segment) -> Node {
        let host = self.host(name, seg);
        self.node_on(name, host)
    }

    /// Make a cloudy box out of an existing host.
    pub fn node_on(&mut self, name: &str, host: Host) -> Node {
        self.nodes += 1;
        let n = self.nodes;
        let key_file = self.dir.join(format!("{name}.key"));
        let r = run_timeout(
            Command::new(cloudy_bin()).arg("keygen").arg(&key_file),
            CMD_TIMEOUT,
        );
        assert!(r.ok(), "cloudy keygen {} failed: {r}", key_file.display());
        let public_key = r.stdout.trim().to_string();
        assert_eq!(
            public_key.len(),
            44,
            "keygen printed {:?}, want a 44-char base64 key",
            r.stdout
        );
        Node {
            name: name.to_string(),
            ns: host.ns,
            underlay: host.addr,
            overlay4: Some(Ipv4Addr::new(10, 201, OVERLAY_NET, n)),
            overlay6: self.ipv6.then(|| {
                Ipv6Addr::new(0xfd99, u16::from(OVERLAY_NET), 0, 0, 0, 0, 0, u16::from(n))
            }),
            raw_device: None,
            conf: self.dir.join(format!("{name}.conf")),
            sock: self.dir.join(format!("{name}.sock")),
            log: self.dir.join(format!("{name}.log")),
            key_file,
            public_key,
            log_level: std::env::var("CLOUDY_TEST_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
        }
    }

    /// A file that programs started in `ns` by `ip netns exec` see as
    /// `/etc/NAME` (iproute2 bind-mounts `/etc/netns/NS/NAME` over it):
    /// `hosts`, `resolv.conf`. Removed with the net.
    pub fn etc_file(&mut self, ns: &str, name: &str, content: &str) {
        let dir = PathBuf::from("/etc/netns").join(ns);
        fs::create_dir_all(&dir).expect("mkdir /etc/netns/NS");
        if !self.etc_dirs.contains(&dir) {
            self.etc_dirs.push(dir.clone());
        }
        fs::write(dir.join(name), content).expect("write /etc/netns/NS file");
    }

    /// Write `node`'s config with `peers` (node, list its endpoint?).
    pub fn configure(&self, node: &Node, peers: &[(&Node, bool)]) {
        fs::write(&node.conf, node.config_text(&self.cloud, peers)).expect("write config");
    }

    /// Start `cloudy daemon` for `node` in its namespace and wait until its
    /// console answers.
    ///
    /// # Panics
    /// If it is already running, exits, or does not answer in time.
    pub fn start(&mut self, node: &Node) {
        assert!(!self.running(node), "{} already running", node.name);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open log");
        let _ = writeln!(log, "=== harness: starting {} ===", node.name);
        let log2 = log.try_clone().expect("clone log fd");
        let child = Command::new("ip")
            .args(["netns", "exec", &node.ns])
            .arg(cloudy_bin())
            .arg("-c")
            .arg(&node.conf)
            .arg("-s")
            .arg(&node.sock)
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(log2)
            .stderr(log)
            .spawn()
            .expect("spawn cloudy daemon");
        self.daemons.push((node.name.clone(), node.clone(), child));
        let r = wait_until(
            &format!("{} console", node.name),
            START_TIMEOUT,
            Duration::from_millis(50),
            || {
                if let Some((_, _, c)) = self.daemons.iter_mut().find(|(n, _, _)| *n == node.name) {
                    if let Ok(Some(s)) = c.try_wait() {
                        return Some(Err(format!("daemon exited: {s}")));
                    }
                }
                let r = self.cloudy(node, &["--json", "status"]);
                r.ok().then_some(Ok(()))
            },
        );
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => {
                panic!("{}: {e}\n--- log ---\n{}", node.name, tail(&node.log, 40))
            }
        }
    }

    /// Is `node`'s daemon started and not yet reaped?
    pub fn running(&mut self, node: &Node) -> bool {
        self.daemons
            .iter_mut()
            .any(|(n, _, c)| *n == node.name && matches!(c.try_wait(), Ok(None)))
    }

    fn take_daemon(&mut self, node: &Node) -> Option<Child> {
        let i = self.daemons.iter().position(|(n, _, _)| *n == node.name)?;
        Some(self.daemons.remove(i).2)
    }

    /// Send `sig` to `node`'s daemon.
    pub fn signal(&mut self, node: &Node, sig: libc::c_int) {
        let (_, _, c) = self
            .daemons
            .iter()
            .find(|(n, _, _)| *n == node.name)
            .unwrap_or_else(|| panic!("{} not running", node.name));
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as libc::pid_t, sig) };
    }

    /// SIGHUP: reload the config.
    pub fn reload(&mut self, node: &Node) {
        self.signal(node, libc::SIGHUP);
    }

    /// SIGTERM and wait (≤ 5 s, then SIGKILL); returns the exit status
    /// (None if it had to be killed).
    pub fn stop(&mut self, node: &Node) -> Option<ExitStatus> {
        let mut c = self.take_daemon(node)?;
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        let s = wait_child(&mut c, Duration::from_secs(5));
        if s.is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
        s
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self, node: &Node) {
        if let Some(mut c) = self.take_daemon(node) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Run `cloudy -c CONF -s SOCK ARGS...` (console client) with a timeout.
    pub fn cloudy(&self, node: &Node, args: &[&str]) -> Run {
        let mut cmd = Command::new(cloudy_bin());
        cmd.arg("-c")
            .arg(&node.conf)
            .arg("-s")
            .arg(&node.sock)
            .args(args);
        run_timeout(&mut cmd, CMD_TIMEOUT)
    }

    /// `cloudy --json peers`, parsed.
    pub fn peers(&self, node: &Node) -> Result<Vec<Value>, String> {
        let r = self.cloudy(node, &["--json", "peers"]);
        if !r.ok() {
            return Err(format!("{} peers: {r}", node.name));
        }
        match serde_json::from_str::<Value>(&r.stdout) {
            Ok(Value::Array(v)) => Ok(v),
            Ok(other) => Err(format!("{} peers: not an array: {other}", node.name)),
            Err(e) => Err(format!(
                "{} peers: bad JSON ({e}): {:?}",
                node.name, r.stdout
            )),
        }
    }

    /// The `peers` entry of `name` on `node`, if present (see [`name_is`]).
    pub fn peer(&self, node: &Node, name: &str) -> Option<Value> {
        self.peers(node)
            .ok()?
            .into_iter()
            .find(|p| name_is(&p["name"], name))
    }

    /// `cloudy --json status`, parsed.
    pub fn status(&self, node: &Node) -> Result<Value, String> {
        let r = self.cloudy(node, &["--json", "status"]);
        if !r.ok() {
            return Err(format!("{} status: {r}", node.name));
        }
        serde_json::from_str(&r.stdout)
            .map_err(|e| format!("{} status: bad JSON ({e}): {:?}", node.name, r.stdout))
    }

    /// A `status.stats` counter of `node` (0 if absent).
    pub fn stat(&self, node: &Node, counter: &str) -> u64 {
        self.status(node)
            .ok()
            .and_then(|s| s["stats"][counter].as_u64())
            .unwrap_or(0)
    }

    /// Wait until `node` sees peer `name` in `state` (e.g. "up").
    pub fn wait_peer_state(
        &self,
        node: &Node,
        name: &str,
        state: &str,
        timeout: Duration,
    ) -> Value {
        wait_until(
            &format!("{} to see {name} {state}", node.name),
            timeout,
            Duration::from_millis(200),
            || self.peer(node, name).filter(|p| p["state"] == state),
        )
        .unwrap_or_else(|e| panic!("{e}; peers: {:?}", self.peers(node)))
    }

    /// Wait until every pair of `nodes` sees each other up.
    pub fn wait_mesh(&self, nodes: &[&Node], timeout: Duration) {
        for a in nodes {
            for b in nodes {
                if a.name != b.name {
                    self.wait_peer_state(a, &b.name, "up", timeout);
                }
            }
        }
    }

    /// One ping from `ns` to `addr` (1 s wait); true on a reply.
    pub fn ping1(&self, ns: &str, addr: &str) -> bool {
        sh(&[
            "ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-W", "1", addr,
        ])
        .ok()
    }

    /// Ping until a reply arrives, at most `timeout`.
    ///
    /// # Panics
    /// If no reply arrives in time.
    pub fn wait_ping(&self, ns: &str, addr: impl ToString, timeout: Duration) {
        let addr = addr.to_string();
        wait_until(
            &format!("ping {ns} -> {addr}"),
            timeout,
            Duration::from_millis(100),
            || self.ping1(ns, &addr).then_some(()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// `ping -c count -i interval` from `ns`; returns (sent, received).
    pub fn ping_count(&self, ns: &str, addr: &str, count: u32, interval: &str) -> (u32, u32) {
        let c = count.to_string();
        let r = run_timeout(
            Command::new("ip").args([
                "netns", "exec", ns, "ping", "-n", "-q", "-c", &c, "-i", interval, "-W", "1", addr,
            ]),
            Duration::from_secs(u64::from(count) + 30),
        );
        parse_ping(&r.stdout).unwrap_or((count, 0))
    }

    /// Start a ping in the background (killed at drop if still running).
    /// Returns once the ping runs inside `ns`: until `ip netns exec` has
    /// entered it, the net's cleanup could not find (and kill) it.
    pub fn ping_background(&self, ns: &str, addr: &str, count: u32, interval: &str) -> Child {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "ping",
                "-n",
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                interval,
                "-W",
                "1",
                addr,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ping");
        let pid = child.id().to_string();
        let entered = wait_until(
            &format!("ping to enter {ns}"),
            Duration::from_secs(5),
            Duration::from_millis(20),
            || {
                // Already done (a short ping) counts as started.
                let exited = matches!(child.try_wait(), Ok(Some(_)));
                let inside = sh(&["ip", "netns", "pids", ns])
                    .stdout
                    .split_whitespace()
                    .any(|p| p == pid);
                (exited || inside).then_some(())
            },
        );
        if let Err(e) = entered {
            panic!("{e}");
        }
        child
    }

    /// A counter of a device in `ns` (`/sys/class/net/DEV/statistics/NAME`).
    pub fn dev_stat(&self, ns: &str, dev: &str, name: &str) -> u64 {
        let path = format!("/sys/class/net/{dev}/statistics/{name}");
        let out = must(&["ip", "netns", "exec", ns, "cat", &path]);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("bad counter {path}: {out:?}"))
    }

    /// Does `dev` exist in `ns`?
    pub fn has_dev(&self, ns: &str, dev: &str) -> bool {
        sh(&["ip", "-n", ns, "link", "show", "dev", dev]).ok()
    }

    /// The whole log of `node`'s daemon(s).
    pub fn log_text(&self, node: &Node) -> String {
        fs::read_to_string(&node.log).unwrap_or_default()
    }

    fn cleanup(&mut self) {
        for (_, _, mut c) in self.daemons.drain(..) {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            if wait_child(&mut c, Duration::from_secs(3)).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for ns in self.namespaces.drain(..).rev() {
            kill_namespace(&ns);
        }
        for dir in self.etc_dirs.drain(..) {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            eprintln!("=== {}: test failed; daemon logs (tail) ===", self.test);
            let mut seen = Vec::new();
            for (name, node, _) in &self.daemons {
                seen.push(name.clone());
                eprintln!(
                    "--- {name} ({}) ---\n{}",
                    node.log.display(),
                    tail(&node.log, 60)
                );
            }
            if let Ok(rd) = fs::read_dir(&self.dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    let stem = p
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if p.extension().is_some_and(|x| x == "log") && !seen.contains(&stem) {
                        eprintln!("--- {stem} (stopped) ---\n{}", tail(&p, 30));
                    }
                }
            }
        }
        self.cleanup();
        if failed || std::env::var_os("CLOUDY_TEST_KEEP").is_some() {
            eprintln!("{}: files kept in {}", self.test, self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Does a name field of `cloudy --json` (peer `name` or `via`) name
/// member `name`? Members learned by gossip are shown as `~name`.
pub fn name_is(v: &Value, name: &str) -> bool {
    v.as_str()
        .is_some_and(|s| s.strip_prefix('~').unwrap_or(s) == name)
}

/// Parse ping's summary: "N packets transmitted, M received".
pub fn parse_ping(out: &str) -> Option<(u32, u32)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let sent = nums.next()?.parse().ok()?;
    let recv = nums.next()?.parse().ok()?;
    Some((sent, recv))
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn sysctl(ns: &str, key: &str, value: &str) {
    must(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        &format!("{key}={value}"),
    ]);
}

/// Kill every process in `ns`, then delete it.
fn kill_namespace(ns: &str) {
    for _ in 0..3 {
        let pids = sh(&["ip", "netns", "pids", ns]).stdout;
        let pids: Vec<i32> = pids
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() {
            break;
        }
        for p in pids {
            // SAFETY: plain kill(2); these processes run in our test namespace.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = sh(&["ip", "netns", "del", ns]);
}

/// Remove namespaces left by test processes that no longer exist.
fn remove_stale_namespaces() {
    let Ok(rd) = fs::read_dir("/run/netns") else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if pid.is_empty() || !rest[pid.len()..].starts_with('n') {
            continue;
        }
        if !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("cloudy-tests: removing stale namespace {name}");
            kill_namespace(&name);
        }
    }
}
