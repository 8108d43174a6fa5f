//! The store in network namespaces (root; skip otherwise): ten boxes on
//! one LAN, each with `config store`, a full overlay mesh, discovery on
//! the overlay. Every wait is bounded; the net is removed on drop.
//!
//! - (a) `cloudy put` of a 20 MiB file 3-of-10 from box1 places one share
//!   on every box; a byte flipped in a share file on disk: `get` still
//!   returns the file byte for byte and `check` names the bad share;
//!   `check --repair` brings the good shares back to 10; then seven
//!   storage daemons are killed (`kill -9`) and `get` still returns the
//!   file from the three left.
//! - (b) a LAN host that is not a member gets "connection refused" from
//!   port 6557 of a box's LAN address and of its overlay address routed
//!   through the box; a member over the overlay is served.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cloudy_tests::*;

const MESH: Duration = Duration::from_secs(45);
/// A put or get of 20 MiB through the overlay, with boxes to skip.
const TRANSFER: Duration = Duration::from_secs(120);

fn store_dir(net: &Net, node: &Node) -> PathBuf {
    let d = net.dir.join(format!("{}-store", node.name));
    fs::create_dir_all(&d).expect("mkdir store");
    d
}

/// `node`'s config with every other box as a peer and a store.
fn configure_with_store(net: &Net, node: &Node, all: &[Node]) {
    let peers: Vec<(&Node, bool)> = all
        .iter()
        .filter(|n| n.name != node.name)
        .map(|n| (n, true))
        .collect();
    let mut text = node.config_text(&net.cloud, &peers);
    text += &format!(
        "\nconfig store\n\toption path '{}'\n\toption quota '256M'\n\toption shares_needed '3'\n\toption shares_total '10'\n\toption shares_happy '7'\n",
        store_dir(net, node).display()
    );
    fs::write(&node.conf, text).expect("write config");
}

/// `cloudy ARGS` inside `node`'s namespace (store commands use the
/// overlay device there).
fn cloudy_in(node: &Node, args: &[&str], timeout: Duration) -> Run {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &node.ns])
        .arg(cloudy_bin())
        .arg("-c")
        .arg(&node.conf)
        .arg("-s")
        .arg(&node.sock)
        .args(args);
    run_timeout(&mut cmd, timeout)
}

fn file_bytes(len: usize) -> Vec<u8> {
    let mut rng = Rng::new(0x5703e);
    rng.bytes(len)
}

