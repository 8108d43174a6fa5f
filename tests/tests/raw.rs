//! Raw mode (`option mode 'raw'`: an AF_PACKET socket on an existing
//! interface) between two sites, with LAN hosts left at their default
//! offloads (TSO/GSO on, as any Linux host has them) (root; skip otherwise).
//!
//! Topology: a WAN segment with the boxes gw1 and gw2 (cloudy, raw mode on
//! eth1, no overlay addresses); eth1 of gw1 is on lan1, eth1 of gw2 on lan2;
//! pc1 (192.168.77.10) on lan1 and pc2 (192.168.77.20) on lan2 share one
//! IPv4 /24, which the overlay joins into one Ethernet segment.
//!
//! Correctness only, no timed throughput assertion (speed is `make bench`):
//! a fixed amount of TCP data is moved completely within a generous
//! timeout, retransmits stay under 1 % of the segments, full-size frames
//! with DF cross, broadcasts cross, and the boxes' drop counters stay 0.
//! Every wait is bounded; the [`Net`] removes everything on drop.
//! Run: `cargo test -p cloudy-tests --test raw -- --test-threads=1`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cloudy_tests::*;

/// Time for the two boxes to see each other up.
const MESH: Duration = Duration::from_secs(20);
/// Time for the first ping across to get through.
const PING: Duration = Duration::from_secs(10);
/// Generous bound for one fixed-size TCP transfer.
const TRANSFER: Duration = Duration::from_secs(60);
/// TCP payload of a full-size segment on a 1500-byte Ethernet with
/// timestamps: what iperf3's byte count is divided by to count segments.
const SEGMENT: u64 = 1448;
/// Retransmits allowed, in percent of the segments sent.
const MAX_RETRANS_PCT: f64 = 1.0;
/// iperf3's port in the server's namespace.
const IPERF_PORT: &str = "5201";
/// Port of the byte-checked transfer.
const CHECKED_PORT: u16 = 5202;

const PC1: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 10);
const PC2: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 20);
/// gw1's own address on `brlan` in the veth-leg recipe.
const GW1_OWN: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
const BROADCAST: &str = "192.168.77.255";

/// Write straight to fd 2: libtest captures `eprintln!` of passing tests,
/// and skips and measurements must be seen in `make test` logs too.
fn loud(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// True (after [`skip`]) when iperf3 is not installed.
fn skip_without_iperf3(test: &str) -> bool {
    let have = Command::new("iperf3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        skip(test, "iperf3 not installed (run scripts/deps.sh test)");
    }
    !have
}

/// The failed checks of one test: every check runs and is reported, the
/// test fails at the end with all of them.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        if ok {
            loud(&format!("  ok: {what}"));
        } else {
            loud(&format!("  FAIL: {what}"));
            self.0.push(what);
        }
    }

    fn result<T>(&mut self, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.check(false, e);
                None
            }
        }
    }

    fn finish(self, test: &str) {
        assert!(
            self.0.is_empty(),
            "{test}: {} check(s) failed:\n  - {}",
            self.0.len(),
            self.0.join("\n  - ")
        );
    }
}

/// The two sites: the boxes and the namespaces of the LAN hosts.
struct Sites {
    gw1: Node,
    gw2: Node,
    pc1: String,
    pc2: String,
    /// The segment of pc1 and gw1's eth1.
    lan1: Segment,
}

/// How gw1 joins its LAN.
#[derive(Clone, Copy, PartialEq)]
enum Gw1Leg {
    /// Raw mode directly on eth1.
    Direct,
    /// The recipe for reaching the box itself: a bridge `brlan` in gw1
    /// with eth1 and `clbr` as ports and gw1's own address, and raw mode
    /// on `clraw`, the other end of the veth pair `clraw`/`clbr`.
    VethBridge,
}

