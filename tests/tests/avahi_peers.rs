//! Self-tests of the real-peer harness (`cloudy_tests::mdns`): Avahi and
//! python-zeroconf see each other in test namespaces. No `cloudy` daemon
//! is involved: these prove the harness (and the machine), not cloudy.
//! Root and `scripts/deps.sh mdns` needed; skip loudly otherwise (fail in
//! CI when the tools are missing).
//!
//! `capture_corpus` (ignored) regenerates the DNS fuzz seeds from real
//! traffic: `CLOUDY_CAPTURE_DIR=DIR cargo test -p cloudy-tests --test
//! avahi_peers -- --ignored capture_corpus` writes every captured mDNS
//! payload to DIR.

use std::time::{Duration, Instant};

use cloudy_tests::mdns::*;
use cloudy_tests::*;

const HTTP: &str = "_http._tcp";

/// A, B (Avahi) and C (python-zeroconf only) on one bridge, IPv4 only.
fn three_hosts(test: &str) -> Option<(Net, Host, Host, Host)> {
    if skip_unless_mdns_peers(test) {
        return None;
    }
    let mut net = Net::new(test)?;
    net.ipv6 = false;
    let lan = net.segment();
    let a = net.host("a", lan);
    let b = net.host("b", lan);
    let c = net.host("c", lan);
    Some((net, a, b, c))
}

