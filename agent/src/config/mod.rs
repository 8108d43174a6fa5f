//! Typed configuration of the agent, parsed from UCI (`/etc/config/cloudy`).
//!
//! [`lexer`] reads UCI text exactly as libuci does; [`schema`] declares
//! each section type's options once (one table per type: single or list,
//! value parser, default, reload effect); [`uci`] turns text into
//! [`Config`] or a [`ConfigError`] naming file, line and the expected
//! form; [`diff`] lists what changed between two configs, with what each
//! change needs on reload. Nothing here touches the running agent, and
//! nothing touches the disk but [`StoreConfig::check_path`].

pub mod diff;
pub mod lexer;
pub mod schema;
pub mod uci;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

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
/// `option quota` of `config store` when absent: 1 GiB.
pub const DEFAULT_STORE_QUOTA: u64 = 1 << 30;
/// The smallest quota: 1 MiB (a few shares of small files).
pub const MIN_STORE_QUOTA: u64 = 1 << 20;
/// K, N and H of a put when `config store` does not say (docs/store.md).
pub const DEFAULT_SHARES_NEEDED: u8 = 3;
pub const DEFAULT_SHARES_TOTAL: u8 = 10;
pub const DEFAULT_SHARES_HAPPY: u8 = 7;

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub agent: AgentConfig,
    /// Configured peers, in file order, names unique, at most `limits::MAX_PEERS`.
    pub peers: Vec<PeerConfig>,
    /// Services published by DNS-SD (`config service 'NAME'`), in file
    /// order, names unique ignoring case, at most `limits::MAX_SERVICES`.
    pub services: Vec<ServiceConfig>,
    /// `config store` (at most one, named or anonymous). `None`: this box
    /// is a client only, its puts use the default K, N and H; that reads
    /// the same as a section with `option enabled '0'` and nothing else
    /// ([`Config::store_or_client`]).
    pub store: Option<StoreConfig>,
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

/// `config store` (one section, named or not): whether this box keeps
/// shares for the cloud, where and how many, and the K-of-N parameters
/// of the puts made on this box (docs/store.md).
///
/// A box that only puts and gets needs no section; one that wants other
/// K, N or H for its puts writes `config store` with `option enabled '0'`
/// and no path. The parser guarantees `1 <= shares_needed <=
/// shares_total <= limits::MAX_SHARES`, `1 <= shares_happy <=
/// shares_total`, `quota >= MIN_STORE_QUOTA`, and a path when enabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Serve storage (`option enabled`, default 1 in a written section).
    pub enabled: bool,
    /// The directory that holds `shares/` and `incoming/`: absolute,
    /// without a trailing '/', at most 4095 bytes. `Some` whenever
    /// `enabled`; a disabled store may have none.
    pub path: Option<PathBuf>,
    /// Most bytes of share files kept (`option quota`, default 1 GiB).
    pub quota: u64,
    /// K: shares that rebuild a file.
    pub shares_needed: u8,
    /// N: shares a put makes.
    pub shares_total: u8,
    /// H: distinct boxes that must take a share for a put to succeed.
    pub shares_happy: u8,
    /// TCP port of the store protocol on the overlay.
    pub port: u16,
}

/// What a box without `config store` holds: a client only, defaults.
static CLIENT_ONLY: StoreConfig = StoreConfig {
    enabled: false,
    path: None,
    quota: DEFAULT_STORE_QUOTA,
    shares_needed: DEFAULT_SHARES_NEEDED,
    shares_total: DEFAULT_SHARES_TOTAL,
    shares_happy: DEFAULT_SHARES_HAPPY,
    port: crate::limits::STORE_PORT,
};

impl StoreConfig {
    /// A written `config store` section before its options are read.
    pub fn section_defaults() -> StoreConfig {
        StoreConfig {
            enabled: true,
            ..CLIENT_ONLY.clone()
        }
    }

    /// The directory this box serves shares from: `Some` exactly when the
    /// store is enabled.
    pub fn serving_path(&self) -> Option<&Path> {
        self.path.as_deref().filter(|_| self.enabled)
    }

    /// Whether `path` can hold the store now: it exists, is a directory
    /// (a symbolic link to one is followed), and a file can be created in
    /// it and removed again. The error names the path and the reason
    /// (a disk not mounted, a read-only mount, a directory of another
    /// user). `cloudy check-config` and the daemon's start call it for an
    /// enabled store; it does not look at `enabled` itself.
    pub fn check_path(&self) -> Result<(), String> {
        let Some(dir) = self.path.as_deref() else {
            return Err("config store has no option path".into());
        };
        check_store_dir(dir).map_err(|why| format!("store path {}: {why}", dir.display()))
    }
}

