//! The erasure code: zfec's systematic Reed–Solomon code over GF(2^8)
//! (docs/store.md, "Erasure code"), byte-identical to zfec 1.6, so that
//! Tahoe-style tools read our shares and we read theirs.
//!
//! Construction (zfec's `fec.c`, `fec_new`, after Luigi Rizzo, "Effective
//! erasure codes for reliable computer communication protocols", ACM CCR
//! 27(2), 1997): V is the N×K Vandermonde matrix over the points 0, 1, α,
//! α², … — row 0 is `[1, 0, …, 0]`, row r ≥ 1 is `V[r][c] = α^((r−1)·c)` —
//! and the encoding matrix is `E = V · inv(V[0..K])`. Its first K rows are
//! the identity: shares 0..K are the data blocks unchanged, share r ≥ K is
//! the check block `Σ_c E[r][c] · data_c`. The points are distinct, so any
//! K rows of V, hence of E, are independent: any K distinct shares rebuild
//! the data by inverting the K×K submatrix of E of their rows.
//!
//! Invariants: a [`Codec`] holds its check rows in fixed arrays (4 KiB,
//! built once); [`Codec::encode`] and [`Codec::decode`] check every count,
//! share number and length before writing anything, write only their
//! output blocks, never allocate and never panic. Decoding inverts its
//! K×K matrix per call (K ≤ 64: microseconds) and caches nothing.

use std::fmt;

use super::gf256::{self, Kernel, RegionError};
use crate::limits::MAX_SHARES;

/// A K×K (or N×K) matrix over GF(2^8), K, N ≤ [`MAX_SHARES`].
type Matrix = [[u8; MAX_SHARES]; MAX_SHARES];

/// Why the code refused its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// K and N outside `1 ≤ K ≤ N ≤ MAX_SHARES`.
    BadParameters { k: usize, n: usize },
    /// Not the number of blocks the operation takes.
    BlockCount { expected: usize, got: usize },
    /// Blocks of different lengths.
    LengthMismatch { expected: usize, got: usize },
    /// A share number not below N.
    ShareOutOfRange { share: u8, n: usize },
    /// The same share number twice.
    DuplicateShare { share: u8 },
    /// Fewer than K distinct shares.
    TooFewShares { needed: usize, got: usize },
    /// A matrix that should be invertible was not (a bug, not input).
    Singular,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CodecError::BadParameters { k, n } => {
                write!(f, "{k}-of-{n}: need 1 ≤ K ≤ N ≤ {MAX_SHARES}")
            }
            CodecError::BlockCount { expected, got } => {
                write!(f, "{got} blocks where {expected} are needed")
            }
            CodecError::LengthMismatch { expected, got } => {
                write!(f, "a block of {got} bytes among blocks of {expected}")
            }
            CodecError::ShareOutOfRange { share, n } => {
                write!(f, "share number {share} of a {n}-share code")
            }
            CodecError::DuplicateShare { share } => write!(f, "share {share} given twice"),
            CodecError::TooFewShares { needed, got } => {
                write!(f, "{got} distinct shares, {needed} needed")
            }
            CodecError::Singular => write!(f, "decoding matrix not invertible"),
        }
    }
}

impl std::error::Error for CodecError {}

impl From<RegionError> for CodecError {
    fn from(e: RegionError) -> CodecError {
        match e {
            RegionError::LengthMismatch { dst, src } => CodecError::LengthMismatch {
                expected: dst,
                got: src,
            },
            RegionError::CountMismatch {
                sources,
                coefficients,
            } => CodecError::BlockCount {
                expected: coefficients,
                got: sources,
            },
        }
    }
}

/// A K-of-N code: its parameters and the check rows of E.
#[derive(Clone)]
pub struct Codec {
    k: usize,
    n: usize,
    /// Rows K..N of E (the check shares'), row-major, K entries each.
    check_matrix: [u8; MAX_SHARES * MAX_SHARES],
    /// The region kernel (the CPU's fastest; tests pick others).
    kernel: Kernel,
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("k", &self.k)
            .field("n", &self.n)
            .field("kernel", &self.kernel.name())
            .finish()
    }
}

