//! GF(2^8), the field of zfec's Reed–Solomon code (docs/store.md,
//! "Erasure code"): polynomial x^8+x^4+x^3+x^2+1 ([`POLYNOMIAL`], 0x11D),
//! generator α = 2 ([`GENERATOR`]).
//!
//! - Scalars: [`exp`], [`mul`], [`inverse`], from exp/log tables computed
//!   at compile time (768 bytes).
//! - Regions: [`mul_region`] (`dst = c·src`), [`mul_add_region`]
//!   (`dst ^= c·src`), [`linear_combination`] (`dst = Σ cᵢ·srcᵢ`, one
//!   pass over `dst` for up to [`TERMS_PER_PASS`] sources) and
//!   [`linear_combinations`] (several outputs, each source vector loaded
//!   once for up to [`ROWS_PER_PASS`] of them: the codec's operation), on the fastest
//!   kernel of this CPU, chosen once ([`kernel_name`]): the SIMD kernels of
//!   `sys::gf256_simd` (GFNI, AVX2, SSSE3, NEON), or the portable one here
//!   (split 4-bit tables expanded to 256-byte rows, up to 4 sources per
//!   pass), which mips, armv7, i586 and every other target use.
//!
//! Invariants: every kernel computes the same bytes (the tests compare each
//! one this CPU has with the portable kernel); region functions never
//! panic and never allocate: a count or length mismatch is a
//! [`RegionError`] and nothing is written. The per-constant forms the
//! kernels read (`Multiplier`: 40 bytes × 256) are built once, on first
//! use, in static memory.

use std::fmt;
use std::sync::OnceLock;

use crate::limits::MAX_SHARES;
use crate::sys::gf256_simd::{self, Multiplier, SimdKernel, Term};

/// The field polynomial x^8+x^4+x^3+x^2+1 (zfec's `Pp = "101110001"`).
pub const POLYNOMIAL: u16 = 0x11D;
/// The generator α of the multiplicative group.
pub const GENERATOR: u8 = 2;
/// Sources one kernel pass sums; [`linear_combination`] takes more in
/// several passes.
pub const TERMS_PER_PASS: usize = MAX_SHARES;
/// Outputs [`linear_combinations`] computes in one pass over the sources.
pub const ROWS_PER_PASS: usize = gf256_simd::MAX_ROWS;
/// Below this many bytes the portable kernel looks up the 4-bit tables
/// directly instead of first expanding 256-byte rows.
const PORTABLE_ROW_MIN_LEN: usize = 64;
/// Sources per pass of the portable kernel (one 256-byte row each).
const PORTABLE_GROUP: usize = 4;

/// `EXP[i] = α^i`, twice over (indices up to 2·254 need no reduction).
static EXP: [u8; 512] = exp_table();
/// `LOG[α^i] = i`; `LOG[0]` is unused (0 has no logarithm).
static LOG: [u8; 256] = log_table();

const fn exp_table() -> [u8; 512] {
    let mut table = [0u8; 512];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        table[i] = x as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= POLYNOMIAL;
        }
        i += 1;
    }
    while i < 512 {
        table[i] = table[i - 255];
        i += 1;
    }
    table
}

const fn log_table() -> [u8; 256] {
    let exp = exp_table();
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 255 {
        table[exp[i] as usize] = i as u8;
        i += 1;
    }
    table
}

/// α^power.
pub fn exp(power: u32) -> u8 {
    EXP[(power % 255) as usize]
}

/// a · b.
pub fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        return 0;
    }
    EXP[LOG[a as usize] as usize + LOG[b as usize] as usize]
}

/// 1 / a; `None` for 0.
pub fn inverse(a: u8) -> Option<u8> {
    if a == 0 {
        return None;
    }
    Some(EXP[255 - LOG[a as usize] as usize])
}

/// A region operation's arguments do not fit together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// A source is not as long as the destination.
    LengthMismatch { dst: usize, src: usize },
    /// Sources and coefficients differ in number.
    CountMismatch { sources: usize, coefficients: usize },
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionError::LengthMismatch { dst, src } => {
                write!(f, "source of {src} bytes for a destination of {dst}")
            }
            RegionError::CountMismatch {
                sources,
                coefficients,
            } => write!(f, "{sources} sources but {coefficients} coefficients"),
        }
    }
}

