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
//! ancestor is carried up. `store::tree` implements the client's side of
//! the same rules on its own; the two are meant to be tested against each
//! other.

use core::fmt;

use sha2::{Digest, Sha256};

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
/// Levels of the largest tree the types allow (`u32::MAX` leaves).
pub const MAX_LEVELS: usize = 33;
/// Room for the nodes of one proof (at most `MAX_LEVELS − 1` are used).
pub const MAX_PROOF: usize = 40;
/// Header and the largest roots area (N = 64), CRC included.
pub const MAX_HEAD_LEN: usize = HEADER_LEN + MAX_SHARES * HASH_LEN + CRC_LEN;

/// A SHA-256 hash: a leaf, an inner node or a root.
pub type Hash = [u8; HASH_LEN];

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

// ---- the tree ----

/// Leaf hash of a block: `SHA-256(0x00 ‖ block)`.
pub fn leaf_hash(block: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(block)
        .finalize()
        .into()
}

/// Inner node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// One level up: hashes `children` in pairs into `out` and carries an
/// unpaired last child up unchanged. Returns the number of parents
/// (`ceil(children / 2)`), or `None` if `out` is shorter than that. A
/// level may be done in pieces if every piece but the last has an even
/// number of children.
pub fn hash_pairs(children: &[Hash], out: &mut [Hash]) -> Option<usize> {
    let parents = children.len().div_ceil(2);
    let out = out.get_mut(..parents)?;
    for (o, pair) in out.iter_mut().zip(children.chunks(2)) {
        *o = match pair {
            [l, r] => node_hash(l, r),
            [single] => *single,
            _ => return None, // chunks(2) gives one or two
        };
    }
    Some(parents)
}

/// The sizes of a tree's levels, bottom-up: `leaves`, then `ceil(prev / 2)`
/// down to 1. A tree of one leaf has one level (the leaf is the root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Levels {
    count: usize,
    sizes: [u32; MAX_LEVELS],
}

impl Levels {
    /// `None` for 0 leaves (every file has at least one segment).
    pub fn new(leaves: u32) -> Option<Levels> {
        if leaves == 0 {
            return None;
        }
        let mut sizes = [0u32; MAX_LEVELS];
        let mut count = 0;
        let mut n = leaves;
        loop {
            // u32 leaves: at most 33 levels (2^32 − 1 leaves: 33).
            *sizes.get_mut(count)? = n;
            count += 1;
            if n == 1 {
                return Some(Levels { count, sizes });
            }
            n = n.div_ceil(2);
        }
    }

    /// Number of levels (1 for one leaf).
    pub fn count(&self) -> usize {
        self.count
    }

    /// The leaf count.
    pub fn leaves(&self) -> u32 {
        self.sizes[0]
    }

    /// Nodes of `level`.
    pub fn size(&self, level: usize) -> Option<u32> {
        self.as_slice().get(level).copied()
    }

    /// Level sizes, level 0 (the leaves) first.
    pub fn as_slice(&self) -> &[u32] {
        &self.sizes[..self.count]
    }

    /// Nodes of the levels below `level` (where it starts, in nodes).
    pub fn start(&self, level: usize) -> Option<u64> {
        let below = self.as_slice().get(..level)?;
        Some(below.iter().map(|&n| u64::from(n)).sum())
    }

    /// Nodes of all levels.
    pub fn nodes(&self) -> u64 {
        self.as_slice().iter().map(|&n| u64::from(n)).sum()
    }
}

/// A node of a proof: the sibling of the leaf's ancestor at `level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProofNode {
    pub level: u8,
    pub index: u32,
}

impl ProofNode {
    /// Is the sibling on the left (so the ancestor is its right child)?
    pub fn is_left(&self) -> bool {
        self.index % 2 == 0
    }
}

/// The positions of a leaf's proof, leaf level first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditPath {
    len: usize,
    nodes: [ProofNode; MAX_PROOF],
}

