//! Real mDNS/DNS-SD peers in test namespaces: avahi-daemon with
//! avahi-utils, python-zeroconf, and dig (root only).
//!
//! These are the other side of the interop tests and of the benchmark of
//! cloudy's responder (issue 4); they never test cloudy by themselves.
//! `scripts/deps.sh mdns` installs everything (Debian's avahi-daemon,
//! avahi-utils, dbus, dnsutils; python-zeroconf in the venv
//! `$CLOUDY_PYENV`, default [`PYENV_DEFAULT`]).
//!
//! # How avahi-daemon runs in a namespace ([`Avahi::start`])
//! - **D-Bus:** a private `dbus-daemon --nofork` per instance, started in
//!   the namespace, with a generated system-bus-like config
//!   (`<type>system</type>`, `EXTERNAL` auth, a permissive policy so the
//!   `avahi` user may own `org.freedesktop.Avahi`) listening on the
//!   abstract unix socket `cloudy-test-dbus-NS`. Abstract sockets belong
//!   to the network namespace, so the name cannot clash, and the `avahi`
//!   user (avahi-daemon drops root) needs no access to a directory: a
//!   socket under a 0700 directory (`mktemp -d`, umask 077) fails with
//!   "Permission denied". `DBUS_SYSTEM_BUS_ADDRESS` points avahi-daemon
//!   and every avahi-utils command (run in the namespace) at it. The
//!   system bus is never touched.
//! - **/run/avahi-daemon:** avahi writes its pid file and its socket there
//!   and refuses to start when the pid file names a live process; it has no
//!   option for another path. The daemon is started as
//!   `ip netns exec NS unshare -m --propagation private sh -c 'mount -t
//!   tmpfs … /run && mkdir /run/avahi-daemon && mount -t tmpfs …
//!   /etc/avahi/services && exec avahi-daemon …'`: a private mount
//!   namespace with a fresh tmpfs on /run (mounting on /run itself, not on
//!   /run/avahi-daemon, because that directory does not exist on a host
//!   whose own avahi never ran, and the host is left untouched), and an
//!   empty /etc/avahi/services so no static service of the host is
//!   published. The shell `exec`s, so the child's pid is avahi-daemon's.
//! - **avahi-daemon:** `--no-chroot --no-rlimits --no-proc-title -f CONF`
//!   (it still drops root to the `avahi` user, which the package creates)
//!   with a generated config: `host-name=` unique (the namespace name by
//!   default), `allow-interfaces=` the test interface only,
//!   `use-ipv6=no` unless [`AvahiOpts::ipv6`], `enable-dbus=yes`,
//!   `enable-wide-area=no`, `publish-workstation=no`, `publish-hinfo=no`,
//!   no reflector, and Debian's shipped rate limit
//!   (`ratelimit-interval-usec=1000000`, `ratelimit-burst=1000`). It runs
//!   in the foreground and logs to `avahi-NS.log` in the test directory;
//!   "Server startup complete" (after host-name probing, about 0.8–1 s)
//!   marks it ready.
//!
//! # Pitfalls
//! - `avahi-browse -t` waits for "all for now" (about 1 s) even when the
//!   answer is cached; use a streaming [`Browser`] to time visibility.
//! - A goodbye (TTL 0) makes Avahi expire the record after 1 s (RFC 6762
//!   §10.1), so "gone" shows about 1 s after the goodbye, not at once.
//! - avahi-browse prints names with `\DDD` (decimal) and `\.`, `\\`
//!   escapes and TXT strings reversed from avahi-publish's argument order;
//!   [`Resolved`] holds the unescaped values (compare TXT as a set).
//! - A namespace's `lo` has no multicast: give python-zeroconf the test
//!   interface's address (`iface_addr`), else it may pick nothing useful.
//!
//! Invariants: every child is killed (SIGKILL) and reaped when its handle
//! drops; every wait has a deadline; captured output is bounded
//! ([`MAX_LINES`] lines per process).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{run_timeout, tail, wait_child, wait_until, workspace_root, Run, Value};

/// Default venv holding python-zeroconf (`$CLOUDY_PYENV` overrides).
pub const PYENV_DEFAULT: &str = "/opt/cloudy-test-venv";
/// At most this many output lines are kept per child process.
pub const MAX_LINES: usize = 10_000;
/// How long avahi-daemon (or dbus-daemon) may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one-shot avahi-utils / dig / zeroconf commands.
const ONE_SHOT_TIMEOUT: Duration = Duration::from_secs(10);

