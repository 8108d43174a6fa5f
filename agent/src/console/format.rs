//! Output of `cloudy status`, `cloudy peers` and `cloudy search`: aligned
//! text for people, JSON for scripts.
//!
//! JSON is written by a tiny writer instead of serde_json (binary size
//! matters on routers). Strings are escaped as RFC 8259 §7 requires:
//! quotation mark, reverse solidus and the control characters U+0000 to
//! U+001F; Rust strings are UTF-8, so the output is valid UTF-8 JSON
//! (RFC 8259 §8.1). Numbers are unsigned integers; absent values are
//! `null`. Public keys appear in base64, as in the configuration.
//!
//! Text output replaces control characters in names (which may come from
//! other boxes through gossip) with `?`, so a peer cannot send escape
//! sequences to an operator's terminal.

use core::fmt::Write as _;

use super::proto::{DeviceInfo, DiscoveryInfo, Response, ServiceInfo, StatusInfo};
use crate::keys::encode_public;
use crate::overlay::{OverlayStats, PeerInfo};

/// `1536` → `1.5 KiB`; below 1 KiB in plain bytes (`512 B`). One decimal,
/// rounded half up, in binary units up to EiB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let n = u128::from(n);
    let mut div: u128 = 1024;
    for unit in UNITS {
        // Tenths of this unit, rounded; move up when it would print 1024.0.
        let tenths = (n * 10 + div / 2) / div;
        if tenths < 10 * 1024 || unit == "EiB" {
            return format!("{}.{} {unit}", tenths / 10, tenths % 10);
        }
        div *= 1024;
    }
    String::new() // unreachable: the EiB arm always returns
}

/// Microseconds as milliseconds with two decimals, rounded: `1234` → `1.23`.
pub fn rtt_ms(rtt_us: Option<u64>) -> String {
    match rtt_us {
        None => "-".to_string(),
        Some(us) => {
            let hundredths = us / 10 + u64::from(us % 10 >= 5);
            format!("{}.{:02}", hundredths / 100, hundredths % 100)
        }
    }
}

/// A duration in the past, compact: `12s ago`, `4m05s ago`, `3h07m ago`,
/// `2d05h ago`; `-` when unknown.
pub fn ago(secs: Option<u64>) -> String {
    match secs {
        None => "-".to_string(),
        Some(s) => format!("{} ago", duration(s)),
    }
}

