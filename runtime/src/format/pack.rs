//! The packed int8 layouts, [`Layout::I8Panel8x4`] and [`Layout::I8Panel16x4`], in both
//! directions: [`pack_i8`] lays an `[out, in]` int8 matrix out for the GEMM kernels (the
//! converter calls it), [`panel_span`] finds one panel of it again (the runtime calls it for
//! every [`Panel`] it hands a kernel). `docs/FORMAT.md` describes the bytes.
//!
//! A matrix is cut into panels of [`NR`] output rows; a panel's inputs into groups of [`GROUP`],
//! each group `NR × GROUP` bytes, output-major; inputs are padded with zeros to whole blocks
//! of [`QBLOCK`] (the activation quantization block) and outputs to whole panels (pairs of
//! panels in `I8Panel16x4`, where the two panels of a pair alternate group by group). Next to
//! the weights, each panel's block sums ([`scalar::panel_block_sums`]), alternating the same
//! way.

use std::ops::Range;

use super::Layout;
use crate::error::{Error, Result};
use crate::kernels::{scalar, Panel, NR, QBLOCK};

/// Inputs per group: the bytes of one output a kernel multiplies and adds in one step (one
/// `vpdpbusd` or `sdot` lane).
pub const GROUP: usize = 4;

// The file format fixes these (docs/FORMAT.md): kernels with other panel, group or block sizes
// need a new layout, not a change here.
const _: () = assert!(NR == 8 && GROUP == 4 && QBLOCK == 32);

/// An int8 matrix packed for the GEMM kernels, as the file stores it: the tensor itself and its
/// `<name>_bsum`. The per-row scales are not part of the packing: they stay one per output
/// row, unpadded, in `<name>_scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedI8 {
    /// `I8Panel8x4` or `I8Panel16x4`.
    pub layout: Layout,
    /// Output rows of the matrix, before padding.
    pub rows: usize,
    /// Inputs of the matrix, before padding.
    pub cols: usize,
    /// The tensor's bytes, as many as [`storage_bytes`](super::storage_bytes) says.
    pub weights: Vec<i8>,
    /// Per panel, per block of [`QBLOCK`] inputs, the [`NR`] outputs' weight sums.
    pub block_sums: Vec<i32>,
}

/// How many [`NR`]-row panels of a packed layout alternate group by group: 1 for
/// `I8Panel8x4`, 2 for `I8Panel16x4`; `None` for a layout that is not packed.
pub fn interleave(layout: Layout) -> Option<usize> {
    Some(layout.panel_rows()? / NR)
}

/// Inputs of a packed row: `cols` rounded up to whole blocks of [`QBLOCK`].
pub fn padded_cols(cols: usize) -> usize {
    cols.div_ceil(QBLOCK) * QBLOCK
}

/// Packs `q`, an `[rows, cols]` row-major int8 matrix, in a packed `layout`; an error for
/// `Layout::RowMajor` or a `q` that does not hold `rows · cols` values.
pub fn pack_i8(q: &[i8], rows: usize, cols: usize, layout: Layout) -> Result<PackedI8> {
    let (Some(panel_rows), Some(il)) = (layout.panel_rows(), interleave(layout)) else {
        return Err(Error::InvalidArgument(format!(
            "{layout:?} is not a packed int8 layout"
        )));
    };
    if rows.checked_mul(cols) != Some(q.len()) {
        return Err(Error::InvalidArgument(format!(
            "{} int8 values for a [{rows}, {cols}] matrix",
            q.len()
        )));
    }
    let kp = padded_cols(cols);
    if kp == 0 {
        // No inputs: no groups, no blocks, nothing stored.
        return Ok(PackedI8 {
            layout,
            rows,
            cols,
            weights: Vec::new(),
            block_sums: Vec::new(),
        });
    }
    let panels = rows.div_ceil(panel_rows) * il;
    // Each panel alone (`I8Panel8x4`), padding rows and inputs zero.
    let mut alone = vec![vec![0i8; kp * NR]; panels];
    for (r, row) in q.chunks_exact(cols).enumerate() {
        let (panel, j) = (&mut alone[r / NR], r % NR);
        for (c, &v) in row.iter().enumerate() {
            panel[(c / GROUP * NR + j) * GROUP + c % GROUP] = v;
        }
    }
    let sums: Vec<Vec<i32>> = alone
        .iter()
        .map(|p| scalar::panel_block_sums(p, kp))
        .collect();
    let (weights, block_sums) = if il == 1 {
        (alone.concat(), sums.concat())
    } else {
        (
            alone
                .chunks_exact(2)
                .flat_map(|p| interleave_panels(&p[0], &p[1]))
                .collect(),
            sums.chunks_exact(2)
                .flat_map(|s| interleave_block_sums(&s[0], &s[1]))
                .collect(),
        )
    };
    Ok(PackedI8 {
        layout,
        rows,
        cols,
        weights,
        block_sums,
    })
}

