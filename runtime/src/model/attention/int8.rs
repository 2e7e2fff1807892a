//! One head's scores with int8 relative projections: q·k in f32 (int8 keys measurably cost
//! agreement; the relative terms do not); the queries and keys quantized as activations, then
//! q·rel_k (c2p) and k·rel_q (p2c) on the int8 GEMM kernels against the file's int8 relative
//! rows, over the rows in use only. The scores are then assembled row by row from the products
//! (see [`Int8HeadScratch::scores_row`]).

use std::ops::Range;

use super::int8_scores::{Int8HeadScratch, RelWindow};
use super::{rows_of, transpose_rows, HeadJob, HeadScratch};
use crate::kernels::{Epilogue4, Kernels, Tile, MR, NR, QBLOCK};
use crate::model::weights::{PackedRef, SmmlaWeights};

/// Rows (queries or keys) per block of c2p / p2c products when the relative rows are
/// consecutive.
const REL_PRODUCT_ROWS: usize = 32;

/// A layer's int8 relative projections (see `RelProjection::Int8`) and what of them a
/// sequence of `t` tokens reads.
pub(super) struct Int8Rel {
    key: Option<PackedRef>,
    query: Option<PackedRef>,
    /// Relative rows per head (2 * att_span).
    rows: usize,
    /// First panel (within a head) of the relative rows in use, and their panel count.
    first: usize,
    panels: usize,
    /// Whether this sequence's relative rows are consecutive (see `Encoder::rel_linear_len`).
    linear: bool,
}

impl Int8Rel {
    /// The relative rows `t` tokens read, as whole panels starting on an interleaved pair (so
    /// that the four-panel kernel takes them). The index grows with the distance (checked at
    /// open), so those rows lie between the entries of distances -(t-1) and t-1.
    pub fn new(
        key: Option<PackedRef>,
        query: Option<PackedRef>,
        rows: usize,
        t: usize,
        linear: bool,
        rel_index: &impl Fn(usize) -> usize,
    ) -> Int8Rel {
        let (lo, hi) = (rel_index(0), rel_index(2 * t - 2) + 1);
        let first = lo / NR / 2 * 2;
        let end = hi.div_ceil(NR).next_multiple_of(2).min(rows / NR);
        Int8Rel {
            key,
            query,
            rows,
            first,
            panels: end - first,
            linear,
        }
    }

    /// How a query's terms are read from the products (see [`Int8HeadScratch::scores_row`]).
    fn window(&self) -> RelWindow {
        RelWindow {
            c2p: self.key.is_some(),
            p2c: self.query.is_some(),
            linear: self.linear,
            row0: self.first * NR,
            width: self.panels * NR,
        }
    }
}

/// Head `head`'s scores, softmax and context.
pub(super) fn head(
    job: &HeadJob<'_>,
    rel: &Int8Rel,
    head: usize,
    hs: &mut HeadScratch<'_>,
    sc: &mut Int8HeadScratch<'_>,
) {
    let (t, rows) = (job.t, job.rows);
    let w = rel.window();
    // Query 0's column for key 0 when the rows are consecutive.
    let last_0 = w.linear.then(|| job.rel_row(t - 1) - w.row0);
    products(job, rel, head, last_0, hs.keys_t, sc);
    let scores = &mut hs.scores[..4 * t];
    let rel_index = |rr: usize| job.rel_row(rr);
    for i0 in (0..rows).step_by(4) {
        let m = 4.min(rows - i0);
        for rr in 0..m {
            let row = &mut scores[rr * t..(rr + 1) * t];
            sc.scores_row(w, i0 + rr, t, &rel_index, row);
        }
        job.attend(i0, m, head * job.d, scores, hs.context_rows);
    }
}

