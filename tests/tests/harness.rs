//! Self-tests of the namespace harness (root; skip otherwise): LAN, NAT
//! router, capture, and cleanup after success and after a panic. No
//! `cloudy` daemon is involved, so these pass or fail on the machine alone.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use cloudy_tests::*;

fn namespaces_with(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn lan_nat_and_capture() {
    let Some(mut net) = Net::new("lan_nat_and_capture") else {
        return;
    };
    let lan = net.segment();
    let h1 = net.host("h1", lan);
    let h2 = net.host("h2", lan);
    let (router, gw, inner) = net.nat_router("nat", lan);
    let h3 = net.host("h3", inner);
    net.default_route(&h3.ns, gw);
    net.wait_ping(&h1.ns, h2.addr, Duration::from_secs(5));
    net.wait_ping(&h3.ns, h1.addr, Duration::from_secs(5));

    // UDP from behind the NAT arrives from the router's outer address, and
    // the AF_PACKET capture sees it.
    let cap = capture_udp(&h1.ns, "eth0", 7000, Duration::from_secs(3), 1);
    let (from, data) = std::thread::scope(|s| {
        let rx = s.spawn(|| {
            in_netns(&h1.ns, || {
                let sock = UdpSocket::bind("0.0.0.0:7000").expect("bind");
                sock.set_read_timeout(Some(Duration::from_secs(3)))
                    .expect("timeout");
                let mut buf = [0u8; 64];
                let (n, from) = sock
                    .recv_from(&mut buf)
                    .expect("nothing received through the NAT");
                (from, buf[..n].to_vec())
            })
        });
        std::thread::sleep(Duration::from_millis(200));
        in_netns(&h3.ns, || {
            let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
            for _ in 0..5 {
                let _ = sock.send_to(b"hello", SocketAddr::from((h1.addr, 7000)));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        rx.join().expect("receiver")
    });
    assert_eq!(data, b"hello");
    assert_eq!(from.ip(), router.addr, "not masqueraded");
    let seen = cap.join().expect("capture");
    assert_eq!(seen.len(), 1, "capture: {seen:?}");
    assert_eq!(seen[0].src, router.addr);
    assert_eq!(seen[0].payload, b"hello");
    assert_eq!(seen[0].dst, h1.addr);
    assert_ne!(h3.addr, Ipv4Addr::UNSPECIFIED);
}

#[test]
fn cleanup_after_success_and_panic() {
    if skip_unless_root("cleanup_after_success_and_panic") {
        return;
    }
    let (prefix, mut stray) = {
        let mut net = Net::new("cleanup_ok").expect("root");
        let lan = net.segment();
        net.host("x", lan);
        // A stray process in a namespace is killed too.
        let h = net.namespace("y");
        let stray = net.ping_background(&h, "127.0.0.1", 1000, "0.2");
        assert_eq!(namespaces_with(&net.prefix).len(), 3);
        (net.prefix.clone(), stray)
    };
    let st = wait_child(&mut stray, Duration::from_secs(5));
    assert!(
        st.is_some_and(|s| !s.success()),
        "stray process not killed: {st:?}"
    );
    assert!(
        namespaces_with(&prefix).is_empty(),
        "left behind: {:?}",
        namespaces_with(&prefix)
    );

    let made = std::sync::Mutex::new(String::new());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut net = Net::new("cleanup_panic (this panic is expected)").expect("root");
        let lan = net.segment();
        net.host("x", lan);
        *made.lock().expect("lock") = net.prefix.clone();
        panic!("deliberate");
    }));
    assert!(r.is_err());
    let prefix = made.lock().expect("lock").clone();
    assert!(!prefix.is_empty());
    let leftovers = namespaces_with(&prefix);
    // A failed test keeps its files for inspection; this one failed on purpose.
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join("cloudy-tests").join(&prefix));
    assert!(
        leftovers.is_empty(),
        "left behind after panic: {leftovers:?}"
    );
}

#[test]
fn ping_parser() {
    let out = "--- 10.0.0.1 ping statistics ---\n80 packets transmitted, 79 received, 1.25% packet loss, time 7900ms\n";
    assert_eq!(parse_ping(out), Some((80, 79)));
    assert_eq!(parse_ping("garbage"), None);
    let mut r = Rng::new(1);
    assert_ne!(r.next_u64(), r.next_u64());
}
