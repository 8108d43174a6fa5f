//! `cloudy self-test`: the wire formats and primitives checked against
//! byte fixtures and published test vectors, on the box itself.
//!
//! A binary cross-built for a router (big-endian mips, 32-bit arm, i586)
//! runs this under qemu in CI and on the real box after install: a wrong
//! byte order, integer width or miscompiled primitive shows up as a
//! failed check instead of a silent interop failure in the field.
//!
//! Each check is a plain function returning the first mismatch as text.
//! Nothing here may panic (release builds abort on panic, and a summary
//! is the point): every index is checked, every fallible call mapped to
//! an error. No IO, no clock, no randomness beyond the Noise ephemeral
//! keys. Sources of the vectors: RFC 8439 §2.8.2 (ChaCha20-Poly1305),
//! RFC 7748 §6.1 (X25519), RFC 7693 Appendix B (BLAKE2s), RFC 4648 §10
//! (base64), RFC 1071 and a well-known IPv4 header (Internet checksum).

use std::fmt::Debug;
use std::io::Write;
use std::net::SocketAddr;

use crate::config::{Endpoint, IpCidr, Mode};
use crate::console::proto::{self, FrameDecoder, Request, Response, StatusInfo};
use crate::overlay::noise::{self, Identity, Initiation, ReplayWindow, Responder, Session};
use crate::overlay::offload::{self, Endian, PartialCsum, VnetHdr};
use crate::overlay::wire::{self, GossipEntry, GossipWriter, Message, Packet};
use crate::overlay::OverlayStats;
use crate::time::Instant;

/// The outcome of one check: `Err` holds the first mismatch.
pub type CheckResult = Result<(), String>;

/// One named check.
pub struct Check {
    pub name: &'static str,
    pub run: fn() -> CheckResult,
}

/// Every check, in the order `cloudy self-test` prints them.
pub const CHECKS: &[Check] = &[
    Check {
        name: "wire: outer packets parse/emit",
        run: check_wire_packets,
    },
    Check {
        name: "wire: inner messages parse/emit",
        run: check_wire_messages,
    },
    Check {
        name: "wire: gossip write/parse",
        run: check_gossip,
    },
    #[cfg(feature = "discovery")]
    Check {
        name: "mdns: DNS message parse/emit",
        run: check_mdns,
    },
    Check {
        name: "crypto: X25519 (RFC 7748 6.1)",
        run: check_x25519,
    },
    Check {
        name: "crypto: BLAKE2s-256 (RFC 7693 B)",
        run: check_blake2s,
    },
    Check {
        name: "crypto: ChaCha20-Poly1305 (RFC 8439 2.8.2)",
        run: check_aead_vector,
    },
    Check {
        name: "noise: IK handshake + AEAD round trip",
        run: check_noise,
    },
    Check {
        name: "noise: replay window",
        run: check_replay_window,
    },
    Check {
        name: "config: UCI fixture",
        run: check_uci,
    },
    Check {
        name: "keys: base64 (RFC 4648 10)",
        run: check_base64,
    },
    Check {
        name: "console: postcard frames",
        run: check_console_frames,
    },
    Check {
        name: "offload: vnet header both endians",
        run: check_vnet_hdr,
    },
    Check {
        name: "offload: Internet checksum",
        run: check_checksum,
    },
];

/// Runs every check and prints one line per check, then a summary, to
/// `out`. Returns whether all passed.
pub fn run(out: &mut dyn Write) -> bool {
    // Write errors (a closed stdout) must not hide the verdict, which is
    // also the exit status.
    let _ = writeln!(out, "platform: {}", platform());
    let mut failed = 0usize;
    for check in CHECKS {
        match (check.run)() {
            Ok(()) => {
                let _ = writeln!(out, "ok    {}", check.name);
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(out, "FAIL  {}: {}", check.name, e.replace('\n', " "));
            }
        }
    }
    let total = CHECKS.len();
    if failed == 0 {
        let _ = writeln!(out, "self-test: all {total} checks ok");
    } else {
        let _ = writeln!(out, "self-test: {failed} of {total} checks FAILED");
    }
    let _ = out.flush();
    failed == 0
}

/// Architecture, byte order, word size and AEAD backend of this build.
pub fn platform() -> String {
    let endian = if cfg!(target_endian = "big") {
        "big"
    } else {
        "little"
    };
    let aead = if cfg!(feature = "fast-crypto") {
        "ring"
    } else {
        "RustCrypto"
    };
    format!(
        "{} {endian}-endian {}-bit, AEAD {aead}",
        std::env::consts::ARCH,
        usize::BITS
    )
}

