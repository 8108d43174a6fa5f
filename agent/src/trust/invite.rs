//! Joining a cloud in one line (after tinc 1.1's `invite`/`join`).
//!
//! The box holding the authority key makes an invitation ([`Invites::create`])
//! and shows its [`Token`]; the new box runs `cloudy join TOKEN`, which
//! sends one [`JoinClient`] request to the inviter and gets back its member
//! certificate, the authority's public key and the inviter's certificate.
//!
//! ```text
//! Token       "cloudy1-" base64url (RFC 4648 §5, no padding) of:
//!             version=1, invite id u32, secret (32), inviter's X25519 key (32),
//!             expiry u64 (Unix s), endpoint count (1..=4),
//!             each: family (4|6), address (4|16), port u16
//! JoinRequest  0:type=6 1..4:zero 4..8:invite id 8..: Noise msg1
//!              payload: joiner's X25519 key (32), name_len (0..=32), name
//! JoinResponse 0:type=7 1..4:zero 4..8:invite id 8..: Noise msg2
//!              payload: cert_len u16, member certificate, authority key (32),
//!              inviter's certificate
//! JoinRefused  0:type=8 1..4:zero 4..8:invite id 8:reason (see [`JoinError::code`])
//! ```
//!
//! The types follow the overlay's outer packets (1..=5, `overlay::wire`):
//! the daemon sends a datagram whose first byte is 6 to
//! [`Invites::handle_request`]. All integers are big-endian.
//!
//! The handshake is `Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s` (Noise spec
//! rev. 34 §7.4, §9): the joiner knows the inviter's static key from the
//! token, and the token's secret is the PSK, so only a token holder gets an
//! answer the inviter wrote, and the answer is authenticated by the key in
//! the token. The prologue binds the invite id in the clear header.
//!
//! Invariants:
//! - An invitation is used by one key: the first request that proves the
//!   secret binds it; the same key may ask again (its answer was lost) and
//!   gets a fresh answer; any other key is refused (reason 2).
//! - At most [`MAX_INVITES`] invitations are pending; [`Invites::handle_request`]
//!   reads at most [`JOIN_REQUESTS_PER_SEC`] requests per second (each
//!   costs a Diffie-Hellman) and drops the rest unanswered.
//! - A refusal is unauthenticated: the joiner only reports it. Garbage
//!   (bad type, length or header) gets no answer at all.
//! - Parsers check every length before reading and never panic.
//!
//! Time: Unix seconds for validity, [`Instant`] for the rate limit, both
//! passed in; nothing here reads a clock or touches a socket.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use base64ct::{Base64UrlUnpadded, Encoding};

use super::cert::{self, Reader};
use super::{valid_name, AuthorityKey, AuthorityPublic, Certificate, TrustError};
use crate::limits::{
    JOIN_REQUESTS_PER_SEC, MAX_CERT_ADDRESSES, MAX_INVITES, MAX_INVITE_ENDPOINTS, MAX_NAME_LEN,
};
use crate::overlay::PublicKey;
use crate::time::{Instant, TokenBucket};

pub const TYPE_JOIN_REQUEST: u8 = 6;
pub const TYPE_JOIN_RESPONSE: u8 = 7;
pub const TYPE_JOIN_REFUSED: u8 = 8;

pub const TOKEN_PREFIX: &str = "cloudy1-";
const TOKEN_VERSION: u8 = 1;
/// Largest token, in bytes before base64.
const TOKEN_MAX_LEN: usize = 1 + 4 + 32 + 32 + 8 + 1 + MAX_INVITE_ENDPOINTS * 19;

const NOISE_PARAMS: &str = "Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s";
const PROLOGUE: &[u8] = b"cloudy-join1";
const HEADER_LEN: usize = 8;
/// Noise: an ephemeral key and the payload's tag.
const NOISE_OVERHEAD: usize = 32 + 16;
const REQUEST_PAYLOAD_MAX: usize = 32 + 1 + MAX_NAME_LEN;
const RESPONSE_PAYLOAD_MAX: usize = 2 + cert::MAX_LEN + 32 + cert::MAX_LEN;
/// Largest join request.
pub const MAX_REQUEST_LEN: usize = HEADER_LEN + NOISE_OVERHEAD + REQUEST_PAYLOAD_MAX;
/// Largest join response: the `out` buffer [`Invites::handle_request`] needs.
pub const MAX_RESPONSE_LEN: usize = HEADER_LEN + NOISE_OVERHEAD + RESPONSE_PAYLOAD_MAX;
pub const REFUSED_LEN: usize = HEADER_LEN + 1;

