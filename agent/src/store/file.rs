//! A file's way into shares and back, sans-IO (docs/store.md): the
//! [`Encoder`] encrypts each plaintext segment, codes it into N blocks and
//! builds every share's hash root while the blocks stream out; the
//! [`Decoder`] checks the share roots a box returns against the
//! capability, checks each block against its share root, decodes K blocks
//! and decrypts. The [`Repairer`] does the decoder's and encoder's work on
//! ciphertext only, for a verify capability.
//!
//! Invariants: memory is one [`Blocks`] buffer (N blocks of one segment)
//! plus 64 tree nodes per share, whatever the file size; nothing is
//! returned as plaintext before its blocks passed their hashes; no input
//! makes these functions panic.

use core::fmt;

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::ChaCha20;

use super::cap::{file_root, ReadCap, Shape, VerifyCap};
use super::rs::Codec;
use super::tree::{leaf_hash, verify_block, Hash, RootBuilder, TreeError};
use crate::limits::SEGMENT_SIZE;

/// Why a segment could not be coded or rebuilt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileError {
    /// The plaintext given is not the segment's length.
    SegmentLength {
        segment: u64,
        want: usize,
        got: usize,
    },
    /// More segments than the file has.
    PastEnd,
    /// Fewer segments than the file has were given before finishing.
    Unfinished,
    /// A block failed its hash (share, segment).
    BadBlock {
        share: u8,
        segment: u64,
        why: TreeError,
    },
    /// The share roots a box returned do not hash to the capability's root.
    BadRoots,
    /// The codec refused (too few or duplicate shares, lengths).
    Codec(String),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::SegmentLength { segment, want, got } => {
                write!(f, "segment {segment}: {got} bytes, want {want}")
            }
            FileError::PastEnd => write!(f, "more data than the file's size"),
            FileError::Unfinished => write!(f, "less data than the file's size"),
            FileError::BadBlock {
                share,
                segment,
                why,
            } => write!(f, "share {share}, segment {segment}: {why}"),
            FileError::BadRoots => write!(f, "share roots do not match the capability"),
            FileError::Codec(e) => write!(f, "erasure code: {e}"),
        }
    }
}

/// The N blocks of one segment, back to back, each `block_len` bytes: the
/// K data blocks first (so the padded ciphertext is one slice), then the
/// N−K check blocks.
pub struct Blocks {
    buf: Box<[u8]>,
    total: usize,
    block_len: usize,
}

impl Blocks {
    /// Room for the largest segment of `shape`.
    pub fn new(shape: &Shape) -> Blocks {
        let max = shape.block_len(0);
        Blocks {
            buf: vec![0u8; max * usize::from(shape.total)].into_boxed_slice(),
            total: usize::from(shape.total),
            block_len: 0,
        }
    }

    pub fn block_len(&self) -> usize {
        self.block_len
    }

    /// Block `share` of the segment last coded or rebuilt.
    pub fn block(&self, share: usize) -> &[u8] {
        let b = self.block_len;
        self.buf.get(share * b..(share + 1) * b).unwrap_or_default()
    }

    fn set_len(&mut self, block_len: usize) -> Result<(), FileError> {
        if block_len * self.total > self.buf.len() {
            return Err(FileError::Codec("block larger than the buffer".into()));
        }
        self.block_len = block_len;
        Ok(())
    }

    /// Code the check blocks from the data blocks in place.
    fn code(&mut self, codec: &Codec, needed: usize) -> Result<(), FileError> {
        let b = self.block_len;
        let (data, parity) = self.buf[..b * self.total].split_at_mut(b * needed);
        let data: Vec<&[u8]> = data.chunks(b.max(1)).take(needed).collect();
        let mut parity: Vec<&mut [u8]> = parity.chunks_mut(b.max(1)).collect();
        codec
            .encode(&data, &mut parity)
            .map_err(|e| FileError::Codec(e.to_string()))
    }
}

fn cipher_at(key: &[u8; 32], segment: u64) -> ChaCha20 {
    let mut c = ChaCha20::new(key.into(), &[0u8; 12].into());
    // Segments of a file of at most MAX_FILE_SIZE bytes: within the
    // 2^38-byte keystream, so the seek cannot fail.
    c.seek(segment * SEGMENT_SIZE as u64);
    c
}

/// Plaintext segments in, blocks and share roots out.
pub struct Encoder {
    shape: Shape,
    key: [u8; 32],
    codec: Codec,
    roots: Vec<RootBuilder>,
    next: u64,
}

