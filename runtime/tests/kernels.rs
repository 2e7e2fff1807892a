//! Every SIMD kernel against its scalar twin, on every tier this CPU runs: random shapes,
//! tails, one row, empty input. The int8 GEMM must match bit for bit.

use dbrt::format::pack;
use dbrt::kernels::{
    scalar, Epilogue4, GemmI8Panel4, Isa, Kernels, Panel, Tile, WeightLayout, MR, NR, QBLOCK,
};

#[path = "common/rng.rs"]
mod rng;
use rng::rng;

fn tiers() -> Vec<Kernels> {
    Isa::all_available()
        .into_iter()
        .map(|i| Kernels::for_isa(i).unwrap())
        .collect()
}

/// CI names the tiers its machine must run (`DBRT_EXPECT_ISA=avx2`, `neon,neon-dotprod,neon-i8mm`), so
/// that a tier that silently never ran fails the build.
#[test]
fn expected_tiers_are_available() {
    let Ok(list) = std::env::var("DBRT_EXPECT_ISA") else {
        return;
    };
    for name in list.split(',').filter(|s| !s.trim().is_empty()) {
        let isa = Isa::parse(name).unwrap();
        assert!(
            isa.available(),
            "{} expected on this machine but not available",
            isa.name()
        );
    }
}

/// Random int8 GEMM operands: `m` rows of `kp` inputs, their block scales, and `n` panels of
/// weights (each `kp · NR` bytes, `Layout::I8Panel8x4`) with their block sums.
struct GemmCase {
    m: usize,
    kp: usize,
    xq: Vec<i8>,
    xs: Vec<f32>,
    panels: Vec<Vec<i8>>,
    sums: Vec<Vec<i32>>,
}

impl GemmCase {
    /// `n` panels over 1 to `max_rows` rows.
    fn random(next: &mut impl FnMut() -> u64, n: usize, max_rows: usize) -> GemmCase {
        let m = 1 + (next() % max_rows as u64) as usize;
        let kp = QBLOCK * (next() % 9) as usize; // includes 0: empty input
        let byte = |r| ((r % 255) as i64 - 127) as i8;
        GemmCase::shaped(next, n, m, kp, [byte, byte])
    }

    /// `n` panels over `m` rows of `kp` inputs, every activation `code[0]` of a random number,
    /// every weight `code[1]`.
    fn shaped(
        next: &mut impl FnMut() -> u64,
        n: usize,
        m: usize,
        kp: usize,
        code: [fn(u64) -> i8; 2],
    ) -> GemmCase {
        let nb = kp / QBLOCK;
        let mut byte = |i: usize| code[i](next());
        let xq: Vec<i8> = (0..m * kp).map(|_| byte(0)).collect();
        let panels: Vec<Vec<i8>> = (0..n)
            .map(|_| (0..kp * NR).map(|_| byte(1)).collect())
            .collect();
        let xs: Vec<f32> = (0..m * nb)
            .map(|_| (next() % 1000) as f32 / 997.0 + 1e-3)
            .collect();
        let sums = panels
            .iter()
            .map(|p| scalar::panel_block_sums(p, kp))
            .collect();
        GemmCase {
            m,
            kp,
            xq,
            xs,
            panels,
            sums,
        }
    }

    /// The activations as tier `k`'s kernels read them.
    fn xq_for(&self, k: &Kernels) -> Vec<i8> {
        let mut q = self.xq.clone();
        k.codes.encode(&mut q);
        q
    }

    /// Panel `i` as laid out alone (`I8Panel8x4`).
    fn alone(&self, i: usize) -> Panel<'_> {
        Panel {
            w: &self.panels[i],
            sums: &self.sums[i],
            interleave: 1,
            layout: WeightLayout::Group4,
        }
    }

    /// The scalar kernel's outputs for panel `i`, `MR` rows at a time.
    fn want(&self, i: usize) -> Vec<[f32; NR]> {
        let (kp, nb) = (self.kp, self.kp / QBLOCK);
        let mut rows = Vec::new();
        for r0 in (0..self.m).step_by(MR) {
            let m = MR.min(self.m - r0);
            let mut acc = [[0f32; NR]; MR];
            let (x, s) = (&self.xq[r0 * kp..], &self.xs[r0 * nb..]);
            scalar::gemm_i8_panel(x, s, m, kp, self.alone(i), &mut acc);
            rows.extend_from_slice(&acc[..m]);
        }
        rows
    }
}

/// Panels `2j` and `2j + 1` of `case` interleaved (`I8Panel16x4`): weights, then sums.
fn interleaved(case: &GemmCase) -> Vec<(Vec<i8>, Vec<i32>)> {
    (0..case.panels.len() / 2)
        .map(|j| {
            (
                pack::interleave_panels(&case.panels[2 * j], &case.panels[2 * j + 1]),
                pack::interleave_block_sums(&case.sums[2 * j], &case.sums[2 * j + 1]),
            )
        })
        .collect()
}