// ---------------------------------------------------------------- helpers

fn same<T: PartialEq + Debug>(what: &str, got: T, want: T) -> CheckResult {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex text; whitespace is ignored. Fixtures only.
fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err("odd hex fixture".into());
    }
    digits
        .chunks_exact(2)
        .map(|p| {
            let s = core::str::from_utf8(p).map_err(|_| "bad hex fixture".to_string())?;
            u8::from_str_radix(s, 16).map_err(|_| format!("bad hex fixture {s}"))
        })
        .collect()
}

fn array32(v: &[u8]) -> Result<[u8; 32], String> {
    <[u8; 32]>::try_from(v).map_err(|_| format!("expected 32 bytes, got {}", v.len()))
}

fn same_bytes(what: &str, got: &[u8], want: &[u8]) -> CheckResult {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {}, want {}", hex(got), hex(want)))
    }
}

// ---------------------------------------------------------------- wire

/// A data packet: receiver 0x12345678, counter 0x0102, 16 bytes of body.
const DATA_PACKET: [u8; 32] = [
    0x04, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02,
    0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
];

fn check_wire_packets() -> CheckResult {
    same(
        "data parse",
        Packet::parse(&DATA_PACKET),
        Ok(Packet::Data {
            receiver_index: 0x1234_5678,
            counter: 0x0102,
        }),
    )?;
    let mut buf = [0u8; 16];
    wire::emit_data_header(&mut buf, 0x1234_5678, 0x0102).map_err(|e| e.to_string())?;
    same_bytes(
        "data header emit",
        &buf,
        DATA_PACKET.get(..16).unwrap_or_default(),
    )?;

    let (nonce, sealed) = (
        [0xab; wire::COOKIE_NONCE_LEN],
        [0xcd; wire::SEALED_COOKIE_LEN],
    );
    let mut buf = [0u8; wire::COOKIE_REPLY_LEN];
    let n = wire::emit_cookie_reply(&mut buf, 0xdead_beef, &nonce, &sealed)
        .map_err(|e| e.to_string())?;
    let mut want = vec![0x03, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
    want.extend_from_slice(&nonce);
    want.extend_from_slice(&sealed);
    same_bytes("cookie reply emit", buf.get(..n).unwrap_or_default(), &want)?;
    same(
        "cookie reply parse",
        Packet::parse(&want),
        Ok(Packet::CookieReply {
            receiver_index: 0xdead_beef,
            nonce,
            sealed,
        }),
    )?;

    let mut buf = [0u8; 12];
    let n =
        wire::emit_resp_header(&mut buf, 0x0102_0304, 0x0a0b_0c0d).map_err(|e| e.to_string())?;
    same_bytes(
        "response header emit",
        buf.get(..n).unwrap_or_default(),
        &[2, 0, 0, 0, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d],
    )?;
    let n = wire::emit_init_header(&mut buf, 0x0506_0708).map_err(|e| e.to_string())?;
    same_bytes(
        "initiation header emit",
        buf.get(..n).unwrap_or_default(),
        &[1, 0, 0, 0, 5, 6, 7, 8],
    )?;
    same(
        "reserved bytes",
        Packet::parse(&[4, 0, 1, 0, 0, 0, 0, 0]),
        Err(wire::WireError::Malformed),
    )?;
    same(
        "truncated data",
        Packet::parse(DATA_PACKET.get(..31).unwrap_or_default()),
        Err(wire::WireError::Truncated),
    )
}

fn check_wire_messages() -> CheckResult {
    let mut buf = [0u8; 13];
    let n = wire::emit_probe(&mut buf, false, 0x0102_0304, 0x0506_0708_090a_0b0c)
        .map_err(|e| e.to_string())?;
    let ping = [2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    same_bytes("ping emit", buf.get(..n).unwrap_or_default(), &ping)?;
    same(
        "ping parse",
        Message::parse(&ping),
        Ok(Message::Ping {
            seq: 0x0102_0304,
            echo: 0x0506_0708_090a_0b0c,
        }),
    )?;
    let csum = PartialCsum {
        start: 34,
        offset: 16,
    };
    same_bytes(
        "frame-partial header",
        &wire::frame_partial_header(csum),
        &[0, 34, 0, 16],
    )?;
    let mut relay = vec![wire::MSG_RELAY_TO, 1, 2, 3, 4, 5, 6, 7, 8];
    relay.extend_from_slice(&ping);
    same(
        "relay parse",
        Message::parse(&relay),
        Ok(Message::RelayTo {
            dst: [1, 2, 3, 4, 5, 6, 7, 8],
            inner: &ping,
        }),
    )?;
    // A relay inside a relay is refused.
    let mut nested = vec![wire::MSG_RELAY_FROM, 8, 7, 6, 5, 4, 3, 2, 1];
    nested.extend_from_slice(&relay);
    same(
        "nested relay",
        Message::parse(&nested),
        Err(wire::WireError::Malformed),
    )
}

fn check_gossip() -> CheckResult {
    let v4: SocketAddr = "192.0.2.1:6556"
        .parse()
        .map_err(|_| "bad v4 fixture".to_string())?;
    let v6: SocketAddr = "[2001:db8::2]:6557"
        .parse()
        .map_err(|_| "bad v6 fixture".to_string())?;
    let entries = [
        GossipEntry {
            key: [0x11; 32],
            endpoint: Some(v4),
            name: "box1",
        },
        GossipEntry {
            key: [0x22; 32],
            endpoint: Some(v6),
            name: "b2",
        },
        GossipEntry {
            key: [0x33; 32],
            endpoint: None,
            name: "",
        },
    ];
    let mut want = vec![wire::MSG_GOSSIP, 3];
    want.extend_from_slice(&[0x11; 32]);
    want.extend_from_slice(&[0x19, 0x9c, 4, 192, 0, 2, 1, 4]);
    want.extend_from_slice(b"box1");
    want.extend_from_slice(&[0x22; 32]);
    want.extend_from_slice(&[0x19, 0x9d, 6, 0x20, 0x01, 0x0d, 0xb8]);
    want.extend_from_slice(&[0; 11]);
    want.extend_from_slice(&[2, 2]);
    want.extend_from_slice(b"b2");
    want.extend_from_slice(&[0x33; 32]);
    want.extend_from_slice(&[0, 0, 0, 0]);

    let mut buf = [0u8; 256];
    let mut w = GossipWriter::new(&mut buf).map_err(|e| e.to_string())?;
    for e in &entries {
        if !w.push(e) {
            return Err("gossip writer refused an entry".into());
        }
    }
    let n = w.finish();
    same_bytes("gossip emit", buf.get(..n).unwrap_or_default(), &want)?;
    let Ok(Message::Gossip(view)) = Message::parse(&want) else {
        return Err("gossip fixture does not parse".into());
    };
    let got: Vec<GossipEntry<'_>> = view.entries().collect();
    same("gossip entries", got.as_slice(), &entries[..])
}

// ---------------------------------------------------------------- mdns
/// An mDNS response (RFC 6762): `box1.local A 192.0.2.1` (cache-flush,
/// TTL 120) and `_http._tcp.local PTR web._http._tcp.local` (TTL 4500),
/// both names compressed against earlier ones (RFC 1035 §4.1.4).
#[cfg(feature = "discovery")]
const MDNS_RESPONSE: [u8; 67] = [
    0x00, 0x00, 0x84, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, // header
    4, b'b', b'o', b'x', b'1', 5, b'l', b'o', b'c', b'a', b'l', 0, // box1.local (12)
    0x00, 0x01, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x04, 192, 0, 2, 1, // A
    5, b'_', b'h', b't', b't', b'p', 4, b'_', b't', b'c', b'p', 0xc0, 17, // (38)
    0x00, 0x0c, 0x00, 0x01, 0x00, 0x00, 0x11, 0x94, 0x00, 0x06, // PTR
    3, b'w', b'e', b'b', 0xc0, 38,
];

#[cfg(feature = "discovery")]
fn check_mdns() -> CheckResult {
    use crate::mdns::name::Name;
    use crate::mdns::wire::{Message as DnsMessage, RData, Record};
    let name = |s: &str| Name::parse_str(s).map_err(|e| format!("name {s}: {e:?}"));
    let want = DnsMessage {
        id: 0,
        flags: 0x8400,
        answers: vec![
            Record::new(
                name("box1.local")?,
                120,
                true,
                RData::A([192, 0, 2, 1].into()),
            ),
            Record::new(
                name("_http._tcp.local")?,
                4500,
                false,
                RData::Ptr(name("web._http._tcp.local")?),
            ),
        ],
        ..DnsMessage::default()
    };
    same("parse", DnsMessage::parse(&MDNS_RESPONSE), Ok(want.clone()))?;
    let bytes = want.emit(9000).map_err(|e| format!("emit: {e}"))?;
    same_bytes("emit", &bytes, &MDNS_RESPONSE)?;
    // A pointer to itself is refused, not followed.
    let mut looped = MDNS_RESPONSE;
    if let Some(p) = looped.get_mut(50) {
        *p = 38;
    }
    if DnsMessage::parse(&looped).is_ok() {
        return Err("a self-referencing name pointer was accepted".into());
    }
    Ok(())
}

// ---------------------------------------------------------------- crypto

fn check_x25519() -> CheckResult {
    let private = array32(&unhex(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    )?)?;
    let public = unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")?;
    same_bytes(
        "public key of Alice's private key",
        &crate::keys::public_key_of(&private),
        &public,
    )
}

fn check_blake2s() -> CheckResult {
    use blake2::Digest;
    let digest = blake2::Blake2s256::digest(b"abc");
    same_bytes(
        "BLAKE2s-256(\"abc\")",
        digest.as_slice(),
        &unhex("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982")?,
    )
}

const RFC8439_PLAINTEXT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
const RFC8439_CIPHERTEXT: &str = "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
    3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b
    58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116";
const RFC8439_TAG: &str = "1ae10b594f09e26a7e902ecbd0600691";

/// The RFC 8439 §2.8.2 vector through the AEAD the transport uses (ring
/// with `fast-crypto`, else RustCrypto): seal, compare, open.
fn check_aead_vector() -> CheckResult {
    let mut key = [0u8; 32];
    for (k, v) in key.iter_mut().zip(0x80u8..) {
        *k = v;
    }
    let nonce: [u8; 12] = [7, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47];
    let aad = [
        0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
    ];
    let want_ct = unhex(RFC8439_CIPHERTEXT)?;
    let want_tag = unhex(RFC8439_TAG)?;
    let mut data = RFC8439_PLAINTEXT.to_vec();
    let tag = aead_seal(&key, nonce, &aad, &mut data)?;
    same_bytes("ciphertext", &data, &want_ct)?;
    same_bytes("tag", &tag, &want_tag)?;
    if !aead_open(&key, nonce, &aad, &mut data, &tag) {
        return Err("open of the sealed vector failed".into());
    }
    same_bytes("plaintext", &data, RFC8439_PLAINTEXT)?;
    let mut bad_tag = tag;
    bad_tag[0] ^= 1;
    if aead_open(&key, nonce, &aad, &mut want_ct.clone(), &bad_tag) {
        return Err("a wrong tag was accepted".into());
    }
    Ok(())
}

#[cfg(feature = "fast-crypto")]
fn aead_seal(
    key: &[u8; 32],
    nonce: [u8; 12],
    aad: &[u8],
    data: &mut [u8],
) -> Result<[u8; 16], String> {
    use ring::aead;
    let k = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, key).map_err(|_| "ring key")?;
    let tag = aead::LessSafeKey::new(k)
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            data,
        )
        .map_err(|_| "ring seal failed".to_string())?;
    <[u8; 16]>::try_from(tag.as_ref()).map_err(|_| "ring tag length".to_string())
}

