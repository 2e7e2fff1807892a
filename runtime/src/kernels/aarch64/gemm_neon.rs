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

use super::int8::{block_bias, block_start, block_step, ldr_q, ldr_q_at, row_starts};
use crate::kernels::{Epilogue4, Panel, Tile, MR, NR, QBLOCK};

/// Groups `I` and `J` (lanes of each row's `x`) of two rows into their accumulators: the
/// two-row steady state as one asm block, ordered for in-order cores (Cortex-A53/A55): the 8
/// `smull`s, then the 8 `smlal`s, then the 8 `sadalp`s, each 8 instructions after the one it
/// waits for. Left to itself the compiler puts each chain's links next to each other, which an
/// in-order core pays for in stalls (llvm-19's A53 model: 196 → 174 cycles a block of two
/// rows; A55 183 → 143; the out-of-order cores unchanged). Not `pure`: the compiler must not
/// hoist the next groups' loads above it (it then runs out of registers and spills).
/// `w` is group `I`'s two registers, then group `J`'s.
///
/// # Safety
/// The CPU has NEON (register-only otherwise).
#[inline(always)]
unsafe fn groups_two_rows<const I: usize, const J: usize>(
    c: &mut [[int32x4_t; 4]; 2],
    x: &[int8x16_t; 2],
    w: [int8x16_t; 4],
) {
    // SAFETY: register-only; the caller's CPU has NEON.
    unsafe {
        core::arch::asm!(
            "dup {xa0:v}.4s, {x0:v}.s[{i}]",
            "dup {xa1:v}.4s, {x1:v}.s[{i}]",
            "dup {xb0:v}.4s, {x0:v}.s[{j}]",
            "dup {xb1:v}.4s, {x1:v}.s[{j}]",
            "smull  {p0:v}.8h, {a0:v}.8b,  {xa0:v}.8b",
            "smull2 {p1:v}.8h, {a0:v}.16b, {xa0:v}.16b",
            "smull  {p2:v}.8h, {a1:v}.8b,  {xa0:v}.8b",
            "smull2 {p3:v}.8h, {a1:v}.16b, {xa0:v}.16b",
            "smull  {p4:v}.8h, {a0:v}.8b,  {xa1:v}.8b",
            "smull2 {p5:v}.8h, {a0:v}.16b, {xa1:v}.16b",
            "smull  {p6:v}.8h, {a1:v}.8b,  {xa1:v}.8b",
            "smull2 {p7:v}.8h, {a1:v}.16b, {xa1:v}.16b",
            "smlal  {p0:v}.8h, {b0:v}.8b,  {xb0:v}.8b",
            "smlal2 {p1:v}.8h, {b0:v}.16b, {xb0:v}.16b",
            "smlal  {p2:v}.8h, {b1:v}.8b,  {xb0:v}.8b",
            "smlal2 {p3:v}.8h, {b1:v}.16b, {xb0:v}.16b",
            "smlal  {p4:v}.8h, {b0:v}.8b,  {xb1:v}.8b",
            "smlal2 {p5:v}.8h, {b0:v}.16b, {xb1:v}.16b",
            "smlal  {p6:v}.8h, {b1:v}.8b,  {xb1:v}.8b",
            "smlal2 {p7:v}.8h, {b1:v}.16b, {xb1:v}.16b",
            "sadalp {c00:v}.4s, {p0:v}.8h",
            "sadalp {c01:v}.4s, {p1:v}.8h",
            "sadalp {c02:v}.4s, {p2:v}.8h",
            "sadalp {c03:v}.4s, {p3:v}.8h",
            "sadalp {c10:v}.4s, {p4:v}.8h",
            "sadalp {c11:v}.4s, {p5:v}.8h",
            "sadalp {c12:v}.4s, {p6:v}.8h",
            "sadalp {c13:v}.4s, {p7:v}.8h",
            i = const I, j = const J,
            x0 = in(vreg) x[0], x1 = in(vreg) x[1],
            a0 = in(vreg) w[0], a1 = in(vreg) w[1], b0 = in(vreg) w[2], b1 = in(vreg) w[3],
            c00 = inout(vreg) c[0][0], c01 = inout(vreg) c[0][1],
            c02 = inout(vreg) c[0][2], c03 = inout(vreg) c[0][3],
            c10 = inout(vreg) c[1][0], c11 = inout(vreg) c[1][1],
            c12 = inout(vreg) c[1][2], c13 = inout(vreg) c[1][3],
            xa0 = out(vreg) _, xa1 = out(vreg) _, xb0 = out(vreg) _, xb1 = out(vreg) _,
            p0 = out(vreg) _, p1 = out(vreg) _, p2 = out(vreg) _, p3 = out(vreg) _,
            p4 = out(vreg) _, p5 = out(vreg) _, p6 = out(vreg) _, p7 = out(vreg) _,
            options(nomem, nostack, preserves_flags)
        )
    }
}

