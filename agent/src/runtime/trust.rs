//! The cloud authority's files: this box's certificate, the revocation
//! list kept beside it, and (on the authority's box) the signing key.
//!
//! Read at start and when the engine restarts; a missing certificate is
//! a warning (boxes that list this one in their config still accept it),
//! a certificate for another key, cloud or authority is an error, and a
//! revocation list that does not verify is ignored with a warning. The
//! list is written back whenever a newer one arrives, atomically.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use std::net::{IpAddr, SocketAddr};

use crate::config::Config;
use crate::overlay::node::TrustConfig;
use crate::overlay::Outbox;
pub use crate::trust::invite::Issuer;
use crate::trust::invite::{Invites, JoinError, MAX_RESPONSE_LEN};
use crate::trust::{AuthorityKey, AuthorityPublic, Certificate, RevocationList};
use crate::{info, warn};

/// Longest certificate or revocation file read.
const MAX_FILE: u64 = 4096;

/// The revocation list's file: `revoked` beside the certificate.
pub fn revoked_path(cfg: &Config) -> PathBuf {
    let cert = &cfg.agent.certificate_file;
    cert.parent()
        .unwrap_or_else(|| Path::new("/"))
        .join("revoked")
}

fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut s = String::new();
    fs::File::open(path)?
        .take(MAX_FILE)
        .read_to_string(&mut s)?;
    Ok(s)
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the engine and the console need of the authority.
pub struct Loaded {
    pub engine: Option<TrustConfig>,
    /// The signing key, on the authority's box.
    pub key: Option<AuthorityKey>,
}

/// Read the authority's files for `cfg` and this box's `public` key.
pub fn load(cfg: &Config, public: &[u8; 32]) -> Result<Loaded, String> {
    let Some(authority) = cfg.agent.authority.map(AuthorityPublic) else {
        return Ok(Loaded {
            engine: None,
            key: None,
        });
    };
    let a = &cfg.agent;
    let cert = match read_small(&a.certificate_file) {
        Ok(text) => {
            let path = a.certificate_file.display();
            let c = Certificate::from_text(&text).map_err(|e| format!("{path}: {e}"))?;
            c.verify(&authority, &a.cloud, unix_now())
                .map_err(|e| format!("{path}: the certificate is {e}"))?;
            if &c.key != public {
                return Err(format!(
                    "{path}: the certificate is for another key than {}",
                    a.key_file.display()
                ));
            }
            Some(c)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            warn!(
                "no certificate in {}: only boxes that list this one in their config accept it \
                 (get one with `cloudy join` or from the authority's `cloudy sign`)",
                a.certificate_file.display()
            );
            None
        }
        Err(e) => return Err(format!("{}: {e}", a.certificate_file.display())),
    };
    let revoked_file = revoked_path(cfg);
    let revoked = match read_small(&revoked_file) {
        Ok(text) => match RevocationList::from_text(&text)
            .and_then(|l| l.verify(&authority, &a.cloud).map(|()| l))
        {
            Ok(l) => Some(l),
            Err(e) => {
                warn!("{}: ignored: {e}", revoked_file.display());
                None
            }
        },
        Err(_) => None,
    };
    let key = if a.authority_key_file.exists() {
        let k = AuthorityKey::read(&a.authority_key_file).map_err(|e| e.to_string())?;
        if k.public() != authority {
            return Err(format!(
                "{}: not the key of option authority",
                a.authority_key_file.display()
            ));
        }
        info!("this box holds the cloud's authority key: it can invite and revoke");
        Some(k)
    } else {
        None
    };
    Ok(Loaded {
        engine: Some(TrustConfig {
            authority,
            cert,
            revoked,
        }),
        key,
    })
}

/// Write `text` to `path` atomically (temporary file, fsync, rename),
/// with `mode`.
pub fn write_atomic(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        path.file_name()
            .map_or("cloudy".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// Keep a newer revocation list on disk.
pub fn persist_revocation(cfg: &Config, list: &RevocationList) {
    let path = revoked_path(cfg);
    let text = match list.to_text() {
        Ok(t) => t + "\n",
        Err(e) => return warn!("revocation list: {e}"),
    };
    match write_atomic(&path, &text, 0o644) {
        Ok(()) => info!(
            "revocation list {} ({} keys) saved to {}",
            list.serial,
            list.entries.len(),
            path.display()
        ),
        Err(e) => warn!("cannot save the revocation list to {}: {e}", path.display()),
    }
}

/// A join request on the overlay port (`cloudy join` on a new box):
/// answered from the invitations; the outcome is logged.
pub fn answer_join(
    invites: &mut Invites,
    issuer: &Issuer,
    now: crate::time::Instant,
    from: SocketAddr,
    packet: &[u8],
    out: &mut dyn Outbox,
) {
    let mut buf = [0u8; MAX_RESPONSE_LEN];
    let (n, result) = invites.handle_request(packet, issuer, unix_now(), now, &mut buf);
    if n > 0 {
        out.send(from, &buf[..n]);
    }
    match result {
        Ok(a) if a.retry => info!("{} asked again from {from}: answered", a.name),
        Ok(a) => info!(
            "{} joined from {from} with key {}",
            a.name,
            crate::keys::encode_public(&a.key)
        ),
        // Dropped unanswered (over the rate, malformed): what a flood
        // is made of, so not worth a log line each.
        Err(e @ (JoinError::RateLimited | JoinError::Malformed)) => {
            crate::debug!("join request from {from} dropped: {e}")
        }
        Err(e) => warn!("join request from {from} refused: {e}"),
    }
}

/// Where a new box can reach this one: the addresses of its up
/// interfaces (not loopback, link-local or the overlay device), IPv4
/// first, with `port`; at most `MAX_INVITE_ENDPOINTS`.
pub fn local_endpoints(overlay: &str, port: u16) -> Vec<SocketAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for a in addrs {
        if a.interface_name == overlay
            || !a.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP)
            || a.flags
                .contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK)
        {
            continue;
        }
        let Some(addr) = a.address else { continue };
        if let Some(s) = addr.as_sockaddr_in() {
            let ip = s.ip();
            if !ip.is_loopback() && !ip.is_link_local() && !v4.contains(&IpAddr::V4(ip)) {
                v4.push(IpAddr::V4(ip));
            }
        } else if let Some(s) = addr.as_sockaddr_in6() {
            let ip = s.ip();
            let link_local = ip.segments()[0] & 0xffc0 == 0xfe80;
            if !ip.is_loopback() && !link_local && !v6.contains(&IpAddr::V6(ip)) {
                v6.push(IpAddr::V6(ip));
            }
        }
    }
    v4.into_iter()
        .chain(v6)
        .take(crate::limits::MAX_INVITE_ENDPOINTS)
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}
