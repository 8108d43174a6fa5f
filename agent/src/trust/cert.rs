//! Member certificates: the authority's word that a key is a member.
//!
//! ```text
//! 0        version = 1
//! 1        name_len (1..=32), name [A-Za-z0-9_-]
//! …        cloud_len (1..=32), cloud
//! …        key (32): the member's X25519 overlay public key
//! …        not_before u64, not_after u64 (Unix seconds, big-endian)
//! …        address count (0..=4), each: family (4|6), address (4|16), prefix
//! …        signature (64): Ed25519 over "cloudy-cert1\0" ‖ everything above
//! ```
//!
//! Text form (certificate files, tokens): `cloudy-cert1:` + base64.
//! The encoding is canonical: a parsed certificate emits the same bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{from_text, signed_message, to_text, valid_name, AuthorityKey, AuthorityPublic};
use super::{TrustError, SIGNATURE_LEN};
use crate::limits::MAX_CERT_ADDRESSES;
use crate::overlay::PublicKey;

const VERSION: u8 = 1;
const LABEL: &[u8] = b"cloudy-cert1\0";
pub const TEXT_PREFIX: &str = "cloudy-cert1:";
/// Largest encoded certificate.
pub const MAX_LEN: usize = 1 + 33 + 33 + 32 + 16 + 1 + MAX_CERT_ADDRESSES * 18 + SIGNATURE_LEN;

/// A member certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    pub name: String,
    pub cloud: String,
    pub key: PublicKey,
    pub not_before: u64,
    pub not_after: u64,
    /// Overlay addresses (with prefix length) the member may use.
    pub addresses: Vec<(IpAddr, u8)>,
    pub signature: [u8; SIGNATURE_LEN],
}

/// Reads a byte string front to back, checking every length first.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], TrustError> {
        if self.0.len() < n {
            return Err(TrustError::Truncated);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(super) fn u8(&mut self) -> Result<u8, TrustError> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u64(&mut self) -> Result<u64, TrustError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], TrustError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub(super) fn name(&mut self) -> Result<String, TrustError> {
        let n = usize::from(self.u8()?);
        let b = self.take(n)?;
        if !valid_name(b) {
            return Err(TrustError::Malformed);
        }
        // valid_name admits ASCII only.
        Ok(String::from_utf8_lossy(b).into_owned())
    }
}

