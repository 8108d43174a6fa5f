//! Capabilities: the strings that let their holder read a stored file
//! (read capability) or only check and repair its shares (verify
//! capability), as docs/store.md ("Encryption, hashes, capabilities")
//! defines them:
//!
//! ```text
//! read:    cloudy:chk:K-N-SIZE:<base64url(key 32 ‖ file root 32)>
//! verify:  cloudy:chk-verify:K-N-SIZE:<base64url(SI 16 ‖ file root 32)>
//! ```
//!
//! Also the derivations that hang off the key: the storage index
//! ([`storage_index`]) and the file root over the parameters and every
//! share root ([`file_root`]).
//!
//! Invariants: a parsed capability has 1 ≤ K ≤ N ≤ `MAX_SHARES` and SIZE
//! ≤ `MAX_FILE_SIZE`; text is refused, with a reason, rather than
//! guessed; parsing never panics (fuzz target `store_cap`).

use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

use super::tree::Hash;
use crate::limits::{MAX_FILE_SIZE, MAX_SHARES, SEGMENT_SIZE};

pub const READ_PREFIX: &str = "cloudy:chk:";
pub const VERIFY_PREFIX: &str = "cloudy:chk-verify:";
/// Longest capability text accepted (a read cap is about 120 characters).
pub const MAX_TEXT: usize = 256;

/// A storage index: what boxes file a file's shares under.
pub type StorageIndex = [u8; 16];

/// The storage index of the file encrypted with `key`.
pub fn storage_index(key: &[u8; 32]) -> StorageIndex {
    let mut h = Sha256::new();
    h.update(b"cloudy-store-si\0");
    h.update(key);
    let d: [u8; 32] = h.finalize().into();
    let mut si = [0u8; 16];
    si.copy_from_slice(&d[..16]);
    si
}

/// The coding parameters every capability and share carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Shares needed (K).
    pub needed: u8,
    /// Shares made (N).
    pub total: u8,
    /// Plaintext bytes of the file.
    pub size: u64,
}

impl Shape {
    /// Checked: 1 ≤ K ≤ N ≤ `MAX_SHARES`, size ≤ `MAX_FILE_SIZE`.
    pub fn new(needed: u8, total: u8, size: u64) -> Result<Shape, CapError> {
        if needed == 0 || needed > total || usize::from(total) > MAX_SHARES {
            return Err(CapError::Shape);
        }
        if size > MAX_FILE_SIZE {
            return Err(CapError::TooLarge);
        }
        Ok(Shape {
            needed,
            total,
            size,
        })
    }

    /// The 16-byte parameters block (docs/store.md): version 1, K, N, 0,
    /// segment size u32, size u64, big-endian.
    pub fn params_bytes(&self) -> [u8; 16] {
        let mut p = [0u8; 16];
        p[0] = 1;
        p[1] = self.needed;
        p[2] = self.total;
        // SEGMENT_SIZE is 128 KiB, well within u32.
        p[4..8].copy_from_slice(&(SEGMENT_SIZE as u32).to_be_bytes());
        p[8..16].copy_from_slice(&self.size.to_be_bytes());
        p
    }

    /// Segments of the file: at least one (a 0-byte file has one empty
    /// segment).
    pub fn segments(&self) -> u64 {
        self.size.div_ceil(SEGMENT_SIZE as u64).max(1)
    }

    /// Plaintext bytes of segment `s` (0 past the end).
    pub fn segment_len(&self, s: u64) -> usize {
        let start = s.saturating_mul(SEGMENT_SIZE as u64);
        // At most SEGMENT_SIZE, so it fits usize.
        self.size.saturating_sub(start).min(SEGMENT_SIZE as u64) as usize
    }

    /// Block size of segment `s`: `max(1, ceil(L / K))`.
    pub fn block_len(&self, s: u64) -> usize {
        self.segment_len(s)
            .div_ceil(usize::from(self.needed.max(1)))
            .max(1)
    }

    fn text(&self) -> String {
        format!("{}-{}-{}", self.needed, self.total, self.size)
    }

    fn parse_text(s: &str) -> Result<Shape, CapError> {
        let mut it = s.split('-');
        let mut num = || -> Result<u64, CapError> {
            let t = it.next().ok_or(CapError::Shape)?;
            // Decimal digits only: no sign, no spaces, no leading "+".
            if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CapError::Shape);
            }
            t.parse().map_err(|_| CapError::Shape)
        };
        let (k, n, size) = (num()?, num()?, num()?);
        if it.next().is_some() {
            return Err(CapError::Shape);
        }
        let k = u8::try_from(k).map_err(|_| CapError::Shape)?;
        let n = u8::try_from(n).map_err(|_| CapError::Shape)?;
        Shape::new(k, n, size)
    }
}