impl std::error::Error for RegionError {}

/// `dst = c · src`.
pub fn mul_region(dst: &mut [u8], src: &[u8], c: u8) -> Result<(), RegionError> {
    combine_with(best_kernel(), dst, &[src], &[c], false)
}

/// `dst ^= c · src`.
pub fn mul_add_region(dst: &mut [u8], src: &[u8], c: u8) -> Result<(), RegionError> {
    combine_with(best_kernel(), dst, &[src], &[c], true)
}

/// `dst = Σ coefficients[i] · sources[i]` (zero with no sources). Reads
/// and writes `dst` once per [`TERMS_PER_PASS`] sources.
pub fn linear_combination(
    dst: &mut [u8],
    sources: &[&[u8]],
    coefficients: &[u8],
) -> Result<(), RegionError> {
    combine_with(best_kernel(), dst, sources, coefficients, false)
}

/// For every output r: `dsts[r] = Σ_j coefficients[r·S + j] · sources[j]`
/// with S = `sources.len()` (coefficients row-major, one row per output).
/// Every source is read once per [`ROWS_PER_PASS`] outputs (and per
/// [`TERMS_PER_PASS`] sources), every output written once.
pub fn linear_combinations(
    dsts: &mut [&mut [u8]],
    sources: &[&[u8]],
    coefficients: &[u8],
) -> Result<(), RegionError> {
    combine_rows_with(best_kernel(), dsts, sources, coefficients, false)
}

/// The kernel the region functions use here (`gfni-avx2`, `avx2`,
/// `neon`, `portable`, ...).
pub fn kernel_name() -> &'static str {
    best_kernel().name()
}

/// A region kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    Portable,
    Simd(SimdKernel),
}

impl Kernel {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Simd(k) => k.name(),
        }
    }
}

/// The fastest kernel of this CPU (detected once).
pub(crate) fn best_kernel() -> Kernel {
    static BEST: OnceLock<Kernel> = OnceLock::new();
    *BEST.get_or_init(|| {
        gf256_simd::detect()
            .first()
            .map_or(Kernel::Portable, |k| Kernel::Simd(*k))
    })
}

/// Every kernel this CPU runs, fastest first, the portable one last.
#[cfg(test)]
pub(crate) fn kernels() -> heapless::Vec<Kernel, { gf256_simd::MAX_KERNELS + 1 }> {
    let mut all: heapless::Vec<Kernel, { gf256_simd::MAX_KERNELS + 1 }> = gf256_simd::detect()
        .iter()
        .map(|k| Kernel::Simd(*k))
        .collect();
    // At most MAX_KERNELS SIMD kernels: room for this one.
    let _ = all.push(Kernel::Portable);
    all
}

/// `dst = (dst if accumulate, else 0) ⊕ Σ coefficients[i] · sources[i]`
/// on `kernel`.
pub(crate) fn combine_with(
    kernel: Kernel,
    dst: &mut [u8],
    sources: &[&[u8]],
    coefficients: &[u8],
    accumulate: bool,
) -> Result<(), RegionError> {
    combine_rows_with(kernel, &mut [dst], sources, coefficients, accumulate)
}

