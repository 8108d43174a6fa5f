//! The share file of a storage box: its layout, and the hash tree rules
//! a box needs to build it and serve proofs from it (pure, no IO, fuzzed
//! by `fuzz/fuzz_targets/store_share.rs`).
//!
//! Layout (docs/store.md, "Share file"; big-endian):
//!
//! ```text
//! header (64 bytes)
//!   0   magic "CLDYSHR1" (8)
//!   8   params (16): version, K, N, 0, S u32, size u64
//!   24  SI (16)
//!   40  share number u8 | 0 0 0
//!   44  segments u32
//!   48  block size B of full segments u32 | last block size u32
//!   56  reserved (4, zero)
//!   60  CRC32C u32 of bytes 0..60
//! roots: N × 32 bytes (R_0 … R_{N−1}), then CRC32C u32 of them
//! blocks: for s in 0..segments: block s (B, or the last size), CRC32C u32 of it
//! tree: level 0 (segments leaf hashes), level 1 (ceil(segments/2) nodes), …
//!       up to the single root; 32 bytes per node, levels back to back
//! ```
//!
//! Choices where docs/store.md leaves room (kept here so the client can
//! check them):
//! - version 1 fixes S at [`SEGMENT_SIZE`]; a header naming another S is
//!   refused (the capability does not carry S).
//! - "B of full segments" is `max(1, ceil(S / K))` even when the file has a
//!   single, shorter segment: it is a function of the parameters alone,
//!   and the last block size is `max(1, ceil(L / K))` with L the last
//!   segment's length (S when the size is a multiple of S, 0 for an empty
//!   file). Both are checked against the parameters.
//!
//! Invariants: a [`ShareHeader`] only exists validated (by
//! [`ShareHeader::new`] or [`ShareHeader::parse`]); its layout is computed
//! once, with checked arithmetic, when it is made, so no accessor can
//! overflow or panic, and a header claiming huge sizes is an error. A file
//! is at most 2^38 bytes and S is 2^17, so a tree has at most 2^21 leaves
//! and 22 levels; the types allow any `u32` leaf count (33 levels, 32 proof
//! nodes).
//!
//! Tree rules (docs/store.md, "Encryption, hashes, capabilities"): leaf
//! `SHA-256(0x00 ‖ block)`, inner node `SHA-256(0x01 ‖ left ‖ right)`,
//! levels built bottom-up, an unpaired last node carried up unchanged
//! (this equals RFC 6962 §2.1's tree; a test checks both). The proof of a
//! leaf is its siblings from the leaf up, skipping the levels where its
//! ancestor is carried up. The tree code itself is `store::tree`, shared
//! with the client (re-exported here).

use core::fmt;

use crate::limits::{MAX_FILE_SIZE, MAX_SHARES, SEGMENT_SIZE};

/// First 8 bytes of every share file.
pub const MAGIC: [u8; 8] = *b"CLDYSHR1";
/// The only version of the parameters block and of this layout.
pub const VERSION: u8 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 64;
/// Bytes of the parameters block.
pub const PARAMS_LEN: usize = 16;
/// Bytes of a storage index.
pub const SI_LEN: usize = 16;
/// Bytes of a hash (leaf, node, root).
pub const HASH_LEN: usize = 32;
/// Bytes of a CRC32C.
pub const CRC_LEN: usize = 4;
/// Header and the largest roots area (N = 64), CRC included.
pub const MAX_HEAD_LEN: usize = HEADER_LEN + MAX_SHARES * HASH_LEN + CRC_LEN;

/// A SHA-256 hash: a leaf, an inner node or a root.
pub use super::tree::Hash;

/// CRC32C (Castagnoli), the `crc` crate's `CRC_32_ISCSI`.
pub const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