impl AuditPath {
    pub fn as_slice(&self) -> &[ProofNode] {
        &self.nodes[..self.len]
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The proof positions of leaf `leaf` in a tree of `leaves` leaves: at each
/// level below the root, the ancestor's sibling (index `i ^ 1`), unless
/// the ancestor is the unpaired last node of its level (then it is carried
/// up and that level gives nothing). `None` if `leaf ≥ leaves`.
pub fn audit_path(leaves: u32, leaf: u32) -> Option<AuditPath> {
    if leaf >= leaves {
        return None;
    }
    let levels = Levels::new(leaves)?;
    let mut path = AuditPath {
        len: 0,
        nodes: [ProofNode { level: 0, index: 0 }; MAX_PROOF],
    };
    let mut i = leaf;
    for (level, &size) in levels.as_slice().iter().enumerate() {
        if size == 1 {
            break;
        }
        let sibling = i ^ 1;
        if sibling < size {
            *path.nodes.get_mut(path.len)? = ProofNode {
                // level < MAX_LEVELS = 33.
                level: level as u8,
                index: sibling,
            };
            path.len += 1;
        }
        i /= 2;
    }
    Some(path)
}

/// The root recomputed from leaf `leaf`'s hash and its proof (the sibling
/// hashes in [`audit_path`] order). `None` if the proof has the wrong
/// number of nodes or the leaf is out of range.
pub fn root_from_proof(leaves: u32, leaf: u32, leaf_hash: &Hash, proof: &[Hash]) -> Option<Hash> {
    let path = audit_path(leaves, leaf)?;
    if path.len() != proof.len() {
        return None;
    }
    let mut h = *leaf_hash;
    for (pos, sibling) in path.as_slice().iter().zip(proof) {
        h = if pos.is_left() {
            node_hash(sibling, &h)
        } else {
            node_hash(&h, sibling)
        };
    }
    Some(h)
}

/// Computes a root from leaves pushed in order, in O(log n) memory: a
/// stack of the roots of complete subtrees (RFC 6962's shape), folded from
/// the right at the end.
#[derive(Clone, Debug, Default)]
pub struct RootBuilder {
    /// (height, root of a complete subtree of 2^height leaves), heights
    /// strictly decreasing.
    stack: heapless::Vec<(u8, Hash), MAX_LEVELS>,
    leaves: u64,
}

impl RootBuilder {
    pub fn new() -> RootBuilder {
        RootBuilder::default()
    }

    /// Adds the next leaf hash. `false` (and nothing added) past `u32::MAX`
    /// leaves.
    pub fn push(&mut self, leaf: Hash) -> bool {
        if self.leaves >= u64::from(u32::MAX) {
            return false;
        }
        self.leaves += 1;
        let mut node = (0u8, leaf);
        while let Some(&(h, left)) = self.stack.last() {
            if h != node.0 {
                break;
            }
            self.stack.pop();
            node = (h + 1, node_hash(&left, &node.1));
        }
        // Heights strictly decrease and are below 33: at most 33 entries.
        self.stack.push(node).is_ok()
    }

    /// Leaves pushed so far.
    pub fn leaves(&self) -> u64 {
        self.leaves
    }

    /// The root; `None` before the first leaf.
    pub fn root(&self) -> Option<Hash> {
        let mut it = self.stack.iter().rev();
        let mut acc = it.next()?.1;
        for (_, left) in it {
            acc = node_hash(left, &acc);
        }
        Some(acc)
    }
}

/// The root of `leaves` (level by level, in place; for tests and small
/// trees: `leaves` is overwritten). `None` for no leaves.
pub fn root_of(leaves: &mut [Hash]) -> Option<Hash> {
    let mut n = leaves.len();
    if n == 0 {
        return None;
    }
    while n > 1 {
        for i in 0..n / 2 {
            leaves[i] = node_hash(&leaves[2 * i], &leaves[2 * i + 1]);
        }
        if n % 2 == 1 {
            leaves[n / 2] = leaves[n - 1];
        }
        n = n.div_ceil(2);
    }
    Some(leaves[0])
}

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
    fn hashes_match_known_values() {
        // RFC 6962's hash of an empty leaf: SHA-256(0x00).
        let want = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";
        let hex: String = leaf_hash(&[]).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want);
        let mut m = [0u8; 65];
        m[0] = 1;
        m[1..33].copy_from_slice(&[7; 32]);
        m[33..].copy_from_slice(&[8; 32]);
        let direct: Hash = Sha256::digest(m).into();
        assert_eq!(node_hash(&[7; 32], &[8; 32]), direct);
    }

    fn leaves(n: u32) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// RFC 6962 §2.1: MTH(D[n]) = H(1 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])), k the
    /// largest power of two below n.
    fn mth(l: &[Hash]) -> Hash {
        if l.len() == 1 {
            return l[0];
        }
        let mut k = 1;
        while k * 2 < l.len() {
            k *= 2;
        }
        node_hash(&mth(&l[..k]), &mth(&l[k..]))
    }

