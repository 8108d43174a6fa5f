//! Handshake, transport sessions, replay window and the handshake DoS
//! guard. No sockets, no clock: callers pass time in.
//!
//! - Handshake: Noise IK (`Noise_IK_25519_ChaChaPoly_BLAKE2s`, Noise spec
//!   rev. 34 §7.5) from the `snow` crate. The prologue binds the cloud
//!   name, so boxes of different micro clouds never agree on keys. The
//!   initiator's payload carries a strictly increasing timestamp (replayed
//!   initiations are refused, as WireGuard §5.1) and its node name.
//! - Transport: ChaCha20-Poly1305 (RFC 8439) from `chacha20poly1305`,
//!   in place, with the two keys of the Noise `Split()`; the 64-bit counter
//!   is the nonce (RFC 8439 §2.8: 32 zero bits ‖ counter little-endian).
//! - Replay: a sliding bitmap of [`REPLAY_WINDOW_BITS`] (RFC 6479).
//! - DoS guard (WireGuard §5.3): mac1 (keyed BLAKE2s by the responder's
//!   public key) is checked before any Diffie-Hellman; under load a valid
//!   mac2 keyed by a cookie bound to the source address is demanded. The
//!   load test is one global token bucket: no per-source state. The
//!   cookie travels sealed (XChaCha20-Poly1305 under a key derived from the
//!   responder's public key, the initiation's mac1 as associated data, as
//!   WireGuard §5.4.7), so only the initiator of that very message, which
//!   knows both, can open it, and a forged reply fails its tag.

use core::fmt;
use std::net::SocketAddr;

use blake2::digest::{consts::U16, FixedOutput, KeyInit, Update};
use blake2::{Blake2s256, Blake2sMac, Digest};

use super::wire::{
    self, COOKIE_LEN, COOKIE_NONCE_LEN, DATA_HEADER_LEN, MAC_LEN, SEALED_COOKIE_LEN, TAG_LEN,
};
use super::PublicKey;
use crate::limits::{
    COOKIE_SECRET_LIFETIME, HANDSHAKES_PER_SEC, HANDSHAKE_BURST, MAX_NAME_LEN, REPLAY_WINDOW_BITS,
};
use crate::time::{Duration, Instant, TokenBucket};

const NOISE_PARAMS: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
const PROLOGUE_PREFIX: &[u8] = b"cloudy overlay v1\0";
/// Handshake payload: timestamp (8) + name length (1) + name.
/// Handshake payload: timestamp, name, and the sender's certificate when
/// the cloud has an authority.
const MAX_PAYLOAD: usize = 8 + 1 + MAX_NAME_LEN + crate::trust::cert::MAX_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseError {
    /// Noise refused the message (bad key, tag or format).
    Handshake,
    /// The payload is not timestamp + name.
    Payload,
    /// Counter outside or already in the replay window.
    Replay,
    /// The AEAD tag did not verify.
    Tag,
    /// The session has sent its maximum number of messages.
    Exhausted,
    /// Output buffer too small.
    Space,
}

impl fmt::Display for NoiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoiseError::Handshake => "handshake failed",
            NoiseError::Payload => "bad handshake payload",
            NoiseError::Replay => "replayed or too old counter",
            NoiseError::Tag => "authentication tag mismatch",
            NoiseError::Exhausted => "session exhausted",
            NoiseError::Space => "buffer too small",
        })
    }
}

fn prologue(cloud: &str) -> Vec<u8> {
    let mut p = PROLOGUE_PREFIX.to_vec();
    p.extend_from_slice(cloud.as_bytes());
    p
}

fn builder<'a>(private: &'a [u8; 32], prologue: &'a [u8]) -> Result<snow::Builder<'a>, NoiseError> {
    let params = NOISE_PARAMS.parse().map_err(|_| NoiseError::Handshake)?;
    snow::Builder::new(params)
        .local_private_key(private)
        .and_then(|b| b.prologue(prologue))
        .map_err(|_| NoiseError::Handshake)
}

/// `timestamp u64 | name_len u8 | name | certificate (the rest, may be
/// empty)`.
fn encode_payload(timestamp: u64, name: &str, cert: &[u8], out: &mut [u8; MAX_PAYLOAD]) -> usize {
    out[..8].copy_from_slice(&timestamp.to_be_bytes());
    let name = &name.as_bytes()[..name.len().min(MAX_NAME_LEN)];
    // Cut to MAX_NAME_LEN (32) above, so it fits a u8.
    out[8] = name.len() as u8;
    out[9..9 + name.len()].copy_from_slice(name);
    let at = 9 + name.len();
    // Identity::new keeps only certificates of at most cert::MAX_LEN.
    let cert = &cert[..cert.len().min(crate::trust::cert::MAX_LEN)];
    out[at..at + cert.len()].copy_from_slice(cert);
    at + cert.len()
}

