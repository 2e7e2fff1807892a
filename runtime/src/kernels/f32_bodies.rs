//! The f32 kernels, each written once over a lane type ([`F32Lanes`]) and instantiated by the
//! tiers' `#[target_feature]` wrappers. Each body follows its scalar reference operation for
//! operation, in the same order, and keeps every sum in the reference's order, so every tier
//! computes the scalar tier's bits. All are `#[inline(always)]`: they must melt into the
//! wrapper, whose target features make the lane methods single instructions. No closures
//! here: a closure would not inherit those features.
//!
//! # Safety
//! Every function here is `unsafe` with one contract: the CPU has the lane type's features,
//! and the pointer arguments cover what the doc says (the wrappers check the slices first).

use super::lanes::{F32Lanes, F64x8, NormF64x8, SumF64x8};
use super::scalar::{combine8, erf_consts, exp_consts, exp_fast};
use super::{MR, NR};

/// A tier's safe entry point for a body of this module: checks the shapes (`check`), then
/// runs `body` in a function with the tier's target `features`. The tier modules are private,
/// so the entry point is reached only through a [`super::Kernels`] table, built after the
/// features were detected.
macro_rules! f32_entry {
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;
     features: $features:literal; $(check: $check:expr;)? body: $body:expr $(;)?) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            $($check;)?
            #[target_feature(enable = $features)]
            unsafe fn run($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: the features are enabled here; the shapes were checked.
                unsafe { $body }
            }
            // SAFETY: the features are the table's invariant.
            unsafe { run($($arg),*) }
        }
    };
}