impl Certificate {
    /// Check the layout; the signature is checked by [`Certificate::verify`].
    pub fn parse(bytes: &[u8]) -> Result<Certificate, TrustError> {
        let mut r = Reader(bytes);
        if r.u8()? != VERSION {
            return Err(TrustError::Malformed);
        }
        let name = r.name()?;
        let cloud = r.name()?;
        let key = r.array::<32>()?;
        let not_before = r.u64()?;
        let not_after = r.u64()?;
        if not_before > not_after {
            return Err(TrustError::Malformed);
        }
        let count = usize::from(r.u8()?);
        if count > MAX_CERT_ADDRESSES {
            return Err(TrustError::Malformed);
        }
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            let (ip, max) = match r.u8()? {
                4 => (IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)), 32),
                6 => (IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)), 128),
                _ => return Err(TrustError::Malformed),
            };
            let prefix = r.u8()?;
            if prefix > max {
                return Err(TrustError::Malformed);
            }
            addresses.push((ip, prefix));
        }
        let signature = r.array::<SIGNATURE_LEN>()?;
        if !r.0.is_empty() {
            return Err(TrustError::Truncated);
        }
        Ok(Certificate {
            name,
            cloud,
            key,
            not_before,
            not_after,
            addresses,
            signature,
        })
    }

    fn body(&self) -> Result<Vec<u8>, TrustError> {
        if !valid_name(self.name.as_bytes())
            || !valid_name(self.cloud.as_bytes())
            || self.addresses.len() > MAX_CERT_ADDRESSES
            || self.not_before > self.not_after
        {
            return Err(TrustError::Malformed);
        }
        let mut b = Vec::with_capacity(MAX_LEN);
        b.push(VERSION);
        for s in [&self.name, &self.cloud] {
            // valid_name: at most 32 bytes.
            b.push(s.len() as u8);
            b.extend_from_slice(s.as_bytes());
        }
        b.extend_from_slice(&self.key);
        b.extend_from_slice(&self.not_before.to_be_bytes());
        b.extend_from_slice(&self.not_after.to_be_bytes());
        b.push(self.addresses.len() as u8);
        for (ip, prefix) in &self.addresses {
            match ip {
                IpAddr::V4(a) if *prefix <= 32 => {
                    b.push(4);
                    b.extend_from_slice(&a.octets());
                }
                IpAddr::V6(a) if *prefix <= 128 => {
                    b.push(6);
                    b.extend_from_slice(&a.octets());
                }
                _ => return Err(TrustError::Malformed),
            }
            b.push(*prefix);
        }
        Ok(b)
    }

    /// The encoded certificate.
    pub fn to_bytes(&self) -> Result<Vec<u8>, TrustError> {
        let mut b = self.body()?;
        b.extend_from_slice(&self.signature);
        Ok(b)
    }

    /// Sign a certificate for `key`, valid from `now` for `lifetime` seconds.
    pub fn issue(
        authority: &AuthorityKey,
        name: &str,
        cloud: &str,
        key: PublicKey,
        now: u64,
        lifetime: u64,
        addresses: Vec<(IpAddr, u8)>,
    ) -> Result<Certificate, TrustError> {
        let mut c = Certificate {
            name: name.to_string(),
            cloud: cloud.to_string(),
            key,
            // An hour of slack for boxes whose clock is a little behind.
            not_before: now.saturating_sub(3600),
            not_after: now.saturating_add(lifetime),
            addresses,
            signature: [0; SIGNATURE_LEN],
        };
        c.signature = authority.sign(&signed_message(LABEL, &c.body()?));
        Ok(c)
    }

    /// Is this a valid certificate of `cloud` under `authority` at `now`?
    /// (Revocation is the caller's: see [`super::RevocationList`].)
    pub fn verify(
        &self,
        authority: &AuthorityPublic,
        cloud: &str,
        now: u64,
    ) -> Result<(), TrustError> {
        let body = self.body()?;
        if !authority.verify(&signed_message(LABEL, &body), &self.signature) {
            return Err(TrustError::BadSignature);
        }
        if self.cloud != cloud {
            return Err(TrustError::WrongCloud);
        }
        if now < self.not_before || now > self.not_after {
            return Err(TrustError::Expired);
        }
        Ok(())
    }

    pub fn to_text(&self) -> Result<String, TrustError> {
        Ok(to_text(TEXT_PREFIX, &self.to_bytes()?))
    }

    pub fn from_text(text: &str) -> Result<Certificate, TrustError> {
        Certificate::parse(&from_text(TEXT_PREFIX, text, MAX_LEN)?)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn authority() -> AuthorityKey {
        AuthorityKey::from_seed(&[1; 32])
    }

    fn sample() -> Certificate {
        Certificate::issue(
            &authority(),
            "box2",
            "guifi",
            [9; 32],
            1_000_000,
            86_400,
            vec![("10.99.0.2".parse().unwrap(), 24)],
        )
        .unwrap()
    }

    #[test]
    fn fixture_bytes() {
        let c = sample();
        let b = c.to_bytes().unwrap();
        let mut want = vec![1, 4];
        want.extend_from_slice(b"box2");
        want.push(5);
        want.extend_from_slice(b"guifi");
        want.extend_from_slice(&[9; 32]);
        want.extend_from_slice(&(1_000_000u64 - 3600).to_be_bytes());
        want.extend_from_slice(&(1_086_400u64).to_be_bytes());
        want.extend_from_slice(&[1, 4, 10, 99, 0, 2, 24]);
        want.extend_from_slice(&c.signature);
        assert_eq!(b, want);
        assert_eq!(Certificate::parse(&b).unwrap(), c);
        assert!(b.len() <= MAX_LEN);
    }

    #[test]
    fn verify_checks_signature_cloud_and_time() {
        let c = sample();
        let p = authority().public();
        assert_eq!(c.verify(&p, "guifi", 1_000_001), Ok(()));
        assert_eq!(
            c.verify(&p, "other", 1_000_001),
            Err(TrustError::WrongCloud)
        );
        assert_eq!(c.verify(&p, "guifi", 1_086_401), Err(TrustError::Expired));
        assert_eq!(c.verify(&p, "guifi", 900_000), Err(TrustError::Expired));
        let other = AuthorityKey::from_seed(&[2; 32]).public();
        assert_eq!(
            c.verify(&other, "guifi", 1_000_001),
            Err(TrustError::BadSignature)
        );
        // Any changed field breaks the signature.
        let mut m = c.clone();
        m.name = "box3".into();
        assert_eq!(
            m.verify(&p, "guifi", 1_000_001),
            Err(TrustError::BadSignature)
        );
        let mut m = c.clone();
        m.key[0] ^= 1;
        assert_eq!(
            m.verify(&p, "guifi", 1_000_001),
            Err(TrustError::BadSignature)
        );
        let mut m = c.clone();
        m.not_after += 1;
        assert_eq!(
            m.verify(&p, "guifi", 1_000_001),
            Err(TrustError::BadSignature)
        );
        // A cloud renamed in the certificate is caught by the signature too.
        let mut m = c;
        m.cloud = "other".into();
        assert_eq!(
            m.verify(&p, "other", 1_000_001),
            Err(TrustError::BadSignature)
        );
    }

    #[test]
    fn text_round_trip_and_garbage() {
        let c = sample();
        let t = c.to_text().unwrap();
        assert!(t.starts_with(TEXT_PREFIX));
        assert_eq!(Certificate::from_text(&format!("{t}\n")).unwrap(), c);
        assert_eq!(Certificate::from_text("hello"), Err(TrustError::BadText));
        assert_eq!(
            Certificate::from_text("cloudy-cert1:!!!"),
            Err(TrustError::BadText)
        );
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let b = sample().to_bytes().unwrap();
        for n in 0..b.len() {
            assert!(Certificate::parse(&b[..n]).is_err(), "{n}");
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(Certificate::parse(&long), Err(TrustError::Truncated));
        let mut v = b.clone();
        v[0] = 2;
        assert_eq!(Certificate::parse(&v), Err(TrustError::Malformed));
        let mut n = b;
        n[2] = b' ';
        assert_eq!(Certificate::parse(&n), Err(TrustError::Malformed));
    }
}

#[cfg(test)]
mod seeds {
    /// Writes the trust_cert fuzz seeds and two overlay_packet ones (a
    /// tool, run by hand:
    /// `cargo test -p cloudy write_trust_seeds -- --ignored`).
    #[test]
    #[ignore = "a tool: writes fuzz/corpus/trust_cert and overlay_packet seeds"]
    fn write_trust_seeds() {
        use crate::trust::{AuthorityKey, Certificate, RevocationList};
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/trust_cert");
        let a = AuthorityKey::from_seed(&[1; 32]);
        let c = Certificate::issue(
            &a,
            "box2",
            "guifi",
            [9; 32],
            1_700_000_000,
            86_400,
            vec![
                ("10.99.0.2".parse().unwrap(), 24),
                ("fd00::2".parse().unwrap(), 64),
            ],
        )
        .unwrap();
        let l = RevocationList::revoke(&a, None, "guifi", [9; 32], 1_700_086_400, 1_700_000_000)
            .unwrap();
        let put = |name: &str, mode: u8, body: &[u8]| {
            let mut b = vec![mode];
            b.extend_from_slice(body);
            std::fs::write(dir.join(name), b).unwrap();
        };
        put("cert", 0, &c.to_bytes().unwrap());
        put("cert_text", 2, c.to_text().unwrap().as_bytes());
        put("revoked", 1, &l.to_bytes().unwrap());
        put("revoked_text", 3, l.to_text().unwrap().as_bytes());
        // overlay_packet, mode 2: a member sends a certificate and a
        // revocation list of the fuzzer's cloud ("fuzz", same authority).
        let c = Certificate::issue(&a, "third", "fuzz", [7; 32], 1_700_000_000, 86_400, vec![])
            .unwrap();
        let l = RevocationList::revoke(&a, None, "fuzz", [7; 32], 1_700_086_400, 1_700_000_000)
            .unwrap();
        let overlay = dir.join("../overlay_packet");
        let mut b = vec![2, crate::overlay::wire::MSG_CERT];
        b.extend_from_slice(&c.to_bytes().unwrap());
        std::fs::write(overlay.join("mode2_cert"), b).unwrap();
        let mut b = vec![2, crate::overlay::wire::MSG_REVOKED];
        b.extend_from_slice(&l.to_bytes().unwrap());
        std::fs::write(overlay.join("mode2_revoked"), b).unwrap();
    }
}
