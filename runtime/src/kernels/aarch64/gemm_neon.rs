//! The int8 panel GEMMs with plain Advanced SIMD (no dot product: Cortex-A53/A72/A73 class).
//!
//! Two input groups at a time: `smull` multiplies a group's bytes by the row's 4 activations
//! (broadcast with one `dup` per row and group) into i16, `smlal` adds the next group's
//! products (|2·127·128| < 2¹⁵: exact), `sadalp` adds adjacent i16 pairs into i32 lanes: 3
//! vector ops per 16 products instead of 2 per 8. An i32 register holds two lanes per output
//! for two outputs; one `addp` per four outputs finishes a block. The register tile is 2 rows
//! × one panel: 8 i32 accumulators and 4 f32 sums stay in registers for the whole depth (4
//! rows would need 16 + 8 and spill); a block's weights are read once per 2 rows, from L1.

use std::arch::aarch64::*;

use super::int8::{block_bias, block_start, block_step, store, store_panel};
use crate::kernels::{Epilogue4, Panel, Tile, MR, NR, QBLOCK};

/// One panel (weights at `w`, groups `step` bytes apart) times `M ≤ 2` rows of `kp` inputs
/// (`kp` bytes apart, `nb = kp / 32` block scales per row): each output's f32 sum, as the
/// scalar kernel makes it.
///
/// # Safety
/// NEON present; `xq` holds `M · kp` bytes, `xs` `M · kp / 32` floats, `w` `kp / 4` groups
/// of 32 bytes `step` apart.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn panel_neon<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    w: *const i8,
    step: usize,
) -> [[float32x4_t; 2]; M] {
    let nb = kp / QBLOCK;
    let mut f = [[vdupq_n_f32(0.0); 2]; M];
    let mut wg = w;
    for b in 0..nb {
        // SAFETY: (the block) loads inside the caller's bounds: row r's inputs
        // 32b..32b + 32, the panel's groups 8b..8b + 8, row r's block scale b.
        unsafe {
            // Per row: outputs (0, 1), (2, 3), (4, 5), (6, 7), two lanes each; the bias in
            // one lane of each pair (the `addp` at the end sums the pair). Each register its
            // own load: a repeat expression would copy one.
            let bias = block_bias();
            let mut c: [[int32x4_t; 4]; M] =
                core::array::from_fn(|_| [(); 4].map(|_| block_start::<true>()));
            for h in 0..2 {
                let mut x = [vdupq_n_s8(0); M];
                for (r, xr) in x.iter_mut().enumerate() {
                    *xr = vld1q_s8(xq.add(r * kp + b * QBLOCK + 16 * h));
                }
                // Groups $i and $i + 1 of the 4 in `x`.
                macro_rules! groups {
                    ($i:literal, $j:literal) => {
                        let (a0, a1) = (vld1q_s8(wg), vld1q_s8(wg.add(16)));
                        let (b0, b1) = (vld1q_s8(wg.add(step)), vld1q_s8(wg.add(step + 16)));
                        wg = wg.add(2 * step);
                        for (cr, &xr) in c.iter_mut().zip(&x) {
                            let xa = vreinterpretq_s8_s32(vdupq_laneq_s32::<$i>(
                                vreinterpretq_s32_s8(xr),
                            ));
                            let xb = vreinterpretq_s8_s32(vdupq_laneq_s32::<$j>(
                                vreinterpretq_s32_s8(xr),
                            ));
                            for (k, (wa, wb)) in [(a0, b0), (a1, b1)].into_iter().enumerate() {
                                let lo = vmull_s8(vget_low_s8(wa), vget_low_s8(xa));
                                let lo = vmlal_s8(lo, vget_low_s8(wb), vget_low_s8(xb));
                                cr[2 * k] = vpadalq_s16(cr[2 * k], lo);
                                let hi = vmlal_high_s8(vmull_high_s8(wa, xa), wb, xb);
                                cr[2 * k + 1] = vpadalq_s16(cr[2 * k + 1], hi);
                            }
                        }
                    };
                }
                groups!(0, 1);
                groups!(2, 3);
            }
            for (r, (fr, cr)) in f.iter_mut().zip(c).enumerate() {
                let sums = [vpaddq_s32(cr[0], cr[1]), vpaddq_s32(cr[2], cr[3])];
                block_step(fr, sums, xs.add(r * nb), 4 * b, bias);
            }
        }
    }
    f
}

/// [`panel_neon`] for `M ≤ 4` rows, two at a time.
///
/// # Safety
/// As [`panel_neon`].
#[target_feature(enable = "neon")]
#[inline]
unsafe fn panel_neon_rows<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    w: *const i8,
    step: usize,
) -> [[float32x4_t; 2]; M] {
    let nb = kp / QBLOCK;
    let mut f = [[vdupq_n_f32(0.0); 2]; M];
    for r in (0..M).step_by(2) {
        // SAFETY: rows r and r + 1 (if below M) are inside the caller's bounds.
        unsafe {
            let (x, s) = (xq.add(r * kp), xs.add(r * nb));
            if r + 1 < M {
                let [f0, f1] = panel_neon::<2>(x, s, kp, w, step);
                (f[r], f[r + 1]) = (f0, f1);
            } else {
                [f[r]] = panel_neon::<1>(x, s, kp, w, step);
            }
        }
    }
    f
}

/// The single-panel kernel's body: [`panel_neon_rows`] into `acc`.
#[target_feature(enable = "neon")]
unsafe fn gemm_i8_panel_neon_impl<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    panel: *const i8,
    step: usize,
    acc: &mut [[f32; NR]; MR],
) {
    // SAFETY: the entry's checks are panel_neon_rows's contract.
    store(
        &unsafe { panel_neon_rows::<M>(xq, xs, kp, panel, step) },
        acc,
    );
}

gemm_entry!(
    /// The int8 panel GEMM with plain NEON.
    gemm_i8_panel_neon,
    gemm_i8_panel_neon_impl,
    crate::kernels::Isa::Neon
);

/// The four-panel kernel's body for `M` rows: each panel in turn, its epilogue, its stores.
#[target_feature(enable = "neon")]
unsafe fn gemm_i8_panel4_neon_tile<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    panels: [(*const i8, usize); 4],
    epilogue: Option<Epilogue4<'_>>,
    out: &mut Tile<'_>,
    r0: usize,
) {
    for (p, (w, step)) in panels.into_iter().enumerate() {
        // SAFETY: the entry checked every panel for these rows; NEON is enabled here.
        unsafe {
            let f = panel_neon_rows::<M>(xq, xs, kp, w, step);
            store_panel(&f, epilogue, p, out, r0);
        }
    }
}

gemm4_entry!(
    /// The four-panel int8 GEMM with plain NEON: each of `out`'s rows gets the four panels'
    /// outputs exactly as [`crate::kernels::scalar::gemm_i8_panel`] (then the epilogue)
    /// gives them.
    gemm_i8_panel4_neon,
    gemm_i8_panel4_neon_tile,
    crate::kernels::Isa::Neon
);