/// [`StoreConfig::check_path`] without the path in the message.
fn check_store_dir(dir: &Path) -> Result<(), String> {
    use std::io::ErrorKind;
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err("no such directory (is the disk mounted?)".into())
        }
        Err(e) => return Err(format!("cannot be read: {e}")),
        Ok(m) if !m.is_dir() => return Err("is not a directory".into()),
        Ok(_) => {}
    }
    // A name no store file has (those live under shares/ and incoming/),
    // unique to this call.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = dir.join(format!(".cloudy-check-{}-{n}", std::process::id()));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match created {
        Ok(f) => drop(f),
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => {
            return Err("is on a read-only file system".into())
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err("is not writable by this user".into())
        }
        Err(e) => return Err(format!("cannot create a file in it: {e}")),
    }
    std::fs::remove_file(&probe)
        .map_err(|e| format!("cannot remove the test file {}: {e}", probe.display()))
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
    /// The store section, or what a missing one means: `enabled '0'` and
    /// the defaults (a client only).
    pub fn store_or_client(&self) -> &StoreConfig {
        self.store.as_ref().unwrap_or(&CLIENT_ONLY)
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::PermissionsExt;

    fn store_at(path: &Path) -> StoreConfig {
        StoreConfig {
            path: Some(path.to_path_buf()),
            ..StoreConfig::section_defaults()
        }
    }

    /// Nothing left behind in `dir` by a check.
    fn is_empty(dir: &Path) -> bool {
        std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
    }

    #[test]
    fn check_path_accepts_a_writable_directory() {
        let tmp = TempDir::new("store-ok");
        assert_eq!(store_at(tmp.path()).check_path(), Ok(()));
        assert!(is_empty(tmp.path()), "the test file was left behind");
        // Twice in a row (no leftover name clashes), and through a symlink.
        assert_eq!(store_at(tmp.path()).check_path(), Ok(()));
        let link = tmp.path().join("link");
        let target = tmp.path().join("disk");
        std::fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(store_at(&link).check_path(), Ok(()));
        assert!(is_empty(&target));
    }

    #[test]
    fn check_path_names_the_path_and_the_reason() {
        let tmp = TempDir::new("store-bad");
        let missing = tmp.path().join("sda1/cloudy");
        assert_eq!(
            store_at(&missing).check_path(),
            Err(format!(
                "store path {}: no such directory (is the disk mounted?)",
                missing.display()
            ))
        );
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(
            store_at(&file).check_path(),
            Err(format!("store path {}: is not a directory", file.display()))
        );
        // A path below a file.
        let below = file.join("x");
        let e = store_at(&below).check_path().unwrap_err();
        assert!(
            e.starts_with(&format!("store path {}: ", below.display())),
            "{e}"
        );
        // A dangling symlink is a missing directory.
        let dangling = tmp.path().join("dangling");
        std::os::unix::fs::symlink(tmp.path().join("gone"), &dangling).unwrap();
        assert!(store_at(&dangling)
            .check_path()
            .unwrap_err()
            .contains("no such directory"));
        // No path (a disabled store may have none).
        let none = StoreConfig {
            enabled: false,
            ..StoreConfig::section_defaults()
        };
        assert_eq!(
            none.check_path(),
            Err("config store has no option path".into())
        );
        assert_eq!(none.serving_path(), None);
    }

    /// A directory this user cannot write. Root writes anywhere, so as
    /// root the check runs on a thread whose effective uid is `nobody`.
    #[test]
    fn check_path_refuses_a_read_only_directory() {
        let tmp = TempDir::new("store-ro");
        let ro = tmp.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let store = store_at(&ro);
        let result = if nix::unistd::geteuid().is_root() {
            match check_as_nobody(store) {
                Some(r) => r,
                None => {
                    crate::testutil::skip(
                        "config::tests::check_path_refuses_a_read_only_directory",
                        "root writes to any directory, and this target cannot switch one thread to another user",
                    );
                    return;
                }
            }
        } else {
            store.check_path()
        };
        assert_eq!(
            result,
            Err(format!(
                "store path {}: is not writable by this user",
                ro.display()
            ))
        );
        assert!(is_empty(&ro));
    }

    /// `check_path` on a thread running as `nobody` (65534); saved uid 0
    /// lets the thread come back before it ends.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn check_as_nobody(store: StoreConfig) -> Option<Result<(), String>> {
        use crate::sys::socket::thread::set_euid;
        let t = crate::testutil::spawn_named(move || {
            set_euid(65534).expect("setresuid nobody");
            let r = store.check_path();
            set_euid(0).expect("setresuid back to root");
            r
        });
        Some(t.join().expect("check thread"))
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn check_as_nobody(_: StoreConfig) -> Option<Result<(), String>> {
        None
    }

    #[test]
    fn a_missing_store_section_is_a_client() {
        let c = uci::parse_with_default_name("t", "", "h").unwrap();
        assert_eq!(c.store, None);
        let s = c.store_or_client();
        assert!(!s.enabled);
        assert_eq!(s.serving_path(), None);
        assert_eq!(
            (s.shares_needed, s.shares_total, s.shares_happy),
            (3, 10, 7)
        );
        assert_eq!((s.quota, s.port), (1 << 30, crate::limits::STORE_PORT));
        // The same as a section that only says "off".
        let off =
            uci::parse_with_default_name("t", "config store\n\toption enabled 0\n", "h").unwrap();
        assert_eq!(off.store_or_client(), s);
        assert!(StoreConfig::section_defaults().enabled);
    }
}