#[cfg(feature = "fast-crypto")]
fn aead_open(key: &[u8; 32], nonce: [u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8; 16]) -> bool {
    use ring::aead;
    let Ok(k) = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, key) else {
        return false;
    };
    aead::LessSafeKey::new(k)
        .open_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            aead::Tag::from(*tag),
            data,
            0..,
        )
        .is_ok()
}

#[cfg(not(feature = "fast-crypto"))]
fn aead_seal(
    key: &[u8; 32],
    nonce: [u8; 12],
    aad: &[u8],
    data: &mut [u8],
) -> Result<[u8; 16], String> {
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::KeyInit;
    let tag = chacha20poly1305::ChaCha20Poly1305::new(key.into())
        .encrypt_in_place_detached(&nonce.into(), aad, data)
        .map_err(|_| "seal failed".to_string())?;
    Ok(tag.into())
}

#[cfg(not(feature = "fast-crypto"))]
fn aead_open(key: &[u8; 32], nonce: [u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8; 16]) -> bool {
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::KeyInit;
    chacha20poly1305::ChaCha20Poly1305::new(key.into())
        .decrypt_in_place_detached(&nonce.into(), aad, data, tag.into())
        .is_ok()
}

// ---------------------------------------------------------------- noise

fn identity(seed: u8, name: &str) -> Identity {
    let private = [seed; 32];
    Identity::new(
        private,
        crate::keys::public_key_of(&private),
        name,
        "self-test",
    )
}