/// Build both sites, start both boxes and wait until pc1 and pc2 ping each
/// other through the overlay.
fn two_sites(net: &mut Net, leg: Gw1Leg) -> Sites {
    let wan = net.segment();
    let lan1 = net.segment();
    let lan2 = net.segment();
    let mut boxes = Vec::new();
    for (name, lan) in [("gw1", lan1), ("gw2", lan2)] {
        let h = net.host(name, wan);
        net.link(&h.ns, lan, "eth1", false);
        let mut n = net.node_on(name, h);
        n.raw_device = Some("eth1".into());
        n.overlay4 = None;
        n.overlay6 = None;
        boxes.push(n);
    }
    let gw2 = boxes.pop().expect("gw2");
    let mut gw1 = boxes.pop().expect("gw1");
    if leg == Gw1Leg::VethBridge {
        let ns = gw1.ns.clone();
        let ip = |args: &[&str]| {
            let mut v = vec!["ip", "-n", &ns];
            v.extend_from_slice(args);
            must(&v);
        };
        ip(&["link", "add", "brlan", "type", "bridge"]);
        ip(&["link", "set", "eth1", "master", "brlan"]);
        ip(&[
            "link", "add", "clraw", "type", "veth", "peer", "name", "clbr",
        ]);
        ip(&["link", "set", "clbr", "master", "brlan"]);
        for dev in ["clbr", "clraw", "brlan"] {
            ip(&["link", "set", dev, "up"]);
        }
        ip(&["addr", "add", &format!("{GW1_OWN}/24"), "dev", "brlan"]);
        gw1.raw_device = Some("clraw".into());
    }
    net.configure(&gw1, &[(&gw2, true)]);
    net.configure(&gw2, &[(&gw1, true)]);
    let pc1 = net.namespace("pc1");
    let pc2 = net.namespace("pc2");
    net.link(&pc1, lan1, "eth0", false);
    net.link(&pc2, lan2, "eth0", false);
    must(&[
        "ip",
        "-n",
        &pc1,
        "addr",
        "add",
        "192.168.77.10/24",
        "dev",
        "eth0",
    ]);
    must(&[
        "ip",
        "-n",
        &pc2,
        "addr",
        "add",
        "192.168.77.20/24",
        "dev",
        "eth0",
    ]);
    net.start(&gw1);
    net.start(&gw2);
    net.wait_mesh(&[&gw1, &gw2], MESH);
    net.wait_ping(&pc1, PC2, PING);
    net.wait_ping(&pc2, PC1, PING);
    Sites {
        gw1,
        gw2,
        pc1,
        pc2,
        lan1,
    }
}

/// A background process, killed and reaped on drop.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one iperf3 run reported.
struct Iperf {
    sent: u64,
    received: u64,
    retransmits: u64,
    mbps: f64,
}

impl Iperf {
    fn retrans_pct(&self) -> f64 {
        let segments = (self.sent as f64 / SEGMENT as f64).max(1.0);
        self.retransmits as f64 * 100.0 / segments
    }
}

/// One iperf3 TCP run of `mib` MiB: server in `server_ns` at `dst`, client
/// in `client_ns`; `reverse` (-R) makes the server the sender.
struct IperfRun<'a> {
    label: &'a str,
    server_ns: &'a str,
    client_ns: &'a str,
    dst: Ipv4Addr,
    mib: u64,
    reverse: bool,
}

