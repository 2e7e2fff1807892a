//! The lane types the f32 kernel bodies ([`super::f32_bodies`]) are written over: one trait,
//! [`F32Lanes`], implemented for `f32` (one lane), for a [`Pair`] of any lane type, and in the
//! tier modules for `__m256` (AVX2 + FMA), `__m512` (AVX-512F) and `float32x4_t` (NEON).
//! Each method is one operation on every lane, rounded once, so a body written once computes
//! the same bits on every lane type as the scalar reference does element by element.
//! [`SumF64x8`] adds the f64 sums over 8 lanes that softmax and LayerNorm keep.

/// A vector of f32 lanes.
///
/// Every method is `unsafe`: it runs the lane type's instructions, so the caller must run on
/// a CPU that has them (the bodies are only instantiated under `#[target_feature]` wrappers
/// that the [`super::Kernels`] table reaches after its check); `load` and `store` also need
/// `LANES` readable (writable) floats at the pointer.
pub(super) trait F32Lanes: Copy {
    /// How many f32 lanes.
    const LANES: usize;
    /// Every lane `x`.
    unsafe fn splat(x: f32) -> Self;
    /// `LANES` floats from `p`, unaligned.
    unsafe fn load(p: *const f32) -> Self;
    /// The lanes to `p`, unaligned.
    unsafe fn store(self, p: *mut f32);
    unsafe fn add(self, b: Self) -> Self;
    unsafe fn sub(self, b: Self) -> Self;
    unsafe fn mul(self, b: Self) -> Self;
    #[cfg_attr(target_arch = "aarch64", allow(dead_code))] // GELU's, and aarch64 has its own
    unsafe fn div(self, b: Self) -> Self;
    /// `self + a·b`, rounded once.
    #[cfg_attr(target_arch = "aarch64", allow(dead_code))] // the x86 row panels' step
    unsafe fn mul_add(self, a: Self, b: Self) -> Self;
    /// The larger of each pair with the ISA's plain max instruction. Where a lane is NaN the
    /// result is that instruction's, which differs between ISAs: the kernels match the scalar
    /// reference on finite inputs (and GELU of a NaN is NaN either way).
    unsafe fn max(self, b: Self) -> Self;
    /// The smaller of each pair, as [`F32Lanes::max`].
    unsafe fn min(self, b: Self) -> Self;
    /// The larger of each pair, `b` where `self` is NaN (as `f32::max`).
    unsafe fn max_num(self, b: Self) -> Self;
    /// 2^n for lanes holding an integer n in [-126, 127]: (n + 127) in the exponent bits.
    unsafe fn pow2i(self) -> Self;
    /// The largest lane (max is exact: the order does not change the value).
    unsafe fn max_lanes(self) -> f32;
}

/// 8 f64 lanes held in whatever registers an ISA holds them: the sums softmax and LayerNorm
/// keep, element `8i + l` in lane `l`, in order (the scalar `sum8_f64`).
pub(super) trait F64x8: Copy {
    unsafe fn zero() -> Self;
    /// The lanes, lane 0 first.
    unsafe fn lanes(self) -> [f64; 8];
}

/// Lanes that add themselves, widened, into the 8 f64 lanes `S`: 8 lanes one to one, 16 as
/// their low 8 then their high 8.
pub(super) trait SumF64x8<S: F64x8>: F32Lanes {
    unsafe fn sum_add(s: S, v: Self) -> S;
}

/// 8 lanes with the f64 steps of LayerNorm.
pub(super) trait NormF64x8<S: F64x8>: SumF64x8<S> {
    /// `s` plus (lane widened − `mean`)², each lane.
    unsafe fn sum_add_sq_dev(s: S, v: Self, mean: f64) -> S;
    /// ((lane widened − `mean`) · `rstd`) rounded to f32, each lane.
    unsafe fn normalize(self, mean: f64, rstd: f64) -> Self;
}