/// Why a header, parameters block or roots area was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareError {
    /// Fewer bytes than the layout needs.
    Truncated,
    BadMagic,
    BadVersion(u8),
    /// Not 1 ≤ K ≤ N ≤ `MAX_SHARES`.
    BadCoding {
        k: u8,
        n: u8,
    },
    /// S is not `SEGMENT_SIZE` (version 1 fixes it).
    BadSegmentSize(u32),
    /// Larger than `MAX_FILE_SIZE`, or a layout that does not fit a `u64`.
    TooLarge,
    /// Share number not below N.
    BadShare(u8),
    /// A reserved byte is not zero.
    Reserved,
    /// The segment count is not `max(1, ceil(size / S))`.
    BadSegments {
        claimed: u32,
    },
    /// A block size disagrees with the parameters.
    BadBlockSize,
    /// The header's CRC32C does not match.
    HeaderCrc,
    /// The roots' CRC32C does not match.
    RootsCrc,
}

impl fmt::Display for ShareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareError::Truncated => write!(f, "truncated share header"),
            ShareError::BadMagic => write!(f, "not a share file (bad magic)"),
            ShareError::BadVersion(v) => write!(f, "unknown share version {v}"),
            ShareError::BadCoding { k, n } => {
                write!(
                    f,
                    "bad coding {k}-of-{n} (need 1 <= K <= N <= {MAX_SHARES})"
                )
            }
            ShareError::BadSegmentSize(s) => {
                write!(f, "segment size {s}, version 1 has {SEGMENT_SIZE}")
            }
            ShareError::TooLarge => write!(f, "file too large"),
            ShareError::BadShare(s) => write!(f, "share number {s} not below N"),
            ShareError::Reserved => write!(f, "reserved bytes not zero"),
            ShareError::BadSegments { claimed } => {
                write!(f, "segment count {claimed} does not match the size")
            }
            ShareError::BadBlockSize => write!(f, "block sizes do not match the parameters"),
            ShareError::HeaderCrc => write!(f, "share header CRC mismatch"),
            ShareError::RootsCrc => write!(f, "share roots CRC mismatch"),
        }
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    // Callers pass fixed-size arrays and constant offsets inside them.
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_be_bytes(a)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_be_bytes(a)
}

/// The parameters block: `version u8 = 1 | K u8 | N u8 | 0 u8 | S u32 |
/// size u64` (docs/store.md, "Encryption, hashes, capabilities"). The
/// fields are public; [`Params::validate`] (called by `parse` and by
/// [`ShareHeader::new`]) checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub version: u8,
    /// Shares that rebuild a segment.
    pub k: u8,
    /// Shares made.
    pub n: u8,
    /// Plaintext bytes per segment.
    pub segment_size: u32,
    /// Plaintext bytes of the file.
    pub size: u64,
}

impl Params {
    /// Version 1 parameters with the fixed segment size (not validated).
    pub fn new(k: u8, n: u8, size: u64) -> Params {
        Params {
            version: VERSION,
            k,
            n,
            // SEGMENT_SIZE is 128 KiB.
            segment_size: SEGMENT_SIZE as u32,
            size,
        }
    }

    /// Checks version, 1 ≤ K ≤ N ≤ `MAX_SHARES`, S and the size.
    pub fn validate(&self) -> Result<(), ShareError> {
        if self.version != VERSION {
            return Err(ShareError::BadVersion(self.version));
        }
        if self.k == 0 || self.k > self.n || usize::from(self.n) > MAX_SHARES {
            return Err(ShareError::BadCoding {
                k: self.k,
                n: self.n,
            });
        }
        if usize::try_from(self.segment_size) != Ok(SEGMENT_SIZE) {
            return Err(ShareError::BadSegmentSize(self.segment_size));
        }
        if self.size > MAX_FILE_SIZE {
            return Err(ShareError::TooLarge);
        }
        Ok(())
    }

    /// Reads and validates a parameters block.
    pub fn parse(b: &[u8; PARAMS_LEN]) -> Result<Params, ShareError> {
        if b[3] != 0 {
            return Err(ShareError::Reserved);
        }
        let p = Params {
            version: b[0],
            k: b[1],
            n: b[2],
            segment_size: be32(b, 4),
            size: be64(b, 8),
        };
        p.validate()?;
        Ok(p)
    }

    /// The parameters block.
    pub fn emit(&self) -> [u8; PARAMS_LEN] {
        let mut b = [0u8; PARAMS_LEN];
        b[0] = self.version;
        b[1] = self.k;
        b[2] = self.n;
        b[4..8].copy_from_slice(&self.segment_size.to_be_bytes());
        b[8..16].copy_from_slice(&self.size.to_be_bytes());
        b
    }