/// Panel `lane` (0 or 1) of an interleaved pair, where the model finds it.
fn in_pair(pair: &(Vec<i8>, Vec<i32>), lane: usize) -> Panel<'_> {
    let span = pack::panel_span(pair.0.len() / (2 * NR), 2, lane);
    Panel {
        w: &pair.0[span.weights],
        sums: &pair.1[span.sums],
        interleave: 2,
        layout: WeightLayout::Group4,
    }
}

/// `panel` (`kp` inputs, the file's layouts) as tier `k`'s GEMMs read it: repacked into `buf`
/// for a tier that reads the i8mm layout, as the model repacks its weights.
fn as_tier<'a>(k: &Kernels, panel: Panel<'a>, kp: usize, buf: &'a mut Vec<i8>) -> Panel<'a> {
    match k.weights {
        WeightLayout::Group4 => panel,
        WeightLayout::Smmla => {
            buf.clear();
            pack::repack_smmla_panel(&panel, kp, buf);
            let buf: &'a Vec<i8> = buf;
            pack::smmla_panel(buf, kp, 0).unwrap()
        }
    }
}

/// Four panels as tier `k` reads them ([`as_tier`] each, into `bufs`).
fn as_tier4<'a>(
    k: &Kernels,
    panels: [Panel<'a>; 4],
    kp: usize,
    bufs: &'a mut [Vec<i8>; 4],
) -> [Panel<'a>; 4] {
    let mut it = bufs
        .iter_mut()
        .zip(panels)
        .map(|(b, p)| as_tier(k, p, kp, b));
    [(); 4].map(|_| it.next().unwrap())
}

