//! The packed int8 layouts round trip: a random matrix packed by `format::pack` (as the
//! converter packs it), written to a `.dbrt` file, read back and cut into panels the way the
//! model finds them (`pack::panel_span` on the tensors' bytes), multiplied by the scalar int8
//! GEMM (and every other tier this CPU runs), must give the naive i32 product of the matrix.

use dbrt::format::{pack, DType, FileWriter, Layout, ModelFile};
use dbrt::kernels::{Isa, Kernels, Panel, WeightLayout, MR, NR, QBLOCK};

#[path = "common/rng.rs"]
mod rng;
use rng::rng;

/// `packed` as a converted file holds it: the weight in its layout and `<name>_bsum`.
fn write_and_open(packed: &pack::PackedI8) -> ModelFile {
    let mut w = FileWriter::new();
    w.add_tensor_with_layout(
        "w",
        DType::I8,
        packed.layout,
        &[packed.rows as u64, packed.cols as u64],
        bytemuck::cast_slice(&packed.weights).to_vec(),
    )
    .unwrap();
    w.add_tensor(
        "w_bsum",
        DType::I32,
        &[packed.block_sums.len() as u64],
        bytemuck::cast_slice(&packed.block_sums).to_vec(),
    )
    .unwrap();
    let mut bytes = Vec::new();
    w.write(&mut bytes).unwrap();
    ModelFile::from_bytes_copied(&bytes).unwrap()
}

#[test]
fn packed_matrices_multiply_as_the_unpacked_ones() {
    let mut next = rng(13);
    // Scalar first: the reference; the others read the block sums too (`Codes::Offset`).
    let tiers: Vec<Kernels> = Isa::all_available()
        .into_iter()
        .map(|i| Kernels::for_isa(i).unwrap())
        .collect();
    for case in 0..200 {
        // Rows and inputs anywhere, whole panels and blocks or not.
        let rows = 1 + (next() % 70) as usize;
        let cols = 1 + (next() % 150) as usize;
        let layout = [Layout::I8Panel8x4, Layout::I8Panel16x4][case % 2];
        let m = 1 + (next() % MR as u64) as usize;
        let mut byte = || ((next() % 255) as i64 - 127) as i8;
        let q: Vec<i8> = (0..rows * cols).map(|_| byte()).collect();
        let kp = pack::padded_cols(cols);
        // Padding inputs non-zero: only zero padding weights leave the product unchanged.
        let x: Vec<i8> = (0..m * kp).map(|_| byte()).collect();
        let what = format!("case {case}: [{rows}, {cols}] {layout:?}, {m} rows");

        let packed = pack::pack_i8(&q, rows, cols, layout).unwrap();
        let file = write_and_open(&packed);
        let weights = file.tensor("w").unwrap();
        let sums = file.tensor("w_bsum").unwrap();
        let sums = sums.i32().unwrap();
        let il = pack::interleave(weights.record.layout).unwrap();
        let panels = rows.div_ceil(NR * il) * il;
        assert_eq!(sums.len(), panels * kp / QBLOCK * NR, "{what}");
        // The whole tensor repacked as the model repacks it for the i8mm tier.
        let mut smmla = Vec::new();
        pack::repack_smmla(
            bytemuck::cast_slice(weights.bytes),
            kp,
            il,
            panels,
            &mut smmla,
        )
        .unwrap();
        assert_eq!(smmla.len(), weights.bytes.len(), "{what}");

        for p in 0..panels {
            let span = pack::panel_span(kp, il, p);
            let panel = Panel {
                w: bytemuck::cast_slice(&weights.bytes[span.weights]),
                sums: &sums[span.sums],
                interleave: il,
                layout: dbrt::kernels::WeightLayout::Group4,
            };
            // What panel p's outputs must be: rows 8p.., zero past the matrix.
            let naive = |r: usize, j: usize| -> i32 {
                let o = p * NR + j;
                if o >= rows {
                    return 0;
                }
                (0..cols)
                    .map(|c| x[r * kp + c] as i32 * q[o * cols + c] as i32)
                    .sum()
            };
            for (b, block) in panel.sums.chunks(NR * il).enumerate() {
                for (j, &s) in block[..NR].iter().enumerate() {
                    let o = p * NR + j;
                    let want: i32 = (b * QBLOCK..((b + 1) * QBLOCK).min(cols))
                        .filter(|_| o < rows)
                        .map(|c| q[o * cols + c] as i32)
                        .sum();
                    assert_eq!(s, want, "{what}: panel {p} block {b} output {j} sum");
                }
            }
            // One scale per block, 1: the float sums of |x·w| ≤ 150·127² are exact.
            let xs = vec![1f32; m * kp / QBLOCK];
            for k in &tiers {
                let mut xq = x.clone();
                k.codes.encode(&mut xq);
                let mut acc = [[f32::NAN; NR]; MR];
                let panel = match k.weights {
                    WeightLayout::Group4 => panel,
                    WeightLayout::Smmla => pack::smmla_panel(&smmla, kp, p).unwrap(),
                };
                (k.gemm_i8_panel)(&xq, &xs, m, kp, panel, &mut acc);
                for (r, row) in acc.iter().enumerate().take(m) {
                    for (j, &v) in row.iter().enumerate() {
                        assert_eq!(
                            v,
                            naive(r, j) as f32,
                            "{what}: {} panel {p} row {r} output {j}",
                            k.isa.name()
                        );
                    }
                }
            }
        }
    }
}

