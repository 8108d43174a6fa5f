//! The cloud's revocation list: keys the authority took back.
//!
//! ```text
//! 0        version = 1
//! 1        cloud_len (1..=32), cloud
//! …        serial u64 (a list replaces one with a lower serial)
//! …        count (0..=24), each: key (32), until u64 (the revoked
//!          certificate's not_after: after it the entry may be dropped)
//! …        signature (64): Ed25519 over "cloudy-revoked1\0" ‖ everything above
//! ```
//!
//! Boxes flood a list with a higher serial to their peers at once, and
//! keep it on disk (`revoked` beside the certificate), so a revoked key is
//! refused by every box within one round of the overlay and after restarts.
//! Text form: `cloudy-revoked1:` + base64.

use super::{from_text, signed_message, to_text, valid_name, AuthorityKey, AuthorityPublic};
use super::{TrustError, SIGNATURE_LEN};
use crate::limits::MAX_REVOKED;
use crate::overlay::PublicKey;

const VERSION: u8 = 1;
const LABEL: &[u8] = b"cloudy-revoked1\0";
pub const TEXT_PREFIX: &str = "cloudy-revoked1:";
/// Largest encoded list.
pub const MAX_LEN: usize = 1 + 33 + 8 + 1 + MAX_REVOKED * 40 + SIGNATURE_LEN;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationList {
    pub cloud: String,
    pub serial: u64,
    /// (revoked key, until when the entry matters).
    pub entries: Vec<(PublicKey, u64)>,
    pub signature: [u8; SIGNATURE_LEN],
}

impl RevocationList {
    pub fn parse(bytes: &[u8]) -> Result<RevocationList, TrustError> {
        let get = |at: usize, n: usize| bytes.get(at..at + n).ok_or(TrustError::Truncated);
        if *get(0, 1)?.first().unwrap_or(&0) != VERSION {
            return Err(TrustError::Malformed);
        }
        let cloud_len = usize::from(get(1, 1)?[0]);
        let cloud = get(2, cloud_len)?;
        if !valid_name(cloud) {
            return Err(TrustError::Malformed);
        }
        let mut at = 2 + cloud_len;
        let serial = u64::from_be_bytes(get(at, 8)?.try_into().map_err(|_| TrustError::Truncated)?);
        at += 8;
        let count = usize::from(get(at, 1)?[0]);
        at += 1;
        if count > MAX_REVOKED {
            return Err(TrustError::Malformed);
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let mut key = [0u8; 32];
            key.copy_from_slice(get(at, 32)?);
            let until = u64::from_be_bytes(
                get(at + 32, 8)?
                    .try_into()
                    .map_err(|_| TrustError::Truncated)?,
            );
            entries.push((key, until));
            at += 40;
        }
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(get(at, SIGNATURE_LEN)?);
        if bytes.len() != at + SIGNATURE_LEN {
            return Err(TrustError::Truncated);
        }
        Ok(RevocationList {
            cloud: String::from_utf8_lossy(cloud).into_owned(),
            serial,
            entries,
            signature,
        })
    }