/// The venv's python (`$CLOUDY_PYENV/bin/python`).
pub fn zeroconf_python() -> PathBuf {
    let venv = std::env::var_os("CLOUDY_PYENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(PYENV_DEFAULT));
    venv.join("bin").join("python")
}

/// `scripts/mdns_peers.py` of this workspace.
pub fn peers_script() -> PathBuf {
    workspace_root().join("scripts").join("mdns_peers.py")
}

/// Ok when avahi-daemon, avahi-utils, dbus-daemon, dig and the venv's
/// python-zeroconf are all present; else what is missing. Checked once.
pub fn mdns_tools() -> Result<(), String> {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    CHECK
        .get_or_init(|| {
            let mut missing = Vec::new();
            for c in [
                "avahi-daemon",
                "avahi-browse",
                "avahi-publish",
                "avahi-resolve",
                "dbus-daemon",
                "dig",
                "unshare",
            ] {
                if which(c).is_none() {
                    missing.push(c.to_string());
                }
            }
            let py = zeroconf_python();
            let r = run_timeout(
                Command::new(&py).args(["-c", "import zeroconf"]),
                ONE_SHOT_TIMEOUT,
            );
            if !r.ok() {
                missing.push(format!("python-zeroconf in {}", py.display()));
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "missing {}; run scripts/deps.sh mdns as root",
                    missing.join(", ")
                ))
            }
        })
        .clone()
}

/// True (after a loud SKIP) when the test cannot run: not root, or the
/// mDNS tools are missing outside CI. In CI (`$CI` set) missing tools are
/// a failure, never a silent skip.
///
/// # Panics
/// In CI, when a tool is missing.
pub fn skip_unless_mdns_peers(test: &str) -> bool {
    if crate::skip_unless_root(test) {
        return true;
    }
    match mdns_tools() {
        Ok(()) => false,
        Err(e) if std::env::var_os("CI").is_some() => panic!("{test}: {e}"),
        Err(e) => {
            crate::skip(test, &format!("no mDNS peers: {e}"));
            true
        }
    }
}

/// Path of `cmd` in PATH or the sbin directories.
fn which(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// One line of a child's output with the time it was read.
#[derive(Clone, Debug)]
pub struct Line {
    pub at: Instant,
    pub text: String,
}

/// A child process whose stdout lines are collected by a thread (stderr
/// goes to a log file). Killed (SIGKILL) and reaped on drop.
pub struct Proc {
    what: String,
    child: Option<Child>,
    lines: Arc<Mutex<Vec<Line>>>,
    log: PathBuf,
    /// When it was spawned.
    pub started: Instant,
}

impl Proc {
    /// Spawn `cmd` (stdin null, stdout collected, stderr to `log`).
    ///
    /// # Panics
    /// If it cannot be spawned.
    pub fn spawn(what: &str, cmd: &mut Command, log: &Path) -> Proc {
        let err = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what} ({cmd:?}): {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines() {
                    let Ok(text) = l else { break };
                    let mut v = lines.lock().unwrap_or_else(|p| p.into_inner());
                    if v.len() < MAX_LINES {
                        v.push(Line {
                            at: Instant::now(),
                            text,
                        });
                    }
                }
            });
        }
        Proc {
            what: what.to_string(),
            child: Some(child),
            lines,
            log: log.to_path_buf(),
            started,
        }
    }

    /// Its pid (0 once reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// All stdout lines so far.
    pub fn lines(&self) -> Vec<Line> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Its stderr log (tail).
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Wait for the first stdout line matching `pred`, at most `timeout`.
    pub fn wait_line(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<Line, String> {
        let what = self.what.clone();
        let r = wait_until(&what, timeout, Duration::from_millis(10), || {
            self.lines().into_iter().find(|l| pred(&l.text))
        });
        r.map_err(|e| {
            format!(
                "{e}; stdout: {:?}; stderr: {}",
                self.lines().iter().map(|l| &l.text).collect::<Vec<_>>(),
                self.log_tail(20)
            )
        })
    }

    /// SIGTERM, wait at most `timeout`, then SIGKILL; true if it exited
    /// by itself.
    pub fn stop(&mut self, timeout: Duration) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        let ok = wait_child(&mut c, timeout).is_some();
        if !ok {
            let _ = c.kill();
            let _ = c.wait();
        }
        ok
    }

    /// SIGKILL and reap (no goodbye from a publisher killed this way,
    /// except what its daemon sends for it).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait for it to exit by itself, at most `timeout` (killed after).
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let s = wait_child(&mut c, timeout);
        if s.is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Options of [`Avahi::start`].
#[derive(Clone, Debug, Default)]
pub struct AvahiOpts {
    /// `host-name=`; default the namespace's name (unique per test).
    pub host_name: Option<String>,
    /// `use-ipv6=yes` (the namespace needs IPv6 on; see `Net::ipv6`).
    pub ipv6: bool,
    /// Extra lines appended to the `[server]` section.
    pub extra_server: Vec<String>,
    /// `enable-reflector=yes` (off by default: a reflector repeats
    /// everything between interfaces and hides who answered).
    pub reflector: bool,
}