    /// `max(1, ceil(size / S))`; `None` for S = 0 or a count beyond `u32`.
    pub fn segments(&self) -> Option<u32> {
        let s = u64::from(self.segment_size);
        if s == 0 {
            return None;
        }
        u32::try_from(self.size.div_ceil(s).max(1)).ok()
    }

    /// Plaintext bytes of segment `s` (`None` past the last segment).
    pub fn segment_len(&self, s: u32) -> Option<u64> {
        if s >= self.segments()? {
            return None;
        }
        let start = u64::from(s).checked_mul(u64::from(self.segment_size))?;
        let end = start
            .checked_add(u64::from(self.segment_size))?
            .min(self.size);
        Some(end.saturating_sub(start))
    }

    /// Block bytes of a segment of `len` plaintext bytes:
    /// `B = max(1, ceil(L / K))` (`None` for K = 0 or a size beyond `u32`).
    pub fn block_size_for(&self, len: u64) -> Option<u32> {
        if self.k == 0 {
            return None;
        }
        u32::try_from(len.div_ceil(u64::from(self.k)).max(1)).ok()
    }
}

/// A validated share header, with the file's layout computed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareHeader {
    params: Params,
    si: [u8; SI_LEN],
    share: u8,
    segments: u32,
    block_size: u32,
    last_block_size: u32,
    // Derived, checked when made:
    levels: Levels,
    tree_offset: u64,
    file_len: u64,
}

impl ShareHeader {
    /// The header of share `share` of the file `params` under `si`.
    pub fn new(params: Params, si: [u8; SI_LEN], share: u8) -> Result<ShareHeader, ShareError> {
        params.validate()?;
        if share >= params.n {
            return Err(ShareError::BadShare(share));
        }
        let segments = params.segments().ok_or(ShareError::TooLarge)?;
        let block_size = params
            .block_size_for(u64::from(params.segment_size))
            .ok_or(ShareError::TooLarge)?;
        let last_len = params
            .segment_len(segments.saturating_sub(1)) // segments ≥ 1
            .ok_or(ShareError::TooLarge)?;
        let last_block_size = params
            .block_size_for(last_len)
            .ok_or(ShareError::TooLarge)?;
        Self::with_layout(params, si, share, segments, block_size, last_block_size)
    }

    fn with_layout(
        params: Params,
        si: [u8; SI_LEN],
        share: u8,
        segments: u32,
        block_size: u32,
        last_block_size: u32,
    ) -> Result<ShareHeader, ShareError> {
        let levels = Levels::new(segments).ok_or(ShareError::BadSegments { claimed: segments })?;
        let blocks_offset = blocks_offset(params.n);
        let full = u64::from(block_size) + CRC_LEN as u64;
        let last = u64::from(last_block_size) + CRC_LEN as u64;
        let tree_offset = u64::from(segments.saturating_sub(1)) // ≥ 1: Levels::new
            .checked_mul(full)
            .and_then(|b| b.checked_add(last))
            .and_then(|b| b.checked_add(blocks_offset))
            .ok_or(ShareError::TooLarge)?;
        let file_len = levels
            .nodes()
            .checked_mul(HASH_LEN as u64)
            .and_then(|t| t.checked_add(tree_offset))
            .ok_or(ShareError::TooLarge)?;
        Ok(ShareHeader {
            params,
            si,
            share,
            segments,
            block_size,
            last_block_size,
            levels,
            tree_offset,
            file_len,
        })
    }

