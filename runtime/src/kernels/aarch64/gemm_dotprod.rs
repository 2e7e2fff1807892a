//! The int8 panel GEMM with the dot-product extension (`sdot`), emitted with `asm!` because
//! its intrinsics are not stable Rust yet.

use std::arch::aarch64::*;

use super::int8::{scale_block, store};
use crate::kernels::{Panel, MR, NR, QBLOCK};

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

gemm_entry!(
    /// The int8 panel GEMM with `sdot`.
    gemm_i8_panel_dotprod,
    gemm_i8_panel_dotprod_impl,
    crate::kernels::Isa::NeonDotprod
);