impl Encoder {
    pub fn new(shape: Shape, key: [u8; 32]) -> Result<Encoder, FileError> {
        let codec = Codec::new(usize::from(shape.needed), usize::from(shape.total))
            .map_err(|e| FileError::Codec(e.to_string()))?;
        Ok(Encoder {
            shape,
            key,
            codec,
            roots: vec![RootBuilder::new(); usize::from(shape.total)],
            next: 0,
        })
    }

    /// The segment the next [`Encoder::encode_segment`] codes.
    pub fn next_segment(&self) -> u64 {
        self.next
    }

    /// Encrypt and code the next segment (`plain`: exactly its length)
    /// into `out`.
    pub fn encode_segment(&mut self, plain: &[u8], out: &mut Blocks) -> Result<(), FileError> {
        let s = self.next;
        if s >= self.shape.segments() {
            return Err(FileError::PastEnd);
        }
        let want = self.shape.segment_len(s);
        if plain.len() != want {
            return Err(FileError::SegmentLength {
                segment: s,
                want,
                got: plain.len(),
            });
        }
        let b = self.shape.block_len(s);
        out.set_len(b)?;
        let k = usize::from(self.shape.needed);
        let data = &mut out.buf[..k * b];
        data[..want].copy_from_slice(plain);
        data[want..].fill(0);
        cipher_at(&self.key, s).apply_keystream(&mut data[..want]);
        out.code(&self.codec, k)?;
        for (i, r) in self.roots.iter_mut().enumerate() {
            // At most 2^21 segments (MAX_FILE_SIZE): within the builder's
            // u32 leaf count, so every push is taken.
            let pushed = r.push(leaf_hash(out.block(i)));
            debug_assert!(pushed);
        }
        self.next += 1;
        Ok(())
    }

    /// After the last segment: the share roots and the read capability.
    pub fn finish(self) -> Result<(Vec<Hash>, ReadCap), FileError> {
        if self.next != self.shape.segments() {
            return Err(FileError::Unfinished);
        }
        let roots: Vec<Hash> = self
            .roots
            .iter()
            .map(|r| r.root().unwrap_or_default())
            .collect();
        let root = file_root(&self.shape, &roots);
        Ok((
            roots,
            ReadCap {
                shape: self.shape,
                key: self.key,
                root,
            },
        ))
    }
}

/// Checks blocks against share roots that were checked against a
/// capability's root.
pub struct Verifier {
    shape: Shape,
    roots: Vec<Hash>,
}

impl Verifier {
    /// `roots`: the N share roots a box returned with a share's header.
    pub fn new(shape: Shape, root: &Hash, roots: &[Hash]) -> Result<Verifier, FileError> {
        if roots.len() != usize::from(shape.total) || &file_root(&shape, roots) != root {
            return Err(FileError::BadRoots);
        }
        Ok(Verifier {
            shape,
            roots: roots.to_vec(),
        })
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    pub fn share_roots(&self) -> &[Hash] {
        &self.roots
    }

    /// Check block `segment` of `share` with its audit path.
    pub fn check(
        &self,
        share: u8,
        segment: u64,
        block: &[u8],
        proof: &[u8],
    ) -> Result<(), FileError> {
        let bad = |why| FileError::BadBlock {
            share,
            segment,
            why,
        };
        let root = self
            .roots
            .get(usize::from(share))
            .ok_or(bad(TreeError::OutOfRange))?;
        if block.len() != self.shape.block_len(segment) {
            return Err(bad(TreeError::Mismatch));
        }
        verify_block(block, segment, self.shape.segments(), proof, root).map_err(bad)
    }
}

/// Rebuild a segment's data blocks (ciphertext) from K checked blocks
/// into the first K blocks of `out`.
fn rebuild(
    codec: &Codec,
    shape: &Shape,
    segment: u64,
    blocks: &[(u8, &[u8])],
    out: &mut Blocks,
) -> Result<(), FileError> {
    let b = shape.block_len(segment);
    out.set_len(b)?;
    let k = usize::from(shape.needed);
    let mut data: Vec<&mut [u8]> = out.buf[..k * b].chunks_mut(b).collect();
    codec
        .decode(blocks, &mut data)
        .map_err(|e| FileError::Codec(e.to_string()))
}

/// Checked blocks in, plaintext out.
pub struct Decoder {
    cap: ReadCap,
    codec: Codec,
}

impl Decoder {
    pub fn new(cap: ReadCap) -> Result<Decoder, FileError> {
        let codec = Codec::new(usize::from(cap.shape.needed), usize::from(cap.shape.total))
            .map_err(|e| FileError::Codec(e.to_string()))?;
        Ok(Decoder { cap, codec })
    }