/// Why joining failed, on either side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// Not a `cloudy1-` token, or a damaged one.
    BadToken,
    /// The token's expiry has passed (checked before any traffic).
    Expired,
    /// The inviter has no such invitation, or it expired (refusal 1).
    Unknown,
    /// Another key used the invitation already (refusal 2).
    AlreadyUsed,
    /// The secret is wrong: the Noise message did not verify (refusal 3).
    BadProof,
    /// A request with a bad name or key, or no name to give (refusal 4).
    BadRequest,
    /// A join message of a bad type, length or header.
    Malformed,
    /// The answer is not from the inviter the token names.
    Handshake,
    /// A certificate in the answer (or being issued) is unusable.
    Certificate(TrustError),
    /// Over [`JOIN_REQUESTS_PER_SEC`]: dropped unanswered.
    RateLimited,
    /// [`MAX_INVITES`] invitations pending and none expired.
    Full,
    /// An invitation with a bad name, addresses, endpoints or lifetime.
    BadInvite,
    /// No randomness from the operating system.
    Random,
    /// The output buffer is smaller than [`MAX_RESPONSE_LEN`].
    Space,
}

impl JoinError {
    /// The reason byte of a JoinRefused, for the errors that send one.
    pub fn code(self) -> Option<u8> {
        match self {
            JoinError::Unknown => Some(1),
            JoinError::AlreadyUsed => Some(2),
            JoinError::BadProof => Some(3),
            JoinError::BadRequest => Some(4),
            _ => None,
        }
    }

    fn from_code(code: u8) -> JoinError {
        match code {
            1 => JoinError::Unknown,
            2 => JoinError::AlreadyUsed,
            3 => JoinError::BadProof,
            4 => JoinError::BadRequest,
            _ => JoinError::Malformed,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JoinError::BadToken => {
                "not an invitation token (it starts with cloudy1-; copied whole?)"
            }
            JoinError::Expired => "the invitation has expired (ask for a new one)",
            JoinError::Unknown => {
                "the inviter does not know this invitation (expired or withdrawn)"
            }
            JoinError::AlreadyUsed => "the invitation was already used by another box",
            JoinError::BadProof => "the token does not match this inviter (forged or mistyped)",
            JoinError::BadRequest => "the inviter refused the request (bad or missing name)",
            JoinError::Malformed => "malformed join message",
            JoinError::Handshake => "the answer is not from the inviter the token names",
            JoinError::Certificate(e) => {
                return write!(
                    f,
                    "unusable certificate in the answer: {e} (is this box's clock right?)"
                )
            }
            JoinError::RateLimited => "too many join requests, dropped",
            JoinError::Full => "too many pending invitations; wait for some to expire",
            JoinError::BadInvite => {
                "bad invitation (name: 1-32 of A-Z a-z 0-9 _ -; at most 4 addresses; 1-4 endpoints)"
            }
            JoinError::Random => "no randomness from the operating system",
            JoinError::Space => "output buffer too small",
        })
    }
}

impl std::error::Error for JoinError {}

// ---------------------------------------------------------------- token

/// What the joiner needs to find and authenticate the inviter.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub id: u32,
    /// The Noise PSK: whoever holds it may join once.
    pub secret: [u8; 32],
    /// The inviter's X25519 overlay public key.
    pub inviter: PublicKey,
    /// Unix seconds; the invitation is void from then on.
    pub expiry: u64,
    /// 1..=[`MAX_INVITE_ENDPOINTS`] addresses of the inviter.
    pub endpoints: Vec<SocketAddr>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret (logs).
        f.debug_struct("Token")
            .field("id", &self.id)
            .field("expiry", &self.expiry)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// A token from its text (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Token, JoinError> {
        let b64 = text
            .trim()
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(JoinError::BadToken)?;
        if b64.len() > (TOKEN_MAX_LEN * 4).div_ceil(3) {
            return Err(JoinError::BadToken);
        }
        let bytes = Base64UrlUnpadded::decode_vec(b64).map_err(|_| JoinError::BadToken)?;
        Token::parse_bytes(&bytes).map_err(|_| JoinError::BadToken)
    }

    fn parse_bytes(bytes: &[u8]) -> Result<Token, TrustError> {
        let mut r = Reader(bytes);
        if r.u8()? != TOKEN_VERSION {
            return Err(TrustError::Malformed);
        }
        let id = u32::from_be_bytes(r.array()?);
        let secret = r.array()?;
        let inviter = r.array()?;
        let expiry = r.u64()?;
        let count = usize::from(r.u8()?);
        if !(1..=MAX_INVITE_ENDPOINTS).contains(&count) {
            return Err(TrustError::Malformed);
        }
        let mut endpoints = Vec::with_capacity(count);
        for _ in 0..count {
            let ip = match r.u8()? {
                4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
                6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
                _ => return Err(TrustError::Malformed),
            };
            endpoints.push(SocketAddr::new(ip, u16::from_be_bytes(r.array()?)));
        }
        if !r.0.is_empty() {
            return Err(TrustError::Truncated);
        }
        Ok(Token {
            id,
            secret,
            inviter,
            expiry,
            endpoints,
        })
    }

    /// The text form; `None` with no endpoints or more than
    /// [`MAX_INVITE_ENDPOINTS`] (which parsing would refuse).
    pub fn to_text(&self) -> Option<String> {
        if !(1..=MAX_INVITE_ENDPOINTS).contains(&self.endpoints.len()) {
            return None;
        }
        let mut b = Vec::with_capacity(TOKEN_MAX_LEN);
        b.push(TOKEN_VERSION);
        b.extend_from_slice(&self.id.to_be_bytes());
        b.extend_from_slice(&self.secret);
        b.extend_from_slice(&self.inviter);
        b.extend_from_slice(&self.expiry.to_be_bytes());
        b.push(self.endpoints.len() as u8);
        for e in &self.endpoints {
            match e.ip() {
                IpAddr::V4(a) => {
                    b.push(4);
                    b.extend_from_slice(&a.octets());
                }
                IpAddr::V6(a) => {
                    b.push(6);
                    b.extend_from_slice(&a.octets());
                }
            }
            b.extend_from_slice(&e.port().to_be_bytes());
        }
        Some(format!(
            "{TOKEN_PREFIX}{}",
            Base64UrlUnpadded::encode_string(&b)
        ))
    }
}