/// Run `run`; Err when it does not complete within [`TRANSFER`] or
/// reports an error.
fn iperf(net: &Net, run: &IperfRun) -> Result<Iperf, String> {
    let IperfRun {
        label,
        server_ns,
        client_ns,
        dst,
        mib,
        reverse,
    } = *run;
    let what = format!(
        "{label}: iperf3 -n {mib}M{}",
        if reverse { " -R" } else { "" }
    );
    let log = net.dir.join(format!("iperf3-server-{server_ns}.log"));
    let server_log = std::fs::File::create(&log).map_err(|e| format!("create {log:?}: {e}"))?;
    let server_err = server_log.try_clone().map_err(|e| e.to_string())?;
    let mut server = Bg(Command::new("ip")
        .args([
            "netns", "exec", server_ns, "iperf3", "-s", "-1", "-p", IPERF_PORT,
        ])
        .stdin(Stdio::null())
        .stdout(server_log)
        .stderr(server_err)
        .spawn()
        .map_err(|e| format!("spawn iperf3 server: {e}"))?);
    wait_until(
        "iperf3 server listening",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            if let Ok(Some(s)) = server.0.try_wait() {
                return Some(Err(format!("iperf3 server exited: {s}")));
            }
            let r = sh(&[
                "ip",
                "netns",
                "exec",
                server_ns,
                "ss",
                "-Hltn",
                &format!("sport = :{IPERF_PORT}"),
            ]);
            (r.ok() && !r.stdout.trim().is_empty()).then_some(Ok(()))
        },
    )
    .and_then(|r| r)
    .map_err(|e| {
        format!(
            "{what}: {e}; server log: {}",
            tail(&log, 3).replace('\n', " | ")
        )
    })?;

    let amount = format!("{mib}M");
    let dst = dst.to_string();
    let mut args = vec![
        "netns",
        "exec",
        client_ns,
        "iperf3",
        "-c",
        &dst,
        "-p",
        IPERF_PORT,
        "-n",
        &amount,
        "-J",
        "--connect-timeout",
        "5000",
    ];
    if reverse {
        args.push("-R");
    }
    let t0 = Instant::now();
    let r = run_timeout(Command::new("ip").args(&args), TRANSFER);
    if r.status.is_none() {
        return Err(format!(
            "{what}: did not complete within {TRANSFER:?}; server log: {}",
            tail(&log, 3).replace('\n', " | ")
        ));
    }
    // The server (-1) exits after its one test.
    let _ = wait_child(&mut server.0, Duration::from_secs(5));
    let j: Value =
        serde_json::from_str(&r.stdout).map_err(|e| format!("{what}: no JSON ({e}): {r}"))?;
    if let Some(e) = j.get("error") {
        return Err(format!(
            "{what}: iperf3 error {e} (after {:?})",
            t0.elapsed()
        ));
    }
    if !r.ok() {
        return Err(format!("{what}: iperf3 failed: {r}"));
    }
    let end = &j["end"];
    let num = |v: &Value, name: &str| {
        v.as_f64()
            .ok_or_else(|| format!("{what}: no {name} in iperf3's JSON"))
    };
    Ok(Iperf {
        sent: num(&end["sum_sent"]["bytes"], "end.sum_sent.bytes")? as u64,
        received: num(&end["sum_received"]["bytes"], "end.sum_received.bytes")? as u64,
        retransmits: num(&end["sum_sent"]["retransmits"], "end.sum_sent.retransmits")? as u64,
        mbps: num(
            &end["sum_received"]["bits_per_second"],
            "end.sum_received.bits_per_second",
        )? / 1e6,
    })
}

/// Run iperf3 and check it: completed, the sender pushed all the MiB,
/// retransmits under [`MAX_RETRANS_PCT`] (when `bound_retrans`).
fn iperf_checked(c: &mut Checks, net: &Net, run: &IperfRun, bound_retrans: bool) {
    let Some(r) = c.result(iperf(net, run)) else {
        return;
    };
    let IperfRun { label, mib, .. } = *run;
    let want = mib << 20;
    // Measurements: informational only, never asserted (see make bench).
    loud(&format!(
        "  {label}: {:.0} Mbit/s, {} retransmits ({:.3} % of {} segments), \
         sent {} B, receiver counted {} B",
        r.mbps,
        r.retransmits,
        r.retrans_pct(),
        r.sent / SEGMENT,
        r.sent,
        r.received
    ));
    c.check(
        r.sent >= want,
        format!("{label}: the sender sent {} of {want} bytes", r.sent),
    );
    // iperf3's receiver stops counting at the end-of-test message, so its
    // count may miss what was still in flight; the byte-checked transfer
    // below is what proves that everything arrives.
    c.check(
        r.received > 0,
        format!("{label}: the receiver counted {} bytes", r.received),
    );
    if bound_retrans {
        c.check(
            r.retrans_pct() < MAX_RETRANS_PCT,
            format!(
                "{label}: {} retransmits = {:.3} % of {} segments (bound {MAX_RETRANS_PCT} %)",
                r.retransmits,
                r.retrans_pct(),
                r.sent / SEGMENT
            ),
        );
    }
}

