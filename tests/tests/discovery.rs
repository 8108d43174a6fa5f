//! Interop of cloudy's service discovery (issue 4, item 6) with real
//! peers: avahi-daemon + avahi-utils and python-zeroconf, in namespaces
//! each test creates and removes (`cloudy_tests::Net`, whose drop kills
//! every process left in them). Root and `scripts/deps.sh mdns` needed;
//! skip loudly otherwise (fail in CI when the tools are missing).
//!
//! Topology of (a)–(d): one LAN segment (IPv4 only, quiet) holding the
//! cloudy box `box1` (eth0 10.201.0.1, `list mdns_interface 'eth0'`; its
//! overlay TAP exists with no peers) and plain hosts running Avahi or
//! python-zeroconf. cloudy's host name there is `box1.CLOUD.local`, CLOUD
//! being the test's cloud name.
//!
//! - (a) services cloudy publishes (`cloudy publish` and a UCI `config
//!   service`) are resolved by `avahi-browse -rp[t]` and by
//!   python-zeroconf with cloudy's LAN address, port and TXT;
//! - (b) a service `avahi-publish` announces is listed by `cloudy search
//!   --all` (its host is not under CLOUD.local) with the right address and
//!   port, and hidden without `--all`;
//! - (c) goodbyes: after `cloudy unpublish` and after SIGTERM of the
//!   daemon, Avahi drops the services within 2 s;
//! - (d) conflicts with Avahi, host and service. Avahi's own host name is
//!   one label (`NAME.local`) while cloudy's has two (`NODE.CLOUD.local`),
//!   so two daemons never claim the same host name by configuration; a
//!   real host conflict is made by having Avahi publish an address record
//!   for `box1.CLOUD.local` (`avahi-publish -a`, a unique record Avahi
//!   probes and defends) before cloudy starts: cloudy must lose the probe
//!   and become `box1-2.CLOUD.local`. The service case: Avahi holds
//!   "Printer" `_ipp._tcp`, cloudy then publishes "Printer" and must end
//!   as "Printer (2)". Every name stays resolvable to its owner;
//! - (e) across the overlay only: three boxes whose mDNS runs on the TAP
//!   alone (no `mdns_interface`) see each other's services in `cloudy
//!   search` with RTT and hops; box2 and box3 cannot reach each other on
//!   the underlay (nftables), so they are relayed by the hub: hops 2;
//! - (f) a hostile LAN host (issue 9, item 5) multicasts 120 made-up
//!   `_http._tcp` services with TTL 2^32-1, 20 packets a second for 12 s:
//!   a service another cloudy box on the LAN publishes stays in box1's
//!   `cloudy search` throughout, and box1's status counts the capped TTLs
//!   and the refusals.
//!
//! Every wait is bounded; JSON of `cloudy search` is an array of
//! `{instance, type, host, address, port, txt, rtt_us, hops, local}`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudy_tests::mdns::*;
use cloudy_tests::*;

const HTTP: &str = "_http._tcp";
const IPP: &str = "_ipp._tcp";
/// Publish (probing ≈ 0.75 s, announcing) to visible in a browser.
const VISIBLE: Duration = Duration::from_secs(10);
/// The goodbye bound of the issue.
const GOODBYE: Duration = Duration::from_secs(2);
/// Slack for reading the browser's line after the deadline.
const SLACK: Duration = Duration::from_millis(500);
/// Overlay mesh up.
const MESH: Duration = Duration::from_secs(20);
/// Relayed paths learned by gossip.
const GOSSIP: Duration = Duration::from_secs(45);

/// One entry of `cloudy --json search`.
#[derive(Clone, Debug)]
struct Found {
    instance: String,
    service_type: String,
    host: String,
    address: Option<IpAddr>,
    port: u16,
    txt: Vec<String>,
    rtt_us: Option<u64>,
    hops: Option<u64>,
    local: bool,
    raw: Value,
}