/// A four-panel GEMM over `m` rows without an epilogue: each panel's `m` rows of outputs.
fn four_panels(
    gemm4: GemmI8Panel4,
    (xq, xs): (&[i8], &[f32]),
    kp: usize,
    panels: [Panel<'_>; 4],
    m: usize,
) -> [Vec<[f32; NR]>; 4] {
    let mut out = vec![1f32; m * Tile::COLS];
    gemm4(xq, xs, kp, panels, None, Tile::new(&mut out, m, Tile::COLS));
    [0, 1, 2, 3].map(|p| {
        (0..m)
            .map(|r| out[r * Tile::COLS + p * NR..][..NR].try_into().unwrap())
            .collect()
    })
}

fn assert_same(want: &[[f32; NR]], got: &[[f32; NR]], m: usize, what: &str) {
    for r in 0..m {
        let bits = |v: &[f32; NR]| v.map(f32::to_bits);
        assert_eq!(bits(&want[r]), bits(&got[r]), "{what} row {r}");
    }
}

#[test]
fn gemm_i8_panel_matches_scalar_bit_for_bit() {
    let mut next = rng(7);
    for k in tiers() {
        for _ in 0..2000 {
            let case = GemmCase::random(&mut next, 2, MR);
            let (m, kp) = (case.m, case.kp);
            let pairs = interleaved(&case);
            for (i, panel) in [case.alone(0), in_pair(&pairs[0], 0), in_pair(&pairs[0], 1)]
                .into_iter()
                .enumerate()
            {
                let mut got = [[1f32; NR]; MR];
                let mut buf = Vec::new();
                let panel = as_tier(&k, panel, kp, &mut buf);
                (k.gemm_i8_panel)(&case.xq_for(&k), &case.xs, m, kp, panel, &mut got);
                let what = format!("{:?} m={m} kp={kp} panel {i}", k.isa);
                assert_same(&case.want(i.saturating_sub(1)), &got, m, &what);
            }
        }
    }
}

#[test]
fn gemm_i8_panel4_matches_four_scalar_panels_bit_for_bit() {
    let mut next = rng(13);
    let mut ran = 0;
    for k in tiers() {
        let Some(gemm4) = k.gemm_i8_panel4 else {
            continue;
        };
        ran += 1;
        for _ in 0..1000 {
            let case = GemmCase::random(&mut next, 4, 3 * MR); // several row blocks
            let (m, kp) = (case.m, case.kp);
            let pairs = interleaved(&case);
            let alone = [0, 1, 2, 3].map(|i| case.alone(i));
            let both = [0, 1, 2, 3].map(|i| in_pair(&pairs[i / 2], i % 2));
            // One interleaved pair, two panels alone: the kernel's mixed path.
            let mixed = [both[0], both[1], alone[2], alone[3]];
            // Scales and biases of all sizes; GELU or not; or no epilogue at all.
            let mut val = |s: f32| ((next() % 20001) as f32 / 10000.0 - 1.0) * s;
            let scales: [f32; 4 * NR] = std::array::from_fn(|_| val(0.05));
            let bias: [f32; 4 * NR] = std::array::from_fn(|_| val(4.0));
            let epilogues = [
                None,
                Some(Epilogue4 {
                    scales: &scales,
                    bias: None,
                    gelu: false,
                }),
                Some(Epilogue4 {
                    scales: &scales,
                    bias: Some(&bias),
                    gelu: true,
                }),
            ];
            for (layout, panels) in [("8x4", alone), ("16x4", both), ("mixed", mixed)] {
                let mut bufs = [(); 4].map(|_| Vec::new());
                let panels = as_tier4(&k, panels, kp, &mut bufs);
                for epi in epilogues {
                    // A tile narrower than its rows' stride, with a sentinel around it.
                    let ld = Tile::COLS + 3;
                    let mut out = vec![1f32; m * ld];
                    gemm4(
                        &case.xq_for(&k),
                        &case.xs,
                        kp,
                        panels,
                        epi,
                        Tile::new(&mut out, m, ld),
                    );
                    for p in 0..4 {
                        let mut want = case.want(p);
                        if let Some(e) = epi {
                            let part = |v: &[f32; 4 * NR]| -> [f32; NR] {
                                v[p * NR..(p + 1) * NR].try_into().unwrap()
                            };
                            let b = e.bias.map(part);
                            for block in want.chunks_mut(MR) {
                                let n = block.len();
                                let mut acc = [[0f32; NR]; MR];
                                acc[..n].copy_from_slice(block);
                                scalar::panel_epilogue(
                                    &mut acc,
                                    n,
                                    &part(e.scales),
                                    b.as_ref(),
                                    e.gelu,
                                );
                                block.copy_from_slice(&acc[..n]);
                            }
                        }
                        let mut got = vec![[0f32; NR]; m];
                        for (r, g) in got.iter_mut().enumerate() {
                            g.copy_from_slice(&out[r * ld + p * NR..r * ld + (p + 1) * NR]);
                        }
                        let what = format!(
                            "{:?} {layout} m={m} kp={kp} panel {p} epilogue {}",
                            k.isa,
                            epi.is_some()
                        );
                        assert_same(&want, &got, m, &what);
                    }
                    for r in 0..m {
                        assert!(out[r * ld + Tile::COLS..(r + 1) * ld]
                            .iter()
                            .all(|&v| v == 1.0));
                    }
                }
            }
        }
    }
    eprintln!("four-panel GEMM checked on {ran} tier(s)");
}

/// Long rows (up to 1,568 inputs, 49 blocks) and the extreme codes, through both GEMM kernels
/// of every tier, both layouts, rows 1 to 4 (one tile) and past them (several row tiles of
/// the four-panel kernel): the largest block sums (±32·127·127) must come out exact.
#[test]
fn gemm_long_rows_and_extreme_codes_match_scalar_bit_for_bit() {
    let mut next = rng(29);
    let random: fn(u64) -> i8 = |r| ((r % 255) as i64 - 127) as i8;
    let signs: fn(u64) -> i8 = |r| if r % 2 == 0 { 127 } else { -127 };
    let plus: fn(u64) -> i8 = |_| 127;
    let minus: fn(u64) -> i8 = |_| -127;
    let codes = [
        ("random", [random, random]),
        ("±127", [signs, signs]),
        ("127·127", [plus, plus]),
        ("127·-127", [plus, minus]),
        ("-127·-127", [minus, minus]),
    ];
    for k in tiers() {
        for kp in [QBLOCK, 2 * QBLOCK, 48 * QBLOCK, 49 * QBLOCK] {
            for m in [1, 2, 3, 4, 5, 11] {
                for (name, code) in codes {
                    let case = GemmCase::shaped(&mut next, 4, m, kp, code);
                    let pairs = interleaved(&case);
                    let alone = [0, 1, 2, 3].map(|i| case.alone(i));
                    let both = [0, 1, 2, 3].map(|i| in_pair(&pairs[i / 2], i % 2));
                    let xq = case.xq_for(&k);
                    let nb = kp / QBLOCK;
                    for (layout, panels) in [("8x4", alone), ("16x4", both)] {
                        let mut bufs = [(); 4].map(|_| Vec::new());
                        let panels = as_tier4(&k, panels, kp, &mut bufs);
                        let what = format!("{:?} {name} {layout} m={m} kp={kp}", k.isa);
                        for (p, panel) in panels.into_iter().enumerate() {
                            let want = case.want(p);
                            for r0 in (0..m).step_by(MR) {
                                let rows = MR.min(m - r0);
                                let mut got = [[1f32; NR]; MR];
                                let (x, s) = (&xq[r0 * kp..], &case.xs[r0 * nb..]);
                                (k.gemm_i8_panel)(x, s, rows, kp, panel, &mut got);
                                let w = &want[r0..r0 + rows];
                                assert_same(w, &got, rows, &format!("{what} panel {p}"));
                            }
                        }
                        let Some(gemm4) = k.gemm_i8_panel4 else {
                            continue;
                        };
                        let got = four_panels(gemm4, (&xq, &case.xs), kp, panels, m);
                        for (p, got) in got.iter().enumerate() {
                            let what = format!("{what} four-panel {p}");
                            assert_same(&case.want(p), got, m, &what);
                        }
                    }
                }
            }
        }
    }
}

/// Wide inputs: kernels that stage rows in fixed buffers (the i8mm tier's zipped row pairs)
/// take them a few rows at a time, or not at all past the buffer.
#[test]
fn gemm_i8_panel4_on_wide_inputs_matches_scalar_bit_for_bit() {
    let mut next = rng(17);
    for k in tiers() {
        let Some(gemm4) = k.gemm_i8_panel4 else {
            continue;
        };
        for (m, kp) in [(7, 4096), (12, 2048), (3, 8192), (5, 8224)] {
            let mut case = GemmCase::random(&mut next, 4, 1);
            let mut byte = || ((next() % 255) as i64 - 127) as i8;
            case.m = m;
            case.kp = kp;
            case.xq = (0..m * kp).map(|_| byte()).collect();
            case.panels = (0..4)
                .map(|_| (0..kp * NR).map(|_| byte()).collect())
                .collect();
            case.xs = (0..m * kp / QBLOCK)
                .map(|_| (next() % 1000) as f32 / 997.0 + 1e-3)
                .collect();
            case.sums = case
                .panels
                .iter()
                .map(|p| scalar::panel_block_sums(p, kp))
                .collect();
            let mut bufs = [(); 4].map(|_| Vec::new());
            let panels = as_tier4(&k, [0, 1, 2, 3].map(|i| case.alone(i)), kp, &mut bufs);
            let xq = case.xq_for(&k);
            let got = four_panels(gemm4, (&xq, &case.xs), kp, panels, m);
            for (p, got) in got.iter().enumerate() {
                let what = format!("{:?} m={m} kp={kp} panel {p}", k.isa);
                assert_same(&case.want(p), got, m, &what);
            }
        }
    }
}

/// Weights in a layout a tier's kernels do not read are a bug of the caller: every entry point
/// refuses them (a panic), rather than multiplying the wrong bytes.
#[test]
fn a_panel_in_the_wrong_layout_is_refused() {
    let kp = 2 * QBLOCK;
    let (xq, xs) = (vec![1i8; MR * kp], vec![1f32; MR * 2]);
    let w = vec![1i8; kp * NR];
    let sums = scalar::panel_block_sums(&w, kp);
    let group4 = Panel {
        w: &w,
        sums: &sums,
        interleave: 1,
        layout: WeightLayout::Group4,
    };
    let smmla = pack::smmla_panel(&w, kp, 0).unwrap();
    for k in tiers() {
        let wrong = match k.weights {
            WeightLayout::Group4 => smmla,
            WeightLayout::Smmla => group4,
        };
        let one = std::panic::catch_unwind(|| {
            (k.gemm_i8_panel)(&xq, &xs, MR, kp, wrong, &mut [[0f32; NR]; MR]);
        });
        assert!(one.is_err(), "{:?} one panel", k.isa);
        if let Some(gemm4) = k.gemm_i8_panel4 {
            let four = std::panic::catch_unwind(|| {
                let mut out = vec![0f32; MR * Tile::COLS];
                gemm4(
                    &xq,
                    &xs,
                    kp,
                    [wrong; 4],
                    None,
                    Tile::new(&mut out, MR, Tile::COLS),
                );
            });
            assert!(four.is_err(), "{:?} four panels", k.isa);
        }
    }
}

#[test]
fn panel_epilogue_matches_scalar_bit_for_bit() {
    let mut next = rng(53);
    let mut val = |scale: f32| ((next() % 20001) as f32 / 10000.0 - 1.0) * scale;
    for k in tiers() {
        for case in 0..400 {
            let m = case % (MR + 1); // includes 0 rows
                                     // Accumulators from tiny to far past GELU's clamp at |x/sqrt(2)| = 4.
            let spread = [1e-3f32, 1.0, 8.0, 1e4][case % 4];
            let acc: [[f32; NR]; MR] =
                std::array::from_fn(|_| std::array::from_fn(|_| val(spread)));
            let scales: [f32; NR] = std::array::from_fn(|_| val(0.1).abs() + 1e-4);
            let bias: [f32; NR] = std::array::from_fn(|_| val(2.0));
            let (with_bias, gelu) = (case % 3 != 0, case % 2 == 0);
            let b = with_bias.then_some(&bias);
            let (mut want, mut got) = (acc, acc);
            scalar::panel_epilogue(&mut want, m, &scales, b, gelu);
            (k.panel_epilogue)(&mut got, m, &scales, b, gelu);
            let bits = |a: &[[f32; NR]; MR]| a.map(|r| r.map(f32::to_bits));
            assert_eq!(bits(&want), bits(&got), "{:?} case {case}", k.isa);
        }
    }
}

#[test]
fn extreme_values_do_not_saturate() {
    // ±127 everywhere: the largest pair sums maddubs can see.
    for k in tiers() {
        for (xv, wv) in [(127i8, 127i8), (-127, 127), (127, -127), (-127, -127)] {
            let kp = 4 * QBLOCK;
            let xq = vec![xv; MR * kp];
            let xs = vec![1.0f32; MR * 4];
            let panel = vec![wv; kp * NR];
            let mut got = [[0f32; NR]; MR];
            let sums = scalar::panel_block_sums(&panel, kp);
            let p = Panel {
                w: &panel,
                sums: &sums,
                interleave: 1,
                layout: WeightLayout::Group4,
            };
            let mut xq = xq;
            k.codes.encode(&mut xq);
            let mut buf = Vec::new();
            let p = as_tier(&k, p, kp, &mut buf);
            (k.gemm_i8_panel)(&xq, &xs, MR, kp, p, &mut got);
            let want = (xv as i32 * wv as i32 * kp as i32) as f32;
            assert!(
                got.iter().flatten().all(|&v| v == want),
                "{:?}: {got:?} vs {want}",
                k.isa
            );
        }
    }
}

#[test]
fn dot_f32_matches_scalar_bit_for_bit() {
    let mut next = rng(11);
    for k in tiers() {
        for n in (0..130).chain([511, 1536]) {
            let a: Vec<f32> = (0..n)
                .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            let b: Vec<f32> = (0..n)
                .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            let want = scalar::dot(&a, &b);
            let got = (k.dot_f32)(&a, &b);
            // The same order of operations in every tier: the same bits.
            assert_eq!(
                want.to_bits(),
                got.to_bits(),
                "{:?} n={n}: {got} vs {want}",
                k.isa
            );
        }
    }
}

#[test]
fn quantize_blocks_matches_scalar_bit_for_bit() {
    let mut next = rng(41);
    for k in tiers() {
        for (rows, cols) in [
            (0usize, 32usize),
            (1, 1),
            (1, 31),
            (1, 32),
            (3, 33),
            (4, 96),
            (5, 384),
            (2, 1536),
            // Runs of whole blocks longer than, shorter than and not a multiple of sixteen
            // (SIMD tiers may reduce sixteen blocks' maxima together).
            (3, 544),
            (7, 64),
            (1, 512),
            (2, 1000),
        ] {
            // Odd row counts get a padding block past the last input block.
            let kp = cols.div_ceil(QBLOCK) * QBLOCK + rows % 2 * QBLOCK;
            // Blocks of every scale, an all-zero block, and exact halves (rounding ties).
            let mut x: Vec<f32> = (0..rows * cols)
                .map(|i| {
                    let mag = [1e-3f32, 0.5, 7.0, 300.0][(i / QBLOCK) % 4];
                    ((next() % 20001) as f32 / 10000.0 - 1.0) * mag
                })
                .collect();
            if x.len() > 64 {
                x[32..64].fill(0.0);
                x[3] = 127.0;
                x[4] = 0.5;
                x[5] = -2.5;
            }
            let (mut q0, mut s0) = (vec![7i8; rows * kp], vec![0f32; rows * kp / QBLOCK]);
            let (mut q1, mut s1) = (vec![-7i8; rows * kp], vec![1f32; rows * kp / QBLOCK]);
            scalar::quantize_blocks(&x, rows, cols, kp, &mut q0, &mut s0);
            k.codes.encode(&mut q0); // the tier's own codes
            (k.quantize_blocks)(&x, rows, cols, kp, &mut q1, &mut s1);
            assert_eq!(q0, q1, "{:?} {rows}x{cols}", k.isa);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&s0), bits(&s1), "{:?} {rows}x{cols} scales", k.isa);
        }
    }
}