#[test]
fn a_ten_boxes_put_corrupt_repair_kill_get() {
    let Some(mut net) = Net::new("a_ten_boxes_put_corrupt_repair_kill_get") else {
        return;
    };
    net.ipv6 = false;
    let lan = net.segment();
    let boxes: Vec<Node> = (1..=10)
        .map(|i| net.node(&format!("box{i}"), lan))
        .collect();
    for b in &boxes {
        configure_with_store(&net, b, &boxes);
    }
    for b in &boxes {
        net.start(b);
    }
    let refs: Vec<&Node> = boxes.iter().collect();
    net.wait_mesh(&refs, MESH);
    let b1 = &boxes[0];
    // Every box's store is found by box1's discovery.
    let mut seen = String::new();
    wait_until(
        "box1 to find ten storage boxes",
        Duration::from_secs(60),
        Duration::from_millis(500),
        || {
            let r = net.cloudy(b1, &["--json", "search", "_cloudy-store._tcp"]);
            seen = r.stdout.clone();
            let v: Value = serde_json::from_str(&r.stdout).ok()?;
            (v.as_array()?.len() >= 10).then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}; last search: {seen}"));

    let data = file_bytes(20 << 20);
    let input = net.dir.join("input.bin");
    fs::write(&input, &data).unwrap();
    let t = std::time::Instant::now();
    let r = cloudy_in(b1, &["--json", "put", input.to_str().unwrap()], TRANSFER);
    assert!(r.ok(), "put: {r}");
    eprintln!("a: put 20 MiB 3-of-10 in {} ms", t.elapsed().as_millis());
    let put: Value = serde_json::from_str(r.stdout.trim()).expect("put --json");
    let cap = put["cap"].as_str().expect("cap").to_string();
    assert!(cap.starts_with("cloudy:chk:3-10-20971520:"), "{cap}");
    assert_eq!(put["boxes"], 10, "{put}");
    // The storage index from the verify capability: base64url(SI ‖ root).
    let share0_box = put["shares"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["share"] == 0)
        .and_then(|s| s["box"].as_str())
        .expect("share 0 placed")
        .to_string();

    // Flip one byte of the first block of share 0 on its box's disk.
    let holder = boxes.iter().find(|b| b.name == share0_box).unwrap();
    let shares_dir = store_dir(&net, holder).join("shares");
    let si_dir = fs::read_dir(&shares_dir)
        .unwrap()
        .next()
        .expect("an SI directory")
        .unwrap()
        .path();
    let share_file = si_dir.join("0");
    let mut bytes = fs::read(&share_file).expect("share file 0");
    let at = 64 + 10 * 32 + 4 + 100; // header, roots + CRC, into block 0
    bytes[at] ^= 0x40;
    fs::write(&share_file, &bytes).unwrap();

    let out = net.dir.join("out.bin");
    let r = cloudy_in(b1, &["get", &cap, "-o", out.to_str().unwrap()], TRANSFER);
    assert!(r.ok(), "get with a bad share: {r}");
    assert!(fs::read(&out).unwrap() == data, "get returned other bytes");
    let r = cloudy_in(b1, &["--json", "check", &cap], TRANSFER);
    assert!(r.ok(), "check: {r}");
    let check: Value = serde_json::from_str(r.stdout.trim()).expect("check --json");
    assert_eq!(check["good_shares"], 9, "{check}");
    let bad_named = check["boxes"].as_array().unwrap().iter().any(|b| {
        b["box"] == share0_box.as_str()
            && b["shares"]
                .as_array()
                .is_some_and(|s| s.iter().any(|e| e["share"] == 0 && e["status"] != "good"))
    });
    assert!(
        bad_named,
        "check does not name share 0 on {share0_box}: {check}"
    );
    let r = cloudy_in(b1, &["--json", "check", "--repair", &cap], TRANSFER);
    assert!(r.ok(), "repair: {r}");
    let r = cloudy_in(b1, &["--json", "check", &cap], TRANSFER);
    let check: Value = serde_json::from_str(r.stdout.trim()).expect("check --json");
    assert_eq!(check["good_shares"], 10, "after repair: {check}");

    // kill -9 seven storage daemons (the bad share's box among them).
    let mut killed = vec![holder.name.clone()];
    for b in boxes.iter().skip(1) {
        if killed.len() == 7 {
            break;
        }
        if !killed.contains(&b.name) {
            killed.push(b.name.clone());
        }
    }
    for b in boxes.iter().filter(|b| killed.contains(&b.name)) {
        net.kill(b);
    }
    fs::remove_file(&out).ok();
    let t = std::time::Instant::now();
    let r = cloudy_in(b1, &["get", &cap, "-o", out.to_str().unwrap()], TRANSFER);
    assert!(r.ok(), "get with 7 of 10 boxes killed: {r}");
    eprintln!(
        "a: get with seven boxes killed in {} ms",
        t.elapsed().as_millis()
    );
    assert!(fs::read(&out).unwrap() == data, "get returned other bytes");
    // A wrong capability is refused clearly.
    let r = cloudy_in(b1, &["get", "cloudy:chk:3-10-5:xyz"], TRANSFER);
    assert!(!r.ok() && r.stderr.contains("capability"), "{r}");
}

/// (b) A LAN host that is not a member cannot reach a box's store: the
/// store listens only on the overlay device, so a connection to port
/// 6557 of the box's LAN address, or of its overlay address routed
/// through the box, is refused. A member over the overlay gets in.
#[test]
fn b_lan_host_cannot_reach_the_store() {
    let Some(mut net) = Net::new("b_lan_host_cannot_reach_the_store") else {
        return;
    };
    net.ipv6 = false;
    let lan = net.segment();
    let boxes: Vec<Node> = (1..=2).map(|i| net.node(&format!("box{i}"), lan)).collect();
    let lan_host = net.host("lanhost", lan);
    for b in &boxes {
        configure_with_store(&net, b, &boxes);
    }
    for b in &boxes {
        net.start(b);
    }
    let refs: Vec<&Node> = boxes.iter().collect();
    net.wait_mesh(&refs, MESH);
    let target = &boxes[0];
    // Through the box, as a host on its LAN could route.
    net.default_route(&lan_host.ns, target.underlay);
    let try_connect = |ns: &str, to: std::net::Ipv4Addr| {
        in_netns(ns, || {
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from((to, 6557)),
                Duration::from_secs(3),
            )
            .map(|_| ())
        })
    };
    for to in [target.underlay, target.o4()] {
        let r = try_connect(&lan_host.ns, to);
        assert!(r.is_err(), "the LAN host reached the store at {to}:6557");
        eprintln!("b: LAN host -> {to}:6557: {}", r.unwrap_err());
    }
    // The member next door, over the overlay, is served.
    net.wait_ping(&boxes[1].ns, target.o4(), Duration::from_secs(10));
    assert!(
        try_connect(&boxes[1].ns, target.o4()).is_ok(),
        "a member could not reach the store over the overlay"
    );
}
