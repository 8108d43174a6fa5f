//! Strict parser of `/etc/config/cloudy` (OpenWrt UCI syntax) into [`Config`].
//!
//! Syntax accepted, one statement per line (as libuci's `file.c` reads it):
//! - `config TYPE ['NAME']` opens a section; `option KEY VALUE` sets a
//!   value; `list KEY VALUE` appends to a list; `package cloudy` (as in
//!   `uci export` output) is accepted before the first section.
//! - Words are bare, `'single quoted'` (no escapes) or `"double quoted"`
//!   (a backslash takes the next character literally); a bare backslash
//!   does the same. Adjacent pieces form one word, so `uci commit`'s
//!   `'it'\''s'` reads `it's`.
//! - `#` starts a comment at the start of a word (whole line, or after
//!   whitespace). Blank lines and space/tab indentation are ignored.
//!
//! Stricter than libuci, on purpose: a quoted value may not span lines, a
//! trailing backslash (line continuation), an unquoted `;` or a `#` inside
//! a bare word are errors. Every unknown section type, unknown option,
//! repeated option, `list` of a single-valued option and bad value is an
//! error naming the file, the line and what was expected; errors about
//! something missing point at the section's `config` line.
//!
//! Sections: at most one `config agent` (none = all defaults), at most
//! `limits::MAX_PEERS` `config peer 'NAME'` with unique names and keys, and
//! at most `limits::MAX_SERVICES` `config service 'NAME'` (DNS-SD instances,
//! RFC 6763) with names unique ignoring case, as DNS compares them. A
//! service's `type` is normalised to `_name._tcp` / `_name._udp` (a bare
//! `name` means TCP) with the service name rules of RFC 6763 §7 (RFC 6335
//! §5.1); its `list txt` strings follow RFC 6763 §6 (≤ 255 bytes, non-empty
//! printable-ASCII key before any `=`, keys unique ignoring case).
//! The parser is pure except [`parse`], which reads the host name only
//! when `option name` is absent, and [`load`], which reads the file.
//! Input is bounded by `limits::MAX_CONFIG_BYTES`; nothing panics on input.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::{Path, PathBuf};

use super::{
    AgentConfig, Config, ConfigError, Endpoint, IpCidr, Mode, PeerConfig, ServiceConfig,
    DEFAULT_INTERFACE, DEFAULT_KEY_FILE, DEFAULT_LISTEN_PORT, DEFAULT_MTU, MAX_MTU, MIN_MTU,
};
use crate::limits;
use crate::log::Level;

/// Longest `key_file` path (Linux `PATH_MAX` less the NUL).
const MAX_PATH_LEN: usize = 4095;
/// Longest network interface name (`IFNAMSIZ` less the NUL).
const MAX_IFNAME_LEN: usize = 15;
/// Longest host name in an endpoint (RFC 1035 §2.3.4).
const MAX_HOST_LEN: usize = 253;
/// Longest label of a host name (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;
/// Longest TXT string: one length byte (RFC 6763 §6.1).
const MAX_TXT_LEN: usize = 255;
/// Characters of a bad value quoted back in an error message.
const MAX_SHOWN_CHARS: usize = 64;
/// Words a statement can have (`config TYPE NAME`, `option KEY VALUE`);
/// the tokenizer stops after one more, which is then reported as junk.
const MAX_WORDS: usize = 4;
/// Name used when neither `option name` nor a usable host name exists.
pub const FALLBACK_NODE_NAME: &str = "cloudy";
/// Cloud name when `option cloud` is absent.
pub const DEFAULT_CLOUD: &str = "cloudy";
/// Where [`parse`] reads the default node name.
const HOSTNAME_PATH: &str = "/proc/sys/kernel/hostname";

const AGENT_OPTIONS: &[&str] = &[
    "name",
    "cloud",
    "key_file",
    "listen_port",
    "interface",
    "address",
    "mtu",
    "mode",
    "raw_device",
    "log_level",
    "mdns",
    "mdns_interface",
];
const AGENT_LISTS: &[&str] = &["address", "mdns_interface"];
const PEER_OPTIONS: &[&str] = &["public_key", "endpoint"];
const PEER_LISTS: &[&str] = &["endpoint"];
const SERVICE_OPTIONS: &[&str] = &["type", "port", "txt", "host"];
const SERVICE_LISTS: &[&str] = &["txt"];
const SECTION_TYPES: &[&str] = &["agent", "peer", "service"];

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
        return Err(err(too_large_message()));
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

/// A UCI boolean: `1/0`, `yes/no`, `on/off`, `true/false`,
/// `enabled/disabled` (lower case, as OpenWrt's `config_get_bool`).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "yes" | "on" | "true" | "enabled" => Some(true),
        "0" | "no" | "off" | "false" | "disabled" => Some(false),
        _ => None,
    }
}

/// A node, cloud or peer name: 1 to `limits::MAX_NAME_LEN` of `[A-Za-z0-9-]`.
pub fn is_valid_node_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= limits::MAX_NAME_LEN
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
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