/// What the other side said about itself in the handshake payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakePayload {
    pub timestamp: u64,
    pub name: String,
    /// The sender's certificate, unchecked (empty: none sent).
    pub cert: Vec<u8>,
}

fn decode_payload(p: &[u8]) -> Result<HandshakePayload, NoiseError> {
    let ts = p.get(..8).ok_or(NoiseError::Payload)?;
    let mut t = [0u8; 8];
    t.copy_from_slice(ts);
    let len = usize::from(*p.get(8).ok_or(NoiseError::Payload)?);
    let name = p.get(9..9 + len).ok_or(NoiseError::Payload)?;
    let cert = p.get(9 + len..).unwrap_or_default();
    if len > MAX_NAME_LEN || cert.len() > crate::trust::cert::MAX_LEN {
        return Err(NoiseError::Payload);
    }
    let name = core::str::from_utf8(name).map_err(|_| NoiseError::Payload)?;
    let clean = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    Ok(HandshakePayload {
        timestamp: u64::from_be_bytes(t),
        name: if clean {
            name.to_string()
        } else {
            String::new()
        },
        cert: cert.to_vec(),
    })
}

// ---------------------------------------------------------------------
// mac1 / mac2 / cookies

fn labelled_key(label: &[u8; 8], responder: &PublicKey) -> [u8; 32] {
    let mut h = Blake2s256::new();
    Digest::update(&mut h, label);
    Digest::update(&mut h, responder);
    h.finalize().into()
}

fn mac1_key(responder: &PublicKey) -> [u8; 32] {
    labelled_key(b"mac1----", responder)
}

/// Key that seals cookie replies from `responder` (WireGuard §5.4.7).
pub(crate) fn cookie_key(responder: &PublicKey) -> [u8; 32] {
    labelled_key(b"cookie--", responder)
}

/// A cookie reply's nonce and sealed cookie, bound to `mac1`.
pub fn seal_cookie(
    key: &[u8; 32],
    cookie: &[u8; COOKIE_LEN],
    mac1: &[u8],
) -> ([u8; COOKIE_NONCE_LEN], [u8; SEALED_COOKIE_LEN]) {
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::KeyInit;
    let nonce: [u8; COOKIE_NONCE_LEN] = random_bytes();
    let mut sealed = [0u8; SEALED_COOKIE_LEN];
    sealed[..COOKIE_LEN].copy_from_slice(cookie);
    let aead = chacha20poly1305::XChaCha20Poly1305::new(key.into());
    // Encrypting 16 bytes in place cannot fail (only overlong inputs do).
    if let Ok(tag) =
        aead.encrypt_in_place_detached((&nonce).into(), mac1, &mut sealed[..COOKIE_LEN])
    {
        sealed[COOKIE_LEN..].copy_from_slice(&tag);
    }
    (nonce, sealed)
}

/// Open a cookie reply from `responder` to our initiation that carried
/// `mac1`; `None` when it was not sealed for exactly that message.
pub fn open_cookie(
    responder: &PublicKey,
    mac1: &[u8],
    nonce: &[u8; COOKIE_NONCE_LEN],
    sealed: &[u8; SEALED_COOKIE_LEN],
) -> Option<[u8; COOKIE_LEN]> {
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::KeyInit;
    let aead = chacha20poly1305::XChaCha20Poly1305::new((&cookie_key(responder)).into());
    let mut cookie = [0u8; COOKIE_LEN];
    cookie.copy_from_slice(&sealed[..COOKIE_LEN]);
    let tag = chacha20poly1305::Tag::clone_from_slice(&sealed[COOKIE_LEN..]);
    aead.decrypt_in_place_detached(nonce.into(), mac1, &mut cookie, &tag)
        .ok()?;
    Some(cookie)
}

