//! What each section of `/etc/config/cloudy` may hold: one table per
//! section type ([`AGENT_OPTIONS`], [`PEER_OPTIONS`], [`SERVICE_OPTIONS`],
//! [`STORE_OPTIONS`]), one [`OptionSpec`] per option, and the value
//! parsers they use.
//!
//! The parser ([`super::uci`]), its errors (`cloudy check-config`), the
//! reload diff ([`super::diff`]) and the reference ([`reference()`]) all read
//! these tables, so an option is declared once. To add one: add an
//! `OptionSpec` to its section's table (name, one value or a list,
//! required or its default, what a change needs on reload, a line of
//! help, how to store its values in the typed section and compare
//! them), plus a value parser below if none fits; then the field in
//! [`super::AgentConfig`] (or the peer / service / store type) it fills.
//!
//! Invariants: value parsers are pure and never panic; an error message
//! is the part after `option NAME: ` (`expected ..., got '...'`), with
//! the bad value cut and its control characters escaped ([`show`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;

use super::lexer::{show, Value};
use super::{
    AgentConfig, Endpoint, IpCidr, Mode, PeerConfig, ServiceConfig, StoreConfig, DEFAULT_INTERFACE,
    MAX_MTU, MIN_MTU, MIN_STORE_QUOTA,
};
use crate::limits;
use crate::log::Level;

/// Longest `key_file` or store `path` (Linux `PATH_MAX` less the NUL).
const MAX_PATH_LEN: usize = 4095;
/// Longest network interface name (`IFNAMSIZ` less the NUL).
pub const MAX_IFNAME_LEN: usize = 15;
/// Longest host name in an endpoint (RFC 1035 §2.3.4).
const MAX_HOST_LEN: usize = 253;
/// Longest label of a host name (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest TXT string: one length byte (RFC 6763 §6.1).
pub const MAX_TXT_LEN: usize = 255;

/// The section types cloudy reads, in the order the reference lists them.
pub const SECTION_TYPES: &[&str] = &["agent", "peer", "service", "store"];

/// How many values an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `option NAME 'VALUE'` (a `list` of it is an error).
    One,
    /// `list NAME 'VALUE'`, repeated; `option NAME 'VALUE'` is a list of one.
    List,
}

/// Whether an option must be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Optional; the default, in words.
    Default(&'static str),
    /// Required; a hint added to the "missing option" error (may be empty).
    Required(&'static str),
}

/// What a changed value needs when the agent reloads (SIGHUP). Ordered
/// from least to most disruptive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reload {
    /// Nothing: the value is read again where it is used.
    Nothing,
    /// Applied in place; sessions, sockets and devices stay.
    Live,
    /// That part of the agent is rebuilt and loses its state.
    Restart(Part),
}

/// A part of the agent a reload can rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// This peer's sessions (a new key is a new identity).
    Peer,
    /// Discovery (mDNS/DNS-SD) starts or stops.
    Discovery,
    /// The store server stops and starts again (or only starts or
    /// stops): its open transfers are cut.
    Store,
    /// The overlay device (TAP or raw socket) is opened again.
    Device,
    /// The UDP sockets are bound again.
    Sockets,
    /// The overlay engine and the mDNS responder: every session starts
    /// again (the node's identity changed).
    Engine,
}

impl Reload {
    /// In words, for the reference and logs.
    pub fn describe(self) -> &'static str {
        match self {
            Reload::Nothing => "nothing",
            Reload::Live => "applied in place",
            Reload::Restart(Part::Peer) => "restarts that peer's sessions",
            Reload::Restart(Part::Discovery) => "starts or stops discovery",
            Reload::Restart(Part::Store) => "restarts the store (open transfers are cut)",
            Reload::Restart(Part::Device) => "reopens the overlay device",
            Reload::Restart(Part::Sockets) => "rebinds the UDP sockets",
            Reload::Restart(Part::Engine) => "restarts every session (new identity)",
        }
    }
}

/// A value the option's parser refused: where, and the message after
/// `option NAME: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    pub line: usize,
    /// The value came from a `list` statement.
    pub list: bool,
    pub message: String,
}

impl Bad {
    fn at(v: &Value, message: String) -> Bad {
        Bad {
            line: v.line,
            list: v.from_list,
            message,
        }
    }
}

/// One option of a section type; `T` is what the section is read into.
pub struct OptionSpec<T: 'static> {
    pub name: &'static str,
    pub kind: Kind,
    pub need: Need,
    /// What a changed value needs on reload.
    pub reload: Reload,
    /// One line for people.
    pub help: &'static str,
    /// Parse the option's values (exactly one for [`Kind::One`]) into `T`.
    pub set: fn(&mut T, &[Value]) -> Result<(), Bad>,
    /// Whether two sections hold the same value(s) of this option.
    pub same: fn(&T, &T) -> bool,
}

