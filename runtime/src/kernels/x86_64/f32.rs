//! The f32 kernels on x86_64: [`crate::kernels::f32_bodies`] on `__m256` (AVX2 + FMA) and
//! `__m512` (AVX-512F), each a `#[target_feature]` wrapper under a safe entry point that
//! checks the shapes. Only the AVX-512 row panels' masked last columns are written here.

use std::arch::x86_64::*;

use crate::kernels::f32_bodies as body;
use crate::kernels::{scalar, MR, NR};

type SumAvx2 = (__m256d, __m256d);

f32_entry! {
    /// f32 dot product with AVX2, in the scalar dot's exact order (see [`scalar::dot`]).
    pub fn dot_f32_avx2(a: &[f32], b: &[f32]) -> f32;
    features: "avx2";
    check: ();
    body: body::dot::<__m256>(a, b);
}

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

f32_entry! {
    /// Row vector times matrix with AVX2, each output summed as [`scalar::row_panel`] does.
    pub fn row_panel_f32_avx2(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]);
    features: "avx2,fma";
    check: crate::kernels::check_row_panel_args(a, b, stride, out.len());
    body: row_panel_avx2_from(a, b, stride, out, 0);
}

f32_entry! {
    /// Row vector times matrix with AVX-512, each output summed as [`scalar::row_panel`].
    pub fn row_panel_f32_avx512(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]);
    features: "avx512f,avx2,fma";
    check: crate::kernels::check_row_panel_args(a, b, stride, out.len());
    body: {
        let c = body::row_panel_run::<__m512, 4>(a, b, stride, out, 0);
        row_panel_avx2_from(a, b, stride, out, c)
    };
}

#[target_feature(enable = "avx2,fma")]
unsafe fn row_panel4_avx2<const M: usize>(
    a: [&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    // SAFETY: AVX2 and FMA are enabled here; the entry point checked the shapes.
    let c = unsafe { body::row_panel4_run::<__m256, M, 2>(&a, b, stride, out, w, 0) };
    if c < w {
        // The last columns row by row, as the one-row kernel does them.
        for (r, ar) in a.iter().enumerate().take(M) {
            // SAFETY: as above; row r of out is w floats.
            unsafe { row_panel_avx2_from(ar, b, stride, &mut out[r * w..(r + 1) * w], c) };
        }
    }
}

f32_entry! {
    /// Four row panels with AVX2, each output as [`scalar::row_panel`] sums it.
    pub fn row_panel4_f32_avx2(
        a: [&[f32]; 4],
        m: usize,
        b: &[f32],
        stride: usize,
        out: &mut [f32],
        w: usize,
    );
    features: "avx2,fma";
    check: crate::kernels::check_row_panel4_args(&a, m, b, stride, out, w);
    body: by_rows!(m, M => row_panel4_avx2::<M>(a, b, stride, out, w));
}

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

f32_entry! {
    /// Four row panels with AVX-512, each output as [`scalar::row_panel`] sums it.
    pub fn row_panel4_f32_avx512(
        a: [&[f32]; 4],
        m: usize,
        b: &[f32],
        stride: usize,
        out: &mut [f32],
        w: usize,
    );
    features: "avx512f,avx2,fma";
    check: crate::kernels::check_row_panel4_args(&a, m, b, stride, out, w);
    body: by_rows!(m, M => row_panel4_avx512::<M>(a, b, stride, out, w));
}

f32_entry! {
    /// The attention softmax with AVX2, bit for bit [`scalar::softmax_rows`].
    pub fn softmax_rows_avx2(x: &mut [f32], rows: usize, scale: f32);
    features: "avx2";
    check: crate::kernels::check_softmax_rows(x, rows);
    body: body::softmax_rows_grouped::<__m256, __m256, SumAvx2>(x, rows, scale);
}

f32_entry! {
    /// The attention softmax with AVX-512, bit for bit [`scalar::softmax_rows`].
    pub fn softmax_rows_avx512(x: &mut [f32], rows: usize, scale: f32);
    features: "avx512f,avx2";
    check: crate::kernels::check_softmax_rows(x, rows);
    body: body::softmax_rows_grouped::<__m512, __m256, __m512d>(x, rows, scale);
}

f32_entry! {
    /// LayerNorm over rows with AVX2, bit for bit [`scalar::layer_norm_rows`].
    pub fn layer_norm_rows_avx2(
        x: &mut [f32],
        residual: Option<&[f32]>,
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    );
    features: "avx2";
    check: crate::kernels::check_layer_norm_rows(x, residual, gamma, beta);
    body: body::layer_norm_rows_grouped::<__m256, SumAvx2>(x, residual, gamma, beta, eps);
}

f32_entry! {
    /// The int8 GEMM's epilogue with AVX2, bit for bit [`scalar::panel_epilogue`].
    pub fn panel_epilogue_avx2(
        acc: &mut [[f32; NR]; MR],
        m: usize,
        scales: &[f32; NR],
        bias: Option<&[f32; NR]>,
        gelu: bool,
    );
    features: "avx2";
    check: ();
    body: body::panel_epilogue::<__m256>(acc, m, scales, bias, gelu);
}