/// avahi-daemon (and its private dbus-daemon) in one namespace; both are
/// killed on drop. The avahi-utils methods talk to this daemon only.
pub struct Avahi {
    pub ns: String,
    pub ifname: String,
    /// The configured host name (without `.local`).
    pub host_name: String,
    /// `unix:abstract=…` of the private bus (valid inside `ns` only).
    pub bus: String,
    /// Scratch directory (configs, logs).
    pub dir: PathBuf,
    /// Spawn to "Server startup complete".
    pub startup: Duration,
    daemon: Option<Proc>,
    dbus: Option<Proc>,
    log: PathBuf,
    seq: u32,
}

impl Avahi {
    /// Start dbus-daemon and avahi-daemon in `ns` on `ifname`; files go to
    /// `dir` (a test's `Net::dir`). Returns once avahi's startup (host name
    /// probing) is complete.
    ///
    /// # Panics
    /// If either daemon does not start in time (with its log).
    pub fn start(dir: &Path, ns: &str, ifname: &str, opts: AvahiOpts) -> Avahi {
        let host_name = opts.host_name.clone().unwrap_or_else(|| ns.to_string());
        let bus = format!("unix:abstract=cloudy-test-dbus-{ns}");
        let dbus_conf = dir.join(format!("dbus-{ns}.conf"));
        fs::write(&dbus_conf, dbus_config(&bus)).expect("write dbus config");
        let mut dbus = Proc::spawn(
            &format!("dbus-daemon in {ns}"),
            Command::new("ip")
                .args(["netns", "exec", ns, "dbus-daemon", "--nofork"])
                .arg(format!("--config-file={}", dbus_conf.display()))
                .arg("--print-address=1"),
            &dir.join(format!("dbus-{ns}.log")),
        );
        if let Err(e) = dbus.wait_line(START_TIMEOUT, |l| l.starts_with("unix:")) {
            panic!("dbus-daemon in {ns} did not start: {e}");
        }

        let conf = dir.join(format!("avahi-{ns}.conf"));
        fs::write(&conf, avahi_config(&host_name, ifname, &opts)).expect("write avahi config");
        let log = dir.join(format!("avahi-{ns}.log"));
        let script = format!(
            "mount -t tmpfs -o mode=0755,size=1m cyt-avahi-run /run \
             && mkdir -p /run/avahi-daemon \
             && mount -t tmpfs -o mode=0755,size=64k cyt-avahi-services /etc/avahi/services \
             && exec avahi-daemon --no-chroot --no-rlimits --no-proc-title -f '{}'",
            conf.display()
        );
        let t0 = Instant::now();
        // avahi logs to stderr in the foreground: stderr is the log, and
        // stdout (nothing) is collected.
        let mut daemon = Proc::spawn(
            &format!("avahi-daemon in {ns}"),
            Command::new("ip")
                .args(["netns", "exec", ns, "unshare", "-m", "--propagation"])
                .args(["private", "sh", "-c", &script])
                .env("DBUS_SYSTEM_BUS_ADDRESS", &bus),
            &log,
        );
        let ready = wait_until(
            &format!("avahi-daemon in {ns} startup"),
            START_TIMEOUT,
            Duration::from_millis(10),
            || {
                if !daemon.running() {
                    return Some(Err("exited".to_string()));
                }
                fs::read_to_string(&log)
                    .ok()
                    .filter(|s| s.contains("Server startup complete"))
                    .map(|_| Ok(()))
            },
        );
        match ready {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => panic!(
                "avahi-daemon in {ns}: {e}\n--- {} ---\n{}",
                log.display(),
                tail(&log, 30)
            ),
        }
        Avahi {
            ns: ns.to_string(),
            ifname: ifname.to_string(),
            host_name,
            bus,
            dir: dir.to_path_buf(),
            startup: t0.elapsed(),
            daemon: Some(daemon),
            dbus: Some(dbus),
            log,
            seq: 0,
        }
    }

