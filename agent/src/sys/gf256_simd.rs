//! SIMD kernels of GF(2^8) region arithmetic, for `store::gf256`.
//!
//! One operation, [`combine`]: for up to [`MAX_ROWS`] outputs at once,
//! `dst_r = (dst_r or 0) ⊕ Σ_j c_rj·src_j` over whole vectors, each
//! constant given as a [`Multiplier`] (its split 4-bit tables and its
//! `gf2p8affineqb` bit matrix, computed by `store::gf256`, which owns the
//! field and the portable kernel). Each source vector is loaded once for
//! all the outputs of the pass, and each output's sum stays in registers
//! across all sources: one pass reads every source and writes every
//! output once. Sources are prefetched [`PREFETCH_AHEAD`] bytes ahead (on
//! x86_64), which lifted a 4-of-6 encode of data in DRAM by 15-20 %.
//!
//! Kernels: x86_64 GFNI (`gf2p8affineqb`) on 256 bits (AVX2) and 128 bits
//! (Atom-class CPUs without AVX), AVX2 and SSSE3 split-nibble tables
//! (`pshufb`), aarch64 NEON (`tbl`). Other targets have none ([`detect`]
//! finds nothing) and use the portable kernel. No AVX-512 kernel: its
//! intrinsics need Rust 1.89 (the crate's MSRV is 1.85), and Ice Lake runs
//! 512-bit `gf2p8affineqb` on one port but the 256-bit one on two: no more
//! bytes per cycle.
//!
//! Invariants, which make the safe [`combine`] sound:
//! - a [`SimdKernel`] exists only for an instruction set that [`detect`]
//!   found on this CPU (its field is private), so [`combine`] may call the
//!   kernel's `#[target_feature]` function;
//! - [`combine`] takes the outputs as distinct `&mut` slices and cuts the
//!   work to the shortest of all slices before any kernel runs; the
//!   kernels load and store only below that length.

#![deny(unsafe_op_in_unsafe_fn)]

/// Kernels one target can have at most.
pub(crate) const MAX_KERNELS: usize = 4;
/// Outputs one [`combine`] computes at most (their sums stay in
/// registers: 2 vectors each, 8 of the 16 vector registers at 4 rows).
pub(crate) const MAX_ROWS: usize = 4;
/// How far ahead of its loads a kernel asks for a source's cache lines
/// (512 to 2048 measured the same).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const PREFETCH_AHEAD: usize = 1024;

/// Multiplication by one constant c, in the forms the kernels read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Multiplier {
    /// `c · x` for x = 0..16 (the low 4 bits of a byte).
    pub(crate) low: [u8; 16],
    /// `c · (x << 4)` for x = 0..16 (the high 4 bits).
    pub(crate) high: [u8; 16],
    /// The 8×8 bit matrix of `x ↦ c · x` as `gf2p8affineqb` reads it:
    /// byte `7 − i` holds the row of output bit i (bit j set when input
    /// bit j flips output bit i).
    pub(crate) affine: u64,
}

/// One source of a [`combine`] and the multiplier of each output row
/// (entries past the number of outputs are ignored).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Term<'a> {
    pub(crate) src: &'a [u8],
    pub(crate) by: [&'a Multiplier; MAX_ROWS],
}

/// A SIMD kernel this CPU runs (see the module invariants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SimdKernel(Isa);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    #[cfg(target_arch = "x86_64")]
    GfniAvx2,
    #[cfg(target_arch = "x86_64")]
    GfniSse,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Ssse3,
    #[cfg(target_arch = "aarch64")]
    Neon,
}

impl SimdKernel {
    /// Its name in reports (`gfni-avx2`, `avx2`, `neon`, ...).
    pub(crate) fn name(self) -> &'static str {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Isa::GfniAvx2 => "gfni-avx2",
            #[cfg(target_arch = "x86_64")]
            Isa::GfniSse => "gfni-sse",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => "avx2",
            #[cfg(target_arch = "x86_64")]
            Isa::Ssse3 => "ssse3",
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => "neon",
        }
    }
}