fn seal(s: &mut Session, msg: &[u8]) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; wire::DATA_HEADER_LEN + msg.len() + wire::TAG_LEN];
    buf.get_mut(wire::DATA_HEADER_LEN..wire::DATA_HEADER_LEN + msg.len())
        .ok_or("seal buffer")?
        .copy_from_slice(msg);
    let n = s.seal(&mut buf, msg.len()).map_err(|e| e.to_string())?;
    buf.truncate(n);
    Ok(buf)
}

fn open(s: &mut Session, packet: &[u8]) -> Result<Vec<u8>, String> {
    let mut p = packet.to_vec();
    let Ok(Packet::Data {
        receiver_index,
        counter,
    }) = Packet::parse(&p)
    else {
        return Err("sealed packet does not parse as data".into());
    };
    same("receiver index", receiver_index, s.local_index)?;
    let range = s.open(counter, &mut p).map_err(|e| e.to_string())?;
    Ok(p.get(range).unwrap_or_default().to_vec())
}

/// Two identities in memory: initiation, response, then data both ways,
/// a replay and a flipped bit refused.
fn check_noise() -> CheckResult {
    let (a, b) = (identity(1, "alpha"), identity(2, "beta"));
    let now = Instant::from_secs(1);
    let mut buf = [0u8; 256];
    let (init, n) = Initiation::start(&a, &b.public, 11, 1000, None, &mut buf)
        .map_err(|e| format!("initiation: {e}"))?;
    let Ok(Packet::HandshakeInit {
        sender_index,
        noise: msg1,
        ..
    }) = Packet::parse(buf.get(..n).unwrap_or_default())
    else {
        return Err("initiation does not parse".into());
    };
    same("initiation sender", sender_index, 11)?;
    let resp = Responder::read(&b, sender_index, msg1).map_err(|e| format!("responder: {e}"))?;
    same("initiator key", resp.remote_key, a.public)?;
    same(
        "initiator payload",
        (resp.payload.timestamp, resp.payload.name.as_str()),
        (1000, "alpha"),
    )?;
    let mut out = [0u8; 256];
    let (mut sb, m) = resp
        .accept(&b, now, 22, &mut out)
        .map_err(|e| format!("accept: {e}"))?;
    let Ok(Packet::HandshakeResp {
        sender_index,
        receiver_index,
        noise: msg2,
        ..
    }) = Packet::parse(out.get(..m).unwrap_or_default())
    else {
        return Err("response does not parse".into());
    };
    same("response indices", (sender_index, receiver_index), (22, 11))?;
    let (mut sa, payload) = init
        .finish(now, sender_index, msg2)
        .map_err(|e| format!("finish: {e}"))?;
    same("responder name", payload.name.as_str(), "beta")?;

    let p = seal(&mut sa, b"hello from alpha")?;
    same_bytes("a->b", &open(&mut sb, &p)?, b"hello from alpha")?;
    let q = seal(&mut sb, b"hi")?;
    same_bytes("b->a", &open(&mut sa, &q)?, b"hi")?;
    same(
        "replayed packet",
        open(&mut sb, &p),
        Err(noise::NoiseError::Replay.to_string()),
    )?;
    let mut t = seal(&mut sa, b"x")?;
    if let Some(last) = t.last_mut() {
        *last ^= 1;
    }
    same(
        "tampered packet",
        open(&mut sb, &t),
        Err(noise::NoiseError::Tag.to_string()),
    )
}