    /// Reads and validates a header: magic, CRC, parameters, share number,
    /// segment count, block sizes, reserved bytes.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Result<ShareHeader, ShareError> {
        if b[0..8] != MAGIC {
            return Err(ShareError::BadMagic);
        }
        if crc32c(&b[..60]) != be32(b, 60) {
            return Err(ShareError::HeaderCrc);
        }
        let mut p = [0u8; PARAMS_LEN];
        p.copy_from_slice(&b[8..24]);
        let params = Params::parse(&p)?;
        let mut si = [0u8; SI_LEN];
        si.copy_from_slice(&b[24..40]);
        if b[41..44] != [0, 0, 0] || b[56..60] != [0, 0, 0, 0] {
            return Err(ShareError::Reserved);
        }
        let h = ShareHeader::new(params, si, b[40])?;
        let claimed = be32(b, 44);
        if claimed != h.segments {
            return Err(ShareError::BadSegments { claimed });
        }
        if be32(b, 48) != h.block_size || be32(b, 52) != h.last_block_size {
            return Err(ShareError::BadBlockSize);
        }
        Ok(h)
    }

    /// [`ShareHeader::parse`] of the first 64 bytes of `b`.
    pub fn parse_prefix(b: &[u8]) -> Result<ShareHeader, ShareError> {
        let head: &[u8; HEADER_LEN] = b
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(ShareError::Truncated)?;
        ShareHeader::parse(head)
    }

    /// The 64 header bytes.
    pub fn emit(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..24].copy_from_slice(&self.params.emit());
        b[24..40].copy_from_slice(&self.si);
        b[40] = self.share;
        b[44..48].copy_from_slice(&self.segments.to_be_bytes());
        b[48..52].copy_from_slice(&self.block_size.to_be_bytes());
        b[52..56].copy_from_slice(&self.last_block_size.to_be_bytes());
        let crc = crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_be_bytes());
        b
    }

    pub fn params(&self) -> Params {
        self.params
    }
    pub fn si(&self) -> [u8; SI_LEN] {
        self.si
    }
    pub fn share(&self) -> u8 {
        self.share
    }
    pub fn segments(&self) -> u32 {
        self.segments
    }
    /// Block bytes of every segment but the last.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }
    pub fn last_block_size(&self) -> u32 {
        self.last_block_size
    }
    /// The shape of the share's tree (one leaf per segment).
    pub fn levels(&self) -> &Levels {
        &self.levels
    }

    /// Where the roots start (right after the header).
    pub fn roots_offset(&self) -> u64 {
        HEADER_LEN as u64
    }

    /// Bytes of the roots area: N × 32 and the CRC.
    pub fn roots_len(&self) -> usize {
        roots_len(self.params.n)
    }

    /// Where block 0 starts.
    pub fn blocks_offset(&self) -> u64 {
        blocks_offset(self.params.n)
    }

    /// Where block `s` starts (its CRC follows it); `None` past the end.
    pub fn block_offset(&self, s: u32) -> Option<u64> {
        if s >= self.segments {
            return None;
        }
        let stride = u64::from(self.block_size) + CRC_LEN as u64;
        u64::from(s)
            .checked_mul(stride)?
            .checked_add(self.blocks_offset())
    }

    /// Bytes of block `s` (without its CRC); `None` past the end.
    pub fn block_len(&self, s: u32) -> Option<usize> {
        let len = match s.checked_add(1)?.cmp(&self.segments) {
            core::cmp::Ordering::Less => self.block_size,
            core::cmp::Ordering::Equal => self.last_block_size,
            core::cmp::Ordering::Greater => return None,
        };
        usize::try_from(len).ok()
    }

    /// Where the tree (level 0, the leaves) starts.
    pub fn tree_offset(&self) -> u64 {
        self.tree_offset
    }

    /// Where each level of the tree starts, level 0 first.
    pub fn tree_level_offsets(&self) -> heapless::Vec<u64, MAX_LEVELS> {
        let mut v = heapless::Vec::new();
        for level in 0..self.levels.count() {
            if let Some(at) = self.node_offset(level, 0) {
                // At most MAX_LEVELS levels.
                let _ = v.push(at);
            }
        }
        v
    }

    /// Where node `index` of level `level` is; `None` if there is none.
    pub fn node_offset(&self, level: usize, index: u32) -> Option<u64> {
        if index >= self.levels.size(level)? {
            return None;
        }
        self.levels
            .start(level)?
            .checked_add(u64::from(index))?
            .checked_mul(HASH_LEN as u64)?
            .checked_add(self.tree_offset)
    }

    /// Bytes of the whole share file.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }
}

