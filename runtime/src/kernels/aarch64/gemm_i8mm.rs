//! The int8 panel GEMM with the int8 matrix multiply extension (`smmla`), emitted with `asm!`
//! because its intrinsics are not stable Rust yet.

use std::arch::aarch64::*;

use super::int8::{scale_block, store};
use crate::kernels::{Panel, MR, NR, QBLOCK};

/// `smmla` (i8mm): one instruction multiplies a 2 × 8 block of activations (two rows, eight
/// inputs) by an 8 × 2 block of weights (two outputs) into a 2 × 2 block of i32 sums, 32
/// multiply-adds where `sdot` does 16. The packed layouts hold four inputs per output per
/// group; two groups zipped (`zip1`/`zip2` on 32-bit lanes) give the two-outputs × eight-inputs
/// operand, in registers, so the kernel reads the files the other tiers read (the runtime never
/// repacks). Rows go in pairs (a missing fourth or second row repeats the last one and is
/// dropped). Block sums are exact integers, scaled as in the scalar kernel: the same bits.
#[target_feature(enable = "neon,i8mm")]
unsafe fn gemm_i8_panel_i8mm_impl<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    panel: *const i8,
    step: usize,
    acc: &mut [[f32; NR]; MR],
) {
    let nb = kp / QBLOCK;
    let pairs = M.div_ceil(2);
    let mut f = [[vdupq_n_f32(0.0); 2]; M];
    for b in 0..nb {
        // Per row pair, outputs (0,1), (2,3), (4,5), (6,7): [r0·c0, r0·c1, r1·c0, r1·c1].
        let mut c = [[vdupq_n_s32(0); 4]; 2];
        let mut g = b * QBLOCK / 4;
        while g < (b + 1) * QBLOCK / 4 {
            // SAFETY: the caller checked the panel holds kp / 4 groups of 32 bytes `step`
            // bytes apart; g and g + 1 are inside the block.
            let (a0, a1, b0, b1) = unsafe {
                (
                    vreinterpretq_s32_s8(vld1q_s8(panel.add(g * step))),
                    vreinterpretq_s32_s8(vld1q_s8(panel.add(g * step + 16))),
                    vreinterpretq_s32_s8(vld1q_s8(panel.add((g + 1) * step))),
                    vreinterpretq_s32_s8(vld1q_s8(panel.add((g + 1) * step + 16))),
                )
            };
            // Outputs (0,1), (2,3), (4,5), (6,7), each eight inputs.
            let w = [
                vreinterpretq_s8_s32(vzip1q_s32(a0, b0)),
                vreinterpretq_s8_s32(vzip2q_s32(a0, b0)),
                vreinterpretq_s8_s32(vzip1q_s32(a1, b1)),
                vreinterpretq_s8_s32(vzip2q_s32(a1, b1)),
            ];
            for (p, cp) in c.iter_mut().enumerate().take(pairs) {
                // Rows 2p and 2p + 1, the last row again in place of a missing one.
                let (r0, r1) = (2 * p, (2 * p + 1).min(M - 1));
                // SAFETY: 8-byte reads of rows r0 and r1 at input 4g, inside the rows.
                let x = unsafe {
                    vcombine_s8(
                        vld1_s8(xq.add(r0 * kp + g * 4)),
                        vld1_s8(xq.add(r1 * kp + g * 4)),
                    )
                };
                for (cq, wq) in cp.iter_mut().zip(&w) {
                    // SAFETY: register-only instruction; `i8mm` is enabled on this function.
                    unsafe {
                        core::arch::asm!("smmla {c:v}.4s, {x:v}.16b, {w:v}.16b", c = inout(vreg) *cq, x = in(vreg) x, w = in(vreg) *wq, options(pure, nomem, nostack));
                    }
                }
            }
            g += 2;
        }
        for (p, cp) in c.iter().enumerate().take(pairs) {
            // Output pair q of row pair p is [r0·c2q, r0·c2q+1, r1·c2q, r1·c2q+1]: the low 64
            // bits of pairs (0,1) and (2,3) are row 2p's outputs 0-3 and 4-7, the high ones
            // row 2p + 1's.
            let q = [
                vreinterpretq_s64_s32(cp[0]),
                vreinterpretq_s64_s32(cp[1]),
                vreinterpretq_s64_s32(cp[2]),
                vreinterpretq_s64_s32(cp[3]),
            ];
            let rows = [
                (vzip1q_s64(q[0], q[1]), vzip1q_s64(q[2], q[3])),
                (vzip2q_s64(q[0], q[1]), vzip2q_s64(q[2], q[3])),
            ];
            for (i, (lo, hi)) in rows.into_iter().enumerate() {
                let r = 2 * p + i;
                if r < M {
                    // SAFETY: the caller checked xs holds nb scales per row.
                    let s = unsafe { *xs.add(r * nb + b) };
                    let (lo, hi) = (vreinterpretq_s32_s64(lo), vreinterpretq_s32_s64(hi));
                    // SAFETY: register arithmetic only.
                    unsafe { scale_block(&mut f[r], lo, hi, s) };
                }
            }
        }
    }
    store(&f, acc);
}

gemm_entry!(
    /// The int8 panel GEMM with `smmla`.
    gemm_i8_panel_i8mm,
    gemm_i8_panel_i8mm_impl,
    crate::kernels::Isa::NeonI8mm
);