fn too_large_message() -> String {
    format!(
        "file is larger than {} bytes (limits::MAX_CONFIG_BYTES)",
        limits::MAX_CONFIG_BYTES
    )
}

// ---------------------------------------------------------------- lexer

/// Split one line into at most `MAX_WORDS + 1` words (see the module doc).
fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|&c| is_blank(c)).is_some() {}
        match chars.peek() {
            None | Some('#') => break,
            Some(_) => {}
        }
        if words.len() > MAX_WORDS {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if is_blank(c) {
                break;
            }
            chars.next();
            match c {
                '\'' => {
                    loop {
                        match chars.next() {
                            None => return Err(
                                "unterminated ' quote (quoted values must end on the same line)"
                                    .into(),
                            ),
                            Some('\'') => break,
                            Some(c) => word.push(c),
                        }
                    }
                }
                '"' => {
                    loop {
                        match chars.next() {
                            None => return Err(
                                "unterminated \" quote (quoted values must end on the same line)"
                                    .into(),
                            ),
                            Some('"') => break,
                            Some('\\') => word.push(escaped(chars.next())?),
                            Some(c) => word.push(c),
                        }
                    }
                }
                '\\' => word.push(escaped(chars.next())?),
                '#' => {
                    return Err(
                        "'#' inside a word: quote the value, or put a space before a comment"
                            .into(),
                    )
                }
                ';' => {
                    return Err(
                        "';' outside quotes: quote the value (one statement per line)".into(),
                    )
                }
                c => word.push(c),
            }
        }
        words.push(word);
    }
    Ok(words)
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\r'
}

fn escaped(next: Option<char>) -> Result<char, String> {
    next.ok_or_else(|| "backslash at end of line (line continuation is not supported)".to_string())
}

/// A value quoted back in a message: cut, control characters escaped.
fn show(value: &str) -> String {
    let mut out = String::from("'");
    for (i, c) in value.chars().enumerate() {
        if i == MAX_SHOWN_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A peer's name is its UCI section name: libuci's charset, at most
/// `MAX_NAME_LEN` bytes.
pub fn is_valid_peer_name(s: &str) -> bool {
    is_uci_name(s) && s.len() <= limits::MAX_NAME_LEN
}

/// `[A-Za-z0-9_]+`, libuci's rule for option names and section names.
fn is_uci_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A service's instance name is its UCI section name: libuci's charset, at
/// most `MAX_NAME_LEN` bytes (well inside DNS-SD's 63-byte label).
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

/// The key of a TXT string (RFC 6763 §6.4): everything before the first
/// '=', or the whole string for a boolean attribute. `None` unless the
/// string is at most 255 bytes, the key is 1 or more printable US-ASCII
/// characters (0x20-0x7E) and the value has no control characters.
pub fn txt_key(s: &str) -> Option<&str> {
    let (key, value) = s.split_once('=').unwrap_or((s, ""));
    let ok = s.len() <= MAX_TXT_LEN
        && !key.is_empty()
        && key.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !value.chars().any(char::is_control);
    ok.then_some(key)
}

/// A host label (RFC 1123): 1-63 letters, digits or '-', no '-' at either end.
pub fn is_valid_host_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL_LEN
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

// ---------------------------------------------------------------- values

/// Decimal digits only (no sign, no spaces), at most `max_digits`.
fn parse_decimal(s: &str, max_digits: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u32, |n, b| {
        n.checked_mul(10)?.checked_add(u32::from(b - b'0'))
    })
}

fn parse_port(s: &str) -> Option<u16> {
    parse_decimal(s, 5)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&p| p != 0)
}

fn is_valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_IFNAME_LEN
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn parse_cidr(s: &str) -> Result<IpCidr, String> {
    let form = "expected an address with prefix length like 10.0.0.1/24 or fd00::1/64";
    let Some((addr, prefix)) = s.split_once('/') else {
        return Err(format!("{form}, got {}", show(s)));
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return Err(format!("{form}, got {}", show(s)));
    };
    let (family, max) = match addr {
        IpAddr::V4(_) => ("IPv4", 32),
        IpAddr::V6(_) => ("IPv6", 128),
    };
    let prefix = match parse_decimal(prefix, 3) {
        Some(p) if (1..=max).contains(&p) => p as u8,
        _ => {
            return Err(format!(
                "expected a prefix length 1-{max} for {family}, got {}",
                show(s)
            ))
        }
    };
    let unusable = match addr {
        IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast(),
    };
    if unusable {
        return Err(format!(
            "expected a unicast address, got {} (unspecified, multicast or broadcast)",
            show(s)
        ));
    }
    Ok(IpCidr { addr, prefix })
}