    fn body(&self) -> Result<Vec<u8>, TrustError> {
        if !valid_name(self.cloud.as_bytes()) {
            return Err(TrustError::Malformed);
        }
        if self.entries.len() > MAX_REVOKED {
            return Err(TrustError::Full);
        }
        let mut b = Vec::with_capacity(MAX_LEN);
        b.push(VERSION);
        // valid_name: at most 32 bytes; entries: at most MAX_REVOKED (24).
        b.push(self.cloud.len() as u8);
        b.extend_from_slice(self.cloud.as_bytes());
        b.extend_from_slice(&self.serial.to_be_bytes());
        b.push(self.entries.len() as u8);
        for (key, until) in &self.entries {
            b.extend_from_slice(key);
            b.extend_from_slice(&until.to_be_bytes());
        }
        Ok(b)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, TrustError> {
        let mut b = self.body()?;
        b.extend_from_slice(&self.signature);
        Ok(b)
    }

    pub fn verify(&self, authority: &AuthorityPublic, cloud: &str) -> Result<(), TrustError> {
        if !authority.verify(&signed_message(LABEL, &self.body()?), &self.signature) {
            return Err(TrustError::BadSignature);
        }
        if self.cloud != cloud {
            return Err(TrustError::WrongCloud);
        }
        Ok(())
    }

    pub fn contains(&self, key: &PublicKey) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// The next list: `previous` (if any) without entries that expired
    /// before `now`, plus `key` until `until`, with a higher serial.
    pub fn revoke(
        authority: &AuthorityKey,
        previous: Option<&RevocationList>,
        cloud: &str,
        key: PublicKey,
        until: u64,
        now: u64,
    ) -> Result<RevocationList, TrustError> {
        let mut entries: Vec<(PublicKey, u64)> = previous
            .map(|p| p.entries.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, u)| *u >= now && *k != key)
            .collect();
        if entries.len() >= MAX_REVOKED {
            return Err(TrustError::Full);
        }
        entries.push((key, until));
        let mut list = RevocationList {
            cloud: cloud.to_string(),
            // Never lower than the wall clock: a list re-created after the
            // old one was lost still replaces it.
            serial: previous.map_or(0, |p| p.serial).max(now).saturating_add(1),
            entries,
            signature: [0; SIGNATURE_LEN],
        };
        list.signature = authority.sign(&signed_message(LABEL, &list.body()?));
        Ok(list)
    }

    pub fn to_text(&self) -> Result<String, TrustError> {
        Ok(to_text(TEXT_PREFIX, &self.to_bytes()?))
    }

    pub fn from_text(text: &str) -> Result<RevocationList, TrustError> {
        RevocationList::parse(&from_text(TEXT_PREFIX, text, MAX_LEN)?)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn revoke_verify_and_round_trip() {
        let a = AuthorityKey::from_seed(&[3; 32]);
        let l1 = RevocationList::revoke(&a, None, "guifi", [1; 32], 2_000, 1_000).unwrap();
        assert_eq!(l1.verify(&a.public(), "guifi"), Ok(()));
        assert_eq!(l1.verify(&a.public(), "x"), Err(TrustError::WrongCloud));
        assert!(l1.contains(&[1; 32]) && !l1.contains(&[2; 32]));
        let l2 = RevocationList::revoke(&a, Some(&l1), "guifi", [2; 32], 3_000, 1_500).unwrap();
        assert!(l2.serial > l1.serial);
        assert!(l2.contains(&[1; 32]) && l2.contains(&[2; 32]));
        // The first entry expired by now: dropped.
        let l3 = RevocationList::revoke(&a, Some(&l2), "guifi", [3; 32], 4_000, 2_500).unwrap();
        assert!(!l3.contains(&[1; 32]) && l3.contains(&[2; 32]));
        let b = l3.to_bytes().unwrap();
        assert_eq!(RevocationList::parse(&b).unwrap(), l3);
        assert_eq!(
            RevocationList::from_text(&l3.to_text().unwrap()).unwrap(),
            l3
        );
        for n in 0..b.len() {
            assert!(RevocationList::parse(&b[..n]).is_err(), "{n}");
        }
        let mut forged = l3.clone();
        forged.entries.pop();
        assert_eq!(
            forged.verify(&a.public(), "guifi"),
            Err(TrustError::BadSignature)
        );
        let other = AuthorityKey::from_seed(&[4; 32]).public();
        assert_eq!(l3.verify(&other, "guifi"), Err(TrustError::BadSignature));
    }

    #[test]
    fn full_list_is_refused() {
        let a = AuthorityKey::from_seed(&[3; 32]);
        let mut l: Option<RevocationList> = None;
        for i in 0..MAX_REVOKED {
            l = Some(RevocationList::revoke(&a, l.as_ref(), "c", [i as u8; 32], 9_999, 1).unwrap());
        }
        let l = l.unwrap();
        assert!(l.to_bytes().unwrap().len() <= MAX_LEN);
        assert_eq!(
            RevocationList::revoke(&a, Some(&l), "c", [200; 32], 9_999, 1),
            Err(TrustError::Full)
        );
    }
}
