//! Typed configuration of the agent, parsed from UCI (`/etc/config/cloudy`).
//!
//! [`uci`] turns text into [`Config`] or a [`ConfigError`] naming file,
//! line and the expected form; nothing here touches the running agent.
//! The daemon compares an old and a new `Config` to apply only what changed.

pub mod uci;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::log::Level;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/config/cloudy";
pub const DEFAULT_KEY_FILE: &str = "/etc/cloudy/key";
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A TAP device created by the agent.
    Tap,
    /// An AF_PACKET raw socket on an existing interface.
    Raw,
}

/// `config peer 'NAME'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    pub name: String,
    pub public_key: [u8; 32],
    /// Where to reach it; empty means "wait for it, or learn it by gossip".
    pub endpoints: Vec<Endpoint>,
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