/// RFC 1123 host name; the last label may not be all digits (so that a
/// mistyped IPv4 address is not taken for a name).
fn is_valid_hostname(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_HOST_LEN {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= MAX_LABEL_LEN
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    s.split('.').all(label_ok)
        && !s
            .rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    let form = "expected host:port, a.b.c.d:port or [v6]:port";
    let bad = || format!("{form}, got {}", show(s));
    let bad_port = || format!("expected a port number 1-65535 after ':', got {}", show(s));
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:").ok_or_else(bad)?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| bad())?;
        let port = parse_port(port).ok_or_else(bad_port)?;
        return Ok(Endpoint::Addr(SocketAddr::V6(SocketAddrV6::new(
            ip, port, 0, 0,
        ))));
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host.contains(':') {
        return Err(format!(
            "IPv6 endpoints need brackets, like [fd00::1]:6556, got {}",
            show(s)
        ));
    }
    let port = parse_port(port).ok_or_else(bad_port)?;
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Endpoint::Addr(SocketAddr::V4(SocketAddrV4::new(ip, port))));
    }
    if !is_valid_hostname(host) {
        return Err(bad());
    }
    Ok(Endpoint::Host(host.to_ascii_lowercase(), port))
}

// ---------------------------------------------------------------- parser

/// A value with the line it was set on.
type AtLine<T> = Option<(T, usize)>;

struct AgentBuilder {
    line: usize,
    name: AtLine<String>,
    cloud: AtLine<String>,
    key_file: AtLine<PathBuf>,
    listen_port: AtLine<u16>,
    interface: AtLine<String>,
    addresses: Vec<(IpCidr, usize)>,
    /// Line of `option address`, which may appear once.
    address_option: Option<usize>,
    mtu: AtLine<u16>,
    mode: AtLine<Mode>,
    raw_device: AtLine<String>,
    log_level: AtLine<Level>,
    mdns: AtLine<bool>,
    mdns_interfaces: Vec<(String, usize)>,
    /// Line of `option mdns_interface`, which may appear once.
    mdns_interface_option: Option<usize>,
}

struct PeerBuilder {
    line: usize,
    name: String,
    public_key: AtLine<[u8; 32]>,
    endpoints: Vec<(Endpoint, usize)>,
    endpoint_option: Option<usize>,
}

struct ServiceBuilder {
    line: usize,
    name: String,
    service_type: AtLine<String>,
    port: AtLine<u16>,
    /// TXT strings with their lines.
    txt: Vec<(String, usize)>,
    txt_option: Option<usize>,
    host: AtLine<String>,
}

/// A finished peer with the lines later checks refer to.
struct PeerDone {
    peer: PeerConfig,
    line: usize,
    key_line: usize,
}

enum Section {
    None,
    Agent,
    Peer(PeerBuilder),
    Service(ServiceBuilder),
}

struct Parser {
    agent: Option<AgentBuilder>,
    peers: Vec<PeerDone>,
    /// Finished services with their `config` lines.
    services: Vec<(ServiceConfig, usize)>,
    current: Section,
}

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
    if text.len() > limits::MAX_CONFIG_BYTES {
        return Err(err((0, too_large_message())));
    }
    let mut p = Parser {
        agent: None,
        peers: Vec::new(),
        services: Vec::new(),
        current: Section::None,
    };
    for (index, line) in text.split('\n').enumerate() {
        let n = index + 1;
        let words = tokenize(line).map_err(|m| err((n, m)))?;
        p.statement(n, &words).map_err(err)?;
    }
    p.close_section().map_err(err)?;
    p.finish(default_name).map_err(err)
}

fn expected_one_of(list: &[&str]) -> String {
    list.join(", ")
}

/// Store a single-valued option, refusing a second one.
fn set_once<T>(slot: &mut AtLine<T>, value: T, line: usize, key: &str) -> LineResult<()> {
    if let Some((_, first)) = slot {
        return Err((
            line,
            format!("option {key} given twice (first at line {first})"),
        ));
    }
    *slot = Some((value, line));
    Ok(())
}

impl Parser {
    fn statement(&mut self, line: usize, words: &[String]) -> LineResult<()> {
        let Some(keyword) = words.first() else {
            return Ok(());
        };
        let junk = |after: &str, w: &str| {
            (
                line,
                format!(
                    "unexpected {} after the {after} (quote values that contain spaces)",
                    show(w)
                ),
            )
        };
        match keyword.as_str() {
            "package" => {
                match words {
                    [_, name] if name == "cloudy" => {}
                    [_, name] => {
                        return Err((line, format!("expected package cloudy, got {}", show(name))))
                    }
                    [_] => return Err((line, "package: expected a name".into())),
                    [_, _, w, ..] => return Err(junk("package name", w)),
                    [] => {}
                }
                if !matches!(self.current, Section::None) || self.agent.is_some() {
                    return Err((line, "package must come before the first section".into()));
                }
                Ok(())
            }
            "config" => {
                let (ty, name) = match words {
                    [_, ty] => (ty, None),
                    [_, ty, name] => (ty, Some(name)),
                    [_, _, _, w, ..] => return Err(junk("section name", w)),
                    _ => {
                        return Err((
                            line,
                            "config: expected a section type (config TYPE ['NAME'])".into(),
                        ))
                    }
                };
                self.close_section()?;
                self.open_section(line, ty, name.map(String::as_str))
            }
            "option" | "list" => {
                let kw = keyword.as_str();
                let (key, value) = match words {
                    [_, key, value] => (key, value),
                    [_, key, _, w, ..] => {
                        if is_uci_name(key) {
                            return Err(junk(&format!("value of {kw} {key}"), w));
                        }
                        return Err(junk("value", w));
                    }
                    [_, key] if is_uci_name(key) => {
                        return Err((line, format!("{kw} {key}: missing value")))
                    }
                    [_, key] => {
                        return Err((line, format!("{kw}: missing value after {}", show(key))))
                    }
                    _ => {
                        return Err((
                            line,
                            format!("{kw}: expected a name and a value ({kw} NAME 'VALUE')"),
                        ))
                    }
                };
                if !is_uci_name(key) {
                    return Err((
                        line,
                        format!(
                            "invalid option name {} (letters, digits and '_' only)",
                            show(key)
                        ),
                    ));
                }
                self.option(line, kw == "list", key, value)
            }
            other => Err((
                line,
                format!(
                    "unknown statement {} (expected config, option or list)",
                    show(other)
                ),
            )),
        }
    }

