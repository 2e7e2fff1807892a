//! The f32 kernels on x86_64: [`crate::kernels::f32_bodies`] on `__m256` (AVX2 + FMA) and
//! `__m512` (AVX-512F). Only the order of the row panels' column blocks, and the AVX-512 row
//! panels' masked last columns, are written here.

use std::arch::x86_64::*;

use crate::kernels::f32_bodies as body;
use crate::kernels::{scalar, MR, NR};

type SumAvx2 = (__m256d, __m256d);

dot_entry!(
    /// f32 dot product with AVX2, in the scalar dot's exact order (see [`scalar::dot`]).
    dot_f32_avx2, "avx2", __m256
);
softmax_rows_entry!(
    /// The attention softmax with AVX2, bit for bit [`scalar::softmax_rows`].
    softmax_rows_avx2, "avx2", __m256, __m256, SumAvx2
);
softmax_rows_entry!(
    /// The attention softmax with AVX-512, bit for bit [`scalar::softmax_rows`]; the last 8
    /// whole scores of a row with AVX2.
    softmax_rows_avx512, "avx512f,avx2", __m512, __m256, __m512d
);
layer_norm_rows_entry!(
    /// LayerNorm over rows with AVX2, bit for bit [`scalar::layer_norm_rows`].
    layer_norm_rows_avx2, "avx2", __m256, SumAvx2
);
panel_epilogue_entry!(
    /// The int8 GEMM's epilogue with AVX2, bit for bit [`scalar::panel_epilogue`].
    panel_epilogue_avx2, "avx2", __m256
);
row_panel_entry!(
    /// Row vector times matrix with AVX2, each output summed as [`scalar::row_panel`] does.
    row_panel_f32_avx2, "avx2,fma", row_panel_avx2_from
);
row_panel_entry!(
    /// Row vector times matrix with AVX-512, each output summed as [`scalar::row_panel`].
    row_panel_f32_avx512, "avx512f,avx2,fma", row_panel_avx512_from
);
row_panel4_entry!(
    /// Four row panels with AVX2, each output as [`scalar::row_panel`] sums it.
    row_panel4_f32_avx2, "avx2,fma", row_panel4_avx2
);
row_panel4_entry!(
    /// Four row panels with AVX-512, each output as [`scalar::row_panel`] sums it.
    row_panel4_f32_avx512, "avx512f,avx2,fma", row_panel4_avx512
);

/// The columns `c..` of a row panel with AVX2: 32, then 8 at a time, the rest in scalar code.
/// `b` holds `(a.len() - 1)·stride + out.len()` floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn row_panel_avx2_from(a: &[f32], b: &[f32], stride: usize, out: &mut [f32], c: usize) {
    // SAFETY: AVX2 and FMA are enabled here; the caller's bound on b.
    let c = unsafe {
        let c = body::row_panel_run::<__m256, 4>(a, b, stride, out, c);
        body::row_panel_run::<__m256, 1>(a, b, stride, out, c)
    };
    scalar::row_panel_from(a, b, stride, out, c);
}

/// The columns `c..` of a row panel with AVX-512: 64 at a time, then as AVX2 does them.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn row_panel_avx512_from(a: &[f32], b: &[f32], stride: usize, out: &mut [f32], c: usize) {
    // SAFETY: AVX-512F, AVX2 and FMA are enabled here; the caller's bound on b.
    unsafe {
        let c = body::row_panel_run::<__m512, 4>(a, b, stride, out, c);
        row_panel_avx2_from(a, b, stride, out, c)
    }
}

/// `M` row panels with AVX2: 16 columns at a time for all rows, then each row's last columns
/// as the one-row kernel does them.
#[target_feature(enable = "avx2,fma")]
unsafe fn row_panel4_avx2<const M: usize>(
    a: [&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    // SAFETY: AVX2 and FMA are enabled here (`row_panel_avx2_from` runs on them); the entry
    // point checked the shapes.
    unsafe {
        let c = body::row_panel4_run::<__m256, M, 2>(&a, b, stride, out, w, 0);
        body::row_panel4_rest::<M>(&a, b, stride, out, (w, c), row_panel_avx2_from);
    }
}

/// `M` row panels with AVX-512: 64, then 32 columns at a time, then the last ones masked.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn row_panel4_avx512<const M: usize>(
    a: [&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    // SAFETY: AVX-512F and FMA are enabled here; the entry point checked the shapes.
    let mut c = unsafe {
        let c = body::row_panel4_run::<__m512, M, 4>(&a, b, stride, out, w, 0);
        body::row_panel4_run::<__m512, M, 2>(&a, b, stride, out, w, c)
    };
    // The last columns, up to 16 at a time, with masked loads and stores: nothing outside the
    // columns is read or written, and each column is summed in the same order.
    let kn = a[0].len();
    let pa = a.map(|r| r.as_ptr());
    let (pb, po) = (b.as_ptr(), out.as_mut_ptr());
    while c < w {
        let cols = (w - c).min(16);
        let mask: __mmask16 = ((1u32 << cols) - 1) as __mmask16;
        let mut acc = [_mm512_setzero_ps(); M];
        for k in 0..kn {
            // SAFETY: masked lanes are not read; the others lie inside b (checked).
            let y = unsafe { _mm512_maskz_loadu_ps(mask, pb.add(k * stride + c)) };
            for (accr, ar) in acc.iter_mut().zip(&pa) {
                // SAFETY: rows r < M hold kn values (checked by the entry point).
                let x = _mm512_set1_ps(unsafe { *ar.add(k) });
                *accr = _mm512_fmadd_ps(x, y, *accr);
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            // SAFETY: masked lanes are not written; the others lie inside row r of out.
            unsafe { _mm512_mask_storeu_ps(po.add(r * w + c), mask, *accr) };
        }
        c += cols;
    }
}