/// Blocks at the edges of the rounding: codes ±127 and exact halves at scale 1, the largest
/// finite values, a block of subnormals (whose scale underflows to 0, so that every code is
/// ±127, or 0 for a zero input), and blocks whose scales are subnormal.
#[test]
fn quantize_blocks_edge_values_match_scalar_bit_for_bit() {
    let tiny: Vec<f32> = (0..32)
        .map(|i| f32::from_bits(i as u32 % 7) * [1.0, -1.0][i % 3 % 2])
        .collect();
    let ties: Vec<f32> = (0..32).map(|i| i as f32 * 8.0 - 127.5 + 0.5).collect();
    let halves: Vec<f32> = (0..32)
        .map(|i| (i as f32 - 16.0) * 0.5 + [0.0, 127.0][i % 2])
        .collect();
    let big: Vec<f32> = (0..32)
        .map(|i| f32::MAX / (1 + i % 5) as f32 * [1.0, -1.0][i % 2])
        .collect();
    // Blocks whose scales are subnormal, their reciprocals finite or (3.7e-37) not.
    let sub = |m: f32| -> Vec<f32> { (0..32).map(|i| (i as f32 - 15.5) / 15.5 * m).collect() };
    let x: Vec<f32> = [
        tiny,
        ties,
        halves,
        big,
        sub(1e-36),
        sub(3.73e-37),
        sub(3.7e-37),
    ]
    .concat();
    for k in tiers() {
        let all = x.len() / QBLOCK;
        for (start, blocks) in (0..all).flat_map(|s| (1..=all - s).map(move |b| (s, b))) {
            let n = blocks * QBLOCK;
            let x = &x[start * QBLOCK..start * QBLOCK + n];
            let (mut q0, mut s0) = (vec![7i8; n], vec![0f32; blocks]);
            let (mut q1, mut s1) = (vec![-7i8; n], vec![1f32; blocks]);
            scalar::quantize_blocks(x, 1, n, n, &mut q0, &mut s0);
            k.codes.encode(&mut q0);
            (k.quantize_blocks)(x, 1, n, n, &mut q1, &mut s1);
            assert_eq!(q0, q1, "{:?} {blocks} blocks from {start}", k.isa);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&s0),
                bits(&s1),
                "{:?} {blocks} blocks from {start}: scales",
                k.isa
            );
        }
    }
}

