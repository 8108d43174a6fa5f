//! A member gone bad, written from the documented wire format
//! (`agent/src/overlay/wire.rs` and `noise.rs`, `docs/architecture.md`),
//! not from the agent's code: it holds a real member's key (and
//! certificate), completes a real Noise IK handshake with a box, and then
//! sends whatever authenticated inner messages a test wants.
//!
//! Wire facts used here (all integers big-endian):
//! - HandshakeInit: `1,0,0,0 | sender_index u32 | Noise IK msg 1 | mac1 16 | mac2 16`;
//!   Noise `Noise_IK_25519_ChaChaPoly_BLAKE2s`, prologue
//!   `"cloudy overlay v1\0" ‖ cloud`; payload `timestamp u64 | name_len u8 |
//!   name | certificate`; mac1 = BLAKE2s-128 keyed by
//!   BLAKE2s-256(`"mac1----"` ‖ responder's public key) over the packet up
//!   to mac1; mac2 zero when no cookie is held.
//! - HandshakeResp: `2,0,0,0 | sender_index | receiver_index | Noise msg 2 | mac1 | mac2`.
//! - Data: `4,0,0,0 | receiver_index | counter u64 | ChaCha20-Poly1305`
//!   with the Noise split keys and the Noise nonce (the counter), no AD.
//! - Gossip (inner 4): `count u8, count × (key 32, port u16, family u8 0|4|6, ip, name_len u8, name)`.
//!
//! Every wait is bounded by the caller's timeout.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64ct::{Base64, Encoding};
use blake2::digest::{consts::U16, FixedOutput, KeyInit, Update};
use blake2::{Blake2s256, Blake2sMac, Digest};

const NOISE: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
const PROLOGUE: &[u8] = b"cloudy overlay v1\0";
const MSG_GOSSIP: u8 = 4;

/// Who the hostile member claims to be: a real member's key file, name,
/// cloud and certificate (binary, may be empty).
pub struct Credentials<'a> {
    pub key_file: &'a Path,
    pub name: &'a str,
    pub cloud: &'a str,
    pub cert: &'a [u8],
}

/// One authenticated session from a hostile member to one box.
pub struct HostileMember {
    sock: UdpSocket,
    to: SocketAddr,
    transport: snow::StatelessTransportState,
    receiver_index: u32,
    counter: u64,
}

/// A 32-byte key from its base64 text (a key file or a public key).
pub fn decode_key(text: &str) -> Result<[u8; 32], String> {
    let b = Base64::decode_vec(text.trim()).map_err(|e| format!("base64 key: {e}"))?;
    b.try_into().map_err(|_| "key is not 32 bytes".to_string())
}

fn mac16(key: &[u8], data: &[u8]) -> [u8; 16] {
    let mut m = <Blake2sMac<U16> as KeyInit>::new_from_slice(key).expect("BLAKE2s key");
    Update::update(&mut m, data);
    m.finalize_fixed().into()
}

impl HostileMember {
    /// Handshake from `bind` to the box at `to` (public key `their_key`)
    /// as `me`. Run it inside the member's namespace.
    pub fn connect(
        me: &Credentials<'_>,
        their_key: &str,
        bind: SocketAddr,
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<HostileMember, String> {
        let Credentials {
            key_file,
            name,
            cloud,
            cert,
        } = *me;
        let private = decode_key(
            &std::fs::read_to_string(key_file).map_err(|e| format!("{key_file:?}: {e}"))?,
        )?;
        let responder = decode_key(their_key)?;
        let mut prologue = PROLOGUE.to_vec();
        prologue.extend_from_slice(cloud.as_bytes());
        let mut hs = snow::Builder::new(NOISE.parse().map_err(|e| format!("{e:?}"))?)
            .local_private_key(&private)
            .and_then(|b| b.remote_public_key(&responder))
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_initiator())
            .map_err(|e| format!("noise: {e}"))?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_nanos() as u64;
        let mut payload = timestamp.to_be_bytes().to_vec();
        payload.push(name.len() as u8);
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(cert);
        let sender_index: u32 = 0x4e56_1100 | (timestamp as u32 & 0xff);
        let mut pkt = vec![1, 0, 0, 0];
        pkt.extend_from_slice(&sender_index.to_be_bytes());
        let mut msg = [0u8; 1024];
        let n = hs
            .write_message(&payload, &mut msg)
            .map_err(|e| format!("noise msg 1: {e}"))?;
        pkt.extend_from_slice(&msg[..n]);
        let mut label = Blake2s256::new();
        Digest::update(&mut label, b"mac1----");
        Digest::update(&mut label, responder);
        let mac1 = mac16(&label.finalize(), &pkt);
        pkt.extend_from_slice(&mac1);
        pkt.extend_from_slice(&[0; 16]);

        let sock = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        let mut next_send = Instant::now();
        let receiver_index = loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("no handshake response from {to} in {timeout:?}"));
            }
            if now >= next_send {
                sock.send_to(&pkt, to).map_err(|e| format!("send: {e}"))?;
                next_send = now + Duration::from_millis(500);
            }
            sock.set_read_timeout(Some(Duration::from_millis(100)))
                .map_err(|e| e.to_string())?;
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let r = &buf[..n];
            // A response to this initiation: type 2, our index as receiver.
            if from != to || n < 12 + 48 + 32 || r[0] != 2 || r[8..12] != sender_index.to_be_bytes()
            {
                continue;
            }
            let mut theirs = [0u8; 1024];
            hs.read_message(&r[12..n - 32], &mut theirs)
                .map_err(|e| format!("noise msg 2: {e}"))?;
            break u32::from_be_bytes([r[4], r[5], r[6], r[7]]);
        };
        let transport = hs
            .into_stateless_transport_mode()
            .map_err(|e| format!("transport: {e}"))?;
        Ok(HostileMember {
            sock,
            to,
            transport,
            receiver_index,
            counter: 0,
        })
    }

    /// Seal `inner` (kind byte first) in a data packet and send it.
    pub fn send_inner(&mut self, inner: &[u8]) -> Result<(), String> {
        let mut pkt = vec![4, 0, 0, 0];
        pkt.extend_from_slice(&self.receiver_index.to_be_bytes());
        pkt.extend_from_slice(&self.counter.to_be_bytes());
        let mut sealed = vec![0u8; inner.len() + 16];
        let n = self
            .transport
            .write_message(self.counter, inner, &mut sealed)
            .map_err(|e| format!("seal: {e}"))?;
        self.counter += 1;
        pkt.extend_from_slice(&sealed[..n]);
        self.sock
            .send_to(&pkt, self.to)
            .map_err(|e| format!("send: {e}"))?;
        Ok(())
    }
}