/// splitmix64: the data pattern of the byte-checked transfer.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The pattern's bytes at stream offsets `pos..pos + buf.len()`.
fn fill_pattern(pos: u64, buf: &mut [u8]) {
    let mut p = pos;
    let mut i = 0;
    while i < buf.len() {
        let word = splitmix(p / 8).to_le_bytes();
        let off = (p % 8) as usize;
        let n = (8 - off).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[off..off + n]);
        i += n;
        p += n as u64;
    }
}

/// Move exactly `len` bytes of a known pattern by TCP from `from_ns` to a
/// listener in `to_ns` at `to`; the receiver checks every byte and the
/// count at EOF. Returns the time taken.
fn checked_transfer(
    from_ns: &str,
    to_ns: &str,
    to: Ipv4Addr,
    len: u64,
) -> Result<Duration, String> {
    let what = format!("checked transfer of {len} bytes to {to}");
    let listener = in_netns(to_ns, || {
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, CHECKED_PORT))
    })
    .map_err(|e| format!("{what}: bind: {e}"))?;
    let t0 = Instant::now();
    let deadline = t0 + TRANSFER;
    let mut tx = in_netns(from_ns, || {
        TcpStream::connect_timeout(
            &SocketAddr::from((to, CHECKED_PORT)),
            Duration::from_secs(10),
        )
    })
    .map_err(|e| format!("{what}: connect: {e}"))?;
    // The handshake is done, so the connection waits in the backlog.
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{what}: {e}"))?;
    let mut rx = wait_until(
        "accept",
        Duration::from_secs(5),
        Duration::from_millis(10),
        || listener.accept().ok().map(|(s, _)| s),
    )
    .map_err(|e| format!("{what}: {e}"))?;
    let step = Some(Duration::from_secs(10));
    for r in [
        rx.set_nonblocking(false),
        rx.set_read_timeout(step),
        tx.set_write_timeout(step),
    ] {
        r.map_err(|e| format!("{what}: {e}"))?;
    }
    let writer = std::thread::spawn(move || -> Result<(), String> {
        let mut buf = vec![0u8; 64 << 10];
        let mut pos = 0u64;
        while pos < len {
            if Instant::now() > deadline {
                return Err(format!("sender: deadline with {pos} bytes written"));
            }
            let n = (len - pos).min(buf.len() as u64) as usize;
            fill_pattern(pos, &mut buf[..n]);
            tx.write_all(&buf[..n])
                .map_err(|e| format!("sender: write at {pos}: {e}"))?;
            pos += n as u64;
        }
        tx.shutdown(Shutdown::Write)
            .map_err(|e| format!("sender: shutdown: {e}"))
    });
    let mut buf = vec![0u8; 64 << 10];
    let mut want = vec![0u8; 64 << 10];
    let mut got = 0u64;
    let read = loop {
        if Instant::now() > deadline {
            break Err(format!("deadline {TRANSFER:?} with {got} bytes received"));
        }
        match rx.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                fill_pattern(got, &mut want[..n]);
                if buf[..n] != want[..n] {
                    let i = (0..n).find(|&i| buf[i] != want[i]).unwrap_or(0);
                    break Err(format!("wrong data at stream offset {}", got + i as u64));
                }
                got += n as u64;
                if got > len {
                    break Err(format!("{got} bytes received, more than sent"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(format!("read after {got} bytes: {e}")),
        }
    };
    // On a receive error the sender's writes time out; it ends in ≤ 10 s.
    drop(rx);
    let sent = writer
        .join()
        .unwrap_or_else(|_| Err("sender thread panicked".into()));
    read.map_err(|e| format!("{what}: {e}"))?;
    sent.map_err(|e| format!("{what}: {e}"))?;
    if got != len {
        return Err(format!("{what}: {got} bytes arrived"));
    }
    Ok(t0.elapsed())
}

fn checked_transfer_check(
    c: &mut Checks,
    label: &str,
    from_ns: &str,
    to_ns: &str,
    to: Ipv4Addr,
    mib: u64,
) {
    let r = checked_transfer(from_ns, to_ns, to, mib << 20).map_err(|e| format!("{label}: {e}"));
    if let Some(t) = c.result(r) {
        c.check(
            true,
            format!("{label}: {mib} MiB arrived complete and intact in {t:.1?}"),
        );
    }
}

/// `ping ARGS... DST` from `ns` (bounded); (sent, received) and the output.
fn ping(ns: &str, args: &[&str], dst: &str) -> (u32, u32, String) {
    let r = run_timeout(
        Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-n"])
            .args(args)
            .arg(dst),
        Duration::from_secs(30),
    );
    let (sent, recv) = parse_ping(&r.stdout).unwrap_or((0, 0));
    (sent, recv, format!("{r}"))
}

/// The command output to add to a check's message, when it failed.
fn detail(ok: bool, out: &str) -> String {
    if ok {
        String::new()
    } else {
        format!("; {out}")
    }
}

/// eth0's IPv6 link-local address in `ns`, once DAD is done (bounded).
fn link_local(ns: &str) -> Result<String, String> {
    wait_until(
        &format!("a non-tentative link-local address on eth0 in {ns}"),
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let out = sh(&[
                "ip", "-n", ns, "-6", "addr", "show", "dev", "eth0", "scope", "link",
            ])
            .stdout;
            out.lines().find_map(|l| {
                let l = l.trim();
                let addr = l.strip_prefix("inet6 ")?.split('/').next()?;
                (!l.contains("tentative")).then(|| addr.to_string())
            })
        },
    )
}

