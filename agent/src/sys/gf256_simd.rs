//! SIMD kernels of GF(2^8) region arithmetic, for `store::gf256`.
//!
//! One operation, [`combine`]: `dst = (dst or 0) ⊕ Σ cᵢ·srcᵢ` over whole
//! vectors, with each constant cᵢ given as a [`Multiplier`] (its split
//! 4-bit tables and its `gf2p8affineqb` bit matrix, computed by
//! `store::gf256`, which owns the field and the portable kernel). The loop
//! keeps the sum in registers across all terms, so `dst` is read and
//! written once however many sources there are.
//!
//! Kernels: x86_64 GFNI (`gf2p8affineqb`) on 256 bits (AVX2) and 128 bits
//! (Atom-class CPUs without AVX), AVX2 and SSSE3 split-nibble tables
//! (`pshufb`), aarch64 NEON (`tbl`). Other targets have none ([`detect`]
//! finds nothing) and use the portable kernel. No AVX-512 kernel: its
//! intrinsics need Rust 1.89 (the crate's MSRV is 1.85), and Ice Lake runs
//! 512-bit `gf2p8affineqb` on one port but the 256-bit one on two: no more
//! bytes per cycle.
//!
//! Invariants, which make the safe functions here sound:
//! - a [`SimdKernel`] exists only for an instruction set that [`detect`]
//!   found on this CPU (its field is private), so [`combine`] may call the
//!   kernel's `#[target_feature]` function;
//! - [`combine`] cuts `dst` to the shortest of all slices before any
//!   kernel runs, and the kernels load and store only below `dst.len()`.

#![deny(unsafe_op_in_unsafe_fn)]

/// Kernels one target can have at most.
pub(crate) const MAX_KERNELS: usize = 4;

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

/// One term `c · src` of a [`combine`].
pub(crate) type Term<'a> = (&'a [u8], Multiplier);

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