/// The file root: SHA-256 over a label, the parameters and every share
/// root, in share order.
pub fn file_root(shape: &Shape, share_roots: &[Hash]) -> Hash {
    let mut h = Sha256::new();
    h.update(b"cloudy-store-root\0");
    h.update(shape.params_bytes());
    for r in share_roots {
        h.update(r);
    }
    h.finalize().into()
}

/// Why a capability's text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapError {
    /// Not `cloudy:chk:` / `cloudy:chk-verify:`.
    Prefix,
    /// The K-N-SIZE part is not three decimal numbers with 1 ≤ K ≤ N ≤ 64.
    Shape,
    /// SIZE is beyond the largest file.
    TooLarge,
    /// The last part is not base64url of the right length.
    Body,
    /// Longer than any capability.
    Length,
}

impl fmt::Display for CapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CapError::Prefix => "not a capability (want cloudy:chk:… or cloudy:chk-verify:…)",
            CapError::Shape => "capability's K-N-SIZE is malformed (want 1 <= K <= N <= 64)",
            CapError::TooLarge => "capability's size is beyond the largest file (256 GiB)",
            CapError::Body => "capability's key part is not 64 or 48 bytes of base64url",
            CapError::Length => "capability text too long",
        })
    }
}

/// Read capability: decrypts and checks the file.
#[derive(Clone, PartialEq, Eq)]
pub struct ReadCap {
    pub shape: Shape,
    pub key: [u8; 32],
    pub root: Hash,
}

/// Verify capability: checks and repairs shares, never decrypts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyCap {
    pub shape: Shape,
    pub storage_index: StorageIndex,
    pub root: Hash,
}

// The key stays out of logs and panics.
impl fmt::Debug for ReadCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadCap")
            .field("shape", &self.shape)
            .field("storage_index", &self.storage_index())
            .finish_non_exhaustive()
    }
}

/// Split `prefix` `K-N-SIZE` `:` body, decoding the body to `N` bytes.
fn split<const N: usize>(text: &str, prefix: &str) -> Result<(Shape, [u8; N]), CapError> {
    let text = text.trim();
    if text.len() > MAX_TEXT {
        return Err(CapError::Length);
    }
    let rest = text.strip_prefix(prefix).ok_or(CapError::Prefix)?;
    let (shape, body) = rest.split_once(':').ok_or(CapError::Shape)?;
    let shape = Shape::parse_text(shape)?;
    let mut out = [0u8; N];
    let decoded = Base64UrlUnpadded::decode(body, &mut out).map_err(|_| CapError::Body)?;
    if decoded.len() != N {
        return Err(CapError::Body);
    }
    Ok((shape, out))
}

impl ReadCap {
    pub fn storage_index(&self) -> StorageIndex {
        storage_index(&self.key)
    }

    /// The verify capability of the same file.
    pub fn verify_cap(&self) -> VerifyCap {
        VerifyCap {
            shape: self.shape,
            storage_index: self.storage_index(),
            root: self.root,
        }
    }

    pub fn to_text(&self) -> String {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(&self.key);
        b[32..].copy_from_slice(&self.root);
        format!(
            "{READ_PREFIX}{}:{}",
            self.shape.text(),
            Base64UrlUnpadded::encode_string(&b)
        )
    }

    pub fn parse(text: &str) -> Result<ReadCap, CapError> {
        if text.trim().starts_with(VERIFY_PREFIX) {
            return Err(CapError::Prefix);
        }
        let (shape, b) = split::<64>(text, READ_PREFIX)?;
        let mut key = [0u8; 32];
        let mut root = [0u8; 32];
        key.copy_from_slice(&b[..32]);
        root.copy_from_slice(&b[32..]);
        Ok(ReadCap { shape, key, root })
    }
}

impl VerifyCap {
    pub fn to_text(&self) -> String {
        let mut b = [0u8; 48];
        b[..16].copy_from_slice(&self.storage_index);
        b[16..].copy_from_slice(&self.root);
        format!(
            "{VERIFY_PREFIX}{}:{}",
            self.shape.text(),
            Base64UrlUnpadded::encode_string(&b)
        )
    }