fn mac16(key: &[u8], data: &[u8]) -> [u8; MAC_LEN] {
    // Keys are 16 or 32 bytes, always valid for BLAKE2s (≤ 32).
    let mut m = match <Blake2sMac<U16> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; MAC_LEN],
    };
    Update::update(&mut m, data);
    m.finalize_fixed().into()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Append mac1 (keyed by the receiver's public key) and mac2 (keyed by a
/// cookie, or zero) to a handshake message of `len` bytes in `buf`.
fn seal_macs(
    buf: &mut [u8],
    len: usize,
    receiver: &PublicKey,
    cookie: Option<&[u8; COOKIE_LEN]>,
) -> usize {
    let m1 = mac16(&mac1_key(receiver), &buf[..len]);
    buf[len..len + MAC_LEN].copy_from_slice(&m1);
    let m2 = match cookie {
        Some(c) => mac16(c, &buf[..len + MAC_LEN]),
        None => [0; MAC_LEN],
    };
    buf[len + MAC_LEN..len + 2 * MAC_LEN].copy_from_slice(&m2);
    len + 2 * MAC_LEN
}

/// Verdict of the DoS guard on one handshake message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardVerdict {
    /// Go on with the (expensive) handshake.
    Accept,
    /// Under load and no valid cookie: answer with a cookie reply instead,
    /// this nonce and sealed cookie ([`seal_cookie`]).
    SendCookie([u8; COOKIE_NONCE_LEN], [u8; SEALED_COOKIE_LEN]),
    /// mac1 is wrong: the sender does not know our public key. Drop.
    Reject,
}

/// mac1 check, global token bucket, cookies. Holds no per-source state.
pub struct HandshakeGuard {
    mac1_key: [u8; 32],
    cookie_key: [u8; 32],
    secret: [u8; 32],
    secret_born: Instant,
    bucket: TokenBucket,
}

impl HandshakeGuard {
    pub fn new(our_public: &PublicKey, now: Instant) -> Self {
        HandshakeGuard {
            mac1_key: mac1_key(our_public),
            cookie_key: cookie_key(our_public),
            secret: random_bytes(),
            secret_born: now,
            bucket: TokenBucket::new(HANDSHAKES_PER_SEC, HANDSHAKE_BURST, now),
        }
    }

    fn cookie_for(&self, from: SocketAddr) -> [u8; COOKIE_LEN] {
        let mut data = [0u8; 18];
        match from {
            SocketAddr::V4(a) => data[..4].copy_from_slice(&a.ip().octets()),
            SocketAddr::V6(a) => data[..16].copy_from_slice(&a.ip().octets()),
        }
        data[16..].copy_from_slice(&from.port().to_be_bytes());
        mac16(&self.secret, &data)
    }

    fn rotate_secret(&mut self, now: Instant) {
        if now.since(self.secret_born) >= COOKIE_SECRET_LIFETIME {
            self.secret = random_bytes();
            self.secret_born = now;
        }
    }

    /// Check a handshake message's macs; `covered1`/`covered2` are the
    /// bytes before mac1 and before mac2.
    pub fn check(
        &mut self,
        now: Instant,
        from: SocketAddr,
        covered1: &[u8],
        mac1: &[u8],
        covered2: &[u8],
        mac2: &[u8],
    ) -> GuardVerdict {
        if !ct_eq(&mac16(&self.mac1_key, covered1), mac1) {
            return GuardVerdict::Reject;
        }
        self.rotate_secret(now);
        if self.bucket.take(now) {
            return GuardVerdict::Accept;
        }
        let cookie = self.cookie_for(from);
        if ct_eq(&mac16(&cookie, covered2), mac2) {
            GuardVerdict::Accept
        } else {
            let (nonce, sealed) = seal_cookie(&self.cookie_key, &cookie, mac1);
            GuardVerdict::SendCookie(nonce, sealed)
        }
    }

    /// mac1 alone (handshake responses: no load check, no cookie).
    pub fn mac1_ok(&self, covered1: &[u8], mac1: &[u8]) -> bool {
        ct_eq(&mac16(&self.mac1_key, covered1), mac1)
    }