/// An [`OptionSpec`] without its functions, for a section type's listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionInfo {
    pub name: &'static str,
    pub kind: Kind,
    pub need: Need,
    pub reload: Reload,
    pub help: &'static str,
}

impl<T> OptionSpec<T> {
    pub fn info(&self) -> OptionInfo {
        OptionInfo {
            name: self.name,
            kind: self.kind,
            need: self.need,
            reload: self.reload,
            help: self.help,
        }
    }
}

/// The options of a section type, or `None` for a type cloudy does not read.
pub fn options_of(ty: &str) -> Option<Vec<OptionInfo>> {
    match ty {
        "agent" => Some(AGENT_OPTIONS.iter().map(OptionSpec::info).collect()),
        "peer" => Some(PEER_OPTIONS.iter().map(OptionSpec::info).collect()),
        "service" => Some(SERVICE_OPTIONS.iter().map(OptionSpec::info).collect()),
        "store" => Some(STORE_OPTIONS.iter().map(OptionSpec::info).collect()),
        _ => None,
    }
}

/// `config agent` (one section, named or anonymous).
pub const AGENT_OPTIONS: &[OptionSpec<AgentConfig>] = &[
    OptionSpec {
        name: "name",
        kind: Kind::One,
        need: Need::Default("the host name"),
        reload: Reload::Restart(Part::Engine),
        help: "this box's node name: 1-32 letters, digits or '-'",
        set: |a, v| {
            a.name = one(v, node_name)?;
            Ok(())
        },
        same: |x, y| x.name == y.name,
    },
    OptionSpec {
        name: "cloud",
        kind: Kind::One,
        need: Need::Default("cloudy"),
        reload: Reload::Restart(Part::Engine),
        help: "the micro cloud's name; boxes of different clouds never talk",
        set: |a, v| {
            a.cloud = one(v, node_name)?;
            Ok(())
        },
        same: |x, y| x.cloud == y.cloud,
    },
    OptionSpec {
        name: "key_file",
        kind: Kind::One,
        need: Need::Default("/etc/cloudy/key"),
        reload: Reload::Restart(Part::Engine),
        help: "this box's private key, created (mode 0600) on the first start",
        set: |a, v| {
            a.key_file = one(v, key_file)?;
            Ok(())
        },
        same: |x, y| x.key_file == y.key_file,
    },
    OptionSpec {
        name: "listen_port",
        kind: Kind::One,
        need: Need::Default("6556"),
        reload: Reload::Restart(Part::Sockets),
        help: "UDP port of the overlay",
        set: |a, v| {
            a.listen_port = one(v, port)?;
            Ok(())
        },
        same: |x, y| x.listen_port == y.listen_port,
    },
    OptionSpec {
        name: "interface",
        kind: Kind::One,
        need: Need::Default("cloudy0"),
        reload: Reload::Restart(Part::Device),
        help: "the TAP device created in tap mode",
        set: |a, v| {
            a.interface = one(v, ifname)?;
            Ok(())
        },
        same: |x, y| x.interface == y.interface,
    },
    OptionSpec {
        name: "address",
        kind: Kind::List,
        need: Need::Default("none"),
        reload: Reload::Live,
        help: "this box's addresses on the overlay, with prefix length (10.99.0.1/24)",
        set: |a, v| {
            let cap = Cap {
                max: limits::MAX_ADDRESSES,
                what: "addresses",
                limit: "limits::MAX_ADDRESSES",
            };
            let dup = |x: &IpCidr, y: &IpCidr| (x.addr == y.addr).then(|| x.addr.to_string());
            a.addresses = list(v, cidr, cap, dup, "")?;
            Ok(())
        },
        same: |x, y| x.addresses == y.addresses,
    },
    OptionSpec {
        name: "mtu",
        kind: Kind::One,
        need: Need::Default("1392"),
        reload: Reload::Live,
        help: "largest IP packet in one tunnel datagram (576-1500)",
        set: |a, v| {
            a.mtu = one(v, mtu)?;
            Ok(())
        },
        same: |x, y| x.mtu == y.mtu,
    },
    OptionSpec {
        name: "mode",
        kind: Kind::One,
        need: Need::Default("tap"),
        reload: Reload::Restart(Part::Device),
        help: "tap: a new TAP device; raw: bridge the existing raw_device",
        set: |a, v| {
            a.mode = one(v, mode)?;
            Ok(())
        },
        same: |x, y| x.mode == y.mode,
    },
    OptionSpec {
        name: "raw_device",
        kind: Kind::One,
        need: Need::Default("none; required with mode raw"),
        reload: Reload::Restart(Part::Device),
        help: "the interface bridged into the overlay in raw mode",
        set: |a, v| {
            a.raw_device = Some(one(v, ifname)?);
            Ok(())
        },
        same: |x, y| x.raw_device == y.raw_device,
    },
    OptionSpec {
        name: "log_level",
        kind: Kind::One,
        need: Need::Default("info"),
        reload: Reload::Live,
        help: "error, warn, info or debug",
        set: |a, v| {
            a.log_level = one(v, log_level)?;
            Ok(())
        },
        same: |x, y| x.log_level == y.log_level,
    },
    OptionSpec {
        name: "mdns",
        kind: Kind::One,
        need: Need::Default("1"),
        reload: Reload::Restart(Part::Discovery),
        help: "service discovery (mDNS/DNS-SD) on the overlay and mdns_interface",
        set: |a, v| {
            a.mdns = one(v, boolean)?;
            Ok(())
        },
        same: |x, y| x.mdns == y.mdns,
    },
    OptionSpec {
        name: "mdns_interface",
        kind: Kind::List,
        need: Need::Default("none"),
        reload: Reload::Live,
        help: "more interfaces (the LAN bridge, say) where discovery runs",
        set: |a, v| {
            let cap = Cap {
                max: limits::MAX_MDNS_INTERFACES,
                what: "interfaces",
                limit: "limits::MAX_MDNS_INTERFACES",
            };
            let dup = |x: &String, y: &String| (x == y).then(|| show(x));
            a.mdns_interfaces = list(v, ifname, cap, dup, "")?;
            Ok(())
        },
        same: |x, y| x.mdns_interfaces == y.mdns_interfaces,
    },
    OptionSpec {
        name: "authority",
        kind: Kind::One,
        need: Need::Default("none: members are the peers configured here"),
        reload: Reload::Restart(Part::Engine),
        help: "the cloud authority's public key: members are the keys it certifies",
        set: |a, v| {
            a.authority = Some(one(v, authority_key)?);
            Ok(())
        },
        same: |x, y| x.authority == y.authority,
    },
    OptionSpec {
        name: "certificate_file",
        kind: Kind::One,
        need: Need::Default("/etc/cloudy/cert"),
        reload: Reload::Restart(Part::Engine),
        help: "this box's certificate (with an authority); `revoked` is kept beside it",
        set: |a, v| {
            a.certificate_file = one(v, key_file)?;
            Ok(())
        },
        same: |x, y| x.certificate_file == y.certificate_file,
    },
    OptionSpec {
        name: "authority_key_file",
        kind: Kind::One,
        need: Need::Default("/etc/cloudy/authority.key"),
        reload: Reload::Restart(Part::Engine),
        help: "the authority's signing key, on the box that invites and revokes",
        set: |a, v| {
            a.authority_key_file = one(v, key_file)?;
            Ok(())
        },
        same: |x, y| x.authority_key_file == y.authority_key_file,
    },
];

