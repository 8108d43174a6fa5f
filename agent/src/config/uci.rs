//! `/etc/config/cloudy` (OpenWrt UCI) into a typed [`Config`].
//!
//! Two steps. [`super::lexer`] reads the file exactly as libuci does
//! (anonymous sections, repeated options and sections, `list`/`option`
//! mixes, continuations, multi-line quotes, `;`, abbreviated keywords;
//! see its module doc), so cloudy sees what `uci show cloudy` shows. Then
//! each section is read by its type's table in [`super::schema`]: an
//! unknown section type or option, a `list` of a single-valued option, a
//! missing required option and a value cloudy cannot use are errors
//! naming the file, the line and the expected form; errors about
//! something missing point at the section's `config` line.
//!
//! Sections: at most one `config agent` (none = all defaults), at most
//! one `config store` (none = a client only), at most `limits::MAX_PEERS`
//! `config peer` and `limits::MAX_SERVICES` `config service`, named or
//! anonymous. A peer's name is its `option name`, else
//! its section name, else `peer-` and the first 8 characters of its key
//! (base64, `+` and `/` as `-` and `_`: [`super::schema::derived_peer_name`]);
//! names and keys are unique. A service's instance name is its `option
//! name`, else its section name, else its type's service name (`http`
//! for `_http._tcp`); names are unique ignoring case, as DNS compares
//! them. A service's `type` is normalised to `_name._tcp` / `_name._udp`
//! by [`crate::dnssd`]'s rules; its `list txt` strings follow RFC 6763 §6
//! (≤ 255 bytes, non-empty printable-ASCII key before any `=`, keys unique
//! ignoring case). A store section needs `path` unless `enabled '0'`,
//! and `1 <= shares_needed <= shares_total`, `shares_happy <=
//! shares_total` (errors at its `config` line).
//!
//! As libuci: the last `option` of a name wins, `option x ''` changes
//! nothing, a named section given twice is one section. The parser is
//! pure except [`parse`], which reads the host name only when `option
//! name` is absent, and [`load`], which reads the file. Input is bounded
//! by `limits::MAX_CONFIG_BYTES`; nothing panics on input.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::lexer::{self, Document, Section, UciOption};
use super::schema::{
    derived_peer_name, overlay_device, Bad, Kind, Need, OptionSpec, AGENT_OPTIONS, PEER_OPTIONS,
    SECTION_TYPES, SERVICE_OPTIONS, STORE_OPTIONS,
};
use super::{
    AgentConfig, Config, ConfigError, Mode, PeerConfig, ServiceConfig, StoreConfig,
    DEFAULT_AUTHORITY_KEY_FILE, DEFAULT_CERTIFICATE_FILE, DEFAULT_INTERFACE, DEFAULT_KEY_FILE,
    DEFAULT_LISTEN_PORT, DEFAULT_MTU,
};
use crate::limits;
use crate::log::Level;

use super::lexer::show;
pub use super::schema::{
    is_valid_host_label, is_valid_node_name, is_valid_peer_name, parse_bool, txt_key,
};

/// Name used when neither `option name` nor a usable host name exists.
pub const FALLBACK_NODE_NAME: &str = "cloudy";
/// Cloud name when `option cloud` is absent.
pub const DEFAULT_CLOUD: &str = "cloudy";
/// Where [`parse`] reads the default node name.
const HOSTNAME_PATH: &str = "/proc/sys/kernel/hostname";

// ---------------------------------------------------------------- API

/// Parse the text of a config file. `file_name` only labels errors.
/// When `option name` is absent, the node name defaults to the sanitized
/// host name from `/proc/sys/kernel/hostname` (or [`FALLBACK_NODE_NAME`]).
pub fn parse(file_name: &str, text: &str) -> Result<Config, ConfigError> {
    parse_inner(file_name, text, &default_node_name)
}

/// As [`parse`], with the default node name given (sanitized like a host
/// name) instead of read from the system: pure, for tests and fuzzing.
pub fn parse_with_default_name(
    file_name: &str,
    text: &str,
    default_name: &str,
) -> Result<Config, ConfigError> {
    parse_inner(file_name, text, &|| sanitize_node_name(default_name))
}