    /// True while the bucket is empty (tests and status).
    pub fn under_load(&self) -> bool {
        self.bucket.is_empty()
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // getrandom only fails where the OS has no entropy source at all;
    // then there is nothing safe to do but stop.
    if getrandom::fill(&mut b).is_err() {
        crate::error!("no entropy source (getrandom failed); cannot run safely");
        std::process::abort();
    }
    b
}

pub fn random_u32() -> u32 {
    u32::from_ne_bytes(random_bytes())
}

// ---------------------------------------------------------------------
// Handshake

/// Our static identity and the micro cloud it belongs to.
pub struct Identity {
    pub private: [u8; 32],
    pub public: PublicKey,
    pub name: String,
    /// This box's certificate, sent in every handshake (empty: none).
    pub cert: Vec<u8>,
    prologue: Vec<u8>,
}

impl Identity {
    pub fn new(private: [u8; 32], public: PublicKey, name: &str, cloud: &str) -> Self {
        Identity {
            private,
            public,
            name: name.to_string(),
            cert: Vec::new(),
            prologue: prologue(cloud),
        }
    }
}

/// An initiation in flight, waiting for the response.
pub struct Initiation {
    state: Box<snow::HandshakeState>,
    pub local_index: u32,
    /// The mac1 it carried: a cookie reply for it is sealed to this.
    pub mac1: [u8; MAC_LEN],
}

impl Initiation {
    /// Write a complete HandshakeInit packet into `buf`; returns it and its length.
    pub fn start(
        id: &Identity,
        remote: &PublicKey,
        local_index: u32,
        timestamp: u64,
        cookie: Option<&[u8; COOKIE_LEN]>,
        buf: &mut [u8],
    ) -> Result<(Initiation, usize), NoiseError> {
        let mut state = builder(&id.private, &id.prologue)?
            .remote_public_key(remote)
            .and_then(|b| b.build_initiator())
            .map_err(|_| NoiseError::Handshake)?;
        let mut payload = [0u8; MAX_PAYLOAD];
        let plen = encode_payload(timestamp, &id.name, &id.cert, &mut payload);
        let h = wire::emit_init_header(buf, local_index).map_err(|_| NoiseError::Space)?;
        let room = buf
            .len()
            .checked_sub(h + 2 * MAC_LEN)
            .ok_or(NoiseError::Space)?;
        let n = state
            .write_message(&payload[..plen], &mut buf[h..h + room])
            .map_err(|_| NoiseError::Handshake)?;
        let len = seal_macs(buf, h + n, remote, cookie);
        let mut mac1 = [0u8; MAC_LEN];
        mac1.copy_from_slice(&buf[h + n..h + n + MAC_LEN]);
        Ok((
            Initiation {
                state: Box::new(state),
                local_index,
                mac1,
            },
            len,
        ))
    }

    /// Process the response's Noise message; returns the session and the
    /// responder's payload.
    pub fn finish(
        mut self,
        now: Instant,
        remote_index: u32,
        noise: &[u8],
    ) -> Result<(Session, HandshakePayload), NoiseError> {
        let mut payload = [0u8; MAX_PAYLOAD];
        let n = self
            .state
            .read_message(noise, &mut payload)
            .map_err(|_| NoiseError::Handshake)?;
        let theirs = decode_payload(&payload[..n])?;
        let (i2r, r2i) = self.state.dangerously_get_raw_split();
        let session = Session::new(now, &i2r, &r2i, self.local_index, remote_index, true)?;
        Ok((session, theirs))
    }
}

/// A verified initiation: who sent it, and what they said.
pub struct Responder {
    state: Box<snow::HandshakeState>,
    pub remote_key: PublicKey,
    pub remote_index: u32,
    pub payload: HandshakePayload,
}

impl Responder {
    /// Read an initiation's Noise message. The caller checks that
    /// `remote_key` is a member and the timestamp is fresh before `accept`.
    pub fn read(id: &Identity, sender_index: u32, noise: &[u8]) -> Result<Responder, NoiseError> {
        let mut state = builder(&id.private, &id.prologue)?
            .build_responder()
            .map_err(|_| NoiseError::Handshake)?;
        let mut payload = [0u8; MAX_PAYLOAD];
        let n = state
            .read_message(noise, &mut payload)
            .map_err(|_| NoiseError::Handshake)?;
        let payload = decode_payload(&payload[..n])?;
        let remote = state.get_remote_static().ok_or(NoiseError::Handshake)?;
        let mut remote_key = [0u8; 32];
        if remote.len() != 32 {
            return Err(NoiseError::Handshake);
        }
        remote_key.copy_from_slice(remote);
        Ok(Responder {
            state: Box::new(state),
            remote_key,
            remote_index: sender_index,
            payload,
        })
    }

