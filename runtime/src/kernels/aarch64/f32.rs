//! The f32 kernels on aarch64: [`crate::kernels::f32_bodies`] on 8 NEON lanes (a [`Pair`] of
//! `float32x4_t`). Only the order of the row panels' column blocks is written here.

use std::arch::aarch64::*;

use crate::kernels::f32_bodies as body;
use crate::kernels::lanes::Pair;
use crate::kernels::{scalar, MR, NR};

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
panel_epilogue_entry!(
    /// The int8 GEMM's epilogue with NEON, bit for bit [`scalar::panel_epilogue`].
    panel_epilogue_neon, "neon", Neon8
);
row_panel_entry!(
    /// Row vector times matrix with NEON, each output summed as [`scalar::row_panel`] does.
    row_panel_f32_neon, "neon", row_panel_neon_from
);
row_panel4_entry!(
    /// Four row panels with NEON, each output as [`scalar::row_panel`] sums it.
    row_panel4_f32_neon, "neon", row_panel4_neon
);

/// The columns `c..` of a row panel with NEON: 16 at a time, the rest in scalar code. `b`
/// holds `(a.len() - 1)·stride + out.len()` floats.
#[target_feature(enable = "neon")]
unsafe fn row_panel_neon_from(a: &[f32], b: &[f32], stride: usize, out: &mut [f32], c: usize) {
    // SAFETY: NEON is enabled here; the caller's bound on b.
    let c = unsafe { body::row_panel_run::<Neon8, 2>(a, b, stride, out, c) };
    scalar::row_panel_from(a, b, stride, out, c);
}

/// `M` row panels with NEON: 16 columns at a time for all rows, then each row's last columns
/// as the one-row kernel does them.
#[target_feature(enable = "neon")]
unsafe fn row_panel4_neon<const M: usize>(
    a: [&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    // SAFETY: NEON is enabled here (`row_panel_neon_from` runs on them); the entry
    // point checked the shapes.
    unsafe {
        let c = body::row_panel4_run::<Neon8, M, 2>(&a, b, stride, out, w, 0);
        body::row_panel4_rest::<M>(&a, b, stride, out, (w, c), row_panel_neon_from);
    }
}