/// The i8mm repack of a matrix packed either way puts every weight where the `smmla` kernels
/// read it (panel `r / 8`, step `c / 8`, output `r % 8`, byte `c % 8`) and zeros in the
/// padding, on any CPU.
#[test]
fn the_smmla_repack_holds_the_matrix() {
    let mut next = rng(31);
    for case in 0..60 {
        let (rows, cols) = (1 + (next() % 40) as usize, 1 + (next() % 100) as usize);
        let layout = [Layout::I8Panel8x4, Layout::I8Panel16x4][case % 2];
        let q: Vec<i8> = (0..rows * cols).map(|_| next() as i8).collect();
        let packed = pack::pack_i8(&q, rows, cols, layout).unwrap();
        let (il, kp) = (pack::interleave(layout).unwrap(), pack::padded_cols(cols));
        let mut smmla = vec![7i8; 3]; // appended to what is there
        pack::repack_smmla(&packed.weights, kp, il, packed.panels(), &mut smmla).unwrap();
        assert_eq!(&smmla[..3], &[7, 7, 7]);
        let smmla = &smmla[3..];
        assert_eq!(smmla.len(), packed.weights.len(), "case {case}");
        for p in 0..packed.panels() {
            let panel = pack::smmla_panel(smmla, kp, p).unwrap();
            // Panel by panel too, as the kernel tests repack.
            let mut one = Vec::new();
            pack::repack_smmla_panel(&packed.panel(p).unwrap(), kp, &mut one);
            assert_eq!(one, panel.w[..kp * NR], "case {case} panel {p}");
            for j in 0..NR {
                for c in 0..kp {
                    let (r, got) = (p * NR + j, panel.w[c / 8 * 64 + j * 8 + c % 8]);
                    let want = if r < rows && c < cols {
                        q[r * cols + c]
                    } else {
                        0
                    };
                    assert_eq!(got, want, "case {case} {layout:?} row {r} input {c}");
                }
            }
        }
        assert!(pack::smmla_panel(smmla, kp, packed.panels()).is_none() || kp == 0);
        // Too few bytes for the panels: an error, not a panic.
        let short = &packed.weights[..packed.weights.len().saturating_sub(1)];
        if kp > 0 {
            assert!(pack::repack_smmla(short, kp, il, packed.panels(), &mut Vec::new()).is_err());
        }
    }
}

#[test]
fn panels_of_a_packed_matrix_in_memory_are_those_of_the_file() {
    let mut next = rng(29);
    for case in 0..40 {
        let (rows, cols) = (1 + (next() % 40) as usize, 1 + (next() % 100) as usize);
        let layout = [Layout::I8Panel8x4, Layout::I8Panel16x4][case % 2];
        let q: Vec<i8> = (0..rows * cols).map(|_| next() as i8).collect();
        let packed = pack::pack_i8(&q, rows, cols, layout).unwrap();
        let file = write_and_open(&packed);
        let weights = file.tensor("w").unwrap();
        let sums = file.tensor("w_bsum").unwrap();
        let (il, kp) = (pack::interleave(layout).unwrap(), pack::padded_cols(cols));
        assert_eq!(packed.panels(), rows.div_ceil(NR * il) * il);
        for p in 0..packed.panels() {
            let span = pack::panel_span(kp, il, p);
            let panel = packed.panel(p).unwrap();
            let in_file: &[i8] = bytemuck::cast_slice(&weights.bytes[span.weights]);
            assert_eq!(panel.w, in_file, "case {case} panel {p}");
            assert_eq!(panel.sums, &sums.i32().unwrap()[span.sums]);
        }
        assert!(packed.panel(packed.panels()).is_none());
    }
}

/// Sizes the packed bytes cannot hold are errors, not panics: too few bytes, an odd count of
/// interleaved panels (they come in pairs), inputs not in whole blocks, a size that overflows.
#[test]
fn the_smmla_repack_refuses_what_it_cannot_hold() {
    let kp = 2 * QBLOCK;
    let w = vec![1i8; 3 * kp * NR];
    let mut out = Vec::new();
    assert!(pack::repack_smmla(&w, kp, 1, 3, &mut out).is_ok());
    for (kp, il, panels) in [
        (2 * QBLOCK, 1, 4),
        (2 * QBLOCK, 2, 3),
        (QBLOCK + 1, 1, 1),
        (2 * QBLOCK, 3, 1),
        (usize::MAX / 2, 1, 1),
        (2 * QBLOCK, 1, usize::MAX),
    ] {
        let mut out = Vec::new();
        assert!(
            pack::repack_smmla(&w, kp, il, panels, &mut out).is_err(),
            "kp {kp} interleave {il} panels {panels}"
        );
    }
}
