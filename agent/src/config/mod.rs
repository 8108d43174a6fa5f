//! Typed configuration of the agent, parsed from UCI (`/etc/config/cloudy`).
//!
//! [`lexer`] reads UCI text exactly as libuci does; [`schema`] declares
//! each section type's options once (one table per type: single or list,
//! value parser, default, reload effect); [`uci`] turns text into
//! [`Config`] or a [`ConfigError`] naming file, line and the expected
//! form; [`diff`] lists what changed between two configs, with what each
//! change needs on reload. Nothing here touches the running agent.

pub mod diff;
pub mod lexer;
pub mod schema;
pub mod uci;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::log::Level;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/config/cloudy";
pub const DEFAULT_KEY_FILE: &str = "/etc/cloudy/key";
/// This box's member certificate (with an authority).
pub const DEFAULT_CERTIFICATE_FILE: &str = "/etc/cloudy/cert";
/// The authority's signing key, on the one box that holds it.
pub const DEFAULT_AUTHORITY_KEY_FILE: &str = "/etc/cloudy/authority.key";
pub const DEFAULT_LISTEN_PORT: u16 = 6556;
pub const DEFAULT_INTERFACE: &str = "cloudy0";
/// Fits a tunnel packet (IPv6 + UDP + header + tag + relay envelope) in a
/// 1500-byte underlay without fragmentation; see `overlay::wire`.
pub const DEFAULT_MTU: u16 = 1392;
pub const MIN_MTU: u16 = 576;
pub const MAX_MTU: u16 = 1500;

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub agent: AgentConfig,
    /// Configured peers, in file order, names unique, at most `limits::MAX_PEERS`.
    pub peers: Vec<PeerConfig>,
    /// Services published by DNS-SD (`config service 'NAME'`), in file
    /// order, names unique ignoring case, at most `limits::MAX_SERVICES`.
    pub services: Vec<ServiceConfig>,
}

/// `config agent` (one section, named or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// This box's node name (`[A-Za-z0-9-]`, ≤ 32); default: the hostname.
    pub name: String,
    /// The micro cloud's name; boxes of different clouds never handshake.
    pub cloud: String,
    pub key_file: PathBuf,
    pub listen_port: u16,
    /// Overlay device name (tap mode), ≤ 15 bytes.
    pub interface: String,
    /// Overlay addresses with prefix length (list `address`).
    pub addresses: Vec<IpCidr>,
    pub mtu: u16,
    pub mode: Mode,
    /// Existing interface bridged into the overlay in raw mode.
    pub raw_device: Option<String>,
    pub log_level: Level,
    /// mDNS/DNS-SD responder and browser on (`option mdns`, default on).
    pub mdns: bool,
    /// Interfaces where mDNS also runs, besides the overlay device (list
    /// `mdns_interface`): unique, never the overlay device itself, at most
    /// `limits::MAX_MDNS_INTERFACES`.
    pub mdns_interfaces: Vec<String>,
    /// The cloud authority's Ed25519 public key (`option authority`):
    /// with one, members are the keys it certified (see `crate::trust`).
    pub authority: Option<[u8; 32]>,
    /// The authority's signing key, read when present (the box that
    /// invites and revokes).
    pub authority_key_file: PathBuf,
    /// This box's certificate; the revocation list is kept beside it
    /// (`revoked` in the same directory).
    pub certificate_file: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A TAP device created by the agent.
    Tap,
    /// An AF_PACKET raw socket on an existing interface.
    Raw,
}

/// `config peer ['NAME']`, named or anonymous.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// `option name`, else the section name, else `peer-` and the first 8
    /// characters of the base64 key (`+`/`/` as `-`/`_`); 1-32 of
    /// `[A-Za-z0-9_-]`, unique.
    pub name: String,
    pub public_key: [u8; 32],
    /// Where to reach it; empty means "wait for it, or learn it by gossip".
    pub endpoints: Vec<Endpoint>,
}

/// `config service ['NAME']`: one DNS-SD service instance (RFC 6763 §4.1)
/// published as `NAME._type._proto.local`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The instance name: `option name`, else the section name, else the
    /// type's service name (`http`); 1-32 of `[A-Za-z0-9_-]`.
    pub name: String,
    /// Normalised, lower case: `_TYPE._tcp` or `_TYPE._udp`, TYPE a valid
    /// service name (RFC 6763 §7, RFC 6335 §5.1).
    pub service_type: String,
    pub port: u16,
    /// TXT strings (RFC 6763 §6) in file order: `KEY=VALUE` or a bare `KEY`,
    /// each ≤ 255 bytes, keys unique ignoring case, at most
    /// `limits::MAX_TXT_ENTRIES`.
    pub txt: Vec<String>,
    /// Host label (`[A-Za-z0-9-]`, ≤ 63) the SRV record points at; `None`
    /// means this node.
    pub host: Option<String>,
}

/// `host:port`, `a.b.c.d:port` or `[v6]:port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Addr(SocketAddr),
    /// Resolved by the runtime at start and on reload.
    Host(String, u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpCidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Addr(a) => write!(f, "{a}"),
            Endpoint::Host(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// A configuration error: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the error is about the file as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// A peer section holding this box's own public key is a mistake (a
    /// copied config): the engine could never reach it, so it is an
    /// error, never ignored silently.
    pub fn check_own_key(&self, own_public: &[u8; 32]) -> Result<(), String> {
        match self.peers.iter().find(|p| &p.public_key == own_public) {
            Some(p) => Err(format!(
                "peer '{}' holds this box's own public key (from {}): remove that section",
                p.name,
                self.agent.key_file.display()
            )),
            None => Ok(()),
        }
    }
}