/// The counters (d) checks on both boxes: (path in `cloudy --json status`,
/// test, what is wanted). Nothing dropped for its size, no super-frame
/// left unsegmented, and SYNs clamped to the overlay MTU (connections were
/// opened from both sites, so each box bridged SYNs both ways).
type CounterCheck = (&'static [&'static str], fn(u64) -> bool, &'static str);
const COUNTERS: [CounterCheck; 3] = [
    (&["stats", "dropped_oversize"], |v| v == 0, "0"),
    (&["device", "unsegmentable"], |v| v == 0, "0"),
    (&["device", "mss_clamped"], |v| v >= 1, ">= 1"),
];

/// A counter at `path` (e.g. `["device", "unsegmentable"]`) in a status.
fn counter(status: &Value, path: &[&str]) -> Result<u64, String> {
    let mut v = status;
    for k in path {
        v = v
            .get(k)
            .ok_or_else(|| format!("`{}` missing from `cloudy --json status`", path.join(".")))?;
    }
    v.as_u64()
        .ok_or_else(|| format!("`{}` is not a counter: {v}", path.join(".")))
}

/// (a)–(d): TCP at full size both ways with default host offloads,
/// full-size frames with DF (IPv4 and IPv6), broadcast, honest counters.
#[test]
fn a_raw_mode_carries_tcp_and_full_frames() {
    const TEST: &str = "a_raw_mode_carries_tcp_and_full_frames";
    let Some(mut net) = Net::new(TEST) else {
        return;
    };
    if skip_without_iperf3(TEST) {
        return;
    }
    let s = two_sites(&mut net, Gw1Leg::Direct);
    let mut c = Checks::default();

    // (a) TCP, a fixed amount each way.
    loud(&format!("{TEST}: (a) TCP pc1 <-> pc2"));
    for reverse in [false, true] {
        let run = IperfRun {
            label: if reverse {
                "iperf3 pc2 -> pc1 (-R)"
            } else {
                "iperf3 pc1 -> pc2"
            },
            server_ns: &s.pc2,
            client_ns: &s.pc1,
            dst: PC2,
            mib: 100,
            reverse,
        };
        iperf_checked(&mut c, &net, &run, true);
    }
    // Connections opened from both sites: SYNs enter the overlay at both boxes.
    checked_transfer_check(&mut c, "TCP pc1 -> pc2", &s.pc1, &s.pc2, PC2, 32);
    checked_transfer_check(&mut c, "TCP pc2 -> pc1", &s.pc2, &s.pc1, PC1, 32);

    // (b) plain pings keep crossing, then full-size frames, don't fragment.
    loud(&format!("{TEST}: (b) pings, full-size frames with DF"));
    let (sent, recv, out) = ping(
        &s.pc1,
        &["-q", "-c", "10", "-i", "0.1", "-W", "1"],
        "192.168.77.20",
    );
    c.check(
        recv >= 9,
        format!(
            "ping pc1 -> pc2: {recv}/{sent} replies (want >= 9){}",
            detail(recv >= 9, &out)
        ),
    );
    let (sent, recv, out) = ping(
        &s.pc1,
        &["-M", "do", "-s", "1472", "-c", "5", "-i", "0.2", "-W", "2"],
        &PC2.to_string(),
    );
    c.check(
        recv >= 4,
        format!(
            "ping -M do -s 1472 pc1 -> pc2: {recv}/{sent} replies (want >= 4){}",
            detail(recv >= 4, &out)
        ),
    );
    match (link_local(&s.pc1), link_local(&s.pc2)) {
        (Ok(_), Ok(ll2)) => {
            let (sent, recv, out) = ping(
                &s.pc1,
                &[
                    "-6", "-M", "do", "-s", "1452", "-c", "5", "-i", "0.2", "-W", "2",
                ],
                &format!("{ll2}%eth0"),
            );
            c.check(
                recv >= 4,
                format!(
                    "ping -6 -M do -s 1452 pc1 -> {ll2}%eth0: {recv}/{sent} replies (want >= 4){}",
                    detail(recv >= 4, &out)
                ),
            );
        }
        (Err(e), _) | (_, Err(e)) => c.check(false, e),
    }

    // (c) a broadcast crosses the overlay, and the reply comes back.
    loud(&format!("{TEST}: (c) broadcast"));
    must(&[
        "ip",
        "netns",
        "exec",
        &s.pc2,
        "sysctl",
        "-qw",
        "net.ipv4.icmp_echo_ignore_broadcasts=0",
    ]);
    let (_, _, out) = ping(
        &s.pc1,
        &["-b", "-c", "3", "-i", "0.5", "-W", "2"],
        BROADCAST,
    );
    let answered = out.contains(&format!("from {PC2}"));
    c.check(
        answered,
        format!(
            "ping -b {BROADCAST} from pc1 answered by {PC2}{}",
            detail(answered, &out)
        ),
    );

    // (d) honest counters: nothing dropped for size, nothing left
    // unsegmented, and the SYNs were clamped.
    loud(&format!("{TEST}: (d) counters"));
    for gw in [&s.gw1, &s.gw2] {
        let Some(st) = c.result(net.status(gw)) else {
            continue;
        };
        loud(&format!(
            "  {}: stats {} device {}",
            gw.name,
            st["stats"],
            st.get("device").unwrap_or(&Value::Null)
        ));
        let n = &gw.name;
        for (path, ok, want) in COUNTERS {
            match counter(&st, path) {
                Ok(v) => c.check(
                    ok(v),
                    format!("{n}: {} = {v} (want {want})", path.join(".")),
                ),
                Err(e) => c.check(false, format!("{n}: {e}")),
            }
        }
    }
    c.finish(TEST);
}