#[test]
fn layer_norm_matches_scalar_bit_for_bit() {
    let mut next = rng(71);
    for k in tiers() {
        for n in (1..70).chain([383, 384, 385, 768, 1536]) {
            let offset = ((next() % 2001) as f32 / 100.0) - 10.0; // rows with a large mean
            let spread = [1e-3f32, 1.0, 50.0][n % 3];
            let mut val = |s: f32| ((next() % 20001) as f32 / 10000.0 - 1.0) * s;
            let x: Vec<f32> = (0..n).map(|_| offset + val(spread)).collect();
            let gamma: Vec<f32> = (0..n).map(|_| 1.0 + val(0.5)).collect();
            let beta: Vec<f32> = (0..n).map(|_| val(0.5)).collect();
            let (mut want, mut got) = (x.clone(), x);
            scalar::layer_norm(&mut want, &gamma, &beta, 1e-7);
            (k.layer_norm_rows_f32)(&mut got, None, &gamma, &beta, 1e-7);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&want), bits(&got), "{:?} n={n}", k.isa);
        }
    }
}

#[test]
fn layer_norm_rows_with_residual_match_scalar_rows_bit_for_bit() {
    let mut next = rng(73);
    for k in tiers() {
        // Row counts around the groups a tier may interleave; rows with and without tails.
        for (rows, n) in [
            (0usize, 8usize),
            (1, 5),
            (3, 384),
            (4, 16),
            (5, 383),
            (9, 40),
        ] {
            let mut val = |s: f32| ((next() % 20001) as f32 / 10000.0 - 1.0) * s;
            let x: Vec<f32> = (0..rows * n).map(|i| (i % 7) as f32 + val(3.0)).collect();
            let res: Vec<f32> = (0..rows * n).map(|_| val(2.0)).collect();
            let gamma: Vec<f32> = (0..n).map(|_| 1.0 + val(0.5)).collect();
            let beta: Vec<f32> = (0..n).map(|_| val(0.5)).collect();
            for residual in [None, Some(&res[..])] {
                let mut want = x.clone();
                for (i, row) in want.chunks_exact_mut(n).enumerate() {
                    if let Some(r) = residual {
                        for (v, r) in row.iter_mut().zip(&r[i * n..]) {
                            *v += r;
                        }
                    }
                    scalar::layer_norm(row, &gamma, &beta, 1e-7);
                }
                let mut got = x.clone();
                (k.layer_norm_rows_f32)(&mut got, residual, &gamma, &beta, 1e-7);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                let with = residual.is_some();
                assert_eq!(
                    bits(&want),
                    bits(&got),
                    "{:?} {rows}x{n} residual {with}",
                    k.isa
                );
            }
        }
    }
}

