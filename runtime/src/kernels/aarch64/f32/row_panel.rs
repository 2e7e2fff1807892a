//! Row panels on NEON, `out[r][c] = Σ_k a[r][k] · b[k·stride + c]`, register-blocked: a tile
//! of `M` rows × `4·N` columns stays in registers over the whole depth. Each row's `a` comes in
//! four values at a time with one `ldr q` and is used lane by lane with FMLA by element
//! (`vfmaq_laneq_f32`), so no DUP costs a vector slot; each `b` vector is loaded once for all
//! rows. Every output is still summed over `k` in order with one fused multiply-add per step,
//! as [`scalar::row_panel`] does (`fma(b, a[k], acc)` and `fma(a[k], b, acc)` are the same
//! exactly rounded value), so the bits are the scalar kernel's.

use std::arch::aarch64::*;

use super::ldr_q;
use crate::kernels::scalar;

/// The widest tile per row count: `M·N` accumulators (FMLA's latency is 4 cycles on the
/// Neoverse-N1/N2 models at 2 per cycle, so at least 8 independent sums keep both pipes busy)
/// plus `N` `b` vectors and `M` `a` vectors within the 32 registers.
const fn wide(m: usize) -> usize {
    if m == 1 {
        8
    } else {
        4
    }
}

/// One step `k` (lane `L` of the `a` vectors) of a tile: `N` vectors of `b` row `k` at `bk`.
#[inline(always)]
unsafe fn step<const M: usize, const N: usize, const L: i32>(
    acc: &mut [[float32x4_t; N]; M],
    x: &[float32x4_t; M],
    bk: *const f32,
) {
    // SAFETY: the caller's bound: 4·N readable floats at bk; NEON is the caller's.
    unsafe {
        // The loads name their offsets as constants (see `ldr_q`): the widths used.
        const { assert!(N == 1 || N == 4 || N == 8) };
        let mut y = [vdupq_n_f32(0.0); N];
        y[0] = ldr_q::<0>(bk);
        if N > 1 {
            y[1] = ldr_q::<1>(bk);
        }
        if N > 3 {
            y[2] = ldr_q::<2>(bk);
            y[3] = ldr_q::<3>(bk);
        }
        if N > 7 {
            y[4] = ldr_q::<4>(bk);
            y[5] = ldr_q::<5>(bk);
            y[6] = ldr_q::<6>(bk);
            y[7] = ldr_q::<7>(bk);
        }
        for (accr, &xr) in acc.iter_mut().zip(x) {
            for (accn, &yn) in accr.iter_mut().zip(&y) {
                *accn = vfmaq_laneq_f32::<L>(*accn, yn, xr);
            }
        }
    }
}

/// Columns `c..c + 4·N` of `M` rows: `a[r]` holds `kn` floats, `b` `(kn - 1)·stride + c + 4·N`,
/// row `r` of the output starts at `out + r·ld` and holds `c + 4·N`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const M: usize, const N: usize>(
    a: &[*const f32; 4],
    kn: usize,
    b: *const f32,
    stride: usize,
    out: *mut f32,
    ld: usize,
    c: usize,
) {
    // SAFETY: NEON is the caller's; every load is inside the bounds above (k + 4 ≤ kn for
    // `a`, k < kn for `b`'s rows), every store inside an output row.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); N]; M];
        let mut x = [vdupq_n_f32(0.0); M];
        // Wrapping: after the last step `bk` points past `b`, where nothing is read.
        let mut bk = b.wrapping_add(c);
        let mut k = 0;
        while k + 4 <= kn {
            for (r, xr) in x.iter_mut().enumerate() {
                *xr = vld1q_f32(a[r].add(k));
            }
            step::<M, N, 0>(&mut acc, &x, bk);
            step::<M, N, 1>(&mut acc, &x, bk.add(stride));
            step::<M, N, 2>(&mut acc, &x, bk.add(2 * stride));
            step::<M, N, 3>(&mut acc, &x, bk.add(3 * stride));
            bk = bk.wrapping_add(4 * stride);
            k += 4;
        }
        while k < kn {
            for (r, xr) in x.iter_mut().enumerate() {
                *xr = vld1q_dup_f32(a[r].add(k));
            }
            step::<M, N, 0>(&mut acc, &x, bk);
            bk = bk.wrapping_add(stride);
            k += 1;
        }
        for (r, accr) in acc.iter().enumerate() {
            for (n, accn) in accr.iter().enumerate() {
                vst1q_f32(out.add(r * ld + c + 4 * n), *accn);
            }
        }
    }
}

/// [`tile`]s of `4·N` columns from `c` while they fit in `w`: the first column left.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tiles<const M: usize, const N: usize>(
    a: &[*const f32; 4],
    kn: usize,
    b: *const f32,
    stride: usize,
    out: *mut f32,
    ld: usize,
    w: usize,
    mut c: usize,
) -> usize {
    while c + 4 * N <= w {
        // SAFETY: the caller's bounds for columns ..w; c + 4·N ≤ w.
        unsafe { tile::<M, N>(a, kn, b, stride, out, ld, c) };
        c += 4 * N;
    }
    c
}

/// `M` row panels of width `w` (output rows `ld` apart): the widest tiles, then 16 and 4
/// columns, then each row's last columns in scalar code, summed the same way.
///
/// # Safety
/// NEON; rows `r < M` of `a` hold `kn` floats, `b` holds `(kn - 1)·stride + w` (nothing read
/// when `kn` is 0), `out` holds `(M - 1)·ld + w` with `ld ≥ w`.
#[inline(always)]
pub(super) unsafe fn rows<const M: usize>(
    a: &[&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    ld: usize,
    w: usize,
) {
    let kn = a[0].len();
    let pa = [a[0].as_ptr(), a[1].as_ptr(), a[2].as_ptr(), a[3].as_ptr()];
    let (pb, po) = (b.as_ptr(), out.as_mut_ptr());
    // SAFETY: the bounds above; each call stays in columns ..w. (`wide` is a const fn of a
    // const: the `if` folds.)
    let c = unsafe {
        let mut c = if wide(M) == 8 {
            tiles::<M, 8>(&pa, kn, pb, stride, po, ld, w, 0)
        } else {
            0
        };
        c = tiles::<M, 4>(&pa, kn, pb, stride, po, ld, w, c);
        tiles::<M, 1>(&pa, kn, pb, stride, po, ld, w, c)
    };
    if c < w {
        for (r, ar) in a.iter().enumerate().take(M) {
            scalar::row_panel_from(ar, b, stride, &mut out[r * ld..r * ld + w], c);
        }
    }
}