impl Codec {
    /// The K-of-N code, `1 ≤ k ≤ n ≤ MAX_SHARES`: builds E once.
    pub fn new(k: usize, n: usize) -> Result<Codec, CodecError> {
        Codec::with_kernel(k, n, gf256::best_kernel())
    }

    /// [`Codec::new`] on a given region kernel.
    pub(crate) fn with_kernel(k: usize, n: usize, kernel: Kernel) -> Result<Codec, CodecError> {
        if k == 0 || k > n || n > MAX_SHARES {
            return Err(CodecError::BadParameters { k, n });
        }
        // V's top K rows and their inverse.
        let mut top: Matrix = [[0; MAX_SHARES]; MAX_SHARES];
        for (r, row) in top.iter_mut().enumerate().take(k) {
            *row = vandermonde_row(r, k);
        }
        let inverse = invert(&top, k, kernel).ok_or(CodecError::Singular)?;
        let mut inverse_rows: heapless::Vec<&[u8], MAX_SHARES> = heapless::Vec::new();
        for row in inverse.iter().take(k) {
            // k ≤ MAX_SHARES rows: never full.
            let _ = inverse_rows.push(&row[..k]);
        }
        // Row r of E = Σ_j V[r][j] · (row j of the inverse), all at once.
        let size = (n - k) * k;
        let mut bottom = [0u8; MAX_SHARES * MAX_SHARES];
        for (r, v_row) in (k..n).zip(bottom[..size].chunks_exact_mut(k)) {
            v_row.copy_from_slice(&vandermonde_row(r, k)[..k]);
        }
        let mut check_matrix = [0u8; MAX_SHARES * MAX_SHARES];
        let mut e_rows: heapless::Vec<&mut [u8], MAX_SHARES> = heapless::Vec::new();
        for row in check_matrix[..size].chunks_exact_mut(k) {
            // n − k < MAX_SHARES rows: never full.
            let _ = e_rows.push(row);
        }
        gf256::combine_rows_with(kernel, &mut e_rows, &inverse_rows, &bottom[..size], false)?;
        drop(e_rows);
        Ok(Codec {
            k,
            n,
            check_matrix,
            kernel,
        })
    }

    /// K: the shares that rebuild the data (and the data blocks).
    pub fn data_shares(&self) -> usize {
        self.k
    }

    /// N: the shares made.
    pub fn total_shares(&self) -> usize {
        self.n
    }

    /// Row `share` of E (K entries, then zeros); `share < N`.
    fn encoding_row(&self, share: usize) -> [u8; MAX_SHARES] {
        match share.checked_sub(self.k) {
            None => {
                let mut unit = [0; MAX_SHARES];
                if let Some(one) = unit.get_mut(share) {
                    *one = 1;
                }
                unit
            }
            Some(r) => {
                let mut row = [0; MAX_SHARES];
                if let Some(e) = self.check_matrix.get(r * self.k..(r + 1) * self.k) {
                    row[..self.k].copy_from_slice(e);
                }
                row
            }
        }
    }

    /// Writes the N−K check blocks (shares K..N, in order) of the K data
    /// blocks `data`; all blocks the same length.
    pub fn encode(&self, data: &[&[u8]], check: &mut [&mut [u8]]) -> Result<(), CodecError> {
        let len = self.data_length(data)?;
        if check.len() != self.n - self.k {
            return Err(CodecError::BlockCount {
                expected: self.n - self.k,
                got: check.len(),
            });
        }
        if let Some(block) = check.iter().find(|b| b.len() != len) {
            return Err(CodecError::LengthMismatch {
                expected: len,
                got: block.len(),
            });
        }
        let rows = &self.check_matrix[..(self.n - self.k) * self.k];
        gf256::combine_rows_with(self.kernel, check, data, rows, false)?;
        Ok(())
    }

