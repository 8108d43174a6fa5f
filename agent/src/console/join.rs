//! `cloudy join TOKEN`: a new box joins a cloud in one line.
//!
//! The IO around [`JoinClient`] (`trust::invite`), run standalone, with no
//! daemon: parse the token (an expired one fails before any traffic), read
//! the key file or create it (mode 0600), send the request from an
//! ephemeral UDP port to each of the token's endpoints and wait for an
//! answer ([`JOIN_TRIES`] tries of [`JOIN_TRY_TIMEOUT`], the same request
//! each time), then write the certificate and a complete UCI config: this
//! box's `config agent` and the inviter as its one `config peer`. An
//! existing config is kept as `PATH.before-join`.
//!
//! Answers are read only from the token's endpoints. A refusal
//! (unauthenticated) or an authenticated answer with an unusable
//! certificate ends the attempt; anything else that does not verify is
//! ignored and the wait goes on.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{
    DEFAULT_CERTIFICATE_FILE, DEFAULT_INTERFACE, DEFAULT_KEY_FILE, DEFAULT_LISTEN_PORT,
};
use crate::runtime::trust::{unix_now, write_atomic};
use crate::trust::invite::{JoinClient, JoinError, Joined, Token, MAX_RESPONSE_LEN};

/// Requests sent to each endpoint at most.
pub const JOIN_TRIES: u32 = 5;
/// How long each try waits for an answer.
pub const JOIN_TRY_TIMEOUT: Duration = Duration::from_secs(1);
/// Suffix of the copy of a config that `join` replaced.
pub const BACKUP_SUFFIX: &str = ".before-join";

/// Where `join` writes, and how long it waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinOptions {
    /// The UCI config file to write.
    pub config: PathBuf,
    pub key_file: PathBuf,
    pub cert_file: PathBuf,
    /// The name to ask for (the invitation's own name wins).
    pub name: Option<String>,
    /// This box's overlay port, written into the config.
    pub listen_port: u16,
    pub tries: u32,
    pub try_timeout: Duration,
}

impl JoinOptions {
    /// The defaults, writing the config at `config`.
    pub fn new(config: &Path) -> JoinOptions {
        JoinOptions {
            config: config.to_path_buf(),
            key_file: PathBuf::from(DEFAULT_KEY_FILE),
            cert_file: PathBuf::from(DEFAULT_CERTIFICATE_FILE),
            name: None,
            listen_port: DEFAULT_LISTEN_PORT,
            tries: JOIN_TRIES,
            try_timeout: JOIN_TRY_TIMEOUT,
        }
    }
}

/// Joins the cloud of `token_text`: returns what to print, or the error.
pub fn join(token_text: &str, o: &JoinOptions) -> Result<String, String> {
    let token = Token::parse(token_text).map_err(|e| e.to_string())?;
    if unix_now() >= token.expiry {
        return Err(JoinError::Expired.to_string());
    }
    let (private, created) = crate::keys::load_or_create(&o.key_file).map_err(|e| e.to_string())?;
    let (client, request) =
        JoinClient::start(&token, &private, o.name.as_deref()).map_err(|e| e.to_string())?;
    let (joined, inviter_at) = exchange(&token, client, &request, o)?;
    let c = &joined.certificate;

    let cert_text = c.to_text().map_err(|e| e.to_string())?;
    write(&o.cert_file, &format!("{cert_text}\n"))?;
    let backup = match fs::symlink_metadata(&o.config) {
        Ok(_) => {
            let mut b = o.config.clone().into_os_string();
            b.push(BACKUP_SUFFIX);
            let b = PathBuf::from(b);
            // read + write: smaller than fs::copy's kernel-copy machinery.
            let old = fs::read(&o.config)
                .map_err(|e| format!("cannot read {}: {e}", o.config.display()))?;
            fs::write(&b, old).map_err(|e| format!("cannot write {}: {e}", b.display()))?;
            Some(b)
        }
        Err(_) => None,
    };
    write(&o.config, &uci_config(&joined, inviter_at, o))?;

    let mut s = format!(
        "joined cloud '{}' as '{}', invited by '{}' at {inviter_at}\n",
        c.cloud, c.name, joined.inviter.name
    );
    let key_note = if created { "created" } else { "existing" };
    s += &format!("  key:         {} ({key_note})\n", o.key_file.display());
    s += &format!(
        "  certificate: {} (valid {} more days)\n",
        o.cert_file.display(),
        c.not_after.saturating_sub(unix_now()) / 86_400
    );
    if !c.addresses.is_empty() {
        let a: Vec<String> = c
            .addresses
            .iter()
            .map(|(ip, p)| format!("{ip}/{p}"))
            .collect();
        s += &format!("  addresses:   {}\n", a.join(" "));
    }
    s += &format!("  config:      {}", o.config.display());
    match backup {
        Some(b) => s += &format!(" (the previous one is kept as {})\n", b.display()),
        None => s.push('\n'),
    }
    s += "start the agent: /etc/init.d/cloudy restart\n";
    Ok(s)
}

