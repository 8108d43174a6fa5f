//! The share file (`store::share`) on arbitrary bytes: the first 64 as a
//! header, the rest as the roots, blocks and tree that follow it.
//! - Nothing panics; what parses emits the same 64 bytes, and its offsets
//!   are in order and end at `file_len` (no overflow whatever it claims).
//! - When the input holds the whole file (seeds do), it is walked as a
//!   box's check walks it: each block's CRC32C and leaf, each level
//!   against `hash_pairs` of the level below. Where all agree, the
//!   streaming `RootBuilder`, the stored top node and every leaf's proof
//!   (`audit_path` positions read from the file, `root_from_proof`) give
//!   the same root.
//! - The tree helpers also run on a leaf count and index read from the
//!   first 8 bytes, with the following bytes as a proof.
#![no_main]

use cloudy::store::share::{
    audit_path, crc32c, hash_pairs, leaf_hash, parse_roots, root_from_proof, Hash, Levels, Params,
    RootBuilder, ShareHeader, CRC_LEN, HASH_LEN, HEADER_LEN, MAX_LEVELS, MAX_PROOF, PARAMS_LEN,
};
use libfuzzer_sys::fuzz_target;

fn hash_at(data: &[u8], at: u64) -> Option<Hash> {
    let at = usize::try_from(at).ok()?;
    data.get(at..at.checked_add(HASH_LEN)?)?.try_into().ok()
}

fn tree_helpers(data: &[u8]) {
    let Some(head) = data.get(..8) else {
        return;
    };
    let leaves = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let leaf = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let levels = Levels::new(leaves);
    assert_eq!(levels.is_none(), leaves == 0);
    if let Some(l) = levels {
        assert!(l.count() <= MAX_LEVELS);
        assert_eq!(l.size(l.count() - 1), Some(1));
    }
    let path = audit_path(leaves, leaf);
    assert_eq!(path.is_some(), leaf < leaves);
    if let (Some(path), Some(l)) = (path, levels) {
        assert!(path.len() < l.count().max(1));
        for p in path.as_slice() {
            assert!(p.index < l.size(usize::from(p.level)).unwrap());
        }
    }
    let proof: Vec<Hash> = data[8..]
        .chunks_exact(HASH_LEN)
        .take(MAX_PROOF)
        .map(|c| c.try_into().unwrap())
        .collect();
    let _ = root_from_proof(leaves, leaf, &leaf_hash(&data[..8]), &proof);
}

fuzz_target!(|data: &[u8]| {
    tree_helpers(data);
    if let Some(p) = data.get(8..8 + PARAMS_LEN) {
        if let Ok(params) = Params::parse(p.try_into().unwrap()) {
            assert_eq!(&params.emit()[..], p);
        }
    }
    let Ok(h) = ShareHeader::parse_prefix(data) else {
        return;
    };
    assert_eq!(&h.emit()[..], &data[..HEADER_LEN]);
    let n = h.params().n;
    let segments = h.segments();

    // Offsets: in order, inside the file.
    assert!(h.roots_offset() < h.blocks_offset());
    assert_eq!(h.block_offset(0), Some(h.blocks_offset()));
    assert_eq!(h.block_offset(segments), None);
    assert_eq!(h.block_len(segments), None);
    let last = segments - 1;
    let end = h.block_offset(last).unwrap() + h.block_len(last).unwrap() as u64 + CRC_LEN as u64;
    assert_eq!(end, h.tree_offset());
    let offsets = h.tree_level_offsets();
    assert_eq!(offsets.len(), h.levels().count());
    assert_eq!(offsets[0], h.tree_offset());
    assert!(offsets.windows(2).all(|w| w[0] < w[1]));
    let top = h.levels().count() - 1;
    assert_eq!(
        h.node_offset(top, 0).unwrap() + HASH_LEN as u64,
        h.file_len()
    );
    assert_eq!(h.node_offset(top, 1), None);

    if let Ok(roots) = parse_roots(&data[HEADER_LEN..], n) {
        assert_eq!(roots.len(), usize::from(n) * HASH_LEN);
    }
    if (data.len() as u64) < h.file_len() {
        return;
    }
    // The whole file is here (so `segments` is small): walk it.
    let mut builder = RootBuilder::new();
    let mut leaves_sound = true;
    for s in 0..segments {
        let at = h.block_offset(s).unwrap() as usize;
        let len = h.block_len(s).unwrap();
        let block = &data[at..at + len];
        let crc = &data[at + len..at + len + CRC_LEN];
        let sound_crc = crc32c(block).to_be_bytes() == crc;
        let leaf = leaf_hash(block);
        let stored = hash_at(data, h.node_offset(0, s).unwrap()).unwrap();
        leaves_sound &= sound_crc && leaf == stored;
        assert!(builder.push(leaf));
    }
    let mut levels_sound = true;
    for level in 1..h.levels().count() {
        let below = h.levels().size(level - 1).unwrap();
        let children: Vec<Hash> = (0..below)
            .map(|i| hash_at(data, h.node_offset(level - 1, i).unwrap()).unwrap())
            .collect();
        let mut parents = vec![[0u8; HASH_LEN]; children.len().div_ceil(2)];
        assert_eq!(hash_pairs(&children, &mut parents), Some(parents.len()));
        for (i, p) in parents.iter().enumerate() {
            levels_sound &=
                hash_at(data, h.node_offset(level, i as u32).unwrap()).as_ref() == Some(p);
        }
    }
    let stored_top = hash_at(data, h.node_offset(top, 0).unwrap()).unwrap();
    if leaves_sound && levels_sound {
        assert_eq!(builder.root(), Some(stored_top));
        for s in 0..segments {
            let path = audit_path(segments, s).unwrap();
            let proof: Vec<Hash> = path
                .as_slice()
                .iter()
                .map(|p| {
                    hash_at(data, h.node_offset(usize::from(p.level), p.index).unwrap()).unwrap()
                })
                .collect();
            let leaf = hash_at(data, h.node_offset(0, s).unwrap()).unwrap();
            assert_eq!(
                root_from_proof(segments, s, &leaf, &proof),
                Some(stored_top)
            );
        }
    }
});
