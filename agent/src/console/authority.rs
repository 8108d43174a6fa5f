//! The authority's commands that need no daemon: `cloudy authority init`
//! (make this box the cloud's authority) and `cloudy sign NAME KEY`
//! (a certificate for a box whose public key the operator has, for clouds
//! run by hand; `cloudy invite` does the same over the network).

use std::net::IpAddr;
use std::path::Path;

use crate::config::{uci, Config};
use crate::runtime::trust::{unix_now, write_atomic};
use crate::trust::{AuthorityKey, AuthorityPublic, Certificate};

/// Certificates are valid this long unless asked otherwise (5 years:
/// community boxes run for years; revocation covers what goes bad).
pub const DEFAULT_LIFETIME_DAYS: u64 = 5 * 365;
/// Longest lifetime `sign` and `invite` accept.
pub const MAX_LIFETIME_DAYS: u64 = 20 * 365;

/// `cloudy authority init`: a new authority key, this box's certificate,
/// and `option authority` added to the agent section.
pub fn init(config_path: &Path) -> Result<String, String> {
    let cfg = uci::load(config_path).map_err(|e| e.to_string())?;
    let a = &cfg.agent;
    if a.authority.is_some() {
        return Err(format!(
            "{} already names the cloud's authority (option authority)",
            config_path.display()
        ));
    }
    if a.authority_key_file.exists() {
        return Err(format!(
            "{} exists: this box already has an authority key",
            a.authority_key_file.display()
        ));
    }
    let text = std::fs::read_to_string(config_path)
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let key = AuthorityKey::generate().map_err(|e| format!("no randomness: {e}"))?;
    let public = key.public();
    let edited = with_authority(&text, &public);
    // Never write a file the agent would not read back the same way.
    let check = uci::parse(&config_path.display().to_string(), &edited)
        .map_err(|e| format!("cannot add option authority: {e}"))?;
    if check.agent.authority != Some(public.0) {
        return Err("cannot add option authority to the agent section".into());
    }
    let (private, _) = crate::keys::load_or_create(&a.key_file).map_err(|e| e.to_string())?;
    let box_key = crate::keys::public_key_of(&private);
    let cert = Certificate::issue(
        &key,
        &a.name,
        &a.cloud,
        box_key,
        unix_now(),
        DEFAULT_LIFETIME_DAYS * 86_400,
        a.addresses.iter().map(|c| (c.addr, c.prefix)).collect(),
    )
    .map_err(|e| format!("certificate: {e}"))?;
    key.write(&a.authority_key_file)
        .map_err(|e| e.to_string())?;
    write_cert(&a.certificate_file, &cert)?;
    write_atomic(config_path, &edited, 0o644)
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    Ok(format!(
        "this box ({}) is now the authority of cloud {}\n\
         authority key: {} (keep it safe: it admits members)\n\
         authority public key: {}\n\
         certificate: {}\n\
         reload the agent (/etc/init.d/cloudy reload), then on this box:\n\
         \x20 cloudy invite NAME      prints a one-time token for a new box\n\
         \x20 cloudy revoke NAME      takes a member out of the cloud",
        a.name,
        a.cloud,
        a.authority_key_file.display(),
        public.to_base64(),
        a.certificate_file.display()
    ))
}

/// `text` with `option authority` as the agent section's first option
/// (a new agent section when there is none).
fn with_authority(text: &str, public: &AuthorityPublic) -> String {
    let line = format!("\toption authority '{}'\n", public.to_base64());
    let mut out = String::with_capacity(text.len() + line.len());
    let mut done = false;
    for l in text.split_inclusive('\n') {
        out.push_str(l);
        let words: Vec<&str> = l.split_whitespace().collect();
        let is_agent = words.first() == Some(&"config")
            && words
                .get(1)
                .is_some_and(|t| t.trim_matches(|c| c == '\'' || c == '"') == "agent");
        if !done && is_agent {
            if !l.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&line);
            done = true;
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("\nconfig agent 'agent'\n");
        out.push_str(&line);
    }
    out
}

pub fn write_cert(path: &Path, cert: &Certificate) -> Result<(), String> {
    let text = cert.to_text().map_err(|e| format!("certificate: {e}"))? + "\n";
    write_atomic(path, &text, 0o644).map_err(|e| format!("{}: {e}", path.display()))
}

/// The authority's key as `cfg` names it, checked against `option
/// authority`.
pub fn authority_key(cfg: &Config) -> Result<AuthorityKey, String> {
    let a = &cfg.agent;
    let Some(public) = a.authority else {
        return Err("no option authority in the config: run `cloudy authority init` first".into());
    };
    let key = AuthorityKey::read(&a.authority_key_file)
        .map_err(|e| format!("this box does not hold the cloud's authority key ({e})"))?;
    if key.public().0 != public {
        return Err(format!(
            "{} is not the key of option authority",
            a.authority_key_file.display()
        ));
    }
    Ok(key)
}

/// `cloudy sign NAME PUBLIC-KEY [ADDRESS/PREFIX ...]`: a certificate's
/// text on stdout.
pub fn sign(
    config_path: &Path,
    name: &str,
    public_key: &str,
    addresses: &[(IpAddr, u8)],
) -> Result<String, String> {
    let cfg = uci::load(config_path).map_err(|e| e.to_string())?;
    let key = authority_key(&cfg)?;
    let member = crate::keys::decode_public(public_key)
        .ok_or_else(|| format!("not a public key (44 characters of base64): '{public_key}'"))?;
    let cert = Certificate::issue(
        &key,
        name,
        &cfg.agent.cloud,
        member,
        unix_now(),
        DEFAULT_LIFETIME_DAYS * 86_400,
        addresses.to_vec(),
    )
    .map_err(|e| format!("certificate: {e} (NAME: 1-32 letters, digits, '-' or '_')"))?;
    cert.to_text().map_err(|e| e.to_string())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn authority_goes_into_the_agent_section() {
        let p = AuthorityKey::from_seed(&[5; 32]).public();
        let t = with_authority("# c\nconfig agent 'a'\n\toption cloud x\n", &p);
        let cfg = uci::parse("t", &t).unwrap();
        assert_eq!(cfg.agent.authority, Some(p.0));
        assert_eq!(cfg.agent.cloud, "x");
        let t = with_authority("", &p);
        assert_eq!(uci::parse("t", &t).unwrap().agent.authority, Some(p.0));
        let t = with_authority(
            "config peer 'b'\n\toption public_key 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='",
            &p,
        );
        assert!(t.contains("\nconfig agent 'agent'\n\toption authority"));
    }
}