fn check_replay_window() -> CheckResult {
    let mut w = ReplayWindow::default();
    let steps: [(u64, bool); 12] = [
        (0, true),
        (0, false),
        (5, true),
        (3, true),
        (4, true),
        (3, false),
        (3000, true),
        (5, false), // fell out of the window
        (2000, true),
        (2000, false),
        (1 << 40, true), // a counter beyond 32 bits
        ((1 << 40) - 1, true),
    ];
    for (i, (counter, fresh)) in steps.into_iter().enumerate() {
        same(
            &format!("step {i}: counter {counter}"),
            w.update(counter),
            fresh,
        )?;
    }
    same("old after jump", w.check(3000), false)
}

// ---------------------------------------------------------------- config, keys, console

const UCI_FIXTURE: &str = "\
# self-test fixture
config agent 'agent'
\toption name 'box-1'
\toption cloud \"test\"
\toption listen_port '7000'
\tlist address '10.99.0.1/24'
\tlist address 'fd00::1/64'
\toption mtu 1400

config peer 'box2'
\toption public_key 'QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI='
\tlist endpoint '192.0.2.2:6556'
\tlist endpoint '[2001:db8::2]:6556'
\tlist endpoint 'box2.example.net:6556'
";

fn check_uci() -> CheckResult {
    let c = crate::config::uci::parse_with_default_name("fixture", UCI_FIXTURE, "fallback")
        .map_err(|e| e.to_string())?;
    let a = &c.agent;
    same("name", a.name.as_str(), "box-1")?;
    same("cloud", a.cloud.as_str(), "test")?;
    same("listen_port", a.listen_port, 7000)?;
    same("mtu", a.mtu, 1400)?;
    same("mode", a.mode, Mode::Tap)?;
    let want_addrs: Vec<IpCidr> = [("10.99.0.1", 24), ("fd00::1", 64)]
        .iter()
        .filter_map(|(ip, prefix)| {
            ip.parse().ok().map(|addr| IpCidr {
                addr,
                prefix: *prefix,
            })
        })
        .collect();
    same("addresses", &a.addresses, &want_addrs)?;
    let [peer] = c.peers.as_slice() else {
        return Err(format!("{} peers, want 1", c.peers.len()));
    };
    same("peer name", peer.name.as_str(), "box2")?;
    same("peer key", peer.public_key, [0x42; 32])?;
    let shown: Vec<String> = peer.endpoints.iter().map(ToString::to_string).collect();
    same(
        "endpoints",
        shown.as_slice(),
        &[
            "192.0.2.2:6556".to_string(),
            "[2001:db8::2]:6556".to_string(),
            "box2.example.net:6556".to_string(),
        ][..],
    )?;
    same(
        "host endpoint",
        peer.endpoints.get(2),
        Some(&Endpoint::Host("box2.example.net".into(), 6556)),
    )?;
    // A mistake is reported with its line.
    let bad = UCI_FIXTURE.replace("'7000'", "'70000'");
    match crate::config::uci::parse_with_default_name("fixture", &bad, "x") {
        Err(e) => same("error line", e.line, 5),
        Ok(_) => Err("port 70000 accepted".into()),
    }
}