/// The documented recipe for reaching the raw-mode box itself: gw1's LAN
/// port and one end of a veth pair on a bridge that holds gw1's own
/// address, raw mode on the veth's other end. The far site reaches both
/// gw1 and pc1 behind it, and TCP to and from gw1's own stack completes.
#[test]
fn b_own_address_through_veth_leg() {
    const TEST: &str = "b_own_address_through_veth_leg";
    let Some(mut net) = Net::new(TEST) else {
        return;
    };
    if skip_without_iperf3(TEST) {
        return;
    }
    let s = two_sites(&mut net, Gw1Leg::VethBridge);
    let mut c = Checks::default();
    net.wait_ping(&s.pc2, GW1_OWN, PING);
    for (name, dst) in [("gw1's own address", GW1_OWN), ("pc1", PC1)] {
        let (sent, recv) = net.ping_count(&s.pc2, &dst.to_string(), 5, "0.2");
        c.check(
            recv >= 4,
            format!("ping pc2 -> {name} {dst}: {recv}/{sent} replies (want >= 4)"),
        );
    }
    let run = IperfRun {
        label: "iperf3 pc2 -> gw1",
        server_ns: &s.gw1.ns,
        client_ns: &s.pc2,
        dst: GW1_OWN,
        mib: 20,
        reverse: false,
    };
    iperf_checked(&mut c, &net, &run, false);
    // gw1's own stack sends large (TSO) segments into the veth leg.
    checked_transfer_check(&mut c, "TCP gw1 -> pc2", &s.gw1.ns, &s.pc2, PC2, 16);
    checked_transfer_check(&mut c, "TCP pc2 -> gw1", &s.pc2, &s.gw1.ns, GW1_OWN, 16);
    if let Ok(st) = net.status(&s.gw1) {
        loud(&format!(
            "  gw1: stats {} device {}",
            st["stats"],
            st.get("device").unwrap_or(&Value::Null)
        ));
    }
    c.finish(TEST);
}

