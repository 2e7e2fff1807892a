//! The f32 kernels on aarch64: [`crate::kernels::f32_bodies`] on 8 NEON lanes (a [`Pair`] of
//! `float32x4_t`), each a `#[target_feature]` wrapper under a safe entry point that checks
//! the shapes.

use std::arch::aarch64::*;

use crate::kernels::f32_bodies as body;
use crate::kernels::lanes::Pair;
use crate::kernels::{scalar, MR, NR};

type Neon8 = Pair<float32x4_t>;
type SumNeon = [float64x2_t; 4];

f32_entry! {
    /// f32 dot product with NEON, in the scalar dot's exact order (see [`scalar::dot`]).
    pub fn dot_f32_neon(a: &[f32], b: &[f32]) -> f32;
    features: "neon";
    check: ();
    body: body::dot::<Neon8>(a, b);
}

/// The columns `c..` of a row panel with NEON: 16 at a time, the rest in scalar code. `b`
/// holds `(a.len() - 1)·stride + out.len()` floats.
#[target_feature(enable = "neon")]
unsafe fn row_panel_neon_from(a: &[f32], b: &[f32], stride: usize, out: &mut [f32], c: usize) {
    // SAFETY: NEON is enabled here; the caller's bound on b.
    let c = unsafe { body::row_panel_run::<Neon8, 2>(a, b, stride, out, c) };
    scalar::row_panel_from(a, b, stride, out, c);
}

f32_entry! {
    /// Row vector times matrix with NEON, each output summed as [`scalar::row_panel`] does.
    pub fn row_panel_f32_neon(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]);
    features: "neon";
    check: crate::kernels::check_row_panel_args(a, b, stride, out.len());
    body: row_panel_neon_from(a, b, stride, out, 0);
}

#[target_feature(enable = "neon")]
unsafe fn row_panel4_neon<const M: usize>(
    a: [&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    // SAFETY: NEON is enabled here; the entry point checked the shapes.
    let c = unsafe { body::row_panel4_run::<Neon8, M, 2>(&a, b, stride, out, w, 0) };
    if c < w {
        // The last columns row by row, as the one-row kernel does them.
        for (r, ar) in a.iter().enumerate().take(M) {
            // SAFETY: as above; row r of out is w floats.
            unsafe { row_panel_neon_from(ar, b, stride, &mut out[r * w..(r + 1) * w], c) };
        }
    }
}

f32_entry! {
    /// Four row panels with NEON, each output as [`scalar::row_panel`] sums it.
    pub fn row_panel4_f32_neon(
        a: [&[f32]; 4],
        m: usize,
        b: &[f32],
        stride: usize,
        out: &mut [f32],
        w: usize,
    );
    features: "neon";
    check: crate::kernels::check_row_panel4_args(&a, m, b, stride, out, w);
    body: by_rows!(m, M => row_panel4_neon::<M>(a, b, stride, out, w));
}

f32_entry! {
    /// The attention softmax with NEON, bit for bit [`scalar::softmax_rows`].
    pub fn softmax_rows_neon(x: &mut [f32], rows: usize, scale: f32);
    features: "neon";
    check: crate::kernels::check_softmax_rows(x, rows);
    body: body::softmax_rows_grouped::<Neon8, Neon8, SumNeon>(x, rows, scale);
}

f32_entry! {
    /// LayerNorm over rows with NEON, bit for bit [`scalar::layer_norm_rows`].
    pub fn layer_norm_rows_neon(
        x: &mut [f32],
        residual: Option<&[f32]>,
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    );
    features: "neon";
    check: crate::kernels::check_layer_norm_rows(x, residual, gamma, beta);
    body: body::layer_norm_rows_grouped::<Neon8, SumNeon>(x, residual, gamma, beta, eps);
}

f32_entry! {
    /// The int8 GEMM's epilogue with NEON, bit for bit [`scalar::panel_epilogue`].
    pub fn panel_epilogue_neon(
        acc: &mut [[f32; NR]; MR],
        m: usize,
        scales: &[f32; NR],
        bias: Option<&[f32; NR]>,
        gelu: bool,
    );
    features: "neon";
    check: ();
    body: body::panel_epilogue::<Neon8>(acc, m, scales, bias, gelu);
}