/// `config peer ['NAME']`: another box of the cloud.
pub const PEER_OPTIONS: &[OptionSpec<PeerConfig>] = &[
    OptionSpec {
        name: "name",
        kind: Kind::One,
        need: Need::Default("the section name, else peer- and the key's first 8 characters"),
        reload: Reload::Live,
        help: "the peer's name (its node name, say): 1-32 letters, digits, '_' or '-'",
        set: |p, v| {
            p.name = one(v, peer_name)?;
            Ok(())
        },
        same: |x, y| x.name == y.name,
    },
    OptionSpec {
        name: "public_key",
        kind: Kind::One,
        need: Need::Required(""),
        reload: Reload::Restart(Part::Peer),
        help: "its public key (`cloudy pubkey` on that box), base64",
        set: |p, v| {
            p.public_key = one(v, public_key)?;
            Ok(())
        },
        same: |x, y| x.public_key == y.public_key,
    },
    OptionSpec {
        name: "endpoint",
        kind: Kind::List,
        need: Need::Default("none: learnt from the other peers"),
        reload: Reload::Live,
        help: "where to reach it: host:port, a.b.c.d:port or [v6]:port",
        set: |p, v| {
            let cap = Cap {
                max: limits::MAX_ENDPOINTS_PER_PEER,
                what: "endpoints",
                limit: "limits::MAX_ENDPOINTS_PER_PEER",
            };
            let dup = |x: &Endpoint, y: &Endpoint| (x == y).then(|| x.to_string());
            p.endpoints = list(v, endpoint, cap, dup, "")?;
            Ok(())
        },
        same: |x, y| x.endpoints == y.endpoints,
    },
];