#[test]
fn softmax_rows_match_scaled_scalar_rows_bit_for_bit() {
    let mut next = rng(31);
    for k in tiers() {
        // Row counts around the groups a tier may interleave, rows with and without tails.
        for (rows, n) in [
            (0usize, 0usize),
            (3, 0),
            (1, 1),
            (4, 16),
            (5, 17),
            (7, 128),
            (8, 127),
            (9, 40),
        ] {
            let x: Vec<f32> = (0..rows * n)
                .map(|i| ((next() % 20001) as f32 / 10000.0 - 1.0) * [0.3f32, 9.0, 60.0][i % 3])
                .collect();
            let scale = 0.125f32 + (next() % 1000) as f32 * 1e-4;
            let mut want = x.clone();
            for row in want.chunks_mut(n.max(1)) {
                for v in row.iter_mut() {
                    *v *= scale;
                }
                scalar::softmax_fast(row);
            }
            let mut got = x;
            (k.softmax_rows_f32)(&mut got, rows, scale);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&want), bits(&got), "{:?} {rows}x{n}", k.isa);
        }
    }
}

#[test]
fn softmax_matches_scalar_bit_for_bit() {
    let mut next = rng(29);
    for k in tiers() {
        for n in (0..70).chain([127, 128, 255, 511]) {
            // Scores from tiny to past the exponent clamp, and rows with equal maxima.
            let spread = [0.01f32, 1.0, 30.0, 200.0][n % 4];
            let x: Vec<f32> = (0..n)
                .map(|_| ((next() % 20001) as f32 / 10000.0 - 1.0) * spread)
                .collect();
            let (mut want, mut got) = (x.clone(), x);
            scalar::softmax_fast(&mut want);
            (k.softmax_rows_f32)(&mut got, 1, 1.0);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&want), bits(&got), "{:?} n={n}", k.isa);
        }
        // Every lane of the exponential, including the clamped and special ones.
        let mut special = vec![
            0.0f32,
            -0.0,
            -87.0,
            -88.0,
            -1e4,
            f32::NEG_INFINITY,
            88.0,
            1e-30,
        ];
        special.extend((0..40).map(|i| -(i as f32) * 2.3));
        let (mut want, mut got) = (special.clone(), special);
        scalar::softmax_fast(&mut want);
        (k.softmax_rows_f32)(&mut got, 1, 1.0);
        assert_eq!(
            want.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
            got.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
            "{:?} special values",
            k.isa
        );
    }
}

