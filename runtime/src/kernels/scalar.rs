//! Scalar f32 reference kernels.

use super::Panel;
use crate::model::config::Activation;

/// Dot product in the one order every tier follows, so that all tiers compute the same bits:
/// eight lanes, lane `l` summing `a[i]·b[i]` for `i ≡ l (mod 8)` over whole chunks of eight
/// (a multiply, then an add: no fused multiply-add), lanes combined as
/// `((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7))`, then the tail summed from zero and added.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    combine8(acc) + tail
}

/// The canonical combine of 8 lane sums: `(l0+l4 + l2+l6) + (l1+l5 + l3+l7)`, in that order,
/// which every SIMD tier's horizontal reduction follows.
#[inline(always)]
pub(super) fn combine8<T: Copy + std::ops::Add<Output = T>>(a: [T; 8]) -> T {
    let s = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (s[0] + s[2]) + (s[1] + s[3])
}

/// `out[c] = Σ_k a[k] · b[k·stride + c]` for every `c < out.len()`: a row vector times a
/// matrix, summed over `k` in order with one fused multiply-add per step (every tier keeps each
/// output's sum in this order and rounds once per step, so all compute the same bits; fused, the
/// SIMD tiers issue half the instructions of a multiply and an add). `b` must hold
/// `(a.len() - 1)·stride + out.len()` values.
pub fn row_panel(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has FMA.
        return unsafe { row_panel_fma(a, b, stride, out) };
    }
    row_panel_body(a, b, stride, out)
}

/// [`row_panel`] compiled with FMA: `f32::mul_add` is one instruction there and a libm call on
/// baseline x86_64 (the same bits either way: a fused multiply-add is exactly rounded).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn row_panel_fma(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]) {
    row_panel_body(a, b, stride, out)
}

#[inline(always)]
fn row_panel_body(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]) {
    let w = out.len();
    out.fill(0.0);
    for (k, &ak) in a.iter().enumerate() {
        for (o, &x) in out.iter_mut().zip(&b[k * stride..k * stride + w]) {
            *o = ak.mul_add(x, *o);
        }
    }
}

/// Eight rows as eight columns: `dst[dd·ld + i] = src[i][dd]` for `i < 8` and `dd < d` (the
/// attention's per-head transposes of keys and relative projections, eight rows at a time).
pub fn transpose8(src: [&[f32]; 8], d: usize, dst: &mut [f32], ld: usize) {
    transpose_rows(&src, d, dst, ld);
}

/// Rows as columns, `dst[dd·ld + i] = src[i][dd]` for `i < src.len()` and `dd < d`: the
/// reference of [`transpose8`], and its tails (fewer rows, or the last columns).
pub fn transpose_rows(src: &[&[f32]], d: usize, dst: &mut [f32], ld: usize) {
    for dd in 0..d {
        for (o, s) in dst[dd * ld..dd * ld + src.len()].iter_mut().zip(src) {
            *o = s[dd];
        }
    }
}

/// Up to four row panels over one matrix: `out[r·w + c] = Σ_k a[r][k] · b[k·stride + c]` for
/// rows `r < m` (each `a[r]` of the same length) and columns `c < w`; each output summed over
/// `k` in order, as [`row_panel`] sums it. The SIMD tiers load each `b` value once for all rows.
pub fn row_panel4(a: [&[f32]; 4], m: usize, b: &[f32], stride: usize, out: &mut [f32], w: usize) {
    for (r, o) in out[..m * w].chunks_exact_mut(w.max(1)).enumerate() {
        row_panel(a[r], b, stride, o);
    }
}

/// [`row_panel`] for the columns `from..` only, column by column: the tails the SIMD tiers
/// leave. Each column is summed over `k` in order, as in the full kernel.
pub fn row_panel_from(a: &[f32], b: &[f32], stride: usize, out: &mut [f32], from: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has FMA.
        return unsafe { row_panel_from_fma(a, b, stride, out, from) };
    }
    row_panel_from_body(a, b, stride, out, from)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn row_panel_from_fma(a: &[f32], b: &[f32], stride: usize, out: &mut [f32], from: usize) {
    row_panel_from_body(a, b, stride, out, from)
}

#[inline(always)]
fn row_panel_from_body(a: &[f32], b: &[f32], stride: usize, out: &mut [f32], from: usize) {
    for (c, o) in out.iter_mut().enumerate().skip(from) {
        let mut v = 0f32;
        for (k, &ak) in a.iter().enumerate() {
            v = ak.mul_add(b[k * stride + c], v);
        }
        *o = v;
    }
}