/// Every kernel this CPU runs, fastest first (empty on targets without
/// SIMD kernels). Feature detection is std's, itself cached; callers keep
/// the choice (`store::gf256` in a `OnceLock`).
pub(crate) fn detect() -> heapless::Vec<SimdKernel, MAX_KERNELS> {
    #[allow(unused_mut)] // targets without kernels push nothing
    let mut found = heapless::Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let gfni = has!("gfni");
        let candidates = [
            (Isa::GfniAvx2, gfni && has!("avx2")),
            (Isa::GfniSse, gfni && has!("sse2")),
            (Isa::Avx2, has!("avx2")),
            (Isa::Ssse3, has!("ssse3")),
        ];
        for (isa, present) in candidates {
            if present {
                // Four candidates, MAX_KERNELS places: never full.
                let _ = found.push(SimdKernel(isa));
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            let _ = found.push(SimdKernel(Isa::Neon));
        }
    }
    found
}

/// `dsts[r] = (dsts[r] if accumulate, else 0) ⊕ Σ_j terms[j].by[r] ·
/// terms[j].src` for every output r (1 to [`MAX_ROWS`] of them) over the
/// first `done` bytes, and returns `done`: the shortest of all the slices,
/// rounded down to the kernel's vector width (0 with no outputs or more
/// than [`MAX_ROWS`]). The caller finishes the rest. With no terms, it
/// zeroes (or keeps) the outputs.
pub(crate) fn combine(
    kernel: SimdKernel,
    dsts: &mut [&mut [u8]],
    terms: &[Term<'_>],
    accumulate: bool,
) -> usize {
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // No kernels on this target: no SimdKernel value exists.
        let _ = (dsts, terms, accumulate);
        match kernel.0 {}
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let len = dsts
            .iter()
            .map(|d| d.len())
            .chain(terms.iter().map(|t| t.src.len()))
            .min()
            .unwrap_or(0);
        if dsts.is_empty() || dsts.len() > MAX_ROWS {
            return 0;
        }
        let mut rows = [std::ptr::null_mut(); MAX_ROWS];
        for (row, dst) in rows.iter_mut().zip(dsts.iter_mut()) {
            *row = dst.as_mut_ptr();
        }
        match dsts.len() {
            // SAFETY: R = dsts.len(): the first R pointers come from
            // distinct `&mut` slices of at least len bytes, and every
            // source has at least len bytes.
            1 => unsafe { run::<1>(kernel, rows, len, terms, accumulate) },
            // SAFETY: as above.
            2 => unsafe { run::<2>(kernel, rows, len, terms, accumulate) },
            // SAFETY: as above.
            3 => unsafe { run::<3>(kernel, rows, len, terms, accumulate) },
            // SAFETY: as above (dsts.len() is 4 here: 1..=MAX_ROWS).
            _ => unsafe { run::<4>(kernel, rows, len, terms, accumulate) },
        }
    }
}

/// [`combine`] on the first R of `dsts` (R ≤ [`MAX_ROWS`]; the others
/// are not used).
///
/// # Safety
/// Each `dsts[r]`, r < R, is valid for reads and writes of `len` bytes,
/// and they do not overlap each other or any source; every source holds
/// at least `len` bytes.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe fn run<const R: usize>(
    kernel: SimdKernel,
    dsts: [*mut u8; MAX_ROWS],
    len: usize,
    terms: &[Term<'_>],
    accumulate: bool,
) -> usize {
    match kernel.0 {
        // SAFETY: this Isa was detected (GFNI, AVX2; module invariants);
        // the pointers and lengths are this function's contract.
        #[cfg(target_arch = "x86_64")]
        Isa::GfniAvx2 => unsafe { x86::combine_gfni_avx2::<R>(dsts, len, terms, accumulate) },
        // SAFETY: as above (GFNI, SSE2).
        #[cfg(target_arch = "x86_64")]
        Isa::GfniSse => unsafe { x86::combine_gfni_sse::<R>(dsts, len, terms, accumulate) },
        // SAFETY: as above (AVX2).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::combine_avx2::<R>(dsts, len, terms, accumulate) },
        // SAFETY: as above (SSSE3).
        #[cfg(target_arch = "x86_64")]
        Isa::Ssse3 => unsafe { x86::combine_ssse3::<R>(dsts, len, terms, accumulate) },
        // SAFETY: as above (NEON).
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { arm::combine_neon::<R>(dsts, len, terms, accumulate) },
    }
}