    /// avahi-daemon's pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().map_or(0, Proc::pid)
    }

    /// VmRSS of avahi-daemon in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }

    /// The host name avahi-daemon uses now (after any conflict renaming:
    /// avahi logs "Host name conflict, retrying with NAME" and then
    /// "Server startup complete. Host name is NAME.local."), without
    /// `.local`.
    pub fn host_name_now(&self) -> String {
        let log = self.log_text();
        let mut name = self.host_name.clone();
        for l in log.lines() {
            if let Some(rest) = l.split("Host name is ").nth(1) {
                let n = rest.split_whitespace().next().unwrap_or("");
                name = n
                    .trim_end_matches('.')
                    .trim_end_matches(".local")
                    .to_string();
            } else if let Some(rest) = l.split("Host name conflict, retrying with ").nth(1) {
                name = rest.trim().trim_end_matches('.').to_string();
            }
        }
        name
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stop avahi-daemon with SIGTERM (it sends goodbyes for everything it
    /// published); true if it exited within 5 s.
    pub fn stop(&mut self) -> bool {
        self.daemon
            .take()
            .is_some_and(|mut d| d.stop(Duration::from_secs(5)))
    }

    /// A command `ip netns exec NS PROG ARGS…` on this daemon's bus.
    pub fn command(&self, prog: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, prog])
            .args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus);
        c
    }

    fn next_log(&mut self, what: &str) -> PathBuf {
        self.seq += 1;
        self.dir
            .join(format!("{what}-{}-{}.log", self.ns, self.seq))
    }

    /// `avahi-publish -s NAME TYPE PORT TXT…`: runs until killed. Wait for
    /// "Established under name 'NAME'" with [`Proc::wait_line`] if needed
    /// (on a conflict it prints "Name collision, picking new name 'NAME
    /// #2'." and publishes that). Killing it (any signal) makes
    /// avahi-daemon withdraw the service with a goodbye.
    pub fn publish(&mut self, name: &str, type_: &str, port: u16, txt: &[&str]) -> Proc {
        let port = port.to_string();
        let mut args = vec!["-s", name, type_, &port];
        args.extend_from_slice(txt);
        let log = self.next_log("avahi-publish");
        Proc::spawn(
            &format!("avahi-publish {name} in {}", self.ns),
            &mut self.command("avahi-publish", &args),
            &log,
        )
    }

    /// `avahi-publish -a -R NAME ADDR`: publish an address record (runs
    /// until killed).
    pub fn publish_address(&mut self, name: &str, addr: IpAddr) -> Proc {
        let a = addr.to_string();
        let log = self.next_log("avahi-publish-a");
        Proc::spawn(
            &format!("avahi-publish -a {name} in {}", self.ns),
            &mut self.command("avahi-publish", &["-a", "-R", name, &a]),
            &log,
        )
    }

    /// One-shot `avahi-browse -rptk TYPE` (about 1 s: it waits for "all
    /// for now"); the resolved services, in output order.
    pub fn browse(&self, type_: &str) -> Vec<Resolved> {
        let r = run_timeout(
            &mut self.command("avahi-browse", &["-rptk", type_]),
            ONE_SHOT_TIMEOUT,
        );
        parse_avahi_browse(&r.stdout).resolved()
    }

    /// A streaming `avahi-browse -rpk TYPE` (use `-a` for all types).
    pub fn browser(&mut self, type_: &str) -> Browser {
        let log = self.next_log("avahi-browse");
        let mut args = vec!["-rpk"];
        if type_ == "-a" {
            args = vec!["-rpka"];
        } else {
            args.push(type_);
        }
        let proc = Proc::spawn(
            &format!("avahi-browse {type_} in {}", self.ns),
            &mut self.command("avahi-browse", &args),
            &log,
        );
        Browser {
            proc,
            kind: BrowserKind::Avahi,
        }
    }

    /// Browse `type_` until `pred` holds for the current set of resolved
    /// services; returns that set, or Err with what was seen.
    pub fn browse_until(
        &mut self,
        type_: &str,
        timeout: Duration,
        pred: impl Fn(&[Resolved]) -> bool,
    ) -> Result<Vec<Resolved>, String> {
        self.browser(type_).wait(timeout, pred)
    }

    /// `avahi-resolve -n NAME` (IPv4 unless `ipv6`): the address, if any
    /// answered within avahi's own timeout (about 5 s).
    pub fn resolve_host(&self, name: &str, ipv6: bool) -> Option<IpAddr> {
        let fam = if ipv6 { "-6" } else { "-4" };
        let r = run_timeout(
            &mut self.command("avahi-resolve", &["-n", fam, name]),
            ONE_SHOT_TIMEOUT,
        );
        r.stdout
            .lines()
            .find_map(|l| l.split('\t').nth(1)?.trim().parse().ok())
    }

    /// `avahi-resolve -a ADDR`: the host name published for it.
    pub fn resolve_address(&self, addr: IpAddr) -> Option<String> {
        let r = run_timeout(
            &mut self.command("avahi-resolve", &["-a", &addr.to_string()]),
            ONE_SHOT_TIMEOUT,
        );
        r.stdout
            .lines()
            .find_map(|l| Some(l.split('\t').nth(1)?.trim().to_string()))
    }
}

impl Drop for Avahi {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- avahi-daemon in {} ({}) ---\n{}",
                self.ns,
                self.log.display(),
                tail(&self.log, 30)
            );
        }
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
        if let Some(mut d) = self.dbus.take() {
            d.kill();
        }
    }
}

fn dbus_config(bus: &str) -> String {
    format!(
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n \
         \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
         <busconfig>\n  <type>system</type>\n  <listen>{bus}</listen>\n  \
         <auth>EXTERNAL</auth>\n  <policy context=\"default\">\n    \
         <allow user=\"*\"/>\n    <allow own=\"*\"/>\n    \
         <allow send_destination=\"*\"/>\n    <allow receive_sender=\"*\"/>\n  \
         </policy>\n</busconfig>\n"
    )
}

