//! Hash trees of the store (docs/store.md, "Encryption, hashes,
//! capabilities"), one implementation for both sides: the root of a share
//! built while its blocks stream out, the levels a storage box stores and
//! the audit paths it serves from them, and the client's check of one
//! block against a share root.
//!
//! The tree is RFC 6962 §2.1's Merkle tree with its leaf and node prefixes
//! (0x00 and 0x01 before SHA-256, so a leaf can never pass for a node).
//! For a leaf count that is not a power of two RFC 6962 splits at the
//! largest power of two below the count; built bottom-up that is the same
//! as carrying an unpaired last node up a level unchanged, which is how
//! the storage box stores the levels and how [`verify_block`] walks them.
//!
//! Invariants: leaf counts are `u32` (a file has at most 2^21 segments);
//! [`RootBuilder`] holds at most [`MAX_LEVELS`] nodes whatever the leaf
//! count, so memory does not grow with the file; [`verify_block`] reads
//! at most [`MAX_PROOF`] proof nodes and never panics.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Levels of the largest tree the types allow (`u32::MAX` leaves).
pub const MAX_LEVELS: usize = 33;
/// Room for the nodes of one proof (at most `MAX_LEVELS − 1` are used).
pub const MAX_PROOF: usize = 40;

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

/// Why a block failed its check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeError {
    /// Segment number not below the leaf count.
    OutOfRange,
    /// The proof has the wrong number of nodes for this position.
    ProofLength,
    /// Block and proof do not lead to the root.
    Mismatch,
}

impl core::fmt::Display for TreeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TreeError::OutOfRange => "segment beyond the share's last",
            TreeError::ProofLength => "proof of the wrong length",
            TreeError::Mismatch => "block does not match the share's hash root",
        })
    }
}

/// Nodes in the audit path of leaf `index` of `leaves`: one per level
/// where the node has a sibling.
pub fn proof_len(index: u64, leaves: u64) -> Result<usize, TreeError> {
    let (index, leaves) = as_u32(index, leaves)?;
    audit_path(leaves, index)
        .map(|p| p.len())
        .ok_or(TreeError::OutOfRange)
}

/// A position within the `u32` leaf counts trees have.
fn as_u32(index: u64, leaves: u64) -> Result<(u32, u32), TreeError> {
    match (u32::try_from(index), u32::try_from(leaves)) {
        (Ok(i), Ok(n)) if i < n => Ok((i, n)),
        _ => Err(TreeError::OutOfRange),
    }
}