/// Bytes of the roots area for N shares: N × 32 and the CRC.
pub fn roots_len(n: u8) -> usize {
    usize::from(n) * HASH_LEN + CRC_LEN
}

fn blocks_offset(n: u8) -> u64 {
    (HEADER_LEN + roots_len(n)) as u64
}

/// Writes the roots area (`roots` then their CRC32C) into `out`; returns
/// its length, or `None` if `out` is too short or there are more than
/// `MAX_SHARES` roots.
pub fn emit_roots(roots: &[Hash], out: &mut [u8]) -> Option<usize> {
    if roots.len() > MAX_SHARES {
        return None;
    }
    let len = roots.len() * HASH_LEN;
    let area = out.get_mut(..len + CRC_LEN)?;
    let mut digest = CRC32C.digest();
    for (i, r) in roots.iter().enumerate() {
        area[i * HASH_LEN..(i + 1) * HASH_LEN].copy_from_slice(r);
        digest.update(r);
    }
    area[len..].copy_from_slice(&digest.finalize().to_be_bytes());
    Some(area.len())
}

/// Checks the roots area of N shares at the start of `b` (N × 32, CRC);
/// returns the N × 32 root bytes.
pub fn parse_roots(b: &[u8], n: u8) -> Result<&[u8], ShareError> {
    let len = usize::from(n) * HASH_LEN;
    let area = b.get(..len + CRC_LEN).ok_or(ShareError::Truncated)?;
    let (roots, crc) = area.split_at(len);
    if crc32c(roots) != be32(crc, 0) {
        return Err(ShareError::RootsCrc);
    }
    Ok(roots)
}

/// Root `i` out of a roots slice from [`parse_roots`].
pub fn root_at(roots: &[u8], i: u8) -> Option<Hash> {
    let at = usize::from(i) * HASH_LEN;
    roots.get(at..at + HASH_LEN)?.try_into().ok()
}

// ---- the tree: `store::tree`, shared with the client ----

pub use super::tree::{
    audit_path, hash_pairs, leaf_hash, node_hash, root_from_proof, root_of, AuditPath, Levels,
    ProofNode, RootBuilder, MAX_LEVELS, MAX_PROOF,
};

#[cfg(test)]
mod test {
    use super::*;

    const SI: [u8; 16] = [0xA5; 16];
    const S: u64 = SEGMENT_SIZE as u64;

    fn header(k: u8, n: u8, size: u64, share: u8) -> ShareHeader {
        ShareHeader::new(Params::new(k, n, size), SI, share).unwrap()
    }