    fn open_section(&mut self, line: usize, ty: &str, name: Option<&str>) -> LineResult<()> {
        match ty {
            "agent" => {
                if let Some(first) = &self.agent {
                    return Err((
                        line,
                        format!(
                            "only one config agent section is allowed (first at line {})",
                            first.line
                        ),
                    ));
                }
                if let Some(name) = name {
                    if !is_uci_name(name) {
                        return Err((
                            line,
                            format!(
                                "config agent: invalid section name {} (letters, digits and '_' only)",
                                show(name)
                            ),
                        ));
                    }
                }
                self.agent = Some(AgentBuilder {
                    line,
                    name: None,
                    cloud: None,
                    key_file: None,
                    listen_port: None,
                    interface: None,
                    addresses: Vec::new(),
                    address_option: None,
                    mtu: None,
                    mode: None,
                    raw_device: None,
                    log_level: None,
                    mdns: None,
                    mdns_interfaces: Vec::new(),
                    mdns_interface_option: None,
                });
                self.current = Section::Agent;
                Ok(())
            }
            "peer" => {
                let Some(name) = name else {
                    return Err((
                        line,
                        "config peer: expected a name (config peer 'NAME')".into(),
                    ));
                };
                // Section names must pass libuci's own check, or `uci` on the box
                // refuses the file: letters, digits and '_' only.
                if !is_valid_peer_name(name) {
                    return Err((
                        line,
                        format!(
                            "config peer: expected a name of 1-{} letters, digits or '_', got {}",
                            limits::MAX_NAME_LEN,
                            show(name)
                        ),
                    ));
                }
                if let Some(first) = self.peers.iter().find(|p| p.peer.name == name) {
                    return Err((
                        line,
                        format!(
                            "duplicate peer name {} (first at line {})",
                            show(name),
                            first.line
                        ),
                    ));
                }
                if self.peers.len() >= limits::MAX_PEERS {
                    return Err((
                        line,
                        format!(
                            "too many peers: at most {} (limits::MAX_PEERS)",
                            limits::MAX_PEERS
                        ),
                    ));
                }
                self.current = Section::Peer(PeerBuilder {
                    line,
                    name: name.to_string(),
                    public_key: None,
                    endpoints: Vec::new(),
                    endpoint_option: None,
                });
                Ok(())
            }
            "service" => {
                let Some(name) = name else {
                    return Err((
                        line,
                        "config service: expected a name, the instance name as published \
                         (config service 'NAME')"
                            .into(),
                    ));
                };
                if !is_valid_service_name(name) {
                    return Err((
                        line,
                        format!(
                            "config service: expected a name of 1-{} letters, digits or '_', got {}",
                            limits::MAX_NAME_LEN,
                            show(name)
                        ),
                    ));
                }
                if let Some((first, first_line)) = self
                    .services
                    .iter()
                    .find(|(s, _)| s.name.eq_ignore_ascii_case(name))
                {
                    return Err((
                        line,
                        format!(
                            "duplicate service name {} (first at line {first_line} as {}; \
                             DNS compares names ignoring case)",
                            show(name),
                            show(&first.name)
                        ),
                    ));
                }
                if self.services.len() >= limits::MAX_SERVICES {
                    return Err((
                        line,
                        format!(
                            "too many services: at most {} (limits::MAX_SERVICES)",
                            limits::MAX_SERVICES
                        ),
                    ));
                }
                self.current = Section::Service(ServiceBuilder {
                    line,
                    name: name.to_string(),
                    service_type: None,
                    port: None,
                    txt: Vec::new(),
                    txt_option: None,
                    host: None,
                });
                Ok(())
            }
            other if is_uci_name(other) => Err((
                line,
                format!(
                    "unknown section type {} (expected one of: {})",
                    show(other),
                    expected_one_of(SECTION_TYPES)
                ),
            )),
            other => Err((
                line,
                format!(
                    "invalid section type {} (expected one of: {})",
                    show(other),
                    expected_one_of(SECTION_TYPES)
                ),
            )),
        }
    }