/// The entry points of the kernels whose tiers differ only in their lane types: each a
/// [`f32_entry!`] with the kernel's signature and shape check, so that a tier names only its
/// features and lanes.
macro_rules! dot_entry {
    ($(#[$doc:meta])* $name:ident, $features:literal, $V:ty) => {
        f32_entry! {
            $(#[$doc])*
            pub fn $name(a: &[f32], b: &[f32]) -> f32;
            features: $features;
            body: crate::kernels::f32_bodies::dot::<$V>(a, b);
        }
    };
}

/// See [`dot_entry!`].
macro_rules! softmax_rows_entry {
    ($(#[$doc:meta])* $name:ident, $features:literal, $V:ty, $E:ty, $S:ty) => {
        f32_entry! {
            $(#[$doc])*
            pub fn $name(x: &mut [f32], rows: usize, scale: f32);
            features: $features;
            check: crate::kernels::check_softmax_rows(x, rows);
            body: crate::kernels::f32_bodies::softmax_rows_grouped::<$V, $E, $S>(x, rows, scale);
        }
    };
}

/// See [`dot_entry!`].
macro_rules! layer_norm_rows_entry {
    ($(#[$doc:meta])* $name:ident, $features:literal, $V:ty, $S:ty) => {
        f32_entry! {
            $(#[$doc])*
            pub fn $name(
                x: &mut [f32],
                residual: Option<&[f32]>,
                gamma: &[f32],
                beta: &[f32],
                eps: f32,
            );
            features: $features;
            check: crate::kernels::check_layer_norm_rows(x, residual, gamma, beta);
            body: crate::kernels::f32_bodies::layer_norm_rows_grouped::<$V, $S>(
                x, residual, gamma, beta, eps,
            );
        }
    };
}

/// See [`dot_entry!`].
#[cfg_attr(target_arch = "aarch64", allow(unused_macros))] // aarch64 has its own epilogue
macro_rules! panel_epilogue_entry {
    ($(#[$doc:meta])* $name:ident, $features:literal, $V:ty) => {
        f32_entry! {
            $(#[$doc])*
            pub fn $name(
                acc: &mut [[f32; NR]; MR],
                m: usize,
                scales: &[f32; NR],
                bias: Option<&[f32; NR]>,
                gelu: bool,
            );
            features: $features;
            body: crate::kernels::f32_bodies::panel_epilogue::<$V>(acc, m, scales, bias, gelu);
        }
    };
}

/// The entry point of a row panel: `$from` is the tier's `fn(a, b, stride, out, c)`, a
/// `#[target_feature]` function with `features` that does the columns from `c` on.
macro_rules! row_panel_entry {
    ($(#[$doc:meta])* $name:ident, $features:literal, $from:ident) => {
        f32_entry! {
            $(#[$doc])*
            pub fn $name(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]);
            features: $features;
            check: crate::kernels::check_row_panel_args(a, b, stride, out.len());
            body: $from(a, b, stride, out, 0);
        }
    };
}

/// The entry point of four row panels: `$rows` is the tier's `fn::<M>(a, b, stride, out, w)`
/// for `M` rows, a `#[target_feature]` function with `features`.
macro_rules! row_panel4_entry {
    ($(#[$doc:meta])* $name:ident, $features:literal, $rows:ident) => {
        f32_entry! {
            $(#[$doc])*
            pub fn $name(
                a: [&[f32]; 4],
                m: usize,
                b: &[f32],
                stride: usize,
                out: &mut [f32],
                w: usize,
            );
            features: $features;
            check: crate::kernels::check_row_panel4_args(&a, m, b, stride, out, w);
            body: by_rows!(m, M => $rows::<M>(a, b, stride, out, w));
        }
    };
}

/// [`super::scalar::exp_fast`] on every lane.
#[inline(always)]
pub(super) unsafe fn exp<V: F32Lanes>(x: V) -> V {
    use exp_consts::*;
    // SAFETY: the module's contract.
    unsafe {
        // max first: a NaN lane becomes LO, as f32::max makes it.
        let x = x.max_num(V::splat(LO)).min(V::splat(HI));
        let round = V::splat(ROUND);
        let n = x.mul(V::splat(LOG2E)).add(round).sub(round);
        let r = x.sub(n.mul(V::splat(LN2_HI)));
        let r = r.sub(n.mul(V::splat(LN2_LO)));
        let mut p = V::splat(P[0]);
        for &k in &P[1..] {
            p = p.mul(r).add(V::splat(k));
        }
        let y = p.mul(r.mul(r)).add(r).add(V::splat(1.0));
        y.mul(n.pow2i())
    }
}

/// [`super::scalar::gelu_fast`] on every lane (`a - c` as `a + (-c)`, which IEEE makes the
/// same number).
#[cfg_attr(target_arch = "aarch64", allow(dead_code))] // aarch64 has its own epilogue
#[inline(always)]
pub(super) unsafe fn gelu<V: F32Lanes>(v: V) -> V {
    use erf_consts::{P, Q};
    // SAFETY: the module's contract.
    unsafe {
        let x = v.mul(V::splat(std::f32::consts::FRAC_1_SQRT_2));
        // f32::clamp(-4, 4) on finite values.
        let x = x.max(V::splat(-4.0)).min(V::splat(4.0));
        let x2 = x.mul(x);
        let mut p = V::splat(P[0]);
        for &c in &P[1..] {
            p = p.mul(x2).add(V::splat(c));
        }
        let mut q = V::splat(Q[0]);
        for &c in &Q[1..] {
            q = q.mul(x2).add(V::splat(c));
        }
        let erf = x.mul(p).div(q);
        V::splat(0.5).mul(v).mul(V::splat(1.0).add(erf))
    }
}

/// The int8 GEMM's epilogue on one vector of outputs: times the weight scales, plus the bias,
/// then GELU if asked ([`super::scalar::panel_epilogue`]'s steps).
#[cfg_attr(target_arch = "aarch64", allow(dead_code))] // aarch64 has its own epilogue
#[inline(always)]
pub(super) unsafe fn epilogue<V: F32Lanes>(y: V, scales: V, bias: Option<V>, gelu: bool) -> V {
    // SAFETY: the module's contract.
    unsafe {
        let mut v = y.mul(scales);
        if let Some(b) = bias {
            v = v.add(b);
        }
        if gelu {
            v = self::gelu(v);
        }
        v
    }
}

/// [`super::scalar::panel_epilogue`] with lanes of one panel's [`NR`] outputs.
#[cfg_attr(target_arch = "aarch64", allow(dead_code))] // aarch64 has its own epilogue
#[inline(always)]
pub(super) unsafe fn panel_epilogue<V: F32Lanes>(
    acc: &mut [[f32; NR]; MR],
    m: usize,
    scales: &[f32; NR],
    bias: Option<&[f32; NR]>,
    gelu: bool,
) {
    const { assert!(V::LANES == NR) };
    // SAFETY: the module's contract; every load and store is NR floats of an [f32; NR].
    unsafe {
        let ws = V::load(scales.as_ptr());
        #[allow(clippy::manual_map)] // a closure would not inherit the target features
        let b = match bias {
            Some(b) => Some(V::load(b.as_ptr())),
            None => None,
        };
        for y in acc.iter_mut().take(m) {
            epilogue(V::load(y.as_ptr()), ws, b, gelu).store(y.as_mut_ptr());
        }
    }
}

/// [`super::scalar::dot`] with 8 lanes: lane `l` sums `a[i]·b[i]` for `i ≡ l (mod 8)` (a
/// multiply, then an add), the lanes combined in the scalar order, then the tail.
#[inline(always)]
pub(super) unsafe fn dot<V: F32Lanes>(a: &[f32], b: &[f32]) -> f32 {
    const { assert!(V::LANES == 8) };
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: the module's contract; i + 8 ≤ n, inside both slices.
    let lanes = unsafe {
        let mut acc = V::splat(0.0);
        while i + 8 <= n {
            acc = acc.add(V::load(pa.add(i)).mul(V::load(pb.add(i))));
            i += 8;
        }
        let mut lanes = [0f32; 8];
        acc.store(lanes.as_mut_ptr());
        lanes
    };
    let mut tail = 0f32;
    while i < n {
        tail += a[i] * b[i];
        i += 1;
    }
    combine8(lanes) + tail
}

/// Columns `c..c + N·LANES` of `out[c] = Σ_k a[k] · b[k·stride + c]`, N accumulators in
/// registers, one fused multiply-add per step in `k` order ([`super::scalar::row_panel`]).
/// `b` holds `(a.len() - 1)·stride + c + N·LANES` floats, `out` `c + N·LANES`.
#[cfg_attr(target_arch = "aarch64", allow(dead_code))] // aarch64 has its own row panels
#[inline(always)]
unsafe fn row_panel_cols<V: F32Lanes, const N: usize>(
    a: &[f32],
    b: *const f32,
    stride: usize,
    out: *mut f32,
    c: usize,
) {
    // SAFETY: the module's contract and the bounds above.
    unsafe {
        let mut acc = [V::splat(0.0); N];
        for (k, &ak) in a.iter().enumerate() {
            let x = V::splat(ak);
            for (n, accn) in acc.iter_mut().enumerate() {
                *accn = accn.mul_add(x, V::load(b.add(k * stride + c + V::LANES * n)));
            }
        }
        for (n, accn) in acc.iter().enumerate() {
            accn.store(out.add(c + V::LANES * n));
        }
    }
}

/// A row panel's columns from `c` on, `N·LANES` at a time while they fit: the first column
/// left. `b` holds `(a.len() - 1)·stride + w` floats (none read when `a` is empty), `out`
/// `w`.
#[cfg_attr(target_arch = "aarch64", allow(dead_code))] // aarch64 has its own row panels
#[inline(always)]
pub(super) unsafe fn row_panel_run<V: F32Lanes, const N: usize>(
    a: &[f32],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    mut c: usize,
) -> usize {
    let w = out.len();
    let (pb, po) = (b.as_ptr(), out.as_mut_ptr());
    while c + N * V::LANES <= w {
        // SAFETY: columns c..c + N·LANES exist, in out and (the caller's bound) in b.
        unsafe { row_panel_cols::<V, N>(a, pb, stride, po, c) };
        c += N * V::LANES;
    }
    c
}

/// Columns `c..c + N·LANES` of `M` row panels at once: each `b` vector loaded once for all
/// rows, each `a` value broadcast once for N vectors; every output summed as
/// [`super::scalar::row_panel`]. Rows `r < M` hold `kn` floats; `out` holds `M·w`.
#[cfg_attr(target_arch = "aarch64", allow(dead_code))] // aarch64 has its own row panels
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn row_panel4_cols<V: F32Lanes, const M: usize, const N: usize>(
    a: &[*const f32; 4],
    kn: usize,
    b: *const f32,
    stride: usize,
    out: *mut f32,
    w: usize,
    c: usize,
) {
    // SAFETY: the module's contract and the bounds above.
    unsafe {
        let mut acc = [[V::splat(0.0); N]; M];
        for k in 0..kn {
            let mut y = [V::splat(0.0); N];
            for (n, yn) in y.iter_mut().enumerate() {
                *yn = V::load(b.add(k * stride + c + V::LANES * n));
            }
            for (r, accr) in acc.iter_mut().enumerate() {
                let x = V::splat(*a[r].add(k));
                for (accn, &yn) in accr.iter_mut().zip(&y) {
                    *accn = accn.mul_add(x, yn);
                }
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            for (n, accn) in accr.iter().enumerate() {
                accn.store(out.add(r * w + c + V::LANES * n));
            }
        }
    }
}

/// The columns `c..w` of the first `M` of four row panels (`out` rows `w` apart), row by row
/// with `one_row_from` (the tier's one-row kernel from column `c`): the last columns after
/// [`row_panel4_run`], summed as the one-row kernel sums them. The caller's CPU runs
/// `one_row_from`.
#[cfg_attr(target_arch = "aarch64", allow(dead_code))] // aarch64 has its own row panels
#[inline(always)]
pub(super) unsafe fn row_panel4_rest<const M: usize>(
    a: &[&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    (w, c): (usize, usize),
    one_row_from: unsafe fn(&[f32], &[f32], usize, &mut [f32], usize),
) {
    if c < w {
        for (r, ar) in a.iter().enumerate().take(M) {
            // SAFETY: the caller's CPU runs `one_row_from`; row r of out is w floats.
            unsafe { one_row_from(ar, b, stride, &mut out[r * w..(r + 1) * w], c) };
        }
    }
}

/// [`row_panel_run`] for the first `M` of four rows (`out` rows `w` apart): the first column
/// left. The wrapper checked the shapes (`super::check_row_panel4_args`).
#[cfg_attr(target_arch = "aarch64", allow(dead_code))] // aarch64 has its own row panels
#[inline(always)]
pub(super) unsafe fn row_panel4_run<V: F32Lanes, const M: usize, const N: usize>(
    a: &[&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
    mut c: usize,
) -> usize {
    let kn = a[0].len();
    let pa = [a[0].as_ptr(), a[1].as_ptr(), a[2].as_ptr(), a[3].as_ptr()];
    let (pb, po) = (b.as_ptr(), out.as_mut_ptr());
    while c + N * V::LANES <= w {
        // SAFETY: columns c..c + N·LANES exist; the wrapper checked the shapes.
        unsafe { row_panel4_cols::<V, M, N>(&pa, kn, pb, stride, po, w, c) };
        c += N * V::LANES;
    }
    c
}

/// Softmax's exponentials for `R` rows from column `i`, `L::LANES` at a time while they fit
/// before `end` (≤ each row's length): `exp(x − max)` stored over `x` and added to the row's
/// sum. Returns the first column left.
#[inline(always)]
unsafe fn exp_and_sum<L: SumF64x8<S>, S: F64x8, const R: usize>(
    p: &[*mut f32; R],
    max: &[f32; R],
    sum: &mut [S; R],
    mut i: usize,
    end: usize,
) -> usize {
    // SAFETY: the module's contract; i + LANES ≤ end ≤ every row's length.
    unsafe {
        while i + L::LANES <= end {
            for r in 0..R {
                let e = exp(L::load(p[r].add(i)).sub(L::splat(max[r])));
                e.store(p[r].add(i));
                sum[r] = L::sum_add(sum[r], e);
            }
            i += L::LANES;
        }
    }
    i
}

/// [`super::scalar::softmax_rows`] for `R` rows of `n` scores at once, each row's steps
/// interleaved with the others' (one row alone is a chain of dependent steps: the maximum,
/// then a sum, a division, then the scaling). Each row is scaled by `scale` (one rounding,
/// stored), then the f64 sum keeps the scalar's 8 lanes in `S`; with 16 lanes the last 8
/// whole floats go through `E`. Each row holds `n` floats, this thread's alone.
#[inline(always)]
pub(super) unsafe fn softmax_rows<V, E, S, const R: usize>(p: [*mut f32; R], n: usize, scale: f32)
where
    V: SumF64x8<S>,
    E: SumF64x8<S>,
    S: F64x8,
{
    // SAFETY: the module's contract; every pointer below is inside a row (i + LANES ≤ n, or
    // a slice of the row).
    unsafe {
        let sv = V::splat(scale);
        let mut mv = [V::splat(f32::NEG_INFINITY); R];
        let mut i = 0;
        while i + V::LANES <= n {
            for (m, &p) in mv.iter_mut().zip(&p) {
                let v = V::load(p.add(i)).mul(sv);
                v.store(p.add(i));
                *m = m.max(v);
            }
            i += V::LANES;
        }
        let whole = i;
        let mut max = [0f32; R];
        for ((mx, m), &p) in max.iter_mut().zip(&mv).zip(&p) {
            let row = std::slice::from_raw_parts_mut(p, n);
            let mut v = m.max_lanes();
            for x in &mut row[whole..] {
                *x *= scale;
                v = v.max(*x);
            }
            *mx = v;
        }
        let whole8 = n / 8 * 8;
        let mut sum = [S::zero(); R];
        i = exp_and_sum::<V, S, R>(&p, &max, &mut sum, 0, whole8);
        i = exp_and_sum::<E, S, R>(&p, &max, &mut sum, i, whole8);
        let mut inv = [0f32; R];
        for r in 0..R {
            let row = std::slice::from_raw_parts_mut(p[r], n);
            let mut tail = 0f64;
            for v in &mut row[i..] {
                *v = exp_fast(*v - max[r]);
                tail += *v as f64;
            }
            inv[r] = (1.0 / (combine8(sum[r].lanes()) + tail)) as f32;
        }
        i = 0;
        while i + V::LANES <= n {
            for r in 0..R {
                V::load(p[r].add(i))
                    .mul(V::splat(inv[r]))
                    .store(p[r].add(i));
            }
            i += V::LANES;
        }
        for r in 0..R {
            let row = std::slice::from_raw_parts_mut(p[r], n);
            for v in &mut row[i..] {
                *v *= inv[r];
            }
        }
    }
}

/// [`super::scalar::layer_norm_rows`] for `R` rows of `n` at once (after adding `res` to
/// each, when given), each row's steps interleaved with the others': one row alone is three
/// passes of dependent f64 sums (the mean's, the variance's, then the division), so rows side
/// by side keep the adders busy. Each row (and residual row) holds `n` floats, this thread's
/// alone; `gamma` and `beta` hold `n`.
#[inline(always)]
pub(super) unsafe fn layer_norm_rows<V, S, const R: usize>(
    p: [*mut f32; R],
    res: Option<[*const f32; R]>,
    n: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) where
    V: NormF64x8<S>,
    S: F64x8,
{
    const { assert!(V::LANES == 8) };
    let whole = n / 8 * 8;
    // SAFETY: the module's contract; every pointer below is inside a row, its residual row,
    // gamma or beta (i + 8 ≤ whole ≤ n).
    unsafe {
        let mut acc = [S::zero(); R];
        for i in (0..whole).step_by(8) {
            for r in 0..R {
                let mut v = V::load(p[r].add(i));
                if let Some(res) = res {
                    v = v.add(V::load(res[r].add(i)));
                    v.store(p[r].add(i));
                }
                acc[r] = V::sum_add(acc[r], v);
            }
        }
        let mut mean = [0f64; R];
        for r in 0..R {
            let row = std::slice::from_raw_parts_mut(p[r], n);
            let mut tail = 0f64;
            for (j, v) in row.iter_mut().enumerate().skip(whole) {
                if let Some(res) = res {
                    *v += *res[r].add(j);
                }
                tail += *v as f64;
            }
            mean[r] = (combine8(acc[r].lanes()) + tail) / n as f64;
        }
        let mut acc = [S::zero(); R];
        for i in (0..whole).step_by(8) {
            for r in 0..R {
                acc[r] = V::sum_add_sq_dev(acc[r], V::load(p[r].add(i)), mean[r]);
            }
        }
        let mut rstd = [0f64; R];
        for r in 0..R {
            let row = std::slice::from_raw_parts(p[r], n);
            let m = mean[r];
            let mut tail = 0f64;
            for &v in &row[whole..] {
                tail += (v as f64 - m) * (v as f64 - m);
            }
            let var = (combine8(acc[r].lanes()) + tail) / n as f64;
            rstd[r] = 1.0 / (var + eps as f64).sqrt();
        }
        for i in (0..whole).step_by(8) {
            for r in 0..R {
                let y = V::load(p[r].add(i)).normalize(mean[r], rstd[r]);
                let y = y
                    .mul(V::load(gamma.as_ptr().add(i)))
                    .add(V::load(beta.as_ptr().add(i)));
                y.store(p[r].add(i));
            }
        }
        for r in 0..R {
            let row = std::slice::from_raw_parts_mut(p[r], n);
            for j in whole..n {
                row[j] = ((row[j] as f64 - mean[r]) * rstd[r]) as f32 * gamma[j] + beta[j];
            }
        }
    }
}

/// [`softmax_rows`] over `rows` rows of `x`, four at a time. The wrapper checked the shape
/// (`super::check_softmax_rows`).
#[inline(always)]
pub(super) unsafe fn softmax_rows_grouped<V, E, S>(x: &mut [f32], rows: usize, scale: f32)
where
    V: SumF64x8<S>,
    E: SumF64x8<S>,
    S: F64x8,
{
    if x.is_empty() {
        return;
    }
    let n = x.len() / rows;
    let mut groups = x.chunks_exact_mut(4 * n);
    for g in &mut groups {
        let p = g.as_mut_ptr();
        // SAFETY: the module's contract; four rows of n floats in g.
        unsafe { softmax_rows::<V, E, S, 4>([p, p.add(n), p.add(2 * n), p.add(3 * n)], n, scale) };
    }
    for row in groups.into_remainder().chunks_exact_mut(n) {
        // SAFETY: the module's contract; one row of n floats.
        unsafe { softmax_rows::<V, E, S, 1>([row.as_mut_ptr()], n, scale) };
    }
}

/// [`layer_norm_rows`] over the rows of `x`, four at a time. The wrapper checked the shapes
/// (`super::check_layer_norm_rows`).
#[inline(always)]
pub(super) unsafe fn layer_norm_rows_grouped<V, S>(
    x: &mut [f32],
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) where
    V: NormF64x8<S>,
    S: F64x8,
{
    let n = gamma.len();
    let rows = x.len() / n;
    let (px, pr) = (x.as_mut_ptr(), residual.map(|r| r.as_ptr()));
    let mut r0 = 0;
    while r0 + 4 <= rows {
        // SAFETY: the module's contract; rows r0..r0 + 4 of n floats in x (and in the
        // residual, as long as x).
        unsafe {
            let p = [0, 1, 2, 3].map(|r| px.add((r0 + r) * n));
            let res = pr.map(|q| [0, 1, 2, 3].map(|r| q.add((r0 + r) * n)));
            layer_norm_rows::<V, S, 4>(p, res, n, gamma, beta, eps);
        }
        r0 += 4;
    }
    for r in r0..rows {
        // SAFETY: as above, one row.
        unsafe {
            let res = pr.map(|q| [q.add(r * n)]);
            layer_norm_rows::<V, S, 1>([px.add(r * n)], res, n, gamma, beta, eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bodies on the one-lane `f32` type are the scalar reference's bits: a check that
    /// the bodies follow the reference's order, on any machine.
    #[test]
    fn scalar_lane_bodies_are_the_reference() {
        for i in -2_000_000..2_000_000 {
            let x = i as f32 * 5e-5;
            // SAFETY: f32 lanes need no CPU feature.
            let (e, g) = unsafe { (exp(x), gelu(x)) };
            assert_eq!(e.to_bits(), exp_fast(x).to_bits(), "exp {x}");
            let mut want = [x];
            super::super::scalar::gelu_fast(&mut want);
            assert_eq!(g.to_bits(), want[0].to_bits(), "gelu {x}");
        }
    }
}