    /// A verify capability, or the verify capability of a read capability.
    pub fn parse(text: &str) -> Result<VerifyCap, CapError> {
        if text.trim().starts_with(READ_PREFIX) {
            return ReadCap::parse(text).map(|r| r.verify_cap());
        }
        let (shape, b) = split::<48>(text, VERIFY_PREFIX)?;
        let mut storage_index = [0u8; 16];
        let mut root = [0u8; 32];
        storage_index.copy_from_slice(&b[..16]);
        root.copy_from_slice(&b[16..]);
        Ok(VerifyCap {
            shape,
            storage_index,
            root,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn sample() -> ReadCap {
        ReadCap {
            shape: Shape::new(3, 10, 20 << 20).unwrap(),
            key: [7; 32],
            root: [9; 32],
        }
    }

    #[test]
    fn text_round_trips() {
        let r = sample();
        let t = r.to_text();
        assert!(t.starts_with("cloudy:chk:3-10-20971520:"), "{t}");
        assert_eq!(ReadCap::parse(&t), Ok(r.clone()));
        assert_eq!(ReadCap::parse(&format!("  {t}\n")), Ok(r.clone()));
        let v = r.verify_cap();
        let vt = v.to_text();
        assert!(vt.starts_with("cloudy:chk-verify:3-10-20971520:"), "{vt}");
        assert_eq!(VerifyCap::parse(&vt), Ok(v.clone()));
        // A read cap gives its verify cap; a verify cap never reads.
        assert_eq!(VerifyCap::parse(&t), Ok(v));
        assert_eq!(ReadCap::parse(&vt), Err(CapError::Prefix));
        // The key never shows in Debug.
        assert!(!format!("{r:?}").contains("7, 7"));
    }

    #[test]
    fn fixture() {
        // Fixed bytes: key 0..32, root 32..64, 1-of-1 of 0 bytes.
        let r = ReadCap {
            shape: Shape::new(1, 1, 0).unwrap(),
            key: core::array::from_fn(|i| i as u8),
            root: core::array::from_fn(|i| 32 + i as u8),
        };
        assert_eq!(
            r.to_text(),
            "cloudy:chk:1-1-0:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-Pw"
        );
        // Computed independently (Python hashlib) from docs/store.md.
        assert_eq!(
            hex(&storage_index(&r.key)),
            "517689b7ed03bc071233f4f4cba3eba6"
        );
        assert_eq!(
            hex(&file_root(&r.shape, &[r.root])),
            "42f2fa24436ceb0ecc8376e656ebdf30d503ef9db62a295479465bcc125f2b9b"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn malformed_text_is_refused() {
        let t = sample().to_text();
        let body = t.rsplit(':').next().unwrap().to_string();
        for (bad, want) in [
            ("", CapError::Prefix),
            ("cloudy:chk", CapError::Prefix),
            ("URI:CHK:abc", CapError::Prefix),
            ("cloudy:chk:3-10-5", CapError::Shape),
            ("cloudy:chk:3-10:x", CapError::Shape),
            ("cloudy:chk:0-10-5:x", CapError::Shape),
            ("cloudy:chk:4-3-5:x", CapError::Shape),
            ("cloudy:chk:3-65-5:x", CapError::Shape),
            ("cloudy:chk:3-300-5:x", CapError::Shape),
            ("cloudy:chk:+3-10-5:x", CapError::Shape),
            ("cloudy:chk:3-10-5-1:x", CapError::Shape),
            ("cloudy:chk:3-10-99999999999999999999999:x", CapError::Shape),
            ("cloudy:chk:3-10-274877906945:x", CapError::TooLarge),
            ("cloudy:chk:3-10-5:", CapError::Body),
            ("cloudy:chk:3-10-5:!!!!", CapError::Body),
        ] {
            assert_eq!(ReadCap::parse(bad), Err(want), "{bad:?}");
        }
        assert_eq!(
            ReadCap::parse(&format!("cloudy:chk:3-10-5:{}", &body[..body.len() - 2])),
            Err(CapError::Body)
        );
        assert_eq!(
            ReadCap::parse(&format!("cloudy:chk:3-10-5:{body}AA")),
            Err(CapError::Body)
        );
        assert_eq!(ReadCap::parse(&"a".repeat(1000)), Err(CapError::Length));
    }

    #[test]
    fn segments_and_blocks() {
        let s = |k, size| Shape::new(k, 10, size).unwrap();
        assert_eq!(s(3, 0).segments(), 1);
        assert_eq!(s(3, 0).block_len(0), 1);
        assert_eq!(s(3, 1).block_len(0), 1);
        let seg = SEGMENT_SIZE as u64;
        assert_eq!(s(3, seg).segments(), 1);
        assert_eq!(s(3, seg + 1).segments(), 2);
        assert_eq!(s(3, seg + 1).block_len(0), SEGMENT_SIZE.div_ceil(3));
        assert_eq!(s(3, seg + 1).block_len(1), 1);
        assert_eq!(s(3, seg - 1).segment_len(0), SEGMENT_SIZE - 1);
        assert_eq!(s(3, MAX_FILE_SIZE).segments(), MAX_FILE_SIZE / seg);
    }
}