    /// Write the HandshakeResp packet into `buf` and return the (not yet
    /// confirmed) session and the packet length.
    pub fn accept(
        mut self,
        id: &Identity,
        now: Instant,
        local_index: u32,
        buf: &mut [u8],
    ) -> Result<(Session, usize), NoiseError> {
        let mut payload = [0u8; MAX_PAYLOAD];
        let plen = encode_payload(0, &id.name, &id.cert, &mut payload);
        let h = wire::emit_resp_header(buf, local_index, self.remote_index)
            .map_err(|_| NoiseError::Space)?;
        let room = buf
            .len()
            .checked_sub(h + 2 * MAC_LEN)
            .ok_or(NoiseError::Space)?;
        let n = self
            .state
            .write_message(&payload[..plen], &mut buf[h..h + room])
            .map_err(|_| NoiseError::Handshake)?;
        let len = seal_macs(buf, h + n, &self.remote_key, None);
        let (i2r, r2i) = self.state.dangerously_get_raw_split();
        let session = Session::new(now, &r2i, &i2r, local_index, self.remote_index, false)?;
        Ok((session, len))
    }
}

// ---------------------------------------------------------------------
// Transport

/// ChaCha20-Poly1305 (RFC 8439) with the nonce of RFC 8439 §2.8: 32 zero
/// bits then the 64-bit counter, little-endian. Two audited backends,
/// chosen at build time: ring (fast, assembly) or RustCrypto (portable).
mod aead {
    #[cfg(feature = "fast-crypto")]
    pub struct Key(ring::aead::LessSafeKey);
    #[cfg(not(feature = "fast-crypto"))]
    pub struct Key(chacha20poly1305::ChaCha20Poly1305);

    fn nonce(counter: u64) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&counter.to_le_bytes());
        n
    }

    #[cfg(feature = "fast-crypto")]
    impl Key {
        pub fn new(key: &[u8; 32]) -> Option<Key> {
            let k = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key).ok()?;
            Some(Key(ring::aead::LessSafeKey::new(k)))
        }

        pub fn seal(&self, counter: u64, data: &mut [u8]) -> Option<[u8; 16]> {
            let n = ring::aead::Nonce::assume_unique_for_key(nonce(counter));
            let tag = self
                .0
                .seal_in_place_separate_tag(n, ring::aead::Aad::empty(), data)
                .ok()?;
            tag.as_ref().try_into().ok()
        }

        pub fn open(&self, counter: u64, data: &mut [u8], tag: &[u8]) -> bool {
            let n = ring::aead::Nonce::assume_unique_for_key(nonce(counter));
            let Ok(tag) = <[u8; 16]>::try_from(tag) else {
                return false;
            };
            self.0
                .open_in_place_separate_tag(
                    n,
                    ring::aead::Aad::empty(),
                    ring::aead::Tag::from(tag),
                    data,
                    0..,
                )
                .is_ok()
        }
    }

    #[cfg(not(feature = "fast-crypto"))]
    impl Key {
        pub fn new(key: &[u8; 32]) -> Option<Key> {
            use chacha20poly1305::KeyInit;
            Some(Key(chacha20poly1305::ChaCha20Poly1305::new(key.into())))
        }

        pub fn seal(&self, counter: u64, data: &mut [u8]) -> Option<[u8; 16]> {
            use chacha20poly1305::aead::AeadInPlace;
            let tag = self
                .0
                .encrypt_in_place_detached(&nonce(counter).into(), &[], data)
                .ok()?;
            Some(tag.into())
        }

        pub fn open(&self, counter: u64, data: &mut [u8], tag: &[u8]) -> bool {
            use chacha20poly1305::aead::AeadInPlace;
            if tag.len() != 16 {
                return false;
            }
            let tag = chacha20poly1305::Tag::clone_from_slice(tag);
            self.0
                .decrypt_in_place_detached(&nonce(counter).into(), &[], data, &tag)
                .is_ok()
        }
    }
}

/// Anti-replay sliding window (RFC 6479): `top` is the highest counter
/// seen; bit `c % BITS` records counter `c` for `c` in `(top-BITS, top]`.
#[derive(Clone)]
pub struct ReplayWindow {
    bits: [u64; REPLAY_WINDOW_BITS / 64],
    top: u64,
    any: bool,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            bits: [0; REPLAY_WINDOW_BITS / 64],
            top: 0,
            any: false,
        }
    }
}

impl ReplayWindow {
    const BITS: u64 = REPLAY_WINDOW_BITS as u64;
    const WORDS: u64 = (REPLAY_WINDOW_BITS / 64) as u64;

    fn slot(c: u64) -> (usize, u64) {
        // Both values are < WORDS and < 64, so the casts are lossless.
        (((c / 64) % Self::WORDS) as usize, 1u64 << (c % 64))
    }

    /// Would `c` be accepted? (Checked before decryption, cheaply.)
    pub fn check(&self, c: u64) -> bool {
        if !self.any || c > self.top {
            return true;
        }
        if self.top - c >= Self::BITS - 64 {
            return false;
        }
        let (w, b) = Self::slot(c);
        self.bits[w] & b == 0
    }