#[cfg(target_arch = "x86_64")]
macro_rules! prefetch {
    ($p:expr) => {
        _mm_prefetch::<_MM_HINT_T0>($p.cast())
    };
}
#[cfg(target_arch = "aarch64")]
macro_rules! prefetch {
    // Not on aarch64: `_prefetch` is unstable.
    ($p:expr) => {
        let _ = $p;
    };
}

/// `$body` once for each row `$r` = 0, 1, … below R (the kernel's const
/// parameter), with `$r` a literal: the compiler then keeps arrays indexed
/// by it in registers, even at opt-level "s" (a loop over the rows left
/// them in memory and halved the speed).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! for_each_row {
    ($r:ident => $body:block) => {
        const _: () = assert!(MAX_ROWS == 4);
        if R > 0 {
            let $r = 0;
            $body
        }
        if R > 1 {
            let $r = 1;
            $body
        }
        if R > 2 {
            let $r = 2;
            $body
        }
        if R > 3 {
            let $r = 3;
            $body
        }
    };
}

/// The body of a kernel of vector width `$width` with `R` outputs (the
/// kernel's const parameter): two vectors per output per pass over the
/// terms (independent sums), then one, then evaluates to the bytes done
/// (a multiple of the width). `$load` reads a vector at the pointer
/// `$lp`, `$store` writes `$sv` at `$sp`, `$mul` multiplies the vector
/// `$x` by the multiplier `$m`.
///
/// Expanded only in the `unsafe fn` kernels, whose contract (each of the
/// first R `$dsts` valid for `$len` bytes, every source at least `$len`
/// bytes) together with `done ≤ $len` bounds every load and store.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! combine_body {
    (
        $dsts:ident, $len:ident, $terms:ident, $accumulate:ident, width $width:expr,
        zero $zero:expr, xor $xor:expr,
        load |$lp:ident| $load:expr,
        store |$sp:ident, $sv:ident| $store:expr,
        mul |$x:ident, $m:ident| $mul:expr
    ) => {{
        const W: usize = $width;
        let done = $len - $len % W;
        let mut off = 0;
        while off + 2 * W <= done {
            let mut sum0 = [$zero; MAX_ROWS];
            let mut sum1 = [$zero; MAX_ROWS];
            if $accumulate {
                for_each_row!(r => {
                    // SAFETY: off + 2·W ≤ len: both vectors lie in output r.
                    unsafe {
                        sum0[r] = {
                            let $lp = $dsts[r].add(off).cast_const();
                            $load
                        };
                        sum1[r] = {
                            let $lp = $dsts[r].add(off + W).cast_const();
                            $load
                        };
                    }
                });
            }
            for term in $terms {
                let src = term.src.as_ptr();
                prefetch!(src.wrapping_add(off + PREFETCH_AHEAD));
                // SAFETY: off + 2·W ≤ len ≤ src.len() (the contract).
                let (x0, x1) = unsafe {
                    (
                        {
                            let $lp = src.add(off);
                            $load
                        },
                        {
                            let $lp = src.add(off + W);
                            $load
                        },
                    )
                };
                for_each_row!(r => {
                    let $m = term.by[r];
                    sum0[r] = $xor(sum0[r], {
                        let $x = x0;
                        $mul
                    });
                    sum1[r] = $xor(sum1[r], {
                        let $x = x1;
                        $mul
                    });
                });
            }
            for_each_row!(r => {
                // SAFETY: as for the loads from the outputs.
                unsafe {
                    {
                        let ($sp, $sv) = ($dsts[r].add(off), sum0[r]);
                        $store
                    }
                    {
                        let ($sp, $sv) = ($dsts[r].add(off + W), sum1[r]);
                        $store
                    }
                }
            });
            off += 2 * W;
        }
        if off < done {
            let mut sum = [$zero; MAX_ROWS];
            if $accumulate {
                for_each_row!(r => {
                    // SAFETY: off + W = done ≤ len.
                    sum[r] = unsafe {
                        let $lp = $dsts[r].add(off).cast_const();
                        $load
                    };
                });
            }
            for term in $terms {
                // SAFETY: off + W ≤ len ≤ src.len().
                let x = unsafe {
                    let $lp = term.src.as_ptr().add(off);
                    $load
                };
                for_each_row!(r => {
                    let $m = term.by[r];
                    sum[r] = $xor(sum[r], {
                        let $x = x;
                        $mul
                    });
                });
            }
            for_each_row!(r => {
                // SAFETY: as for the loads from the outputs.
                unsafe {
                    let ($sp, $sv) = ($dsts[r].add(off), sum[r]);
                    $store
                }
            });
        }
        done
    }};
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Term, MAX_ROWS, PREFETCH_AHEAD};
    use std::arch::asm;
    use std::arch::x86_64::*;

    /// GFNI on 256-bit vectors: `vgf2p8affineqb` with the matrix of c.
    /// Inline assembly, not the intrinsic: `_mm256_gf2p8affine_epi64_epi8`
    /// and the `gfni` target feature are stable only since Rust 1.89, the
    /// crate's MSRV is 1.85, and the assembler takes the instruction
    /// whatever the enabled features (`combine` runs it only where
    /// `detect` found GFNI).
    ///
    /// # Safety
    /// The CPU has AVX2 and GFNI; `super::run`'s contract.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn combine_gfni_avx2<const R: usize>(
        dsts: [*mut u8; MAX_ROWS],
        len: usize,
        terms: &[Term<'_>],
        accumulate: bool,
    ) -> usize {
        combine_body!(
            dsts, len, terms, accumulate, width 32,
            zero _mm256_setzero_si256(),
            xor _mm256_xor_si256,
            load |p| _mm256_loadu_si256(p.cast()),
            store |p, v| _mm256_storeu_si256(p.cast(), v),
            mul |x, m| {
                let matrix = _mm256_set1_epi64x(m.affine as i64);
                let product: __m256i;
                // SAFETY: register operands only, no memory, stack or
                // flags; the CPU has GFNI (the caller's contract).
                unsafe {
                    asm!(
                        "vgf2p8affineqb {product}, {x}, {matrix}, 0",
                        product = lateout(ymm_reg) product,
                        x = in(ymm_reg) x,
                        matrix = in(ymm_reg) matrix,
                        options(pure, nomem, nostack, preserves_flags),
                    )
                };
                product
            }
        )
    }

    /// GFNI on 128-bit vectors, legacy SSE encoding (CPUs with GFNI but
    /// no AVX: Tremont and later Atom cores). Inline assembly as above.
    ///
    /// # Safety
    /// The CPU has SSE2 and GFNI; `super::run`'s contract.
    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn combine_gfni_sse<const R: usize>(
        dsts: [*mut u8; MAX_ROWS],
        len: usize,
        terms: &[Term<'_>],
        accumulate: bool,
    ) -> usize {
        combine_body!(
            dsts, len, terms, accumulate, width 16,
            zero _mm_setzero_si128(),
            xor _mm_xor_si128,
            load |p| _mm_loadu_si128(p.cast()),
            store |p, v| _mm_storeu_si128(p.cast(), v),
            mul |x, m| {
                let matrix = _mm_set1_epi64x(m.affine as i64);
                let mut product = x;
                // SAFETY: register operands only, no memory, stack or
                // flags; the CPU has GFNI (the caller's contract).
                unsafe {
                    asm!(
                        "gf2p8affineqb {product}, {matrix}, 0",
                        product = inout(xmm_reg) product,
                        matrix = in(xmm_reg) matrix,
                        options(pure, nomem, nostack, preserves_flags),
                    )
                };
                product
            }
        )
    }

    /// Split 4-bit tables on 256-bit vectors: `c·x = low[x & 15] ⊕
    /// high[x >> 4]`, both looked up with `vpshufb`.
    ///
    /// # Safety
    /// The CPU has AVX2; `super::run`'s contract.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn combine_avx2<const R: usize>(
        dsts: [*mut u8; MAX_ROWS],
        len: usize,
        terms: &[Term<'_>],
        accumulate: bool,
    ) -> usize {
        let nibble = _mm256_set1_epi8(0x0f);
        combine_body!(
            dsts, len, terms, accumulate, width 32,
            zero _mm256_setzero_si256(),
            xor _mm256_xor_si256,
            load |p| _mm256_loadu_si256(p.cast()),
            store |p, v| _mm256_storeu_si256(p.cast(), v),
            mul |x, m| {
                // SAFETY: low and high are 16-byte arrays.
                let (low, high) = unsafe {
                    (
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(m.low.as_ptr().cast())),
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(m.high.as_ptr().cast())),
                    )
                };
                let low_bits = _mm256_and_si256(x, nibble);
                let high_bits = _mm256_and_si256(_mm256_srli_epi64::<4>(x), nibble);
                _mm256_xor_si256(
                    _mm256_shuffle_epi8(low, low_bits),
                    _mm256_shuffle_epi8(high, high_bits),
                )
            }
        )
    }

    /// Split 4-bit tables on 128-bit vectors (`pshufb`).
    ///
    /// # Safety
    /// The CPU has SSSE3; `super::run`'s contract.
    #[target_feature(enable = "ssse3")]
    pub(super) unsafe fn combine_ssse3<const R: usize>(
        dsts: [*mut u8; MAX_ROWS],
        len: usize,
        terms: &[Term<'_>],
        accumulate: bool,
    ) -> usize {
        let nibble = _mm_set1_epi8(0x0f);
        combine_body!(
            dsts, len, terms, accumulate, width 16,
            zero _mm_setzero_si128(),
            xor _mm_xor_si128,
            load |p| _mm_loadu_si128(p.cast()),
            store |p, v| _mm_storeu_si128(p.cast(), v),
            mul |x, m| {
                // SAFETY: low and high are 16-byte arrays.
                let (low, high) = unsafe {
                    (
                        _mm_loadu_si128(m.low.as_ptr().cast()),
                        _mm_loadu_si128(m.high.as_ptr().cast()),
                    )
                };
                let low_bits = _mm_and_si128(x, nibble);
                let high_bits = _mm_and_si128(_mm_srli_epi64::<4>(x), nibble);
                _mm_xor_si128(
                    _mm_shuffle_epi8(low, low_bits),
                    _mm_shuffle_epi8(high, high_bits),
                )
            }
        )
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::{Term, MAX_ROWS, PREFETCH_AHEAD};
    use std::arch::aarch64::*;

    /// Split 4-bit tables on 128-bit vectors (`tbl`, one table register).
    ///
    /// # Safety
    /// The CPU has NEON; `super::run`'s contract.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn combine_neon<const R: usize>(
        dsts: [*mut u8; MAX_ROWS],
        len: usize,
        terms: &[Term<'_>],
        accumulate: bool,
    ) -> usize {
        let nibble = vdupq_n_u8(0x0f);
        combine_body!(
            dsts, len, terms, accumulate, width 16,
            zero vdupq_n_u8(0),
            xor veorq_u8,
            load |p| vld1q_u8(p),
            store |p, v| vst1q_u8(p, v),
            mul |x, m| {
                // SAFETY: low and high are 16-byte arrays.
                let (low, high) = unsafe { (vld1q_u8(m.low.as_ptr()), vld1q_u8(m.high.as_ptr())) };
                veorq_u8(
                    vqtbl1q_u8(low, vandq_u8(x, nibble)),
                    vqtbl1q_u8(high, vshrq_n_u8::<4>(x)),
                )
            }
        )
    }
}
