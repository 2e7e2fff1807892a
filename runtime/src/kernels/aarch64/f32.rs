//! The f32 kernels on aarch64. Softmax, LayerNorm, the int8 epilogue and the dot product are
//! [`crate::kernels::f32_bodies`] on 8 NEON lanes (a [`Pair`] of `float32x4_t`); the row
//! panels ([`row_panel`]: register tiles with FMLA by element) and the eight-row transpose
//! ([`transpose`]) are written for NEON here.

use std::arch::aarch64::*;

use crate::kernels::lanes::Pair;

mod epilogue;
mod row_panel;
mod transpose;

pub(in crate::kernels) use epilogue::panel_epilogue_neon;
pub(in crate::kernels) use transpose::transpose8_neon;

type Neon8 = Pair<float32x4_t>;
type SumNeon = [float64x2_t; 4];

dot_entry!(
    /// f32 dot product with NEON, in the scalar dot's exact order (see [`scalar::dot`]).
    dot_f32_neon, "neon", Neon8
);
softmax_rows_entry!(
    /// The attention softmax with NEON, bit for bit [`scalar::softmax_rows`].
    softmax_rows_neon, "neon", Neon8, Neon8, SumNeon
);
layer_norm_rows_entry!(
    /// LayerNorm over rows with NEON, bit for bit [`scalar::layer_norm_rows`].
    layer_norm_rows_neon, "neon", Neon8, SumNeon
);
row_panel_entry!(
    /// Row vector times matrix with NEON, each output summed as [`scalar::row_panel`] does.
    row_panel_f32_neon, "neon", row_panel_neon_from
);
row_panel4_entry!(
    /// Four row panels with NEON, each output as [`scalar::row_panel`] sums it.
    row_panel4_f32_neon, "neon", row_panel4_neon
);

/// One row panel from column `c` (0: the entry passes no other) with NEON. `b` holds
/// `(a.len() - 1)·stride + out.len()` floats (the entry checked).
#[target_feature(enable = "neon")]
unsafe fn row_panel_neon_from(a: &[f32], b: &[f32], stride: usize, out: &mut [f32], c: usize) {
    debug_assert_eq!(c, 0);
    let w = out.len();
    // SAFETY: NEON is enabled here; one row of `a.len()` floats, the entry's bound on b, one
    // output row of w.
    unsafe { row_panel::rows::<1>(&[a; 4], b, stride, out, w, w) }
}

/// `M` row panels with NEON; output rows `w` apart.
#[target_feature(enable = "neon")]
unsafe fn row_panel4_neon<const M: usize>(
    a: [&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    // SAFETY: NEON is enabled here; the entry point checked the shapes (rows of one length,
    // b's bound, out holds M·w).
    unsafe { row_panel::rows::<M>(&a, b, stride, out, w, w) }
}

/// Four floats from `p + 4·I` with one `ldr q`. Not `vld1q_f32`: LLVM pairs adjacent loads
/// into `ldp q`, which llvm-mca's Cortex-A55 model issues once per 6 cycles (`ldr q`: once per
/// cycle; the row panels' 4 × 16 tile's loop takes 62 cycles there instead of 89, the same 32
/// on the Neoverse-N1/N2 models), and folds loads from a constant table back into constants.
///
/// # Safety
/// 4 readable floats at `p + 4·I`.
#[inline(always)]
pub(super) unsafe fn ldr_q<const I: usize>(p: *const f32) -> float32x4_t {
    let v: float32x4_t;
    // SAFETY: the caller's bound; a plain load, no other effect.
    unsafe {
        std::arch::asm!(
            "ldr {v:q}, [{p}, #{off}]",
            v = out(vreg) v,
            p = in(reg) p,
            off = const 16 * I,
            options(nostack, readonly, preserves_flags),
        )
    };
    v
}