/// A hostile LAN host: pc1's LAN is raised to a 9000-byte MTU and pc1
/// sends jumbo frames (8042 bytes, DF) towards pc2. No datagram can carry
/// them: gw1 drops and counts each as oversize, delivers none, and goes on
/// bridging ordinary traffic; its console still answers.
#[test]
fn c_jumbo_frames_from_a_lan_host() {
    const TEST: &str = "c_jumbo_frames_from_a_lan_host";
    let Some(mut net) = Net::new(TEST) else {
        return;
    };
    let s = two_sites(&mut net, Gw1Leg::Direct);
    let mut c = Checks::default();
    // Every link of lan1: pc1's eth0, the bridge and its ports, gw1's eth1.
    let bridge_ns = format!("{}br", net.prefix);
    let bridge = format!("br{}", s.lan1.index);
    let ports = must(&[
        "ip", "-n", &bridge_ns, "-o", "link", "show", "master", &bridge,
    ]);
    for port in ports
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
    {
        must(&["ip", "-n", &bridge_ns, "link", "set", port, "mtu", "9000"]);
    }
    must(&[
        "ip", "-n", &bridge_ns, "link", "set", &bridge, "mtu", "9000",
    ]);
    must(&["ip", "-n", &s.pc1, "link", "set", "eth0", "mtu", "9000"]);
    must(&["ip", "-n", &s.gw1.ns, "link", "set", "eth1", "mtu", "9000"]);
    let before = net.stat(&s.gw1, "dropped_oversize");
    let frames_before = net.stat(&s.gw2, "rx_frames");
    let (sent, recv, out) = ping(
        &s.pc1,
        &[
            "-q", "-M", "do", "-s", "8000", "-c", "20", "-i", "0.05", "-W", "1",
        ],
        "192.168.77.20",
    );
    c.check(
        sent == 20 && recv == 0,
        format!(
            "jumbo pings pc1 -> pc2: {recv}/{sent} replies (want 0/20){}",
            detail(recv == 0, &out)
        ),
    );
    let dropped = net.stat(&s.gw1, "dropped_oversize") - before;
    c.check(
        dropped >= 20,
        format!("gw1 counted {dropped} oversize frames (want >= 20)"),
    );
    // gw2 may receive ARP and the like meanwhile, never the jumbo frames.
    let frames = net.stat(&s.gw2, "rx_frames") - frames_before;
    c.check(
        frames < 20,
        format!("gw2 received {frames} frames while 20 jumbo frames were sent (want < 20)"),
    );
    let (sent, recv, out) = ping(
        &s.pc1,
        &["-q", "-c", "5", "-i", "0.2", "-W", "1"],
        "192.168.77.20",
    );
    c.check(
        recv >= 4,
        format!(
            "ordinary pings after the jumbo frames: {recv}/{sent} (want >= 4){}",
            detail(recv >= 4, &out)
        ),
    );
    c.check(net.status(&s.gw1).is_ok(), "gw1's console answers");
    c.finish(TEST);
}