/// `config service ['NAME']`: a DNS-SD service this box announces.
pub const SERVICE_OPTIONS: &[OptionSpec<ServiceConfig>] = &[
    OptionSpec {
        name: "name",
        kind: Kind::One,
        need: Need::Default("the section name, else the service type's name (http)"),
        reload: Reload::Live,
        help: "the instance name it is published as: 1-32 letters, digits, '_' or '-'",
        set: |s, v| {
            s.name = one(v, peer_name)?;
            Ok(())
        },
        same: |x, y| x.name == y.name,
    },
    OptionSpec {
        name: "type",
        kind: Kind::One,
        need: Need::Required(" (like http or _http._tcp)"),
        reload: Reload::Live,
        help: "its DNS-SD type: http, _http._tcp, _printer._udp",
        set: |s, v| {
            s.service_type = one(v, service_type)?;
            Ok(())
        },
        same: |x, y| x.service_type == y.service_type,
    },
    OptionSpec {
        name: "port",
        kind: Kind::One,
        need: Need::Required(""),
        reload: Reload::Live,
        help: "its port",
        set: |s, v| {
            s.port = one(v, port)?;
            Ok(())
        },
        same: |x, y| x.port == y.port,
    },
    OptionSpec {
        name: "txt",
        kind: Kind::List,
        need: Need::Default("none"),
        reload: Reload::Live,
        help: "TXT strings, KEY=VALUE or KEY (RFC 6763 §6)",
        set: |s, v| {
            let cap = Cap {
                max: limits::MAX_TXT_ENTRIES,
                what: "TXT strings",
                limit: "limits::MAX_TXT_ENTRIES",
            };
            let dup = |x: &String, y: &String| {
                let (kx, ky) = (
                    txt_key(x).unwrap_or_default(),
                    txt_key(y).unwrap_or_default(),
                );
                kx.eq_ignore_ascii_case(ky)
                    .then(|| format!("key {}", show(ky)))
            };
            let note = "; keys are compared ignoring case, RFC 6763 §6.4";
            s.txt = list(v, txt, cap, dup, note)?;
            Ok(())
        },
        same: |x, y| x.txt == y.txt,
    },
    OptionSpec {
        name: "host",
        kind: Kind::One,
        need: Need::Default("this node"),
        reload: Reload::Live,
        help: "the host label its SRV record names",
        set: |s, v| {
            s.host = Some(one(v, host_label)?);
            Ok(())
        },
        same: |x, y| x.host == y.host,
    },
];

/// `config store` (one section, named or anonymous; none: a client only).
/// `path` is required when enabled, and K <= N, H <= N: checked by
/// `uci::store_section` once all options are read.
pub const STORE_OPTIONS: &[OptionSpec<StoreConfig>] = &[
    OptionSpec {
        name: "enabled",
        kind: Kind::One,
        need: Need::Default("1"),
        reload: Reload::Restart(Part::Store),
        help: "keep shares for the cloud; 0: a client only, whose puts still use shares_*",
        set: |s, v| {
            s.enabled = one(v, boolean)?;
            Ok(())
        },
        same: |x, y| x.enabled == y.enabled,
    },
    OptionSpec {
        name: "path",
        kind: Kind::One,
        need: Need::Default("none; required when enabled"),
        reload: Reload::Restart(Part::Store),
        help: "the directory that keeps the shares (a mounted disk); must exist and be writable",
        set: |s, v| {
            s.path = Some(one(v, store_path)?);
            Ok(())
        },
        same: |x, y| x.path == y.path,
    },
    OptionSpec {
        name: "quota",
        kind: Kind::One,
        need: Need::Default("1G"),
        reload: Reload::Live,
        help: "most bytes of shares kept: 2G, 512M, 1048576 (K/M/G/T: powers of 1024), at least 1M",
        set: |s, v| {
            s.quota = one(v, quota)?;
            Ok(())
        },
        same: |x, y| x.quota == y.quota,
    },
    OptionSpec {
        name: "shares_needed",
        kind: Kind::One,
        need: Need::Default("3"),
        reload: Reload::Nothing,
        help: "K: shares that rebuild a file, for puts from this box (1 to shares_total)",
        set: |s, v| {
            s.shares_needed = one(v, share_count)?;
            Ok(())
        },
        same: |x, y| x.shares_needed == y.shares_needed,
    },
    OptionSpec {
        name: "shares_total",
        kind: Kind::One,
        need: Need::Default("10"),
        reload: Reload::Nothing,
        help: "N: shares a put from this box makes (shares_needed to 64)",
        set: |s, v| {
            s.shares_total = one(v, share_count)?;
            Ok(())
        },
        same: |x, y| x.shares_total == y.shares_total,
    },
    OptionSpec {
        name: "shares_happy",
        kind: Kind::One,
        need: Need::Default("7"),
        reload: Reload::Nothing,
        help: "H: distinct boxes that must take a share for a put to succeed (1 to shares_total)",
        set: |s, v| {
            s.shares_happy = one(v, share_count)?;
            Ok(())
        },
        same: |x, y| x.shares_happy == y.shares_happy,
    },
    OptionSpec {
        name: "port",
        kind: Kind::One,
        need: Need::Default("6557"),
        reload: Reload::Restart(Part::Store),
        help: "TCP port of the store on the overlay",
        set: |s, v| {
            s.port = one(v, port)?;
            Ok(())
        },
        same: |x, y| x.port == y.port,
    },
];

