//! x86_64 kernels: AVX2. Each is one `#[inline(always)]` body under a
//! `#[target_feature]` wrapper; the safe entry points are only put in a [`super::Kernels`]
//! table after the features were detected.

use std::arch::x86_64::*;

use super::{MR, NR, QBLOCK};

/// The int8 panel GEMM with AVX2: one 32-byte load holds 8 outputs × 4 inputs. `maddubs`
/// multiplies |x| (u8) by w with x's sign (s8); with both in [-127, 127] a pair sums to at most
/// 2·127·127 = 32258, so the i16 intermediate never saturates; `madd` by ones widens to i32.
/// Each block of [`QBLOCK`] inputs is then scaled into the f32 sums with a multiply and an add
/// (not an FMA), exactly as the scalar kernel does.
#[target_feature(enable = "avx2")]
unsafe fn gemm_i8_panel_avx2_impl<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    panel: *const i8,
    acc: &mut [[f32; NR]; MR],
) {
    let ones = _mm256_set1_epi16(1);
    let nb = kp / QBLOCK;
    let mut f = [_mm256_setzero_ps(); M];
    for b in 0..nb {
        let mut c = [_mm256_setzero_si256(); M];
        for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
            // SAFETY: the caller checked that the panel holds kp·8 bytes and each row kp bytes.
            let w = unsafe { _mm256_loadu_si256(panel.add(g * 32) as *const __m256i) };
            for (r, cr) in c.iter_mut().enumerate() {
                // SAFETY: as above; an unaligned 4-byte read of row r at input 4g.
                let x4 = unsafe { std::ptr::read_unaligned(xq.add(r * kp + g * 4) as *const i32) };
                let xv = _mm256_set1_epi32(x4);
                let ax = _mm256_sign_epi8(xv, xv);
                let sw = _mm256_sign_epi8(w, xv);
                *cr = _mm256_add_epi32(*cr, _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sw), ones));
            }
        }
        for (r, fr) in f.iter_mut().enumerate() {
            // SAFETY: the caller checked xs holds nb scales per row.
            let s = _mm256_set1_ps(unsafe { *xs.add(r * nb + b) });
            *fr = _mm256_add_ps(*fr, _mm256_mul_ps(_mm256_cvtepi32_ps(c[r]), s));
        }
    }
    for (r, fr) in f.iter().enumerate() {
        // SAFETY: acc[r] is 8 f32 = 32 bytes.
        unsafe { _mm256_storeu_ps(acc[r].as_mut_ptr(), *fr) };
    }
}

/// Safe entry: checks the slice lengths, then runs the AVX2 body. Only reachable through a
/// table built after AVX2 was detected.
pub fn gemm_i8_panel_avx2(
    xq: &[i8],
    xs: &[f32],
    m: usize,
    kp: usize,
    panel: &[i8],
    acc: &mut [[f32; NR]; MR],
) {
    assert!(
        m <= MR
            && kp % QBLOCK == 0
            && xq.len() >= m * kp
            && xs.len() >= m * (kp / QBLOCK)
            && panel.len() >= kp * NR
    );
    debug_assert!(super::Isa::Avx2.available());
    let (x, s, p) = (xq.as_ptr(), xs.as_ptr(), panel.as_ptr());
    // SAFETY: lengths checked above; AVX2 presence is the table's invariant.
    unsafe {
        match m {
            1 => gemm_i8_panel_avx2_impl::<1>(x, s, kp, p, acc),
            2 => gemm_i8_panel_avx2_impl::<2>(x, s, kp, p, acc),
            3 => gemm_i8_panel_avx2_impl::<3>(x, s, kp, p, acc),
            4 => gemm_i8_panel_avx2_impl::<4>(x, s, kp, p, acc),
            _ => {}
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn dot_f32_avx2_impl(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 ≤ n.
        let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
        acc = _mm256_add_ps(acc, _mm256_mul_ps(x, y));
        i += 8;
    }
    let mut tail = 0f32;
    while i < n {
        tail += a[i] * b[i];
        i += 1;
    }
    // s = [l0+l4, l1+l5, l2+l6, l3+l7]; then (s0+s2) + (s1+s3), as the scalar dot.
    let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let r = _mm_add_ss(t, _mm_shuffle_ps(t, t, 1));
    _mm_cvtss_f32(r) + tail
}

/// f32 dot product with AVX2, in the scalar dot's exact order (see [`super::scalar::dot`]).
pub fn dot_f32_avx2(a: &[f32], b: &[f32]) -> f32 {
    debug_assert!(super::Isa::Avx2.available());
    // SAFETY: AVX2 presence is the table's invariant; the body bounds its reads by the shorter
    // slice.
    unsafe { dot_f32_avx2_impl(a, b) }
}