/// One panel (weights at `w`, groups `STEP` bytes apart) times `M ≤ 2` rows of `kp` inputs
/// (`kp` bytes apart, `nb = kp / 32` block scales per row): each output's f32 sum, as the
/// scalar kernel makes it. Loads as in the dotprod kernel: asm, so none is paired into an
/// `ldp q` (6 cycles in llvm-19's A55 model) or hoisted; immediate offsets for the weights,
/// one register offset for all rows' activations and scales.
///
/// # Safety
/// NEON present; `xq` holds `M · kp` bytes, `xs` `M · kp / 32` floats, `w` `kp / 4` groups
/// of 32 bytes `STEP` apart.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn panel_neon<const M: usize, const STEP: usize>(
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
        // SAFETY: (the block) loads inside the caller's bounds: row r's inputs
        // 32b..32b + 32, the panel's groups 8b..8b + 8, row r's block scale b.
        unsafe {
            // Per row: outputs (0, 1), (2, 3), (4, 5), (6, 7), two lanes each; the bias in
            // one lane of each pair (the `addp` at the end sums the pair). Each register its
            // own load: a repeat expression would copy one.
            let mut c: [[int32x4_t; 4]; M] =
                core::array::from_fn(|_| [(); 4].map(|_| block_start::<true>()));
            // Written out, not a loop: the compiler keeps a two-trip loop here otherwise.
            macro_rules! half {
                ($h:literal) => {
                    let mut xv = [vdupq_n_s8(0); M];
                    for (xv, xr) in xv.iter_mut().zip(&x) {
                        *xv = ldr_q_at(xr[$h], QBLOCK * b);
                    }
                    groups!(xv, $h, 0, 1);
                    groups!(xv, $h, 2, 3);
                };
            }
            // Groups $i and $j of the 4 in each row's `xv`.
            macro_rules! groups {
                ($xv:ident, $h:literal, $i:literal, $j:literal) => {
                    let a0 = ldr_q::<STEP, { 4 * $h + $i }, 0>(wb);
                    let a1 = ldr_q::<STEP, { 4 * $h + $i }, 1>(wb);
                    let b0 = ldr_q::<STEP, { 4 * $h + $j }, 0>(wb);
                    let b1 = ldr_q::<STEP, { 4 * $h + $j }, 1>(wb);
                    // Two rows: the asm block; one row: the same operations.
                    if let (Some(c2), Some(x2)) = (c.first_chunk_mut(), $xv.first_chunk()) {
                        groups_two_rows::<$i, $j>(c2, x2, [a0, a1, b0, b1]);
                    } else if let (Some(cr), Some(&xr)) = (c.first_mut(), $xv.first()) {
                        let xa =
                            vreinterpretq_s8_s32(vdupq_laneq_s32::<$i>(vreinterpretq_s32_s8(xr)));
                        let xb =
                            vreinterpretq_s8_s32(vdupq_laneq_s32::<$j>(vreinterpretq_s32_s8(xr)));
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
            half!(0);
            half!(1);
            // Wrapping: after the last block it points past the panel, never read.
            wb = wb.wrapping_add(8 * STEP);
            for ((fr, cr), &sr) in f.iter_mut().zip(c).zip(&s) {
                let sums = [vpaddq_s32(cr[0], cr[1]), vpaddq_s32(cr[2], cr[3])];
                block_step(fr, sums, sr, 4 * b, bias);
            }
        }
    }
    f
}

/// [`panel_neon`] for `M ≤ 4` rows, two at a time, and a runtime group stride: 32 bytes
/// (`I8Panel8x4`) or 64 (a panel of `I8Panel16x4`), the only two the entry points admit.
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
    debug_assert!(step == 4 * NR || step == 8 * NR);
    let nb = kp / QBLOCK;
    let mut f = [[vdupq_n_f32(0.0); 2]; M];
    for r in (0..M).step_by(2) {
        // SAFETY: rows r and r + 1 (if below M) are inside the caller's bounds.
        unsafe {
            let (x, s) = (xq.add(r * kp), xs.add(r * nb));
            match (r + 1 < M, step == 4 * NR) {
                (true, true) => [f[r], f[r + 1]] = panel_neon::<2, { 4 * NR }>(x, s, kp, w),
                (true, false) => [f[r], f[r + 1]] = panel_neon::<2, { 8 * NR }>(x, s, kp, w),
                (false, true) => [f[r]] = panel_neon::<1, { 4 * NR }>(x, s, kp, w),
                (false, false) => [f[r]] = panel_neon::<1, { 8 * NR }>(x, s, kp, w),
            }
        }
    }
    f
}

panel_gemms!(
    "neon", panel_neon_rows, crate::kernels::Isa::Neon,
    /// The int8 panel GEMM with plain NEON.
    gemm_i8_panel_neon / gemm_i8_panel_neon_impl,
    /// The four-panel int8 GEMM with plain NEON: each of `out`'s rows gets the four panels'
    /// outputs exactly as [`crate::kernels::scalar::gemm_i8_panel`] (then the epilogue)
    /// gives them.
    gemm_i8_panel4_neon / gemm_i8_panel4_neon_tile,
);