/// Seconds, compact: `12s`, `4m05s`, `3h07m`, `2d05h`.
pub fn duration(s: u64) -> String {
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The `cloudy peers` table, one header line and one line per peer,
/// columns separated by two spaces, no trailing blanks.
pub fn peers_table(peers: &[PeerInfo]) -> String {
    const HEADER: [&str; 9] = [
        "NAME",
        "ENDPOINT",
        "STATE",
        "RTT(ms)",
        "HOPS",
        "HANDSHAKE",
        "RX",
        "TX",
        "VIA",
    ];
    let mut rows: Vec<[String; 9]> = Vec::with_capacity(peers.len() + 1);
    rows.push(HEADER.map(str::to_string));
    for p in peers {
        rows.push([
            printable(&p.name),
            p.endpoint
                .map_or_else(|| "-".to_string(), |e| e.to_string()),
            p.state.as_str().to_string(),
            rtt_ms(p.rtt_us),
            if p.hops == 0 {
                "-".to_string()
            } else {
                p.hops.to_string()
            },
            ago(p.last_handshake_secs),
            human_bytes(p.rx_bytes),
            human_bytes(p.tx_bytes),
            p.via.as_deref().map_or_else(|| "-".to_string(), printable),
        ]);
    }
    render(&rows)
}

/// Lines of cells as an aligned table: columns separated by two spaces,
/// no trailing blanks.
fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            if !line.is_empty() {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:<w$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `ADDRESS:PORT` (`[v6]:port`), `-:PORT` when the address is unknown.
fn address_port(s: &ServiceInfo) -> String {
    match s.address {
        Some(a) => std::net::SocketAddr::new(a, s.port).to_string(),
        None => format!("-:{}", s.port),
    }
}

/// The `cloudy search` table: one header line and one line per service.
/// Names and TXT come from the network: control characters show as `?`.
pub fn services_table(services: &[ServiceInfo]) -> String {
    const HEADER: [&str; 7] = [
        "INSTANCE",
        "TYPE",
        "HOST",
        "ADDRESS:PORT",
        "TXT",
        "RTT(ms)",
        "HOPS",
    ];
    let mut rows: Vec<[String; 7]> = Vec::with_capacity(services.len() + 1);
    rows.push(HEADER.map(str::to_string));
    for s in services {
        let txt = if s.txt.is_empty() {
            "-".to_string()
        } else {
            printable(&s.txt.join(" "))
        };
        rows.push([
            printable(&s.instance),
            printable(&s.service_type),
            printable(&s.host),
            address_port(s),
            txt,
            rtt_ms(s.rtt_us),
            if s.rtt_us.is_none() && s.hops == 0 {
                "-".to_string()
            } else {
                s.hops.to_string()
            },
        ]);
    }
    render(&rows)
}

/// `cloudy --json search`: an array of objects, one line.
pub fn services_json(services: &[ServiceInfo]) -> String {
    let mut j = Json::new();
    j.begin('[');
    for s in services {
        j.begin('{');
        j.str("instance", &s.instance);
        j.str("type", &s.service_type);
        j.str("host", &s.host);
        j.opt_str("address", s.address.map(|a| a.to_string()).as_deref());
        j.num("port", u64::from(s.port));
        j.key("txt");
        j.begin('[');
        for t in &s.txt {
            j.sep();
            escape_into(&mut j.out, t);
        }
        j.end(']');
        j.opt_num("rtt_us", s.rtt_us);
        j.num("hops", u64::from(s.hops));
        j.raw("local", if s.local { "true" } else { "false" });
        j.end('}');
    }
    j.end(']');
    j.finish()
}

fn discovery_lines(line: &mut dyn FnMut(&str, String), d: Option<&DiscoveryInfo>) {
    let Some(d) = d else {
        line("discovery", "off".to_string());
        return;
    };
    line(
        "discovery",
        format!(
            "{} on {}",
            printable(&d.host),
            printable(&d.interfaces.join(", "))
        ),
    );
    line(
        "services",
        format!(
            "{} published, {} cached, {} browsing, {} conflicts",
            d.published, d.cached, d.browsing, d.conflicts
        ),
    );
    line(
        "mdns pkts",
        format!(
            "{} received, {} queries sent, {} responses sent, {} goodbyes, {} send errors",
            d.packets_received, d.queries_sent, d.responses_sent, d.goodbyes_sent, d.send_errors
        ),
    );
    line(
        "mdns drops",
        format!(
            "{} malformed, {} off-link, {} rate, {} ignored, {} unknown interface",
            d.dropped_malformed,
            d.dropped_offlink,
            d.dropped_rate,
            d.dropped_ignored,
            d.dropped_unknown_iface
        ),
    );
    line(
        "mdns cache",
        format!(
            "{} evicted, {} refused, {} TTLs capped; unsolicited: {} dropped, {} records refused",
            d.cache_evictions,
            d.cache_refused,
            d.ttl_capped,
            d.dropped_unsolicited,
            d.unsolicited_refused
        ),
    );
}

fn discovery_object(j: &mut Json, d: &DiscoveryInfo) {
    j.begin('{');
    j.str("host", &d.host);
    j.key("interfaces");
    j.begin('[');
    for i in &d.interfaces {
        j.sep();
        escape_into(&mut j.out, i);
    }
    j.end(']');
    j.num("published", u64::from(d.published));
    j.num("cached", u64::from(d.cached));
    j.num("browsing", u64::from(d.browsing));
    j.num("packets_received", d.packets_received);
    j.num("dropped_malformed", d.dropped_malformed);
    j.num("dropped_offlink", d.dropped_offlink);
    j.num("dropped_rate", d.dropped_rate);
    j.num("dropped_ignored", d.dropped_ignored);
    j.num("dropped_unknown_iface", d.dropped_unknown_iface);
    j.num("conflicts", d.conflicts);
    j.num("queries_sent", d.queries_sent);
    j.num("responses_sent", d.responses_sent);
    j.num("goodbyes_sent", d.goodbyes_sent);
    j.num("send_errors", d.send_errors);
    j.num("cache_evictions", d.cache_evictions);
    j.num("cache_refused", d.cache_refused);
    j.num("ttl_capped", d.ttl_capped);
    j.num("dropped_unsolicited", d.dropped_unsolicited);
    j.num("unsolicited_refused", d.unsolicited_refused);
    j.end('}');
}

/// What the CLI prints for a daemon's answer: a table or lines for people,
/// JSON for scripts (`json`). `None` for an answer that is not printed
/// (an error or `busy`, which the CLI handles itself).
pub fn show(answer: &Response, json: bool) -> Option<String> {
    Some(match (answer, json) {
        (Response::Status(s), false) => status_text(s),
        (Response::Status(s), true) => status_json(s),
        (Response::Peers(p), false) => peers_table(p),
        (Response::Peers(p), true) => peers_json(p),
        (Response::Services { services, .. }, false) => services_table(services),
        (Response::Services { services, .. }, true) => services_json(services),
        (Response::PublicKey(k), _) => format!("{}\n", encode_public(k)),
        (Response::Ok(text), _) => format!("{text}\n"),
        (Response::Error(_) | Response::Busy, _) => return None,
    })
}

/// The `cloudy status` text: one `label: value` line per item.
pub fn status_text(s: &StatusInfo) -> String {
    let st = &s.stats;
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{:<13}{}", format!("{label}:"), value);
    };
    line("version", printable(&s.version));
    line("name", printable(&s.name));
    line("cloud", printable(&s.cloud));
    line("public key", encode_public(&s.public_key));
    line(
        "interface",
        format!("{} ({})", printable(&s.interface), printable(&s.mode)),
    );
    line("listen port", s.listen_port.to_string());
    line("uptime", duration(s.uptime_secs));
    line(
        "peers",
        format!(
            "{} configured, {} known, {} up, {} relayed",
            s.peers_configured, s.peers_known, s.peers_up, s.peers_relayed
        ),
    );
    line("mac table", format!("{} entries", s.mac_entries));
    line(
        "packets",
        format!("{} received, {} sent", st.rx_packets, st.tx_packets),
    );
    line(
        "frames",
        format!(
            "{} received, {} sent, {} relayed",
            st.rx_frames, st.tx_frames, st.relayed_frames
        ),
    );
    line(
        "gossip",
        format!("{} entries for non-members ignored", st.gossip_unknown),
    );
    line(
        "handshakes",
        format!(
            "{} completed, cookies {} sent, {} received, {} refused; restart hints {} sent, {} received",
            st.handshakes_completed,
            st.cookies_sent,
            st.cookies_received,
            st.cookies_refused,
            st.hints_sent,
            st.hints_received
        ),
    );
    line(
        "dropped",
        format!(
            "{} malformed, {} unknown key, {} auth, {} replay, {} stale, {} no route, {} oversize",
            st.dropped_malformed,
            st.dropped_unknown_key,
            st.dropped_auth,
            st.dropped_replay,
            st.dropped_stale,
            st.dropped_no_route,
            st.dropped_oversize
        ),
    );
    line(
        "membership",
        format!(
            "{} revoked, {} bad certificates, {} refused (table full)",
            st.dropped_revoked, st.dropped_bad_cert, st.dropped_table_full
        ),
    );
    let d = &s.device;
    line(
        "device",
        format!(
            "offloads {}, {} segmented, {} MSS clamped, {} udp gso refused",
            if d.offload { "on" } else { "off" },
            d.segmented,
            d.mss_clamped,
            d.gso_refused
        ),
    );
    line(
        "dev dropped",
        format!(
            "{} truncated, {} unsegmentable, {} write, {} queue full",
            d.truncated, d.unsegmentable, d.write_drops, d.queue_drops
        ),
    );
    discovery_lines(&mut line, s.discovery.as_ref());
    out
}

/// A minimal JSON writer: values are appended in order, commas inserted
/// between members and elements. The caller nests begin/end correctly
/// (all uses are in this module).
struct Json {
    out: String,
    /// No separator is due before the next value (start of a container, or
    /// right after a key).
    first: bool,
}

impl Json {
    fn new() -> Json {
        Json {
            out: String::new(),
            first: true,
        }
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    fn begin(&mut self, open: char) {
        self.sep();
        self.out.push(open);
        self.first = true;
    }

    fn end(&mut self, close: char) {
        self.out.push(close);
        self.first = false;
    }

    fn key(&mut self, k: &str) {
        self.sep();
        escape_into(&mut self.out, k);
        self.out.push(':');
        self.first = true;
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.sep();
        escape_into(&mut self.out, v);
    }

    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => self.raw(k, "null"),
        }
    }

    fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        self.sep();
        let _ = write!(self.out, "{v}");
    }

    fn opt_num(&mut self, k: &str, v: Option<u64>) {
        match v {
            Some(v) => self.num(k, v),
            None => self.raw(k, "null"),
        }
    }

    fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.sep();
        self.out.push_str(v);
    }

    fn finish(mut self) -> String {
        self.out.push('\n');
        self.out
    }
}