/// Every section type and option, for people: Markdown, from the tables.
pub fn reference() -> String {
    let mut out = String::from(
        "| section | option | values | default | on reload | what |\n\
         |---|---|---|---|---|---|\n",
    );
    for ty in SECTION_TYPES {
        for o in options_of(ty).unwrap_or_default() {
            let kind = match o.kind {
                Kind::One => "one",
                Kind::List => "list",
            };
            let need = match o.need {
                Need::Default(d) => d.to_string(),
                Need::Required(_) => "required".to_string(),
            };
            out.push_str(&format!(
                "| `{ty}` | `{}` | {kind} | {need} | {} | {} |\n",
                o.name,
                o.reload.describe(),
                o.help
            ));
        }
    }
    out
}

// ---------------------------------------------------------------- helpers

/// The value of a [`Kind::One`] option, parsed.
fn one<V>(values: &[Value], parse: fn(&str) -> Result<V, String>) -> Result<V, Bad> {
    let Some(v) = values.last() else {
        return Err(Bad {
            line: 0,
            list: false,
            message: "missing value".into(),
        });
    };
    parse(&v.text).map_err(|m| Bad::at(v, m))
}

/// A cap on a list's length, for its error.
struct Cap {
    max: usize,
    /// "addresses"
    what: &'static str,
    /// "limits::MAX_ADDRESSES"
    limit: &'static str,
}

/// The values of a [`Kind::List`] option, parsed; `dup(earlier, new)`
/// names a duplicate (`10.0.0.1`), `note` ends the "first at line" note.
fn list<V>(
    values: &[Value],
    parse: fn(&str) -> Result<V, String>,
    cap: Cap,
    dup: impl Fn(&V, &V) -> Option<String>,
    note: &str,
) -> Result<Vec<V>, Bad> {
    let mut out: Vec<(V, usize)> = Vec::new();
    for v in values {
        let x = parse(&v.text).map_err(|m| Bad::at(v, m))?;
        if let Some((what, first)) = out.iter().find_map(|(y, l)| dup(y, &x).map(|w| (w, *l))) {
            return Err(twice(v, &what, first, note));
        }
        if out.len() >= cap.max {
            return Err(too_many(v, &cap));
        }
        out.push((x, v.line));
    }
    Ok(out.into_iter().map(|(x, _)| x).collect())
}

// The errors of `list`, apart so that its copies (one per value type) stay small.

#[cold]
fn twice(v: &Value, what: &str, first: usize, note: &str) -> Bad {
    Bad::at(
        v,
        format!("{what} given twice (first at line {first}{note})"),
    )
}

#[cold]
fn too_many(v: &Value, cap: &Cap) -> Bad {
    let m = format!("too many {}, at most {} ({})", cap.what, cap.max, cap.limit);
    Bad::at(v, m)
}

fn expected(what: &str, value: &str) -> String {
    format!("expected {what}, got {}", show(value))
}

// ---------------------------------------------------------------- value parsers

/// A UCI boolean: `1/0`, `yes/no`, `on/off`, `true/false`,
/// `enabled/disabled` (lower case, as OpenWrt's `config_get_bool`).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "yes" | "on" | "true" | "enabled" => Some(true),
        "0" | "no" | "off" | "false" | "disabled" => Some(false),
        _ => None,
    }
}

fn boolean(s: &str) -> Result<bool, String> {
    parse_bool(s).ok_or_else(|| {
        expected(
            "a boolean: 1/0, yes/no, on/off, true/false or enabled/disabled",
            s,
        )
    })
}

/// A node or cloud name: 1 to `limits::MAX_NAME_LEN` of `[A-Za-z0-9-]`.
pub fn is_valid_node_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= limits::MAX_NAME_LEN
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn node_name(s: &str) -> Result<String, String> {
    if !is_valid_node_name(s) {
        let what = format!("1-{} letters, digits or '-'", limits::MAX_NAME_LEN);
        return Err(expected(&what, s));
    }
    Ok(s.to_string())
}

