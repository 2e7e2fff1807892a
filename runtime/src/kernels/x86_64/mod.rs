//! x86_64 kernels: AVX2 (with FMA) and AVX-512 (F, BW, VL, VNNI). The f32 kernels are the
//! bodies of [`super::f32_bodies`] on the lane types below, under `#[target_feature]`
//! wrappers ([`f32`]); the int8 GEMMs and quantization are written per ISA ([`int8`]). The
//! module is private: its safe entry points are reached only through a [`super::Kernels`]
//! table, built after [`super::Isa::available`] found the features.

use std::arch::x86_64::*;

use super::lanes::{F64x8, NormF64x8, SumF64x8};

mod f32;
mod int8;
mod transpose;

pub(super) use f32::*;
pub(super) use int8::*;
pub(super) use transpose::*;

simd_f32_lanes!(
    __m256, 8,
    splat: _mm256_set1_ps, load: _mm256_loadu_ps, store: _mm256_storeu_ps,
    add: _mm256_add_ps, sub: _mm256_sub_ps, mul: _mm256_mul_ps, div: _mm256_div_ps,
    // maxps gives its second operand where either is NaN: max_num(NaN, b) = b.
    max: _mm256_max_ps, min: _mm256_min_ps, max_num: _mm256_max_ps,
    mul_add: |s, a, b| _mm256_fmadd_ps(a, b, s),
    pow2i: |n| _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ))),
    max_lanes: |v| {
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), v);
        lanes.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x))
    },
);

simd_f32_lanes!(
    __m512, 16,
    splat: _mm512_set1_ps, load: _mm512_loadu_ps, store: _mm512_storeu_ps,
    add: _mm512_add_ps, sub: _mm512_sub_ps, mul: _mm512_mul_ps, div: _mm512_div_ps,
    max: _mm512_max_ps, min: _mm512_min_ps, max_num: _mm512_max_ps,
    mul_add: |s, a, b| _mm512_fmadd_ps(a, b, s),
    pow2i: |n| _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
        _mm512_cvtps_epi32(n),
        _mm512_set1_epi32(127),
    ))),
    max_lanes: |v| _mm512_reduce_max_ps(v),
);

/// The 8 f64 lanes as two AVX registers: lanes 0-3, 4-7.
impl F64x8 for (__m256d, __m256d) {
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the trait's contract: the CPU has AVX.
        unsafe { (_mm256_setzero_pd(), _mm256_setzero_pd()) }
    }
    #[inline(always)]
    unsafe fn lanes(self) -> [f64; 8] {
        let mut l = [0f64; 8];
        // SAFETY: the trait's contract; l holds 8 f64.
        unsafe {
            _mm256_storeu_pd(l.as_mut_ptr(), self.0);
            _mm256_storeu_pd(l.as_mut_ptr().add(4), self.1);
        }
        l
    }
}

/// The 8 f64 lanes as one AVX-512 register.
impl F64x8 for __m512d {
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the trait's contract: the CPU has AVX-512F.
        unsafe { _mm512_setzero_pd() }
    }
    #[inline(always)]
    unsafe fn lanes(self) -> [f64; 8] {
        let mut l = [0f64; 8];
        // SAFETY: the trait's contract; l holds 8 f64.
        unsafe { _mm512_storeu_pd(l.as_mut_ptr(), self) };
        l
    }
}

/// Lanes 0-3 and 4-7 of `v`, widened.
#[inline(always)]
unsafe fn widen(v: __m256) -> (__m256d, __m256d) {
    // SAFETY: the caller's CPU has AVX.
    unsafe {
        (
            _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)),
        )
    }
}

impl SumF64x8<(__m256d, __m256d)> for __m256 {
    #[inline(always)]
    unsafe fn sum_add(s: (__m256d, __m256d), v: Self) -> (__m256d, __m256d) {
        // SAFETY: the trait's contract: the CPU has AVX2.
        unsafe {
            let (lo, hi) = widen(v);
            (_mm256_add_pd(s.0, lo), _mm256_add_pd(s.1, hi))
        }
    }
}

impl NormF64x8<(__m256d, __m256d)> for __m256 {
    #[inline(always)]
    unsafe fn sum_add_sq_dev(s: (__m256d, __m256d), v: Self, mean: f64) -> (__m256d, __m256d) {
        // SAFETY: the trait's contract: the CPU has AVX2.
        unsafe {
            let (lo, hi) = widen(v);
            let m = _mm256_set1_pd(mean);
            let (lo, hi) = (_mm256_sub_pd(lo, m), _mm256_sub_pd(hi, m));
            (
                _mm256_add_pd(s.0, _mm256_mul_pd(lo, lo)),
                _mm256_add_pd(s.1, _mm256_mul_pd(hi, hi)),
            )
        }
    }
    #[inline(always)]
    unsafe fn normalize(self, mean: f64, rstd: f64) -> Self {
        // SAFETY: the trait's contract: the CPU has AVX2.
        unsafe {
            let (lo, hi) = widen(self);
            let (m, r) = (_mm256_set1_pd(mean), _mm256_set1_pd(rstd));
            let lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(lo, m), r));
            let hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(hi, m), r));
            _mm256_set_m128(hi, lo)
        }
    }
}

/// The AVX-512 softmax's last 8 floats: into the same 8 f64 lanes.
impl SumF64x8<__m512d> for __m256 {
    #[inline(always)]
    unsafe fn sum_add(s: __m512d, v: Self) -> __m512d {
        // SAFETY: the trait's contract: the CPU has AVX-512F.
        unsafe { _mm512_add_pd(s, _mm512_cvtps_pd(v)) }
    }
}

impl SumF64x8<__m512d> for __m512 {
    #[inline(always)]
    unsafe fn sum_add(s: __m512d, v: Self) -> __m512d {
        // SAFETY: the trait's contract: the CPU has AVX-512F.
        unsafe {
            let s = _mm512_add_pd(s, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
            _mm512_add_pd(s, _mm512_cvtps_pd(hi))
        }
    }
}