#[test]
fn row_panel4_matches_scalar_bit_for_bit() {
    let mut next = rng(61);
    for k in tiers() {
        for case in 0..600 {
            let m = case % 5; // 0 to 4 rows
            let kn = (next() % 70) as usize; // includes 0
            let w = (next() % 100) as usize; // includes 0, tails of every width
            let stride = w + (next() % 5) as usize;
            let mut val = || (next() % 2001) as f32 / 1000.0 - 1.0;
            let rows: Vec<Vec<f32>> = (0..4).map(|_| (0..kn).map(|_| val()).collect()).collect();
            let b: Vec<f32> = (0..kn * stride + w).map(|_| val()).collect();
            let a = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
            let (mut want, mut got) = (vec![7f32; m * w + 3], vec![-7f32; m * w + 3]);
            scalar::row_panel4(a, m, &b, stride, &mut want, w);
            (k.row_panel4_f32)(a, m, &b, stride, &mut got, w);
            let bits = |v: &[f32]| v[..m * w].iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&want), bits(&got), "{:?} m={m} kn={kn} w={w}", k.isa);
            // Each row is the one-row kernel's.
            for r in 0..m {
                let mut one = vec![0f32; w];
                scalar::row_panel(a[r], &b, stride, &mut one);
                assert!(one
                    .iter()
                    .zip(&want[r * w..(r + 1) * w])
                    .all(|(x, y)| x.to_bits() == y.to_bits()));
            }
        }
    }
}