/// Two panels of `I8Panel8x4` (each `kp · NR` bytes) as one pair of `I8Panel16x4`: group by
/// group, the first's then the second's.
pub fn interleave_panels(first: &[i8], second: &[i8]) -> Vec<i8> {
    alternate(first, second, NR * GROUP)
}

/// The block sums of two panels (each `kp / QBLOCK · NR`) as those of one pair of
/// `I8Panel16x4`: block by block, the first's then the second's.
pub fn interleave_block_sums(first: &[i32], second: &[i32]) -> Vec<i32> {
    alternate(first, second, NR)
}

/// `a` and `b` cut in `chunk`s, alternating; the longer one's extra chunks dropped (the callers
/// pass equal lengths).
fn alternate<T: Copy>(a: &[T], b: &[T], chunk: usize) -> Vec<T> {
    a.chunks(chunk)
        .zip(b.chunks(chunk))
        .flat_map(|(x, y)| x.iter().chain(y).copied())
        .collect()
}

/// Where panel `p` of a matrix packed with `interleave` panels alternating ([`interleave`])
/// and `kp` inputs per row ([`padded_cols`]) lies: its bytes in the weights and its values in
/// the block sums, from its first group (block) to its last, as a [`Panel`] spans them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelSpan {
    pub weights: Range<usize>,
    pub sums: Range<usize>,
}

/// See [`PanelSpan`]. Empty ranges for no inputs.
#[inline(always)]
pub fn panel_span(kp: usize, interleave: usize, p: usize) -> PanelSpan {
    if kp == 0 {
        return PanelSpan {
            weights: 0..0,
            sums: 0..0,
        };
    }
    // The pair (or single panel) p belongs to, and p's place in it.
    let (set, lane) = (p / interleave, p % interleave);
    let w = set * kp * NR * interleave + lane * NR * GROUP;
    let s = set * kp / QBLOCK * NR * interleave + lane * NR;
    PanelSpan {
        weights: w..w + Panel::weight_span(kp, interleave),
        sums: s..s + Panel::sums_span(kp, interleave),
    }
}

impl PackedI8 {
    /// [`NR`]-row panels, including the padding of `I8Panel16x4` to whole pairs.
    pub fn panels(&self) -> usize {
        self.weights.len() / (padded_cols(self.cols) * NR).max(1)
    }

    /// Panel `p` as the GEMM kernels read it; `None` past the last panel or for a packing
    /// whose buffers were changed since.
    pub fn panel(&self, p: usize) -> Option<Panel<'_>> {
        let il = interleave(self.layout)?;
        if p >= self.panels() {
            return None;
        }
        let span = panel_span(padded_cols(self.cols), il, p);
        Some(Panel {
            w: self.weights.get(span.weights)?,
            sums: self.block_sums.get(span.sums)?,
            interleave: il,
            layout: crate::kernels::WeightLayout::Group4,
        })
    }
}

/// Inputs per `smmla` operand row: the bytes of one output [`repack_smmla`] keeps together.
pub const SMMLA_K: usize = 8;

