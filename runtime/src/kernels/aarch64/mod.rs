//! aarch64 kernels: Advanced SIMD, `sdot` (dotprod) and `smmla` (i8mm). Softmax, LayerNorm and
//! the dot product are the bodies of [`super::f32_bodies`] on a [`Pair`] of `float32x4_t` (8
//! lanes, as the scalar reference's sums are laid out), under `#[target_feature]` wrappers
//! ([`f32`]); the row panels, the GEMM epilogue and the transpose have aarch64 bodies of their
//! own (`f32/`: FMLA by element, constants loaded once); the int8 GEMMs are written per ISA
//! ([`gemm_neon`], [`gemm_dotprod`], [`gemm_i8mm`]) around what they share ([`int8`]: the exact
//! block step, the four-panel driver, quantization). The module is private: its safe entry
//! points are reached only through a [`super::Kernels`] table, built after
//! [`super::Isa::available`] found the features.

use std::arch::aarch64::*;

use super::lanes::{F64x8, NormF64x8, Pair, SumF64x8};

mod f32;
#[macro_use]
mod int8;
mod gemm_dotprod;
mod gemm_i8mm;
mod gemm_neon;

pub(super) use f32::*;
pub(super) use gemm_dotprod::*;
pub(super) use gemm_i8mm::*;
pub(super) use gemm_neon::*;
pub(super) use int8::*;

simd_f32_lanes!(
    float32x4_t, 4,
    splat: vdupq_n_f32, load: vld1q_f32, store: vst1q_f32,
    add: vaddq_f32, sub: vsubq_f32, mul: vmulq_f32, div: vdivq_f32,
    max: vmaxq_f32, min: vminq_f32, max_num: vmaxnmq_f32,
    mul_add: |s, a, b| vfmaq_f32(s, a, b),
    pow2i: |n| vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(
        vcvtq_s32_f32(n),
        vdupq_n_s32(127),
    ))),
    max_lanes: |v| vmaxvq_f32(v),
);

/// The 8 f64 lanes as four registers: lanes (0, 1), (2, 3), (4, 5), (6, 7).
impl F64x8 for [float64x2_t; 4] {
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the trait's contract: the CPU has NEON.
        unsafe { [vdupq_n_f64(0.0); 4] }
    }
    #[inline(always)]
    unsafe fn lanes(self) -> [f64; 8] {
        let mut l = [0f64; 8];
        for (j, v) in self.iter().enumerate() {
            // SAFETY: the trait's contract; l holds 8 f64.
            unsafe { vst1q_f64(l.as_mut_ptr().add(2 * j), *v) };
        }
        l
    }
}

/// Lanes (0, 1), (2, 3), (4, 5), (6, 7) of `v`, widened.
#[inline(always)]
unsafe fn widen(v: Pair<float32x4_t>) -> [float64x2_t; 4] {
    let [a, b] = v.0;
    // SAFETY: the caller's CPU has NEON.
    unsafe {
        [
            vcvt_f64_f32(vget_low_f32(a)),
            vcvt_high_f64_f32(a),
            vcvt_f64_f32(vget_low_f32(b)),
            vcvt_high_f64_f32(b),
        ]
    }
}

impl SumF64x8<[float64x2_t; 4]> for Pair<float32x4_t> {
    #[inline(always)]
    unsafe fn sum_add(s: [float64x2_t; 4], v: Self) -> [float64x2_t; 4] {
        // SAFETY: the trait's contract: the CPU has NEON.
        unsafe {
            let w = widen(v);
            [
                vaddq_f64(s[0], w[0]),
                vaddq_f64(s[1], w[1]),
                vaddq_f64(s[2], w[2]),
                vaddq_f64(s[3], w[3]),
            ]
        }
    }
}

impl NormF64x8<[float64x2_t; 4]> for Pair<float32x4_t> {
    #[inline(always)]
    unsafe fn sum_add_sq_dev(s: [float64x2_t; 4], v: Self, mean: f64) -> [float64x2_t; 4] {
        // SAFETY: the trait's contract: the CPU has NEON.
        unsafe {
            let (w, m) = (widen(v), vdupq_n_f64(mean));
            let mut s = s;
            for (sj, wj) in s.iter_mut().zip(w) {
                let d = vsubq_f64(wj, m);
                *sj = vaddq_f64(*sj, vmulq_f64(d, d));
            }
            s
        }
    }
    #[inline(always)]
    unsafe fn normalize(self, mean: f64, rstd: f64) -> Self {
        // SAFETY: the trait's contract: the CPU has NEON.
        unsafe {
            let (w, m, r) = (widen(self), vdupq_n_f64(mean), vdupq_n_f64(rstd));
            let mut y = [vdupq_n_f64(0.0); 4];
            for (yj, wj) in y.iter_mut().zip(w) {
                *yj = vmulq_f64(vsubq_f64(wj, m), r);
            }
            Pair([
                vcombine_f32(vcvt_f32_f64(y[0]), vcvt_f32_f64(y[1])),
                vcombine_f32(vcvt_f32_f64(y[2]), vcvt_f32_f64(y[3])),
            ])
        }
    }
}