    /// Record `c` (after the tag verified). Returns false if replayed.
    pub fn update(&mut self, c: u64) -> bool {
        if !self.check(c) {
            return false;
        }
        if !self.any || c > self.top {
            let old_word = if self.any { self.top / 64 } else { c / 64 };
            let new_word = c / 64;
            // Clear the words the window slides over (at most all of them).
            let clear = (new_word - old_word).min(Self::WORDS);
            for i in 1..=clear {
                let (w, _) = Self::slot((old_word + i) * 64);
                self.bits[w] = 0;
            }
            if !self.any {
                self.bits = [0; REPLAY_WINDOW_BITS / 64];
            }
            self.top = c;
            self.any = true;
        }
        let (w, b) = Self::slot(c);
        self.bits[w] |= b;
        true
    }
}

/// One direction-pair of transport keys from a completed handshake.
pub struct Session {
    send: aead::Key,
    recv: aead::Key,
    pub local_index: u32,
    pub remote_index: u32,
    pub created: Instant,
    send_counter: u64,
    replay: ReplayWindow,
    /// We sent the initiation (the initiator rekeys on time).
    pub initiator: bool,
    /// The other side has proved it holds the keys (we received data on
    /// it, or we are the initiator). Only confirmed sessions send.
    pub confirmed: bool,
}

impl Session {
    fn new(
        now: Instant,
        send: &[u8; 32],
        recv: &[u8; 32],
        local: u32,
        remote: u32,
        initiator: bool,
    ) -> Result<Self, NoiseError> {
        Ok(Session {
            send: aead::Key::new(send).ok_or(NoiseError::Handshake)?,
            recv: aead::Key::new(recv).ok_or(NoiseError::Handshake)?,
            local_index: local,
            remote_index: remote,
            created: now,
            send_counter: 0,
            replay: ReplayWindow::default(),
            initiator,
            confirmed: initiator,
        })
    }

    pub fn age(&self, now: Instant) -> Duration {
        now.since(self.created)
    }

    pub fn sent_messages(&self) -> u64 {
        self.send_counter
    }

    /// Encrypt `buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len]` in place and
    /// write header and tag around it. Returns the packet length.
    pub fn seal(&mut self, buf: &mut [u8], len: usize) -> Result<usize, NoiseError> {
        if self.send_counter >= crate::limits::REJECT_AFTER_MESSAGES {
            return Err(NoiseError::Exhausted);
        }
        let end = DATA_HEADER_LEN + len;
        if buf.len() < end + TAG_LEN {
            return Err(NoiseError::Space);
        }
        let counter = self.send_counter;
        self.send_counter += 1;
        let tag = self
            .send
            .seal(counter, &mut buf[DATA_HEADER_LEN..end])
            .ok_or(NoiseError::Space)?;
        wire::emit_data_header(buf, self.remote_index, counter).map_err(|_| NoiseError::Space)?;
        buf[end..end + TAG_LEN].copy_from_slice(&tag);
        Ok(end + TAG_LEN)
    }

    /// Verify and decrypt a data packet in place; returns the plaintext
    /// range inside `packet`.
    pub fn open(
        &mut self,
        counter: u64,
        packet: &mut [u8],
    ) -> Result<core::ops::Range<usize>, NoiseError> {
        if !self.replay.check(counter) {
            return Err(NoiseError::Replay);
        }
        let end = packet.len().checked_sub(TAG_LEN).ok_or(NoiseError::Tag)?;
        if end < DATA_HEADER_LEN {
            return Err(NoiseError::Tag);
        }
        let (body, tag) = packet.split_at_mut(end);
        if !self.recv.open(counter, &mut body[DATA_HEADER_LEN..], tag) {
            return Err(NoiseError::Tag);
        }
        if !self.replay.update(counter) {
            return Err(NoiseError::Replay);
        }
        self.confirmed = true;
        Ok(DATA_HEADER_LEN..end)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::keys::public_key_of;

    fn identity(seed: u8, cloud: &str) -> Identity {
        let private = [seed; 32];
        Identity::new(
            private,
            public_key_of(&private),
            &format!("box{seed}"),
            cloud,
        )
    }

    fn handshake(a: &Identity, b: &Identity) -> Result<(Session, Session), NoiseError> {
        let now = Instant::from_secs(1);
        let mut buf = [0u8; 256];
        let (init, n) = Initiation::start(a, &b.public, 11, 1000, None, &mut buf)?;
        let wire::Packet::HandshakeInit {
            sender_index,
            noise,
            ..
        } = wire::Packet::parse(&buf[..n]).map_err(|_| NoiseError::Handshake)?
        else {
            return Err(NoiseError::Handshake);
        };
        let resp = Responder::read(b, sender_index, noise)?;
        assert_eq!(resp.remote_key, a.public);
        assert_eq!(
            resp.payload,
            HandshakePayload {
                timestamp: 1000,
                name: a.name.clone(),
                cert: Vec::new(),
            }
        );
        let mut out = [0u8; 256];
        let (sb, m) = resp.accept(b, now, 22, &mut out)?;
        let wire::Packet::HandshakeResp {
            receiver_index,
            sender_index,
            noise,
            ..
        } = wire::Packet::parse(&out[..m]).map_err(|_| NoiseError::Handshake)?
        else {
            return Err(NoiseError::Handshake);
        };
        assert_eq!(receiver_index, 11);
        let (sa, payload) = init.finish(now, sender_index, noise)?;
        assert_eq!(payload.name, b.name);
        Ok((sa, sb))
    }

    fn seal(s: &mut Session, msg: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; DATA_HEADER_LEN + msg.len() + TAG_LEN];
        buf[DATA_HEADER_LEN..DATA_HEADER_LEN + msg.len()].copy_from_slice(msg);
        let n = s.seal(&mut buf, msg.len()).unwrap();
        buf.truncate(n);
        buf
    }