    fn option(&mut self, line: usize, is_list: bool, key: &str, value: &str) -> LineResult<()> {
        let kw = if is_list { "list" } else { "option" };
        let (section, options, lists) = match &self.current {
            Section::None => {
                return Err((
                    line,
                    format!("{kw} {key} outside a section (expected config TYPE first)"),
                ))
            }
            Section::Agent => ("config agent", AGENT_OPTIONS, AGENT_LISTS),
            Section::Peer(_) => ("config peer", PEER_OPTIONS, PEER_LISTS),
            Section::Service(_) => ("config service", SERVICE_OPTIONS, SERVICE_LISTS),
        };
        if !options.contains(&key) {
            return Err((
                line,
                format!(
                    "unknown option '{key}' in {section} (expected one of: {})",
                    expected_one_of(options)
                ),
            ));
        }
        if is_list && !lists.contains(&key) {
            return Err((
                line,
                format!("{key} takes one value: use option {key} 'VALUE', not list"),
            ));
        }
        let bad = |expected: &str| {
            (
                line,
                format!("{kw} {key}: expected {expected}, got {}", show(value)),
            )
        };
        match (&mut self.current, &mut self.agent) {
            (Section::Peer(p), _) => peer_option(p, &self.peers, line, kw, key, value, &bad),
            (Section::Service(s), _) => service_option(s, line, kw, key, value, &bad),
            (Section::Agent, Some(a)) => agent_option(a, line, kw, key, value, &bad),
            // `current` is Agent only once `agent` is set (open_section), and
            // None was answered above; this arm is never taken.
            _ => Err((line, format!("{kw} {key} outside a section"))),
        }
    }

    /// Check what the open section lacks, then file it.
    fn close_section(&mut self) -> LineResult<()> {
        match std::mem::replace(&mut self.current, Section::None) {
            Section::None => Ok(()),
            Section::Agent => {
                let Some(a) = &self.agent else { return Ok(()) };
                let mode = a.mode.as_ref().map_or(Mode::Tap, |(m, _)| *m);
                match (mode, &a.raw_device) {
                    (Mode::Raw, None) => Err((
                        a.line,
                        "config agent: mode 'raw' needs option raw_device (the interface to bridge)"
                            .into(),
                    )),
                    (Mode::Tap, Some((_, l))) => Err((
                        *l,
                        "option raw_device is only used with option mode 'raw'".into(),
                    )),
                    _ => Ok(()),
                }?;
                // mDNS always runs on the overlay device; listing it again
                // would open a second responder on the same link.
                let overlay = match (mode, &a.raw_device, &a.interface) {
                    (Mode::Raw, Some((dev, _)), _) => dev.as_str(),
                    (_, _, Some((dev, _))) => dev.as_str(),
                    _ => DEFAULT_INTERFACE,
                };
                match a.mdns_interfaces.iter().find(|(i, _)| i == overlay) {
                    Some((i, l)) => Err((
                        *l,
                        format!(
                            "mdns_interface {} is the overlay device, where mDNS always runs; \
                             list only other interfaces",
                            show(i)
                        ),
                    )),
                    None => Ok(()),
                }
            }
            Section::Service(s) => {
                let missing = |what: &str| {
                    (
                        s.line,
                        format!("config service {}: missing option {what}", show(&s.name)),
                    )
                };
                let Some((service_type, _)) = s.service_type else {
                    return Err(missing("type (like http or _http._tcp)"));
                };
                let Some((port, _)) = s.port else {
                    return Err(missing("port"));
                };
                self.services.push((
                    ServiceConfig {
                        name: s.name,
                        service_type,
                        port,
                        txt: s.txt.into_iter().map(|(t, _)| t).collect(),
                        host: s.host.map(|(h, _)| h),
                    },
                    s.line,
                ));
                Ok(())
            }
            Section::Peer(p) => {
                let Some((public_key, key_line)) = p.public_key else {
                    return Err((
                        p.line,
                        format!("config peer {}: missing option public_key", show(&p.name)),
                    ));
                };
                self.peers.push(PeerDone {
                    peer: PeerConfig {
                        name: p.name,
                        public_key,
                        endpoints: p.endpoints.into_iter().map(|(e, _)| e).collect(),
                    },
                    line: p.line,
                    key_line,
                });
                Ok(())
            }
        }
    }

    fn finish(self, default_name: &dyn Fn() -> String) -> LineResult<Config> {
        let agent = match self.agent {
            None => AgentConfig {
                name: default_name(),
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
            },
            Some(a) => AgentConfig {
                name: a.name.map_or_else(default_name, |(v, _)| v),
                cloud: a
                    .cloud
                    .map_or_else(|| DEFAULT_CLOUD.to_string(), |(v, _)| v),
                key_file: a
                    .key_file
                    .map_or_else(|| PathBuf::from(DEFAULT_KEY_FILE), |(v, _)| v),
                listen_port: a.listen_port.map_or(DEFAULT_LISTEN_PORT, |(v, _)| v),
                interface: a
                    .interface
                    .map_or_else(|| DEFAULT_INTERFACE.to_string(), |(v, _)| v),
                addresses: a.addresses.into_iter().map(|(c, _)| c).collect(),
                mtu: a.mtu.map_or(DEFAULT_MTU, |(v, _)| v),
                mode: a.mode.map_or(Mode::Tap, |(v, _)| v),
                raw_device: a.raw_device.map(|(v, _)| v),
                log_level: a.log_level.map_or(Level::Info, |(v, _)| v),
                mdns: a.mdns.is_none_or(|(v, _)| v),
                mdns_interfaces: a.mdns_interfaces.into_iter().map(|(i, _)| i).collect(),
            },
        };
        let peers = self.peers.into_iter().map(|d| d.peer).collect();
        let services = self.services.into_iter().map(|(s, _)| s).collect();
        Ok(Config {
            agent,
            peers,
            services,
        })
    }
}