impl Found {
    fn from_json(v: &Value) -> Found {
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        // `address` is an IP; also accept `ip:port`.
        let a = s("address");
        let address = a
            .parse::<IpAddr>()
            .ok()
            .or_else(|| a.parse::<SocketAddr>().ok().map(|x| x.ip()));
        Found {
            instance: s("instance"),
            // `type` (also accepted: `service_type`).
            service_type: [s("type"), s("service_type")]
                .into_iter()
                .find(|t| !t.is_empty())
                .unwrap_or_default()
                .trim_end_matches('.')
                .trim_end_matches(".local")
                .to_string(),
            host: s("host").trim_end_matches('.').to_string(),
            address,
            port: v["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0),
            txt: v["txt"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            rtt_us: v["rtt_us"].as_u64(),
            hops: v["hops"].as_u64(),
            local: v["local"].as_bool().unwrap_or(false),
            raw: v.clone(),
        }
    }

    fn txt_is(&self, kvs: &[&str]) -> bool {
        let mut a: Vec<&str> = self.txt.iter().map(String::as_str).collect();
        let mut b = kvs.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }
}

/// `cloudy --json search ARGS…` on `node`, parsed.
fn search(net: &Net, node: &Node, args: &[&str]) -> Result<Vec<Found>, String> {
    let mut a = vec!["--json", "search"];
    a.extend_from_slice(args);
    let r = net.cloudy(node, &a);
    if !r.ok() {
        return Err(format!("{} search {args:?}: {r}", node.name));
    }
    let v: Value = serde_json::from_str(r.stdout.trim())
        .map_err(|e| format!("{} search: bad JSON ({e}): {:?}", node.name, r.stdout))?;
    let arr = v
        .as_array()
        .or_else(|| v["services"].as_array())
        .ok_or_else(|| format!("{} search: not an array: {v}", node.name))?;
    Ok(arr.iter().map(Found::from_json).collect())
}

/// Poll `cloudy search ARGS` until `pred` holds for the list (≤ `timeout`).
fn wait_search(
    net: &Net,
    node: &Node,
    args: &[&str],
    timeout: Duration,
    pred: impl Fn(&[Found]) -> bool,
) -> Vec<Found> {
    let mut last = Err(String::from("never ran"));
    let r = wait_until(
        &format!("{} search {args:?}", node.name),
        timeout,
        Duration::from_millis(250),
        || {
            last = search(net, node, args);
            match &last {
                Ok(v) if pred(v) => Some(v.clone()),
                _ => None,
            }
        },
    );
    r.unwrap_or_else(|e| panic!("{e}; last: {last:?}"))
}

/// `cloudy ARGS…` on `node`, which must succeed.
fn cloudy_ok(net: &Net, node: &Node, args: &[&str]) -> String {
    let r = net.cloudy(node, args);
    assert!(r.ok(), "{}: cloudy {args:?}: {r}", node.name);
    r.stdout
}

/// A `config service` section.
struct UciService<'a> {
    name: &'a str,
    type_: &'a str,
    port: u16,
    txt: &'a [&'a str],
}

/// Add mDNS settings to `node`'s config file (written by
/// `Net::configure`): `list mdns_interface` lines in the agent section and
/// `config service` sections at the end.
fn add_mdns_config(node: &Node, ifaces: &[&str], services: &[UciService]) {
    let text = std::fs::read_to_string(&node.conf).expect("read config");
    let mut agent = String::new();
    for i in ifaces {
        agent += &format!("\tlist mdns_interface '{i}'\n");
    }
    let mut text = text.replacen("config agent\n", &format!("config agent\n{agent}"), 1);
    for s in services {
        text += &format!(
            "\nconfig service '{}'\n\toption type '{}'\n\toption port '{}'\n",
            s.name, s.type_, s.port
        );
        for t in s.txt {
            text += &format!("\tlist txt '{t}'\n");
        }
    }
    std::fs::write(&node.conf, text).expect("write config");
}

/// The `discovery` object of `cloudy --json status`.
fn discovery(net: &Net, node: &Node) -> Value {
    let st = net.status(node).unwrap_or_else(|e| panic!("{e}"));
    let d = st["discovery"].clone();
    assert!(d.is_object(), "status has no discovery object: {st}");
    d
}