    fn open(s: &mut Session, pkt: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let mut p = pkt.to_vec();
        let wire::Packet::Data {
            counter,
            receiver_index,
        } = wire::Packet::parse(&p).unwrap()
        else {
            panic!()
        };
        assert_eq!(receiver_index, s.local_index);
        let r = s.open(counter, &mut p)?;
        Ok(p[r].to_vec())
    }

    #[test]
    fn handshake_then_both_directions() {
        let (a, b) = (identity(1, "c"), identity(2, "c"));
        let (mut sa, mut sb) = handshake(&a, &b).unwrap();
        assert!(sa.confirmed && !sb.confirmed);
        let p = seal(&mut sa, b"hello from a");
        assert_eq!(open(&mut sb, &p).unwrap(), b"hello from a");
        assert!(sb.confirmed);
        let q = seal(&mut sb, b"hi");
        assert_eq!(open(&mut sa, &q).unwrap(), b"hi");
        // Replayed, tampered, wrong session.
        assert_eq!(open(&mut sb, &p), Err(NoiseError::Replay));
        let mut t = seal(&mut sa, b"x");
        let last = t.len() - 1;
        t[last] ^= 1;
        assert_eq!(open(&mut sb, &t), Err(NoiseError::Tag));
        let (c, d) = (identity(3, "c"), identity(4, "c"));
        let (mut sc, _) = handshake(&c, &d).unwrap();
        for _ in 0..5 {
            seal(&mut sc, b"skip counters sb has seen");
        }
        let mut foreign = seal(&mut sc, b"y");
        foreign[4..8].copy_from_slice(&sb.local_index.to_be_bytes());
        assert_eq!(open(&mut sb, &foreign), Err(NoiseError::Tag));
    }

    #[test]
    fn different_clouds_never_agree() {
        let (a, b) = (identity(1, "east"), identity(2, "west"));
        assert!(handshake(&a, &b).is_err());
    }

    #[test]
    fn tampered_initiation_fails() {
        let (a, b) = (identity(1, "c"), identity(2, "c"));
        let mut buf = [0u8; 256];
        let (_, n) = Initiation::start(&a, &b.public, 1, 5, None, &mut buf).unwrap();
        for i in [8, 40, 90, n - 40] {
            let mut t = buf;
            t[i] ^= 0x80;
            let Ok(wire::Packet::HandshakeInit { noise, .. }) = wire::Packet::parse(&t[..n]) else {
                panic!()
            };
            assert!(Responder::read(&b, 1, noise).is_err(), "byte {i}");
        }
    }