    /// Writes share `share` (any of 0..N) of the K data blocks into `out`:
    /// to re-create one lost share.
    pub fn encode_share(
        &self,
        share: u8,
        data: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), CodecError> {
        let len = self.data_length(data)?;
        if share as usize >= self.n {
            return Err(CodecError::ShareOutOfRange { share, n: self.n });
        }
        if out.len() != len {
            return Err(CodecError::LengthMismatch {
                expected: len,
                got: out.len(),
            });
        }
        let row = self.encoding_row(share as usize);
        gf256::combine_with(self.kernel, out, data, &row[..self.k], false)?;
        Ok(())
    }

    /// The length of K data blocks of one length.
    fn data_length(&self, data: &[&[u8]]) -> Result<usize, CodecError> {
        let Some(first) = data.first().filter(|_| data.len() == self.k) else {
            return Err(CodecError::BlockCount {
                expected: self.k,
                got: data.len(),
            });
        };
        let len = first.len();
        if let Some(block) = data.iter().find(|b| b.len() != len) {
            return Err(CodecError::LengthMismatch {
                expected: len,
                got: block.len(),
            });
        }
        Ok(len)
    }

    /// Rebuilds the K data blocks into `out` from `shares`: (share number,
    /// block) pairs, at least K of them, distinct numbers below N, blocks
    /// as long as those of `out`. Data shares given are copied; of the
    /// check shares, the first ones given are used.
    pub fn decode(&self, shares: &[(u8, &[u8])], out: &mut [&mut [u8]]) -> Result<(), CodecError> {
        let k = self.k;
        let Some(len) = out.first().filter(|_| out.len() == k).map(|b| b.len()) else {
            return Err(CodecError::BlockCount {
                expected: k,
                got: out.len(),
            });
        };
        if let Some(block) = out.iter().find(|b| b.len() != len) {
            return Err(CodecError::LengthMismatch {
                expected: len,
                got: block.len(),
            });
        }
        let mut seen = 0u64; // bit s: share s given (N ≤ 64)
        for &(share, block) in shares {
            if share as usize >= self.n {
                return Err(CodecError::ShareOutOfRange { share, n: self.n });
            }
            if seen & (1 << share) != 0 {
                return Err(CodecError::DuplicateShare { share });
            }
            seen |= 1 << share;
            if block.len() != len {
                return Err(CodecError::LengthMismatch {
                    expected: len,
                    got: block.len(),
                });
            }
        }
        if shares.len() < k {
            return Err(CodecError::TooFewShares {
                needed: k,
                got: shares.len(),
            });
        }
        // The K shares used: every data share given, then check shares.
        let mut used: heapless::Vec<(u8, &[u8]), MAX_SHARES> = heapless::Vec::new();
        let data_first = shares.iter().filter(|(s, _)| (*s as usize) < k);
        let check_after = shares.iter().filter(|(s, _)| (*s as usize) >= k);
        for &share in data_first.chain(check_after).take(k) {
            // take(k), k ≤ MAX_SHARES: never full.
            let _ = used.push(share);
        }
        let mut system: Matrix = [[0; MAX_SHARES]; MAX_SHARES];
        for (row, (share, _)) in system.iter_mut().zip(&used) {
            *row = self.encoding_row(*share as usize);
        }
        let inverse = invert(&system, k, self.kernel).ok_or(CodecError::Singular)?;
        let mut blocks: heapless::Vec<&[u8], MAX_SHARES> = heapless::Vec::new();
        for (_, block) in &used {
            let _ = blocks.push(block);
        }
        // The missing data blocks are rows of the inverse times the shares
        // used, all in one call; then the data shares given are copied
        // (after: the call streams them in from memory faster than a copy).
        let mut missing: heapless::Vec<&mut [u8], MAX_SHARES> = heapless::Vec::new();
        let mut present: heapless::Vec<(&mut [u8], &[u8]), MAX_SHARES> = heapless::Vec::new();
        let mut coefficients = [0u8; MAX_SHARES * MAX_SHARES];
        let mut size = 0;
        for (i, (dst, row)) in out.iter_mut().zip(&inverse).enumerate() {
            // At most k ≤ MAX_SHARES of each: never full.
            match used.iter().find(|(s, _)| *s as usize == i) {
                Some((_, block)) => {
                    let _ = present.push((&mut **dst, block));
                }
                None => {
                    coefficients[size..size + k].copy_from_slice(&row[..k]);
                    size += k;
                    let _ = missing.push(&mut **dst);
                }
            }
        }
        gf256::combine_rows_with(
            self.kernel,
            &mut missing,
            &blocks,
            &coefficients[..size],
            false,
        )?;
        for (dst, block) in present {
            dst.copy_from_slice(block);
        }
        Ok(())
    }
}