/// One LAN with box1 (cloudy, mDNS on eth0, `services` in UCI, started)
/// and `hosts` plain hosts. IPv4 only.
fn lan_with_box(
    test: &str,
    hosts: &[&str],
    services: &[UciService],
    before_start: impl FnOnce(&Net, &[Host]),
) -> Option<(Net, Node, Vec<Host>)> {
    if skip_unless_mdns_peers(test) {
        return None;
    }
    let mut net = Net::new(test)?;
    net.ipv6 = false;
    let lan = net.segment();
    let node = net.node("box1", lan);
    let hs: Vec<Host> = hosts.iter().map(|h| net.host(h, lan)).collect();
    net.configure(&node, &[]);
    add_mdns_config(&node, &["eth0"], services);
    before_start(&net, &hs);
    net.start(&node);
    Some((net, node, hs))
}

/// Wait until avahi-publish says (on stderr) its record is established,
/// i.e. probed and announced.
fn wait_established(p: &Proc) {
    wait_until(
        "avahi-publish: Established under name",
        VISIBLE,
        Duration::from_millis(20),
        || {
            p.log_tail(20)
                .contains("Established under name")
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}", p.log_tail(20)));
}

fn box_host(net: &Net, node: &Node) -> String {
    format!("{}.{}.local", node.name, net.cloud)
}

/// Entries of `name` in a browser's resolved list, after checking they
/// all carry `addr` (never an address of another link, RFC 6762 §6.2).
fn only_at(v: &[Resolved], name: &str, addr: Ipv4Addr) -> Resolved {
    let e: Vec<&Resolved> = v.iter().filter(|r| r.name == name).collect();
    assert!(!e.is_empty(), "{name} not resolved: {v:?}");
    for r in &e {
        assert_eq!(r.ip(), Some(IpAddr::V4(addr)), "{name}: {r:?}");
    }
    e[0].clone()
}

/// (a) `cloudy publish` and a UCI `config service` → resolved by Avahi
/// (streaming and one-shot `avahi-browse -rpt`) and python-zeroconf with
/// the LAN address, port, TXT and host `box1.CLOUD.local`; the host name
/// resolves; a legacy unicast `dig` gets TTL ≤ 10 (§6.7).
#[test]
fn a_cloudy_service_seen_by_avahi_and_zeroconf() {
    let svc = [UciService {
        name: "webuci",
        type_: "http",
        port: 8081,
        txt: &["path=/uci", "v=1"],
    }];
    let Some((net, node, hs)) = lan_with_box(
        "a_cloudy_service_seen_by_avahi_and_zeroconf",
        &["av", "zc"],
        &svc,
        |_, _| {},
    ) else {
        return;
    };
    let (av_h, zc_h) = (&hs[0], &hs[1]);
    let mut av = Avahi::start(&net.dir, &av_h.ns, "eth0", AvahiOpts::default());
    let mut browser = av.browser(HTTP);
    let host = box_host(&net, &node);

    let t0 = Instant::now();
    cloudy_ok(
        &net,
        &node,
        &[
            "publish",
            "Test Service",
            "http",
            "8080",
            "a=1",
            "b=two words",
        ],
    );
    let seen = browser
        .wait_for("Test Service", VISIBLE)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("cloudy publish → remote avahi-browse: {:?}", t0.elapsed());
    let r = only_at(&seen, "Test Service", node.underlay);
    assert_eq!(r.port, 8080, "{r:?}");
    assert_eq!(r.type_, HTTP);
    assert_eq!(r.domain, "local");
    assert_eq!(r.host, host, "{r:?}");
    assert!(r.txt_is(&["a=1", "b=two words"]), "{r:?}");

    let all = browser
        .wait(VISIBLE, |v| v.iter().any(|r| r.name == "webuci"))
        .unwrap_or_else(|e| panic!("UCI service not seen: {e}"));
    let u = only_at(&all, "webuci", node.underlay);
    assert_eq!(u.port, 8081, "{u:?}");
    assert_eq!(u.host, host);
    assert!(u.txt_is(&["path=/uci", "v=1"]), "{u:?}");

    // The one-shot `avahi-browse -rptk` agrees.
    let once = av.browse(HTTP);
    for (name, port) in [("Test Service", 8080), ("webuci", 8081)] {
        assert!(
            once.iter()
                .any(|x| x.name == name && x.port == port && x.ip() == Some(node.underlay.into())),
            "avahi-browse -rpt: {name}: {once:?}"
        );
    }
    assert_eq!(
        av.resolve_host(&host, false),
        Some(node.underlay.into()),
        "avahi-resolve -n {host}"
    );

    // python-zeroconf (no Avahi in its namespace).
    let zaddr = zc_h.addr.to_string();
    for (name, port, txt) in [
        ("Test Service", 8080, &["a=1", "b=two words"][..]),
        ("webuci", 8081, &["path=/uci", "v=1"][..]),
    ] {
        let zc = zeroconf_browse(&zc_h.ns, &zaddr, HTTP, Duration::from_secs(6), Some(name))
            .unwrap_or_else(|e| panic!("{e}"));
        let z = zc
            .iter()
            .find(|x| x.name == name)
            .unwrap_or_else(|| panic!("zeroconf did not resolve {name}: {zc:?}"));
        assert_eq!(z.ip(), Some(node.underlay.into()), "{z:?}");
        assert_eq!(z.port, port, "{z:?}");
        assert_eq!(z.host, host, "{z:?}");
        assert!(z.txt_is(txt), "{z:?}");
    }
    assert_eq!(
        zeroconf_resolve(&zc_h.ns, &zaddr, &host, Duration::from_secs(3)),
        vec![IpAddr::from(node.underlay)]
    );
    let types = zeroconf_types(&zc_h.ns, &zaddr, Duration::from_secs(2));
    assert!(types.iter().any(|t| t == "_http._tcp.local."), "{types:?}");

    // Legacy unicast query (source port ≠ 5353): TTL capped at 10 s.
    let (run, took) = dig(&zc_h.ns, node.underlay.into(), &host, "A");
    assert!(run.ok(), "{run}");
    assert_eq!(
        dig_answers(&run.stdout),
        [format!("{host}. 10 IN A {}", node.underlay)],
        "{run}"
    );
    eprintln!("dig @cloudy: {took:?}");

    let d = discovery(&net, &node);
    assert_eq!(d["published"].as_u64(), Some(2), "{d}");
}

/// (b) A service `avahi-publish` announces shows in `cloudy search --all`
/// with Avahi's address, port, host and TXT; without `--all` it is hidden
/// (its host `NS.local` is not under CLOUD.local).
#[test]
fn b_avahi_service_in_cloudy_search() {
    let Some((net, node, hs)) =
        lan_with_box("b_avahi_service_in_cloudy_search", &["av"], &[], |_, _| {})
    else {
        return;
    };
    let av_h = &hs[0];
    let mut av = Avahi::start(&net.dir, &av_h.ns, "eth0", AvahiOpts::default());
    let publisher = av.publish("Avahi Svc", HTTP, 9090, &["x=1", "y=z"]);
    wait_established(&publisher);

    let t0 = Instant::now();
    let v = wait_search(&net, &node, &["http", "--all"], VISIBLE, |v| {
        v.iter()
            .any(|f| f.instance == "Avahi Svc" && f.address.is_some() && f.port != 0)
    });
    eprintln!("avahi-publish → cloudy search --all: {:?}", t0.elapsed());
    let f = v
        .iter()
        .find(|f| f.instance == "Avahi Svc")
        .expect("present");
    assert_eq!(f.address, Some(av_h.addr.into()), "{:?}", f.raw);
    assert_eq!(f.port, 9090, "{:?}", f.raw);
    assert_eq!(f.service_type, HTTP, "{:?}", f.raw);
    assert_eq!(f.host, format!("{}.local", av.host_name), "{:?}", f.raw);
    assert!(f.txt_is(&["x=1", "y=z"]), "{:?}", f.raw);
    assert!(!f.local, "{:?}", f.raw);

    // The full type and a search of all types find it too.
    let v = search(&net, &node, &["_http._tcp", "--all"]).unwrap_or_else(|e| panic!("{e}"));
    assert!(v.iter().any(|f| f.instance == "Avahi Svc"), "{v:?}");
    wait_search(&net, &node, &["--all"], VISIBLE, |v| {
        v.iter().any(|f| f.instance == "Avahi Svc")
    });
    // By default only this micro cloud's services.
    let v = search(&net, &node, &["http"]).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        v.iter().all(|f| f.instance != "Avahi Svc"),
        "search without --all lists a host outside {}.local: {v:?}",
        net.cloud
    );
    // The text form lists it with address:port.
    let text = cloudy_ok(&net, &node, &["search", "http", "--all"]);
    assert!(
        text.contains("Avahi Svc") && text.contains(&format!("{}:9090", av_h.addr)),
        "{text}"
    );
    assert!(
        discovery(&net, &node)["cached"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{}",
        discovery(&net, &node)
    );
}

/// (c) Goodbyes: `cloudy unpublish` → Avahi drops it within 2 s; SIGTERM
/// of the daemon → Avahi drops every remaining service (UCI and console)
/// within 2 s, and the daemon exits cleanly.
#[test]
fn c_goodbye_on_unpublish_and_stop() {
    let svc = [UciService {
        name: "stayuci",
        type_: "_http._tcp",
        port: 8083,
        txt: &[],
    }];
    let Some((mut net, node, hs)) =
        lan_with_box("c_goodbye_on_unpublish_and_stop", &["av"], &svc, |_, _| {})
    else {
        return;
    };
    let mut av = Avahi::start(&net.dir, &hs[0].ns, "eth0", AvahiOpts::default());
    let mut browser = av.browser(HTTP);
    cloudy_ok(&net, &node, &["publish", "Bye", "http", "8082"]);
    cloudy_ok(&net, &node, &["publish", "Stay", "http", "8084", "k=v"]);
    browser
        .wait(VISIBLE, |v| {
            ["Bye", "Stay", "stayuci"]
                .iter()
                .all(|n| v.iter().any(|r| r.name == *n))
        })
        .unwrap_or_else(|e| panic!("{e}"));

    let t0 = Instant::now();
    cloudy_ok(&net, &node, &["unpublish", "Bye"]);
    let gone = browser
        .wait_gone("Bye", GOODBYE + SLACK)
        .unwrap_or_else(|e| panic!("still there after unpublish: {e}"));
    let took = gone.saturating_duration_since(t0);
    eprintln!("cloudy unpublish → gone in Avahi after {took:?}");
    assert!(took <= GOODBYE, "gone only after {took:?}");
    assert!(
        browser
            .current()
            .iter()
            .any(|r| r.name == "Stay" || r.name == "stayuci"),
        "unpublish removed other services: {:?}",
        browser.current()
    );

    let t0 = Instant::now();
    let st = net.stop(&node);
    assert!(
        st.is_some_and(|s| s.success()),
        "daemon did not exit cleanly on SIGTERM: {st:?}"
    );
    for name in ["Stay", "stayuci"] {
        let gone = browser
            .wait_gone(name, (GOODBYE + SLACK).saturating_sub(t0.elapsed()))
            .unwrap_or_else(|e| panic!("{name} still there after SIGTERM: {e}"));
        let took = gone.saturating_duration_since(t0);
        eprintln!("daemon SIGTERM → {name} gone in Avahi after {took:?}");
        assert!(took <= GOODBYE, "{name} gone only after {took:?}");
    }
}

/// (d) Conflicts with Avahi (see the module doc for why the host conflict
/// is made with `avahi-publish -a`): cloudy ends as `box1-2.CLOUD.local`
/// and "Printer (2)"; Avahi keeps its names; all four resolve to their
/// owners.
#[test]
fn d_name_conflicts_with_avahi() {
    let mut holder: Option<(Avahi, Proc, Proc)> = None;
    let test = "d_name_conflicts_with_avahi";
    let Some((net, node, hs)) = lan_with_box(test, &["av"], &[], |net, hs| {
        // Avahi claims box1.CLOUD.local and "Printer" before cloudy starts.
        let av_h = &hs[0];
        let mut av = Avahi::start(&net.dir, &av_h.ns, "eth0", AvahiOpts::default());
        let host = format!("box1.{}.local", net.cloud);
        let pa = av.publish_address(&host, av_h.addr.into());
        wait_established(&pa);
        let pp = av.publish("Printer", IPP, 631, &["rp=avahi"]);
        wait_established(&pp);
        holder = Some((av, pa, pp));
    }) else {
        return;
    };
    let Some((mut av, _pa, _pp)) = holder else {
        panic!("avahi not started");
    };
    let av_h = &hs[0];
    let ours = format!("box1-2.{}.local", net.cloud);
    let theirs = format!("box1.{}.local", net.cloud);

    // Host: cloudy probed box1.CLOUD.local, Avahi defended it.
    let d = wait_until(
        "cloudy renamed after the host conflict",
        VISIBLE,
        Duration::from_millis(200),
        || {
            let d = discovery(&net, &node);
            d.to_string().contains(&ours).then_some(d)
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}", discovery(&net, &node)));
    eprintln!("discovery after the host conflict: {d}");
    assert_eq!(
        av.resolve_host(&ours, false),
        Some(node.underlay.into()),
        "{ours}"
    );
    assert_eq!(
        av.resolve_host(&theirs, false),
        Some(av_h.addr.into()),
        "{theirs}"
    );

    // Service: Avahi has "Printer"; cloudy's becomes "Printer (2)".
    let mut browser = av.browser(IPP);
    cloudy_ok(
        &net,
        &node,
        &["publish", "Printer", "ipp", "632", "rp=cloudy"],
    );
    let v = browser
        .wait(VISIBLE, |v| {
            v.iter().any(|r| r.name == "Printer") && v.iter().any(|r| r.name == "Printer (2)")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let a = only_at(&v, "Printer", av_h.addr);
    assert_eq!(a.port, 631, "{a:?}");
    assert!(a.txt_is(&["rp=avahi"]), "{a:?}");
    let c = only_at(&v, "Printer (2)", node.underlay);
    assert_eq!(c.port, 632, "{c:?}");
    assert_eq!(c.host, ours, "{c:?}");
    assert!(c.txt_is(&["rp=cloudy"]), "{c:?}");

    // cloudy's own view agrees; the conflicts are counted.
    let v = wait_search(&net, &node, &["ipp", "--all"], VISIBLE, |v| {
        v.iter().any(|f| f.instance == "Printer (2)" && f.local)
            && v.iter().any(|f| f.instance == "Printer" && !f.local)
    });
    let p = v.iter().find(|f| f.instance == "Printer").expect("present");
    assert_eq!(p.address, Some(av_h.addr.into()), "{:?}", p.raw);
    assert_eq!(p.port, 631);
    let d = discovery(&net, &node);
    assert!(
        d["conflicts"].as_u64().is_some_and(|n| n >= 2),
        "want ≥ 2 conflicts (host, service): {d}"
    );
}

/// (e) Three boxes, mDNS on the overlay TAP only: each sees the other two
/// boxes' services (UCI) in `cloudy search` with their overlay addresses,
/// an RTT and hops (1 direct; 2 for box2↔box3, relayed by the hub because
/// nftables blocks their underlay path), sorted by RTT then hops.
#[test]
fn e_services_across_the_overlay() {
    if skip_unless_root("e_services_across_the_overlay") {
        return;
    }
    let Some(mut net) = Net::new("e_services_across_the_overlay") else {
        return;
    };
    net.ipv6 = false;
    let lan = net.segment();
    let hub = net.node("hub", lan);
    let b = net.node("box2", lan);
    let c = net.node("box3", lan);
    net.nft(
        &c.ns,
        &format!(
            "table ip block {{\n\
             \tchain input {{ type filter hook input priority filter; policy accept; ip saddr {b} drop; }}\n\
             \tchain output {{ type filter hook output priority filter; policy accept; ip daddr {b} drop; }}\n\
             }}\n",
            b = b.underlay
        ),
    );
    net.configure(&hub, &[(&b, true), (&c, true)]);
    net.configure(&b, &[(&hub, true), (&c, true)]);
    net.configure(&c, &[(&hub, true), (&b, true)]);
    let nodes = [&hub, &b, &c];
    for n in nodes {
        let name = format!("svc_{}", n.name.replace('-', "_"));
        add_mdns_config(
            n,
            &[],
            &[UciService {
                name: &name,
                type_: "http",
                port: 8000,
                txt: &["node=x"],
            }],
        );
    }
    for n in nodes {
        net.start(n);
    }
    net.wait_peer_state(&b, "hub", "up", MESH);
    net.wait_peer_state(&c, "hub", "up", MESH);
    net.wait_peer_state(&c, "box2", "relayed", GOSSIP);
    net.wait_peer_state(&b, "box3", "relayed", GOSSIP);
    // Also one published from the console.
    cloudy_ok(&net, &b, &["publish", "Console Svc", "http", "8001"]);

    let hops_of = |from: &Node, to: &Node| -> u64 {
        let relayed = (from.name == "box2" && to.name == "box3")
            || (from.name == "box3" && to.name == "box2");
        if relayed {
            2
        } else {
            1
        }
    };
    for me in nodes {
        let want: Vec<(String, &Node)> = nodes
            .iter()
            .map(|n| (format!("svc_{}", n.name), *n))
            .chain(std::iter::once(("Console Svc".to_string(), &b)))
            .collect();
        let t0 = Instant::now();
        let v = wait_search(&net, me, &["http"], GOSSIP, |v| {
            want.iter().all(|(inst, _)| {
                v.iter().any(|f| {
                    f.instance == *inst && f.address.is_some() && (f.local || f.rtt_us.is_some())
                })
            })
        });
        eprintln!(
            "{} sees all services after {:?}: {:?}",
            me.name,
            t0.elapsed(),
            v.iter()
                .map(|f| (&f.instance, f.address, f.rtt_us, f.hops))
                .collect::<Vec<_>>()
        );
        for (inst, owner) in &want {
            let f = v.iter().find(|f| f.instance == *inst).expect("present");
            assert_eq!(f.port, if inst == "Console Svc" { 8001 } else { 8000 });
            assert_eq!(f.host, box_host(&net, owner), "{:?}", f.raw);
            assert_eq!(f.address, Some(owner.o4().into()), "{:?}", f.raw);
            if owner.name == me.name {
                assert!(f.local, "own service not local: {:?}", f.raw);
                continue;
            }
            assert!(!f.local, "{:?}", f.raw);
            assert!(
                f.rtt_us.is_some_and(|r| r > 0),
                "{} → {inst}: no RTT: {:?}",
                me.name,
                f.raw
            );
            assert_eq!(
                f.hops,
                Some(hops_of(me, owner)),
                "{} → {inst}: {:?}",
                me.name,
                f.raw
            );
        }
        // Sorted by RTT, then hops (remote entries).
        let remote: Vec<(u64, u64)> = v
            .iter()
            .filter(|f| !f.local)
            .filter_map(|f| Some((f.rtt_us?, f.hops?)))
            .collect();
        let mut sorted = remote.clone();
        sorted.sort_unstable();
        assert_eq!(
            remote, sorted,
            "{}: search not sorted by RTT: {v:?}",
            me.name
        );
    }
}

/// A DNS name in wire form, uncompressed (RFC 1035 §3.1): labels split
/// at dots, each preceded by its length, then the root label.
fn put_name(b: &mut Vec<u8>, name: &str) {
    for label in name.split('.') {
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.push(0);
}

/// One resource record (RFC 1035 §4.1.3): name, type, class (IN, with
/// the cache-flush bit of RFC 6762 §10.2 when `flush`), TTL, RDATA.
fn put_rr(b: &mut Vec<u8>, name: &str, rtype: u16, flush: bool, ttl: u32, rdata: &[u8]) {
    put_name(b, name);
    b.extend_from_slice(&rtype.to_be_bytes());
    b.extend_from_slice(&(if flush { 0x8001u16 } else { 1 }).to_be_bytes());
    b.extend_from_slice(&ttl.to_be_bytes());
    b.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    b.extend_from_slice(rdata);
}

/// An mDNS response (RFC 6762 §18: ID 0, QR and AA set, no questions)
/// announcing `Flood ROUND-I._http._tcp.local` for `i` in `services`
/// (PTR, SRV to `evil.local` port 9, TXT) and evil.local's A record, every
/// TTL `ttl`.
fn flood_packet(round: u32, services: std::ops::Range<u32>, addr: Ipv4Addr, ttl: u32) -> Vec<u8> {
    let count = services.len() as u16 * 3 + 1;
    let mut b = vec![0, 0, 0x84, 0, 0, 0];
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 0]);
    for i in services {
        let inst = format!("Flood {round}-{i}._http._tcp.local");
        let mut ptr = Vec::new();
        put_name(&mut ptr, &inst);
        put_rr(&mut b, "_http._tcp.local", 12, false, ttl, &ptr);
        let mut srv = vec![0, 0, 0, 0, 0, 9];
        put_name(&mut srv, "evil.local");
        put_rr(&mut b, &inst, 33, true, ttl, &srv);
        put_rr(&mut b, &inst, 16, true, ttl, b"\x03x=1");
    }
    put_rr(&mut b, "evil.local", 1, true, ttl, &addr.octets());
    b
}

/// From namespace `ns` (address `addr`, port 5353), multicast floods to
/// 224.0.0.251:5353 until `stop`: 120 services, 8 per packet, a new set
/// of instance names every 15 packets, `pps` packets a second. Returns
/// the packets sent.
fn flood_from(
    ns: String,
    addr: Ipv4Addr,
    pps: u32,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        in_netns(&ns, || {
            let sock = UdpSocket::bind((addr, 5353)).expect("bind 5353 in the flooder");
            let group: SocketAddr = "224.0.0.251:5353".parse().expect("group");
            let mut sent = 0u64;
            let gap = Duration::from_secs(1) / pps;
            while !stop.load(Ordering::Relaxed) {
                let round = (sent / 15) as u32;
                let first = (sent % 15) as u32 * 8;
                let p = flood_packet(round, first..first + 8, addr, u32::MAX);
                if sock.send_to(&p, group).is_ok() {
                    sent += 1;
                }
                std::thread::sleep(gap);
            }
            sent
        })
    })
}

/// (f) Issue 9, item 5: a LAN host floods made-up `_http._tcp` services
/// with TTL 2^32-1 (which pushed a legitimate service out of a 256-entry
/// cache for over 90 s before TTLs were capped and the cache ranked by
/// trust and source). box2 publishes "Legit" on the LAN; box1, searching,
/// must list it at every check during 12 s of flood, and count the
/// capped TTLs and the refused or dropped records.
#[test]
fn f_lan_flood_cannot_push_a_service_out() {
    if skip_unless_root("f_lan_flood_cannot_push_a_service_out") {
        return;
    }
    let Some(mut net) = Net::new("f_lan_flood_cannot_push_a_service_out") else {
        return;
    };
    net.ipv6 = false;
    let lan = net.segment();
    let b1 = net.node("box1", lan);
    let b2 = net.node("box2", lan);
    let evil = net.host("evil", lan);
    net.configure(&b1, &[]);
    net.configure(&b2, &[]);
    add_mdns_config(&b1, &["eth0"], &[]);
    add_mdns_config(
        &b2,
        &["eth0"],
        &[UciService {
            name: "Legit",
            type_: "http",
            port: 8080,
            txt: &["k=v"],
        }],
    );
    net.start(&b1);
    net.start(&b2);
    let legit = |v: &[Found]| {
        v.iter().any(|f| {
            f.instance == "Legit" && f.address == Some(b2.underlay.into()) && f.port == 8080
        })
    };
    wait_search(&net, &b1, &["http"], VISIBLE, legit);

    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood_from(evil.ns.clone(), evil.addr, 20, stop.clone());
    let t0 = Instant::now();
    let mut missing = Vec::new();
    let mut checks = 0;
    while t0.elapsed() < Duration::from_secs(12) {
        std::thread::sleep(Duration::from_millis(1000));
        checks += 1;
        match search(&net, &b1, &["http"]) {
            Ok(v) if legit(&v) => {}
            other => missing.push((t0.elapsed(), other)),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent = flooder.join().expect("flooder");
    let d = discovery(&net, &b1);
    eprintln!("flood: {sent} packets in 12 s; box1 discovery: {d}");
    let n = |k: &str| d[k].as_u64().unwrap_or(0);
    assert!(sent >= 100, "the flood did not go out: {sent} packets");
    assert!(
        missing.is_empty(),
        "Legit missing from box1's search at {} of {checks} checks during the flood: {missing:?}\n{d}",
        missing.len()
    );
    assert!(n("ttl_capped") > 0, "no TTL capped: {d}");
    let refusals = n("dropped_unsolicited") + n("unsolicited_refused") + n("cache_refused");
    assert!(refusals > 0, "no refusals counted: {d}");
    // The flooder's records never take more than its share of the cache.
    assert!(n("cached") <= 256, "{d}");
}