// ---------------------------------------------------------------- wire

/// The invite id of a join message of type `ty`, after checking the
/// header and the length bounds.
fn parse_header(packet: &[u8], ty: u8, min: usize, max: usize) -> Result<u32, JoinError> {
    match packet {
        [t, 0, 0, 0, a, b, c, d, ..] if *t == ty && (min..=max).contains(&packet.len()) => {
            Ok(u32::from_be_bytes([*a, *b, *c, *d]))
        }
        _ => Err(JoinError::Malformed),
    }
}

/// Writes a header into `out` (at least [`HEADER_LEN`] bytes).
fn write_header(out: &mut [u8], ty: u8, id: u32) {
    out[0] = ty;
    out[1..4].fill(0);
    out[4..8].copy_from_slice(&id.to_be_bytes());
}

fn prologue(id: u32) -> [u8; PROLOGUE.len() + 4] {
    let mut p = [0u8; PROLOGUE.len() + 4];
    p[..PROLOGUE.len()].copy_from_slice(PROLOGUE);
    p[PROLOGUE.len()..].copy_from_slice(&id.to_be_bytes());
    p
}

fn noise_builder<'a>(
    secret: &'a [u8; 32],
    prologue: &'a [u8],
) -> Result<snow::Builder<'a>, snow::Error> {
    snow::Builder::new(NOISE_PARAMS.parse()?)
        .psk(0, secret)?
        .prologue(prologue)
}

// ---------------------------------------------------------------- inviter

/// What the inviter needs to answer a request.
pub struct Issuer<'a> {
    pub authority: &'a AuthorityKey,
    pub cloud: &'a str,
    /// The inviter's X25519 overlay private key (the token names its public key).
    pub private: &'a [u8; 32],
    /// The inviter's own certificate, sent along.
    pub certificate: &'a Certificate,
    /// Lifetime of the certificates issued, in seconds.
    pub lifetime: u64,
}

/// A member admitted (for the daemon's log line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    pub id: u32,
    pub name: String,
    pub key: PublicKey,
    /// The same key asked again (its first answer was lost).
    pub retry: bool,
}

/// Counters of [`Invites::handle_request`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JoinStats {
    pub admitted: u64,
    /// Refusals sent (unknown, used, bad request).
    pub refused: u64,
    /// Requests whose secret was wrong (also refused).
    pub bad_proof: u64,
    /// Dropped unanswered: malformed or over the rate.
    pub dropped: u64,
}

struct Invite {
    id: u32,
    secret: [u8; 32],
    name: Option<String>,
    addresses: Vec<(IpAddr, u8)>,
    expiry: u64,
    used_by: Option<PublicKey>,
}

/// The invitations pending on the authority's box.
#[derive(Default)]
pub struct Invites {
    pending: heapless::Vec<Invite, MAX_INVITES>,
    /// Made at the first request (it needs an [`Instant`]).
    bucket: Option<TokenBucket>,
    pub stats: JoinStats,
}

impl Invites {
    pub fn new() -> Invites {
        Invites::default()
    }

    /// Invitations held (used ones stay until they expire, for retries).
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Withdraws an invitation; false if there was none.
    pub fn remove(&mut self, id: u32) -> bool {
        let before = self.pending.len();
        self.pending.retain(|i| i.id != id);
        self.pending.len() != before
    }

    /// A new invitation with a random id and secret, valid `lifetime`
    /// seconds from `now`. `name`: the member's name, or `None` to take
    /// the one the joiner asks for. `addresses` go into its certificate;
    /// `endpoints` are where the joiner finds `inviter` (this box).
    /// When the table is full, expired invitations make room.
    pub fn create(
        &mut self,
        name: Option<&str>,
        addresses: Vec<(IpAddr, u8)>,
        lifetime: u64,
        endpoints: &[SocketAddr],
        inviter: PublicKey,
        now: u64,
    ) -> Result<Token, JoinError> {
        let mut random = [0u8; 36];
        for _ in 0..4 {
            getrandom::fill(&mut random).map_err(|_| JoinError::Random)?;
            let (id, secret) = random.split_at(4);
            let id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
            if self.pending.iter().all(|i| i.id != id) {
                let mut s = [0u8; 32];
                s.copy_from_slice(secret);
                return self.create_with(id, s, name, addresses, lifetime, endpoints, inviter, now);
            }
        }
        Err(JoinError::Random)
    }