fn check_base64() -> CheckResult {
    let vectors: [(&[u8], &str); 7] = [
        (b"", ""),
        (b"f", "Zg=="),
        (b"fo", "Zm8="),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg=="),
        (b"fooba", "Zm9vYmE="),
        (b"foobar", "Zm9vYmFy"),
    ];
    for (data, text) in vectors {
        same("encode", crate::keys::base64_encode(data).as_str(), text)?;
        same(
            "decode",
            crate::keys::base64_decode(text).as_deref(),
            Ok(data),
        )?;
    }
    same(
        "public key",
        crate::keys::decode_public("QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="),
        Some([0x42; 32]),
    )?;
    same(
        "non-canonical",
        crate::keys::base64_decode("Zm9=").is_err(),
        true,
    )
}

fn check_console_frames() -> CheckResult {
    let frame = proto::encode_frame(&Request::Peers).map_err(|e| e.to_string())?;
    same_bytes("Request::Peers", &frame, &[0, 0, 0, 1, 1])?;
    let frame = proto::encode_frame(&Response::PublicKey([5; 32])).map_err(|e| e.to_string())?;
    let mut want = vec![0, 0, 0, 33, 2];
    want.extend_from_slice(&[5; 32]);
    same_bytes("Response::PublicKey", &frame, &want)?;
    let frame = proto::encode_frame(&Response::Error("x".into())).map_err(|e| e.to_string())?;
    same_bytes("Response::Error", &frame, &[0, 0, 0, 3, 3, 1, b'x'])?;

    // A status with 64-bit counters, split across two pushes.
    let status = StatusInfo {
        version: crate::VERSION.into(),
        name: "box-1".into(),
        cloud: "test".into(),
        public_key: [7; 32],
        interface: "cloudy0".into(),
        mode: "tap".into(),
        listen_port: 6556,
        uptime_secs: 1 << 33,
        peers_configured: 3,
        peers_known: 4,
        peers_up: 2,
        peers_relayed: 1,
        mac_entries: 500,
        stats: OverlayStats {
            rx_packets: u64::MAX,
            handshakes_completed: 1 << 40,
            ..OverlayStats::default()
        },
        device: crate::console::proto::DeviceInfo::default(),
        discovery: None,
        store: None,
    };
    let frame =
        proto::encode_frame(&Response::Status(status.clone())).map_err(|e| e.to_string())?;
    let mut decoder = FrameDecoder::new();
    let half = frame.len() / 2;
    decoder.push(frame.get(..half).unwrap_or_default());
    same("half a frame", decoder.next_message::<Response>(), Ok(None))?;
    decoder.push(frame.get(half..).unwrap_or_default());
    same(
        "status round trip",
        decoder.next_message::<Response>(),
        Ok(Some(Response::Status(status))),
    )?;
    same("leftover bytes", decoder.buffered(), 0)
}