/// Row r of V for K columns: `[1, 0, …]` for r = 0, else `α^((r−1)·c)`.
fn vandermonde_row(r: usize, k: usize) -> [u8; MAX_SHARES] {
    let mut row = [0u8; MAX_SHARES];
    for (c, x) in row.iter_mut().enumerate().take(k) {
        *x = match r {
            0 => u8::from(c == 0),
            _ => gf256::exp(((r - 1) * c % 255) as u32),
        };
    }
    row
}

/// The inverse of `m[..size][..size]` (Gauss–Jordan on `[m | I]`, the row
/// operations on the region kernel); `None` if singular or `size` is out
/// of range.
fn invert(m: &Matrix, size: usize, kernel: Kernel) -> Option<Matrix> {
    if size == 0 || size > MAX_SHARES {
        return None;
    }
    let width = 2 * size;
    let mut rows = [[0u8; 2 * MAX_SHARES]; MAX_SHARES];
    for (r, (row, source)) in rows.iter_mut().zip(m).enumerate().take(size) {
        row[..size].copy_from_slice(&source[..size]);
        row[size + r] = 1;
    }
    for col in 0..size {
        let pivot = (col..size).find(|&r| rows[r][col] != 0)?;
        rows.swap(col, pivot);
        let scale = gf256::inverse(rows[col][col])?;
        let unscaled = rows[col];
        gf256::combine_with(
            kernel,
            &mut rows[col][..width],
            &[&unscaled[..width]],
            &[scale],
            false,
        )
        .ok()?;
        let pivot_row = rows[col];
        for (r, row) in rows.iter_mut().enumerate().take(size) {
            let factor = row[col];
            if r != col && factor != 0 {
                gf256::combine_with(
                    kernel,
                    &mut row[..width],
                    &[&pivot_row[..width]],
                    &[factor],
                    true,
                )
                .ok()?;
            }
        }
    }
    let mut inverse: Matrix = [[0; MAX_SHARES]; MAX_SHARES];
    for (out, row) in inverse.iter_mut().zip(&rows).take(size) {
        out[..size].copy_from_slice(&row[size..width]);
    }
    Some(inverse)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::store::gf256::test::random_bytes;

    /// `count` blocks of `len` random bytes.
    fn blocks(seed: u64, count: usize, len: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| {
                let mut b = vec![0u8; len];
                random_bytes(seed * 1000 + i as u64, &mut b);
                b
            })
            .collect()
    }

    /// All N shares of `data`: the data blocks, then `encode`'s.
    fn all_shares(codec: &Codec, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let len = data[0].len();
        let refs: Vec<&[u8]> = data.iter().map(|b| &b[..]).collect();
        let mut check = vec![vec![0u8; len]; codec.total_shares() - codec.data_shares()];
        let mut outs: Vec<&mut [u8]> = check.iter_mut().map(|b| &mut b[..]).collect();
        codec.encode(&refs, &mut outs).unwrap();
        data.iter().cloned().chain(check).collect()
    }

    fn decode_from(codec: &Codec, shares: &[Vec<u8>], numbers: &[u8]) -> Vec<Vec<u8>> {
        let len = shares[0].len();
        let given: Vec<(u8, &[u8])> = numbers
            .iter()
            .map(|&s| (s, &shares[s as usize][..]))
            .collect();
        let mut out = vec![vec![0xeeu8; len]; codec.data_shares()];
        let mut refs: Vec<&mut [u8]> = out.iter_mut().map(|b| &mut b[..]).collect();
        codec.decode(&given, &mut refs).unwrap();
        out
    }

    /// zfec's 3-of-5 check blocks of "abc", "def", "ghi"
    /// (`zfec.Encoder(3, 5).encode([b"abc", b"def", b"ghi"])`).
    #[test]
    fn zfec_fixture() {
        let codec = Codec::new(3, 5).unwrap();
        let data: [&[u8]; 3] = [b"abc", b"def", b"ghi"];
        let mut check = [[0u8; 3]; 2];
        let [c3, c4] = &mut check;
        codec
            .encode(&data, &mut [&mut c3[..], &mut c4[..]])
            .unwrap();
        assert_eq!(&check[0], b"]fw");
        assert_eq!(&check[1], b"\xd9*K");
    }

    /// E is systematic, and encode_share agrees with encode.
    #[test]
    fn shares_are_systematic_and_consistent() {
        for (k, n) in [
            (1, 1),
            (1, 4),
            (2, 3),
            (3, 10),
            (5, 5),
            (7, 20),
            (64, 64),
            (32, 64),
            (1, 64),
        ] {
            let codec = Codec::new(k, n).unwrap();
            let data = blocks(k as u64, k, 33);
            let shares = all_shares(&codec, &data);
            let refs: Vec<&[u8]> = data.iter().map(|b| &b[..]).collect();
            for (s, share) in shares.iter().enumerate() {
                let mut one = vec![0u8; 33];
                codec.encode_share(s as u8, &refs, &mut one).unwrap();
                assert_eq!(&one, share, "{k}-of-{n} share {s}");
            }
        }
    }

    /// Any K shares rebuild the data, on every kernel of this CPU (which
    /// also agree on the check blocks).
    #[test]
    fn any_k_shares_decode() {
        for (case, (k, n, len)) in [
            (1, 3, 10),
            (2, 4, 1),
            (3, 10, 100),
            (4, 6, 257),
            (10, 14, 64),
            (20, 40, 50),
            (64, 64, 9),
            (30, 64, 70),
        ]
        .into_iter()
        .enumerate()
        {
            let data = blocks(case as u64 + 100, k, len);
            let reference = all_shares(&Codec::new(k, n).unwrap(), &data);
            for kernel in gf256::kernels() {
                let codec = Codec::with_kernel(k, n, kernel).unwrap();
                let shares = all_shares(&codec, &data);
                assert_eq!(shares, reference, "{k}-of-{n} on {}", kernel.name());
                let mut subsets: Vec<Vec<u8>> = vec![
                    (0..k as u8).collect(),
                    ((n - k) as u8..n as u8).collect(),
                    ((n - k) as u8..n as u8).rev().collect(),
                ];
                // A few pseudo-random K-subsets, in scrambled order.
                let mut order: Vec<u8> = (0..n as u8).collect();
                for round in 0..4u64 {
                    let mut keys = vec![0u8; n];
                    random_bytes(round * 7 + case as u64, &mut keys);
                    order.sort_by_key(|&s| keys[s as usize]);
                    subsets.push(order[..k].to_vec());
                }
                for numbers in subsets {
                    assert_eq!(
                        decode_from(&codec, &shares, &numbers),
                        data,
                        "{k}-of-{n} from {numbers:?} on {}",
                        kernel.name()
                    );
                }
            }
        }
    }

    /// More than K shares: the data shares among them are used, and extra
    /// check shares ignored.
    #[test]
    fn more_than_k_shares() {
        let codec = Codec::new(3, 7).unwrap();
        let data = blocks(5, 3, 40);
        let shares = all_shares(&codec, &data);
        assert_eq!(decode_from(&codec, &shares, &[6, 5, 4, 3, 2, 1, 0]), data);
        assert_eq!(decode_from(&codec, &shares, &[6, 1, 5, 4]), data);
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        assert_eq!(
            Codec::new(0, 3).unwrap_err(),
            CodecError::BadParameters { k: 0, n: 3 }
        );
        assert_eq!(
            Codec::new(4, 3).unwrap_err(),
            CodecError::BadParameters { k: 4, n: 3 }
        );
        assert_eq!(
            Codec::new(3, 65).unwrap_err(),
            CodecError::BadParameters { k: 3, n: 65 }
        );
        let codec = Codec::new(2, 4).unwrap();
        let (a, b) = ([1u8; 8], [2u8; 8]);
        let mut c = [[0u8; 8]; 3];
        let [c0, c1, c2] = &mut c;
        // encode: counts and lengths.
        assert_eq!(
            codec.encode(&[&a], &mut [&mut c0[..], &mut c1[..]]),
            Err(CodecError::BlockCount {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            codec.encode(&[&a, &b], &mut [&mut c0[..]]),
            Err(CodecError::BlockCount {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            codec.encode(&[&a, &b[..7]], &mut [&mut c0[..], &mut c1[..]]),
            Err(CodecError::LengthMismatch {
                expected: 8,
                got: 7
            })
        );
        assert_eq!(
            codec.encode(&[&a, &b], &mut [&mut c0[..], &mut c1[..5]]),
            Err(CodecError::LengthMismatch {
                expected: 8,
                got: 5
            })
        );
        assert_eq!(
            codec.encode(&[], &mut []),
            Err(CodecError::BlockCount {
                expected: 2,
                got: 0
            })
        );
        assert_eq!(
            codec.encode_share(4, &[&a, &b], &mut c2[..]),
            Err(CodecError::ShareOutOfRange { share: 4, n: 4 })
        );
        assert_eq!(c, [[0u8; 8]; 3], "nothing written on an error");
        // decode.
        let mut o = [[0u8; 8]; 2];
        let [o0, o1] = &mut o;
        let mut out = [&mut o0[..], &mut o1[..]];
        assert_eq!(
            codec.decode(&[(0, &a[..]), (0, &a[..])], &mut out),
            Err(CodecError::DuplicateShare { share: 0 })
        );
        assert_eq!(
            codec.decode(&[(0, &a[..]), (4, &a[..])], &mut out),
            Err(CodecError::ShareOutOfRange { share: 4, n: 4 })
        );
        assert_eq!(
            codec.decode(&[(0, &a[..]), (255, &a[..])], &mut out),
            Err(CodecError::ShareOutOfRange { share: 255, n: 4 })
        );
        assert_eq!(
            codec.decode(&[(3, &a[..])], &mut out),
            Err(CodecError::TooFewShares { needed: 2, got: 1 })
        );
        assert_eq!(
            codec.decode(&[], &mut out),
            Err(CodecError::TooFewShares { needed: 2, got: 0 })
        );
        assert_eq!(
            codec.decode(&[(0, &a[..]), (3, &a[..7])], &mut out),
            Err(CodecError::LengthMismatch {
                expected: 8,
                got: 7
            })
        );
        assert_eq!(
            codec.decode(&[(0, &a[..]), (3, &b[..])], &mut out[..1]),
            Err(CodecError::BlockCount {
                expected: 2,
                got: 1
            })
        );
        let [x, y] = &mut out;
        assert_eq!(
            codec.decode(&[(0, &a[..]), (3, &b[..])], &mut [&mut x[..], &mut y[..3]]),
            Err(CodecError::LengthMismatch {
                expected: 8,
                got: 3
            })
        );
        assert_eq!(o, [[0u8; 8]; 2], "nothing written on an error");
        // Empty blocks are fine.
        let codec = Codec::new(1, 2).unwrap();
        codec.decode(&[(1, &[][..])], &mut [&mut [][..]]).unwrap();
    }

    /// The zfec 1.6 from PyPI (`$CLOUDY_PYENV`, default
    /// /opt/cloudy-test-venv; `scripts/deps.sh store`): its Encoder makes
    /// exactly our shares, and its Decoder rebuilds the data from ours.
    #[test]
    fn zfec_interop() {
        const TEST: &str = "store::rs::zfec_interop";
        let venv =
            std::env::var_os("CLOUDY_PYENV").unwrap_or_else(|| "/opt/cloudy-test-venv".into());
        let python = std::path::Path::new(&venv).join("bin").join("python");
        let probe = std::process::Command::new(&python)
            .args(["-c", "import zfec"])
            .stderr(std::process::Stdio::null())
            .status();
        if !matches!(probe, Ok(s) if s.success()) {
            crate::testutil::skip(
                TEST,
                &format!("no zfec in {} (scripts/deps.sh store)", python.display()),
            );
            return;
        }
        // One line per case: k m len data-hex our-shares-hex.
        let mut input = String::new();
        let mut cases = 0;
        for (k, m) in [(1, 1), (1, 3), (3, 10), (4, 6), (7, 10), (10, 10), (17, 40)] {
            for len in [1, 7, 1000] {
                let data = blocks((k * 100 + m) as u64 + len as u64, k, len);
                let shares = all_shares(&Codec::new(k, m).unwrap(), &data);
                let hex = |bs: &[Vec<u8>]| {
                    bs.iter()
                        .flatten()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                };
                input += &format!("{k} {m} {len} {} {}\n", hex(&data), hex(&shares));
                cases += 1;
            }
        }
        let script = r#"
import sys, zfec
checked = 0
for line in sys.stdin:
    k, m, size, data, shares = line.split()
    k, m, size = int(k), int(m), int(size)
    data, shares = bytes.fromhex(data), bytes.fromhex(shares)
    blocks = [data[i * size:(i + 1) * size] for i in range(k)]
    ours = [shares[i * size:(i + 1) * size] for i in range(m)]
    theirs = [bytes(b) for b in zfec.Encoder(k, m).encode(blocks)]
    for i in range(m):
        if theirs[i] != ours[i]:
            sys.exit(f"{k}-of-{m}, {size} bytes: share {i} differs: zfec {theirs[i][:8].hex()}, ours {ours[i][:8].hex()}")
    last = list(range(m - k, m))
    scrambled = sorted(range(m), key=lambda i: (i * 7 + 3) % m)[:k]
    for nums in (last, scrambled):
        # decode() may reorder the lists it is given: pass copies.
        got = zfec.Decoder(k, m).decode([ours[i] for i in nums], list(nums))
        if [bytes(b) for b in got] != blocks:
            sys.exit(f"{k}-of-{m}, {size} bytes: zfec did not decode our shares {nums}")
    checked += 1
print(f"checked {checked}")
"#;
        use std::io::Write as _;
        let mut child = std::process::Command::new(&python)
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run python");
        let mut stdin = child.stdin.take().expect("python stdin");
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let output = child.wait_with_output().expect("python output");
        writer
            .join()
            .expect("writer thread")
            .expect("write to python");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "zfec disagrees: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(stdout.trim(), format!("checked {cases}"));
    }

    /// Not a check: encode and decode throughput of 3-of-10 and 4-of-6 on
    /// 64 MiB in 128 KiB segments, per kernel (`scripts/bench_codec.sh`
    /// runs it in release and compares with zfec; by hand: `cargo test
    /// --release -p cloudy --lib -- --ignored codec_throughput
    /// --nocapture`). MB/s = 10^6 bytes of file data (segments × 128 KiB)
    /// per second, best of 3 runs. Encode makes the N−K check blocks of
    /// each segment into reused buffers; decode rebuilds each segment from
    /// its last K shares (mostly check blocks), also into reused buffers
    /// (the data is checked after the timed runs).
    #[test]
    #[ignore]
    fn codec_throughput() {
        use crate::limits::SEGMENT_SIZE;
        const FILE: usize = 64 << 20;
        const RUNS: usize = 3;
        let segments = FILE / SEGMENT_SIZE;
        let mut kernels = vec![gf256::best_kernel()];
        kernels.extend(
            gf256::kernels()
                .into_iter()
                .filter(|k| *k != gf256::best_kernel()),
        );
        for (k, n) in [(3, 10), (4, 6)] {
            let block = SEGMENT_SIZE.div_ceil(k);
            let mut input = vec![0u8; segments * k * block];
            random_bytes(k as u64, &mut input);
            // The last K shares of every segment, for decoding.
            let codec = Codec::new(k, n).unwrap();
            let mut last_shares = vec![0u8; segments * k * block];
            for (seg, out) in input
                .chunks(k * block)
                .zip(last_shares.chunks_mut(k * block))
            {
                let data: Vec<&[u8]> = seg.chunks(block).collect();
                for (i, dst) in out.chunks_mut(block).enumerate() {
                    codec.encode_share((n - k + i) as u8, &data, dst).unwrap();
                }
            }
            let report = |what: &str, kernel: Kernel, best: std::time::Duration| {
                let mb = (segments * SEGMENT_SIZE) as f64 / 1e6;
                eprintln!(
                    "codec_throughput: {} {what} {k}-of-{n} {:.1} MB/s",
                    kernel.name(),
                    mb / best.as_secs_f64()
                );
            };
            for &kernel in &kernels {
                let codec = Codec::with_kernel(k, n, kernel).unwrap();
                let mut check = vec![0u8; (n - k) * block];
                let mut best = std::time::Duration::MAX;
                for _ in 0..RUNS {
                    let t0 = std::time::Instant::now();
                    for seg in input.chunks(k * block) {
                        let mut data: heapless::Vec<&[u8], MAX_SHARES> = heapless::Vec::new();
                        data.extend(seg.chunks(block));
                        let mut outs: heapless::Vec<&mut [u8], MAX_SHARES> = heapless::Vec::new();
                        outs.extend(check.chunks_mut(block));
                        codec.encode(&data, &mut outs).unwrap();
                    }
                    best = best.min(t0.elapsed());
                    std::hint::black_box(&check);
                }
                report("encode", kernel, best);
                let mut output = vec![0u8; k * block];
                let mut best = std::time::Duration::MAX;
                let decode_segment = |shares: &[u8], output: &mut [u8]| {
                    let mut given: heapless::Vec<(u8, &[u8]), MAX_SHARES> = heapless::Vec::new();
                    given.extend(
                        shares
                            .chunks(block)
                            .enumerate()
                            .map(|(i, b)| ((n - k + i) as u8, b)),
                    );
                    let mut outs: heapless::Vec<&mut [u8], MAX_SHARES> = heapless::Vec::new();
                    outs.extend(output.chunks_mut(block));
                    codec.decode(&given, &mut outs).unwrap();
                };
                for _ in 0..RUNS {
                    let t0 = std::time::Instant::now();
                    for shares in last_shares.chunks(k * block) {
                        decode_segment(shares, &mut output);
                    }
                    best = best.min(t0.elapsed());
                    std::hint::black_box(&output);
                }
                for (shares, seg) in last_shares.chunks(k * block).zip(input.chunks(k * block)) {
                    decode_segment(shares, &mut output);
                    assert!(output == seg, "{} decoded wrong", kernel.name());
                }
                report("decode", kernel, best);
            }
        }
    }
}