/// A gossip message vouching for `entries` (key, endpoint, name).
pub fn gossip_message(entries: &[([u8; 32], SocketAddrV4, &str)]) -> Vec<u8> {
    let mut m = vec![MSG_GOSSIP, entries.len() as u8];
    for (key, endpoint, name) in entries {
        m.extend_from_slice(key);
        m.extend_from_slice(&endpoint.port().to_be_bytes());
        m.push(4);
        m.extend_from_slice(&endpoint.ip().octets());
        m.push(name.len() as u8);
        m.extend_from_slice(name.as_bytes());
    }
    m
}

/// Where the made-up members of [`table_filling_gossip`] claim to be: a
/// port of the hostile member's own address, so it sees any handshake
/// the victim aims there.
pub const SINK_PORT: u16 = 6999;

/// What [`table_filling_gossip`] did and saw.
#[derive(Debug)]
pub struct FloodReport {
    /// Made-up members vouched for.
    pub entries: usize,
    /// Datagrams the victim sent to the made-up members' address.
    pub aimed_at_sink: usize,
}

/// As `member` (its key file and `cert`), handshake with `victim` and
/// gossip `messages` × 16 made-up members, all "at" `member`'s address
/// port [`SINK_PORT`]; then listen there for `listen` and count what the
/// victim sends to it.
pub fn table_filling_gossip(
    cloud: &str,
    member: &crate::Node,
    cert: &[u8],
    victim: &crate::Node,
    messages: usize,
    listen: Duration,
) -> Result<FloodReport, String> {
    crate::in_netns(&member.ns, || {
        let sink = UdpSocket::bind((member.underlay, SINK_PORT)).map_err(|e| e.to_string())?;
        let me = Credentials {
            key_file: &member.key_file,
            name: &member.name,
            cloud,
            cert,
        };
        let mut session = HostileMember::connect(
            &me,
            &victim.public_key,
            SocketAddr::from((member.underlay, crate::PORT)),
            SocketAddr::from((victim.underlay, crate::PORT)),
            Duration::from_secs(10),
        )?;
        let claimed = SocketAddrV4::new(member.underlay, SINK_PORT);
        let mut rng = crate::Rng::new(0x0060_551b);
        let names: Vec<String> = (0..messages * 16).map(|i| format!("evil{i}")).collect();
        let mut entries = 0;
        for chunk in names.chunks(16) {
            let batch: Vec<([u8; 32], SocketAddrV4, &str)> = chunk
                .iter()
                .map(|n| {
                    let key: [u8; 32] = rng.bytes(32).try_into().expect("32 bytes");
                    (key, claimed, n.as_str())
                })
                .collect();
            session.send_inner(&gossip_message(&batch))?;
            entries += batch.len();
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut aimed_at_sink = 0;
        let deadline = Instant::now() + listen;
        let mut buf = [0u8; 2048];
        sink.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        while Instant::now() < deadline {
            if let Ok((_, from)) = sink.recv_from(&mut buf) {
                if from.ip() == victim.underlay {
                    aimed_at_sink += 1;
                }
            }
        }
        Ok(FloodReport {
            entries,
            aimed_at_sink,
        })
    })
}

/// The bytes of a certificate file's text (`cloudy-cert1:` + base64).
pub fn cert_bytes(text: &str) -> Result<Vec<u8>, String> {
    let b64 = text
        .trim()
        .strip_prefix("cloudy-cert1:")
        .ok_or("no cloudy-cert1: prefix")?;
    Base64::decode_vec(b64).map_err(|e| format!("certificate base64: {e}"))
}