/// Implements [`F32Lanes`] for a SIMD vector type from its ISA's intrinsics.
macro_rules! simd_f32_lanes {
    ($t:ty, $lanes:expr, splat: $splat:path, load: $load:path, store: $store:path,
     add: $add:path, sub: $sub:path, mul: $mul:path, div: $div:path, max: $max:path,
     min: $min:path, max_num: $max_num:path, mul_add: |$s:ident, $a:ident, $b:ident| $fma:expr,
     pow2i: |$n:ident| $pow2i:expr, max_lanes: |$v:ident| $max_lanes:expr $(,)?) => {
        // SAFETY (every unsafe block in this impl): the trait's contract, that the CPU has the
        // type's features and that the pointers hold LANES floats.
        impl $crate::kernels::lanes::F32Lanes for $t {
            const LANES: usize = $lanes;
            #[inline(always)]
            unsafe fn splat(x: f32) -> Self {
                // SAFETY: see the impl.
                unsafe { $splat(x) }
            }
            #[inline(always)]
            unsafe fn load(p: *const f32) -> Self {
                // SAFETY: see the impl.
                unsafe { $load(p) }
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut f32) {
                // SAFETY: see the impl.
                unsafe { $store(p, self) }
            }
            #[inline(always)]
            unsafe fn add(self, b: Self) -> Self {
                // SAFETY: see the impl.
                unsafe { $add(self, b) }
            }
            #[inline(always)]
            unsafe fn sub(self, b: Self) -> Self {
                // SAFETY: see the impl.
                unsafe { $sub(self, b) }
            }
            #[inline(always)]
            unsafe fn mul(self, b: Self) -> Self {
                // SAFETY: see the impl.
                unsafe { $mul(self, b) }
            }
            #[inline(always)]
            unsafe fn div(self, b: Self) -> Self {
                // SAFETY: see the impl.
                unsafe { $div(self, b) }
            }
            #[inline(always)]
            unsafe fn mul_add(self, a: Self, b: Self) -> Self {
                let ($s, $a, $b) = (self, a, b);
                // SAFETY: see the impl.
                unsafe { $fma }
            }
            #[inline(always)]
            unsafe fn max(self, b: Self) -> Self {
                // SAFETY: see the impl.
                unsafe { $max(self, b) }
            }
            #[inline(always)]
            unsafe fn min(self, b: Self) -> Self {
                // SAFETY: see the impl.
                unsafe { $min(self, b) }
            }
            #[inline(always)]
            unsafe fn max_num(self, b: Self) -> Self {
                // SAFETY: see the impl.
                unsafe { $max_num(self, b) }
            }
            #[inline(always)]
            unsafe fn pow2i(self) -> Self {
                let $n = self;
                // SAFETY: see the impl.
                unsafe { $pow2i }
            }
            #[inline(always)]
            unsafe fn max_lanes(self) -> f32 {
                let $v = self;
                // SAFETY: see the impl.
                unsafe { $max_lanes }
            }
        }
    };
}

impl F32Lanes for f32 {
    const LANES: usize = 1;
    #[inline(always)]
    unsafe fn splat(x: f32) -> f32 {
        x
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> f32 {
        // SAFETY: the caller passes a readable float.
        unsafe { p.read_unaligned() }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller passes a writable float.
        unsafe { p.write_unaligned(self) }
    }
    #[inline(always)]
    unsafe fn add(self, b: f32) -> f32 {
        self + b
    }
    #[inline(always)]
    unsafe fn sub(self, b: f32) -> f32 {
        self - b
    }
    #[inline(always)]
    unsafe fn mul(self, b: f32) -> f32 {
        self * b
    }
    #[inline(always)]
    unsafe fn div(self, b: f32) -> f32 {
        self / b
    }
    #[inline(always)]
    unsafe fn mul_add(self, a: f32, b: f32) -> f32 {
        a.mul_add(b, self)
    }
    #[inline(always)]
    unsafe fn max(self, b: f32) -> f32 {
        f32::max(self, b)
    }
    #[inline(always)]
    unsafe fn min(self, b: f32) -> f32 {
        f32::min(self, b)
    }
    #[inline(always)]
    unsafe fn max_num(self, b: f32) -> f32 {
        f32::max(self, b)
    }
    #[inline(always)]
    unsafe fn pow2i(self) -> f32 {
        f32::from_bits(((self as i32 + 127) as u32) << 23)
    }
    #[inline(always)]
    unsafe fn max_lanes(self) -> f32 {
        self
    }
}

/// Two vectors as one of twice the lanes: `[0]` the low lanes, `[1]` the high. Each operation
/// is the lane type's on both halves, so the bits are the halves' own.
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))] // the NEON tiers' 8 lanes
pub(super) struct Pair<V>(pub(super) [V; 2]);

/// The binary operations of a [`Pair`]: the lane type's, on each half.
macro_rules! pair_ops {
    ($($op:ident),*) => {$(
        #[inline(always)]
        unsafe fn $op(self, b: Self) -> Self {
            // SAFETY: the caller's contract is the halves' contract.
            unsafe { Pair([self.0[0].$op(b.0[0]), self.0[1].$op(b.0[1])]) }
        }
    )*};
}

// SAFETY (every unsafe block in this impl): the caller's contract is the halves' contract, and
// the high half's pointer is `V::LANES` floats on, inside the caller's `LANES`.
impl<V: F32Lanes> F32Lanes for Pair<V> {
    const LANES: usize = 2 * V::LANES;
    pair_ops!(add, sub, mul, div, max, min, max_num);
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: see the impl.
        unsafe { Pair([V::splat(x); 2]) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: see the impl.
        unsafe { Pair([V::load(p), V::load(p.add(V::LANES))]) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: see the impl.
        unsafe {
            self.0[0].store(p);
            self.0[1].store(p.add(V::LANES));
        }
    }
    #[inline(always)]
    unsafe fn mul_add(self, a: Self, b: Self) -> Self {
        // SAFETY: see the impl.
        unsafe {
            Pair([
                self.0[0].mul_add(a.0[0], b.0[0]),
                self.0[1].mul_add(a.0[1], b.0[1]),
            ])
        }
    }
    #[inline(always)]
    unsafe fn pow2i(self) -> Self {
        // SAFETY: see the impl.
        unsafe { Pair([self.0[0].pow2i(), self.0[1].pow2i()]) }
    }
    #[inline(always)]
    unsafe fn max_lanes(self) -> f32 {
        // SAFETY: see the impl.
        unsafe { self.0[0].max_lanes().max(self.0[1].max_lanes()) }
    }
}