fn avahi_config(host_name: &str, ifname: &str, o: &AvahiOpts) -> String {
    let yn = |b: bool| if b { "yes" } else { "no" };
    let mut s = format!(
        "[server]\nhost-name={host_name}\ndomain-name=local\nuse-ipv4=yes\nuse-ipv6={}\n\
         allow-interfaces={ifname}\nenable-dbus=yes\n\
         ratelimit-interval-usec=1000000\nratelimit-burst=1000\n",
        yn(o.ipv6)
    );
    for l in &o.extra_server {
        s += l;
        s += "\n";
    }
    s += "\n[wide-area]\nenable-wide-area=no\n\n[publish]\npublish-hinfo=no\n\
          publish-workstation=no\n\n[reflector]\n";
    s += &format!("enable-reflector={}\n", yn(o.reflector));
    s
}

/// VmRSS of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// One resolved service instance as seen by a browser (one per address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Interface name (avahi; empty for zeroconf).
    pub interface: String,
    /// "IPv4" or "IPv6".
    pub protocol: String,
    /// Instance name, unescaped ("Test Service").
    pub name: String,
    /// Service type without the domain ("_http._tcp").
    pub type_: String,
    /// "local".
    pub domain: String,
    /// Target host without the trailing dot ("box.local").
    pub host: String,
    /// Address as printed (may carry a `%scope`).
    pub address: String,
    pub port: u16,
    /// TXT strings, unescaped, in the order received.
    pub txt: Vec<String>,
}

impl Resolved {
    /// The address without any `%scope`.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('%').next()?.parse().ok()
    }

    /// Does TXT hold exactly `kvs` (any order)?
    pub fn txt_is(&self, kvs: &[&str]) -> bool {
        let mut a: Vec<&str> = self.txt.iter().map(String::as_str).collect();
        let mut b = kvs.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }
}

/// Browser state: resolved services keyed by (interface, protocol, name,
/// type, domain), plus the instances announced but not (yet) resolved.
#[derive(Clone, Debug, Default)]
pub struct BrowseState {
    pub resolved: BTreeMap<(String, String, String, String, String), Resolved>,
    /// Instances seen by `+` and not removed (avahi only).
    pub present: BTreeMap<(String, String, String, String, String), ()>,
}

impl BrowseState {
    /// The resolved services, in key order.
    pub fn resolved(&self) -> Vec<Resolved> {
        self.resolved.values().cloned().collect()
    }
}

/// Parse `avahi-browse -p[r]` output (`+`, `-`, `=` lines) into the
/// state after the last line. Malformed lines are ignored.
pub fn parse_avahi_browse(out: &str) -> BrowseState {
    let mut st = BrowseState::default();
    for line in out.lines() {
        apply_avahi_line(&mut st, line);
    }
    st
}

fn apply_avahi_line(st: &mut BrowseState, line: &str) {
    let f: Vec<&str> = line.splitn(10, ';').collect();
    let (Some(ev), Some(iface), Some(proto), Some(name), Some(ty), Some(dom)) =
        (f.first(), f.get(1), f.get(2), f.get(3), f.get(4), f.get(5))
    else {
        return;
    };
    let key = (
        iface.to_string(),
        proto.to_string(),
        unescape_avahi(name),
        unescape_avahi(ty),
        unescape_avahi(dom),
    );
    match *ev {
        "+" => {
            st.present.insert(key, ());
        }
        "-" => {
            st.present.remove(&key);
            st.resolved.remove(&key);
        }
        "=" => {
            let (Some(host), Some(addr), Some(port)) = (f.get(6), f.get(7), f.get(8)) else {
                return;
            };
            let Ok(port) = port.parse() else { return };
            let r = Resolved {
                interface: key.0.clone(),
                protocol: key.1.clone(),
                name: key.2.clone(),
                type_: key.3.clone(),
                domain: key.4.clone(),
                host: unescape_avahi(host),
                address: addr.to_string(),
                port,
                txt: parse_avahi_txt(f.get(9).copied().unwrap_or("")),
            };
            st.present.insert(key.clone(), ());
            st.resolved.insert(key, r);
        }
        _ => {}
    }
}

