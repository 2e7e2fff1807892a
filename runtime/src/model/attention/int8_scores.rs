//! The int8 attention's per-thread buffers, and the assembly of a query's scores from the
//! products [`super::int8`] leaves in them.

use super::transpose_rows;
use crate::kernels::{Kernels, QBLOCK};
use crate::model::scratch::Int8AttentionSizes;

/// The c2p and p2c products' columns: relative rows `row0..row0 + width` of a head; which
/// terms there are, and whether the rows a query reads are consecutive.
#[derive(Debug, Clone, Copy)]
pub(super) struct RelWindow {
    pub c2p: bool,
    pub p2c: bool,
    pub linear: bool,
    pub row0: usize,
    pub width: usize,
}

/// One thread's int8-attention buffers for `t` tokens, carved from its scratch.
pub(super) struct Int8HeadScratch<'a> {
    pub kp: usize,
    pub q_codes: &'a mut [i8],
    pub q_scales: &'a mut [f32],
    pub k_codes: &'a mut [i8],
    pub k_scales: &'a mut [f32],
    /// `[rows][t]` q·k, `[rows][width]` q·rel_k and `[t][width]` k·rel_q (see [`RelWindow`]).
    pub qk: &'a mut [f32],
    pub c2p: &'a mut [f32],
    pub p2c: &'a mut [f32],
    /// `[rows][t]`: the p2c terms of each query in key order (see `gather_p2c`).
    pub p2c_by_query: &'a mut [f32],
}

impl<'a> Int8HeadScratch<'a> {
    /// The buffers from a thread's blocks (after its [`super::HeadScratch`]).
    pub fn carve(sizes: Int8AttentionSizes, t: usize, f: &'a mut [f32], b: &'a mut [i8]) -> Self {
        let (kp, nb) = (sizes.kp, sizes.kp / QBLOCK);
        let (q_scales, f) = f.split_at_mut(t * nb);
        let (k_scales, f) = f.split_at_mut(t * nb);
        let (qk, f) = f.split_at_mut(t * t);
        let (c2p, f) = f.split_at_mut(t * sizes.rel);
        let (p2c, f) = f.split_at_mut(t * sizes.rel);
        let p2c_by_query = &mut f[..t * t];
        let (q_codes, b) = b.split_at_mut(t * kp);
        let k_codes = &mut b[..t * kp];
        Int8HeadScratch {
            kp,
            q_codes,
            q_scales,
            k_codes,
            k_scales,
            qk,
            c2p,
            p2c,
            p2c_by_query,
        }
    }

    /// When the relative rows are consecutive, each query's p2c terms (row j, column
    /// `last_0 + i - j`: an anti-diagonal, one cache line per key) gathered once per head into
    /// `p2c_by_query[i][j]` by 8×8 transposes of the skewed rows, so that `scores_row` adds a
    /// contiguous row. `last_0` is query 0's column for key 0.
    pub fn gather_p2c(&mut self, k: &Kernels, w: RelWindow, rows: usize, t: usize, last_0: usize) {
        debug_assert!(
            w.linear && w.p2c,
            "called for consecutive rows with p2c only"
        );
        let (p2c, ld) = (&*self.p2c, w.width);
        let skewed = |j: usize| &p2c[j * ld + last_0 - j..j * ld + last_0 - j + rows];
        transpose_rows(k, t, rows, self.p2c_by_query, t, skewed);
    }

    /// Query `i`'s `t` unscaled scores: (q·k + c2p) + p2c, the f32 attention's order.
    pub fn scores_row(
        &self,
        w: RelWindow,
        i: usize,
        t: usize,
        rel_index: &impl Fn(usize) -> usize,
        row: &mut [f32],
    ) {
        let ld = w.width;
        row.copy_from_slice(&self.qk[i * t..(i + 1) * t]);
        // Key j reads relative row index((i - j) + t - 1) - row0: when the rows are
        // consecutive, that is `last - j` for the row of j = 0.
        if w.linear {
            let last = rel_index(i + t - 1) - w.row0;
            if w.c2p {
                let c2p = &self.c2p[i * ld + last + 1 - t..i * ld + last + 1];
                for (sj, cj) in row.iter_mut().zip(c2p.iter().rev()) {
                    *sj += cj;
                }
            }
            if w.p2c {
                // Row j, column last - j, gathered by `gather_p2c`.
                for (sj, pj) in row.iter_mut().zip(&self.p2c_by_query[i * t..(i + 1) * t]) {
                    *sj += pj;
                }
            }
            return;
        }
        let at = |j: usize| rel_index(i + t - 1 - j) - w.row0;
        if w.c2p {
            let c2p = &self.c2p[i * ld..(i + 1) * ld];
            for (j, sj) in row.iter_mut().enumerate() {
                *sj += c2p[at(j)];
            }
        }
        if w.p2c {
            for (j, sj) in row.iter_mut().enumerate() {
                *sj += self.p2c[j * ld + at(j)];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `scores_row`'s shortcut for consecutive relative rows (its p2c terms gathered per head
    /// by `gather_p2c`) reads what the index walk reads, with and without each term, for every
    /// query of lengths 1 to 40.
    #[test]
    fn scores_row_consecutive_rows_shortcut_matches_the_index_walk() {
        let mut seed = 12345u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for t in 1..40 {
            // Relative row of distance -(t - 1), in a window that starts at row 16.
            let (row0, first_row) = (16usize, 19usize);
            let width = (first_row - row0 + 2 * t - 1).next_multiple_of(16);
            let mut qk: Vec<f32> = (0..t * t).map(|_| next()).collect();
            let mut c2p: Vec<f32> = (0..t * width).map(|_| next()).collect();
            let mut p2c: Vec<f32> = (0..t * width).map(|_| next()).collect();
            let mut p2c_by_query = vec![f32::NAN; t * t];
            let mut sc = Int8HeadScratch {
                kp: QBLOCK,
                q_codes: &mut [],
                q_scales: &mut [],
                k_codes: &mut [],
                k_scales: &mut [],
                qk: &mut qk,
                c2p: &mut c2p,
                p2c: &mut p2c,
                p2c_by_query: &mut p2c_by_query,
            };

            let rel_index = |rr: usize| first_row + rr;
            for (c2p, p2c) in [(true, true), (true, false), (false, true)] {
                let w = |linear| RelWindow {
                    c2p,
                    p2c,
                    linear,
                    row0,
                    width,
                };
                // The shortcut's p2c terms as the head gathers them: by every tier's 8×8
                // transposes (t ≥ 8) and the scalar remainder.
                for isa in crate::kernels::Isa::all_available() {
                    let k = Kernels::for_isa(isa).expect("an available tier");
                    sc.p2c_by_query.fill(f32::NAN);
                    if p2c {
                        sc.gather_p2c(&k, w(true), t, t, rel_index(t - 1) - row0);
                    }
                    for i in 0..t {
                        let (mut fast, mut walk) = (vec![0f32; t], vec![0f32; t]);
                        sc.scores_row(w(true), i, t, &rel_index, &mut fast);
                        sc.scores_row(w(false), i, t, &rel_index, &mut walk);
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        let at = format!("{isa:?} t={t} i={i} c2p={c2p} p2c={p2c}");
                        assert_eq!(bits(&fast), bits(&walk), "{at}");
                    }
                }
            }
        }
    }
}
