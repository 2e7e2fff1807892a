//! The int8 panel GEMM with plain Advanced SIMD (no dot product: Cortex-A53/A72/A73 class).

use std::arch::aarch64::*;

use super::int8::{scale_block, store};
use crate::kernels::{Panel, MR, NR, QBLOCK};

/// Plain NEON: `smull` to i16 (|product| ≤ 127·127, exact), pairwise-add-accumulate to i32.
#[target_feature(enable = "neon")]
unsafe fn gemm_i8_panel_neon_impl<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    panel: *const i8,
    step: usize,
    acc: &mut [[f32; NR]; MR],
) {
    let nb = kp / QBLOCK;
    let mut f = [[vdupq_n_f32(0.0); 2]; M];
    for b in 0..nb {
        // Per row, four accumulators of pair sums: outputs 0-1, 2-3, 4-5, 6-7.
        let mut c = [[vdupq_n_s32(0); 4]; M];
        for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
            // SAFETY: the caller checked the panel holds kp / 4 groups of 32 bytes, `step`
            // bytes apart, and each row kp bytes.
            let (w0, w1) = unsafe {
                (
                    vld1q_s8(panel.add(g * step)),
                    vld1q_s8(panel.add(g * step + 16)),
                )
            };
            for (r, cr) in c.iter_mut().enumerate() {
                // SAFETY: as above; an unaligned 4-byte read of row r at input 4g.
                let x4 = unsafe { std::ptr::read_unaligned(xq.add(r * kp + g * 4) as *const i32) };
                let xb = vreinterpret_s8_s32(vdup_n_s32(x4));
                cr[0] = vpadalq_s16(cr[0], vmull_s8(vget_low_s8(w0), xb));
                cr[1] = vpadalq_s16(cr[1], vmull_s8(vget_high_s8(w0), xb));
                cr[2] = vpadalq_s16(cr[2], vmull_s8(vget_low_s8(w1), xb));
                cr[3] = vpadalq_s16(cr[3], vmull_s8(vget_high_s8(w1), xb));
            }
        }
        for (r, cr) in c.iter().enumerate() {
            // SAFETY: the caller checked xs holds nb scales per row.
            let s = unsafe { *xs.add(r * nb + b) };
            // SAFETY: register arithmetic only.
            unsafe {
                scale_block(
                    &mut f[r],
                    vpaddq_s32(cr[0], cr[1]),
                    vpaddq_s32(cr[2], cr[3]),
                    s,
                )
            };
        }
    }
    store(&f, acc);
}

gemm_entry!(
    /// The int8 panel GEMM with plain NEON.
    gemm_i8_panel_neon,
    gemm_i8_panel_neon_impl,
    crate::kernels::Isa::Neon
);