/// Appends the packed weights `weights` (a whole tensor as the file stores it: `panels` panels
/// of `kp` inputs, `interleave` of them alternating group by group) to `out` in the layout
/// the i8mm tier reads ([`crate::kernels::WeightLayout::Smmla`]): panel after panel (the
/// padding panels of `I8Panel16x4` included), each as `kp / 8` steps of 64 bytes, output `j`'s
/// eight inputs at `8j`. As many bytes as the file's; reserved fallibly, an error if they
/// cannot be, or if `weights` is shorter than the panels.
pub fn repack_smmla(
    weights: &[i8],
    kp: usize,
    interleave: usize,
    panels: usize,
    out: &mut Vec<i8>,
) -> Result<()> {
    // Interleaved panels come in pairs: an odd count would read past the last pair.
    let bytes = kp
        .checked_mul(NR)
        .and_then(|k| panels.checked_mul(k))
        .filter(|&n| {
            kp.is_multiple_of(QBLOCK)
                && (interleave == 1 || (interleave == 2 && panels.is_multiple_of(2)))
                && n <= weights.len()
        })
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{} packed bytes for {panels} panels of {kp} inputs",
                weights.len()
            ))
        })?;
    out.try_reserve(bytes).map_err(|_| Error::OutOfMemory {
        what: "the weights repacked for i8mm",
        bytes: bytes as u64,
    })?;
    for p in 0..panels {
        push_smmla(
            &weights[panel_span(kp, interleave, p).weights],
            kp,
            interleave,
            out,
        );
    }
    Ok(())
}

/// One panel of the file's layouts (`kp` inputs) appended to `out` as [`repack_smmla`] lays
/// it out: `kp · NR` bytes. Panics if the panel is shorter than `kp` inputs.
pub fn repack_smmla_panel(panel: &Panel<'_>, kp: usize, out: &mut Vec<i8>) {
    assert!(panel.layout == crate::kernels::WeightLayout::Group4 && kp.is_multiple_of(QBLOCK));
    push_smmla(panel.w, kp, panel.interleave, out);
}

/// See [`repack_smmla_panel`]: `w` from the panel's first group on.
fn push_smmla(w: &[i8], kp: usize, interleave: usize, out: &mut Vec<i8>) {
    let step = NR * GROUP * interleave;
    for s in 0..kp / SMMLA_K {
        for j in 0..NR {
            // Groups 2s and 2s + 1 hold output j's inputs 8s..8s + 4 and 8s + 4..8s + 8.
            let g = 2 * s * step + j * GROUP;
            out.extend_from_slice(&w[g..g + GROUP]);
            out.extend_from_slice(&w[g + step..g + step + GROUP]);
        }
    }
}

/// Panel `p` of weights repacked by [`repack_smmla`] (`kp` inputs), as the i8mm kernels read
/// it; `None` past the end.
pub fn smmla_panel(repacked: &[i8], kp: usize, p: usize) -> Option<Panel<'_>> {
    let at = p.checked_mul(kp * NR)?;
    Some(Panel {
        w: repacked.get(at..at.checked_add(kp * NR)?)?,
        sums: &[],
        interleave: 1,
        layout: crate::kernels::WeightLayout::Smmla,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_it_cannot_pack() {
        assert!(pack_i8(&[1, 2, 3], 1, 3, Layout::RowMajor).is_err());
        assert!(pack_i8(&[1, 2, 3], 2, 2, Layout::I8Panel8x4).is_err());
        assert!(pack_i8(&[], usize::MAX, 2, Layout::I8Panel8x4).is_err());
    }

    #[test]
    fn element_places_follow_the_format() {
        // Row r, input c of a [20, 40] matrix: kp 64, output padded to 24 (panel8) or 32.
        let (rows, cols) = (20, 40);
        let q: Vec<i8> = (0..rows * cols).map(|i| (i % 251) as i8).collect();
        for layout in [Layout::I8Panel8x4, Layout::I8Panel16x4] {
            let p = pack_i8(&q, rows, cols, layout).unwrap();
            let il = interleave(layout).unwrap();
            assert_eq!(
                p.weights.len() as u64,
                super::super::storage_bytes(
                    crate::format::DType::I8,
                    layout,
                    &[rows as u64, cols as u64]
                )
                .unwrap()
            );
            for r in 0..rows {
                for c in 0..cols {
                    let (set, lane, j) = (r / NR / il, r / NR % il, r % NR);
                    let at = ((set * 64 / GROUP + c / GROUP) * il + lane) * NR * GROUP
                        + j * GROUP
                        + c % GROUP;
                    assert_eq!(p.weights[at], q[r * cols + c], "{layout:?} r{r} c{c}");
                }
            }
        }
    }
}