/// `dst = (dst if accumulate, else 0) ⊕ Σ cᵢ·srcᵢ` over the first `done`
/// bytes, and returns `done`: the shortest of `dst` and the sources,
/// rounded down to the kernel's vector width. The caller finishes the
/// rest.
/// With no terms, it zeroes (or keeps) `dst[..done]`.
pub(crate) fn combine(
    kernel: SimdKernel,
    dst: &mut [u8],
    terms: &[Term<'_>],
    accumulate: bool,
) -> usize {
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // No kernels on this target: no SimdKernel value exists.
        let _ = (dst, terms, accumulate);
        match kernel.0 {}
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let len = terms
        .iter()
        .map(|(src, _)| src.len())
        .fold(dst.len(), usize::min);
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let Some(dst) = dst.get_mut(..len) else {
        return 0; // len ≤ dst.len(): not reached
    };
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    match kernel.0 {
        // SAFETY: this Isa was detected (GFNI, AVX2; module invariants),
        // and every source holds at least dst.len() bytes (cut above).
        #[cfg(target_arch = "x86_64")]
        Isa::GfniAvx2 => unsafe { x86::combine_gfni_avx2(dst, terms, accumulate) },
        // SAFETY: as above (GFNI, SSE2).
        #[cfg(target_arch = "x86_64")]
        Isa::GfniSse => unsafe { x86::combine_gfni_sse(dst, terms, accumulate) },
        // SAFETY: as above (AVX2).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::combine_avx2(dst, terms, accumulate) },
        // SAFETY: as above (SSSE3).
        #[cfg(target_arch = "x86_64")]
        Isa::Ssse3 => unsafe { x86::combine_ssse3(dst, terms, accumulate) },
        // SAFETY: as above (NEON).
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { arm::combine_neon(dst, terms, accumulate) },
    }
}

/// The body of a kernel of vector width `$width`: two vectors per pass
/// over the terms (two independent sums), then one, then evaluates to the
/// bytes done (a multiple of the width). `$load` reads a vector at the
/// pointer `$lp`, `$store` writes `$sv` at `$sp`, `$mul` multiplies the
/// vector `$x` by the term's multiplier `$m`.
///
/// Expanded only in the `unsafe fn` kernels, whose contract (every source
/// at least `dst.len()` bytes) together with `done ≤ dst.len()` bounds
/// every load and store.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! combine_body {
    (
        $dst:ident, $terms:ident, $accumulate:ident, width $width:expr,
        zero $zero:expr, xor $xor:expr,
        load |$lp:ident| $load:expr,
        store |$sp:ident, $sv:ident| $store:expr,
        mul |$x:ident, $m:ident| $mul:expr
    ) => {{
        const W: usize = $width;
        let done = $dst.len() - $dst.len() % W;
        let d = $dst.as_mut_ptr();
        let mut off = 0;
        while off + 2 * W <= done {
            let (mut sum0, mut sum1) = if $accumulate {
                // SAFETY: off + 2·W ≤ dst.len(): both vectors lie in dst.
                unsafe {
                    (
                        {
                            let $lp = d.add(off).cast_const();
                            $load
                        },
                        {
                            let $lp = d.add(off + W).cast_const();
                            $load
                        },
                    )
                }
            } else {
                ($zero, $zero)
            };
            for (src, $m) in $terms {
                // SAFETY: off + 2·W ≤ dst.len() ≤ src.len() (the contract).
                let (x0, x1) = unsafe {
                    (
                        {
                            let $lp = src.as_ptr().add(off);
                            $load
                        },
                        {
                            let $lp = src.as_ptr().add(off + W);
                            $load
                        },
                    )
                };
                sum0 = $xor(sum0, {
                    let $x = x0;
                    $mul
                });
                sum1 = $xor(sum1, {
                    let $x = x1;
                    $mul
                });
            }
            // SAFETY: as for the loads from dst.
            unsafe {
                {
                    let ($sp, $sv) = (d.add(off), sum0);
                    $store
                }
                {
                    let ($sp, $sv) = (d.add(off + W), sum1);
                    $store
                }
            }
            off += 2 * W;
        }
        if off < done {
            let mut sum = if $accumulate {
                // SAFETY: off + W = done ≤ dst.len().
                unsafe {
                    let $lp = d.add(off).cast_const();
                    $load
                }
            } else {
                $zero
            };
            for (src, $m) in $terms {
                // SAFETY: off + W ≤ dst.len() ≤ src.len().
                let $x = unsafe {
                    let $lp = src.as_ptr().add(off);
                    $load
                };
                sum = $xor(sum, $mul);
            }
            // SAFETY: as for the load from dst.
            unsafe {
                let ($sp, $sv) = (d.add(off), sum);
                $store
            }
        }
        done
    }};
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Term;
    use std::arch::asm;
    use std::arch::x86_64::*;

    /// GFNI on 256-bit vectors: `vgf2p8affineqb` with the matrix of c.
    /// Inline assembly, not the intrinsic: `_mm256_gf2p8affine_epi64_epi8`
    /// and the `gfni` target feature are stable only since Rust 1.89, the
    /// crate's MSRV is 1.85, and the assembler takes the instruction
    /// whatever the enabled features ([`combine`] runs it only where
    /// [`detect`] found GFNI).
    ///
    /// # Safety
    /// The CPU has AVX2 and GFNI; every source holds at least `dst.len()`
    /// bytes.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn combine_gfni_avx2(
        dst: &mut [u8],
        terms: &[Term<'_>],
        accumulate: bool,
    ) -> usize {
        combine_body!(
            dst, terms, accumulate, width 32,
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
    /// The CPU has SSE2 and GFNI; every source holds at least `dst.len()`
    /// bytes.
    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn combine_gfni_sse(
        dst: &mut [u8],
        terms: &[Term<'_>],
        accumulate: bool,
    ) -> usize {
        combine_body!(
            dst, terms, accumulate, width 16,
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
    /// The CPU has AVX2; every source holds at least `dst.len()` bytes.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn combine_avx2(
        dst: &mut [u8],
        terms: &[Term<'_>],
        accumulate: bool,
    ) -> usize {
        let nibble = _mm256_set1_epi8(0x0f);
        combine_body!(
            dst, terms, accumulate, width 32,
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
    /// The CPU has SSSE3; every source holds at least `dst.len()` bytes.
    #[target_feature(enable = "ssse3")]
    pub(super) unsafe fn combine_ssse3(
        dst: &mut [u8],
        terms: &[Term<'_>],
        accumulate: bool,
    ) -> usize {
        let nibble = _mm_set1_epi8(0x0f);
        combine_body!(
            dst, terms, accumulate, width 16,
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
    use super::Term;
    use std::arch::aarch64::*;

    /// Split 4-bit tables on 128-bit vectors (`tbl`, one table register).
    ///
    /// # Safety
    /// The CPU has NEON; every source holds at least `dst.len()` bytes.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn combine_neon(
        dst: &mut [u8],
        terms: &[Term<'_>],
        accumulate: bool,
    ) -> usize {
        let nibble = vdupq_n_u8(0x0f);
        combine_body!(
            dst, terms, accumulate, width 16,
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