/// Every row count, the depths around the four-step unroll (0 to 70) and the widths around
/// each tile the tiers use (4, 16 and 32 columns, and the scalar columns after them), with
/// strides past the width: the same bits as scalar, and nothing written past the output.
#[test]
fn row_panel_tiles_match_scalar_bit_for_bit() {
    let mut next = rng(67);
    let widths = [
        0usize, 1, 3, 4, 5, 7, 12, 15, 16, 17, 19, 20, 31, 32, 33, 36, 47, 48, 51, 64, 67,
    ];
    for k in tiers() {
        for kn in (0usize..=9).chain([15, 16, 17, 31, 32, 33, 63, 64, 70]) {
            for &w in &widths {
                let stride = w + (next() % 6) as usize;
                let mut val = || (next() % 2001) as f32 / 1000.0 - 1.0;
                let rows: Vec<Vec<f32>> =
                    (0..4).map(|_| (0..kn).map(|_| val()).collect()).collect();
                let b: Vec<f32> = (0..kn.saturating_sub(1) * stride + w)
                    .map(|_| val())
                    .collect();
                let a = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
                for m in 1..=4 {
                    let (mut want, mut got) = (vec![7f32; m * w + 5], vec![7f32; m * w + 5]);
                    scalar::row_panel4(a, m, &b, stride, &mut want, w);
                    (k.row_panel4_f32)(a, m, &b, stride, &mut got, w);
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&want), bits(&got), "{:?} m={m} kn={kn} w={w}", k.isa);
                }
                let (mut want, mut got) = (vec![7f32; w], vec![-7f32; w]);
                scalar::row_panel(a[0], &b, stride, &mut want);
                (k.row_panel_f32)(a[0], &b, stride, &mut got);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&want), bits(&got), "{:?} one row kn={kn} w={w}", k.isa);
            }
        }
    }
}

#[test]
fn row_panel_matches_scalar_bit_for_bit() {
    let mut next = rng(17);
    for k in tiers() {
        for _ in 0..300 {
            let n = (next() % 70) as usize;
            let w = (next() % 140) as usize;
            let stride = w + (next() % 5) as usize;
            let a: Vec<f32> = (0..n)
                .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            let b: Vec<f32> = (0..n.max(1) * stride + w)
                .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            let (mut want, mut got) = (vec![9f32; w], vec![7f32; w]);
            scalar::row_panel(&a, &b, stride, &mut want);
            (k.row_panel_f32)(&a, &b, stride, &mut got);
            assert_eq!(want, got, "{:?} n={n} w={w} stride={stride}", k.isa);
        }
    }
}

#[test]
fn forcing_a_tier() {
    // The only test that touches the variable.
    std::env::set_var("DBRT_FORCE_ISA", "scalar");
    assert_eq!(Kernels::select(None).unwrap().isa, Isa::Scalar);
    std::env::set_var("DBRT_FORCE_ISA", "sse9");
    assert!(Kernels::select(None).is_err());
    // A tier of the other architecture (or one this CPU lacks): the typed error.
    let missing = if cfg!(target_arch = "x86_64") {
        "neon"
    } else {
        "avx2"
    };
    std::env::set_var("DBRT_FORCE_ISA", missing);
    assert!(matches!(
        Kernels::select(None),
        Err(dbrt::Error::UnsupportedIsa { .. })
    ));
    std::env::remove_var("DBRT_FORCE_ISA");
    let best = Kernels::select(None).unwrap().isa;
    assert_eq!(Some(&best), Isa::all_available().last());
    // An explicit choice wins over the variable; a tier the CPU lacks is an error.
    assert_eq!(Kernels::select(Some(Isa::Scalar)).unwrap().isa, Isa::Scalar);
    for isa in Isa::ALL {
        assert_eq!(Kernels::for_isa(isa).is_ok(), isa.available());
    }
}

#[test]
fn transpose8_matches_scalar() {
    let mut next = rng(97);
    for k in tiers() {
        for d in (0..20).chain([63, 64, 65, 384]) {
            let ld = 8 + (next() % 9) as usize;
            let rows: Vec<Vec<f32>> = (0..8)
                .map(|_| (0..d + 3).map(|_| (next() % 1000) as f32 - 500.0).collect())
                .collect();
            let src: [&[f32]; 8] = std::array::from_fn(|i| &rows[i][..]);
            let len = if d == 0 { 8 } else { (d - 1) * ld + 8 };
            let (mut want, mut got) = (vec![7f32; len], vec![7f32; len]);
            scalar::transpose8(src, d, &mut want, ld);
            (k.transpose8)(src, d, &mut got, ld);
            assert_eq!(want, got, "{:?} d={d} ld={ld}", k.isa);
            for dd in 0..d {
                for i in 0..8 {
                    assert_eq!(want[dd * ld + i], rows[i][dd]);
                }
            }
        }
    }
}

#[test]
fn a_tier_the_cpu_lacks_is_a_typed_error() {
    // Every architecture lacks the other's tiers: two at least.
    let missing: Vec<Isa> = Isa::ALL.into_iter().filter(|i| !i.available()).collect();
    assert!(missing.len() >= 2, "{missing:?}");
    for isa in missing {
        let unsupported = |r: dbrt::Result<Kernels>| matches!(r, Err(dbrt::Error::UnsupportedIsa { isa: name }) if name == isa.name());
        assert!(unsupported(Kernels::for_isa(isa)), "for_isa({isa:?})");
        assert!(unsupported(Kernels::select(Some(isa))), "select({isa:?})");
    }
}
