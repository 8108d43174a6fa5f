//! The cloud authority in network namespaces (root; skip otherwise):
//! certificates admit members, a revocation reaches every box at once,
//! certificates of another authority and tokens used twice, expired or
//! forged are refused.
//!
//! Every wait is bounded; each test removes what it made.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cloudy_tests::*;

const MESH: Duration = Duration::from_secs(30);
const PING: Duration = Duration::from_secs(10);

/// `text` (a `Node::config_text`) with `extra` options in its agent
/// section.
fn with_agent_options(text: &str, extra: &str) -> String {
    text.replacen("config agent\n", &format!("config agent\n{extra}"), 1)
}

/// Where `node` keeps its certificate (the revocation list goes beside it).
fn cert_dir(net: &Net, node: &Node) -> PathBuf {
    let d = net.dir.join(format!("{}-trust", node.name));
    fs::create_dir_all(&d).expect("mkdir");
    d
}

/// The agent options naming the authority's files of `node`.
fn trust_options(net: &Net, node: &Node, authority: Option<&str>) -> String {
    let d = cert_dir(net, node);
    let mut s = format!(
        "\toption certificate_file '{}'\n\toption authority_key_file '{}'\n",
        d.join("cert").display(),
        d.join("authority.key").display()
    );
    if let Some(a) = authority {
        s += &format!("\toption authority '{a}'\n");
    }
    s
}

/// Make `node` the authority (`cloudy authority init`); its public key.
fn authority_init(net: &Net, node: &Node) -> String {
    let text = with_agent_options(
        &node.config_text(&net.cloud, &[]),
        &trust_options(net, node, None),
    );
    fs::write(&node.conf, text).expect("write config");
    let r = net.cloudy(node, &["authority", "init"]);
    assert!(r.ok(), "authority init: {r}");
    let public = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("authority public key: "))
        .unwrap_or_else(|| panic!("no authority public key in {:?}", r.stdout))
        .to_string();
    let conf = fs::read_to_string(&node.conf).expect("read config");
    assert!(
        conf.contains(&format!("option authority '{public}'")),
        "{conf}"
    );
    public
}

/// A member listing only `hubs`, with a certificate signed on `authority`.
fn certified_member(net: &Net, node: &Node, hubs: &[&Node], authority_box: &Node, public: &str) {
    let peers: Vec<(&Node, bool)> = hubs.iter().map(|h| (*h, true)).collect();
    let text = with_agent_options(
        &node.config_text(&net.cloud, &peers),
        &trust_options(net, node, Some(public)),
    );
    fs::write(&node.conf, text).expect("write config");
    let addr = format!("{}/24", node.o4());
    let r = net.cloudy(
        authority_box,
        &["sign", &node.name, &node.public_key, &addr],
    );
    assert!(r.ok() && r.stdout.starts_with("cloudy-cert1:"), "sign: {r}");
    fs::write(cert_dir(net, node).join("cert"), &r.stdout).expect("write cert");
}

/// Whether `node` lists a member called `name` now.
fn lists(net: &Net, node: &Node, name: &str) -> bool {
    net.peer(node, name).is_some()
}