/// A peer's or service's name: 1 to `limits::MAX_NAME_LEN` of
/// `[A-Za-z0-9_-]` (a UCI section name, or a node name).
pub fn is_valid_peer_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= limits::MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn peer_name(s: &str) -> Result<String, String> {
    if !is_valid_peer_name(s) {
        let what = format!("1-{} letters, digits, '_' or '-'", limits::MAX_NAME_LEN);
        return Err(expected(&what, s));
    }
    Ok(s.to_string())
}

fn key_file(s: &str) -> Result<PathBuf, String> {
    let ok = s.starts_with('/')
        && !s.ends_with('/')
        && s.len() <= MAX_PATH_LEN
        && !s.chars().any(char::is_control);
    if !ok {
        return Err(expected("an absolute file path like /etc/cloudy/key", s));
    }
    Ok(PathBuf::from(s))
}

/// A store's directory: absolute, no control characters, at most
/// `MAX_PATH_LEN`; trailing '/'s are dropped (`/mnt/sda1/cloudy/`).
fn store_path(s: &str) -> Result<PathBuf, String> {
    let trimmed = s.trim_end_matches('/');
    let dir = if trimmed.is_empty() {
        s.get(..1).unwrap_or("")
    } else {
        trimmed
    };
    let ok = dir.starts_with('/') && s.len() <= MAX_PATH_LEN && !s.chars().any(char::is_control);
    if !ok {
        return Err(expected(
            "an absolute directory path like /mnt/sda1/cloudy",
            s,
        ));
    }
    Ok(PathBuf::from(dir))
}

/// The shift of a size's unit: none or `B` (bytes), K, M, G, T (powers
/// of 1024), in any case, each optionally followed by `B` or `iB`.
fn size_shift(unit: &str) -> Option<u32> {
    let unit = unit.to_ascii_lowercase();
    if unit.is_empty() || unit == "b" {
        return Some(0);
    }
    let mut chars = unit.chars();
    let shift = match chars.next()? {
        'k' => 10,
        'm' => 20,
        'g' => 30,
        't' => 40,
        _ => return None,
    };
    matches!(chars.as_str(), "" | "b" | "ib").then_some(shift)
}

/// A size in bytes as `option quota` takes it: decimal digits, then
/// optionally K, M, G or T (powers of 1024), in any case, optionally
/// followed by `B` or `iB` (`1048576`, `512M`, `2G`, `2GiB`, `1tb`).
/// No sign, spaces or fraction (`1.5G` is `1536M`), as Tahoe-LAFS's
/// sizes. `None` when malformed or beyond `u64`.
pub fn parse_size(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = s.split_at(digits);
    let shift = size_shift(unit)?;
    let n: u64 = number.parse().ok()?;
    n.checked_mul(1u64 << shift)
}

/// A size as [`parse_size`] reads it, in the largest unit that divides
/// it: `2G`, `1536M`, `1048577`.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
        if bytes != 0 && bytes % (1u64 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// `1.5G` as a whole size (`1536M`), for the error that refuses it;
/// `None` unless it is a whole number of bytes.
fn without_fraction(s: &str) -> Option<String> {
    let (whole, rest) = s.split_once('.')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (fraction, unit) = rest.split_at(digits);
    let shift = size_shift(unit)?;
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || fraction.is_empty() || fraction.len() > 12 || !all_digits(whole) {
        return None;
    }
    let scale = 10u128.pow(u32::try_from(fraction.len()).ok()?);
    let number: u128 = format!("{whole}{fraction}").parse().ok()?;
    let scaled = number.checked_mul(1u128 << shift)?;
    if scaled % scale != 0 {
        return None;
    }
    u64::try_from(scaled / scale).ok().map(format_size)
}

fn quota(s: &str) -> Result<u64, String> {
    let form = "a size like 2G, 512M or 1048576 (bytes, or K, M, G, T: powers of 1024)";
    match parse_size(s) {
        Some(n) if n >= MIN_STORE_QUOTA => Ok(n),
        Some(_) => Err(expected("a quota of at least 1M (1048576 bytes)", s)),
        None => match without_fraction(s) {
            Some(whole) => Err(format!(
                "{}: no fractions, write {whole}",
                expected(form, s)
            )),
            None => Err(expected(form, s)),
        },
    }
}

/// K, N or H: 1 to `limits::MAX_SHARES`.
fn share_count(s: &str) -> Result<u8, String> {
    parse_decimal(s, 3)
        .filter(|n| (1..=limits::MAX_SHARES as u32).contains(n))
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| expected(&format!("a number of shares 1-{}", limits::MAX_SHARES), s))
}

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

fn port(s: &str) -> Result<u16, String> {
    parse_port(s).ok_or_else(|| expected("a port number 1-65535", s))
}