/// Undo avahi's label escapes: `\DDD` (decimal byte), `\X` (X).
pub fn unescape_avahi(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let digits = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        match digits {
            Some(d) => {
                let v = d.iter().fold(0u32, |acc, x| acc * 10 + u32::from(x - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                if let Some(&n) = b.get(i + 1) {
                    out.push(n);
                }
                i += 2;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse avahi's TXT field: `"a=1" "b=x y"` with `\"`, `\\`, `\DDD`.
pub fn parse_avahi_txt(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'"' {
            i += 1;
            continue;
        }
        // Opening quote: find the closing one, skipping escapes.
        let start = i + 1;
        let mut j = start;
        while let Some(&d) = b.get(j) {
            match d {
                b'\\' => j += 2,
                b'"' => break,
                _ => j += 1,
            }
        }
        let inner = s.get(start..j.min(b.len())).unwrap_or("");
        out.push(unescape_avahi(inner));
        i = j + 1;
    }
    out
}

/// Which tool a [`Browser`] runs.
#[derive(Clone, Copy, Debug)]
enum BrowserKind {
    Avahi,
    Zeroconf,
}

/// A streaming browser (avahi-browse -rp or mdns_peers.py browse
/// --stream); killed on drop.
pub struct Browser {
    pub proc: Proc,
    kind: BrowserKind,
}

impl Browser {
    /// The resolved services now.
    pub fn current(&self) -> Vec<Resolved> {
        self.history().pop().map(|(_, v)| v).unwrap_or_default()
    }

    /// Wait until `pred` holds for the resolved set; returns it.
    pub fn wait(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&[Resolved]) -> bool,
    ) -> Result<Vec<Resolved>, String> {
        self.wait_at(timeout, pred).map(|(v, _)| v)
    }

    /// Like [`Browser::wait`], also returning since when `pred` has held
    /// without a break (the time the line that made it true was read; the
    /// browser's start if it held from the beginning).
    pub fn wait_at(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&[Resolved]) -> bool,
    ) -> Result<(Vec<Resolved>, Instant), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let hist = self.history();
            let mut since = None;
            let mut last = Vec::new();
            for (at, v) in hist {
                if !pred(&v) {
                    since = None;
                } else if since.is_none() {
                    since = Some(at);
                }
                last = v;
            }
            if let Some(at) = since {
                return Ok((last, at));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{:?} browser: condition not met within {timeout:?}; resolved: {last:?}; \
                     stderr: {}",
                    self.kind,
                    self.proc.log_tail(10)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The resolved set at the start and after each line read so far.
    pub fn history(&self) -> Vec<(Instant, Vec<Resolved>)> {
        let mut st = BrowseState::default();
        let mut out = vec![(self.proc.started, Vec::new())];
        for l in self.proc.lines() {
            match self.kind {
                BrowserKind::Avahi => apply_avahi_line(&mut st, &l.text),
                BrowserKind::Zeroconf => apply_zeroconf_line(&mut st, &l.text),
            }
            out.push((l.at, st.resolved()));
        }
        out
    }

    /// Wait until an instance named `name` is resolved; returns its
    /// entries (one per address).
    pub fn wait_for(&mut self, name: &str, timeout: Duration) -> Result<Vec<Resolved>, String> {
        let v = self.wait(timeout, |v| v.iter().any(|r| r.name == name))?;
        Ok(v.into_iter().filter(|r| r.name == name).collect())
    }

    /// Wait until no instance named `name` is resolved any more (goodbye
    /// or expiry); returns when its removal was read.
    ///
    /// Err at once if this browser never saw `name` (an empty browser
    /// would pass otherwise).
    pub fn wait_gone(&mut self, name: &str, timeout: Duration) -> Result<Instant, String> {
        let seen = self
            .history()
            .iter()
            .any(|(_, v)| v.iter().any(|r| r.name == name));
        if !seen {
            return Err(format!("{name}: never seen by this browser"));
        }
        self.wait_at(timeout, |v| v.iter().all(|r| r.name != name))
            .map(|(_, t)| t)
    }
}

/// One `--stream` JSON line of mdns_peers.py browse into the state.
fn apply_zeroconf_line(st: &mut BrowseState, line: &str) {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return;
    };
    let ev = v["event"].as_str().unwrap_or("");
    let fullname = v["fullname"].as_str().unwrap_or("").to_string();
    let key_of = |proto: &str| {
        (
            String::new(),
            proto.to_string(),
            fullname.clone(),
            String::new(),
            String::new(),
        )
    };
    // Drop every entry of this fullname (any address), then re-add.
    let keys: Vec<_> = st
        .resolved
        .keys()
        .filter(|k| k.2.starts_with(&format!("{fullname}|")))
        .cloned()
        .collect();
    for k in keys {
        st.resolved.remove(&k);
    }
    if ev == "removed" {
        st.present.remove(&key_of(""));
        return;
    }
    for r in zeroconf_json_entries(&v) {
        let mut k = key_of(&r.protocol);
        k.2 = format!("{fullname}|{}", r.address);
        st.resolved.insert(k, r);
    }
    st.present.insert(key_of(""), ());
}

/// The [`Resolved`] entries (one per address) of one mdns_peers.py
/// service object.
pub fn zeroconf_json_entries(v: &Value) -> Vec<Resolved> {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let strip = |x: String| x.trim_end_matches('.').to_string();
    let ty = strip(s("type"));
    let (type_, domain) = match ty.rsplit_once('.') {
        Some((t, d)) => (t.to_string(), d.to_string()),
        None => (ty.clone(), String::new()),
    };
    let txt: Vec<String> = v["txt"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let port = v["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0);
    v["addresses"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|addr| Resolved {
            interface: String::new(),
            protocol: if addr.contains(':') { "IPv6" } else { "IPv4" }.to_string(),
            name: s("name"),
            type_: type_.clone(),
            domain: domain.clone(),
            host: strip(s("host")),
            address: addr.to_string(),
            port,
            txt: txt.clone(),
        })
        .collect()
}

/// A `mdns_peers.py` command line in `ns`, restricted to `iface_addr`.
fn zeroconf_command(ns: &str, iface_addr: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns])
        .arg(zeroconf_python())
        .arg(peers_script())
        .args(["--iface-addr", iface_addr])
        .args(args);
    c
}

/// A service to publish with python-zeroconf.
#[derive(Clone, Copy, Debug)]
pub struct ZcService<'a> {
    /// Instance name ("Test Service").
    pub name: &'a str,
    /// Service type ("_http._tcp").
    pub type_: &'a str,
    pub port: u16,
    /// Target host (`.local` added when missing); its A record is the
    /// `iface_addr` given to [`zeroconf_publish`].
    pub host: &'a str,
    /// TXT strings ("k=v").
    pub txt: &'a [&'a str],
}