// ---------------------------------------------------------------- offload

fn check_vnet_hdr() -> CheckResult {
    let hdr = VnetHdr {
        flags: offload::F_NEEDS_CSUM,
        gso_type: offload::GSO_TCPV4,
        hdr_len: 66,
        gso_size: 1448,
        csum_start: 34,
        csum_offset: 16,
    };
    let le = [1, 1, 0x42, 0, 0xa8, 0x05, 0x22, 0, 0x10, 0];
    let be = [1, 1, 0, 0x42, 0x05, 0xa8, 0, 0x22, 0, 0x10];
    same_bytes("little-endian emit", &hdr.to_bytes(Endian::Little), &le)?;
    same_bytes("big-endian emit", &hdr.to_bytes(Endian::Big), &be)?;
    same(
        "little-endian parse",
        VnetHdr::read(&le, Endian::Little).ok(),
        Some(hdr),
    )?;
    same(
        "big-endian parse",
        VnetHdr::read(&be, Endian::Big).ok(),
        Some(hdr),
    )?;
    let native = if cfg!(target_endian = "big") {
        Endian::Big
    } else {
        Endian::Little
    };
    same("native order", Endian::NATIVE, native)?;
    same(
        "partial",
        hdr.partial(),
        Some(PartialCsum {
            start: 34,
            offset: 16,
        }),
    )?;
    same(
        "short header",
        VnetHdr::read(&le[..9], Endian::Little).ok(),
        None,
    )
}

fn check_checksum() -> CheckResult {
    // An IPv4 header (UDP, 192.168.0.1 -> 192.168.0.199) whose checksum is 0xb861.
    let mut h = unhex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7")?;
    same(
        "header checksum",
        !offload::fold(offload::ones_sum(&h)),
        0xb861,
    )?;
    if let Some(field) = h.get_mut(10..12) {
        field.copy_from_slice(&[0xb8, 0x61]);
    }
    same(
        "verified header sums to 0xffff",
        offload::fold(offload::ones_sum(&h)),
        0xffff,
    )?;
    // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (odd length padded).
    same(
        "RFC 1071 example",
        offload::fold(offload::ones_sum(&[
            0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7,
        ])),
        0xddf2,
    )?;
    same(
        "odd length",
        offload::fold(offload::ones_sum(&[0x01])),
        0x0100,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_passes() {
        for check in CHECKS {
            assert_eq!((check.run)(), Ok(()), "{}", check.name);
        }
    }

    #[test]
    fn report_lines_and_verdict() {
        let mut out = Vec::new();
        assert!(run(&mut out));
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), CHECKS.len() + 2, "{text}");
        assert!(lines[0].starts_with("platform: "), "{text}");
        assert!(lines[1..=CHECKS.len()]
            .iter()
            .all(|l| l.starts_with("ok    ")));
        assert_eq!(
            lines.last().copied(),
            Some(format!("self-test: all {} checks ok", CHECKS.len()).as_str())
        );
    }

    #[test]
    fn mismatches_are_described() {
        assert_eq!(
            same_bytes("x", &[1, 2], &[1, 3]),
            Err("x: got 0102, want 0103".into())
        );
        assert_eq!(same("n", 1, 2), Err("n: got 1, want 2".into()));
        assert!(unhex("abc").is_err() && unhex("zz").is_err());
        assert_eq!(unhex("0a ff"), Ok(vec![10, 255]));
    }
}