/// Appends `s` as a JSON string (RFC 8259 §7).
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON string literal for `s`, quotes included.
pub fn json_string(s: &str) -> String {
    let mut out = String::new();
    escape_into(&mut out, s);
    out
}

fn peer_object(j: &mut Json, p: &PeerInfo) {
    j.begin('{');
    j.str("name", &p.name);
    j.str("public_key", &encode_public(&p.public_key));
    j.opt_str("endpoint", p.endpoint.map(|e| e.to_string()).as_deref());
    j.str("state", p.state.as_str());
    j.opt_num("rtt_us", p.rtt_us);
    j.num("hops", u64::from(p.hops));
    j.opt_num("last_handshake_secs", p.last_handshake_secs);
    j.num("rx_bytes", p.rx_bytes);
    j.num("tx_bytes", p.tx_bytes);
    j.opt_str("via", p.via.as_deref());
    j.end('}');
}

/// `cloudy --json peers`: an array of objects, one line.
pub fn peers_json(peers: &[PeerInfo]) -> String {
    let mut j = Json::new();
    j.begin('[');
    for p in peers {
        peer_object(&mut j, p);
    }
    j.end(']');
    j.finish()
}

fn stats_object(j: &mut Json, st: &OverlayStats) {
    j.begin('{');
    j.num("rx_packets", st.rx_packets);
    j.num("tx_packets", st.tx_packets);
    j.num("rx_frames", st.rx_frames);
    j.num("tx_frames", st.tx_frames);
    j.num("handshakes_completed", st.handshakes_completed);
    j.num("dropped_malformed", st.dropped_malformed);
    j.num("dropped_unknown_key", st.dropped_unknown_key);
    j.num("dropped_auth", st.dropped_auth);
    j.num("dropped_replay", st.dropped_replay);
    j.num("dropped_stale", st.dropped_stale);
    j.num("cookies_sent", st.cookies_sent);
    j.num("cookies_received", st.cookies_received);
    j.num("cookies_refused", st.cookies_refused);
    j.num("hints_sent", st.hints_sent);
    j.num("hints_received", st.hints_received);
    j.num("dropped_no_route", st.dropped_no_route);
    j.num("relayed_frames", st.relayed_frames);
    j.num("gossip_unknown", st.gossip_unknown);
    j.num("dropped_oversize", st.dropped_oversize);
    j.num("dropped_revoked", st.dropped_revoked);
    j.num("dropped_bad_cert", st.dropped_bad_cert);
    j.num("dropped_table_full", st.dropped_table_full);
    j.end('}');
}

