//! The cloud authority: who is a member of a micro cloud.
//!
//! A micro cloud may have an authority key (Ed25519, RFC 8032, from
//! `ed25519-dalek`). The box holding it signs member certificates
//! ([`Certificate`]: name, overlay public key, validity, optional overlay
//! addresses) and the cloud's revocation list ([`RevocationList`]). Every
//! box knows the authority's public key from its config and checks both
//! locally, as Nebula's hosts check their CA's certificates.
//!
//! Invariants:
//! - Every signature covers a domain label and the cloud's name, so a
//!   certificate of one cloud (or a revocation list) is never valid as
//!   anything else.
//! - Parsers check every length before reading and never panic; the
//!   encodings are canonical (parse → emit gives the same bytes), so a
//!   signature is checked over exactly the bytes received.
//! - Sizes are bounded: [`cert::MAX_LEN`], [`revocation::MAX_LEN`].
//!
//! Wall-clock time (Unix seconds) is an argument: nothing here reads a
//! clock.

pub mod cert;
pub mod invite;
pub mod revocation;

use core::fmt;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

pub use cert::Certificate;
pub use revocation::RevocationList;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Why a certificate, revocation list or authority key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustError {
    /// Shorter than its own lengths say, or trailing bytes.
    Truncated,
    /// Unknown version, bad name, bad address, too many entries.
    Malformed,
    /// Not in the `cloudy-cert1:`/`cloudy-revoked1:` text form.
    BadText,
    /// The signature does not verify under the cloud's authority.
    BadSignature,
    /// Signed for another cloud.
    WrongCloud,
    /// Not valid yet, or expired.
    Expired,
    /// The key is on the cloud's revocation list.
    Revoked,
    /// The certificate names another key than the one presented.
    WrongKey,
    /// A list full, or an emit buffer too short.
    Full,
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrustError::Truncated => "truncated",
            TrustError::Malformed => "malformed",
            TrustError::BadText => "not a cloudy certificate or revocation list",
            TrustError::BadSignature => "not signed by the cloud's authority",
            TrustError::WrongCloud => "issued for another cloud",
            TrustError::Expired => "expired or not valid yet",
            TrustError::Revoked => "revoked",
            TrustError::WrongKey => "issued for another key",
            TrustError::Full => "full",
        })
    }
}

impl std::error::Error for TrustError {}

/// The authority's public key, as every box of the cloud configures it
/// (`option authority`, 44 characters of base64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthorityPublic(pub [u8; 32]);

impl AuthorityPublic {
    pub fn from_base64(text: &str) -> Option<AuthorityPublic> {
        let key = crate::keys::decode_public(text)?;
        // A point that does not decompress can verify nothing: refuse it
        // in the config rather than at the first handshake.
        VerifyingKey::from_bytes(&key).ok()?;
        Some(AuthorityPublic(key))
    }

    pub fn to_base64(&self) -> String {
        crate::keys::encode_public(&self.0)
    }

    /// Strict RFC 8032 verification (no malleable or small-order keys).
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let sig = Signature::from_bytes(signature);
        key.verify_strict(message, &sig).is_ok() && key.verify(message, &sig).is_ok()
    }
}

/// The authority's signing key: a 32-byte Ed25519 seed, stored like a
/// box's private key (one line of base64, mode 0600).
pub struct AuthorityKey(SigningKey);

impl AuthorityKey {
    pub fn from_seed(seed: &[u8; 32]) -> AuthorityKey {
        AuthorityKey(SigningKey::from_bytes(seed))
    }

    /// A new key from the system's random source.
    pub fn generate() -> Result<AuthorityKey, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        Ok(AuthorityKey::from_seed(&seed))
    }

    pub fn read(path: &Path) -> Result<AuthorityKey, crate::keys::KeyError> {
        crate::keys::read_private(path).map(|seed| AuthorityKey::from_seed(&seed))
    }

    /// Write a new key file (refuses to overwrite one).
    pub fn write(&self, path: &Path) -> Result<(), crate::keys::KeyError> {
        crate::keys::write_private(path, &self.0.to_bytes())
    }

    pub fn public(&self) -> AuthorityPublic {
        AuthorityPublic(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }
}

/// What a signature covers: a domain label, then the body (which names
/// the cloud).
fn signed_message(label: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(label.len() + body.len());
    m.extend_from_slice(label);
    m.extend_from_slice(body);
    m
}

/// Names in certificates: 1..=32 of `[A-Za-z0-9_-]`, as the handshake
/// carries them.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= crate::limits::MAX_NAME_LEN
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// `prefix` + standard base64 of `bytes`.
fn to_text(prefix: &str, bytes: &[u8]) -> String {
    format!("{prefix}{}", crate::keys::base64_encode(bytes))
}

/// The bytes of a `prefix`+base64 text (surrounding whitespace ignored).
fn from_text(prefix: &str, text: &str, max: usize) -> Result<Vec<u8>, TrustError> {
    let b64 = text
        .trim()
        .strip_prefix(prefix)
        .ok_or(TrustError::BadText)?;
    if b64.len() > max.div_ceil(3) * 4 {
        return Err(TrustError::BadText);
    }
    crate::keys::base64_decode(b64).map_err(|_| TrustError::BadText)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let k = AuthorityKey::from_seed(&[7; 32]);
        let p = k.public();
        let sig = k.sign(b"hello");
        assert!(p.verify(b"hello", &sig));
        assert!(!p.verify(b"hellO", &sig));
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(!p.verify(b"hello", &bad));
        assert_eq!(AuthorityPublic::from_base64(&p.to_base64()), Some(p));
        assert_eq!(AuthorityPublic::from_base64("nonsense"), None);
    }

    #[test]
    fn authority_key_file_round_trip() {
        let dir = crate::testutil::TempDir::new("authority");
        let path = dir.path().join("authority.key");
        let k = AuthorityKey::generate().unwrap();
        k.write(&path).unwrap();
        assert!(k.write(&path).is_err(), "never overwrites");
        let back = AuthorityKey::read(&path).unwrap();
        assert_eq!(back.public(), k.public());
    }
}