    /// [`Invites::create`] with the id and secret given (tests, fuzzing);
    /// an invitation with the same id is replaced.
    #[allow(clippy::too_many_arguments)]
    pub fn create_with(
        &mut self,
        id: u32,
        secret: [u8; 32],
        name: Option<&str>,
        addresses: Vec<(IpAddr, u8)>,
        lifetime: u64,
        endpoints: &[SocketAddr],
        inviter: PublicKey,
        now: u64,
    ) -> Result<Token, JoinError> {
        let addresses_ok = addresses.len() <= MAX_CERT_ADDRESSES
            && addresses
                .iter()
                .all(|(ip, p)| *p <= if ip.is_ipv4() { 32 } else { 128 });
        if name.is_some_and(|n| !valid_name(n.as_bytes()))
            || !addresses_ok
            || !(1..=MAX_INVITE_ENDPOINTS).contains(&endpoints.len())
            || lifetime == 0
        {
            return Err(JoinError::BadInvite);
        }
        let token = Token {
            id,
            secret,
            inviter,
            expiry: now.saturating_add(lifetime),
            endpoints: endpoints.to_vec(),
        };
        self.remove(id);
        if self.pending.is_full() {
            self.pending.retain(|i| now < i.expiry);
        }
        self.pending
            .push(Invite {
                id,
                secret,
                name: name.map(String::from),
                addresses,
                expiry: token.expiry,
                used_by: None,
            })
            .map_err(|_| JoinError::Full)?;
        Ok(token)
    }

    /// Answers a JoinRequest: returns how many bytes of `out` to send back
    /// (0: send nothing) and what happened. `out` needs
    /// [`MAX_RESPONSE_LEN`] bytes. `now` is Unix seconds (expiry, the
    /// certificate's validity), `mono` the rate limit's clock.
    pub fn handle_request(
        &mut self,
        packet: &[u8],
        issuer: &Issuer,
        now: u64,
        mono: Instant,
        out: &mut [u8],
    ) -> (usize, Result<Admitted, JoinError>) {
        let min = HEADER_LEN + NOISE_OVERHEAD + 33;
        let id = match parse_header(packet, TYPE_JOIN_REQUEST, min, MAX_REQUEST_LEN) {
            Ok(id) => id,
            Err(e) => {
                self.stats.dropped += 1;
                return (0, Err(e));
            }
        };
        let bucket = self.bucket.get_or_insert_with(|| {
            TokenBucket::new(JOIN_REQUESTS_PER_SEC, JOIN_REQUESTS_PER_SEC, mono)
        });
        if !bucket.take(mono) {
            self.stats.dropped += 1;
            return (0, Err(JoinError::RateLimited));
        }
        let result = self.answer(id, &packet[HEADER_LEN..], issuer, now, out);
        match result {
            Ok((n, admitted)) => {
                self.stats.admitted += 1;
                (n, Ok(admitted))
            }
            Err(e) => {
                if e == JoinError::BadProof {
                    self.stats.bad_proof += 1;
                }
                let Some(code) = e.code().filter(|_| out.len() >= REFUSED_LEN) else {
                    self.stats.dropped += 1;
                    return (0, Err(e));
                };
                self.stats.refused += 1;
                write_header(out, TYPE_JOIN_REFUSED, id);
                out[HEADER_LEN] = code;
                (REFUSED_LEN, Err(e))
            }
        }
    }