/// Sends the request and waits for the answer; returns it and where it
/// came from.
fn exchange(
    token: &Token,
    mut client: JoinClient,
    request: &[u8],
    o: &JoinOptions,
) -> Result<(Joined, SocketAddr), String> {
    // Addresses, not text: no name lookup code in the binary.
    let bind = |any: IpAddr, wanted: bool| {
        wanted
            .then(|| UdpSocket::bind(SocketAddr::new(any, 0)).ok())
            .flatten()
    };
    let v4 = bind(
        Ipv4Addr::UNSPECIFIED.into(),
        token.endpoints.iter().any(SocketAddr::is_ipv4),
    );
    let v6 = bind(
        Ipv6Addr::UNSPECIFIED.into(),
        token.endpoints.iter().any(SocketAddr::is_ipv6),
    );
    if v4.is_none() && v6.is_none() {
        return Err("cannot open a UDP socket to reach the inviter".into());
    }
    let mut trouble = String::new();
    let mut buf = vec![0u8; MAX_RESPONSE_LEN + 1];
    for _ in 0..o.tries {
        for to in &token.endpoints {
            let socket = if to.is_ipv4() { &v4 } else { &v6 };
            match socket.as_ref().map(|s| s.send_to(request, to)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => trouble = format!("; cannot send to {to}: {e}"),
                None => trouble = format!("; no socket for {to}"),
            }
        }
        let deadline = Instant::now() + o.try_timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if left.is_zero() {
                break;
            }
            for s in v4.iter().chain(v6.iter()) {
                // Taking turns between the two sockets, a slice each.
                let _ = s.set_read_timeout(Some(left.min(Duration::from_millis(50))));
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    continue;
                };
                if !token
                    .endpoints
                    .iter()
                    .any(|e| e.ip() == from.ip() && e.port() == from.port())
                {
                    continue;
                }
                match client.finish(&buf[..n], unix_now()) {
                    Ok(joined) => return Ok((joined, from)),
                    Err(JoinError::Malformed) => {}
                    Err(e @ JoinError::Handshake) => trouble = format!("; {e}"),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
    }
    let to: Vec<String> = token.endpoints.iter().map(ToString::to_string).collect();
    Err(format!(
        "no answer from the inviter at {} after {} tries{trouble}",
        to.join(", "),
        o.tries
    ))
}

/// A UCI value in single quotes (a `'` as `'\''`, as libuci writes it).
fn q(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// The whole config of a box that just joined.
fn uci_config(j: &Joined, inviter_at: SocketAddr, o: &JoinOptions) -> String {
    let c = &j.certificate;
    let mut s = format!(
        "# Written by 'cloudy join': member '{}' of cloud '{}', invited by '{}'.\n\n\
         config agent 'agent'\n",
        c.name, c.cloud, j.inviter.name
    );
    let options = [
        ("name", c.name.clone()),
        ("cloud", c.cloud.clone()),
        ("key_file", o.key_file.display().to_string()),
        ("certificate_file", o.cert_file.display().to_string()),
        ("authority", j.authority.to_base64()),
        ("listen_port", o.listen_port.to_string()),
        ("mode", "tap".into()),
        ("interface", DEFAULT_INTERFACE.into()),
    ];
    for (k, v) in options {
        s += &format!("\toption {k} {}\n", q(&v));
    }
    for (ip, prefix) in &c.addresses {
        s += &format!("\tlist address {}\n", q(&format!("{ip}/{prefix}")));
    }
    // Section names are letters, digits and '_'; names may have '-'.
    let section = j.inviter.name.replace('-', "_");
    s += &format!("\nconfig peer {}\n", q(&section));
    if section != j.inviter.name {
        s += &format!("\toption name {}\n", q(&j.inviter.name));
    }
    s += &format!(
        "\toption public_key {}\n\tlist endpoint {}\n",
        q(&crate::keys::encode_public(&j.inviter.key)),
        q(&inviter_at.to_string())
    );
    s
}

/// [`write_atomic`], mode 0644, with the path in the error.
fn write(path: &Path, text: &str) -> Result<(), String> {
    write_atomic(path, text, 0o644).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::keys::public_key_of;
    use crate::testutil::TempDir;
    use crate::trust::invite::{Invites, Issuer};
    use crate::trust::{AuthorityKey, Certificate};

    const INVITER: [u8; 32] = [3; 32];

    /// An inviter on 127.0.0.1 in a thread, answering join requests for
    /// at most `secs` seconds; returns its token and the thread (which
    /// gives back how many requests it admitted).
    fn inviter(
        invites: usize,
        secs: u64,
        answer: bool,
    ) -> (Vec<Token>, std::thread::JoinHandle<u64>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let at = socket.local_addr().unwrap();
        let key = public_key_of(&INVITER);
        let now = unix_now();
        let mut table = Invites::new();
        let tokens = (0..invites)
            .map(|i| {
                let name = format!("new{i}");
                let addresses = vec![("10.99.0.2".parse().unwrap(), 24)];
                table
                    .create(Some(&name), addresses, 600, &[at], key, now)
                    .unwrap()
            })
            .collect();
        let t = crate::testutil::spawn_named(move || {
            let authority = AuthorityKey::from_seed(&[1; 32]);
            let cert =
                Certificate::issue(&authority, "box-1", "guifi", key, now, 86_400, vec![]).unwrap();
            let issuer = Issuer {
                authority: &authority,
                cloud: "guifi",
                private: &INVITER,
                certificate: &cert,
                lifetime: 30 * 86_400,
            };
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let start = Instant::now();
            let mut buf = [0u8; 1500];
            let mut out = [0u8; MAX_RESPONSE_LEN];
            while start.elapsed() < Duration::from_secs(secs) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if !answer {
                    continue;
                }
                let mono = crate::time::Instant::from_micros(start.elapsed().as_micros() as u64);
                let (len, _) = table.handle_request(&buf[..n], &issuer, unix_now(), mono, &mut out);
                let _ = socket.send_to(&out[..len], from);
            }
            table.stats.admitted
        });
        (tokens, t)
    }

    fn options(dir: &TempDir) -> JoinOptions {
        let mut o = JoinOptions::new(&dir.path().join("config/cloudy"));
        o.key_file = dir.path().join("etc/key");
        o.cert_file = dir.path().join("etc/cert");
        o.listen_port = 7000;
        o.try_timeout = Duration::from_millis(300);
        o.tries = 3;
        o
    }

    #[test]
    fn join_writes_key_certificate_and_config() {
        let dir = TempDir::new("join");
        let o = options(&dir);
        let (tokens, t) = inviter(2, 3, true);
        let text = tokens[0].to_text().unwrap();
        let out = join(&text, &o).unwrap();
        assert!(
            out.starts_with("joined cloud 'guifi' as 'new0', invited by 'box-1'"),
            "{out}"
        );
        assert!(
            out.contains("(created)") && out.contains("10.99.0.2/24"),
            "{out}"
        );
        assert!(
            out.ends_with("start the agent: /etc/init.d/cloudy restart\n"),
            "{out}"
        );
        let private = crate::keys::read_private(&o.key_file).unwrap();
        let cert_text = fs::read_to_string(&o.cert_file).unwrap();
        let cert = Certificate::from_text(&cert_text).unwrap();
        assert_eq!(cert.key, public_key_of(&private));
        let authority = AuthorityKey::from_seed(&[1; 32]).public();
        assert_eq!(cert.verify(&authority, "guifi", unix_now()), Ok(()));

        let config = fs::read_to_string(&o.config).unwrap();
        let doc = crate::config::lexer::parse(&config).unwrap();
        let shape = doc.shape();
        let opt = |k: &str, v: &str| (k.to_string(), false, vec![v.to_string()]);
        let at = tokens[0].endpoints[0].to_string();
        assert_eq!(shape.len(), 2, "{config}");
        assert_eq!(shape[0].0, "agent");
        assert_eq!(
            shape[0].2,
            vec![
                opt("name", "new0"),
                opt("cloud", "guifi"),
                opt("key_file", &o.key_file.display().to_string()),
                opt("certificate_file", &o.cert_file.display().to_string()),
                opt("authority", &authority.to_base64()),
                opt("listen_port", "7000"),
                opt("mode", "tap"),
                opt("interface", "cloudy0"),
                ("address".into(), true, vec!["10.99.0.2/24".into()]),
            ]
        );
        assert_eq!(
            shape[1],
            (
                "peer".into(),
                Some("box_1".into()),
                vec![
                    opt("name", "box-1"),
                    opt(
                        "public_key",
                        &crate::keys::encode_public(&public_key_of(&INVITER))
                    ),
                    ("endpoint".into(), true, vec![at]),
                ]
            )
        );

        // The daemon reads it as written.
        let cfg = crate::config::uci::parse("cloudy", &config).unwrap();
        assert_eq!(
            (cfg.agent.name.as_str(), cfg.agent.cloud.as_str()),
            ("new0", "guifi")
        );
        assert_eq!(cfg.agent.authority, Some(authority.0));
        assert_eq!(cfg.agent.certificate_file, o.cert_file);
        assert_eq!(cfg.agent.listen_port, 7000);
        assert_eq!(
            cfg.agent.addresses,
            vec![crate::testutil::cidr("10.99.0.2/24")]
        );
        assert_eq!(cfg.peers.len(), 1);
        assert_eq!(cfg.peers[0].name, "box-1");
        assert_eq!(cfg.peers[0].public_key, public_key_of(&INVITER));
        assert_eq!(cfg.peers[0].endpoints.len(), 1);

        // Again with the same key (the same invitation, or a second one):
        // the config is replaced, the old one kept.
        fs::write(&o.config, "# mine\n").unwrap();
        let out = join(&text, &o).unwrap();
        assert!(
            out.contains("(existing)") && out.contains(BACKUP_SUFFIX),
            "{out}"
        );
        let mut backup = o.config.clone().into_os_string();
        backup.push(BACKUP_SUFFIX);
        assert_eq!(fs::read_to_string(backup).unwrap(), "# mine\n");
        assert_eq!(fs::read_to_string(&o.config).unwrap(), config);

        // Another box (another key) with the used token is refused.
        let mut other = o.clone();
        other.key_file = dir.path().join("other/key");
        let e = join(&text, &other).unwrap_err();
        assert!(e.contains("already used"), "{e}");
        assert_eq!(t.join().unwrap(), 2);
    }

    #[test]
    fn expired_and_bad_tokens_fail_before_any_traffic() {
        let dir = TempDir::new("join-expired");
        let o = options(&dir);
        let t = Token {
            id: 1,
            secret: [0; 32],
            inviter: [1; 32],
            expiry: unix_now() - 1,
            endpoints: vec!["127.0.0.1:9".parse().unwrap()],
        };
        let e = join(&t.to_text().unwrap(), &o).unwrap_err();
        assert!(e.contains("expired"), "{e}");
        assert!(join("cloudy1-xyz", &o)
            .unwrap_err()
            .contains("not an invitation token"));
        assert!(
            !o.key_file.exists(),
            "no key made for a token that cannot work"
        );
    }

    #[test]
    fn silent_inviter_times_out() {
        let dir = TempDir::new("join-silent");
        let mut o = options(&dir);
        o.tries = 2;
        o.try_timeout = Duration::from_millis(100);
        let (tokens, t) = inviter(1, 1, false);
        let start = Instant::now();
        let e = join(&tokens[0].to_text().unwrap(), &o).unwrap_err();
        assert!(
            e.starts_with("no answer from the inviter at 127.0.0.1:"),
            "{e}"
        );
        assert!(e.contains("after 2 tries"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(!o.config.exists());
        assert_eq!(t.join().unwrap(), 0);
    }

    #[test]
    fn uci_quoting() {
        assert_eq!(q("a b"), "'a b'");
        assert_eq!(q("it's"), r"'it'\''s'");
        let doc = crate::config::lexer::parse(&format!(
            "config agent\n\toption key_file {}\n",
            q("/x/it's")
        ))
        .unwrap();
        assert_eq!(doc.shape()[0].2[0].2, vec!["/x/it's".to_string()]);
    }
}
