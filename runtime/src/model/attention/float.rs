//! One head's scores with f32 relative projections, read in place from the file (f32; other
//! storage widened into the thread's row) as rows indexed by `(i - j) + t - 1`: only the
//! `2t - 1` distances that occur, never all `2 * att_span` rows, and no copy of them.
//!
//! The keys and relative projections of a head are transposed so that a query's scores
//! against all keys are one row vector times a matrix (no reductions):
//! `keys_t[dd][j] = k[j][dd]`; `rel_keys_t[dd][m] = rel_k[r-1-m][dd]` (rows reversed, so the
//! c2p terms of query `i` are the contiguous columns `t-1-i..2t-1-i`);
//! `rel_queries_t[dd][m] = rel_q[m][dd]` (the p2c terms of key `j` are columns
//! `t-1-j..2t-1-j`).

use super::{rows_of, transpose_rows, HeadJob, HeadScratch};
use crate::kernels::{self, Kernels};
use crate::model::weights::Matrix;

/// A layer's f32 relative projections (`[2 * att_span, all_head]`), viewed in the file.
pub(super) struct FloatRel<'a> {
    pub key: Option<Matrix<'a>>,
    pub query: Option<Matrix<'a>>,
}

/// Head `head`'s scores, softmax and context; `prefetch_next`: whether this thread runs the
/// next head too (its relative rows are then prefetched while this one computes).
pub(super) fn head(
    job: &HeadJob<'_>,
    rel: &FloatRel<'_>,
    head: usize,
    prefetch_next: bool,
    hs: &mut HeadScratch<'_>,
    widened: &mut [f32],
) {
    let (t, rows, d, ah) = (job.t, job.rows, job.d, job.ah);
    let r = 2 * t - 1; // relative rows in use
    let h0 = head * d;
    let k = &job.ex.kernels;
    let HeadScratch {
        keys_t,
        rel_keys_t,
        rel_queries_t,
        p2c_by_key,
        scores,
        window,
        context_rows,
    } = hs;
    let keys = job.keys;
    transpose_rows(k, t, d, keys_t, t, |j| &keys[j * ah + h0..j * ah + h0 + d]);
    if let Some(rel_k) = &rel.key {
        let row_of = |m| job.rel_row(r - 1 - m);
        transpose_rel(k, rel_k, row_of, r, (ah, h0, d), rel_keys_t, widened);
    }
    // Rows i0..i0+m of this head's columns of x ([t][ah]); unused slots repeat the last row.
    let four = |x, i0, m| rows_of(x, i0, m, ah, h0..h0 + d);
    if let Some(rel_q) = &rel.query {
        let row_of = |m| job.rel_row(m);
        transpose_rel(k, rel_q, row_of, r, (ah, h0, d), rel_queries_t, widened);
        // p2c_by_key[j][i] = k_j · rel_q[(i - j) + t - 1], four keys at a time.
        for j0 in (0..t).step_by(4) {
            let m = 4.min(t - j0);
            shifted(
                job,
                four(keys, j0, m),
                (j0, m),
                rel_queries_t,
                window,
                &mut |rr, vals| {
                    p2c_by_key[(j0 + rr) * t..(j0 + rr + 1) * t].copy_from_slice(vals);
                },
            );
        }
    }
    let blocks = rows.div_ceil(4);
    for i0 in (0..rows).step_by(4) {
        // The next head's relative rows (~130 kB at 128 tokens, mostly from DRAM: the file's
        // rows are 1.5 kB apart and each head reads 256 bytes of them), a share per block of
        // queries so that they arrive while this head computes.
        if prefetch_next {
            let b = i0 / 4;
            let share = b * r / blocks..(b + 1) * r / blocks;
            for proj in [&rel.key, &rel.query].into_iter().flatten() {
                prefetch_rel(proj, share.clone(), |m| job.rel_row(m) * ah + h0 + d, d);
            }
        }
        let m = 4.min(rows - i0);
        let qa = four(job.queries, i0, m);
        // score(i, j) = ((q_i·k_j + q_i·rel_k[i-j]) + k_j·rel_q[i-j]) · scale
        (k.row_panel4_f32)(qa, m, keys_t, t, &mut scores[..m * t], t);
        if rel.key.is_some() {
            shifted(job, qa, (i0, m), rel_keys_t, window, &mut |rr, vals| {
                for (sj, cj) in scores[rr * t..(rr + 1) * t].iter_mut().zip(vals) {
                    *sj += cj;
                }
            });
        }
        for rr in 0..m {
            let i = i0 + rr;
            let row = &mut scores[rr * t..(rr + 1) * t];
            if rel.query.is_some() {
                for (j, sj) in row.iter_mut().enumerate() {
                    *sj += p2c_by_key[j * t + i];
                }
            }
        }
        job.attend(i0, m, h0, scores, context_rows);
    }
}

/// Rows `i0..i0 + m` of a shifted relative product: row `i` (of `a` = q or k) takes columns
/// `t-1-i..` of `m_t` (`[d][r]`). Four rows at once read one window of `t + 3` columns
/// starting at `t-4-i0`; row `i0+rr`'s part starts `rr` columns before the window's end
/// offset 3. `out(rr, values)` receives each row's `t` values.
#[inline(always)]
fn shifted(
    job: &HeadJob<'_>,
    a: [&[f32]; 4],
    (i0, m): (usize, usize),
    m_t: &[f32],
    window: &mut [f32],
    out: &mut dyn FnMut(usize, &[f32]),
) {
    let t = job.t;
    let r = 2 * t - 1;
    let k = &job.ex.kernels;
    if m == 4 {
        let base = t - 4 - i0;
        (k.row_panel4_f32)(a, 4, &m_t[base..], r, &mut window[..4 * (t + 3)], t + 3);
        for rr in 0..4 {
            let at = rr * (t + 3) + 3 - rr;
            out(rr, &window[at..at + t]);
        }
    } else {
        for (rr, &ar) in a.iter().enumerate().take(m) {
            (k.row_panel_f32)(ar, &m_t[t - 1 - (i0 + rr)..], r, &mut window[..t]);
            out(rr, &window[..t]);
        }
    }
}

/// `dst[dd·n + m]` = column `h0 + dd` of row `row_of(m)` of a relative projection (`ah`
/// columns), for `m < n`, `dd < d`: in place when it is stored f32, else one widened row at a
/// time through `widened`.
fn transpose_rel(
    k: &Kernels,
    m: &Matrix<'_>,
    row_of: impl Fn(usize) -> usize,
    n: usize,
    (ah, h0, d): (usize, usize, usize),
    dst: &mut [f32],
    widened: &mut [f32],
) {
    if let Matrix::F32(data) = m {
        let at = |i: usize| row_of(i) * ah + h0;
        transpose_rows(k, n, d, dst, n, |i| &data[at(i)..at(i) + d]);
        return;
    }
    for i in 0..n {
        let src = &m.row(row_of(i), ah, widened)[h0..h0 + d];
        for (dd, &v) in src.iter().enumerate() {
            dst[dd * n + i] = v;
        }
    }
}

/// Prefetches `d` values at `at(m)` of a relative projection for each relative row `m` of
/// `rows` (f32 storage; other storage is widened row by row and not worth it).
fn prefetch_rel(
    m: &Matrix<'_>,
    rows: std::ops::Range<usize>,
    at: impl Fn(usize) -> usize,
    d: usize,
) {
    if let Matrix::F32(data) = m {
        for row in rows {
            let span = &data[at(row)..at(row) + d];
            for line in span.chunks(16) {
                kernels::prefetch(line.as_ptr().cast());
            }
        }
    }
}