/// avahi-publish in A → avahi-browse in B and python-zeroconf in C see it
/// with the right address, port and TXT; killing avahi-publish makes B
/// drop it within 2 s (goodbye). Also: host name resolution both ways,
/// one-shot dig, service type enumeration.
#[test]
fn avahi_to_avahi_and_zeroconf() {
    let Some((net, a, b, c)) = three_hosts("avahi_to_avahi_and_zeroconf") else {
        return;
    };
    let mut av_a = Avahi::start(&net.dir, &a.ns, "eth0", AvahiOpts::default());
    let mut av_b = Avahi::start(&net.dir, &b.ns, "eth0", AvahiOpts::default());
    eprintln!(
        "avahi-daemon startup: A {:?}, B {:?}; RSS A {:?} KiB",
        av_a.startup,
        av_b.startup,
        av_a.rss_kib()
    );

    let mut browser = av_b.browser(HTTP);
    let mut pub_a = av_a.publish("Test Service", HTTP, 8080, &["a=1"]);
    let seen = browser
        .wait_for("Test Service", Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let t_visible = browser
        .history()
        .iter()
        .find(|(_, v)| v.iter().any(|r| r.name == "Test Service"))
        .map(|(t, _)| t.duration_since(pub_a.started));
    eprintln!("avahi-publish → remote avahi-browse: {t_visible:?}");
    let r = &seen[0];
    assert_eq!(seen.len(), 1, "one IPv4 entry: {seen:?}");
    assert_eq!(r.ip(), Some(a.addr.into()), "{r:?}");
    assert_eq!(r.port, 8080);
    assert_eq!(r.type_, HTTP);
    assert_eq!(r.domain, "local");
    assert_eq!(r.interface, "eth0");
    assert_eq!(r.protocol, "IPv4");
    assert_eq!(r.host, format!("{}.local", av_a.host_name));
    assert!(r.txt_is(&["a=1"]), "{r:?}");

    // The one-shot form agrees.
    let once = av_b.browse(HTTP);
    assert!(
        once.iter()
            .any(|x| x.name == "Test Service" && x.port == 8080),
        "{once:?}"
    );

    // python-zeroconf in C (no Avahi there) resolves it too.
    let c_addr = c.addr.to_string();
    let zc = zeroconf_browse(
        &c.ns,
        &c_addr,
        HTTP,
        Duration::from_secs(5),
        Some("Test Service"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let z = zc
        .iter()
        .find(|x| x.name == "Test Service")
        .unwrap_or_else(|| panic!("zeroconf did not resolve it: {zc:?}"));
    assert_eq!(z.ip(), Some(a.addr.into()));
    assert_eq!(z.port, 8080);
    assert_eq!(z.host, r.host);
    assert!(z.txt_is(&["a=1"]), "{z:?}");

    // Host names: Avahi and zeroconf resolve A's host; dig asks A directly.
    let host_a = format!("{}.local", av_a.host_name);
    assert_eq!(av_b.resolve_host(&host_a, false), Some(a.addr.into()));
    assert_eq!(
        zeroconf_resolve(&c.ns, &c_addr, &host_a, Duration::from_secs(3)),
        vec![std::net::IpAddr::from(a.addr)]
    );
    let (run, took) = dig(&c.ns, a.addr.into(), &host_a, "A");
    assert!(run.ok(), "{run}");
    assert_eq!(
        dig_answers(&run.stdout),
        [format!("{host_a}. 10 IN A {}", a.addr)],
        "legacy unicast answers carry TTL ≤ 10 (RFC 6762 §6.7)"
    );
    eprintln!(
        "dig -p 5353 @A A: {took:?} wall, {:?} ms by dig",
        dig_query_ms(&run.stdout)
    );
    let types = zeroconf_types(&c.ns, &c_addr, Duration::from_secs(2));
    assert!(types.iter().any(|t| t == "_http._tcp.local."), "{types:?}");

    // Kill avahi-publish: avahi-daemon in A withdraws it with a goodbye and
    // B drops it about 1 s later (Avahi keeps a TTL-0 record for 1 s).
    let t0 = Instant::now();
    pub_a.kill();
    let gone = browser
        .wait_gone("Test Service", Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("B still has it 2 s after the goodbye: {e}"));
    eprintln!(
        "avahi-publish killed → gone in B after {:?}",
        gone.saturating_duration_since(t0)
    );
}

/// python-zeroconf in C publishes → Avahi in B sees it with the right
/// address, port and TXT; SIGTERM (zeroconf's goodbye) → B drops it
/// within 2 s. Then Avahi stopped in A sends goodbyes for its services.
#[test]
fn zeroconf_to_avahi_and_daemon_stop() {
    let Some((net, a, b, c)) = three_hosts("zeroconf_to_avahi_and_daemon_stop") else {
        return;
    };
    let mut av_a = Avahi::start(&net.dir, &a.ns, "eth0", AvahiOpts::default());
    let mut av_b = Avahi::start(&net.dir, &b.ns, "eth0", AvahiOpts::default());
    let mut browser = av_b.browser(HTTP);

    let c_addr = c.addr.to_string();
    let mut zp = zeroconf_publish(
        &net.dir,
        &c.ns,
        &c_addr,
        &ZcService {
            name: "ZC Service",
            type_: HTTP,
            port: 9090,
            host: "zc-c",
            txt: &["x=2", "flag"],
        },
    );
    zp.wait_line(Duration::from_secs(10), |l| l.contains("\"registered\""))
        .unwrap_or_else(|e| panic!("{e}"));
    let seen = browser
        .wait_for("ZC Service", Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = &seen[0];
    assert_eq!(r.ip(), Some(c.addr.into()), "{r:?}");
    assert_eq!(r.port, 9090);
    assert_eq!(r.host, "zc-c.local");
    assert!(r.txt_is(&["x=2", "flag"]), "{r:?}");
    assert_eq!(av_b.resolve_host("zc-c.local", false), Some(c.addr.into()));

    let t0 = Instant::now();
    assert!(
        zp.stop(Duration::from_secs(5)),
        "zeroconf did not exit on SIGTERM"
    );
    assert!(
        zp.lines().iter().any(|l| l.text.contains("unregistered")),
        "{:?}",
        zp.lines()
    );
    browser
        .wait_gone("ZC Service", Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("B still has it 2 s after zeroconf's goodbye: {e}"));
    eprintln!("zeroconf unregistered → gone in B after {:?}", t0.elapsed());

    // Avahi in A publishes, then its daemon stops: goodbyes for all.
    let _p = av_a.publish("Stop Me", HTTP, 81, &[]);
    browser
        .wait_for("Stop Me", Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    assert!(av_a.stop(), "avahi-daemon did not exit on SIGTERM");
    browser
        .wait_gone("Stop Me", Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("B still has it 2 s after avahi-daemon stopped: {e}"));
    eprintln!("avahi-daemon stopped → gone in B after {:?}", t0.elapsed());

    // A host name conflict: Avahi in C claims B's name, loses, renames
    // itself NAME-2; both names then resolve to their own addresses.
    let clash = AvahiOpts {
        host_name: Some(av_b.host_name.clone()),
        ..AvahiOpts::default()
    };
    let av_c = Avahi::start(&net.dir, &c.ns, "eth0", clash);
    let renamed = av_c.host_name_now();
    assert_eq!(
        renamed,
        format!("{}-2", av_b.host_name),
        "{}",
        av_c.log_text()
    );
    assert_eq!(
        av_b.resolve_host(&format!("{renamed}.local"), false),
        Some(c.addr.into())
    );
    assert_eq!(
        av_c.resolve_host(&format!("{}.local", av_b.host_name), false),
        Some(b.addr.into())
    );
}

/// Not a test: regenerate the DNS fuzz seeds from real traffic. Captures
/// every mDNS payload that reaches a silent listener namespace while
/// Avahi and python-zeroconf start, probe, announce, browse, resolve,
/// enumerate types and say goodbye; writes them to `$CLOUDY_CAPTURE_DIR`
/// as `NNN_<source>.bin` (pick the seeds from there).
#[test]
#[ignore]
fn capture_corpus() {
    let Some(out) = std::env::var_os("CLOUDY_CAPTURE_DIR") else {
        skip("capture_corpus", "set CLOUDY_CAPTURE_DIR");
        return;
    };
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(&out).expect("mkdir capture dir");
    let Some((mut net, a, b, c)) = three_hosts("capture_corpus") else {
        return;
    };
    let lan = Segment { index: 0 };
    let listener = net.host("l", lan);
    let cap = capture_udp(&listener.ns, "eth0", 5353, Duration::from_secs(25), 500);
    let c_addr = c.addr.to_string();

    let mut av_a = Avahi::start(&net.dir, &a.ns, "eth0", AvahiOpts::default());
    let mut av_b = Avahi::start(&net.dir, &b.ns, "eth0", AvahiOpts::default());
    let mut p = av_a.publish("Test Service", HTTP, 8080, &["a=1", "path=/index.html"]);
    let mut browser = av_b.browser(HTTP);
    browser
        .wait_for("Test Service", Duration::from_secs(5))
        .expect("avahi sees avahi");
    let mut zp = zeroconf_publish(
        &net.dir,
        &c.ns,
        &c_addr,
        &ZcService {
            name: "ZC Service",
            type_: "_ipp._tcp",
            port: 631,
            host: "zc-c",
            txt: &["txtvers=1", "rp=printers/x"],
        },
    );
    zp.wait_line(Duration::from_secs(10), |l| l.contains("\"registered\""))
        .expect("zeroconf registered");
    let _ = zeroconf_browse(
        &c.ns,
        &c_addr,
        HTTP,
        Duration::from_secs(3),
        Some("Test Service"),
    );
    let _ = zeroconf_types(&c.ns, &c_addr, Duration::from_secs(2));
    let _ = zeroconf_resolve(
        &c.ns,
        &c_addr,
        &format!("{}.local", av_a.host_name),
        Duration::from_secs(2),
    );
    let _ = av_b.browse("_ipp._tcp");
    let _ = av_b.resolve_host("zc-c.local", false);
    let _ = av_b.browse("_services._dns-sd._udp");
    zp.stop(Duration::from_secs(5));
    p.kill();
    std::thread::sleep(Duration::from_secs(2));
    av_a.stop();
    let pkts = cap.join().expect("capture thread");
    for (i, pk) in pkts.iter().enumerate() {
        let who = if pk.src == a.addr || pk.src == b.addr {
            "avahi"
        } else if pk.src == c.addr {
            "zeroconf"
        } else {
            "other"
        };
        let f = out.join(format!("{i:03}_{who}_{}.bin", pk.src));
        std::fs::write(&f, &pk.payload).expect("write capture");
    }
    eprintln!("{} payloads written to {}", pkts.len(), out.display());
}