fn device_object(j: &mut Json, d: &DeviceInfo) {
    j.begin('{');
    j.raw("offload", if d.offload { "true" } else { "false" });
    j.num("truncated", d.truncated);
    j.num("unsegmentable", d.unsegmentable);
    j.num("write_drops", d.write_drops);
    j.num("queue_drops", d.queue_drops);
    j.num("mss_clamped", d.mss_clamped);
    j.num("segmented", d.segmented);
    j.num("gso_refused", d.gso_refused);
    j.end('}');
}

/// `cloudy --json status`: one object, one line.
pub fn status_json(s: &StatusInfo) -> String {
    let mut j = Json::new();
    j.begin('{');
    j.str("version", &s.version);
    j.str("name", &s.name);
    j.str("cloud", &s.cloud);
    j.str("public_key", &encode_public(&s.public_key));
    j.str("interface", &s.interface);
    j.str("mode", &s.mode);
    j.num("listen_port", u64::from(s.listen_port));
    j.num("uptime_secs", s.uptime_secs);
    j.num("peers_configured", u64::from(s.peers_configured));
    j.num("peers_known", u64::from(s.peers_known));
    j.num("peers_up", u64::from(s.peers_up));
    j.num("peers_relayed", u64::from(s.peers_relayed));
    j.num("mac_entries", u64::from(s.mac_entries));
    j.key("stats");
    stats_object(&mut j, &s.stats);
    j.key("device");
    device_object(&mut j, &s.device);
    match &s.discovery {
        Some(d) => {
            j.key("discovery");
            discovery_object(&mut j, d);
        }
        None => j.raw("discovery", "null"),
    }
    j.end('}');
    j.finish()
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::overlay::PeerState;

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1_258_291), "1.2 MiB");
        assert_eq!(human_bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(human_bytes(1024 * 1024 - 52), "1023.9 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn rtt_and_ages() {
        assert_eq!(rtt_ms(None), "-");
        assert_eq!(rtt_ms(Some(0)), "0.00");
        assert_eq!(rtt_ms(Some(420)), "0.42");
        assert_eq!(rtt_ms(Some(1234)), "1.23");
        assert_eq!(rtt_ms(Some(1235)), "1.24");
        assert_eq!(rtt_ms(Some(150_000)), "150.00");
        assert_eq!(rtt_ms(Some(u64::MAX)), "18446744073709551.62");
        assert_eq!(ago(None), "-");
        assert_eq!(ago(Some(12)), "12s ago");
        assert_eq!(ago(Some(245)), "4m05s ago");
        assert_eq!(ago(Some(3 * 3600 + 7 * 60)), "3h07m ago");
        assert_eq!(ago(Some(2 * 86_400 + 5 * 3600)), "2d05h ago");
        assert_eq!(duration(u64::MAX), "213503982334601d07h");
    }

    fn peers() -> Vec<PeerInfo> {
        vec![
            PeerInfo {
                name: "box-b".into(),
                public_key: [2; 32],
                endpoint: Some("192.0.2.1:6556".parse().unwrap()),
                state: PeerState::Up,
                rtt_us: Some(1500),
                hops: 1,
                last_handshake_secs: Some(12),
                via: None,
                rx_bytes: 1_258_291,
                tx_bytes: 100,
            },
            PeerInfo {
                name: "~far\u{1b}[31m \"q\" \\ \u{1}".into(),
                public_key: [3; 32],
                endpoint: None,
                state: PeerState::Relayed,
                rtt_us: None,
                hops: 2,
                last_handshake_secs: None,
                via: Some("box-b".into()),
                rx_bytes: 0,
                tx_bytes: 0,
            },
        ]
    }

    fn status() -> StatusInfo {
        StatusInfo {
            version: "0.1.0".into(),
            name: "box-a".into(),
            cloud: "guifi\t\"x\"".into(),
            public_key: [1; 32],
            interface: "cloudy0".into(),
            mode: "tap".into(),
            listen_port: 6556,
            uptime_secs: 3725,
            peers_configured: 2,
            peers_known: 3,
            peers_up: 1,
            peers_relayed: 1,
            mac_entries: 5,
            stats: OverlayStats {
                rx_packets: u64::MAX,
                ..OverlayStats::default()
            },
            device: DeviceInfo {
                offload: true,
                mss_clamped: 7,
                ..DeviceInfo::default()
            },
            discovery: None,
            store: None,
        }
    }

    #[test]
    fn table() {
        let t = peers_table(&peers());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("NAME"));
        assert!(lines[0].contains("ENDPOINT") && lines[0].ends_with("VIA"));
        assert!(lines[1].contains("box-b") && lines[1].contains("192.0.2.1:6556"));
        assert!(
            lines[1].contains("1.50")
                && lines[1].contains("12s ago")
                && lines[1].contains("1.2 MiB")
        );
        assert!(lines[1].contains("100 B") && lines[1].ends_with('-'));
        assert!(lines[2].contains("relayed") && lines[2].ends_with("box-b"));
        assert!(!t.contains('\u{1b}') && !t.contains('\u{1}'));
        // Columns line up: STATE starts at the same offset on every line.
        let col = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[1][col..col + 2], "up");
        assert_eq!(&lines[2][col..col + 7], "relayed");
        assert_eq!(
            peers_table(&[]),
            "NAME  ENDPOINT  STATE  RTT(ms)  HOPS  HANDSHAKE  RX  TX  VIA\n"
        );
    }

    #[test]
    fn status_lines() {
        let t = status_text(&status());
        assert!(t.contains("name:        box-a\n"));
        assert!(t.contains("uptime:      1h02m\n"));
        assert!(t.contains(&format!("public key:  {}\n", encode_public(&[1; 32]))));
        assert!(t.contains("1 relayed\n"));
        assert!(t.contains("0 no route, 0 oversize\n"));
        assert!(
            t.contains("device:      offloads on, 0 segmented, 7 MSS clamped, 0 udp gso refused\n")
        );
        assert!(t.contains("dev dropped: 0 truncated, 0 unsegmentable, 0 write, 0 queue full\n"));
        assert!(!t.contains('\t'));
    }

    #[test]
    fn escaping() {
        assert_eq!(json_string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            json_string("\n\r\t\u{8}\u{c}\u{0}\u{1f}"),
            r#""\n\r\t\b\f\u0000\u001f""#
        );
        assert_eq!(json_string("é €\u{7f}"), "\"é €\u{7f}\"");
    }

    #[test]
    fn json_shapes() {
        assert_eq!(peers_json(&[]), "[]\n");
        let j = peers_json(&peers()[..1]);
        assert!(j.starts_with(r#"[{"name":"box-b","public_key":""#));
        assert!(j.contains(r#""endpoint":"192.0.2.1:6556","state":"up","rtt_us":1500,"hops":1,"#));
        assert!(j.ends_with("\"tx_bytes\":100,\"via\":null}]\n"));
        let s = status_json(&status());
        assert!(s.contains(r#""cloud":"guifi\t\"x\"""#));
        assert!(s.contains(r#""stats":{"rx_packets":18446744073709551615,"#));
        assert!(s.contains("\"relayed_frames\":0,\"gossip_unknown\":0,\"dropped_oversize\":0,\"dropped_revoked\":0,\"dropped_bad_cert\":0,\"dropped_table_full\":0},"));
        assert!(s.ends_with(
            "\"device\":{\"offload\":true,\"truncated\":0,\"unsegmentable\":0,\"write_drops\":0,\
             \"queue_drops\":0,\"mss_clamped\":7,\"segmented\":0,\"gso_refused\":0},\"discovery\":null}\n"
        ));
    }

    /// A strict JSON checker (RFC 8259 grammar), enough to prove validity.
    fn check_json(s: &str) -> Result<(), usize> {
        fn ws(b: &[u8], mut i: usize) -> usize {
            while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                i += 1;
            }
            i
        }
        fn value(b: &[u8], i: usize, depth: u32) -> Result<usize, usize> {
            if depth > 32 {
                return Err(i);
            }
            let i = ws(b, i);
            match b.get(i) {
                Some(b'{') => {
                    let mut i = ws(b, i + 1);
                    if b.get(i) == Some(&b'}') {
                        return Ok(i + 1);
                    }
                    loop {
                        i = string(b, ws(b, i))?;
                        i = ws(b, i);
                        if b.get(i) != Some(&b':') {
                            return Err(i);
                        }
                        i = ws(b, value(b, i + 1, depth + 1)?);
                        match b.get(i) {
                            Some(b',') => i += 1,
                            Some(b'}') => return Ok(i + 1),
                            _ => return Err(i),
                        }
                    }
                }
                Some(b'[') => {
                    let mut i = ws(b, i + 1);
                    if b.get(i) == Some(&b']') {
                        return Ok(i + 1);
                    }
                    loop {
                        i = ws(b, value(b, i, depth + 1)?);
                        match b.get(i) {
                            Some(b',') => i += 1,
                            Some(b']') => return Ok(i + 1),
                            _ => return Err(i),
                        }
                    }
                }
                Some(b'"') => string(b, i),
                Some(b'0'..=b'9') => {
                    let mut j = i;
                    while matches!(b.get(j), Some(b'0'..=b'9')) {
                        j += 1;
                    }
                    if b.get(i) == Some(&b'0') && j > i + 1 {
                        return Err(i);
                    }
                    Ok(j)
                }
                _ if b[i..].starts_with(b"null") => Ok(i + 4),
                _ if b[i..].starts_with(b"true") => Ok(i + 4),
                _ if b[i..].starts_with(b"false") => Ok(i + 5),
                _ => Err(i),
            }
        }
        fn string(b: &[u8], i: usize) -> Result<usize, usize> {
            if b.get(i) != Some(&b'"') {
                return Err(i);
            }
            let mut i = i + 1;
            loop {
                match b.get(i) {
                    Some(b'"') => return Ok(i + 1),
                    Some(b'\\') => match b.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u')
                            if b.get(i + 2..i + 6)
                                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                        {
                            i += 6
                        }
                        _ => return Err(i),
                    },
                    Some(c) if *c < 0x20 => return Err(i),
                    Some(_) => i += 1,
                    None => return Err(i),
                }
            }
        }
        let b = s.as_bytes();
        let end = ws(b, value(b, 0, 0)?);
        if end == b.len() {
            Ok(())
        } else {
            Err(end)
        }
    }

    #[test]
    fn json_is_valid() {
        let mut all = peers();
        all.push(PeerInfo {
            name: (0u8..0x80).map(char::from).collect(),
            ..all[0].clone()
        });
        for doc in [peers_json(&all), peers_json(&[]), status_json(&status())] {
            assert_eq!(check_json(&doc), Ok(()), "{doc}");
        }
        assert!(check_json("{\"a\":\"\u{1}\"}").is_err());
        assert!(check_json("[1,]").is_err());
    }

    fn services() -> Vec<ServiceInfo> {
        vec![
            ServiceInfo {
                instance: "web".into(),
                service_type: "_http._tcp".into(),
                host: "b.c1.local".into(),
                address: Some("10.0.0.2".parse().unwrap()),
                port: 8080,
                txt: vec!["path=/".into(), "v=\"1\"".into()],
                rtt_us: Some(1234),
                hops: 1,
                local: false,
            },
            ServiceInfo {
                instance: "pr\u{1b}nt".into(),
                service_type: "_ipp._tcp".into(),
                host: "x.local".into(),
                address: Some("fe80::1".parse().unwrap()),
                port: 631,
                txt: vec![],
                rtt_us: None,
                hops: 0,
                local: false,
            },
        ]
    }

    #[test]
    fn services_table_and_json() {
        assert_eq!(
            services_table(&services()),
            "INSTANCE  TYPE        HOST        ADDRESS:PORT   TXT           RTT(ms)  HOPS\n\
             web       _http._tcp  b.c1.local  10.0.0.2:8080  path=/ v=\"1\"  1.23     1\n\
             pr?nt     _ipp._tcp   x.local     [fe80::1]:631  -             -        -\n"
        );
        assert_eq!(
            services_table(&[]),
            "INSTANCE  TYPE  HOST  ADDRESS:PORT  TXT  RTT(ms)  HOPS\n"
        );
        let j = services_json(&services());
        assert!(
            j.starts_with(
                "[{\"instance\":\"web\",\"type\":\"_http._tcp\",\"host\":\"b.c1.local\",\
             \"address\":\"10.0.0.2\",\"port\":8080,\"txt\":[\"path=/\",\"v=\\\"1\\\"\"],\
             \"rtt_us\":1234,\"hops\":1,\"local\":false},"
            ),
            "{j}"
        );
        assert!(j.contains("\"txt\":[],\"rtt_us\":null"), "{j}");
        assert_eq!(check_json(&j), Ok(()));
        assert_eq!(services_json(&[]), "[]\n");
        let mut st = status();
        st.discovery = Some(DiscoveryInfo {
            host: "a.c1.local".into(),
            interfaces: vec!["cloudy0".into(), "br-lan".into()],
            published: 2,
            cached: 7,
            ..DiscoveryInfo::default()
        });
        let text = status_text(&st);
        assert!(
            text.contains("discovery:   a.c1.local on cloudy0, br-lan\n"),
            "{text}"
        );
        assert!(text.contains("services:    2 published, 7 cached, 0 browsing, 0 conflicts\n"));
        assert!(
            text.contains("mdns drops:  0 malformed, 0 off-link"),
            "{text}"
        );
        assert!(
            text.contains("mdns cache:  0 evicted, 0 refused, 0 TTLs capped; unsolicited: 0 dropped, 0 records refused\n"),
            "{text}"
        );
        assert_eq!(check_json(&status_json(&st)), Ok(()));
        assert!(status_json(&st).contains("\"discovery\":{\"host\":\"a.c1.local\""));
        assert!(status_json(&st).contains(
            "\"cache_evictions\":0,\"cache_refused\":0,\"ttl_capped\":0,\
             \"dropped_unsolicited\":0,\"unsolicited_refused\":0}"
        ));
        assert!(status_text(&status()).contains("discovery:   off\n"));
        assert!(status_json(&status()).contains("\"discovery\":null}"));
    }

    /// Cross-check with Python's json module when it is installed.
    #[test]
    fn json_parses_with_python() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let doc = format!(
            "[{},{}]",
            peers_json(&peers()).trim_end(),
            status_json(&status()).trim_end()
        );
        let child = Command::new("python3")
            .args([
                "-c",
                "import json,sys; d=json.load(sys.stdin); print(d[0][1]['name'])",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            crate::testutil::skip("json_parses_with_python", "python3 not found");
            return;
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(doc.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "python rejected: {doc}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{}\n", peers()[1].name)
        );
    }
}