/// `y += alpha * x`, element by element: a multiply, then an add (no fused multiply-add; the
/// embedding sums, with `alpha` 1).
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// A sum in f64 over 8 lanes in [`dot`]'s order (lane l takes elements 8i + l; the tail is
/// added last): the order every tier's LayerNorm and softmax reproduce.
#[inline(always)]
fn sum8_f64(x: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += f(c[l]);
        }
    }
    let tail = chunks.remainder().iter().fold(0f64, |t, &v| t + f(v));
    combine8(acc) + tail
}

/// LayerNorm over one row, in place. Mean and variance are accumulated in f64 (8 lanes in
/// [`dot`]'s order, so that the SIMD tiers reproduce it bit for bit); each value is normalized
/// in f64, rounded to f32, then scaled and shifted in f32.
pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = x.len() as f64;
    let mean = sum8_f64(x, |v| v as f64) / n;
    let var = sum8_f64(x, |v| (v as f64 - mean) * (v as f64 - mean)) / n;
    let rstd = 1.0 / (var + eps as f64).sqrt();
    for ((v, g), b) in x.iter_mut().zip(gamma).zip(beta) {
        *v = ((*v as f64 - mean) * rstd) as f32 * g + b;
    }
}

/// LayerNorm of each row of `x` (`gamma.len()` values each) after adding the same row of
/// `residual` when given (an f32 add), in place.
pub fn layer_norm_rows(
    x: &mut [f32],
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    super::check_layer_norm_rows(x, residual, gamma, beta);
    rows_with_residual(x, residual, gamma.len(), |row| {
        layer_norm(row, gamma, beta, eps)
    });
}

/// Each row of `n` of `x`, plus the same row of `residual` when given, then `f` on it.
#[inline(always)]
pub(crate) fn rows_with_residual(
    x: &mut [f32],
    residual: Option<&[f32]>,
    n: usize,
    mut f: impl FnMut(&mut [f32]),
) {
    for (i, row) in x.chunks_exact_mut(n).enumerate() {
        if let Some(res) = residual {
            for (v, r) in row.iter_mut().zip(&res[i * n..(i + 1) * n]) {
                *v += r;
            }
        }
        f(row);
    }
}

