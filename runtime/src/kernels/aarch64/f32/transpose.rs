//! The eight-row transpose with NEON permutes: data movement only, so exactly
//! [`scalar::transpose8`].

use std::arch::aarch64::*;

use crate::kernels::scalar;

/// Four columns of four rows as four rows of four: TRN1/TRN2 on 32-bit lanes pair the rows,
/// then on 64-bit lanes the pairs (a reinterpretation moves bits, it converts nothing).
#[inline(always)]
unsafe fn transpose4(r: [float32x4_t; 4]) -> [float32x4_t; 4] {
    // SAFETY: register permutes; NEON is the caller's.
    unsafe {
        let d = vreinterpretq_f64_f32;
        let t0 = d(vtrn1q_f32(r[0], r[1]));
        let t1 = d(vtrn2q_f32(r[0], r[1]));
        let t2 = d(vtrn1q_f32(r[2], r[3]));
        let t3 = d(vtrn2q_f32(r[2], r[3]));
        [
            vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)),
            vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)),
            vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)),
            vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)),
        ]
    }
}

/// Eight rows as eight columns, `dst[dd·ld + i] = src[i][dd]`, four columns at a time: eight
/// loads, two 4 × 4 transposes, eight stores; the last `d mod 4` columns in scalar code.
#[target_feature(enable = "neon")]
unsafe fn transpose8_impl(src: [&[f32]; 8], d: usize, dst: &mut [f32], ld: usize) {
    let p = src.map(|s| s.as_ptr());
    let o = dst.as_mut_ptr();
    let mut dd = 0;
    while dd + 4 <= d {
        // SAFETY: each row holds d values and dd + 4 ≤ d; dst holds (d - 1)·ld + 8 values
        // and row dd + j < d of it starts at (dd + j)·ld (the entry checked both).
        unsafe {
            // Loops, not closures: a closure would not inherit the target features.
            let mut r = [vdupq_n_f32(0.0); 8];
            for (ri, pi) in r.iter_mut().zip(&p) {
                *ri = vld1q_f32(pi.add(dd));
            }
            let lo = transpose4([r[0], r[1], r[2], r[3]]);
            let hi = transpose4([r[4], r[5], r[6], r[7]]);
            for j in 0..4 {
                let q = o.add((dd + j) * ld);
                vst1q_f32(q, lo[j]);
                vst1q_f32(q.add(4), hi[j]);
            }
        }
        dd += 4;
    }
    if dd < d {
        let rest = src.map(|s| &s[dd..]);
        scalar::transpose_rows(&rest, d - dd, &mut dst[dd * ld..], ld);
    }
}

/// [`scalar::transpose8`] with NEON.
pub fn transpose8_neon(src: [&[f32]; 8], d: usize, dst: &mut [f32], ld: usize) {
    crate::kernels::check_transpose8_args(&src, d, dst, ld);
    // SAFETY: shapes checked above; NEON presence is the table's invariant.
    unsafe { transpose8_impl(src, d, dst, ld) }
}