fn agent_option(
    a: &mut AgentBuilder,
    line: usize,
    kw: &str,
    key: &str,
    value: &str,
    bad: &dyn Fn(&str) -> (usize, String),
) -> LineResult<()> {
    let name_form = format!("1-{} letters, digits or '-'", limits::MAX_NAME_LEN);
    match key {
        "name" | "cloud" => {
            if !is_valid_node_name(value) {
                return Err(bad(&name_form));
            }
            let slot = if key == "name" {
                &mut a.name
            } else {
                &mut a.cloud
            };
            set_once(slot, value.to_string(), line, key)
        }
        "key_file" => {
            let ok = value.starts_with('/')
                && !value.ends_with('/')
                && value.len() <= MAX_PATH_LEN
                && !value.chars().any(char::is_control);
            if !ok {
                return Err(bad("an absolute file path like /etc/cloudy/key"));
            }
            set_once(&mut a.key_file, PathBuf::from(value), line, key)
        }
        "listen_port" => {
            let port = parse_port(value).ok_or_else(|| bad("a port number 1-65535"))?;
            set_once(&mut a.listen_port, port, line, key)
        }
        "interface" | "raw_device" => {
            if !is_valid_ifname(value) {
                return Err(bad(&format!(
                    "an interface name of 1-{MAX_IFNAME_LEN} letters, digits, '_', '.' or '-'"
                )));
            }
            let slot = if key == "interface" {
                &mut a.interface
            } else {
                &mut a.raw_device
            };
            set_once(slot, value.to_string(), line, key)
        }
        "address" => {
            if kw == "option" {
                if let Some(first) = a.address_option {
                    return Err((
                        line,
                        format!(
                            "option address given twice (first at line {first}); use list address for several"
                        ),
                    ));
                }
                a.address_option = Some(line);
            }
            let cidr = parse_cidr(value).map_err(|m| (line, format!("{kw} address: {m}")))?;
            if let Some((_, first)) = a.addresses.iter().find(|(c, _)| c.addr == cidr.addr) {
                return Err((
                    line,
                    format!(
                        "{kw} address: {} given twice (first at line {first})",
                        cidr.addr
                    ),
                ));
            }
            if a.addresses.len() >= limits::MAX_ADDRESSES {
                return Err((
                    line,
                    format!(
                        "{kw} address: too many addresses, at most {} (limits::MAX_ADDRESSES)",
                        limits::MAX_ADDRESSES
                    ),
                ));
            }
            a.addresses.push((cidr, line));
            Ok(())
        }
        "mtu" => {
            let mtu = parse_decimal(value, 5)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|m| (MIN_MTU..=MAX_MTU).contains(m))
                .ok_or_else(|| bad(&format!("an MTU {MIN_MTU}-{MAX_MTU}")))?;
            set_once(&mut a.mtu, mtu, line, key)
        }
        "mode" => {
            let mode = match value {
                "tap" => Mode::Tap,
                "raw" => Mode::Raw,
                _ => return Err(bad("one of: tap, raw")),
            };
            set_once(&mut a.mode, mode, line, key)
        }
        "log_level" => {
            let level =
                Level::parse(value).ok_or_else(|| bad("one of: error, warn, info, debug"))?;
            set_once(&mut a.log_level, level, line, key)
        }
        "mdns" => {
            let on = parse_bool(value).ok_or_else(|| {
                bad("a boolean: 1/0, yes/no, on/off, true/false or enabled/disabled")
            })?;
            set_once(&mut a.mdns, on, line, key)
        }
        "mdns_interface" => {
            if kw == "option" {
                if let Some(first) = a.mdns_interface_option {
                    return Err((
                        line,
                        format!(
                            "option mdns_interface given twice (first at line {first}); \
                             use list mdns_interface for several"
                        ),
                    ));
                }
                a.mdns_interface_option = Some(line);
            }
            if !is_valid_ifname(value) {
                return Err(bad(&format!(
                    "an interface name of 1-{MAX_IFNAME_LEN} letters, digits, '_', '.' or '-'"
                )));
            }
            if let Some((_, first)) = a.mdns_interfaces.iter().find(|(i, _)| i == value) {
                return Err((
                    line,
                    format!(
                        "{kw} mdns_interface: {} given twice (first at line {first})",
                        show(value)
                    ),
                ));
            }
            if a.mdns_interfaces.len() >= limits::MAX_MDNS_INTERFACES {
                return Err((
                    line,
                    format!(
                        "{kw} mdns_interface: too many interfaces, at most {} \
                         (limits::MAX_MDNS_INTERFACES)",
                        limits::MAX_MDNS_INTERFACES
                    ),
                ));
            }
            a.mdns_interfaces.push((value.to_string(), line));
            Ok(())
        }
        // Option names were checked against AGENT_OPTIONS by the caller.
        _ => Err((line, format!("unknown option '{key}' in config agent"))),
    }
}