/// Softmax over one row, in place.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// Applies an activation in place.
pub fn activate(act: Activation, x: &mut [f32]) {
    match act {
        Activation::Gelu => {
            for v in x {
                *v = 0.5 * *v * (1.0 + libm::erff(*v * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
        Activation::GeluTanh => {
            const C: f32 = 0.797_884_6; // sqrt(2/pi)
            for v in x {
                let u = *v;
                *v = 0.5 * u * (1.0 + (C * (u + 0.044715 * u * u * u)).tanh());
            }
        }
        Activation::Relu => {
            for v in x {
                *v = v.max(0.0);
            }
        }
        Activation::Tanh => {
            for v in x {
                *v = v.tanh();
            }
        }
    }
}

/// Rows of an int8 GEMM computed by one kernel call.
pub const MR: usize = 4;
/// Outputs in one packed panel (see `Layout::I8Panel8x4`).
pub const NR: usize = 8;
/// Inputs sharing one activation scale. Per-block scales (not one per row) keep outliers in one
/// part of a row from flattening the rest: the difference between 99.2% and 99.9% argmax
/// agreement on the real model.
pub const QBLOCK: usize = 32;

/// Per-block sums of a packed panel's weights, `[kp / QBLOCK][NR]`: what a kernel that feeds
/// activations as unsigned bytes (x + 128) subtracts (128 · sum) to get back Σ x·w. Stored in
/// the file next to each packed weight (`<name>_bsum`).
pub fn panel_block_sums(panel: &[i8], kp: usize) -> Vec<i32> {
    let mut out = vec![0i32; kp / QBLOCK * NR];
    for g in 0..kp / 4 {
        let b = g * 4 / QBLOCK;
        for j in 0..NR {
            for i in 0..4 {
                out[b * NR + j] += panel[g * 4 * NR + j * 4 + i] as i32;
            }
        }
    }
    out
}

/// `acc[r][j] = Σ_b xs[r·nb + b] · Σ_{k in block b} xq[r·kp + k] · panel[j, k]` for the first
/// `m ≤ MR` rows of `xq` (each `kp` bytes, a multiple of [`QBLOCK`]; `nb = kp / QBLOCK` scales
/// per row) and the 8 outputs of one packed [`Panel`]. Integer sums are exact; the float steps
/// (one fused multiply-add per block) are the same in every tier, so every tier computes the
/// same bits. The panel's block sums are for kernels that need them; this one does not.
pub fn gemm_i8_panel(
    xq: &[i8],
    xs: &[f32],
    m: usize,
    kp: usize,
    panel: Panel<'_>,
    acc: &mut [[f32; NR]; MR],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has FMA.
        return unsafe { gemm_i8_panel_fma(xq, xs, m, kp, panel, acc) };
    }
    gemm_i8_panel_body(xq, xs, m, kp, panel, acc)
}

/// [`gemm_i8_panel`] compiled with FMA (see [`row_panel_fma`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn gemm_i8_panel_fma(
    xq: &[i8],
    xs: &[f32],
    m: usize,
    kp: usize,
    panel: Panel<'_>,
    acc: &mut [[f32; NR]; MR],
) {
    gemm_i8_panel_body(xq, xs, m, kp, panel, acc)
}

#[inline(always)]
fn gemm_i8_panel_body(
    xq: &[i8],
    xs: &[f32],
    m: usize,
    kp: usize,
    panel: Panel<'_>,
    acc: &mut [[f32; NR]; MR],
) {
    assert!(
        panel.layout == super::WeightLayout::Group4,
        "int8 GEMM: weights in the wrong layout"
    );
    let nb = kp / QBLOCK;
    let step = 4 * NR * panel.interleave;
    for (r, out) in acc.iter_mut().enumerate().take(m) {
        let x = &xq[r * kp..(r + 1) * kp];
        *out = [0.0; NR];
        for b in 0..nb {
            let mut block = [0i32; NR];
            for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
                let xk = [
                    x[g * 4] as i32,
                    x[g * 4 + 1] as i32,
                    x[g * 4 + 2] as i32,
                    x[g * 4 + 3] as i32,
                ];
                let group = &panel.w[g * step..g * step + 4 * NR];
                for (o, w) in block.iter_mut().zip(group.chunks_exact(4)) {
                    *o += xk[0] * w[0] as i32
                        + xk[1] * w[1] as i32
                        + xk[2] * w[2] as i32
                        + xk[3] * w[3] as i32;
                }
            }
            let s = xs[r * nb + b];
            // One fused multiply-add, as every tier's kernel does it (a separate multiply and
            // add cost the VNNI kernel ~2% for no measured fidelity: 1271/1277 either way).
            for (o, v) in out.iter_mut().zip(block) {
                *o = (v as f32).mul_add(s, *o);
            }
        }
    }
}

/// Symmetric int8 quantization with one scale per row: `q = round(x / s)` in [-127, 127],
/// `s = max|x| / 127` (weights, embeddings). Keeping ±127 (never -128) is what lets the AVX2
/// kernel use `maddubs` without saturating.
pub fn quantize_rows(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    for r in 0..rows {
        let xr = &x[r * k..(r + 1) * k];
        let qr = &mut q[r * kp..(r + 1) * kp];
        scales[r] = quantize_span(xr, &mut qr[..k]);
        qr[k..].fill(0);
    }
}

/// Symmetric int8 quantization of activations with one scale per block of [`QBLOCK`] inputs:
/// `rows` rows of `k` floats into rows of `kp` bytes (`kp` a multiple of `QBLOCK`, zero
/// padded) and `kp / QBLOCK` scales per row.
pub fn quantize_blocks(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    quantize_blocks_with(x, rows, k, kp, q, scales, quantize_span);
}

/// The loop of [`quantize_blocks`], with `full` quantizing each whole block of [`QBLOCK`]
/// inputs (a SIMD tier's block kernel) and [`quantize_span`] the partial ones.
#[inline(always)]
pub(crate) fn quantize_blocks_with(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
    full: impl Fn(&[f32], &mut [i8]) -> f32,
) {
    let nb = kp / QBLOCK;
    for r in 0..rows {
        let xr = &x[r * k..(r + 1) * k];
        let qr = &mut q[r * kp..(r + 1) * kp];
        qr[k..].fill(0);
        for b in 0..nb {
            let span = (b * QBLOCK).min(k)..((b + 1) * QBLOCK).min(k);
            let (xs, qs) = (&xr[span.clone()], &mut qr[span]);
            scales[r * nb + b] = if xs.len() == QBLOCK {
                full(xs, qs)
            } else {
                quantize_span(xs, qs)
            };
        }
    }
}

/// One block's scale and quantized values (shared with the SIMD tiers for partial blocks).
pub(crate) fn quantize_span(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |a, &v| a.max(v.abs()));
    let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
    let inv = 1.0 / scale;
    // Round half to even by adding and subtracting 1.5·2^23: plain f32 arithmetic, so the loop
    // vectorizes (`f32::round` is a libm call on baseline x86_64).
    const MAGIC: f32 = 12_582_912.0;
    for (o, &v) in q.iter_mut().zip(x) {
        let r = (v * inv).clamp(-127.0, 127.0);
        *o = ((r + MAGIC) - MAGIC) as i8;
    }
    scale
}

