//! Fuzz `config::uci::parse`: never panics, and an accepted config keeps
//! the invariants the rest of the agent relies on (caps, unique names and
//! keys, valid names, ranges).
#![no_main]

use cloudy::config::{uci, Mode, MAX_MTU, MIN_MTU};
use cloudy::limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The parser takes text; `load` refuses non-UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = uci::parse_with_default_name("fuzz", text, "fuzzhost") else {
        return;
    };
    let agent = &config.agent;
    assert!(uci::is_valid_node_name(&agent.name));
    assert!(uci::is_valid_node_name(&agent.cloud));
    assert!(agent.listen_port != 0);
    assert!((MIN_MTU..=MAX_MTU).contains(&agent.mtu));
    assert!(agent.addresses.len() <= limits::MAX_ADDRESSES);
    assert!(!agent.interface.is_empty() && agent.interface.len() <= 15);
    assert!(agent.key_file.is_absolute());
    assert_eq!(agent.mode == Mode::Raw, agent.raw_device.is_some());
    for a in &agent.addresses {
        let max = if a.addr.is_ipv4() { 32 } else { 128 };
        assert!(a.prefix >= 1 && a.prefix <= max);
    }

    assert!(config.peers.len() <= limits::MAX_PEERS);
    for (i, p) in config.peers.iter().enumerate() {
        assert!(uci::is_valid_peer_name(&p.name));
        assert!(p.endpoints.len() <= limits::MAX_ENDPOINTS_PER_PEER);
        for q in &config.peers[..i] {
            assert_ne!(p.name, q.name, "duplicate peer name");
            assert_ne!(p.public_key, q.public_key, "duplicate public key");
        }
    }
});