    /// Re-signs a mutated header so that only the field under test is wrong.
    fn with_crc(mut b: [u8; 64]) -> [u8; 64] {
        let crc = crc32c(&b[..60]);
        b[60..].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn fixture_bytes() {
        // 3-of-10, 300000 bytes: segments 131072, 131072, 37856;
        // B = ceil(131072/3) = 43691, last = ceil(37856/3) = 12619.
        let h = header(3, 10, 300_000, 7);
        let b = h.emit();
        let mut want = Vec::new();
        want.extend_from_slice(b"CLDYSHR1");
        want.extend_from_slice(&[1, 3, 10, 0, 0, 2, 0, 0]);
        want.extend_from_slice(&300_000u64.to_be_bytes());
        want.extend_from_slice(&SI);
        want.extend_from_slice(&[7, 0, 0, 0]);
        want.extend_from_slice(&3u32.to_be_bytes());
        want.extend_from_slice(&43_691u32.to_be_bytes());
        want.extend_from_slice(&12_619u32.to_be_bytes());
        want.extend_from_slice(&[0; 4]);
        want.extend_from_slice(&crc32c(&want).to_be_bytes());
        assert_eq!(&b[..], &want[..]);
        assert_eq!(ShareHeader::parse(&b), Ok(h));
        assert_eq!(ShareHeader::parse_prefix(&want), Ok(h));
        // Layout: roots 10 × 32 + 4 at 64; blocks at 388.
        assert_eq!(h.roots_offset(), 64);
        assert_eq!(h.roots_len(), 324);
        assert_eq!(h.blocks_offset(), 388);
        assert_eq!(h.block_offset(0), Some(388));
        assert_eq!(h.block_offset(1), Some(388 + 43_695));
        assert_eq!(h.block_offset(2), Some(388 + 2 * 43_695));
        assert_eq!(h.block_offset(3), None);
        assert_eq!(h.block_len(0), Some(43_691));
        assert_eq!(h.block_len(2), Some(12_619));
        assert_eq!(h.block_len(3), None);
        assert_eq!(h.block_len(u32::MAX), None);
        let tree = 388 + 2 * 43_695 + 12_623;
        assert_eq!(h.tree_offset(), tree);
        // Levels 3, 2, 1.
        assert_eq!(h.levels().as_slice(), &[3, 2, 1]);
        assert_eq!(&h.tree_level_offsets()[..], &[tree, tree + 96, tree + 160]);
        assert_eq!(h.node_offset(1, 1), Some(tree + 128));
        assert_eq!(h.node_offset(1, 2), None);
        assert_eq!(h.node_offset(3, 0), None);
        assert_eq!(h.file_len(), tree + 6 * 32);
    }

    #[test]
    fn block_sizes_at_the_edges() {
        // An empty file: one segment, a 1-byte block (zero padding).
        let h = header(3, 10, 0, 0);
        assert_eq!(
            (h.segments(), h.block_size(), h.last_block_size()),
            (1, 43_691, 1)
        );
        // One byte, 1-of-1.
        let h = header(1, 1, 1, 0);
        assert_eq!(
            (h.segments(), h.block_size(), h.last_block_size()),
            (1, S as u32, 1)
        );
        // Exactly S: one full segment.
        let h = header(2, 4, S, 3);
        assert_eq!((h.segments(), h.last_block_size()), (1, 65_536));
        // S + 1: a 1-byte last segment.
        let h = header(2, 4, S + 1, 3);
        assert_eq!((h.segments(), h.last_block_size()), (2, 1));
        // The largest file, 64-of-64.
        let h = header(64, 64, MAX_FILE_SIZE, 63);
        assert_eq!(h.segments(), 1 << 21);
        assert_eq!(h.levels().count(), 22);
        assert_eq!(h.block_size(), 2048);
        assert!(h.file_len() > MAX_FILE_SIZE / 64);
    }

    #[test]
    fn every_bit_flip_is_refused() {
        let b = header(3, 10, 300_000, 7).emit();
        for i in 0..64 {
            for bit in 0..8 {
                let mut m = b;
                m[i] ^= 1 << bit;
                assert!(ShareHeader::parse(&m).is_err(), "byte {i} bit {bit}");
            }
        }
        for n in 0..64 {
            assert_eq!(
                ShareHeader::parse_prefix(&b[..n]),
                Err(ShareError::Truncated)
            );
        }
    }

    #[test]
    fn bad_headers_with_good_crc() {
        let b = header(3, 10, 300_000, 7).emit();
        let set = |f: &dyn Fn(&mut [u8; 64])| {
            let mut m = b;
            f(&mut m);
            ShareHeader::parse(&with_crc(m))
        };
        assert_eq!(set(&|m| m[0] = b'X'), Err(ShareError::BadMagic));
        assert_eq!(set(&|m| m[8] = 2), Err(ShareError::BadVersion(2)));
        assert_eq!(
            set(&|m| m[9] = 11),
            Err(ShareError::BadCoding { k: 11, n: 10 })
        );
        assert_eq!(
            set(&|m| m[9] = 0),
            Err(ShareError::BadCoding { k: 0, n: 10 })
        );
        assert_eq!(
            set(&|m| {
                m[9] = 3;
                m[10] = 65
            }),
            Err(ShareError::BadCoding { k: 3, n: 65 })
        );
        assert_eq!(set(&|m| m[11] = 1), Err(ShareError::Reserved));
        assert_eq!(
            set(&|m| m[12..16].copy_from_slice(&64u32.to_be_bytes())),
            Err(ShareError::BadSegmentSize(64))
        );
        assert_eq!(
            set(&|m| m[12..16].copy_from_slice(&0u32.to_be_bytes())),
            Err(ShareError::BadSegmentSize(0))
        );
        // Huge sizes are refused, not overflowed.
        for size in [MAX_FILE_SIZE + 1, u64::MAX, u64::MAX - S + 1] {
            assert_eq!(
                set(&|m| m[16..24].copy_from_slice(&size.to_be_bytes())),
                Err(ShareError::TooLarge)
            );
        }
        assert_eq!(set(&|m| m[40] = 10), Err(ShareError::BadShare(10)));
        assert_eq!(set(&|m| m[40] = 255), Err(ShareError::BadShare(255)));
        assert_eq!(set(&|m| m[42] = 1), Err(ShareError::Reserved));
        assert_eq!(set(&|m| m[59] = 1), Err(ShareError::Reserved));
        assert_eq!(
            set(&|m| m[44..48].copy_from_slice(&4u32.to_be_bytes())),
            Err(ShareError::BadSegments { claimed: 4 })
        );
        assert_eq!(
            set(&|m| m[44..48].copy_from_slice(&u32::MAX.to_be_bytes())),
            Err(ShareError::BadSegments { claimed: u32::MAX })
        );
        assert_eq!(
            set(&|m| m[48..52].copy_from_slice(&u32::MAX.to_be_bytes())),
            Err(ShareError::BadBlockSize)
        );
        assert_eq!(
            set(&|m| m[52..56].copy_from_slice(&0u32.to_be_bytes())),
            Err(ShareError::BadBlockSize)
        );
        // A size matching the segments but not the last block size.
        assert_eq!(
            set(&|m| m[16..24].copy_from_slice(&300_003u64.to_be_bytes())),
            Err(ShareError::BadBlockSize)
        );
        // Params::new checks too.
        assert!(ShareHeader::new(Params::new(0, 0, 0), SI, 0).is_err());
        assert!(ShareHeader::new(Params::new(1, 1, 0), SI, 1).is_err());
    }

    #[test]
    fn params_round_trip() {
        let p = Params::new(3, 10, 12_345);
        let b = p.emit();
        assert_eq!(b, [1, 3, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x30, 0x39]);
        assert_eq!(Params::parse(&b), Ok(p));
        assert_eq!(p.segments(), Some(1));
        assert_eq!(p.segment_len(0), Some(12_345));
        assert_eq!(p.segment_len(1), None);
        let p = Params::new(3, 10, 2 * S + 5);
        assert_eq!(p.segments(), Some(3));
        assert_eq!(p.segment_len(1), Some(S));
        assert_eq!(p.segment_len(2), Some(5));
        // Unvalidated odd values do not panic.
        let odd = Params {
            version: 9,
            k: 0,
            n: 0,
            segment_size: 0,
            size: u64::MAX,
        };
        assert_eq!(odd.segments(), None);
        assert_eq!(odd.segment_len(0), None);
        assert_eq!(odd.block_size_for(5), None);
        let odd = Params {
            segment_size: 1,
            ..odd
        };
        assert_eq!(odd.segments(), None);
    }

    #[test]
    fn roots_area() {
        let roots = [[1u8; 32], [2; 32], [3; 32]];
        let mut out = [0u8; MAX_HEAD_LEN];
        let len = emit_roots(&roots, &mut out).unwrap();
        assert_eq!(len, roots_len(3));
        assert_eq!(parse_roots(&out, 3).unwrap(), roots.concat());
        assert_eq!(root_at(parse_roots(&out, 3).unwrap(), 2), Some([3; 32]));
        assert_eq!(root_at(parse_roots(&out, 3).unwrap(), 3), None);
        out[40] ^= 1;
        assert_eq!(parse_roots(&out, 3), Err(ShareError::RootsCrc));
        assert_eq!(parse_roots(&out[..99], 3), Err(ShareError::Truncated));
        assert_eq!(emit_roots(&roots, &mut [0u8; 99]), None);
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            ShareError::BadCoding { k: 4, n: 3 }.to_string(),
            "bad coding 4-of-3 (need 1 <= K <= N <= 64)"
        );
        assert_eq!(
            ShareError::HeaderCrc.to_string(),
            "share header CRC mismatch"
        );
    }
}
