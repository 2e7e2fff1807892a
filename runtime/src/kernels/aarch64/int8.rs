//! What the aarch64 int8 GEMMs share (the block step, the store, the safe entry point) and
//! activation quantization. The GEMMs themselves are written per ISA: [`super::gemm_neon`],
//! [`super::gemm_dotprod`] (`sdot`) and [`super::gemm_i8mm`] (`smmla`).

use std::arch::aarch64::*;

use crate::kernels::{MR, NR, QBLOCK};

/// Scales one block's i32 sums into the f32 sums: one fused multiply-add, as the scalar kernel.
#[inline(always)]
pub(super) unsafe fn scale_block(f: &mut [float32x4_t; 2], lo: int32x4_t, hi: int32x4_t, s: f32) {
    // SAFETY: register arithmetic; the caller runs with NEON.
    unsafe {
        let s = vdupq_n_f32(s);
        f[0] = vfmaq_f32(f[0], vcvtq_f32_s32(lo), s);
        f[1] = vfmaq_f32(f[1], vcvtq_f32_s32(hi), s);
    }
}

#[inline(always)]
pub(super) fn store<const M: usize>(f: &[[float32x4_t; 2]; M], acc: &mut [[f32; NR]; MR]) {
    for (r, fr) in f.iter().enumerate() {
        // SAFETY: acc[r] holds 8 f32.
        unsafe {
            vst1q_f32(acc[r].as_mut_ptr(), fr[0]);
            vst1q_f32(acc[r].as_mut_ptr().add(4), fr[1]);
        }
    }
}

/// The safe entry of a one-panel GEMM body: checks the shapes, then runs it. Signed bytes
/// multiply directly in every aarch64 body: no block sums needed.
macro_rules! gemm_entry {
    ($(#[$doc:meta])* $name:ident, $body:ident, $isa:expr) => {
        $(#[$doc])*
        pub fn $name(
            xq: &[i8],
            xs: &[f32],
            m: usize,
            kp: usize,
            panel: Panel<'_>,
            acc: &mut [[f32; NR]; MR],
        ) {
            crate::kernels::check_gemm_args(xq, xs, m, kp, &panel);
            debug_assert!($isa.available());
            let (x, s, p) = (xq.as_ptr(), xs.as_ptr(), panel.w.as_ptr());
            let step = 4 * NR * panel.interleave;
            // SAFETY: lengths checked above; the tier's features are the table's invariant.
            unsafe { by_rows!(m, M => $body::<M>(x, s, kp, p, step, acc)) }
        }
    };
}

/// One full block of 32 activations: the scalar `quantize_span`, operation for operation, for
/// finite inputs.
#[target_feature(enable = "neon")]
unsafe fn quantize_block32_neon(x: &[f32], q: &mut [i8]) -> f32 {
    assert!(x.len() == QBLOCK && q.len() == QBLOCK);
    let (x, q) = (x.as_ptr(), q.as_mut_ptr());
    // SAFETY: (the whole body) 32 readable floats at x and 32 writable bytes at q (asserted).
    unsafe {
        // Loops, not closures: a closure would not inherit the target features.
        let mut v = [vdupq_n_f32(0.0); 8];
        for (j, vj) in v.iter_mut().enumerate() {
            *vj = vld1q_f32(x.add(4 * j));
        }
        let mut m = vdupq_n_f32(0.0);
        for &x in &v {
            m = vmaxq_f32(m, vabsq_f32(x));
        }
        let amax = vmaxvq_f32(m);
        let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        let inv = vdupq_n_f32(1.0 / scale);
        let (lo, hi) = (vdupq_n_f32(-127.0), vdupq_n_f32(127.0));
        let magic = vdupq_n_f32(crate::kernels::scalar::exp_consts::ROUND);
        let mut i = [vdupq_n_s32(0); 8];
        for (ij, &x) in i.iter_mut().zip(&v) {
            let r = vmaxq_f32(vminq_f32(vmulq_f32(x, inv), hi), lo);
            *ij = vcvtq_s32_f32(vsubq_f32(vaddq_f32(r, magic), magic));
        }
        for h in 0..2 {
            let a = vcombine_s16(vqmovn_s32(i[4 * h]), vqmovn_s32(i[4 * h + 1]));
            let b = vcombine_s16(vqmovn_s32(i[4 * h + 2]), vqmovn_s32(i[4 * h + 3]));
            vst1q_s8(q.add(16 * h), vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)));
        }
        scale
    }
}

/// Activation quantization with NEON, bit for bit [`crate::kernels::scalar::quantize_blocks`].
pub fn quantize_blocks_neon(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    crate::kernels::check_quantize_args(x, rows, k, kp, q, scales);
    crate::kernels::scalar::quantize_blocks_with(x, rows, k, kp, q, scales, |x, q| {
        // SAFETY: NEON presence is the table's invariant; the block kernel checks its
        // slices.
        unsafe { quantize_block32_neon(x, q) }
    });
}
