//! The aarch64 int8 kernels, written per ISA: the panel GEMMs with Advanced SIMD, the
//! dot-product extension (`sdot`) and the int8 matrix multiply extension (`smmla`), the last
//! two emitted with `asm!` because their intrinsics are not stable Rust yet; and activation
//! quantization.

use std::arch::aarch64::*;

use crate::kernels::{Panel, MR, NR, QBLOCK};

/// Scales one block's i32 sums into the f32 sums: one fused multiply-add, as the scalar kernel.
#[inline(always)]
unsafe fn scale_block(f: &mut [float32x4_t; 2], lo: int32x4_t, hi: int32x4_t, s: f32) {
    // SAFETY: register arithmetic; the caller runs with NEON.
    unsafe {
        let s = vdupq_n_f32(s);
        f[0] = vfmaq_f32(f[0], vcvtq_f32_s32(lo), s);
        f[1] = vfmaq_f32(f[1], vcvtq_f32_s32(hi), s);
    }
}

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

#[inline(always)]
fn store<const M: usize>(f: &[[float32x4_t; 2]; M], acc: &mut [[f32; NR]; MR]) {
    for (r, fr) in f.iter().enumerate() {
        // SAFETY: acc[r] holds 8 f32.
        unsafe {
            vst1q_f32(acc[r].as_mut_ptr(), fr[0]);
            vst1q_f32(acc[r].as_mut_ptr().add(4), fr[1]);
        }
    }
}

/// `sdot`: each 32-bit lane accumulates the dot product of 4 bytes with 4 bytes.
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemm_i8_panel_dotprod_impl<const M: usize>(
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
        let mut c = [[vdupq_n_s32(0); 2]; M];
        for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
            // SAFETY: as in the NEON kernel.
            let (w0, w1) = unsafe {
                (
                    vld1q_s8(panel.add(g * step)),
                    vld1q_s8(panel.add(g * step + 16)),
                )
            };
            for (r, cr) in c.iter_mut().enumerate() {
                // SAFETY: as in the NEON kernel.
                let x4 = unsafe { std::ptr::read_unaligned(xq.add(r * kp + g * 4) as *const i32) };
                let xb = vreinterpretq_s8_s32(vdupq_n_s32(x4));
                // SAFETY: register-only instructions; `dotprod` is enabled on this function.
                unsafe {
                    core::arch::asm!("sdot {c:v}.4s, {w:v}.16b, {x:v}.16b", c = inout(vreg) cr[0], w = in(vreg) w0, x = in(vreg) xb, options(pure, nomem, nostack));
                    core::arch::asm!("sdot {c:v}.4s, {w:v}.16b, {x:v}.16b", c = inout(vreg) cr[1], w = in(vreg) w1, x = in(vreg) xb, options(pure, nomem, nostack));
                }
            }
        }
        for (r, cr) in c.iter().enumerate() {
            // SAFETY: the caller checked xs holds nb scales per row.
            let s = unsafe { *xs.add(r * nb + b) };
            // SAFETY: register arithmetic only.
            unsafe { scale_block(&mut f[r], cr[0], cr[1], s) };
        }
    }
    store(&f, acc);
}

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

gemm_entry!(
    /// The int8 panel GEMM with plain NEON.
    gemm_i8_panel_neon,
    gemm_i8_panel_neon_impl,
    crate::kernels::Isa::Neon
);
gemm_entry!(
    /// The int8 panel GEMM with `sdot`.
    gemm_i8_panel_dotprod,
    gemm_i8_panel_dotprod_impl,
    crate::kernels::Isa::NeonDotprod
);
gemm_entry!(
    /// The int8 panel GEMM with `smmla`.
    gemm_i8_panel_i8mm,
    gemm_i8_panel_i8mm_impl,
    crate::kernels::Isa::NeonI8mm
);
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