    fn answer(
        &mut self,
        id: u32,
        msg1: &[u8],
        issuer: &Issuer,
        now: u64,
        out: &mut [u8],
    ) -> Result<(usize, Admitted), JoinError> {
        let invite = self
            .pending
            .iter_mut()
            .find(|i| i.id == id && now < i.expiry)
            .ok_or(JoinError::Unknown)?;
        let prologue = prologue(id);
        let mut noise = noise_builder(&invite.secret, &prologue)
            .and_then(|b| b.local_private_key(issuer.private))
            .and_then(|b| b.build_responder())
            .map_err(|_| JoinError::Handshake)?;
        let mut payload = [0u8; REQUEST_PAYLOAD_MAX];
        let n = noise
            .read_message(msg1, &mut payload)
            .map_err(|_| JoinError::BadProof)?;
        // Key, name length, name: exactly.
        let mut r = Reader(&payload[..n]);
        let key: PublicKey = r.array().map_err(|_| JoinError::BadRequest)?;
        let name_len = usize::from(r.u8().map_err(|_| JoinError::BadRequest)?);
        let asked = r.take(name_len).map_err(|_| JoinError::BadRequest)?;
        if !r.0.is_empty() || (name_len > 0 && !valid_name(asked)) {
            return Err(JoinError::BadRequest);
        }
        if invite.used_by.is_some_and(|k| k != key) {
            return Err(JoinError::AlreadyUsed);
        }
        let name = match (&invite.name, name_len) {
            (Some(n), _) => n.clone(),
            // valid_name admits ASCII only.
            (None, 1..) => String::from_utf8_lossy(asked).into_owned(),
            (None, 0) => return Err(JoinError::BadRequest),
        };
        let cert = Certificate::issue(
            issuer.authority,
            &name,
            issuer.cloud,
            key,
            now,
            issuer.lifetime,
            invite.addresses.clone(),
        )
        .map_err(JoinError::Certificate)?;
        let member = cert.to_bytes().map_err(JoinError::Certificate)?;
        let own = issuer
            .certificate
            .to_bytes()
            .map_err(JoinError::Certificate)?;
        let mut body = Vec::with_capacity(RESPONSE_PAYLOAD_MAX);
        // A certificate is at most cert::MAX_LEN (< 65536) bytes.
        body.extend_from_slice(&(member.len() as u16).to_be_bytes());
        body.extend_from_slice(&member);
        body.extend_from_slice(&issuer.authority.public().0);
        body.extend_from_slice(&own);
        if out.len() < HEADER_LEN + NOISE_OVERHEAD + body.len() {
            return Err(JoinError::Space);
        }
        let n = noise
            .write_message(&body, &mut out[HEADER_LEN..])
            .map_err(|_| JoinError::Handshake)?;
        write_header(out, TYPE_JOIN_RESPONSE, id);
        let retry = invite.used_by.is_some();
        invite.used_by = Some(key);
        Ok((
            HEADER_LEN + n,
            Admitted {
                id,
                name,
                key,
                retry,
            },
        ))
    }
}

// ---------------------------------------------------------------- joiner

/// What a successful join brings home.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    /// This box's member certificate (checked: this key, this authority).
    pub certificate: Certificate,
    pub authority: AuthorityPublic,
    /// The inviter's certificate (checked: the key the token names).
    pub inviter: Certificate,
}

/// The joiner's side of one join exchange.
pub struct JoinClient {
    id: u32,
    inviter: PublicKey,
    public: PublicKey,
    noise: Box<snow::HandshakeState>,
}

impl JoinClient {
    /// The request to send (to each of the token's endpoints, again on
    /// timeout: the same bytes). `private` is this box's X25519 overlay
    /// key; `name` is asked for when the invitation names none.
    pub fn start(
        token: &Token,
        private: &[u8; 32],
        name: Option<&str>,
    ) -> Result<(JoinClient, Vec<u8>), JoinError> {
        let name = name.unwrap_or("");
        if !name.is_empty() && !valid_name(name.as_bytes()) {
            return Err(JoinError::BadInvite);
        }
        let public = crate::keys::public_key_of(private);
        let prologue = prologue(token.id);
        let mut noise = noise_builder(&token.secret, &prologue)
            .and_then(|b| b.remote_public_key(&token.inviter))
            .and_then(|b| b.build_initiator())
            .map_err(|_| JoinError::Random)?;
        let mut payload = Vec::with_capacity(REQUEST_PAYLOAD_MAX);
        payload.extend_from_slice(&public);
        // valid_name: at most 32 bytes.
        payload.push(name.len() as u8);
        payload.extend_from_slice(name.as_bytes());
        let mut packet = vec![0u8; MAX_REQUEST_LEN];
        let n = noise
            .write_message(&payload, &mut packet[HEADER_LEN..])
            .map_err(|_| JoinError::Random)?;
        write_header(&mut packet, TYPE_JOIN_REQUEST, token.id);
        packet.truncate(HEADER_LEN + n);
        let client = JoinClient {
            id: token.id,
            inviter: token.inviter,
            public,
            noise: Box::new(noise),
        };
        Ok((client, packet))
    }