/// Constants of [`exp_fast`]: the clamp, log2(e), ln 2 split in two (Cody-Waite), and the
/// Cephes `expf` polynomial.
pub(crate) mod exp_consts {
    pub const LO: f32 = -87.336_55;
    pub const HI: f32 = 88.0;
    pub const LOG2E: f32 = std::f32::consts::LOG2_E;
    pub const LN2_HI: f32 = 0.693_359_4;
    pub const LN2_LO: f32 = -2.121_944_4e-4;
    pub const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_2e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ];
    /// 1.5·2^23: adding and subtracting it rounds half to even.
    pub const ROUND: f32 = 12_582_912.0;
}

/// e^x in f32 from basic operations only (no fused multiply-add, no libm), so that every SIMD
/// tier computes the same bits lane by lane: x clamped to [-87.34, 88], split as n·ln 2 + r,
/// a degree-7 polynomial for e^r, times 2^n built in the exponent bits. Within 2 ulp of `expf`
/// on the clamped range (tested).
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    use exp_consts::*;
    // Not f32::clamp: a NaN must become LO here, as the SIMD max instructions make it.
    #[allow(clippy::manual_clamp)]
    let x = x.max(LO).min(HI);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI;
    let r = r - n * LN2_LO;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + c;
    }
    let y = (p * (r * r) + r) + 1.0;
    let pow2 = f32::from_bits(((n as i32 + 127) as u32) << 23);
    y * pow2
}

/// The attention softmax, in place: max, then e^(x - max) with [`exp_fast`], summed in f64 over
/// 8 lanes in [`dot`]'s order (tail last), then a multiply by 1 / sum. The SIMD tiers reproduce
/// it bit for bit. (The f64 sum is measured, not assumed: an f32 sum moved 4 of the 1,277 real
/// int8 rows across the decision boundary.)
pub fn softmax_fast(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in x.iter_mut() {
        *v = exp_fast(*v - max);
    }
    let inv = (1.0 / sum8_f64(x, |v| v as f64)) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// The attention softmax over `rows` rows of `x` (`x.len() / rows` scores each): every score
/// multiplied by `scale` (rounded and stored as f32), then [`softmax_fast`] on each row.
pub fn softmax_rows(x: &mut [f32], rows: usize, scale: f32) {
    super::check_softmax_rows(x, rows);
    rows_scaled(x, rows, scale, softmax_fast);
}

/// Each of the `rows` rows of `x` multiplied by `scale`, then `f` on it.
#[inline(always)]
pub(crate) fn rows_scaled(x: &mut [f32], rows: usize, scale: f32, mut f: impl FnMut(&mut [f32])) {
    if x.is_empty() {
        return;
    }
    for row in x.chunks_exact_mut(x.len() / rows) {
        for v in row.iter_mut() {
            *v *= scale;
        }
        f(row);
    }
}

/// Coefficients of [`erf_fast`]'s numerator (in x, times odd powers) and denominator, highest
/// power first; the SIMD tiers read them from here.
pub(crate) mod erf_consts {
    pub const P: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906e-4,
        -2.954_6e-3,
        -1.609_603_3e-2,
    ];
    pub const Q: [f32; 5] = [
        -1.456_607_2e-5,
        -2.133_740_6e-4,
        -1.682_827e-3,
        -7.373_329e-3,
        -1.426_474e-2,
    ];
}

/// erf in f32 as a clamped odd rational function (the form Eigen uses for float): branch-free,
/// so loops over it vectorize; within 5e-7 of the exact erf (tested).
#[inline]
pub fn erf_fast(x: f32) -> f32 {
    use erf_consts::{P, Q};
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * x2 + c;
    }
    let mut q = Q[0];
    for c in &Q[1..] {
        q = q * x2 + c;
    }
    x * p / q
}