/// For every output r: `dsts[r] = (dsts[r] if accumulate, else 0) ⊕
/// Σ_j coefficients[r·S + j] · sources[j]` (S = `sources.len()`) on
/// `kernel`, in passes of up to [`ROWS_PER_PASS`] outputs and
/// [`TERMS_PER_PASS`] sources.
pub(crate) fn combine_rows_with(
    kernel: Kernel,
    dsts: &mut [&mut [u8]],
    sources: &[&[u8]],
    coefficients: &[u8],
    accumulate: bool,
) -> Result<(), RegionError> {
    let width = sources.len();
    if Some(coefficients.len()) != dsts.len().checked_mul(width) {
        return Err(RegionError::CountMismatch {
            sources: width,
            coefficients: coefficients.len(),
        });
    }
    let Some(len) = dsts.first().map(|d| d.len()) else {
        return Ok(()); // no outputs
    };
    let lengths = dsts
        .iter()
        .map(|d| d.len())
        .chain(sources.iter().map(|s| s.len()));
    if let Some(other) = lengths.into_iter().find(|&l| l != len) {
        return Err(RegionError::LengthMismatch {
            dst: len,
            src: other,
        });
    }
    let table = multipliers();
    let mut terms: heapless::Vec<Term<'_>, TERMS_PER_PASS> = heapless::Vec::new();
    for (group_index, group) in dsts.chunks_mut(ROWS_PER_PASS).enumerate() {
        let first_row = group_index * ROWS_PER_PASS;
        let mut group_accumulate = accumulate;
        for (chunk_index, chunk) in sources.chunks(TERMS_PER_PASS).enumerate() {
            let first_source = chunk_index * TERMS_PER_PASS;
            terms.clear();
            for (j, src) in chunk.iter().enumerate() {
                let mut by = [&table[0]; ROWS_PER_PASS];
                let mut nonzero = false;
                for (r, slot) in by.iter_mut().enumerate().take(group.len()) {
                    let at = (first_row + r) * width + first_source + j;
                    // at < dsts.len() · width = coefficients.len() (checked).
                    let c = coefficients.get(at).copied().unwrap_or(0);
                    *slot = &table[c as usize];
                    nonzero |= c != 0;
                }
                if nonzero {
                    // At most TERMS_PER_PASS per chunk: never full.
                    let _ = terms.push(Term { src, by });
                }
            }
            if terms.is_empty() && group_accumulate {
                continue;
            }
            run(kernel, group, &terms, group_accumulate);
            group_accumulate = true;
        }
        if !group_accumulate {
            for dst in group.iter_mut() {
                dst.fill(0); // no sources
            }
        }
    }
    Ok(())
}

/// One pass (up to [`ROWS_PER_PASS`] outputs): the kernel, then the portable
/// kernel on what it left.
fn run(kernel: Kernel, dsts: &mut [&mut [u8]], terms: &[Term<'_>], accumulate: bool) {
    let done = match kernel {
        Kernel::Portable => 0,
        Kernel::Simd(k) => gf256_simd::combine(k, dsts, terms, accumulate),
    };
    for (row, dst) in dsts.iter_mut().enumerate() {
        if done < dst.len() {
            combine_portable(dst, terms, row, done, accumulate);
        }
    }
}

/// The 256 multipliers, built on first use.
fn multipliers() -> &'static [Multiplier; 256] {
    static TABLE: OnceLock<[Multiplier; 256]> = OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|c| multiplier(c as u8)))
}

/// The forms of "multiply by c" the kernels read.
fn multiplier(c: u8) -> Multiplier {
    let mut low = [0u8; 16];
    let mut high = [0u8; 16];
    for x in 0..16u8 {
        low[x as usize] = mul(c, x);
        high[x as usize] = mul(c, x << 4);
    }
    // Column j of the bit matrix is c·2^j; row i (output bit i) goes in
    // byte 7 − i, its bit j from column j.
    let mut affine = 0u64;
    for j in 0..8 {
        let column = mul(c, 1 << j);
        for i in 0..8 {
            if (column >> i) & 1 == 1 {
                affine |= 1u64 << (8 * (7 - i) + j);
            }
        }
    }
    Multiplier { low, high, affine }
}