    /// Reads the inviter's answer. A forged or damaged answer leaves the
    /// client as it was (a genuine one may still come).
    pub fn finish(&mut self, packet: &[u8], now: u64) -> Result<Joined, JoinError> {
        if parse_header(packet, TYPE_JOIN_REFUSED, REFUSED_LEN, REFUSED_LEN) == Ok(self.id) {
            return Err(JoinError::from_code(packet[HEADER_LEN]));
        }
        let min = HEADER_LEN + NOISE_OVERHEAD;
        if parse_header(packet, TYPE_JOIN_RESPONSE, min, MAX_RESPONSE_LEN) != Ok(self.id) {
            return Err(JoinError::Malformed);
        }
        let mut payload = vec![0u8; RESPONSE_PAYLOAD_MAX];
        let n = self
            .noise
            .read_message(&packet[HEADER_LEN..], &mut payload)
            .map_err(|_| JoinError::Handshake)?;
        let bad = JoinError::Certificate(TrustError::Malformed);
        let mut r = Reader(&payload[..n]);
        let len = usize::from(u16::from_be_bytes(r.array().map_err(|_| bad)?));
        let certificate = Certificate::parse(r.take(len).map_err(|_| bad)?);
        let authority = AuthorityPublic(r.array().map_err(|_| bad)?);
        let inviter = Certificate::parse(r.0);
        let (certificate, inviter) = (
            certificate.map_err(JoinError::Certificate)?,
            inviter.map_err(JoinError::Certificate)?,
        );
        let cloud = certificate.cloud.as_str();
        for (c, key) in [(&certificate, self.public), (&inviter, self.inviter)] {
            c.verify(&authority, cloud, now)
                .map_err(JoinError::Certificate)?;
            if c.key != key {
                return Err(JoinError::Certificate(TrustError::WrongKey));
            }
        }
        Ok(Joined {
            certificate,
            authority,
            inviter,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::keys::public_key_of;

    const NOW: u64 = 1_000_000;
    const INVITER: [u8; 32] = [3; 32];
    const JOINER: [u8; 32] = [9; 32];

    struct Box1 {
        authority: AuthorityKey,
        cert: Certificate,
        invites: Invites,
        /// The rate limit's clock: one second per request, never limited.
        mono: Instant,
    }

    impl Box1 {
        fn new() -> Box1 {
            let authority = AuthorityKey::from_seed(&[1; 32]);
            let cert = Certificate::issue(
                &authority,
                "box1",
                "guifi",
                public_key_of(&INVITER),
                NOW,
                86_400,
                vec![],
            )
            .unwrap();
            Box1 {
                authority,
                cert,
                invites: Invites::new(),
                mono: Instant::ZERO,
            }
        }

        fn invite(&mut self, name: Option<&str>) -> Token {
            let endpoints = [
                "127.0.0.1:6556".parse().unwrap(),
                "[::1]:7".parse().unwrap(),
            ];
            let addresses = vec![("10.99.0.2".parse().unwrap(), 24)];
            let key = public_key_of(&INVITER);
            self.invites
                .create_with(7, [5; 32], name, addresses, 3600, &endpoints, key, NOW)
                .unwrap()
        }

        fn handle(&mut self, packet: &[u8], now: u64) -> (Vec<u8>, Result<Admitted, JoinError>) {
            let issuer = Issuer {
                authority: &self.authority,
                cloud: "guifi",
                private: &INVITER,
                certificate: &self.cert,
                lifetime: 86_400,
            };
            self.mono = self.mono + crate::time::Duration::from_secs(1);
            let mut out = [0u8; MAX_RESPONSE_LEN];
            let (n, r) = self
                .invites
                .handle_request(packet, &issuer, now, self.mono, &mut out);
            (out[..n].to_vec(), r)
        }
    }

    fn join(b: &mut Box1, token: &Token, private: &[u8; 32]) -> Result<Joined, JoinError> {
        let (mut client, request) = JoinClient::start(token, private, Some("asked")).unwrap();
        let (response, _) = b.handle(&request, NOW + 10);
        client.finish(&response, NOW + 20)
    }

    #[test]
    fn token_fixture_and_round_trip() {
        let t = Box1::new().invite(None);
        let text = t.to_text().unwrap();
        let mut want = vec![1, 0, 0, 0, 7];
        want.extend_from_slice(&[5; 32]);
        want.extend_from_slice(&public_key_of(&INVITER));
        want.extend_from_slice(&(NOW + 3600).to_be_bytes());
        want.extend_from_slice(&[2, 4, 127, 0, 0, 1, 0x19, 0x9c, 6]);
        want.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        want.extend_from_slice(&[0, 7]);
        assert_eq!(
            text,
            format!("cloudy1-{}", Base64UrlUnpadded::encode_string(&want))
        );
        assert!(!text.contains(['=', '+', '/']));
        assert_eq!(Token::parse(&format!(" {text}\n")), Ok(t.clone()));
        assert!(!format!("{t:?}").contains("5, 5"), "Debug shows no secret");
        for bad in [
            "",
            "cloudy1-",
            "cloudy1-!!",
            "hello",
            &text[..text.len() - 3],
        ] {
            assert_eq!(Token::parse(bad), Err(JoinError::BadToken), "{bad}");
        }
        for n in 0..want.len() {
            assert!(Token::parse_bytes(&want[..n]).is_err(), "{n}");
        }
        let mut long = want.clone();
        long.push(0);
        assert!(Token::parse_bytes(&long).is_err());
        let mut none = t;
        none.endpoints.clear();
        assert_eq!(none.to_text(), None);
    }

    #[test]
    fn full_exchange() {
        let mut b = Box1::new();
        let token = Token::parse(&b.invite(Some("box2")).to_text().unwrap()).unwrap();
        let (mut client, request) = JoinClient::start(&token, &JOINER, None).unwrap();
        assert!(request.len() <= MAX_REQUEST_LEN && request[0] == TYPE_JOIN_REQUEST);
        let (response, r) = b.handle(&request, NOW + 10);
        let admitted = r.unwrap();
        assert_eq!(
            admitted,
            Admitted {
                id: 7,
                name: "box2".into(),
                key: public_key_of(&JOINER),
                retry: false
            }
        );
        assert_eq!(response[0], TYPE_JOIN_RESPONSE);
        let joined = client.finish(&response, NOW + 20).unwrap();
        assert_eq!(joined.certificate.name, "box2");
        assert_eq!(joined.certificate.cloud, "guifi");
        assert_eq!(joined.certificate.key, public_key_of(&JOINER));
        assert_eq!(
            joined.certificate.addresses,
            vec![("10.99.0.2".parse().unwrap(), 24)]
        );
        assert_eq!(joined.authority, b.authority.public());
        assert_eq!(joined.inviter, b.cert);
        assert_eq!(b.invites.stats.admitted, 1);
    }

    #[test]
    fn joiner_names_itself_when_the_invitation_does_not() {
        let mut b = Box1::new();
        let token = b.invite(None);
        assert_eq!(
            join(&mut b, &token, &JOINER).unwrap().certificate.name,
            "asked"
        );
        let mut b = Box1::new();
        let token = b.invite(None);
        let (_, request) = JoinClient::start(&token, &JOINER, None).unwrap();
        let (response, r) = b.handle(&request, NOW);
        assert_eq!(r, Err(JoinError::BadRequest));
        assert_eq!(response, [8, 0, 0, 0, 0, 0, 0, 7, 4]);
        assert_eq!(
            JoinClient::start(&token, &JOINER, Some("no spaces")).err(),
            Some(JoinError::BadInvite)
        );
    }

    #[test]
    fn single_use_but_retry_from_the_same_key() {
        let mut b = Box1::new();
        let token = b.invite(Some("box2"));
        let (mut client, request) = JoinClient::start(&token, &JOINER, None).unwrap();
        // The first answer is lost; the same request again gets a fresh one.
        let (lost, r) = b.handle(&request, NOW);
        assert!(!r.unwrap().retry);
        let (again, r) = b.handle(&request, NOW + 1);
        assert!(r.unwrap().retry);
        assert_ne!(lost, again);
        assert!(client.finish(&again, NOW + 2).is_ok());
        // A new request from the same key (a rerun of `cloudy join`) too.
        assert!(join(&mut b, &token, &JOINER).is_ok());
        // Another key is refused.
        assert_eq!(join(&mut b, &token, &[10; 32]), Err(JoinError::AlreadyUsed));
        assert_eq!(b.invites.stats.refused, 1);
    }

    #[test]
    fn expired_unknown_and_forged() {
        let mut b = Box1::new();
        let token = b.invite(Some("box2"));
        let (mut client, request) = JoinClient::start(&token, &JOINER, None).unwrap();
        let (response, r) = b.handle(&request, NOW + 3600);
        assert_eq!(r, Err(JoinError::Unknown));
        assert_eq!(client.finish(&response, NOW), Err(JoinError::Unknown));

        let mut other = token.clone();
        other.id = 8;
        assert_eq!(join(&mut b, &other, &JOINER), Err(JoinError::Unknown));

        let mut forged = token.clone();
        forged.secret[0] ^= 1;
        assert_eq!(join(&mut b, &forged, &JOINER), Err(JoinError::BadProof));
        // A token naming another inviter's key: the inviter cannot read it.
        let mut wrong = token.clone();
        wrong.inviter = public_key_of(&[4; 32]);
        assert_eq!(join(&mut b, &wrong, &JOINER), Err(JoinError::BadProof));
        assert_eq!(b.invites.stats.bad_proof, 2);
        // Neither burnt the invitation.
        assert!(join(&mut b, &token, &JOINER).is_ok());
    }

    #[test]
    fn answer_from_another_inviter_is_refused() {
        let mut b = Box1::new();
        let token = b.invite(Some("box2"));
        let (_, request) = JoinClient::start(&token, &JOINER, None).unwrap();
        let (response, _) = b.handle(&request, NOW);
        // A client that expects another inviter (or a stale handshake).
        let mut wrong = token.clone();
        wrong.inviter = public_key_of(&[4; 32]);
        let (mut client, _) = JoinClient::start(&wrong, &JOINER, None).unwrap();
        assert_eq!(client.finish(&response, NOW), Err(JoinError::Handshake));
        // Another invite's answer is not this one's.
        let (mut client, _) = JoinClient::start(&token, &JOINER, None).unwrap();
        let mut moved = response.clone();
        moved[7] = 8;
        assert_eq!(client.finish(&moved, NOW), Err(JoinError::Malformed));
        // The joiner's clock far off: the certificates do not verify.
        let (mut client, request) = JoinClient::start(&token, &JOINER, None).unwrap();
        let (response, _) = b.handle(&request, NOW);
        assert_eq!(
            client.finish(&response, 1000),
            Err(JoinError::Certificate(TrustError::Expired))
        );
    }

    #[test]
    fn every_truncation_is_refused_without_panic() {
        let mut b = Box1::new();
        let token = b.invite(Some("box2"));
        let (mut client, request) = JoinClient::start(&token, &JOINER, None).unwrap();
        for n in 0..request.len() {
            let (_, r) = b.handle(&request[..n], NOW);
            assert!(r.is_err(), "{n}");
        }
        let mut long = request.clone();
        long.push(0);
        assert!(b.handle(&long, NOW).1.is_err());
        let mut bad = request.clone();
        bad[1] = 1;
        assert_eq!(b.handle(&bad, NOW), (vec![], Err(JoinError::Malformed)));
        let (response, r) = b.handle(&request, NOW);
        assert!(r.is_ok());
        for n in 0..response.len() {
            assert!(client.finish(&response[..n], NOW).is_err(), "{n}");
        }
        let mut long = response.clone();
        long.push(0);
        assert!(client.finish(&long, NOW).is_err());
        let refused = [8, 0, 0, 0, 0, 0, 0, 7, 2];
        for n in 0..refused.len() {
            assert_eq!(client.finish(&refused[..n], NOW), Err(JoinError::Malformed));
        }
        assert_eq!(
            client.finish(&[8, 0, 0, 0, 0, 0, 0, 7, 2, 0], NOW),
            Err(JoinError::Malformed)
        );
        assert_eq!(
            client.finish(&[8, 0, 0, 0, 0, 0, 0, 7, 9], NOW),
            Err(JoinError::Malformed)
        );
        // Failed reads left the client usable.
        assert!(client.finish(&response, NOW).is_ok());
    }

    #[test]
    fn rate_limited() {
        let mut b = Box1::new();
        let token = b.invite(Some("box2"));
        let (_, request) = JoinClient::start(&token, &JOINER, None).unwrap();
        let issuer = Issuer {
            authority: &b.authority,
            cloud: "guifi",
            private: &INVITER,
            certificate: &b.cert,
            lifetime: 60,
        };
        let mut out = [0u8; MAX_RESPONSE_LEN];
        let results: Vec<_> = (0..=JOIN_REQUESTS_PER_SEC)
            .map(|_| {
                b.invites
                    .handle_request(&request, &issuer, NOW, Instant::ZERO, &mut out)
            })
            .collect();
        let (last, rest) = results.split_last().unwrap();
        assert!(rest.iter().all(|(n, r)| *n > 0 && r.is_ok()));
        assert_eq!(*last, (0, Err(JoinError::RateLimited)));
        let later = Instant::from_secs(1);
        assert!(b
            .invites
            .handle_request(&request, &issuer, NOW, later, &mut out)
            .1
            .is_ok());
        // Too small an output buffer: nothing sent, nothing bound.
        let (n, r) = b
            .invites
            .handle_request(&request, &issuer, NOW, later, &mut out[..100]);
        assert_eq!((n, r), (0, Err(JoinError::Space)));
    }

    #[test]
    fn table_full() {
        let mut inv = Invites::new();
        let ep = ["192.0.2.1:6556".parse().unwrap()];
        for i in 0..MAX_INVITES {
            let life = if i == 3 { 10 } else { 100 };
            inv.create(Some("a"), vec![], life, &ep, [1; 32], NOW)
                .unwrap();
        }
        assert_eq!(
            inv.create(None, vec![], 100, &ep, [1; 32], NOW),
            Err(JoinError::Full)
        );
        // Once one expired, it makes room.
        assert!(inv
            .create(None, vec![], 100, &ep, [1; 32], NOW + 10)
            .is_ok());
        assert_eq!(inv.len(), MAX_INVITES);
        let bad = |inv: &mut Invites, name, addrs: Vec<(IpAddr, u8)>, eps: &[SocketAddr], life| {
            inv.create_with(1, [0; 32], name, addrs, life, eps, [1; 32], NOW)
        };
        let v4 = "10.0.0.1".parse().unwrap();
        assert_eq!(
            bad(&mut inv, Some("a b"), vec![], &ep, 1),
            Err(JoinError::BadInvite)
        );
        assert_eq!(
            bad(&mut inv, None, vec![(v4, 33)], &ep, 1),
            Err(JoinError::BadInvite)
        );
        assert_eq!(
            bad(&mut inv, None, vec![], &[], 1),
            Err(JoinError::BadInvite)
        );
        assert_eq!(
            bad(&mut inv, None, vec![], &[ep[0]; 5], 1),
            Err(JoinError::BadInvite)
        );
        assert_eq!(
            bad(&mut inv, None, vec![], &ep, 0),
            Err(JoinError::BadInvite)
        );
        assert!(inv.remove(inv.pending[0].id) && inv.len() == MAX_INVITES - 1);
    }

    #[test]
    fn messages_read_well() {
        for e in [
            JoinError::AlreadyUsed,
            JoinError::Expired,
            JoinError::BadProof,
        ] {
            let m = e.to_string();
            assert!(m.starts_with("the "), "{m}");
        }
        assert!(JoinError::AlreadyUsed.to_string().contains("already used"));
        assert!(JoinError::BadProof
            .to_string()
            .contains("forged or mistyped"));
    }
}