fn mtu(s: &str) -> Result<u16, String> {
    parse_decimal(s, 5)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|m| (MIN_MTU..=MAX_MTU).contains(m))
        .ok_or_else(|| expected(&format!("an MTU {MIN_MTU}-{MAX_MTU}"), s))
}

fn mode(s: &str) -> Result<Mode, String> {
    match s {
        "tap" => Ok(Mode::Tap),
        "raw" => Ok(Mode::Raw),
        _ => Err(expected("one of: tap, raw", s)),
    }
}

fn log_level(s: &str) -> Result<Level, String> {
    Level::parse(s).ok_or_else(|| expected("one of: error, warn, info, debug", s))
}

pub fn is_valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_IFNAME_LEN
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn ifname(s: &str) -> Result<String, String> {
    if !is_valid_ifname(s) {
        let what =
            format!("an interface name of 1-{MAX_IFNAME_LEN} letters, digits, '_', '.' or '-'");
        return Err(expected(&what, s));
    }
    Ok(s.to_string())
}

pub(crate) fn cidr(s: &str) -> Result<IpCidr, String> {
    let form = "an address with prefix length like 10.0.0.1/24 or fd00::1/64";
    let Some((addr, prefix)) = s.split_once('/') else {
        return Err(expected(form, s));
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return Err(expected(form, s));
    };
    let (family, max) = match addr {
        IpAddr::V4(_) => ("IPv4", 32),
        IpAddr::V6(_) => ("IPv6", 128),
    };
    let prefix = match parse_decimal(prefix, 3).and_then(|p| u8::try_from(p).ok()) {
        Some(p) if (1..=max).contains(&p) => p,
        _ => {
            return Err(expected(
                &format!("a prefix length 1-{max} for {family}"),
                s,
            ))
        }
    };
    let unusable = match addr {
        IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast(),
    };
    if unusable {
        return Err(format!(
            "{} (unspecified, multicast or broadcast)",
            expected("a unicast address", s)
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
    s.split('.').all(is_valid_host_label)
        && !s
            .rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

fn endpoint(s: &str) -> Result<Endpoint, String> {
    let bad = || expected("host:port, a.b.c.d:port or [v6]:port", s);
    let bad_port = || expected("a port number 1-65535 after ':'", s);
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

fn public_key(s: &str) -> Result<[u8; 32], String> {
    crate::keys::decode_public(s).ok_or_else(|| {
        expected(
            "a public key: 44 characters of base64 encoding 32 bytes (as WireGuard)",
            s,
        )
    })
}

fn authority_key(s: &str) -> Result<[u8; 32], String> {
    crate::trust::AuthorityPublic::from_base64(s)
        .map(|a| a.0)
        .ok_or_else(|| {
            expected(
                "the authority's public key: 44 characters of base64 (`cloudy authority init` prints it)",
                s,
            )
        })
}

fn service_type(s: &str) -> Result<String, String> {
    super::uci::normalize_service_type(s).map_err(|m| format!("expected {m}"))
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

fn txt(s: &str) -> Result<String, String> {
    if txt_key(s).is_none() {
        let why = if s.len() > MAX_TXT_LEN {
            format!(", {} bytes", s.len())
        } else {
            String::new()
        };
        return Err(format!(
            "expected KEY=VALUE or KEY (RFC 6763 §6): at most {MAX_TXT_LEN} bytes, a key of \
             printable ASCII without '=', no control characters, got {}{why}",
            show(s)
        ));
    }
    Ok(s.to_string())
}

/// A host label (RFC 1123): 1-63 letters, digits or '-', no '-' at either end.
pub fn is_valid_host_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL_LEN
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn host_label(s: &str) -> Result<String, String> {
    if !is_valid_host_label(s) {
        let what = format!(
            "a host label of 1-{MAX_LABEL_LEN} letters, digits or '-', no '-' at either end \
             (default: this node)"
        );
        return Err(expected(&what, s));
    }
    Ok(s.to_string())
}

/// The device mDNS always runs on: the raw device in raw mode, else the TAP.
pub fn overlay_device(a: &AgentConfig) -> &str {
    match (a.mode, &a.raw_device) {
        (Mode::Raw, Some(dev)) => dev,
        _ if a.interface.is_empty() => DEFAULT_INTERFACE,
        _ => &a.interface,
    }
}

/// The name of a peer without one: `peer-` and the first 8 characters of
/// its base64 key, `+` and `/` written `-` and `_` (RFC 4648 §5), so it is
/// a valid name and matches the start of `cloudy pubkey` on that box.
pub fn derived_peer_name(key: &[u8; 32]) -> String {
    let b64 = crate::keys::encode_public(key);
    let head: String = b64
        .chars()
        .take(8)
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    format!("peer-{head}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<T>(t: &[OptionSpec<T>]) -> Vec<&'static str> {
        t.iter().map(|o| o.name).collect()
    }

    #[test]
    fn tables_are_well_formed() {
        for ty in SECTION_TYPES {
            let opts = options_of(ty).unwrap_or_default();
            assert!(!opts.is_empty(), "{ty}");
            for (i, o) in opts.iter().enumerate() {
                // libuci's option names; unique; documented.
                assert!(
                    o.name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                    "{ty}.{}",
                    o.name
                );
                assert!(
                    !opts[..i].iter().any(|p| p.name == o.name),
                    "{ty}.{}",
                    o.name
                );
                assert!(!o.help.is_empty(), "{ty}.{}", o.name);
            }
        }
        assert_eq!(options_of("foo"), None);
        assert_eq!(
            names(AGENT_OPTIONS),
            [
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
                "authority",
                "certificate_file",
                "authority_key_file"
            ]
        );
        assert_eq!(names(PEER_OPTIONS), ["name", "public_key", "endpoint"]);
        assert_eq!(
            names(SERVICE_OPTIONS),
            ["name", "type", "port", "txt", "host"]
        );
        assert_eq!(
            names(STORE_OPTIONS),
            [
                "enabled",
                "path",
                "quota",
                "shares_needed",
                "shares_total",
                "shares_happy",
                "port"
            ]
        );
        // The effects: the server restarts for where and whether
        // it serves, the quota is live, K/N/H are read by each put.
        let reload = |name: &str| {
            STORE_OPTIONS
                .iter()
                .find(|o| o.name == name)
                .map(|o| o.reload)
        };
        for name in ["enabled", "path", "port"] {
            assert_eq!(reload(name), Some(Reload::Restart(Part::Store)), "{name}");
        }
        assert_eq!(reload("quota"), Some(Reload::Live));
        for name in ["shares_needed", "shares_total", "shares_happy"] {
            assert_eq!(reload(name), Some(Reload::Nothing), "{name}");
        }
        // The defaults the reference states are the parser's.
        let s = crate::config::StoreConfig::section_defaults();
        let default = |name: &str| match STORE_OPTIONS.iter().find(|o| o.name == name) {
            Some(OptionSpec {
                need: Need::Default(d),
                ..
            }) => *d,
            _ => panic!("{name} has no default"),
        };
        assert_eq!(default("enabled"), "1");
        assert!(s.enabled);
        assert_eq!(parse_size(default("quota")), Some(s.quota));
        for (name, value) in [
            ("shares_needed", u16::from(s.shares_needed)),
            ("shares_total", u16::from(s.shares_total)),
            ("shares_happy", u16::from(s.shares_happy)),
            ("port", s.port),
        ] {
            assert_eq!(default(name), value.to_string(), "{name}");
        }
        let need = |name: &str| {
            STORE_OPTIONS
                .iter()
                .find(|o| o.name == name)
                .map(|o| o.need)
        };
        assert_eq!(
            need("path"),
            Some(Need::Default("none; required when enabled"))
        );
        // The help's "to 64".
        assert_eq!(limits::MAX_SHARES, 64);
    }

    #[test]
    fn reference_lists_every_option() {
        let r = reference();
        for ty in SECTION_TYPES {
            for o in options_of(ty).unwrap_or_default() {
                let row = format!("| `{ty}` | `{}` |", o.name);
                assert!(r.contains(&row), "{row}");
            }
        }
        assert!(r.contains(
            "| `peer` | `public_key` | one | required | restarts that peer's sessions |"
        ));
        assert!(r.contains("| `agent` | `address` | list | none | applied in place |"));
        assert!(r.contains(
            "| `store` | `path` | one | none; required when enabled | restarts the store (open \
             transfers are cut) |"
        ));
        assert!(r.contains("| `store` | `quota` | one | 1G | applied in place |"));
        assert!(r.contains("| `store` | `shares_happy` | one | 7 | nothing |"));
    }

    #[test]
    fn reload_order() {
        assert!(Reload::Nothing < Reload::Live);
        assert!(Reload::Live < Reload::Restart(Part::Peer));
        assert!(Reload::Restart(Part::Sockets) < Reload::Restart(Part::Engine));
        // Only the store's transfers, less than the overlay under them.
        assert!(Reload::Restart(Part::Store) < Reload::Restart(Part::Device));
    }

    #[test]
    fn derived_names() {
        assert_eq!(derived_peer_name(&[1; 32]), "peer-AQEBAQEB");
        // '+' and '/' of base64 become '-' and '_'.
        assert_eq!(derived_peer_name(&[0xfb; 32]), "peer--_v7-_v7");
        assert!(is_valid_peer_name(&derived_peer_name(&[0xff; 32])));
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
}