/// One head's score products into `sc`: q·k in f32, c2p and p2c on the int8 kernels, over the
/// relative rows in use only (`last_0`: query 0's column for key 0 when the rows are
/// consecutive; then the p2c terms are also gathered by query for `scores_row`). `stage`
/// holds `t` rows of `d` floats.
fn products(
    job: &HeadJob<'_>,
    rel: &Int8Rel,
    head: usize,
    last_0: Option<usize>,
    stage: &mut [f32],
    sc: &mut Int8HeadScratch<'_>,
) {
    let (t, rows, d, ah) = (job.t, job.rows, job.d, job.ah);
    let k = &job.ex.kernels;
    let (kp, nb) = (sc.kp, sc.kp / QBLOCK);
    let (q, keys, h0) = (job.queries, job.keys, head * d);
    let key = |j: usize| &keys[j * ah + h0..j * ah + h0 + d];
    // q·k in f32: the keys transposed, four queries at a time.
    transpose_rows(k, t, d, stage, t, key);
    for i0 in (0..rows).step_by(4) {
        let m = 4.min(rows - i0);
        let qa = rows_of(q, i0, m, ah, h0..h0 + d);
        let out = &mut sc.qk[i0 * t..(i0 + m) * t];
        (k.row_panel4_f32)(qa, m, &stage[..d * t], t, out, t);
    }
    let products = RelProducts {
        k,
        bytes: job.ex.bytes,
        smmla: job.ex.smmla,
        kp,
        base: head * rel.rows / NR + rel.first,
        panels: rel.panels,
    };
    // Blocks of rows, each over the relative rows its terms read (query i reads columns
    // last_0 + i - j, j < t): 20-24 of 32 panels per block at 128 tokens.
    // (Otherwise one block: smaller calls over the same columns only cost.)
    let block = if last_0.is_some() {
        REL_PRODUCT_ROWS
    } else {
        t
    };
    if let Some(rel_key) = &rel.key {
        for i in 0..rows {
            stage[i * d..(i + 1) * d].copy_from_slice(&q[i * ah + h0..i * ah + h0 + d]);
        }
        (k.quantize_blocks)(&stage[..rows * d], rows, d, kp, sc.q_codes, sc.q_scales);
        let x = (&sc.q_codes[..rows * kp], &sc.q_scales[..rows * nb]);
        for r0 in (0..rows).step_by(block) {
            let r1 = (r0 + block).min(rows);
            let cols = last_0.map(|l| l + r0 + 1 - t..l + r1);
            products.rows(rel_key, x, (r0, r1), cols, sc.c2p);
        }
    }
    if let Some(rel_query) = &rel.query {
        for j in 0..t {
            stage[j * d..(j + 1) * d].copy_from_slice(key(j));
        }
        (k.quantize_blocks)(&stage[..t * d], t, d, kp, sc.k_codes, sc.k_scales);
        let x = (&sc.k_codes[..t * kp], &sc.k_scales[..t * nb]);
        for r0 in (0..t).step_by(block) {
            let r1 = (r0 + block).min(t);
            // Key j is read at columns last_0 + i - j for the queries i < rows.
            let cols = last_0.map(|l| l + 1 - r1..l + rows - r0);
            products.rows(rel_query, x, (r0, r1), cols, sc.p2c);
        }
        if let Some(l) = last_0 {
            sc.gather_p2c(k, rel.window(), rows, t, l);
        }
    }
}

/// Products of quantized rows with one head's relative rows in use: panels `base..base +
/// panels` of a packed relative projection, `panels * NR` columns of output.
struct RelProducts<'a> {
    k: &'a Kernels,
    bytes: &'a [u8],
    /// The i8mm repack, when the kernels read it.
    smmla: Option<&'a SmmlaWeights>,
    kp: usize,
    base: usize,
    panels: usize,
}

impl RelProducts<'_> {
    /// Rows `r0..r1` of `x` (codes and block scales) times the relative rows, into the same
    /// rows of `out` (`panels * NR` wide): all of them, or (when the rows are consecutive) the
    /// panels that hold `cols`, from an interleaved pair on and in whole passes of four where
    /// they fit.
    fn rows(
        &self,
        proj: &PackedRef,
        (x, xs): (&[i8], &[f32]),
        (r0, r1): (usize, usize),
        cols: Option<Range<usize>>,
        out: &mut [f32],
    ) {
        let (kp, nb, ld) = (self.kp, self.kp / QBLOCK, self.panels * NR);
        let (first, panels) = match cols {
            Some(c) => {
                let first = c.start / NR / 2 * 2;
                let panels = (c.end.div_ceil(NR) - first)
                    .next_multiple_of(4)
                    .min(self.panels - first);
                (first, panels)
            }
            None => (0, self.panels),
        };
        let scales = &proj.scales.view(self.bytes)[(self.base + first) * NR..];
        let weights = proj.panels(self.bytes, self.smmla);
        let panel = |p| weights.panel(self.base + first + p);
        let (xq, xs, m) = (&x[r0 * kp..], &xs[r0 * nb..], r1 - r0);
        let out = &mut out[r0 * ld + first * NR..];
        let k = self.k;
        // The four-panel kernel where the tier has one, else one panel at a time; the same
        // bits either way.
        let mut p = 0;
        while p < panels {
            if let Some(gemm4) = k.gemm_i8_panel4.filter(|_| p + 4 <= panels) {
                let pw = [0, 1, 2, 3].map(|i| panel(p + i));
                let epi = Epilogue4 {
                    scales: scales[p * NR..(p + 4) * NR]
                        .try_into()
                        .expect("4·NR scales"),
                    bias: None,
                    gelu: false,
                };
                let tile = Tile::new(&mut out[p * NR..], m, ld);
                gemm4(xq, xs, kp, pw, Some(epi), tile);
                p += 4;
            } else {
                let (pw, ws) = (panel(p), &scales[p * NR..(p + 1) * NR]);
                let ws: &[f32; NR] = ws.try_into().expect("NR scales");
                let mut acc = [[0f32; NR]; MR];
                for i0 in (0..m).step_by(MR) {
                    let mm = MR.min(m - i0);
                    (k.gemm_i8_panel)(&xq[i0 * kp..], &xs[i0 * nb..], mm, kp, pw, &mut acc);
                    (k.panel_epilogue)(&mut acc, mm, ws, None, false);
                    for (r, a) in acc.iter().enumerate().take(mm) {
                        out[(i0 + r) * ld + p * NR..][..NR].copy_from_slice(a);
                    }
                }
                p += 1;
            }
        }
    }
}