/// python-zeroconf publishing `svc` on the interface holding `iface_addr`
/// in `ns`. Runs until stopped (SIGTERM: goodbye), killed (no goodbye) or
/// 300 s. Its stderr goes to `log_dir`. Wait for `"registered"` with
/// [`Proc::wait_line`] (probing and announcing take about 1.5 s).
pub fn zeroconf_publish(log_dir: &Path, ns: &str, iface_addr: &str, svc: &ZcService) -> Proc {
    let host = if svc.host.ends_with(".local") || svc.host.ends_with(".local.") {
        svc.host.to_string()
    } else {
        format!("{}.local", svc.host)
    };
    let port = svc.port.to_string();
    let mut args = vec![
        "publish", "--name", svc.name, "--type", svc.type_, "--port", &port, "--host", &host,
    ];
    for t in svc.txt {
        args.push("--txt");
        args.push(t);
    }
    Proc::spawn(
        &format!("zeroconf publish {} in {ns}", svc.name),
        &mut zeroconf_command(ns, iface_addr, &args),
        &log_dir.join(format!("zeroconf-publish-{ns}-{}.log", sanitize(svc.name))),
    )
}

/// python-zeroconf browsing `type_` in `ns` for `timeout` (or until an
/// instance named `until` resolves): the resolved services.
pub fn zeroconf_browse(
    ns: &str,
    iface_addr: &str,
    type_: &str,
    timeout: Duration,
    until: Option<&str>,
) -> Result<Vec<Resolved>, String> {
    let secs = format!("{:.3}", timeout.as_secs_f64());
    let mut args = vec!["browse", "--type", type_, "--timeout", &secs];
    if let Some(u) = until {
        args.push("--until");
        args.push(u);
    }
    let r = run_timeout(
        &mut zeroconf_command(ns, iface_addr, &args),
        timeout + ONE_SHOT_TIMEOUT,
    );
    if !r.ok() {
        return Err(format!("zeroconf browse {type_} in {ns}: {r}"));
    }
    let v: Value = serde_json::from_str(r.stdout.trim())
        .map_err(|e| format!("zeroconf browse: bad JSON ({e}): {r}"))?;
    Ok(v.as_array()
        .map(|a| a.iter().flat_map(zeroconf_json_entries).collect())
        .unwrap_or_default())
}

/// A streaming python-zeroconf browser of `type_` in `ns` (at most
/// `max` long); killed on drop.
pub fn zeroconf_browser(
    log_dir: &Path,
    ns: &str,
    iface_addr: &str,
    type_: &str,
    max: Duration,
) -> Browser {
    let secs = format!("{:.3}", max.as_secs_f64());
    let proc = Proc::spawn(
        &format!("zeroconf browse {type_} in {ns}"),
        &mut zeroconf_command(
            ns,
            iface_addr,
            &["browse", "--stream", "--type", type_, "--timeout", &secs],
        ),
        &log_dir.join(format!("zeroconf-browse-{ns}-{}.log", sanitize(type_))),
    );
    Browser {
        proc,
        kind: BrowserKind::Zeroconf,
    }
}

