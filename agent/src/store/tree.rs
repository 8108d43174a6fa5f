//! Hash trees of the store, client side (docs/store.md, "Encryption,
//! hashes, capabilities"): the root of a share built while its blocks
//! stream out, and the check of one block against a share root by its
//! audit path.
//!
//! The tree is RFC 6962 §2.1's Merkle tree with its leaf and node prefixes
//! (0x00 and 0x01 before SHA-256, so a leaf can never pass for a node).
//! For a leaf count that is not a power of two RFC 6962 splits at the
//! largest power of two below the count; built bottom-up that is the same
//! as carrying an unpaired last node up a level unchanged, which is how
//! the storage box stores the levels and how [`verify_block`] walks them.
//!
//! Invariants: [`RootBuilder`] holds at most 64 nodes whatever the leaf
//! count (one per bit of the count), so a put's memory does not grow with
//! the file; [`verify_block`] reads at most [`MAX_PROOF`] proof nodes and
//! never panics.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Most nodes in an audit path: levels of a tree of 2^40 leaves.
pub const MAX_PROOF: usize = 40;

/// Hash of a leaf (one block).
pub fn leaf_hash(block: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(block);
    h.finalize().into()
}

/// Hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of a tree whose leaves arrive one by one, in order.
#[derive(Clone, Debug, Default)]
pub struct RootBuilder {
    /// Complete subtrees, heights strictly decreasing from the bottom:
    /// the binary digits of `leaves`.
    stack: heapless::Vec<(u8, Hash), 64>,
    leaves: u64,
}

impl RootBuilder {
    pub fn new() -> RootBuilder {
        RootBuilder::default()
    }

    /// Leaves pushed so far.
    pub fn leaves(&self) -> u64 {
        self.leaves
    }

    /// Add the next leaf's hash.
    pub fn push_leaf(&mut self, leaf: Hash) {
        let mut node = (0u8, leaf);
        while let Some(&(height, left)) = self.stack.last() {
            if height != node.0 {
                break;
            }
            self.stack.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        // At most one entry per bit of a u64 count: never full.
        let _ = self.stack.push(node);
        self.leaves += 1;
    }

    /// The root over every leaf pushed; `None` before the first.
    pub fn root(&self) -> Option<Hash> {
        let mut nodes = self.stack.iter().rev();
        let mut acc = nodes.next()?.1;
        for (_, left) in nodes {
            acc = node_hash(left, &acc);
        }
        Some(acc)
    }
}

/// The root of `leaves` hashes (all in memory; for tests and small trees).
pub fn root_of(leaves: &[Hash]) -> Option<Hash> {
    let mut b = RootBuilder::new();
    for l in leaves {
        b.push_leaf(*l);
    }
    b.root()
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
    if index >= leaves {
        return Err(TreeError::OutOfRange);
    }
    let (mut i, mut m, mut n) = (index, leaves, 0);
    while m > 1 {
        if i % 2 == 1 || i + 1 < m {
            n += 1;
        }
        i /= 2;
        m = m.div_ceil(2);
    }
    Ok(n)
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
    if proof.len() % 32 != 0 || proof.len() / 32 != proof_len(index, leaves)? {
        return Err(TreeError::ProofLength);
    }
    let mut node = leaf_hash(block);
    let mut siblings = proof.chunks_exact(32);
    let (mut i, mut m) = (index, leaves);
    while m > 1 {
        let has_sibling = i % 2 == 1 || i + 1 < m;
        if has_sibling {
            let mut s = [0u8; 32];
            s.copy_from_slice(siblings.next().ok_or(TreeError::ProofLength)?);
            node = if i % 2 == 1 {
                node_hash(&s, &node)
            } else {
                node_hash(&node, &s)
            };
        }
        i /= 2;
        m = m.div_ceil(2);
    }
    if &node == root {
        Ok(())
    } else {
        Err(TreeError::Mismatch)
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
            let r = root_of(&d).unwrap();
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
        assert!(proof_len(u64::MAX - 1, u64::MAX).unwrap() <= 64);
        assert!(verify_block(b"", u64::MAX - 1, u64::MAX, &[0u8; 32], &[0; 32]).is_err());
    }
}