    #[test]
    fn level_sizes() {
        assert_eq!(Levels::new(0), None);
        assert_eq!(Levels::new(1).unwrap().as_slice(), &[1]);
        assert_eq!(Levels::new(2).unwrap().as_slice(), &[2, 1]);
        assert_eq!(Levels::new(5).unwrap().as_slice(), &[5, 3, 2, 1]);
        assert_eq!(Levels::new(9).unwrap().as_slice(), &[9, 5, 3, 2, 1]);
        let l = Levels::new(u32::MAX).unwrap();
        assert_eq!(l.count(), MAX_LEVELS);
        assert_eq!(l.leaves(), u32::MAX);
        assert_eq!(Levels::new(9).unwrap().nodes(), 20);
        assert_eq!(Levels::new(9).unwrap().start(2), Some(14));
        assert_eq!(Levels::new(9).unwrap().start(6), None);
        assert!(audit_path(u32::MAX, u32::MAX - 1).unwrap().len() <= MAX_PROOF);
    }

    #[test]
    fn audit_path_positions() {
        // 5 leaves: levels 5, 3, 2, 1.
        let p = |leaf| {
            audit_path(5, leaf)
                .unwrap()
                .as_slice()
                .iter()
                .map(|n| (n.level, n.index))
                .collect::<Vec<_>>()
        };
        assert_eq!(p(0), [(0, 1), (1, 1), (2, 1)]);
        assert_eq!(p(3), [(0, 2), (1, 0), (2, 1)]);
        // Leaf 4 is carried up twice, then meets the left subtree.
        assert_eq!(p(4), [(2, 0)]);
        assert!(audit_path(1, 0).unwrap().is_empty());
        assert_eq!(audit_path(5, 5), None);
        assert_eq!(audit_path(0, 0), None);
    }

    #[test]
    fn every_proof_rebuilds_the_root() {
        for n in 1..=40u32 {
            let l = leaves(n);
            let mut work = l.clone();
            let root = root_of(&mut work).unwrap();
            assert_eq!(root, mth(&l), "{n} leaves: RFC 6962 shape");
            let mut b = RootBuilder::new();
            for h in &l {
                assert!(b.push(*h));
            }
            assert_eq!(b.root(), Some(root), "{n} leaves: streaming");
            // Every level, materialised as a share file stores it.
            let mut levels = vec![l.clone()];
            while levels.last().unwrap().len() > 1 {
                let below = levels.last().unwrap();
                let mut up = vec![[0u8; 32]; below.len().div_ceil(2)];
                // In pieces of 4 children, as a box with a small buffer does.
                let mut at = 0;
                for piece in below.chunks(4) {
                    at += hash_pairs(piece, &mut up[at..]).unwrap();
                }
                levels.push(up);
            }
            assert_eq!(levels.last().unwrap()[0], root);
            let shape = Levels::new(n).unwrap();
            assert_eq!(
                shape.as_slice(),
                levels.iter().map(|v| v.len() as u32).collect::<Vec<_>>()
            );
            for leaf in 0..n {
                let path = audit_path(n, leaf).unwrap();
                let proof: Vec<Hash> = path
                    .as_slice()
                    .iter()
                    .map(|p| levels[usize::from(p.level)][p.index as usize])
                    .collect();
                assert_eq!(
                    root_from_proof(n, leaf, &l[leaf as usize], &proof),
                    Some(root)
                );
                // A wrong leaf, a wrong node or a wrong length does not.
                let bad = leaf_hash(b"other");
                assert_ne!(root_from_proof(n, leaf, &bad, &proof), Some(root));
                if let Some(first) = proof.first() {
                    let mut p2 = proof.clone();
                    p2[0] = node_hash(first, first);
                    assert_ne!(root_from_proof(n, leaf, &l[leaf as usize], &p2), Some(root));
                    assert_eq!(
                        root_from_proof(n, leaf, &l[leaf as usize], &proof[1..]),
                        None
                    );
                }
            }
        }
        assert_eq!(RootBuilder::new().root(), None);
        assert_eq!(root_of(&mut []), None);
        assert_eq!(hash_pairs(&leaves(3), &mut [[0; 32]; 1]), None);
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