/// python-zeroconf resolving host `name` (A, and AAAA with IPv6) in `ns`.
pub fn zeroconf_resolve(ns: &str, iface_addr: &str, name: &str, timeout: Duration) -> Vec<IpAddr> {
    let secs = format!("{:.3}", timeout.as_secs_f64());
    let r = run_timeout(
        &mut zeroconf_command(
            ns,
            iface_addr,
            &["resolve", "--name", name, "--timeout", &secs],
        ),
        timeout + ONE_SHOT_TIMEOUT,
    );
    serde_json::from_str::<Value>(r.stdout.trim())
        .ok()
        .and_then(|v| {
            v["addresses"].as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str()?.split('%').next()?.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// python-zeroconf service type enumeration (`_services._dns-sd._udp`)
/// in `ns`: the types seen (like `_http._tcp.local.`).
pub fn zeroconf_types(ns: &str, iface_addr: &str, timeout: Duration) -> Vec<String> {
    let secs = format!("{:.3}", timeout.as_secs_f64());
    let r = run_timeout(
        &mut zeroconf_command(ns, iface_addr, &["types", "--timeout", &secs]),
        timeout + ONE_SHOT_TIMEOUT,
    );
    serde_json::from_str::<Vec<String>>(r.stdout.trim()).unwrap_or_default()
}

/// One unicast `dig -p 5353 @server NAME TYPE` from `ns` (one try, 2 s):
/// its output and the wall time it took (dig's own process included).
pub fn dig(ns: &str, server: IpAddr, name: &str, rtype: &str) -> (Run, Duration) {
    let at = format!("@{server}");
    let t0 = Instant::now();
    let r = run_timeout(
        Command::new("ip").args([
            "netns",
            "exec",
            ns,
            "dig",
            "+tries=1",
            "+time=2",
            "+norecurse",
            "-p",
            "5353",
            &at,
            name,
            rtype,
        ]),
        ONE_SHOT_TIMEOUT,
    );
    (r, t0.elapsed())
}

/// dig's own "Query time: N msec" line, in ms.
pub fn dig_query_ms(out: &str) -> Option<u32> {
    let l = out.lines().find(|l| l.contains("Query time:"))?;
    l.split_whitespace().nth(3)?.parse().ok()
}

/// The answer-section records of dig's output (`name ttl class type
/// data…` lines, whitespace-joined).
pub fn dig_answers(out: &str) -> Vec<String> {
    let mut in_answer = false;
    let mut v = Vec::new();
    for l in out.lines() {
        if l.starts_with(";; ANSWER SECTION") {
            in_answer = true;
        } else if in_answer && (l.trim().is_empty() || l.starts_with(";;")) {
            in_answer = false;
        } else if in_answer {
            v.push(l.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    v
}

/// The median of `v` (upper middle for even lengths); None when empty.
pub fn median(v: &[Duration]) -> Option<Duration> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied()
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_avahi_browse_lines() {
        let out = "+;eth0;IPv4;Odd\\059Name\\032\\034x\\034\\\\y\\.z;_odd._tcp;local\n\
                   =;eth0;IPv4;Odd\\059Name\\032\\034x\\034\\\\y\\.z;_odd._tcp;local;cyt-A.local;\
                   10.209.0.1;1;\"semi=a;b\" \"t=\\001\\195\\169\" \"w=a\\\\b\" \"q=\\\"x\\\"\"\n\
                   +;eth0;IPv4;Test\\032Service;_http._tcp;local\n\
                   =;eth0;IPv4;Test\\032Service;_http._tcp;local;h.local;10.0.0.1;8080;\"a=1\"\n\
                   -;eth0;IPv4;Test\\032Service;_http._tcp;local\n\
                   garbage;;\n=;short\n";
        let v = parse_avahi_browse(out).resolved();
        assert_eq!(v.len(), 1, "{v:?}");
        let r = &v[0];
        assert_eq!(r.name, "Odd;Name \"x\"\\y.z");
        assert_eq!(r.type_, "_odd._tcp");
        assert_eq!(r.host, "cyt-A.local");
        assert_eq!(r.ip(), Some("10.209.0.1".parse().unwrap()));
        assert_eq!(r.port, 1);
        assert_eq!(r.txt, ["semi=a;b", "t=\u{1}é", "w=a\\b", "q=\"x\""]);
        assert!(r.txt_is(&["q=\"x\"", "w=a\\b", "t=\u{1}é", "semi=a;b"]));
    }

    #[test]
    fn parses_zeroconf_stream() {
        let mut st = BrowseState::default();
        apply_zeroconf_line(
            &mut st,
            r#"{"addresses": ["10.0.0.3"], "event": "added", "fullname": "ZC._http._tcp.local.", "host": "zc.local.", "name": "ZC", "port": 9090, "txt": ["x=2"], "type": "_http._tcp.local."}"#,
        );
        let v = st.resolved();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, "ZC");
        assert_eq!(v[0].type_, "_http._tcp");
        assert_eq!(v[0].domain, "local");
        assert_eq!(v[0].host, "zc.local");
        assert_eq!(v[0].port, 9090);
        apply_zeroconf_line(
            &mut st,
            r#"{"event": "removed", "fullname": "ZC._http._tcp.local.", "type": "_http._tcp.local."}"#,
        );
        assert!(st.resolved().is_empty());
    }

    #[test]
    fn dig_output() {
        let out = ";; ANSWER SECTION:\nh.local.\t\t10\tIN\tA\t10.0.0.1\n\n;; Query time: 3 msec\n";
        assert_eq!(dig_answers(out), ["h.local. 10 IN A 10.0.0.1"]);
        assert_eq!(dig_query_ms(out), Some(3));
    }
}