/// The portable kernel for output `row` of the terms, on `dst[from..]`
/// and each source's `[from..]` (sources as long as `dst`: checked by
/// [`combine_rows_with`]).
fn combine_portable(dst: &mut [u8], terms: &[Term<'_>], row: usize, from: usize, accumulate: bool) {
    let Some(dst) = dst.get_mut(from..) else {
        return;
    };
    if dst.len() < PORTABLE_ROW_MIN_LEN {
        if !accumulate {
            dst.fill(0);
        }
        for term in terms {
            let Some(m) = term.by.get(row) else {
                return; // row < ROWS_PER_PASS: not reached
            };
            let src = term.src.get(from..).unwrap_or_default();
            for (d, s) in dst.iter_mut().zip(src) {
                *d ^= m.low[(s & 0x0f) as usize] ^ m.high[(s >> 4) as usize];
            }
        }
        return;
    }
    let mut overwrite = !accumulate;
    for group in terms.chunks(PORTABLE_GROUP) {
        let mut rows = [[0u8; 256]; PORTABLE_GROUP];
        let mut srcs: [&[u8]; PORTABLE_GROUP] = [&[]; PORTABLE_GROUP];
        for ((products, src), term) in rows.iter_mut().zip(&mut srcs).zip(group) {
            let Some(m) = term.by.get(row) else {
                return; // row < ROWS_PER_PASS: not reached
            };
            for (x, product) in products.iter_mut().enumerate() {
                *product = m.low[x & 0x0f] ^ m.high[x >> 4];
            }
            *src = term.src.get(from..).unwrap_or_default();
        }
        portable_pass(dst, &srcs, &rows, group.len(), overwrite);
        overwrite = false;
    }
    if overwrite {
        dst.fill(0); // no terms
    }
}

/// `dst = (dst, or 0 if overwrite) ⊕ Σ rows[g][srcs[g]]` for the first
/// `count` sources (1 to 4): one table lookup per source and byte, in
/// zipped loops the compiler keeps free of bounds checks.
fn portable_pass(
    dst: &mut [u8],
    srcs: &[&[u8]; PORTABLE_GROUP],
    rows: &[[u8; 256]; PORTABLE_GROUP],
    count: usize,
    overwrite: bool,
) {
    // Bits of the old byte kept: none when overwriting.
    let keep: u8 = if overwrite { 0 } else { 0xff };
    let [r0, r1, r2, r3] = rows;
    let [s0, s1, s2, s3] = *srcs;
    let d = dst.iter_mut();
    match count {
        1 => {
            for (d, a) in d.zip(s0) {
                *d = (*d & keep) ^ r0[*a as usize];
            }
        }
        2 => {
            for ((d, a), b) in d.zip(s0).zip(s1) {
                *d = (*d & keep) ^ r0[*a as usize] ^ r1[*b as usize];
            }
        }
        3 => {
            for (((d, a), b), c) in d.zip(s0).zip(s1).zip(s2) {
                *d = (*d & keep) ^ r0[*a as usize] ^ r1[*b as usize] ^ r2[*c as usize];
            }
        }
        _ => {
            for ((((d, a), b), c), e) in d.zip(s0).zip(s1).zip(s2).zip(s3) {
                let v = r0[*a as usize] ^ r1[*b as usize] ^ r2[*c as usize] ^ r3[*e as usize];
                *d = (*d & keep) ^ v;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod test {
    use super::*;

    /// Deterministic test bytes (splitmix64 from `seed`).
    pub(crate) fn random_bytes(seed: u64, buf: &mut [u8]) {
        let mut state = seed;
        for chunk in buf.chunks_mut(8) {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let bytes = z.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// Carry-less multiplication reduced by the polynomial, bit by bit.
    fn slow_mul(a: u8, b: u8) -> u8 {
        let (mut a, mut b, mut product) = (a as u16, b, 0u16);
        while b != 0 {
            if b & 1 == 1 {
                product ^= a;
            }
            a <<= 1;
            if a & 0x100 != 0 {
                a ^= POLYNOMIAL;
            }
            b >>= 1;
        }
        product as u8
    }

    #[test]
    fn tables_and_scalars() {
        // α generates the whole group: 255 distinct powers.
        let mut seen = [false; 256];
        for i in 0..255 {
            let x = exp(i);
            assert!(!seen[x as usize], "α^{i} repeats");
            seen[x as usize] = true;
        }
        assert!(!seen[0]);
        assert_eq!(exp(255), 1);
        assert_eq!(exp(8), 0x1d); // α^8 = x^4+x^3+x^2+1
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), slow_mul(a, b), "{a}·{b}");
            }
        }
        assert_eq!(inverse(0), None);
        for a in 1..=255u8 {
            let inv = inverse(a).unwrap();
            assert_eq!(mul(a, inv), 1, "1/{a}");
        }
    }

    /// The bit matrix, applied as gf2p8affineqb does, multiplies by c.
    #[test]
    fn affine_matrix_multiplies() {
        for c in 0..=255u8 {
            let m = multiplier(c).affine;
            for x in 0..=255u8 {
                let mut y = 0u8;
                for i in 0..8 {
                    let row = (m >> (8 * (7 - i))) as u8;
                    y |= (((row & x).count_ones() & 1) as u8) << i;
                }
                assert_eq!(y, mul(c, x), "c={c} x={x}");
            }
        }
        assert_eq!(multiplier(1).affine, 0x0102_0408_1020_4080);
    }

    /// (dst, src) offsets into their buffers: every length sees each.
    const MISALIGNMENTS: [(usize, usize); 5] = [(0, 0), (1, 3), (7, 0), (0, 13), (31, 17)];

    /// The portable kernel against scalar `mul`, both operations, on
    /// every constant and lengths around its word and row thresholds.
    #[test]
    fn portable_kernel_matches_scalar() {
        let mut src_buf = [0u8; 400];
        let mut dst_buf = [0u8; 400];
        for (case, len) in [0, 1, 7, 8, 9, 63, 64, 65, 100, 255, 300]
            .into_iter()
            .enumerate()
        {
            for c in 0..=255u8 {
                let (a, b) = MISALIGNMENTS[(case + c as usize) % MISALIGNMENTS.len()];
                random_bytes(c as u64 * 1000 + len as u64, &mut src_buf);
                random_bytes(c as u64 * 1000 + len as u64 + 7, &mut dst_buf);
                let src = &src_buf[b..b + len];
                let before = dst_buf;
                let dst = &mut dst_buf[a..a + len];
                combine_with(Kernel::Portable, dst, &[src], &[c], true).unwrap();
                for i in 0..len {
                    assert_eq!(
                        dst[i],
                        before[a + i] ^ mul(c, src[i]),
                        "len {len} c {c} i {i}"
                    );
                }
                combine_with(Kernel::Portable, dst, &[src], &[c], false).unwrap();
                for i in 0..len {
                    assert_eq!(dst[i], mul(c, src[i]), "len {len} c {c} i {i}");
                }
                assert_eq!(dst_buf[..a], before[..a], "wrote before dst");
                assert_eq!(dst_buf[a + len..], before[a + len..], "wrote after dst");
            }
        }
    }

    /// Every kernel of this CPU equals the portable one: all constants,
    /// every length 0..=300, several misalignments, both operations, and
    /// no byte outside `dst` changes.
    #[test]
    fn kernels_match_portable() {
        let all = kernels();
        eprintln!(
            "gf256 kernels here: {:?}",
            all.iter().map(|k| k.name()).collect::<Vec<_>>()
        );
        let mut src_buf = [0u8; 400];
        let mut dst_buf = [0u8; 400];
        for len in 0..=300usize {
            for c in 0..=255u8 {
                let (a, b) = MISALIGNMENTS[(len + c as usize) % MISALIGNMENTS.len()];
                random_bytes((len as u64) << 8 | c as u64, &mut src_buf);
                random_bytes((len as u64) << 8 | c as u64 | 1 << 40, &mut dst_buf);
                let src = &src_buf[b..b + len];
                for accumulate in [false, true] {
                    let mut expect_buf = dst_buf;
                    combine_with(
                        Kernel::Portable,
                        &mut expect_buf[a..a + len],
                        &[src],
                        &[c],
                        accumulate,
                    )
                    .unwrap();
                    for &kernel in &all {
                        let mut got = dst_buf;
                        combine_with(kernel, &mut got[a..a + len], &[src], &[c], accumulate)
                            .unwrap();
                        assert!(
                            got == expect_buf,
                            "{} len {len} c {c} accumulate {accumulate} offsets {a},{b}",
                            kernel.name()
                        );
                    }
                }
            }
        }
    }

    /// Sums of several sources (the codec's operation) agree across
    /// kernels and with repeated `mul_add`, including more sources than
    /// one pass takes and zero coefficients.
    #[test]
    fn linear_combinations_match() {
        let mut pool = vec![0u8; 70 * 300];
        random_bytes(99, &mut pool);
        for (case, (count, len)) in [
            (1, 5),
            (2, 64),
            (3, 300),
            (4, 129),
            (5, 1000),
            (9, 77),
            (64, 200),
            (70, 300),
        ]
        .into_iter()
        .enumerate()
        {
            let len = len.min(pool.len() / count);
            let sources: Vec<&[u8]> = (0..count).map(|i| &pool[i * len..(i + 1) * len]).collect();
            let mut coefficients = vec![0u8; count];
            random_bytes(case as u64, &mut coefficients);
            if count > 2 {
                coefficients[1] = 0;
                coefficients[2] = 1;
            }
            let mut expect = vec![0u8; len];
            for (s, &c) in sources.iter().zip(&coefficients) {
                for (e, x) in expect.iter_mut().zip(*s) {
                    *e ^= mul(c, *x);
                }
            }
            for kernel in kernels() {
                let mut got = vec![0x55u8; len];
                combine_with(kernel, &mut got, &sources, &coefficients, false).unwrap();
                assert_eq!(
                    got,
                    expect,
                    "{} with {count} sources of {len}",
                    kernel.name()
                );
            }
            let mut got = vec![0x55u8; len];
            linear_combination(&mut got, &sources, &coefficients).unwrap();
            assert_eq!(got, expect);
        }
        let mut dst = [7u8; 10];
        linear_combination(&mut dst, &[], &[]).unwrap();
        assert_eq!(dst, [0; 10]);
    }

    /// Several outputs at once (1 to 9: up to three passes of
    /// ROWS_PER_PASS), on every kernel, against scalar arithmetic, for
    /// every length 0..=300, misaligned, with zero coefficients, both
    /// overwriting and accumulating.
    #[test]
    fn several_outputs_match_scalar() {
        const STRIDE: usize = 320;
        let mut pool = vec![0u8; 6 * STRIDE];
        random_bytes(7, &mut pool);
        for len in 0..=300usize {
            let (rows, count, offset) = (1 + len % 9, 1 + len % 5, len % 7);
            let sources: Vec<&[u8]> = (0..count)
                .map(|j| &pool[j * STRIDE + offset..j * STRIDE + offset + len])
                .collect();
            let mut coefficients = vec![0u8; rows * count];
            random_bytes(len as u64, &mut coefficients);
            for c in coefficients.iter_mut().filter(|c| **c % 5 == 0) {
                *c = 0;
            }
            let mut start = vec![vec![0u8; len + 3]; rows];
            for (r, row) in start.iter_mut().enumerate() {
                random_bytes((len * 16 + r) as u64 | 1 << 50, row);
            }
            for accumulate in [false, true] {
                let mut expect = start.clone();
                for (r, row) in expect.iter_mut().enumerate() {
                    for (i, e) in row[3..].iter_mut().enumerate() {
                        let mut v = if accumulate { *e } else { 0 };
                        for (j, src) in sources.iter().enumerate() {
                            v ^= mul(coefficients[r * count + j], src[i]);
                        }
                        *e = v;
                    }
                }
                for kernel in kernels() {
                    let mut got = start.clone();
                    let mut dsts: Vec<&mut [u8]> =
                        got.iter_mut().map(|row| &mut row[3..]).collect();
                    combine_rows_with(kernel, &mut dsts, &sources, &coefficients, accumulate)
                        .unwrap();
                    assert!(
                        got == expect,
                        "{}: {rows} outputs of {len} bytes from {count} sources, accumulate {accumulate}",
                        kernel.name()
                    );
                }
            }
        }
    }

    #[test]
    fn mismatches_are_errors_and_write_nothing() {
        let mut dst = [1u8; 8];
        assert_eq!(
            mul_region(&mut dst, &[0; 7], 3),
            Err(RegionError::LengthMismatch { dst: 8, src: 7 })
        );
        assert_eq!(
            mul_add_region(&mut dst, &[0; 9], 3),
            Err(RegionError::LengthMismatch { dst: 8, src: 9 })
        );
        assert_eq!(
            linear_combination(&mut dst, &[&[0; 8]], &[1, 2]),
            Err(RegionError::CountMismatch {
                sources: 1,
                coefficients: 2
            })
        );
        let (mut x, mut y) = ([1u8; 8], [1u8; 7]);
        assert_eq!(
            linear_combinations(&mut [&mut x[..], &mut y[..]], &[&[0; 8]], &[1, 2]),
            Err(RegionError::LengthMismatch { dst: 8, src: 7 })
        );
        assert_eq!(
            linear_combinations(&mut [&mut x[..]], &[&[0; 8]], &[1, 2]),
            Err(RegionError::CountMismatch {
                sources: 1,
                coefficients: 2
            })
        );
        assert_eq!((x, y), ([1; 8], [1; 7]));
        assert_eq!(dst, [1; 8]);
        mul_region(&mut dst, &[2; 8], 3).unwrap();
        assert_eq!(dst, [6; 8]);
        mul_add_region(&mut dst, &[2; 8], 3).unwrap();
        assert_eq!(dst, [0; 8]);
    }
}