/// (a) box1 becomes the authority and lists nobody; box2..box4 list only
/// box1 and hold certificates it signed: all four mesh. A box with a
/// certificate of another authority is refused. `cloudy revoke box4` on
/// box1: every box drops box4 within 2 s, keeps the list on disk, and
/// still refuses box4 after it restarts.
#[test]
fn a_certificates_admit_and_revocation_spreads() {
    let Some(mut net) = Net::new("a_certificates_admit_and_revocation_spreads") else {
        return;
    };
    let lan = net.segment();
    let b1 = net.node("box1", lan);
    let b2 = net.node("box2", lan);
    let b3 = net.node("box3", lan);
    let b4 = net.node("box4", lan);
    let rogue = net.node("rogue", lan);
    let public = authority_init(&net, &b1);
    for b in [&b2, &b3, &b4] {
        certified_member(&net, b, &[&b1], &b1, &public);
    }
    // The rogue is its own authority and lists box1.
    let rogue_public = authority_init(&net, &rogue);
    assert_ne!(rogue_public, public);
    let text = fs::read_to_string(&rogue.conf).unwrap()
        + &format!(
            "\nconfig peer 'box1'\n\toption public_key '{}'\n\tlist endpoint '{}'\n",
            b1.public_key,
            b1.endpoint()
        );
    fs::write(&rogue.conf, text).unwrap();
    let r = net.cloudy(&b2, &["check-config"]);
    assert!(r.ok() && r.stdout.contains("key and certificate ok"), "{r}");
    // A certificate of another box is an error that names the file.
    let cert2 = cert_dir(&net, &b2).join("cert");
    let own = fs::read_to_string(&cert2).unwrap();
    fs::copy(cert_dir(&net, &b3).join("cert"), &cert2).unwrap();
    let r = net.cloudy(&b2, &["check-config"]);
    assert!(
        !r.ok() && r.stderr.contains("cert") && r.stderr.contains("another key"),
        "{r}"
    );
    fs::write(&cert2, own).unwrap();
    for b in [&b1, &b2, &b3, &b4, &rogue] {
        net.start(b);
    }
    net.wait_mesh(&[&b1, &b2, &b3, &b4], MESH);
    net.wait_ping(&b2.ns, b4.o4(), PING);
    net.wait_ping(&b3.ns, b2.o4(), PING);
    wait_until(
        "box1 to refuse the rogue's certificate",
        Duration::from_secs(10),
        Duration::from_millis(200),
        || (net.stat(&b1, "dropped_bad_cert") > 0).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for b in [&b1, &b2, &b3, &b4] {
        assert!(!lists(&net, b, "rogue"), "{} lists the rogue", b.name);
    }

    // Revoke box4 on the authority's box.
    let r = net.cloudy(&b1, &["revoke", "box4"]);
    assert!(r.ok() && r.stdout.contains("revoked box4"), "revoke: {r}");
    let t0 = Instant::now();
    for b in [&b1, &b2, &b3] {
        wait_until(
            &format!("{} to drop box4", b.name),
            Duration::from_secs(2),
            Duration::from_millis(50),
            || (!lists(&net, b, "box4")).then_some(()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!(
        "a_certificates_admit_and_revocation_spreads: every box dropped box4 {} ms after revoke",
        t0.elapsed().as_millis()
    );
    for b in [&b2, &b3] {
        let list = cert_dir(&net, b).join("revoked");
        let text = fs::read_to_string(&list).unwrap_or_default();
        assert!(
            text.starts_with("cloudy-revoked1:"),
            "{}: {text:?}",
            list.display()
        );
    }
    // A revoked box that restarts stays out.
    net.kill(&b4);
    net.start(&b4);
    std::thread::sleep(Duration::from_secs(4));
    for b in [&b1, &b2, &b3] {
        assert!(!lists(&net, b, "box4"), "{} took box4 back", b.name);
    }
    assert!(net.stat(&b1, "dropped_revoked") + net.stat(&b2, "dropped_revoked") > 0);
    assert!(!net.ping1(&b4.ns, &b2.o4().to_string()));
    // The others still work.
    net.wait_ping(&b2.ns, b3.o4(), PING);
}

/// (c) a certified member gone bad (its real key and certificate,
/// speaking the wire format on its own: `tests/src/hostile.rs`) gossips
/// 128 made-up members without certificates, at an address of its
/// choice. The authority's box admits none and aims nothing there; a
/// certified member that comes later still gets in.
#[test]
fn c_certified_member_cannot_fill_the_table() {
    let Some(mut net) = Net::new("c_certified_member_cannot_fill_the_table") else {
        return;
    };
    let lan = net.segment();
    let v = net.node("box1", lan);
    let bad = net.node("box2", lan);
    let c = net.node("box3", lan);
    let public = authority_init(&net, &v);
    certified_member(&net, &bad, &[&v], &v, &public);
    certified_member(&net, &c, &[&v], &v, &public);
    let cert = fs::read_to_string(cert_dir(&net, &bad).join("cert")).expect("box2's cert");
    let cert = hostile::cert_bytes(&cert).unwrap_or_else(|e| panic!("{e}"));
    net.start(&v);
    let before = net.stat(&v, "gossip_unknown");
    let report =
        hostile::table_filling_gossip(&net.cloud, &bad, &cert, &v, 8, Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("hostile member: {e}"));
    let ignored = net.stat(&v, "gossip_unknown") - before;
    eprintln!(
        "c_certified_member_cannot_fill_the_table: {report:?}, box1 ignored {ignored} entries"
    );
    assert_eq!(ignored, report.entries as u64);
    assert_eq!(
        report.aimed_at_sink, 0,
        "handshakes aimed at the attacker's address"
    );
    assert!(
        lists(&net, &v, "box2"),
        "the certified member was not admitted"
    );
    let peers = net.peers(&v).expect("peers");
    assert_eq!(peers.len(), 1, "box1 admitted made-up members: {peers:?}");
    net.start(&c);
    net.wait_peer_state(&v, "box3", "up", MESH);
    net.wait_ping(&c.ns, v.o4(), PING);
    assert_eq!(net.stat(&v, "dropped_table_full"), 0);
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64url_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B64URL.iter().position(|&x| x == c).expect("base64url") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn b64url_encode(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().fold(0u32, |a, &x| (a << 8) | u32::from(x)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(B64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A token with its bytes changed by `f` (the documented layout: version,
/// id u32, secret 32, inviter key 32, expiry u64, endpoints).
fn altered_token(token: &str, f: impl Fn(&mut Vec<u8>)) -> String {
    let mut b = b64url_decode(token.strip_prefix("cloudy1-").expect("token prefix"));
    f(&mut b);
    format!("cloudy1-{}", b64url_encode(&b))
}

/// `cloudy join TOKEN` run in `node`'s namespace, writing its config,
/// certificate (and reading its key).
fn join(net: &Net, node: &Node, token: &str) -> Run {
    let cert = cert_dir(net, node).join("cert");
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &node.ns])
        .arg(cloudy_bin())
        .arg("-c")
        .arg(&node.conf)
        .args(["join", token, "--key"])
        .arg(&node.key_file)
        .arg("--cert")
        .arg(&cert);
    run_timeout(&mut cmd, Duration::from_secs(20))
}

fn invite(net: &Net, authority: &Node, name: &str, addr: &str) -> String {
    let r = net.cloudy(authority, &["invite", name, addr]);
    assert!(r.ok(), "invite {name}: {r}");
    let token = r.stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        token.starts_with("cloudy1-"),
        "invite printed {:?}",
        r.stdout
    );
    token
}

/// (b) `cloudy invite` on the authority's box and `cloudy join TOKEN` on
/// four new boxes (one behind NAT), which get their certificate and a
/// config listing only the inviter: all five mesh and ping. A token used
/// again by another box, an expired one and a forged one are refused with
/// a clear message, and admit nobody.
#[test]
fn b_invite_and_join() {
    let Some(mut net) = Net::new("b_invite_and_join") else {
        return;
    };
    let lan = net.segment();
    let b1 = net.node("box1", lan);
    let b2 = net.node("box2", lan);
    let b3 = net.node("box3", lan);
    let b4 = net.node("box4", lan);
    let (_router, gw, inner) = net.nat_router("nat", lan);
    let b5 = net.node("box5", inner);
    net.default_route(&b5.ns, gw);
    let thief = net.node("thief", lan);
    authority_init(&net, &b1);
    net.start(&b1);
    let mut tokens = Vec::new();
    for b in [&b2, &b3, &b4, &b5] {
        let token = invite(&net, &b1, &b.name, &format!("{}/24", b.o4()));
        let r = join(&net, b, &token);
        assert!(r.ok(), "{} join: {r}", b.name);
        let conf = fs::read_to_string(&b.conf).expect("joined config");
        assert!(
            conf.contains("option authority") && conf.contains(&b1.public_key),
            "{conf}"
        );
        tokens.push(token);
    }
    for b in [&b2, &b3, &b4, &b5] {
        net.start(b);
    }
    net.wait_mesh(&[&b1, &b2, &b3, &b4, &b5], MESH);
    net.wait_ping(&b5.ns, b3.o4(), PING);
    net.wait_ping(&b2.ns, b5.o4(), PING);

    // Used once already: another box gets "already used".
    let r = join(&net, &thief, &tokens[0]);
    assert!(
        !r.ok() && r.stderr.contains("already used"),
        "reused token: {r}"
    );
    // Expired: refused before any traffic.
    let fresh = invite(&net, &b1, "box6", "10.201.200.66/24");
    let expired = altered_token(&fresh, |b| b[69..77].copy_from_slice(&1u64.to_be_bytes()));
    let r = join(&net, &thief, &expired);
    assert!(
        !r.ok() && r.stderr.contains("expired"),
        "expired token: {r}"
    );
    // Forged: the secret changed.
    let forged = altered_token(&fresh, |b| b[5] ^= 1);
    let r = join(&net, &thief, &forged);
    assert!(
        !r.ok() && r.stderr.contains("does not match"),
        "forged token: {r}"
    );
    // The genuine one still works after the forgery (not burnt).
    let r = join(&net, &thief, &fresh);
    assert!(r.ok(), "genuine token after a forged try: {r}");
    for b in [&b1, &b2, &b3, &b4, &b5] {
        assert!(!lists(&net, b, "thief"), "{} lists the thief", b.name);
    }
}