fn peer_option(
    p: &mut PeerBuilder,
    peers: &[PeerDone],
    line: usize,
    kw: &str,
    key: &str,
    value: &str,
    bad: &dyn Fn(&str) -> (usize, String),
) -> LineResult<()> {
    match key {
        "public_key" => {
            let k = crate::keys::decode_public(value).ok_or_else(|| {
                bad("a public key: 44 characters of base64 encoding 32 bytes (as WireGuard)")
            })?;
            if let Some(other) = peers.iter().find(|d| d.peer.public_key == k) {
                return Err((
                    line,
                    format!(
                        "option public_key: same key as peer {} (line {})",
                        show(&other.peer.name),
                        other.key_line
                    ),
                ));
            }
            set_once(&mut p.public_key, k, line, key)
        }
        "endpoint" => {
            if kw == "option" {
                if let Some(first) = p.endpoint_option {
                    return Err((
                        line,
                        format!(
                            "option endpoint given twice (first at line {first}); use list endpoint for several"
                        ),
                    ));
                }
                p.endpoint_option = Some(line);
            }
            let e = parse_endpoint(value).map_err(|m| (line, format!("{kw} endpoint: {m}")))?;
            if let Some((_, first)) = p.endpoints.iter().find(|(x, _)| *x == e) {
                return Err((
                    line,
                    format!("{kw} endpoint: {e} given twice (first at line {first})"),
                ));
            }
            if p.endpoints.len() >= limits::MAX_ENDPOINTS_PER_PEER {
                return Err((
                    line,
                    format!(
                        "{kw} endpoint: too many endpoints, at most {} (limits::MAX_ENDPOINTS_PER_PEER)",
                        limits::MAX_ENDPOINTS_PER_PEER
                    ),
                ));
            }
            p.endpoints.push((e, line));
            Ok(())
        }
        _ => Err((line, format!("unknown option '{key}' in config peer"))),
    }
}