/// The int8 GEMM's epilogue on a whole panel, in place: rows `..m` of `acc` times the 8 weight
/// scales, plus the bias, then GELU ([`gelu_fast`]) if asked. The SIMD tiers reproduce it bit
/// for bit.
pub fn panel_epilogue(
    acc: &mut [[f32; NR]; MR],
    m: usize,
    scales: &[f32; NR],
    bias: Option<&[f32; NR]>,
    gelu: bool,
) {
    for y in acc.iter_mut().take(m) {
        for (yj, wj) in y.iter_mut().zip(scales) {
            *yj *= wj;
        }
        if let Some(b) = bias {
            for (yj, bj) in y.iter_mut().zip(b) {
                *yj += bj;
            }
        }
        if gelu {
            gelu_fast(y);
        }
    }
}

/// Exact-form GELU with [`erf_fast`], for the fast paths.
pub fn gelu_fast(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf_fast(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_fast_is_close_to_erf() {
        let mut worst = 0f32;
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max((erf_fast(x) - libm::erff(x)).abs());
        }
        assert!(worst < 5e-7, "max |erf_fast - erf| = {worst:e}");
    }

    #[test]
    fn exp_fast_is_within_two_ulp_of_expf() {
        let ulp = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).abs();
        let mut worst = 0;
        for i in -873_365..=880_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max(ulp(exp_fast(x), libm::expf(x)));
        }
        assert!(worst <= 2, "exp_fast is {worst} ulp from expf");
        assert_eq!(exp_fast(0.0), 1.0);
        assert!(exp_fast(-1e4) > 0.0 && exp_fast(-1e4) < 1.2e-38);
        assert!(exp_fast(f32::NEG_INFINITY) >= 0.0);
    }

    #[test]
    fn softmax_fast_is_close_to_the_f64_softmax() {
        for n in [1usize, 2, 7, 8, 9, 31, 128, 255] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.37)
                .collect();
            let (mut a, mut b) = (x.clone(), x);
            softmax_fast(&mut a);
            softmax(&mut b);
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() <= 1e-6 + 1e-5 * q, "n={n}: {p} vs {q}");
            }
        }
        let mut empty: [f32; 0] = [];
        softmax_fast(&mut empty);
    }

    #[test]
    fn quantized_gemm_matches_float_product() {
        let (m, k, kp) = (3, 40, 64);
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let nb = kp / QBLOCK;
        let mut q = vec![0i8; m * kp];
        let mut s = vec![0f32; m * nb];
        quantize_blocks(&x, m, k, kp, &mut q, &mut s);
        assert!(q.iter().all(|&v| v != -128));
        // One panel: output j has weight (j + 1) at input 4j + 1, else 0.
        let mut panel = vec![0i8; kp * NR];
        for j in 0..NR {
            let c = 4 * j + 1;
            panel[(c / 4) * 4 * NR + j * 4 + c % 4] = (j + 1) as i8;
        }
        let mut acc = [[0.0; NR]; MR];
        let sums = panel_block_sums(&panel, kp);
        let p = Panel {
            w: &panel,
            sums: &sums,
            interleave: 1,
            layout: super::super::WeightLayout::Group4,
        };
        gemm_i8_panel(&q, &s, m, kp, p, &mut acc);
        for (r, acc_r) in acc.iter().enumerate().take(m) {
            for (j, &got) in acc_r.iter().enumerate() {
                let c = 4 * j + 1;
                let want = x[r * k + c] * (j + 1) as f32;
                let tol = s[r * nb + c / QBLOCK] * (j + 1) as f32;
                assert!((want - got).abs() <= tol, "r{r} j{j}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn dot_matches_naive_on_all_tails() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - naive).abs() < 1e-5, "n={n}");
        }
    }

    #[test]
    fn layer_norm_and_softmax() {
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        layer_norm(&mut x, &[1.0; 4], &[0.5; 4], 0.0);
        let mean: f32 = x.iter().sum::<f32>() / 4.0;
        assert!((mean - 0.5).abs() < 1e-6);
        assert!((x[3] - x[0] - 2.0 * 1.5 / 1.118034).abs() < 1e-5);
        let mut s = vec![1.0, 2.0, 3.0, f32::MIN];
        softmax(&mut s);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(s[3], 0.0);
        assert!(s[2] > s[1] && s[1] > s[0]);
    }

    #[test]
    fn gelu_is_exact_erf_form() {
        let mut x = vec![-3.0f32, -1.0, 0.0, 0.5, 2.0];
        activate(Activation::Gelu, &mut x);
        // Reference values of x * Phi(x).
        let want = [-0.004049695, -0.15865526, 0.0, 0.34573123, 1.9544997];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
