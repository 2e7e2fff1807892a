//! The int8 panel GEMMs with the dot-product extension: `sdot` by element, emitted with
//! `asm!` because its intrinsics are not stable Rust yet.
//!
//! The register tile is up to 4 rows × one panel (8 outputs): 8 i32 accumulators and 8 f32
//! sums, all in registers for the whole depth. Each row's 16 activation bytes (4 input groups)
//! come in with one `ldr q` and feed 4 by-element `sdot`s per weight register (`.4b[i]` picks
//! group `i`); each group's 32 weight bytes (two registers) are loaded once and feed every row.
//! Per 32-input block a row costs 8 `sdot`, then 2 FSUB + 2 FMLA (see
//! [`super::int8::block_step`]): 8/(8 + 2) is the ceiling, 80% of `sdot` peak. The four-panel
//! kernel runs the same tile over each panel in turn: its activations come from L1 four
//! times, which the load pipes absorb (≤ 3 loads per 8 `sdot`).

use std::arch::aarch64::*;

use super::int8::{block_bias, block_start, block_step, ldr_q, ldr_q_at, row_starts};
use crate::kernels::{Epilogue4, Panel, Tile, MR, NR, QBLOCK};

/// `c += Σ₄ w·x.4b[I]`: four signed byte products per lane, `x`'s group `I` for every lane.
///
/// # Safety
/// The CPU has `dotprod` (register-only otherwise).
#[inline(always)]
unsafe fn sdot_lane<const I: usize>(c: &mut int32x4_t, w: int8x16_t, x: int8x16_t) {
    // SAFETY: register-only; the caller's CPU has `dotprod`.
    unsafe {
        core::arch::asm!(
            "sdot {c:v}.4s, {w:v}.16b, {x:v}.4b[{i}]",
            c = inout(vreg) *c, w = in(vreg) w, x = in(vreg) x, i = const I,
            options(pure, nomem, nostack, preserves_flags)
        )
    }
}

/// One panel (weights at `w`, groups `STEP` bytes apart) times `M` rows of `kp` inputs
/// (`kp` bytes apart, `nb = kp / 32` block scales per row): each output's f32 sum, as the
/// scalar kernel makes it. Every load is one instruction without a pointer update of its
/// own: the weights at immediate offsets (`STEP` is a constant) from one pointer, all rows'
/// activations and scales at one register offset each, so a block costs 3 adds and the loop
/// count in integer ops.
///
/// # Safety
/// NEON and dotprod present; `xq` holds `M · kp` bytes, `xs` `M · kp / 32` floats, `w`
/// `kp / 4` groups of 32 bytes `STEP` apart.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn panel_dotprod<const M: usize, const STEP: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    w: *const i8,
) -> [[float32x4_t; 2]; M] {
    let nb = kp / QBLOCK;
    let mut f = [[vdupq_n_f32(0.0); 2]; M];
    let (x, s) = row_starts::<M>(xq, xs, kp);
    let mut wb = w;
    // SAFETY: a static's 16 bytes.
    let bias = unsafe { block_bias() };
    for b in 0..nb {
        // SAFETY: (the block) loads inside the caller's bounds: each row's next 32 inputs and
        // next block scale, the panel's next 8 groups.
        unsafe {
            // Each accumulator its own load (a repeat expression would copy one).
            let mut c: [[int32x4_t; 2]; M] =
                core::array::from_fn(|_| [block_start::<false>(), block_start::<false>()]);
            // Written out, not a loop: the compiler keeps a two-trip loop here otherwise.
            macro_rules! half {
                ($h:literal) => {
                    let mut xv = [vdupq_n_s8(0); M];
                    for (xv, xr) in xv.iter_mut().zip(&x) {
                        *xv = ldr_q_at(xr[$h], QBLOCK * b);
                    }
                    for_group!(xv, $h, 0);
                    for_group!(xv, $h, 1);
                    for_group!(xv, $h, 2);
                    for_group!(xv, $h, 3);
                };
            }
            // Group $i of the 4 in each row's `xv`: its weights loaded once, used by every row.
            macro_rules! for_group {
                ($xv:ident, $h:literal, $i:literal) => {
                    let w0 = ldr_q::<STEP, { 4 * $h + $i }, 0>(wb);
                    let w1 = ldr_q::<STEP, { 4 * $h + $i }, 1>(wb);
                    for (cr, &xr) in c.iter_mut().zip(&$xv) {
                        sdot_lane::<$i>(&mut cr[0], w0, xr);
                        sdot_lane::<$i>(&mut cr[1], w1, xr);
                    }
                };
            }
            half!(0);
            half!(1);
            // Wrapping: after the last block it points past the panel, never read.
            wb = wb.wrapping_add(8 * STEP);
            for ((fr, cr), &sr) in f.iter_mut().zip(c).zip(&s) {
                block_step(fr, cr, sr, 4 * b, bias);
            }
        }
    }
    f
}

/// [`panel_dotprod`] for a runtime group stride: 32 bytes (`I8Panel8x4`) or 64 (a panel of
/// `I8Panel16x4`), the only two the entry points admit.
///
/// # Safety
/// As [`panel_dotprod`].
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn panel_dotprod_step<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    w: *const i8,
    step: usize,
) -> [[float32x4_t; 2]; M] {
    debug_assert!(step == 4 * NR || step == 8 * NR);
    // SAFETY: the caller's contract.
    unsafe {
        if step == 4 * NR {
            panel_dotprod::<M, { 4 * NR }>(xq, xs, kp, w)
        } else {
            panel_dotprod::<M, { 8 * NR }>(xq, xs, kp, w)
        }
    }
}

panel_gemms!(
    "neon,dotprod", panel_dotprod_step, crate::kernels::Isa::NeonDotprod,
    /// The int8 panel GEMM with `sdot`.
    gemm_i8_panel_dotprod / gemm_i8_panel_dotprod_impl,
    /// The four-panel int8 GEMM with `sdot`: each of `out`'s rows gets the four panels'
    /// outputs exactly as [`crate::kernels::scalar::gemm_i8_panel`] (then the epilogue)
    /// gives them.
    gemm_i8_panel4_dotprod / gemm_i8_panel4_dotprod_tile,
);