fn service_option(
    s: &mut ServiceBuilder,
    line: usize,
    kw: &str,
    key: &str,
    value: &str,
    bad: &dyn Fn(&str) -> (usize, String),
) -> LineResult<()> {
    match key {
        "type" => {
            let t = normalize_service_type(value)
                .map_err(|m| (line, format!("{kw} type: expected {m}")))?;
            set_once(&mut s.service_type, t, line, key)
        }
        "port" => {
            let port = parse_port(value).ok_or_else(|| bad("a port number 1-65535"))?;
            set_once(&mut s.port, port, line, key)
        }
        "host" => {
            if !is_valid_host_label(value) {
                return Err(bad(&format!(
                    "a host label of 1-{MAX_LABEL_LEN} letters, digits or '-', \
                     no '-' at either end (default: this node)"
                )));
            }
            set_once(&mut s.host, value.to_string(), line, key)
        }
        "txt" => {
            if kw == "option" {
                if let Some(first) = s.txt_option {
                    return Err((
                        line,
                        format!(
                            "option txt given twice (first at line {first}); use list txt for several"
                        ),
                    ));
                }
                s.txt_option = Some(line);
            }
            let Some(k) = txt_key(value) else {
                let why = if value.len() > MAX_TXT_LEN {
                    format!(", {} bytes", value.len())
                } else {
                    String::new()
                };
                return Err((
                    line,
                    format!(
                        "{kw} txt: expected KEY=VALUE or KEY (RFC 6763 §6): at most \
                         {MAX_TXT_LEN} bytes, a key of printable ASCII without '=', \
                         no control characters, got {}{why}",
                        show(value)
                    ),
                ));
            };
            let dup = s
                .txt
                .iter()
                .find(|(t, _)| txt_key(t).is_some_and(|other| other.eq_ignore_ascii_case(k)));
            if let Some((_, first)) = dup {
                return Err((
                    line,
                    format!(
                        "{kw} txt: key {} given twice (first at line {first}; \
                         keys are compared ignoring case, RFC 6763 §6.4)",
                        show(k)
                    ),
                ));
            }
            if s.txt.len() >= limits::MAX_TXT_ENTRIES {
                return Err((
                    line,
                    format!(
                        "{kw} txt: too many TXT strings, at most {} (limits::MAX_TXT_ENTRIES)",
                        limits::MAX_TXT_ENTRIES
                    ),
                ));
            }
            s.txt.push((value.to_string(), line));
            Ok(())
        }
        _ => Err((line, format!("unknown option '{key}' in config service"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::encode_public;

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
                "backslash at end of line",
            ),
            (
                "config agent\n option name ab\\\n",
                2,
                "backslash at end of line",
            ),
            ("config agent\n option name box#1\n", 2, "'#' inside a word"),
            ("config agent\n option name a;b\n", 2, "';' outside quotes"),
            (
                "config agent\n option name\n",
                2,
                "option name: missing value",
            ),
            ("config agent\n option\n", 2, "expected a name and a value"),
            (
                "config agent\n list address\n",
                2,
                "list address: missing value",
            ),
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
            ("package other\n", 1, "expected package cloudy"),
            (
                "config agent\npackage cloudy\n",
                2,
                "before the first section",
            ),
        ];
        for (text, line, needle) in cases {
            fails(text, *line, needle);
        }
    }

    #[test]
    fn section_errors() {
        fails(
            "config agent\nconfig foo\n",
            2,
            "unknown section type 'foo' (expected one of: agent, peer, service)",
        );
        fails("config 'a-b'\n", 1, "invalid section type 'a-b'");
        fails(
            "config agent\n\nconfig agent\n",
            3,
            "only one config agent section is allowed (first at line 1)",
        );
        fails("config agent 'a-b'\n", 1, "invalid section name 'a-b'");
        fails(
            "config peer\n",
            1,
            "config peer: expected a name (config peer 'NAME')",
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
             mdns_interface)"
        );
        fails(
            &format!(
                "config peer p\n\toption public_key {}\n\toption name x\n",
                key(1)
            ),
            3,
            "unknown option 'name' in config peer (expected one of: public_key, endpoint)",
        );
        fails(
            "config agent\n\toption mtu 1400\n\toption mtu 1400\n",
            3,
            "option mtu given twice (first at line 2)",
        );
        fails(
            "config agent\n\tlist mtu 1400\n",
            2,
            "mtu takes one value: use option mtu 'VALUE', not list",
        );
        fails(
            "config agent\n\toption address 10.0.0.1/8\n\toption address 10.0.0.2/8\n",
            3,
            "option address given twice (first at line 2)",
        );
        fails(
            &format!(
                "config peer p\n\toption public_key {}\n\toption public_key {}\n",
                key(1),
                key(2)
            ),
            3,
            "option public_key given twice (first at line 2)",
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
                "option listen_port ''",
                "expected a port number 1-65535, got ''",
            ),
            (
                "option name 'a b'",
                "option name: expected 1-32 letters, digits or '-', got 'a b'",
            ),
            ("option name ''", "expected 1-32 letters"),
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
        fails(
            "config peer p\n\toption endpoint 1.1.1.1:1\n\toption endpoint 1.1.1.1:2\n",
            3,
            "option endpoint given twice",
        );
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
        fails(
            &format!(
                "config peer a\n\toption public_key {}\n\nconfig peer a\n\toption public_key {}\n",
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
        fails(
            &format!("{base}\toption txt 'a=1'\n\toption txt 'b=2'\n"),
            5,
            "option txt given twice (first at line 4); use list txt",
        );
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
                "config service: expected a name, the instance name as published (config service 'NAME')",
            ),
            (
                "config service 'my web'\n",
                1,
                "config service: expected a name of 1-32 letters, digits or '_', got 'my web'",
            ),
            ("config service 'a-b'\n", 1, "expected a name of 1-32"),
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
                "config service s\n\toption type http\n\toption type ftp\n",
                3,
                "option type given twice (first at line 2)",
            ),
            (
                "config service s\n\toption port 1\n\toption port 2\n",
                3,
                "option port given twice (first at line 2)",
            ),
            (
                "config service s\n\tlist port 1\n",
                2,
                "port takes one value: use option port 'VALUE', not list",
            ),
            ("config service s\n\tlist type http\n", 2, "type takes one value"),
            (
                "config service s\n\toption host a\n\toption host b\n",
                3,
                "option host given twice (first at line 2)",
            ),
            (
                "config service s\n\toption host 'a.b'\n",
                2,
                "option host: expected a host label of 1-63 letters, digits or '-', no '-' at either end (default: this node), got 'a.b'",
            ),
            ("config service s\n\toption host '-a'\n", 2, "expected a host label"),
            ("config service s\n\toption host 'a-'\n", 2, "expected a host label"),
            ("config service s\n\toption host 'a_b'\n", 2, "expected a host label"),
            ("config service s\n\toption host ''\n", 2, "expected a host label"),
        ];
        for (text, line, needle) in cases {
            fails(text, *line, needle);
        }
        let e = fails(
            "config service s\n\toption name x\n",
            2,
            "unknown option 'name' in config service",
        );
        assert_eq!(
            e.message,
            "unknown option 'name' in config service (expected one of: type, port, txt, host)"
        );
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
        fails(
            "config agent\n\toption mdns 1\n\toption mdns 0\n",
            3,
            "option mdns given twice (first at line 2)",
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
        fails(
            "config agent\n\toption mdns_interface eth0\n\toption mdns_interface eth1\n",
            3,
            "option mdns_interface given twice (first at line 2); use list mdns_interface",
        );
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
    fn bools() {
        for t in ["1", "yes", "on", "true", "enabled"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "no", "off", "false", "disabled"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for x in ["", "2", "YES", "True", " 1", "enable"] {
            assert_eq!(parse_bool(x), None, "{x}");
        }
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