/// Check that `block` is leaf `index` of a tree of `leaves` leaves with
/// `root`, given its audit path (`proof`: 32-byte sibling hashes from the
/// leaf up, levels where the node is carried up skipped).
pub fn verify_block(
    block: &[u8],
    index: u64,
    leaves: u64,
    proof: &[u8],
    root: &Hash,
) -> Result<(), TreeError> {
    let (i, n) = as_u32(index, leaves)?;
    if proof.len() % 32 != 0 || proof.len() / 32 != proof_len(index, leaves)? {
        return Err(TreeError::ProofLength);
    }
    let mut siblings = [[0u8; 32]; MAX_PROOF];
    for (s, chunk) in siblings.iter_mut().zip(proof.chunks_exact(32)) {
        s.copy_from_slice(chunk);
    }
    let siblings = &siblings[..proof.len() / 32];
    match root_from_proof(n, i, &leaf_hash(block), siblings) {
        Some(r) if &r == root => Ok(()),
        Some(_) => Err(TreeError::Mismatch),
        None => Err(TreeError::ProofLength),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u32).to_be_bytes()))
            .collect()
    }

    /// RFC 6962 §2.1's definition, recursively.
    fn mth(d: &[Hash]) -> Hash {
        if d.len() == 1 {
            return d[0];
        }
        // The largest power of two below the count.
        let k = 1usize << (usize::BITS - 1 - (d.len() - 1).leading_zeros());
        node_hash(&mth(&d[..k]), &mth(&d[k..]))
    }

    /// The levels a storage box keeps: carry an unpaired last node up.
    fn levels(d: &[Hash]) -> Vec<Vec<Hash>> {
        let mut out = vec![d.to_vec()];
        while out.last().unwrap().len() > 1 {
            let l = out.last().unwrap();
            let next = l
                .chunks(2)
                .map(|p| {
                    if p.len() == 2 {
                        node_hash(&p[0], &p[1])
                    } else {
                        p[0]
                    }
                })
                .collect();
            out.push(next);
        }
        out
    }

    fn proof_from_levels(lv: &[Vec<Hash>], index: usize) -> Vec<u8> {
        let mut p = Vec::new();
        let mut i = index;
        for l in &lv[..lv.len() - 1] {
            if i % 2 == 1 {
                p.extend_from_slice(&l[i - 1]);
            } else if i + 1 < l.len() {
                p.extend_from_slice(&l[i + 1]);
            }
            i /= 2;
        }
        p
    }

    #[test]
    fn streaming_root_equals_rfc6962_and_levels() {
        for n in 1..=70 {
            let d = leaves(n);
            let r = root_of(&mut d.clone()).unwrap();
            assert_eq!(r, mth(&d), "n={n}");
            assert_eq!(r, levels(&d).last().unwrap()[0], "n={n}");
        }
        assert_eq!(RootBuilder::new().root(), None);
    }

    #[test]
    fn every_leaf_verifies_and_nothing_else_does() {
        for n in [1usize, 2, 3, 5, 8, 9, 13, 31, 33] {
            let d = leaves(n);
            let lv = levels(&d);
            let root = lv.last().unwrap()[0];
            for i in 0..n {
                let block = (i as u32).to_be_bytes();
                let p = proof_from_levels(&lv, i);
                assert_eq!(p.len() / 32, proof_len(i as u64, n as u64).unwrap());
                assert_eq!(verify_block(&block, i as u64, n as u64, &p, &root), Ok(()));
                // Another block, another position, a changed proof.
                let other = (i as u32 + 1).to_be_bytes();
                assert_eq!(
                    verify_block(&other, i as u64, n as u64, &p, &root),
                    Err(TreeError::Mismatch)
                );
                if !p.is_empty() {
                    let mut q = p.clone();
                    q[5] ^= 1;
                    assert_eq!(
                        verify_block(&block, i as u64, n as u64, &q, &root),
                        Err(TreeError::Mismatch)
                    );
                    assert_eq!(
                        verify_block(&block, i as u64, n as u64, &p[32..], &root),
                        Err(TreeError::ProofLength)
                    );
                }
            }
            assert_eq!(
                verify_block(b"x", n as u64, n as u64, &[], &root),
                Err(TreeError::OutOfRange)
            );
        }
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        // Fixed values: the layout other implementations must match.
        let l = leaf_hash(b"");
        assert_eq!(
            l[..4],
            [0x6e, 0x34, 0x0b, 0x9c],
            "SHA-256(0x00) = 6e340b9c..."
        );
        // A node is never the leaf of its two children's bytes.
        assert_ne!(node_hash(&l, &l), leaf_hash(&[l, l].concat()));
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        assert!(proof_len(u64::from(u32::MAX) - 1, u64::from(u32::MAX)).unwrap() <= 64);
        // Beyond the u32 leaf counts trees have: an error, not an overflow.
        assert_eq!(
            proof_len(u64::MAX - 1, u64::MAX),
            Err(TreeError::OutOfRange)
        );
        assert!(verify_block(b"", u64::MAX - 1, u64::MAX, &[0u8; 32], &[0; 32]).is_err());
    }

    /// The storage box's side: level sizes, proof positions, levels built
    /// in pieces (moved here with the code from `store::share`).
    mod levels_and_paths {
        use super::super::*;
        use sha2::{Digest, Sha256};

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
    }
}
