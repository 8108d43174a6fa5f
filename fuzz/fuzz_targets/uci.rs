//! Fuzz the UCI reader and the typed config: `config::lexer::parse` and
//! `config::uci::parse_with_default_name` never panic; a file the lexer
//! reads, written again in canonical form (`lexer::emit`, as `uci
//! export`), reads back into the same sections, options and values; an
//! accepted config keeps the invariants the rest of the agent relies on
//! (caps, unique names and keys, valid names, ranges, normalised service
//! types, TXT rules, the store's K <= N, H <= N, quota and path), reads
//! back the same from its canonical form, and
//! differs from itself in nothing (`Config::diff`).
#![no_main]

use cloudy::config::lexer;
use cloudy::config::{uci, Config, Mode, MAX_MTU, MIN_MTU, MIN_STORE_QUOTA};
use cloudy::limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The parser takes text; `load` refuses non-UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = lexer::parse(text) else {
        assert!(uci::parse_with_default_name("fuzz", text, "fuzzhost").is_err());
        return;
    };
    // Quotes escaped as '\'' can make the canonical form longer than the
    // limit the reader enforces; only a form within it is read back.
    let canonical = lexer::emit(&doc, "cloudy");
    let fits = canonical.len() <= limits::MAX_CONFIG_BYTES;
    if fits {
        let again = lexer::parse(&canonical).expect("canonical form reads back");
        assert_eq!(
            again.shape(),
            doc.shape(),
            "canonical form reads differently"
        );
    }

    let Ok(config) = uci::parse_with_default_name("fuzz", text, "fuzzhost") else {
        return;
    };
    if fits {
        let again = uci::parse_with_default_name("fuzz", &canonical, "fuzzhost")
            .expect("canonical form of an accepted config is accepted");
        assert_eq!(again, config, "canonical form gives another config");
    }
    assert!(Config::diff(&config, &config).is_empty());

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

    assert!(agent.mdns_interfaces.len() <= limits::MAX_MDNS_INTERFACES);
    let overlay = match agent.mode {
        Mode::Raw => agent.raw_device.as_deref().unwrap_or_default(),
        Mode::Tap => agent.interface.as_str(),
    };
    for (i, m) in agent.mdns_interfaces.iter().enumerate() {
        assert!(!m.is_empty() && m.len() <= 15);
        assert_ne!(m, overlay, "overlay device listed as mdns_interface");
        assert!(
            !agent.mdns_interfaces[..i].contains(m),
            "duplicate mdns_interface"
        );
    }

    assert!(config.services.len() <= limits::MAX_SERVICES);
    for (i, s) in config.services.iter().enumerate() {
        assert!(uci::is_valid_service_name(&s.name));
        for q in &config.services[..i] {
            assert!(
                !s.name.eq_ignore_ascii_case(&q.name),
                "duplicate service name"
            );
        }
        // Normalised: `_name._tcp|_udp`, lower case, a fixed point.
        assert!(s.service_type.starts_with('_'));
        assert!(s.service_type.ends_with("._tcp") || s.service_type.ends_with("._udp"));
        assert_eq!(s.service_type, s.service_type.to_ascii_lowercase());
        assert_eq!(
            uci::normalize_service_type(&s.service_type).as_deref(),
            Ok(s.service_type.as_str())
        );
        assert!(s.port != 0);
        assert!(s.host.as_deref().is_none_or(uci::is_valid_host_label));
        assert!(s.txt.len() <= limits::MAX_TXT_ENTRIES);
        for (j, t) in s.txt.iter().enumerate() {
            assert!(t.len() <= 255);
            let key = uci::txt_key(t).expect("accepted TXT string has a key");
            for u in &s.txt[..j] {
                let other = uci::txt_key(u).unwrap_or_default();
                assert!(!key.eq_ignore_ascii_case(other), "duplicate TXT key");
            }
        }
    }

    if let Some(s) = &config.store {
        assert!(1 <= s.shares_needed && s.shares_needed <= s.shares_total);
        assert!(usize::from(s.shares_total) <= limits::MAX_SHARES);
        assert!(1 <= s.shares_happy && s.shares_happy <= s.shares_total);
        assert!(s.quota >= MIN_STORE_QUOTA);
        assert!(s.port != 0);
        assert!(!s.enabled || s.path.is_some(), "enabled store without a path");
        if let Some(p) = &s.path {
            let text = p.to_str().expect("a path read from UTF-8 text");
            assert!(text.starts_with('/') && (text == "/" || !text.ends_with('/')));
            assert!(text.len() <= 4095);
        }
    }
});