/// Read and parse a config file; refuses files larger than
/// `limits::MAX_CONFIG_BYTES`. IO problems are errors with line 0.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file_name = path.display().to_string();
    let err = |message: String| ConfigError {
        file: file_name.clone(),
        line: 0,
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let mut buf = Vec::new();
    // One byte over the limit tells "too large" from "exactly the limit".
    file.take(limits::MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if buf.len() > limits::MAX_CONFIG_BYTES {
        return Err(err(lexer::ErrorKind::TooLarge.to_string()));
    }
    let text = match String::from_utf8(buf) {
        Ok(t) => t,
        Err(e) => {
            let bytes = e.as_bytes();
            let good = e.utf8_error().valid_up_to();
            let line = 1 + bytes.iter().take(good).filter(|&&b| b == b'\n').count();
            return Err(ConfigError {
                file: file_name,
                line,
                message: "invalid UTF-8 text".into(),
            });
        }
    };
    parse(&file_name, &text)
}

/// A valid node name from a host name: its first label, other characters
/// replaced by `-`, cut to `limits::MAX_NAME_LEN`; [`FALLBACK_NODE_NAME`]
/// when nothing usable is left.
pub fn sanitize_node_name(raw: &str) -> String {
    let label = raw.trim().split('.').next().unwrap_or("");
    let name: String = label
        .chars()
        .take(limits::MAX_NAME_LEN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.bytes().any(|b| b.is_ascii_alphanumeric()) && is_valid_node_name(&name) {
        name
    } else {
        FALLBACK_NODE_NAME.to_string()
    }
}

fn default_node_name() -> String {
    let mut buf = Vec::new();
    let read = std::fs::File::open(HOSTNAME_PATH)
        .and_then(|f| f.take(256).read_to_end(&mut buf))
        .is_ok();
    if !read {
        return FALLBACK_NODE_NAME.to_string();
    }
    sanitize_node_name(&String::from_utf8_lossy(&buf))
}

/// A service's instance name: as a peer's, 1 to `limits::MAX_NAME_LEN` of
/// `[A-Za-z0-9_-]` (well inside DNS-SD's 63-byte label).
pub fn is_valid_service_name(s: &str) -> bool {
    is_valid_peer_name(s)
}

/// A service type as written in `option type` (or given to `cloudy publish`)
/// in its normalised form: `http` → `_http._tcp`; `_http._tcp`, `_IPP._TCP`,
/// `_ipp._tcp.local` and `_printer._udp` are lower-cased, `.local` dropped.
/// The rules are [`crate::dnssd`]'s (RFC 6763 §7.2 / RFC 6335 §5.1: 1-15
/// letters, digits and '-', at least one letter, no '-' at either end, no
/// "--"), shared with the mDNS engine. The error names the expected form.
pub fn normalize_service_type(s: &str) -> Result<String, String> {
    use crate::dnssd::{parse_type, TypeError, MAX_SERVICE_NAME_LEN};
    parse_type(s).map(|t| t.normalized()).map_err(|e| match e {
        TypeError::MissingProto => format!(
            "a service type like http, _http._tcp or _printer._udp (protocol missing), got {}",
            show(s)
        ),
        TypeError::BadProto => {
            // The label after the service name, as written.
            let proto = s.split('.').nth(1).unwrap_or_default();
            format!(
                "a protocol _tcp or _udp after the service name, got {} in {}",
                show(proto),
                show(s)
            )
        }
        TypeError::Domain => format!(
            "a service type without a domain other than .local, like _http._tcp \
             (.local is implied), got {}",
            show(s)
        ),
        TypeError::BadName(why) => format!(
            "a service type like http, _http._tcp or _printer._udp, whose name has \
             1-{MAX_SERVICE_NAME_LEN} letters, digits or '-', at least one letter, no '-' at \
             either end and no '--' (RFC 6763 §7.2; {why}), got {}",
            show(s)
        ),
    })
}

// ---------------------------------------------------------------- sections

/// An error at a line; the caller adds the file name.
type LineResult<T> = Result<T, (usize, String)>;

fn parse_inner(
    file_name: &str,
    text: &str,
    default_name: &dyn Fn() -> String,
) -> Result<Config, ConfigError> {
    let err = |(line, message): (usize, String)| ConfigError {
        file: file_name.to_string(),
        line,
        message,
    };
    let doc = lexer::parse(text).map_err(|e| err((e.line, e.to_string())))?;
    build(&doc, default_name).map_err(err)
}

/// How errors name a section: `'NAME'`, or `@TYPE[N]` (as `uci show`)
/// for the N-th section of its type when it has no name.
fn label(doc: &Document, index: usize) -> String {
    let Some(s) = doc.sections.get(index) else {
        return String::new();
    };
    match &s.name {
        Some(name) => show(name),
        None => {
            let n = doc.sections[..index]
                .iter()
                .filter(|x| x.ty == s.ty)
                .count();
            format!("@{}[{n}]", s.ty)
        }
    }
}

/// The line of the `i`-th value of option `name` (the section's line if
/// it has none).
fn value_line(s: &Section, name: &str, i: usize) -> usize {
    s.option(name)
        .and_then(|o| o.values.get(i))
        .map_or(s.line, |v| v.line)
}

/// Read a section's options into `target` by its type's table.
fn apply<T>(s: &Section, specs: &[OptionSpec<T>], target: &mut T, label: &str) -> LineResult<()> {
    for o in &s.options {
        let Some(spec) = specs.iter().find(|x| x.name == o.name) else {
            let known: Vec<&str> = specs.iter().map(|x| x.name).collect();
            return Err(unknown_option(s, o, &known));
        };
        if spec.kind == Kind::One && o.is_list {
            return Err(not_a_list(o));
        }
        (spec.set)(target, &o.values).map_err(|b| bad_value(o, b))?;
    }
    for spec in specs {
        if let Need::Required(hint) = spec.need {
            if s.option(spec.name).is_none() {
                return Err(missing(s, label, spec.name, hint));
            }
        }
    }
    Ok(())
}

// The errors of `apply`, apart so that its three copies stay small.

#[cold]
fn unknown_option(s: &Section, o: &UciOption, known: &[&str]) -> (usize, String) {
    (
        o.line,
        format!(
            "unknown option '{}' in config {} (expected one of: {})",
            o.name,
            s.ty,
            known.join(", ")
        ),
    )
}

#[cold]
fn not_a_list(o: &UciOption) -> (usize, String) {
    let line = o
        .values
        .iter()
        .find(|v| v.from_list)
        .map_or(o.line, |v| v.line);
    (
        line,
        format!(
            "{0} takes one value: use option {0} 'VALUE', not list",
            o.name
        ),
    )
}

#[cold]
fn bad_value(o: &UciOption, b: Bad) -> (usize, String) {
    let kw = if b.list { "list" } else { "option" };
    (b.line, format!("{kw} {}: {}", o.name, b.message))
}

#[cold]
fn missing(s: &Section, label: &str, name: &str, hint: &str) -> (usize, String) {
    (
        s.line,
        format!("config {} {label}: missing option {name}{hint}", s.ty),
    )
}

/// A section name used as a peer's or service's name: at most
/// `limits::MAX_NAME_LEN` (libuci checked its characters).
fn section_name(s: &Section) -> LineResult<Option<String>> {
    match &s.name {
        Some(n) if n.len() > limits::MAX_NAME_LEN => Err((
            s.line,
            format!(
                "config {}: expected a name of 1-{} letters, digits or '_', got {}",
                s.ty,
                limits::MAX_NAME_LEN,
                show(n)
            ),
        )),
        n => Ok(n.clone()),
    }
}

fn default_agent(name: String) -> AgentConfig {
    AgentConfig {
        name,
        cloud: DEFAULT_CLOUD.to_string(),
        key_file: PathBuf::from(DEFAULT_KEY_FILE),
        listen_port: DEFAULT_LISTEN_PORT,
        interface: DEFAULT_INTERFACE.to_string(),
        addresses: Vec::new(),
        mtu: DEFAULT_MTU,
        mode: Mode::Tap,
        raw_device: None,
        log_level: Level::Info,
        mdns: true,
        mdns_interfaces: Vec::new(),
        authority: None,
        authority_key_file: PathBuf::from(DEFAULT_AUTHORITY_KEY_FILE),
        certificate_file: PathBuf::from(DEFAULT_CERTIFICATE_FILE),
    }
}

fn agent_section(
    s: &Section,
    label: &str,
    default_name: &dyn Fn() -> String,
) -> LineResult<AgentConfig> {
    let mut a = default_agent(String::new());
    apply(s, AGENT_OPTIONS, &mut a, label)?;
    if s.option("name").is_none() {
        a.name = default_name();
    }
    match (a.mode, &a.raw_device) {
        (Mode::Raw, None) => {
            return Err((
                s.line,
                "config agent: mode 'raw' needs option raw_device (the interface to bridge)".into(),
            ))
        }
        (Mode::Tap, Some(_)) => {
            return Err((
                value_line(s, "raw_device", 0),
                "option raw_device is only used with option mode 'raw'".into(),
            ))
        }
        _ => {}
    }
    // mDNS always runs on the overlay device; listing it again would open
    // a second responder on the same link.
    let overlay = overlay_device(&a);
    if let Some(i) = a.mdns_interfaces.iter().position(|m| m == overlay) {
        return Err((
            value_line(s, "mdns_interface", i),
            format!(
                "mdns_interface {} is the overlay device, where mDNS always runs; \
                 list only other interfaces",
                show(overlay)
            ),
        ));
    }
    Ok(a)
}

fn peer_section(s: &Section, label: &str) -> LineResult<PeerConfig> {
    let named = if s.option("name").is_none() {
        section_name(s)?
    } else {
        None
    };
    let mut p = PeerConfig {
        name: String::new(),
        public_key: [0; 32],
        endpoints: Vec::new(),
    };
    apply(s, PEER_OPTIONS, &mut p, label)?;
    if s.option("name").is_none() {
        p.name = named.unwrap_or_else(|| derived_peer_name(&p.public_key));
    }
    Ok(p)
}

fn service_section(s: &Section, label: &str) -> LineResult<ServiceConfig> {
    let named = if s.option("name").is_none() {
        section_name(s)?
    } else {
        None
    };
    let mut svc = ServiceConfig {
        name: String::new(),
        service_type: String::new(),
        port: 0,
        txt: Vec::new(),
        host: None,
    };
    apply(s, SERVICE_OPTIONS, &mut svc, label)?;
    if s.option("name").is_none() {
        // `_http._tcp` → `http`: a valid name (RFC 6335 service names are
        // 1-15 of [a-z0-9-] once normalised).
        let from_type = || {
            let t = svc.service_type.trim_start_matches('_');
            t.split('.').next().unwrap_or(t).to_string()
        };
        svc.name = named.unwrap_or_else(from_type);
    }
    Ok(svc)
}

fn store_section(s: &Section, label: &str) -> LineResult<StoreConfig> {
    let mut st = StoreConfig::section_defaults();
    apply(s, STORE_OPTIONS, &mut st, label)?;
    let at = |message: String| Err((s.line, format!("config store {label}: {message}")));
    if st.enabled && st.path.is_none() {
        return at(
            "missing option path (the directory that keeps the shares, like \
             /mnt/sda1/cloudy; or option enabled '0' for a box that only puts and gets)"
                .into(),
        );
    }
    let (k, n, h) = (st.shares_needed, st.shares_total, st.shares_happy);
    if k > n {
        return at(format!(
            "shares_needed {k} is more than shares_total {n} \
             (K of the N shares rebuild a file: 1 <= K <= N <= {})",
            limits::MAX_SHARES
        ));
    }
    if h > n {
        return at(format!(
            "shares_happy {h} is more than shares_total {n} \
             (a put places N shares on at least H boxes: H <= N)"
        ));
    }
    Ok(st)
}

fn peer_unique(peers: &[(PeerConfig, usize, usize)], name: &str, line: usize) -> LineResult<()> {
    match peers.iter().find(|(q, ..)| q.name == name) {
        Some((_, first, _)) => Err((
            line,
            format!("duplicate peer name {} (first at line {first})", show(name)),
        )),
        None => Ok(()),
    }
}

fn service_unique(services: &[(ServiceConfig, usize)], name: &str, line: usize) -> LineResult<()> {
    match services
        .iter()
        .find(|(x, _)| x.name.eq_ignore_ascii_case(name))
    {
        Some((first, first_line)) => Err((
            line,
            format!(
                "duplicate service name {} (first at line {first_line} as {}; \
                 DNS compares names ignoring case)",
                show(name),
                show(&first.name)
            ),
        )),
        None => Ok(()),
    }
}

/// The typed config of a document.
fn build(doc: &Document, default_name: &dyn Fn() -> String) -> LineResult<Config> {
    let mut agent: Option<(AgentConfig, usize)> = None;
    let mut store: Option<(StoreConfig, usize)> = None;
    // With their `config` lines, and the peers' public_key lines.
    let mut peers: Vec<(PeerConfig, usize, usize)> = Vec::new();
    let mut services: Vec<(ServiceConfig, usize)> = Vec::new();
    for (i, s) in doc.sections.iter().enumerate() {
        let label = label(doc, i);
        match s.ty.as_str() {
            "agent" => {
                if let Some((_, first)) = &agent {
                    return Err((
                        s.line,
                        format!("only one config agent section is allowed (first at line {first})"),
                    ));
                }
                agent = Some((agent_section(s, &label, default_name)?, s.line));
            }
            "store" => {
                if let Some((_, first)) = &store {
                    return Err((
                        s.line,
                        format!("only one config store section is allowed (first at line {first})"),
                    ));
                }
                store = Some((store_section(s, &label)?, s.line));
            }
            "peer" => {
                if peers.len() >= limits::MAX_PEERS {
                    return Err((
                        s.line,
                        format!(
                            "too many peers: at most {} (limits::MAX_PEERS)",
                            limits::MAX_PEERS
                        ),
                    ));
                }
                // A name known before the options is checked first.
                if let Some(name) = s.name.as_ref().filter(|_| s.option("name").is_none()) {
                    peer_unique(&peers, name, s.line)?;
                }
                let p = peer_section(s, &label)?;
                let key_line = value_line(s, "public_key", 0);
                if let Some((other, _, line)) =
                    peers.iter().find(|(q, ..)| q.public_key == p.public_key)
                {
                    return Err((
                        key_line,
                        format!(
                            "option public_key: same key as peer {} (line {line})",
                            show(&other.name)
                        ),
                    ));
                }
                peer_unique(&peers, &p.name, s.line)?;
                peers.push((p, s.line, key_line));
            }
            "service" => {
                if services.len() >= limits::MAX_SERVICES {
                    return Err((
                        s.line,
                        format!(
                            "too many services: at most {} (limits::MAX_SERVICES)",
                            limits::MAX_SERVICES
                        ),
                    ));
                }
                if let Some(name) = s.name.as_ref().filter(|_| s.option("name").is_none()) {
                    service_unique(&services, name, s.line)?;
                }
                let svc = service_section(s, &label)?;
                service_unique(&services, &svc.name, s.line)?;
                services.push((svc, s.line));
            }
            other => {
                return Err((
                    s.line,
                    format!(
                        "unknown section type {} (expected one of: {})",
                        show(other),
                        SECTION_TYPES.join(", ")
                    ),
                ))
            }
        }
    }
    Ok(Config {
        agent: agent.map_or_else(|| default_agent(default_name()), |(a, _)| a),
        peers: peers.into_iter().map(|(p, ..)| p).collect(),
        services: services.into_iter().map(|(s, _)| s).collect(),
        store: store.map(|(s, _)| s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{schema, Endpoint, IpCidr, DEFAULT_STORE_QUOTA};
    use crate::keys::encode_public;
    use std::net::SocketAddr;

    fn key(i: u8) -> String {
        encode_public(&[i; 32])
    }

    fn ok(text: &str) -> Config {
        match parse_with_default_name("test", text, "testhost") {
            Ok(c) => c,
            Err(e) => panic!("unexpected error: {e}\n--- text:\n{text}"),
        }
    }

    /// Parse must fail at `line` with a message containing `needle`.
    fn fails(text: &str, line: usize, needle: &str) -> ConfigError {
        let e = match parse_with_default_name("test", text, "testhost") {
            Ok(c) => panic!("accepted: {c:?}\n--- text:\n{text}"),
            Err(e) => e,
        };
        assert_eq!(e.line, line, "wrong line for {e}\n--- text:\n{text}");
        assert!(e.message.contains(needle), "{e:?} lacks {needle:?}");
        assert_eq!(e.file, "test");
        e
    }

    fn v4(a: [u8; 4], port: u16) -> Endpoint {
        Endpoint::Addr(SocketAddr::from((a, port)))
    }

    #[test]
    fn full_file() {
        let text = format!(
            "# cloudy config\n\
             config agent 'main'\n\
             \toption name 'box-1'   # this box\n\
             \toption cloud \"plaza\"\n\
             \toption key_file /etc/cloudy/key2\n\
             \toption listen_port '7000'\n\
             \toption interface 'cl0'\n\
             \tlist address '10.9.0.1/24'\n\
             \tlist address 'fd00:9::1/64'\n\
             \toption mtu 1400\n\
             \toption mode 'raw'\n\
             \toption raw_device 'br-lan'\n\
             \toption log_level 'debug'\n\
             \n\
             config peer 'box_2'\n\
             \toption public_key '{}'\n\
             \tlist endpoint '192.0.2.7:6556'\n\
             \tlist endpoint '[2001:db8::7]:6556'\n\
             \tlist endpoint 'Box-2.Example.net:6557'\n\
             \n\
             config peer 'box3'\n\
             \toption public_key '{}'\n",
            key(2),
            key(3)
        );
        let c = ok(&text);
        let a = &c.agent;
        assert_eq!(a.name, "box-1");
        assert_eq!(a.cloud, "plaza");
        assert_eq!(a.key_file, PathBuf::from("/etc/cloudy/key2"));
        assert_eq!(a.listen_port, 7000);
        assert_eq!(a.interface, "cl0");
        assert_eq!(
            a.addresses,
            vec![
                IpCidr {
                    addr: "10.9.0.1".parse().unwrap(),
                    prefix: 24
                },
                IpCidr {
                    addr: "fd00:9::1".parse().unwrap(),
                    prefix: 64
                }
            ]
        );
        assert_eq!(a.mtu, 1400);
        assert_eq!(a.mode, Mode::Raw);
        assert_eq!(a.raw_device.as_deref(), Some("br-lan"));
        assert_eq!(a.log_level, Level::Debug);
        assert_eq!(c.peers.len(), 2);
        let p = &c.peers[0];
        assert_eq!(p.name, "box_2");
        assert_eq!(p.public_key, [2; 32]);
        assert_eq!(
            p.endpoints,
            vec![
                v4([192, 0, 2, 7], 6556),
                Endpoint::Addr("[2001:db8::7]:6556".parse().unwrap()),
                Endpoint::Host("box-2.example.net".into(), 6557),
            ]
        );
        assert_eq!(c.peers[1].name, "box3");
        assert!(c.peers[1].endpoints.is_empty());
    }

    #[test]
    fn canonical_uci_commit_form() {
        // What `uci commit` writes: leading blank line, tabs, single quotes.
        let text = format!(
            "\nconfig agent\n\toption name 'node7'\n\tlist address '10.0.0.7/16'\n\
             \toption mode 'tap'\n\nconfig peer 'node8'\n\toption public_key '{}'\n\
             \tlist endpoint 'node8.lan:6556'\n\n",
            key(8)
        );
        let c = ok(&text);
        assert_eq!(c.agent.name, "node7");
        assert_eq!(c.agent.addresses.len(), 1);
        assert_eq!(
            c.peers[0].endpoints,
            vec![Endpoint::Host("node8.lan".into(), 6556)]
        );
        // `uci export` adds a package line.
        let exported = format!("package cloudy\n{text}");
        assert_eq!(ok(&exported), c);
    }

    #[test]
    fn defaults() {
        for text in [
            "",
            "\n\n",
            "# nothing\n  # indented comment\n",
            "config agent\n",
            "config agent 'x'",
        ] {
            let c = ok(text);
            assert_eq!(c.agent.name, "testhost", "{text:?}");
            assert_eq!(c.agent.cloud, DEFAULT_CLOUD);
            assert_eq!(c.agent.key_file, PathBuf::from(DEFAULT_KEY_FILE));
            assert_eq!(c.agent.listen_port, DEFAULT_LISTEN_PORT);
            assert_eq!(c.agent.interface, DEFAULT_INTERFACE);
            assert!(c.agent.addresses.is_empty());
            assert_eq!(c.agent.mtu, DEFAULT_MTU);
            assert_eq!(c.agent.mode, Mode::Tap);
            assert_eq!(c.agent.raw_device, None);
            assert_eq!(c.agent.log_level, Level::Info);
            assert!(c.agent.mdns);
            assert!(c.agent.mdns_interfaces.is_empty());
            assert!(c.peers.is_empty());
            assert!(c.services.is_empty());
        }
        // The system default name is valid whatever the host is called.
        let c = parse("test", "").unwrap();
        assert!(is_valid_node_name(&c.agent.name), "{}", c.agent.name);
        // An unusable default becomes the fallback.
        let c = parse_with_default_name("t", "", "___").unwrap();
        assert_eq!(c.agent.name, FALLBACK_NODE_NAME);
    }

    #[test]
    fn quoting_and_escapes() {
        let cases = [
            (r"option key_file '/etc/it'\''s key'", "/etc/it's key"),
            (r#"option key_file "/etc/a\"b\\c""#, r#"/etc/a"b\c"#),
            (r"option key_file /etc/a\ b", "/etc/a b"),
            (r#"option key_file '/etc/'"x"y"#, "/etc/xy"),
            (
                "option key_file '/etc/#not a comment'",
                "/etc/#not a comment",
            ),
            ("option key_file \"/etc/semi;colon\"", "/etc/semi;colon"),
            ("option key_file '/k' # comment", "/k"),
            ("option key_file '/k'\t#comment", "/k"),
            ("option key_file '/k'\r", "/k"),
            ("  \t option\tkey_file\t\t/k  ", "/k"),
            // libuci: '#' cuts a bare word and ends the line after a quote.
            ("option key_file '/k'#c", "/k"),
            ("option key_file /k#c d", "/k"),
            // A trailing backslash joins the next line; quotes span lines.
            ("option key_file /a\\\nb", "/ab"),
            ("option key_file \"/a\\\nb\"", "/ab"),
            ("option key_file /a\\", "/a"),
            // `;` separates statements; abbreviated keywords.
            ("option key_file '/a' ; o mtu 1400", "/a"),
            ("o key_file /k", "/k"),
        ];
        for (line, want) in cases {
            let c = ok(&format!("config agent\n{line}\n"));
            assert_eq!(c.agent.key_file, PathBuf::from(want), "{line}");
        }
    }

    #[test]
    fn syntax_errors() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "config agent\n option name 'abc\n",
                2,
                "unterminated ' quote",
            ),
            (
                "config agent\n option name \"abc\n",
                2,
                "unterminated \" quote",
            ),
            (
                "config agent\n option name \"ab\\",
                2,
                "unterminated \" quote",
            ),
            (
                "config agent\n option name a;b\n",
                2,
                "';' right after an unquoted word: uci ignores the rest of the line ('b')",
            ),
            ("config agent\n option\n", 2, "expected a name and a value"),
            (
                "config agent\n list address\n",
                2,
                "list address: expected an address with prefix length like 10.0.0.1/24 or \
                 fd00::1/64, got ''",
            ),
            (
                "config agent\n 'option' name x\n",
                2,
                "unknown statement ''option'' (expected config, option or list; keywords are not quoted)",
            ),
            (
                "config agent\n\toption name \\\n\tbox\n",
                3,
                "unexpected 'box' after the value of option name",
            ),
            ("package 'a.b'\n", 1, "package: invalid name 'a.b'"),
            (
                "config agent\n option name my box\n",
                2,
                "unexpected 'box' after the value of option name",
            ),
            (
                "config agent x y\n",
                1,
                "unexpected 'y' after the section name",
            ),
            ("config\n", 1, "expected a section type"),
            (
                "\n\nfoo bar\n",
                3,
                "unknown statement 'foo' (expected config, option or list)",
            ),
            (
                "config agent\n option 'na-me' x\n",
                2,
                "invalid option name 'na-me'",
            ),
            ("option name x\n", 1, "option name outside a section"),
        ];
        for (text, line, needle) in cases {
            fails(text, *line, needle);
        }
        // What libuci accepts and the old parser refused.
        assert_eq!(ok("config agent\n option name ab\\\n").agent.name, "ab");
        assert_eq!(ok("config agent\n option name box#1\n").agent.name, "box");
        assert_eq!(ok("config agent\n option name\n").agent.name, "testhost");
        assert_eq!(ok("config agent\n option name ''\n").agent.name, "testhost");
        assert_eq!(ok("package other\nconfig agent\n").agent.name, "testhost");
        assert_eq!(
            ok("config agent\npackage cloudy\n\toption name x\n")
                .agent
                .name,
            "x"
        );
    }

    #[test]
    fn section_errors() {
        fails(
            "config agent\nconfig foo\n",
            2,
            "unknown section type 'foo' (expected one of: agent, peer, service, store)",
        );
        fails("config 'a-b'\n", 1, "unknown section type 'a-b'");
        fails("config 'a b'\n", 1, "config: invalid section type 'a b'");
        fails(
            "config peer 'a'\n\toption public_key x\nconfig agent 'a'\n",
            3,
            "config agent 'a': that name is a config peer section (line 1)",
        );
        fails(
            "config agent\n\nconfig agent\n",
            3,
            "only one config agent section is allowed (first at line 1)",
        );
        fails(
            "config agent 'a-b'\n",
            1,
            "config agent: invalid section name 'a-b' (letters, digits and '_' only)",
        );
        fails(
            "config agent 'main'\nconfig agent\n",
            2,
            "only one config agent section is allowed (first at line 1)",
        );
        fails(
            "config peer\n",
            1,
            "config peer @peer[0]: missing option public_key",
        );
        fails(
            &format!("config peer '{}'\n", "a".repeat(33)),
            1,
            "expected a name of 1-32",
        );
        // Missing public_key points at the config line, also at end of file.
        fails(
            "\nconfig peer 'p'\n\tlist endpoint '1.2.3.4:5'\n",
            2,
            "config peer 'p': missing option public_key",
        );
        fails(
            "config peer 'p'\n\tlist endpoint '1.2.3.4:5'\nconfig agent\n",
            1,
            "missing option public_key",
        );
        fails(
            "config agent\n\toption mode raw\n",
            1,
            "mode 'raw' needs option raw_device",
        );
        fails(
            "config agent\n\toption raw_device eth0\n\toption mode tap\n",
            2,
            "raw_device is only used with option mode 'raw'",
        );
        fails(
            "config agent\n\toption raw_device eth0\n",
            2,
            "only used with option mode 'raw'",
        );
    }

    #[test]
    fn option_errors() {
        let e = fails(
            "config agent\n\toption foo 1\n",
            2,
            "unknown option 'foo' in config agent",
        );
        assert_eq!(
            e.message,
            "unknown option 'foo' in config agent (expected one of: name, cloud, key_file, \
             listen_port, interface, address, mtu, mode, raw_device, log_level, mdns, \
             mdns_interface, authority, certificate_file, authority_key_file)"
        );
        fails(
            &format!(
                "config peer p\n\toption public_key {}\n\toption foo x\n",
                key(1)
            ),
            3,
            "unknown option 'foo' in config peer (expected one of: name, public_key, endpoint)",
        );
        // libuci: the last value wins.
        let c = ok("config agent\n\toption mtu 1400\n\toption mtu 1300\n");
        assert_eq!(c.agent.mtu, 1300);
        fails(
            "config agent\n\tlist mtu 1400\n",
            2,
            "mtu takes one value: use option mtu 'VALUE', not list",
        );
        // A `list` after an `option` extends it; an `option` replaces a list.
        fails(
            "config agent\n\toption mtu 1400\n\tlist mtu 1300\n",
            3,
            "mtu takes one value",
        );
        let c = ok("config agent\n\tlist mtu 1400\n\toption mtu 1300\n");
        assert_eq!(c.agent.mtu, 1300);
        let c = ok("config agent\n\toption address 10.0.0.1/8\n\toption address 10.0.0.2/8\n");
        assert_eq!(c.agent.addresses.len(), 1);
        assert_eq!(c.agent.addresses[0].to_string(), "10.0.0.2/8");
        let c = ok(&format!(
            "config peer p\n\toption public_key {}\n\toption public_key {}\n",
            key(1),
            key(2)
        ));
        assert_eq!(c.peers[0].public_key, [2; 32]);
        // A bad value replaced by a good one is never read.
        assert_eq!(
            ok("config agent\n\toption mtu 1\n\toption mtu 1400\n")
                .agent
                .mtu,
            1400
        );
    }

    #[test]
    fn value_errors() {
        let bad: &[(&str, &str)] = &[
            (
                "option listen_port abc",
                "option listen_port: expected a port number 1-65535, got 'abc'",
            ),
            (
                "option listen_port 0",
                "expected a port number 1-65535, got '0'",
            ),
            ("option listen_port 65536", "expected a port number 1-65535"),
            ("option listen_port +80", "expected a port number 1-65535"),
            (
                "option name 'a b'",
                "option name: expected 1-32 letters, digits or '-', got 'a b'",
            ),
            ("option cloud 'x_y'", "option cloud: expected 1-32 letters"),
            (
                "option key_file etc/key",
                "option key_file: expected an absolute file path",
            ),
            (
                "option key_file /etc/dir/",
                "expected an absolute file path",
            ),
            (
                "option key_file \"/etc/a\tb\"",
                "expected an absolute file path",
            ),
            (
                "option interface 'this-is-too-long'",
                "option interface: expected an interface name of 1-15",
            ),
            ("option interface 'a/b'", "expected an interface name"),
            ("option interface '..'", "expected an interface name"),
            (
                "option mtu 575",
                "option mtu: expected an MTU 576-1500, got '575'",
            ),
            ("option mtu 1501", "expected an MTU 576-1500"),
            ("option mtu 99999999999", "expected an MTU 576-1500"),
            (
                "option mode tun",
                "option mode: expected one of: tap, raw, got 'tun'",
            ),
            (
                "option log_level verbose",
                "option log_level: expected one of: error, warn, info, debug",
            ),
            ("option name \"\\\u{1}x\"", "got '\\u{1}x'"),
            ("option name 'a\nb'", "got 'a\\nb'"),
        ];
        for (line, needle) in bad {
            fails(&format!("config agent\n\t{line}\n"), 2, needle);
        }
        // Long junk is cut in the message.
        let long = "x".repeat(1000);
        let e = fails(&format!("config agent\noption mode {long}\n"), 2, "...'");
        assert!(e.message.len() < 200, "{}", e.message);
    }

    #[test]
    fn cidr_validation() {
        let good = [
            ("10.0.0.1/24", 24),
            ("10.0.0.1/32", 32),
            ("10.0.0.1/1", 1),
            ("fd00::1/64", 64),
            ("fd00::1/128", 128),
            ("::ffff:10.0.0.1/96", 96),
        ];
        for (s, prefix) in good {
            let c = ok(&format!("config agent\n\tlist address '{s}'\n"));
            assert_eq!(c.agent.addresses[0].prefix, prefix, "{s}");
            assert_eq!(c.agent.addresses[0].to_string(), s);
        }
        let bad = [
            (
                "10.0.0.1",
                "expected an address with prefix length like 10.0.0.1/24 or fd00::1/64",
            ),
            (
                "10.0.0.1/33",
                "expected a prefix length 1-32 for IPv4, got '10.0.0.1/33'",
            ),
            ("10.0.0.1/0", "prefix length 1-32 for IPv4"),
            ("10.0.0.1/", "prefix length 1-32 for IPv4"),
            ("10.0.0.1/-1", "prefix length 1-32 for IPv4"),
            ("10.0.0.1/024x", "prefix length 1-32 for IPv4"),
            ("fd00::1/129", "expected a prefix length 1-128 for IPv6"),
            ("fd00::1/64/1", "prefix length 1-128 for IPv6"),
            ("10.0.0.256/24", "expected an address with prefix length"),
            ("010.0.0.1/24", "expected an address with prefix length"),
            ("fd00::1%eth0/64", "expected an address with prefix length"),
            ("/24", "expected an address with prefix length"),
            ("0.0.0.0/8", "expected a unicast address"),
            ("224.0.0.1/24", "expected a unicast address"),
            ("255.255.255.255/32", "expected a unicast address"),
            ("::/64", "expected a unicast address"),
            ("ff02::1/64", "expected a unicast address"),
        ];
        for (s, needle) in bad {
            let e = fails(&format!("config agent\n\tlist address '{s}'\n"), 2, needle);
            assert!(e.message.starts_with("list address: "), "{e}");
        }
        fails(
            "config agent\n\toption address 10.0.0.1\n",
            2,
            "option address: expected an address",
        );
        // Option and list combine; duplicates and the cap are refused.
        let c = ok("config agent\n\toption address 10.0.0.1/8\n\tlist address fd00::1/64\n");
        assert_eq!(c.agent.addresses.len(), 2);
        fails(
            "config agent\n\tlist address 10.0.0.1/8\n\tlist address 10.0.0.1/16\n",
            3,
            "list address: 10.0.0.1 given twice (first at line 2)",
        );
        let mut text = String::from("config agent\n");
        for i in 1..=limits::MAX_ADDRESSES + 1 {
            text.push_str(&format!("\tlist address '10.0.0.{i}/24'\n"));
        }
        fails(
            &text,
            limits::MAX_ADDRESSES + 2,
            "too many addresses, at most 4",
        );
    }

    #[test]
    fn endpoints() {
        let good: &[(&str, Endpoint)] = &[
            ("1.2.3.4:6556", v4([1, 2, 3, 4], 6556)),
            (
                "[fd00::1]:1",
                Endpoint::Addr("[fd00::1]:1".parse().unwrap()),
            ),
            (
                "[::ffff:1.2.3.4]:65535",
                Endpoint::Addr("[::ffff:1.2.3.4]:65535".parse().unwrap()),
            ),
            (
                "[2001:db8::1:2:3]:80",
                Endpoint::Addr("[2001:db8::1:2:3]:80".parse().unwrap()),
            ),
            ("host:80", Endpoint::Host("host".into(), 80)),
            ("a-b.c1.d:80", Endpoint::Host("a-b.c1.d".into(), 80)),
            ("1box.net:80", Endpoint::Host("1box.net".into(), 80)),
        ];
        for (s, want) in good {
            let c = ok(&format!(
                "config peer p\n\toption public_key {}\n\tlist endpoint '{s}'\n",
                key(1)
            ));
            assert_eq!(&c.peers[0].endpoints[0], want, "{s}");
        }
        let bad: &[(&str, &str)] = &[
            (
                "fd00::1:80",
                "IPv6 endpoints need brackets, like [fd00::1]:6556",
            ),
            (
                "[fd00::1]80",
                "expected host:port, a.b.c.d:port or [v6]:port",
            ),
            ("[fd00::1]", "expected host:port"),
            ("[1.2.3.4]:80", "expected host:port"),
            ("[fd00::1]:0", "expected a port number 1-65535 after ':'"),
            ("[fd00::1]:", "expected a port number"),
            ("1.2.3.4", "expected host:port"),
            ("1.2.3.4:", "expected a port number"),
            ("1.2.3.4:70000", "expected a port number"),
            ("1.2.3.256:80", "expected host:port"),
            ("1.2.3:80", "expected host:port"),
            ("-host:80", "expected host:port"),
            ("host-:80", "expected host:port"),
            ("a..b:80", "expected host:port"),
            ("a_b:80", "expected host:port"),
            (":80", "expected host:port"),
            ("host.:80", "expected host:port"),
        ];
        for (s, needle) in bad {
            let e = fails(
                &format!(
                    "config peer p\n\toption public_key {}\n\tlist endpoint '{s}'\n",
                    key(1)
                ),
                3,
                needle,
            );
            assert!(e.message.starts_with("list endpoint: "), "{e}");
        }
        let long_label = format!("{}.net:80", "a".repeat(64));
        fails(
            &format!(
                "config peer p\n\toption public_key {}\n\tlist endpoint {long_label}\n",
                key(1)
            ),
            3,
            "expected host:port",
        );
        // Option once, duplicates, cap.
        let c = ok(&format!(
            "config peer p\n\toption public_key {}\n\toption endpoint 1.1.1.1:1\n\
             \toption endpoint 1.1.1.1:2\n",
            key(1)
        ));
        assert_eq!(c.peers[0].endpoints, vec![v4([1, 1, 1, 1], 2)]);
        fails(
            "config peer p\n\tlist endpoint 1.1.1.1:1\n\tlist endpoint 1.1.1.1:1\n",
            3,
            "list endpoint: 1.1.1.1:1 given twice (first at line 2)",
        );
        let mut text = format!("config peer p\n\toption public_key {}\n", key(1));
        for i in 1..=limits::MAX_ENDPOINTS_PER_PEER + 1 {
            text.push_str(&format!("\tlist endpoint '10.0.0.{i}:1'\n"));
        }
        fails(
            &text,
            limits::MAX_ENDPOINTS_PER_PEER + 3,
            "too many endpoints, at most 4",
        );
    }

    #[test]
    fn public_keys() {
        fails(
            "config peer p\n\toption public_key 'abc'\n",
            2,
            "option public_key: expected a public key: 44 characters of base64 encoding 32 bytes (as WireGuard), got 'abc'",
        );
        // 43 characters, wrong padding, a bad character.
        let k = key(5);
        for bad in [
            &k[..43],
            &format!("{}==", &k[..42]),
            &format!("{}!=", &k[..42]),
        ] {
            fails(
                &format!("config peer p\n\toption public_key '{bad}'\n"),
                2,
                "expected a public key",
            );
        }
        fails(
            &format!(
                "config peer a\n\toption public_key {}\nconfig peer b\n\toption public_key {}\n",
                key(1),
                key(1)
            ),
            4,
            "option public_key: same key as peer 'a' (line 2)",
        );
    }

    #[test]
    fn peer_names_and_cap() {
        // libuci merges a section given twice: one peer, the last key.
        let c = ok(&format!(
            "config peer a\n\toption public_key {}\n\nconfig peer a\n\toption public_key {}\n\
             \tlist endpoint 1.2.3.4:5\n",
            key(1),
            key(2)
        ));
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.peers[0].public_key, [2; 32]);
        assert_eq!(c.peers[0].endpoints.len(), 1);
        fails(
            &format!(
                "config peer a\n\toption public_key {}\n\nconfig peer\n\toption name a\n\
                 \toption public_key {}\n",
                key(1),
                key(2)
            ),
            4,
            "duplicate peer name 'a' (first at line 1)",
        );
        let mut text = String::new();
        for i in 0..limits::MAX_PEERS {
            text.push_str(&format!(
                "config peer 'p{i}'\n\toption public_key '{}'\n",
                key(i as u8)
            ));
        }
        let c = ok(&text);
        assert_eq!(c.peers.len(), limits::MAX_PEERS);
        assert_eq!(c.peers[7].name, "p7");
        assert_eq!(c.peers[7].public_key, [7; 32]);
        text.push_str(&format!(
            "config peer 'extra'\n\toption public_key '{}'\n",
            key(250)
        ));
        fails(
            &text,
            2 * limits::MAX_PEERS + 1,
            "too many peers: at most 64",
        );
    }

    fn svc(c: &Config, name: &str) -> ServiceConfig {
        match c.services.iter().find(|s| s.name == name) {
            Some(s) => s.clone(),
            None => panic!("no service {name} in {c:?}"),
        }
    }

    #[test]
    fn full_file_with_discovery() {
        let text = format!(
            "config agent 'main'\n\
             \toption name 'box-1'\n\
             \toption mdns 'yes'\n\
             \tlist mdns_interface 'br-lan'\n\
             \tlist mdns_interface 'wlan0.1'\n\
             \n\
             config service 'web'\n\
             \toption type 'http'\n\
             \toption port '80'\n\
             \tlist txt 'path=/'\n\
             \tlist txt 'txtvers=1'\n\
             \tlist txt 'secure'   # a boolean attribute\n\
             \n\
             config peer 'box2'\n\
             \toption public_key '{}'\n\
             \n\
             config service 'Printer_2'\n\
             \toption type '_IPP._TCP'\n\
             \toption port 631\n\
             \toption host 'printer-box'\n\
             \toption txt 'note=Hall = left'\n\
             \n\
             config service 'syslog'\n\
             \toption port '514'\n\
             \toption type '_syslog._udp'\n",
            key(2)
        );
        let c = ok(&text);
        assert!(c.agent.mdns);
        assert_eq!(c.agent.mdns_interfaces, vec!["br-lan", "wlan0.1"]);
        assert_eq!(c.peers.len(), 1);
        assert_eq!(
            c.services,
            vec![
                ServiceConfig {
                    name: "web".into(),
                    service_type: "_http._tcp".into(),
                    port: 80,
                    txt: vec!["path=/".into(), "txtvers=1".into(), "secure".into()],
                    host: None,
                },
                ServiceConfig {
                    name: "Printer_2".into(),
                    service_type: "_ipp._tcp".into(),
                    port: 631,
                    txt: vec!["note=Hall = left".into()],
                    host: Some("printer-box".into()),
                },
                ServiceConfig {
                    name: "syslog".into(),
                    service_type: "_syslog._udp".into(),
                    port: 514,
                    txt: vec![],
                    host: None,
                },
            ]
        );
        for off in ["0", "no", "off", "false", "disabled"] {
            let c = ok(&format!("config agent\n\toption mdns '{off}'\n"));
            assert!(!c.agent.mdns, "{off}");
        }
        // The seed of the fuzz corpus is a valid file.
        let seed = include_str!("../../../fuzz/corpus/uci/services");
        let c = ok(seed);
        assert_eq!(c.services.len(), 3);
        assert_eq!(c.agent.mdns_interfaces, vec!["br-lan", "wlan0"]);
    }

    #[test]
    fn canonical_uci_commit_form_with_services() {
        // As `uci commit` writes it after `uci add_list` / `uci set`.
        let text = "\nconfig agent\n\toption name 'node7'\n\toption mdns '1'\n\
                    \tlist mdns_interface 'br-lan'\n\nconfig service 'files'\n\
                    \toption type '_webdav._tcp'\n\toption port '8080'\n\
                    \tlist txt 'path=/dav'\n\tlist txt 'u=guest'\n\
                    \toption host 'nas'\n\n";
        let c = ok(text);
        assert_eq!(c.agent.mdns_interfaces, vec!["br-lan"]);
        let s = svc(&c, "files");
        assert_eq!(s.service_type, "_webdav._tcp");
        assert_eq!(s.port, 8080);
        assert_eq!(s.txt, vec!["path=/dav", "u=guest"]);
        assert_eq!(s.host.as_deref(), Some("nas"));
        assert_eq!(ok(&format!("package cloudy\n{text}")), c);
        // A quote inside a TXT value, as `uci commit` writes it.
        let c = ok(r"config service s
	option type http
	option port 1
	list txt 'say=it'\''s'
");
        assert_eq!(svc(&c, "s").txt, vec!["say=it's"]);
    }

    #[test]
    fn service_type_normalisation() {
        let good = [
            ("http", "_http._tcp"),
            ("_http._tcp", "_http._tcp"),
            ("_printer._udp", "_printer._udp"),
            ("HTTP", "_http._tcp"),
            ("_Http._TCP", "_http._tcp"),
            ("_ipp._tcp", "_ipp._tcp"),
            ("x", "_x._tcp"),
            ("_x._udp", "_x._udp"),
            ("a-b-c", "_a-b-c._tcp"),
            ("9p2000", "_9p2000._tcp"),
            ("abcdefghijklmno", "_abcdefghijklmno._tcp"),
            ("_http._tcp.local", "_http._tcp"),
            ("_Http._Tcp.LOCAL.", "_http._tcp"),
        ];
        for (input, want) in good {
            assert_eq!(
                normalize_service_type(input).as_deref(),
                Ok(want),
                "{input}"
            );
            // Normalised forms are fixed points.
            assert_eq!(normalize_service_type(want).as_deref(), Ok(want));
            let c = ok(&format!(
                "config service s\n\toption type '{input}'\n\toption port 1\n"
            ));
            assert_eq!(svc(&c, "s").service_type, want);
        }
        let bad: &[(&str, &str)] = &[
            ("", "whose name has 1-15"),
            ("abcdefghijklmnop", "whose name has 1-15"),
            ("_abcdefghijklmnop._tcp", "whose name has 1-15"),
            ("123", "at least one letter"),
            ("-http", "no '-' at either end"),
            ("http-", "no '-' at either end"),
            ("ht--tp", "no '--'"),
            ("ht_tp", "a service type like http"),
            ("ht.tp", "a service type like http"),
            ("http._tcp", "a service type like http"),
            ("_http", "(protocol missing), got '_http'"),
            (
                "_http._sctp",
                "a protocol _tcp or _udp after the service name, got '_sctp'",
            ),
            ("_http.tcp", "a protocol _tcp or _udp"),
            ("_http._tcp.", "without a domain"),
            ("_http._tcp.example", "without a domain other than .local"),
            ("__http._tcp", "whose name has"),
            ("_._tcp", "whose name has"),
            ("_sub._http._tcp", "a protocol _tcp or _udp"),
            ("htt\u{e9}", "a service type like http"),
            // Once accepted by the mDNS engine, never by the config.
            ("_123._tcp", "the service name has no letter"),
            ("_a--b._tcp", "the service name has '--'"),
        ];
        for (input, needle) in bad {
            let e = match normalize_service_type(input) {
                Ok(t) => panic!("{input} accepted as {t}"),
                Err(e) => e,
            };
            assert!(e.contains(needle), "{input}: {e}");
            if input.is_empty() {
                continue; // `option type ''` is no option at all (libuci)
            }
            let e = fails(
                &format!("config service s\n\toption port 1\n\toption type '{input}'\n"),
                3,
                needle,
            );
            assert!(e.message.starts_with("option type: expected "), "{e}");
        }
    }

    #[test]
    fn txt_rules() {
        let base = "config service s\n\toption type http\n\toption port 1\n";
        let good = [
            "k=v",
            "k",
            "k=",
            "a=b=c",
            "longkeyname12=v",
            "with space=v",
            "k=caf\u{e9}",
            r#"~!@#$%^&*()_+{}|:"<>?=x"#,
        ];
        for t in good {
            let quoted = t.replace('\\', "\\\\").replace('"', "\\\"");
            let c = ok(&format!("{base}\tlist txt \"{quoted}\"\n"));
            assert_eq!(svc(&c, "s").txt, vec![t.to_string()], "{t}");
        }
        // 255 bytes pass, 256 do not.
        let max = format!("k={}", "v".repeat(253));
        let c = ok(&format!("{base}\tlist txt '{max}'\n"));
        assert_eq!(svc(&c, "s").txt, vec![max.clone()]);
        fails(
            &format!("{base}\tlist txt '{max}v'\n"),
            4,
            "...', 256 bytes",
        );
        for t in ["=v", "", "k\u{e9}=v", "k=a\tb", "\t=v", "k=\u{7f}"] {
            let e = fails(
                &format!("{base}\tlist txt \"{t}\"\n"),
                4,
                "list txt: expected KEY=VALUE or KEY (RFC 6763 §6)",
            );
            assert!(e.message.contains("at most 255 bytes"), "{e}");
        }
        // Duplicate keys, also of different case or as a boolean attribute.
        fails(
            &format!("{base}\tlist txt 'path=/'\n\tlist txt 'x=1'\n\tlist txt 'PATH=/b'\n"),
            6,
            "list txt: key 'PATH' given twice (first at line 4; keys are compared ignoring case",
        );
        fails(
            &format!("{base}\tlist txt 'secure'\n\tlist txt 'secure=1'\n"),
            5,
            "key 'secure' given twice (first at line 4",
        );
        // `option txt` once, then list.
        let c = ok(&format!("{base}\toption txt 'a=1'\n\tlist txt 'b=2'\n"));
        assert_eq!(svc(&c, "s").txt, vec!["a=1", "b=2"]);
        let c = ok(&format!("{base}\toption txt 'a=1'\n\toption txt 'b=2'\n"));
        assert_eq!(svc(&c, "s").txt, vec!["b=2"]);
        // Cap.
        let mut text = base.to_string();
        for i in 0..limits::MAX_TXT_ENTRIES {
            text.push_str(&format!("\tlist txt 'k{i}=v'\n"));
        }
        assert_eq!(svc(&ok(&text), "s").txt.len(), limits::MAX_TXT_ENTRIES);
        text.push_str("\tlist txt 'extra=1'\n");
        fails(
            &text,
            limits::MAX_TXT_ENTRIES + 4,
            "list txt: too many TXT strings, at most 16 (limits::MAX_TXT_ENTRIES)",
        );
        assert_eq!(txt_key("a=b=c"), Some("a"));
        assert_eq!(txt_key("flag"), Some("flag"));
        assert_eq!(txt_key("=x"), None);
    }

    #[test]
    fn service_errors() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "config service\n",
                1,
                "config service @service[0]: missing option type (like http or _http._tcp)",
            ),
            (
                "config service 'my web'\n",
                1,
                "config service: invalid section name 'my web' (letters, digits and '_' only)",
            ),
            ("config service 'a-b'\n", 1, "invalid section name 'a-b'"),
            (
                "\nconfig service 'web'\n\toption port 80\n",
                2,
                "config service 'web': missing option type (like http or _http._tcp)",
            ),
            (
                "config service 'web'\n\toption type http\nconfig agent\n",
                1,
                "config service 'web': missing option port",
            ),
            (
                "config service s\n\toption type http\n\toption port 0\n",
                3,
                "option port: expected a port number 1-65535, got '0'",
            ),
            (
                "config service s\n\toption type http\n\toption port 65536\n",
                3,
                "expected a port number 1-65535",
            ),

            (
                "config service s\n\tlist port 1\n",
                2,
                "port takes one value: use option port 'VALUE', not list",
            ),
            ("config service s\n\tlist type http\n", 2, "type takes one value"),

            (
                "config service s\n\toption host 'a.b'\n",
                2,
                "option host: expected a host label of 1-63 letters, digits or '-', no '-' at either end (default: this node), got 'a.b'",
            ),
            ("config service s\n\toption host '-a'\n", 2, "expected a host label"),
            ("config service s\n\toption host 'a-'\n", 2, "expected a host label"),
            ("config service s\n\toption host 'a_b'\n", 2, "expected a host label"),
            ("config service s\n\tlist host 'a'\n", 2, "host takes one value"),
        ];
        for (text, line, needle) in cases {
            fails(text, *line, needle);
        }
        let e = fails(
            "config service s\n\toption foo x\n",
            2,
            "unknown option 'foo' in config service",
        );
        assert_eq!(
            e.message,
            "unknown option 'foo' in config service (expected one of: name, type, port, txt, host)"
        );
        // The last value wins (libuci).
        let c = ok("config service s\n\toption type http\n\toption type ftp\n\
                    \toption port 1\n\toption port 2\n\toption host a\n\toption host b\n");
        let s = svc(&c, "s");
        assert_eq!((s.service_type.as_str(), s.port), ("_ftp._tcp", 2));
        assert_eq!(s.host.as_deref(), Some("b"));
        let long_host = "h".repeat(63);
        let c = ok(&format!(
            "config service s\n\toption type http\n\toption port 1\n\toption host '{long_host}'\n"
        ));
        assert_eq!(svc(&c, "s").host, Some(long_host.clone()));
        fails(
            &format!("config service s\n\toption host '{long_host}h'\n"),
            2,
            "expected a host label",
        );
        // Names unique ignoring case (DNS does), 32 characters at most.
        fails(
            "config service web\n\toption type http\n\toption port 1\nconfig service WEB\n",
            4,
            "duplicate service name 'WEB' (first at line 1 as 'web'; DNS compares names ignoring case)",
        );
        let n32 = "n".repeat(32);
        let c = ok(&format!(
            "config service {n32}\n\toption type http\n\toption port 1\n"
        ));
        assert_eq!(c.services[0].name, n32);
        fails(
            &format!("config service {n32}n\n"),
            1,
            "expected a name of 1-32",
        );
    }

    #[test]
    fn service_cap() {
        let mut text = String::new();
        for i in 0..limits::MAX_SERVICES {
            text.push_str(&format!(
                "config service 's{i}'\n\toption type 'http'\n\toption port '{}'\n",
                i + 1
            ));
        }
        let c = ok(&text);
        assert_eq!(c.services.len(), limits::MAX_SERVICES);
        assert_eq!(c.services[5].name, "s5");
        assert_eq!(c.services[5].port, 6);
        text.push_str("config service 'extra'\n");
        fails(
            &text,
            3 * limits::MAX_SERVICES + 1,
            "too many services: at most 32 (limits::MAX_SERVICES)",
        );
    }

    #[test]
    fn mdns_agent_options() {
        fails(
            "config agent\n\toption mdns 2\n",
            2,
            "option mdns: expected a boolean: 1/0, yes/no, on/off, true/false or enabled/disabled, got '2'",
        );
        assert!(
            !ok("config agent\n\toption mdns 1\n\toption mdns 0\n")
                .agent
                .mdns
        );
        fails("config agent\n\tlist mdns 1\n", 2, "mdns takes one value");
        fails(
            "config agent\n\tlist mdns_interface 'a/b'\n",
            2,
            "list mdns_interface: expected an interface name of 1-15 letters, digits, '_', '.' or '-', got 'a/b'",
        );
        fails(
            "config agent\n\tlist mdns_interface 'this-is-too-long'\n",
            2,
            "expected an interface name",
        );
        fails(
            "config agent\n\tlist mdns_interface eth0\n\tlist mdns_interface eth1\n\
             \tlist mdns_interface eth0\n",
            4,
            "list mdns_interface: 'eth0' given twice (first at line 2)",
        );
        let c = ok("config agent\n\toption mdns_interface eth0\n\toption mdns_interface eth1\n");
        assert_eq!(c.agent.mdns_interfaces, vec!["eth1"]);
        let c = ok("config agent\n\toption mdns_interface eth0\n\tlist mdns_interface eth1\n");
        assert_eq!(c.agent.mdns_interfaces, vec!["eth0", "eth1"]);
        let mut text = String::from("config agent\n");
        for i in 0..limits::MAX_MDNS_INTERFACES {
            text.push_str(&format!("\tlist mdns_interface 'eth{i}'\n"));
        }
        assert_eq!(
            ok(&text).agent.mdns_interfaces.len(),
            limits::MAX_MDNS_INTERFACES
        );
        text.push_str("\tlist mdns_interface 'wlan0'\n");
        fails(
            &text,
            limits::MAX_MDNS_INTERFACES + 2,
            "list mdns_interface: too many interfaces, at most 4 (limits::MAX_MDNS_INTERFACES)",
        );
        // The overlay device itself is refused: default, named, raw.
        fails(
            "config agent\n\tlist mdns_interface 'cloudy0'\n",
            2,
            "mdns_interface 'cloudy0' is the overlay device, where mDNS always runs",
        );
        fails(
            "config agent\n\tlist mdns_interface 'cl0'\n\toption interface 'cl0'\n",
            2,
            "is the overlay device",
        );
        fails(
            "config agent\n\toption mode raw\n\toption raw_device br-lan\n\
             \tlist mdns_interface br-lan\n",
            4,
            "'br-lan' is the overlay device",
        );
        // In raw mode the TAP name is unused, so it may be listed.
        let c = ok(
            "config agent\n\toption mode raw\n\toption raw_device br-lan\n\
                    \tlist mdns_interface cloudy0\n",
        );
        assert_eq!(c.agent.mdns_interfaces, vec!["cloudy0"]);
    }

    #[test]
    fn anonymous_sections() {
        let text = format!(
            "config agent\n\toption name 'box-1'\n\
             config peer\n\toption name 'box-2'\n\toption public_key '{}'\n\
             config peer\n\toption public_key '{}'\n\
             config peer 'box_4'\n\toption name 'box-4'\n\toption public_key '{}'\n\
             config service\n\toption type '_http._tcp'\n\toption port 80\n\
             config service\n\toption name 'files'\n\toption type webdav\n\toption port 8080\n",
            key(2),
            key(3),
            key(4)
        );
        let c = ok(&text);
        assert_eq!(c.agent.name, "box-1");
        let peers: Vec<_> = c.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(peers, ["box-2", "peer-AwMDAwMD", "box-4"]);
        let services: Vec<_> = c.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(services, ["http", "files"]);
        // Errors name an anonymous section as `uci show` does.
        fails(
            &format!("config peer\n\toption public_key {}\nconfig peer\n", key(1)),
            3,
            "config peer @peer[1]: missing option public_key",
        );
        fails(
            &format!(
                "config peer\n\toption public_key {}\nconfig peer\n\toption public_key {}\n",
                key(1),
                key(1)
            ),
            4,
            "option public_key: same key as peer 'peer-AQEBAQEB' (line 2)",
        );
        fails(
            "config service\n\toption type http\n\toption port 1\n\
             config service\n\toption type _HTTP._tcp\n\toption port 2\n",
            4,
            "duplicate service name 'http' (first at line 1 as 'http'",
        );
        fails(
            &format!(
                "config peer\n\toption name 'a b'\n\toption public_key {}\n",
                key(1)
            ),
            2,
            "option name: expected 1-32 letters, digits, '_' or '-', got 'a b'",
        );
        // `option name` stands in for a section name too long to be one.
        let long = "x".repeat(40);
        let c = ok(&format!(
            "config peer {long}\n\toption name ok\n\toption public_key {}\n",
            key(1)
        ));
        assert_eq!(c.peers[0].name, "ok");
        fails(
            &format!("config peer {long}\n\toption public_key {}\n", key(1)),
            1,
            "config peer: expected a name of 1-32 letters, digits or '_'",
        );
        // Two agent sections, one anonymous.
        fails(
            "config agent\nconfig agent 'x'\n",
            2,
            "only one config agent section is allowed (first at line 1)",
        );
    }

    #[test]
    fn libuci_grammar_reaches_the_typed_config() {
        let text = format!(
            "package cloudy\n\
             c agent 'main' ; o name 'box-1'\n\
             config peer 'a'\n\toption public_key '{}'\n\
             config agent 'main'\n\tlist address 10.0.0.1/24 # first\n\
             \tlist address \\\n10.0.0.2/24\n\
             config peer 'a'\n\tlist endpoint '192.0.2.1:1'\n\toption endpoint '192.0.2.2:2'\n\
             \tlist endpoint \"192.0.2.3:3\"\n",
            key(1)
        );
        let c = ok(&text);
        assert_eq!(c.agent.name, "box-1");
        let addrs: Vec<String> = c.agent.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(addrs, ["10.0.0.1/24", "10.0.0.2/24"]);
        assert_eq!(c.peers.len(), 1);
        assert_eq!(
            c.peers[0].endpoints,
            vec![v4([192, 0, 2, 2], 2), v4([192, 0, 2, 3], 3)]
        );
        // A value spread over lines is refused at the line it starts on.
        fails(
            "config agent\n\toption name 'box\n1'\n",
            2,
            "option name: expected 1-32 letters, digits or '-', got 'box\\n1'",
        );
    }

    /// The libuci fixtures (tests/fixtures/uci) as cloudy configs: what
    /// libuci refuses we refuse, and the real configs among them read as
    /// cloudy configs with the values `uci show` printed.
    #[test]
    fn libuci_fixtures_as_configs() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/uci");
        let read = |name: &str| {
            std::fs::read_to_string(format!("{dir}/{name}.uci"))
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let mut refused = 0;
        for entry in std::fs::read_dir(dir)
            .expect("tests/fixtures/uci")
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "error") {
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                assert!(
                    parse_with_default_name(name, &read(name), "h").is_err(),
                    "{name}: accepted"
                );
                refused += 1;
            }
        }
        assert!(refused >= 40, "{refused}");

        let c = ok(&read("feed_default"));
        assert_eq!(
            (c.agent.cloud.as_str(), c.agent.mode),
            ("cloudy", Mode::Tap)
        );
        assert_eq!(c.agent.name, "testhost");
        assert_eq!(ok(&read("feed_log_warn")).agent.log_level, Level::Warn);
        let c = ok(&read("readme_raw"));
        assert_eq!(c.agent.raw_device.as_deref(), Some("eth1"));
        let c = ok(&read("full"));
        assert_eq!(c.agent.name, "box-1");
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.services[1].service_type, "_ipp._tcp");
        let c = ok(&read("uci_commit_form"));
        assert_eq!(svc(&c, "files").txt, vec!["path=/dav", "say=it's"]);
        let c = ok(&read("luci_anonymous"));
        let peers: Vec<_> = c.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(peers, ["box2", "peer-AwMDAwMD"]);
        assert_eq!(svc(&c, "web").port, 80);
        let c = ok(&read("anonymous"));
        let peers: Vec<_> = c.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(peers, ["peer-AQEBAQEB", "box3", "peer-AgICAgIC"]);
        let c = ok(&read("section_merge"));
        assert_eq!(
            (c.agent.name.as_str(), c.agent.cloud.as_str()),
            ("n1", "c1")
        );
        assert_eq!(c.peers[0].endpoints, vec![v4([192, 0, 2, 1], 1)]);
        let c = ok(&read("anon_peer_option_name"));
        assert_eq!(c.peers[0].name, "box-2");
        // The issue's store section (comments after values), a client's
        // put parameters, a named store given twice (merged), two stores.
        let c = ok(&read("store_issue"));
        assert_eq!(
            store(&c),
            StoreConfig {
                enabled: true,
                path: Some(PathBuf::from("/mnt/sda1/cloudy")),
                quota: 2 << 30,
                shares_needed: 3,
                shares_total: 10,
                shares_happy: 7,
                port: limits::STORE_PORT,
            }
        );
        let s = store(&ok(&read("store_client")));
        assert!(!s.enabled && s.path.is_none());
        assert_eq!((s.shares_needed, s.shares_total, s.shares_happy), (2, 4, 3));
        let s = store(&ok(&read("store_merge")));
        assert_eq!(s.path, Some(PathBuf::from("/mnt/sda1/cloudy")));
        assert_eq!((s.quota, s.port), (1 << 30, 7557));
        fails(
            &read("store_twice"),
            4,
            "only one config store section is allowed (first at line 1)",
        );
        // The README's example keeps its placeholder key: refused there.
        fails(
            &read("readme_quickstart"),
            10,
            "option public_key: expected a public key",
        );
    }

    fn store(c: &Config) -> StoreConfig {
        match &c.store {
            Some(s) => s.clone(),
            None => panic!("no store in {c:?}"),
        }
    }

    #[test]
    fn store_section_every_option() {
        let text = "config agent\n\toption name 'box-1'\n\n\
                    config store 'disk'\n\
                    \toption enabled '1'\n\
                    \toption path '/mnt/sda1/cloudy'    # a USB disk\n\
                    \toption quota '2G'\n\
                    \toption shares_needed '3'\n\
                    \toption shares_total '10'\n\
                    \toption shares_happy '7'\n\
                    \toption port '7557'\n";
        let c = ok(text);
        assert_eq!(
            store(&c),
            StoreConfig {
                enabled: true,
                path: Some(PathBuf::from("/mnt/sda1/cloudy")),
                quota: 2 << 30,
                shares_needed: 3,
                shares_total: 10,
                shares_happy: 7,
                port: 7557,
            }
        );
        assert_eq!(c.agent.name, "box-1");
        // Anonymous, and in `uci commit` form, reads the same.
        let anon = text.replace("config store 'disk'", "config store");
        assert_eq!(ok(&anon), c);
        let committed = "\nconfig agent\n\toption name 'box-1'\n\nconfig store\n\
                         \toption path '/mnt/sda1/cloudy'\n\toption quota '2G'\n\
                         \toption port '7557'\n\n";
        assert_eq!(ok(committed), c);
        // The seed of the fuzz corpus is a valid file.
        let seed = ok(include_str!("../../../fuzz/corpus/uci/store"));
        assert_eq!(store(&seed).shares_total, 5);
    }

    #[test]
    fn store_defaults() {
        let c = ok("config store\n\toption path /srv/cloudy\n");
        assert_eq!(
            store(&c),
            StoreConfig {
                enabled: true,
                path: Some(PathBuf::from("/srv/cloudy")),
                quota: DEFAULT_STORE_QUOTA,
                shares_needed: 3,
                shares_total: 10,
                shares_happy: 7,
                port: limits::STORE_PORT,
            }
        );
        assert_eq!(DEFAULT_STORE_QUOTA, 1 << 30);
        // Without a section: none, a client only.
        assert_eq!(ok("config agent\n").store, None);
        // A client that sets its puts' parameters: no path needed.
        for off in ["0", "no", "off", "false", "disabled"] {
            let c = ok(&format!(
                "config store\n\toption enabled '{off}'\n\toption shares_needed 2\n\
                 \toption shares_total 4\n\toption shares_happy 3\n"
            ));
            let s = store(&c);
            assert!(!s.enabled && s.path.is_none(), "{off}");
            assert_eq!((s.shares_needed, s.shares_total, s.shares_happy), (2, 4, 3));
        }
        // A path is kept when off (turning the store on is one option).
        let s = store(&ok(
            "config store\n\toption enabled 0\n\toption path /srv/c\n",
        ));
        assert_eq!(s.path, Some(PathBuf::from("/srv/c")));
        assert_eq!(s.serving_path(), None);
        // Trailing '/' dropped; the last value wins (libuci).
        for (path, want) in [
            ("/mnt/sda1/cloudy/", "/mnt/sda1/cloudy"),
            ("/mnt//", "/mnt"),
            ("/", "/"),
            ("//", "/"),
            ("/a b/it's", "/a b/it's"),
        ] {
            let quoted = path.replace('\'', r"'\''");
            let c = ok(&format!("config store\n\toption path '{quoted}'\n"));
            assert_eq!(store(&c).path, Some(PathBuf::from(want)), "{path}");
        }
        let c = ok(
            "config store\n\toption path /a\n\toption path /b\n\toption quota 5M\n\
                    \toption quota 6M\n",
        );
        assert_eq!(store(&c).path, Some(PathBuf::from("/b")));
        assert_eq!(store(&c).quota, 6 << 20);
        let long = format!("/{}", "d".repeat(4094));
        assert_eq!(
            store(&ok(&format!("config store\n\toption path '{long}'\n"))).path,
            Some(PathBuf::from(&long))
        );
        // Extremes of the share counts.
        let s = store(&ok(
            "config store\n\toption enabled 0\n\toption shares_needed 1\n\
                           \toption shares_total 1\n\toption shares_happy 1\n",
        ));
        assert_eq!((s.shares_needed, s.shares_total, s.shares_happy), (1, 1, 1));
        let s = store(&ok(
            "config store\n\toption enabled 0\n\toption shares_needed 64\n\
                           \toption shares_total 64\n\toption shares_happy 64\n",
        ));
        assert_eq!(
            (s.shares_needed, s.shares_total, s.shares_happy),
            (64, 64, 64)
        );
        // H below K is allowed (docs/store.md: 1 <= H <= N).
        let s = store(&ok(
            "config store\n\toption enabled 0\n\toption shares_happy 1\n",
        ));
        assert_eq!((s.shares_needed, s.shares_happy), (3, 1));
    }

    /// Plain bytes and K/M/G/T (powers of 1024), any case, an optional B
    /// or iB; no fractions (the error gives the whole form), at least 1M.
    #[test]
    fn store_quota_sizes() {
        let good: &[(&str, u64)] = &[
            ("2G", 2 << 30),
            ("512M", 512 << 20),
            ("1048576", 1 << 20),
            ("1048576B", 1 << 20),
            ("1024K", 1 << 20),
            ("1024k", 1 << 20),
            ("1024KiB", 1 << 20),
            ("1M", 1 << 20),
            ("2g", 2 << 30),
            ("2gb", 2 << 30),
            ("2GB", 2 << 30),
            ("2GiB", 2 << 30),
            ("2gib", 2 << 30),
            ("1T", 1 << 40),
            ("1tb", 1 << 40),
            ("1536M", 1536 << 20),
            ("0001M", 1 << 20),
            ("16777215T", 16_777_215 << 40),
            ("18446744073709551615", u64::MAX),
        ];
        for (q, want) in good {
            let c = ok(&format!(
                "config store\n\toption path /s\n\toption quota '{q}'\n"
            ));
            assert_eq!(store(&c).quota, *want, "{q}");
        }
        let form = "option quota: expected a size like 2G, 512M or 1048576 (bytes, or K, M, G, T: \
                    powers of 1024)";
        let bad: &[(&str, &str)] = &[
            ("1.5G", ", got '1.5G': no fractions, write 1536M"),
            ("0.5g", "no fractions, write 512M"),
            ("1.0G", "no fractions, write 1G"),
            ("2.25M", "no fractions, write 2304K"),
            ("1.1G", ", got '1.1G'"),
            ("2 G", ", got '2 G'"),
            (" 2G", ", got ' 2G'"),
            ("G", ", got 'G'"),
            ("2P", ", got '2P'"),
            ("2iB", ", got '2iB'"),
            ("2Gi", ", got '2Gi'"),
            ("2GBB", ", got '2GBB'"),
            ("-2G", ", got '-2G'"),
            ("+2G", ", got '+2G'"),
            ("0x10M", ", got '0x10M'"),
            ("2\u{e9}", ", got '2\u{e9}'"),
            ("16777216T", ", got '16777216T'"),
            ("18446744073709551616", ", got '18446744073709551616'"),
        ];
        for (q, needle) in bad {
            let e = fails(
                &format!("config store\n\toption path /s\n\toption quota '{q}'\n"),
                3,
                needle,
            );
            assert!(e.message.starts_with(form), "{q}: {e}");
        }
        for small in ["0", "1048575", "1023K", "1023KiB", "0G"] {
            fails(
                &format!("config store\n\toption path /s\n\toption quota '{small}'\n"),
                3,
                &format!(
                    "option quota: expected a quota of at least 1M (1048576 bytes), got '{small}'"
                ),
            );
        }
        assert_eq!(schema::parse_size("2G"), Some(2 << 30));
        assert_eq!(schema::parse_size(""), None);
        assert_eq!(schema::parse_size("B"), None);
        for (n, text) in [
            (2u64 << 30, "2G"),
            (1536 << 20, "1536M"),
            (1 << 40, "1T"),
            (3 << 10, "3K"),
            (1_048_577, "1048577"),
            (0, "0"),
            (u64::MAX, "18446744073709551615"),
        ] {
            assert_eq!(schema::format_size(n), text);
            assert_eq!(schema::parse_size(text), Some(n), "{text}");
        }
    }

    #[test]
    fn store_value_errors() {
        let bad: &[(&str, &str)] = &[
            (
                "option enabled 2",
                "option enabled: expected a boolean: 1/0, yes/no, on/off, true/false or \
                 enabled/disabled, got '2'",
            ),
            (
                "option path 'mnt/sda1'",
                "option path: expected an absolute directory path like /mnt/sda1/cloudy, got \
                 'mnt/sda1'",
            ),
            (
                "option path '~/cloudy'",
                "expected an absolute directory path",
            ),
            (
                "option path \"/a\tb\"",
                "expected an absolute directory path",
            ),
            (
                "option shares_needed 0",
                "option shares_needed: expected a number of shares 1-64, got '0'",
            ),
            (
                "option shares_needed 65",
                "expected a number of shares 1-64, got '65'",
            ),
            (
                "option shares_total 1000",
                "expected a number of shares 1-64",
            ),
            (
                "option shares_total '+3'",
                "expected a number of shares 1-64",
            ),
            (
                "option shares_happy x",
                "option shares_happy: expected a number of shares",
            ),
            (
                "option shares_happy '-1'",
                "expected a number of shares 1-64",
            ),
            (
                "option port 0",
                "option port: expected a port number 1-65535, got '0'",
            ),
            ("option port 65536", "expected a port number 1-65535"),
            (
                "list path /a",
                "path takes one value: use option path 'VALUE', not list",
            ),
            ("list quota 1G", "quota takes one value"),
            (
                "option size 1G",
                "unknown option 'size' in config store (expected one of: enabled, path, quota, \
                 shares_needed, shares_total, shares_happy, port)",
            ),
        ];
        for (line, needle) in bad {
            fails(
                &format!("config store 'disk'\n\toption enabled 0\n\t{line}\n"),
                3,
                needle,
            );
        }
        let long = format!("/{}", "d".repeat(4095));
        fails(
            &format!("config store\n\toption path '{long}'\n"),
            2,
            "expected an absolute directory path",
        );
        // At the line the bad value is on, in a longer file.
        fails(
            "config agent\n\toption name a\n\nconfig store\n\toption path /s\n\
             \toption quota lots\n",
            6,
            "option quota: expected a size",
        );
    }

    #[test]
    fn store_section_errors() {
        // Missing path and the cross-field rules: at the `config` line.
        let cases: &[(&str, usize, &str)] = &[
            (
                "config store\n",
                1,
                "config store @store[0]: missing option path (the directory that keeps the \
                 shares, like /mnt/sda1/cloudy; or option enabled '0' for a box that only puts \
                 and gets)",
            ),
            (
                "config agent\n\nconfig store 'disk'\n\toption enabled 1\n\toption quota 2G\n",
                3,
                "config store 'disk': missing option path",
            ),
            (
                "config store\n\toption path /s\n\toption shares_total 2\n",
                1,
                "config store @store[0]: shares_needed 3 is more than shares_total 2 \
                 (K of the N shares rebuild a file: 1 <= K <= N <= 64)",
            ),
            (
                "config store\n\toption path /s\n\toption shares_needed 11\n",
                1,
                "shares_needed 11 is more than shares_total 10",
            ),
            (
                "\nconfig store 'x'\n\toption path /s\n\toption shares_needed 2\n\
                 \toption shares_total 5\n",
                2,
                "config store 'x': shares_happy 7 is more than shares_total 5 \
                 (a put places N shares on at least H boxes: H <= N)",
            ),
            (
                "config store\n\toption enabled 0\n\toption shares_happy 11\n",
                1,
                "shares_happy 11 is more than shares_total 10",
            ),
            // A client's put parameters are checked as well.
            (
                "config store\n\toption enabled 0\n\toption shares_needed 4\n\
                 \toption shares_total 3\n\toption shares_happy 3\n",
                1,
                "shares_needed 4 is more than shares_total 3",
            ),
        ];
        for (text, line, needle) in cases {
            fails(text, *line, needle);
        }
        // One store section, named or not, in any order.
        for (text, line) in [
            (
                "config store\n\toption path /a\nconfig store\n\toption path /b\n",
                3,
            ),
            ("config store 'a'\n\toption path /a\n\nconfig store\n", 4),
            (
                "config store\n\toption path /a\nconfig store 'b'\n\toption path /b\n",
                3,
            ),
            (
                "config store 'a'\n\toption path /a\nconfig agent\nconfig store 'b'\n\
                 \toption path /b\n",
                4,
            ),
        ] {
            let e = fails(text, line, "only one config store section is allowed");
            assert_eq!(
                e.to_string(),
                format!("test:{line}: only one config store section is allowed (first at line 1)")
            );
        }
        // libuci merges a named section given twice: one store.
        let c = ok("config store 'a'\n\toption path /a\n\toption quota 2G\n\
                    config store 'a'\n\toption path /b\n");
        assert_eq!(store(&c).path, Some(PathBuf::from("/b")));
        assert_eq!(store(&c).quota, 2 << 30);
        // A store named like a section of another type.
        fails(
            "config agent 'a'\nconfig store 'a'\n\toption path /a\n",
            2,
            "config store 'a': that name is a config agent section (line 1)",
        );
    }

    #[test]
    fn node_names() {
        assert_eq!(sanitize_node_name("OpenWrt\n"), "OpenWrt");
        assert_eq!(sanitize_node_name("box_1.lan"), "box-1");
        assert_eq!(sanitize_node_name(&"a".repeat(40)), "a".repeat(32));
        assert_eq!(sanitize_node_name(""), FALLBACK_NODE_NAME);
        assert_eq!(sanitize_node_name("..."), FALLBACK_NODE_NAME);
        assert_eq!(sanitize_node_name("ñ"), FALLBACK_NODE_NAME);
        assert!(is_valid_node_name("a-1"));
        assert!(!is_valid_node_name(""));
        assert!(!is_valid_node_name("a.b"));
    }

    #[test]
    fn load_files() {
        let dir = std::env::temp_dir().join(format!("cloudy-uci-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cleanup = Cleanup(dir.clone());

        let good = dir.join("good");
        std::fs::write(&good, "config agent\n\toption name 'x1'\n").unwrap();
        assert_eq!(load(&good).unwrap().agent.name, "x1");

        let bad = dir.join("bad");
        std::fs::write(&bad, "config agent\n\toption mtu 1\n").unwrap();
        let e = load(&bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:2: option mtu: expected an MTU 576-1500, got '1'",
                bad.display()
            )
        );

        let big = dir.join("big");
        std::fs::write(&big, "#".repeat(limits::MAX_CONFIG_BYTES + 1)).unwrap();
        let e = load(&big).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.message.contains("larger than 65536 bytes"), "{e}");
        let e = parse("x", &"#".repeat(limits::MAX_CONFIG_BYTES + 1)).unwrap_err();
        assert_eq!(e.line, 0);

        let exact = dir.join("exact");
        std::fs::write(&exact, "#".repeat(limits::MAX_CONFIG_BYTES)).unwrap();
        assert!(load(&exact).is_ok());

        let binary = dir.join("binary");
        std::fs::write(&binary, b"config agent\n\n\toption name '\xff'\n").unwrap();
        let e = load(&binary).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (3, "invalid UTF-8 text"));

        let e = load(&dir.join("missing")).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.to_string().contains("cannot open"), "{e}");
        drop(cleanup);
    }

    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn no_panic_on_noise() {
        // A cheap deterministic smoke test; the fuzz target does the real work.
        let alphabet: Vec<char> = "config agent peer option list name mtu address endpoint \
             public_key '\"\\#;:[]/.\n\t 0123456789abcdef=+-\u{0}\u{7f}é"
            .chars()
            .collect();
        let mut state: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(state % 200) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                s.push(alphabet[state as usize % alphabet.len()]);
            }
            let _ = parse_with_default_name("noise", &s, "h");
        }
    }
}