    /// Decode segment `s` from K blocks (share number, block) that passed
    /// [`Verifier::check`], and decrypt it; returns its plaintext, a
    /// slice of `out`'s buffer.
    pub fn decode_segment<'o>(
        &self,
        s: u64,
        blocks: &[(u8, &[u8])],
        out: &'o mut Blocks,
    ) -> Result<&'o [u8], FileError> {
        if s >= self.cap.shape.segments() {
            return Err(FileError::PastEnd);
        }
        rebuild(&self.codec, &self.cap.shape, s, blocks, out)?;
        let len = self.cap.shape.segment_len(s);
        let plain = &mut out.buf[..len];
        cipher_at(&self.cap.key, s).apply_keystream(plain);
        Ok(plain)
    }
}

/// Re-creates missing shares from K good ones, without the key.
pub struct Repairer {
    cap: VerifyCap,
    codec: Codec,
}

impl Repairer {
    pub fn new(cap: VerifyCap) -> Result<Repairer, FileError> {
        let codec = Codec::new(usize::from(cap.shape.needed), usize::from(cap.shape.total))
            .map_err(|e| FileError::Codec(e.to_string()))?;
        Ok(Repairer { cap, codec })
    }

    /// All N blocks of segment `s` from K checked ones, into `out`.
    pub fn recode_segment(
        &self,
        s: u64,
        blocks: &[(u8, &[u8])],
        out: &mut Blocks,
    ) -> Result<(), FileError> {
        if s >= self.cap.shape.segments() {
            return Err(FileError::PastEnd);
        }
        rebuild(&self.codec, &self.cap.shape, s, blocks, out)?;
        out.code(&self.codec, usize::from(self.cap.shape.needed))
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::store::cap::storage_index;

    /// Encode `data`, then keep the blocks of every share in memory.
    fn put(data: &[u8], k: u8, n: u8) -> (ReadCap, Vec<Hash>, Vec<Vec<Vec<u8>>>) {
        let shape = Shape::new(k, n, data.len() as u64).unwrap();
        let mut enc = Encoder::new(shape, [3; 32]).unwrap();
        let mut blocks = Blocks::new(&shape);
        let mut shares = vec![Vec::new(); usize::from(n)];
        let mut at = 0;
        for s in 0..shape.segments() {
            let len = shape.segment_len(s);
            enc.encode_segment(&data[at..at + len], &mut blocks)
                .unwrap();
            at += len;
            for (i, sh) in shares.iter_mut().enumerate() {
                sh.push(blocks.block(i).to_vec());
            }
        }
        let (roots, cap) = enc.finish().unwrap();
        (cap, roots, shares)
    }

    fn proof(share_blocks: &[Vec<u8>], index: usize) -> Vec<u8> {
        let mut level: Vec<Hash> = share_blocks.iter().map(|b| leaf_hash(b)).collect();
        let mut p = Vec::new();
        let mut i = index;
        while level.len() > 1 {
            if i % 2 == 1 {
                p.extend_from_slice(&level[i - 1]);
            } else if i + 1 < level.len() {
                p.extend_from_slice(&level[i + 1]);
            }
            level = level
                .chunks(2)
                .map(|c| {
                    if c.len() == 2 {
                        crate::store::tree::node_hash(&c[0], &c[1])
                    } else {
                        c[0]
                    }
                })
                .collect();
            i /= 2;
        }
        p
    }

    fn get(cap: &ReadCap, roots: &[Hash], shares: &[Vec<Vec<u8>>], use_shares: &[u8]) -> Vec<u8> {
        let v = Verifier::new(cap.shape, &cap.root, roots).unwrap();
        let dec = Decoder::new(cap.clone()).unwrap();
        let mut out = Blocks::new(&cap.shape);
        let mut file = Vec::new();
        for s in 0..cap.shape.segments() {
            let blocks: Vec<(u8, &[u8])> = use_shares
                .iter()
                .map(|&i| (i, shares[usize::from(i)][s as usize].as_slice()))
                .collect();
            for (i, b) in &blocks {
                v.check(*i, s, b, &proof(&shares[usize::from(*i)], s as usize))
                    .unwrap();
            }
            file.extend_from_slice(dec.decode_segment(s, &blocks, &mut out).unwrap());
        }
        file
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn round_trip_at_the_edges() {
        let seg = SEGMENT_SIZE;
        for len in [0, 1, 2, 3, seg - 1, seg, seg + 1, 2 * seg + 5] {
            let d = data(len);
            let (cap, roots, shares) = put(&d, 3, 10);
            assert_eq!(get(&cap, &roots, &shares, &[0, 1, 2]), d, "len {len}");
            assert_eq!(get(&cap, &roots, &shares, &[9, 4, 7]), d, "len {len}");
            // The data shares are ciphertext, not the plaintext.
            if len > 16 {
                assert_ne!(&shares[0][0][..16], &d[..16]);
            }
        }
        let d = data(seg + 3);
        for (k, n) in [(1, 1), (1, 3), (4, 6), (10, 10)] {
            let (cap, roots, shares) = put(&d, k, n);
            let last: Vec<u8> = (n - k..n).collect();
            assert_eq!(get(&cap, &roots, &shares, &last), d, "{k}-of-{n}");
        }
    }

    #[test]
    fn bad_blocks_and_roots_are_found() {
        let d = data(3 * SEGMENT_SIZE);
        let (cap, roots, mut shares) = put(&d, 3, 10);
        let v = Verifier::new(cap.shape, &cap.root, &roots).unwrap();
        shares[4][1][10] ^= 0x20;
        let p = proof(&shares[4], 1);
        assert!(matches!(
            v.check(4, 1, &shares[4][1], &p),
            Err(FileError::BadBlock {
                share: 4,
                segment: 1,
                ..
            })
        ));
        // A block good for another share or segment is refused.
        assert!(v.check(5, 0, &shares[6][0], &proof(&shares[6], 0)).is_err());
        assert!(v.check(6, 0, &shares[6][2], &proof(&shares[6], 2)).is_err());
        assert!(v.check(64, 0, &shares[6][0], &[]).is_err());
        let mut wrong = roots.clone();
        wrong[2][0] ^= 1;
        assert_eq!(
            Verifier::new(cap.shape, &cap.root, &wrong).err(),
            Some(FileError::BadRoots)
        );
        assert!(Verifier::new(cap.shape, &cap.root, &roots[..9]).is_err());
    }

    #[test]
    fn repair_recreates_identical_shares_without_the_key() {
        let d = data(2 * SEGMENT_SIZE + 100);
        let (cap, _roots, shares) = put(&d, 3, 10);
        let vcap = cap.verify_cap();
        assert_eq!(vcap.storage_index, storage_index(&cap.key));
        let r = Repairer::new(vcap).unwrap();
        let mut out = Blocks::new(&cap.shape);
        for s in 0..cap.shape.segments() as usize {
            let blocks: Vec<(u8, &[u8])> = [8u8, 2, 5]
                .iter()
                .map(|&i| (i, shares[usize::from(i)][s].as_slice()))
                .collect();
            r.recode_segment(s as u64, &blocks, &mut out).unwrap();
            for (i, share) in shares.iter().enumerate() {
                assert_eq!(out.block(i), share[s].as_slice(), "share {i} segment {s}");
            }
        }
    }

    #[test]
    fn misuse_is_an_error() {
        let shape = Shape::new(3, 10, 10).unwrap();
        let mut enc = Encoder::new(shape, [1; 32]).unwrap();
        let mut b = Blocks::new(&shape);
        assert!(matches!(
            enc.encode_segment(&[0; 9], &mut b),
            Err(FileError::SegmentLength { .. })
        ));
        enc.encode_segment(&[0; 10], &mut b).unwrap();
        assert_eq!(enc.encode_segment(&[], &mut b), Err(FileError::PastEnd));
        let shape2 = Shape::new(3, 10, 2 * SEGMENT_SIZE as u64).unwrap();
        let enc2 = Encoder::new(shape2, [1; 32]).unwrap();
        assert_eq!(enc2.finish().err(), Some(FileError::Unfinished));
        // Too few blocks to decode.
        let (cap, _, shares) = put(&data(100), 3, 10);
        let dec = Decoder::new(cap.clone()).unwrap();
        let mut out = Blocks::new(&cap.shape);
        let two: Vec<(u8, &[u8])> = vec![(0, &shares[0][0]), (1, &shares[1][0])];
        assert!(dec.decode_segment(0, &two, &mut out).is_err());
    }
}