    #[test]
    fn replay_window() {
        let mut w = ReplayWindow::default();
        assert!(w.update(0));
        assert!(!w.update(0));
        assert!(w.update(5) && w.update(3) && w.update(4));
        assert!(!w.update(3));
        assert!(w.update(3000));
        assert!(!w.check(5), "too old now");
        assert!(w.update(3000 - 1000));
        assert!(!w.update(3000 - 1000));
        assert!(w.update(u64::MAX - 1));
        assert!(!w.check(3000));
        // Out-of-order within the window in a long random-ish run.
        let mut w = ReplayWindow::default();
        let mut seen = std::collections::HashSet::new();
        let mut x: u64 = 7;
        for i in 0..20_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let c = i + (x >> 60); // jitter of up to 15 behind
            let fresh = seen.insert(c);
            assert_eq!(w.update(c), fresh, "counter {c}");
        }
    }

    #[test]
    fn guard_demands_cookie_under_load() {
        let b = identity(2, "c");
        let a = identity(1, "c");
        let now = Instant::from_secs(10);
        let mut guard = HandshakeGuard::new(&b.public, now);
        let from: SocketAddr = "192.0.2.7:1000".parse().unwrap();
        let mut buf = [0u8; 256];
        let (_, n) = Initiation::start(&a, &b.public, 1, 5, None, &mut buf).unwrap();
        let check = |g: &mut HandshakeGuard, pkt: &[u8]| {
            let Ok(wire::Packet::HandshakeInit {
                mac1_covered,
                mac1,
                mac2_covered,
                mac2,
                ..
            }) = wire::Packet::parse(pkt)
            else {
                panic!()
            };
            g.check(now, from, mac1_covered, mac1, mac2_covered, mac2)
        };
        // Wrong mac1 (addressed to another key): rejected before any DH.
        let mut wrong = [0u8; 256];
        let (_, m) = Initiation::start(&a, &a.public, 1, 5, None, &mut wrong).unwrap();
        assert_eq!(check(&mut guard, &wrong[..m]), GuardVerdict::Reject);
        for _ in 0..HANDSHAKE_BURST {
            assert_eq!(check(&mut guard, &buf[..n]), GuardVerdict::Accept);
        }
        let GuardVerdict::SendCookie(nonce, sealed) = check(&mut guard, &buf[..n]) else {
            panic!("no cookie")
        };
        assert!(guard.under_load());
        // Only the initiator of that message opens the reply: it needs the
        // responder's key and the message's mac1.
        let mac1 = buf[n - 2 * MAC_LEN..n - MAC_LEN].to_vec();
        assert_eq!(open_cookie(&a.public, &mac1, &nonce, &sealed), None);
        assert_eq!(open_cookie(&b.public, &[0; MAC_LEN], &nonce, &sealed), None);
        let mut forged = sealed;
        forged[0] ^= 1;
        assert_eq!(open_cookie(&b.public, &mac1, &nonce, &forged), None);
        let cookie = open_cookie(&b.public, &mac1, &nonce, &sealed).expect("cookie opens");
        assert_eq!(cookie, guard.cookie_for(from));
        let (_, n2) = Initiation::start(&a, &b.public, 1, 6, Some(&cookie), &mut buf).unwrap();
        assert_eq!(check(&mut guard, &buf[..n2]), GuardVerdict::Accept);
        // A cookie for another address does not work.
        let other = guard.cookie_for("192.0.2.8:1000".parse().unwrap());
        let (_, n3) = Initiation::start(&a, &b.public, 1, 7, Some(&other), &mut buf).unwrap();
        assert!(matches!(
            check(&mut guard, &buf[..n3]),
            GuardVerdict::SendCookie(..)
        ));
    }

    /// Not a check: how fast each AEAD backend seals 1400-byte frames on
    /// this machine (`cargo test --release -- --ignored aead_throughput
    /// --nocapture`; cross/aead_speed.sh runs it per board under qemu).
    #[test]
    #[ignore]
    fn aead_throughput() {
        use chacha20poly1305::aead::AeadInPlace;
        use chacha20poly1305::KeyInit;
        const FRAME: usize = 1400;
        const FRAMES: u64 = 4000;
        let mut data = vec![0x5au8; FRAME];
        let key = [7u8; 32];
        let report = |name: &str, t: std::time::Duration| {
            let mb = (FRAME as f64 * FRAMES as f64) / 1e6;
            eprintln!("aead_throughput: {name}: {:.1} MB/s", mb / t.as_secs_f64());
        };
        let rc = chacha20poly1305::ChaCha20Poly1305::new(&key.into());
        let t0 = std::time::Instant::now();
        for i in 0..FRAMES {
            let mut n = [0u8; 12];
            n[4..].copy_from_slice(&i.to_le_bytes());
            let tag = rc
                .encrypt_in_place_detached(&n.into(), &[], &mut data)
                .unwrap();
            std::hint::black_box(tag);
        }
        report("RustCrypto chacha20poly1305", t0.elapsed());
        #[cfg(feature = "fast-crypto")]
        {
            let k = aead::Key::new(&key).unwrap();
            let t0 = std::time::Instant::now();
            for i in 0..FRAMES {
                std::hint::black_box(k.seal(i, &mut data).unwrap());
            }
            report("ring (fast-crypto)", t0.elapsed());
        }
    }
}
