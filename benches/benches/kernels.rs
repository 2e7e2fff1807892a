//! Criterion benchmarks of every kernel in the table, on every tier this CPU runs, at
//! DeBERTa-v3-xsmall's shapes (hidden 384, FFN 1536, head 64, 128 tokens):
//! `cargo bench -p dbrt-benches --bench kernels`. Compare tiers within one run; the machine is
//! shared, so absolute numbers move between runs.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dbrt::format::pack;
use dbrt::kernels::{scalar, Isa, Kernels, Panel, Tile, MR, NR, QBLOCK};

fn tiers() -> Vec<Kernels> {
    Isa::all_available()
        .into_iter()
        .map(|i| Kernels::for_isa(i).unwrap())
        .collect()
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_i8");
    // 24 rows: whole row blocks of 4, 6 or 8, as a kernel may take them.
    const ROWS: usize = 24;
    for kp in [384usize, 1536] {
        let xq: Vec<i8> = values(ROWS * kp, 1)
            .iter()
            .map(|v| (v * 127.0) as i8)
            .collect();
        let xs = vec![0.01f32; ROWS * kp / QBLOCK];
        let panels: Vec<Vec<i8>> = (0..4)
            .map(|p| {
                values(kp * NR, 2 + p)
                    .iter()
                    .map(|v| (v * 127.0) as i8)
                    .collect()
            })
            .collect();
        let sums: Vec<Vec<i32>> = panels
            .iter()
            .map(|p| scalar::panel_block_sums(p, kp))
            .collect();
        // The same four panels in both packed layouts.
        let pairs: Vec<(Vec<i8>, Vec<i32>)> = (0..2)
            .map(|j| {
                (
                    pack::interleave_panels(&panels[2 * j], &panels[2 * j + 1]),
                    pack::interleave_block_sums(&sums[2 * j], &sums[2 * j + 1]),
                )
            })
            .collect();
        let alone = [0, 1, 2, 3].map(|i| Panel {
            w: &panels[i],
            sums: &sums[i],
            interleave: 1,
            layout: dbrt::kernels::WeightLayout::Group4,
        });
        let both = [0, 1, 2, 3].map(|i| {
            let span = pack::panel_span(kp, 2, i % 2);
            Panel {
                w: &pairs[i / 2].0[span.weights],
                sums: &pairs[i / 2].1[span.sums],
                interleave: 2,
                layout: dbrt::kernels::WeightLayout::Group4,
            }
        });
        g.throughput(Throughput::Elements((4 * ROWS * NR * kp) as u64)); // MACs of four panels
                                                                         // The i8mm tier's repack of the same panels (what a session of that tier reads).
        let smmla: Vec<Vec<i8>> = alone
            .iter()
            .map(|p| {
                let mut w = Vec::new();
                pack::repack_smmla_panel(p, kp, &mut w);
                w
            })
            .collect();
        let repacked = [0, 1, 2, 3].map(|i| pack::smmla_panel(&smmla[i], kp, 0).unwrap());
        for k in tiers() {
            let layouts = match k.weights {
                dbrt::kernels::WeightLayout::Group4 => vec![("panel8", alone), ("panel16", both)],
                dbrt::kernels::WeightLayout::Smmla => vec![("smmla", repacked)],
            };
            for (layout, four) in layouts {
                g.bench_with_input(
                    BenchmarkId::new(format!("four panels, {layout}, {}", k.isa.name()), kp),
                    &kp,
                    |b, &kp| {
                        let mut acc = [[[0f32; NR]; MR]; 4];
                        let mut out = [0f32; ROWS * Tile::COLS];
                        b.iter(|| {
                            match k.gemm_i8_panel4 {
                                Some(g4) => {
                                    g4(
                                        &xq,
                                        &xs,
                                        kp,
                                        four,
                                        None,
                                        Tile::new(&mut out, ROWS, Tile::COLS),
                                    );
                                    std::hint::black_box(&out);
                                }
                                None => {
                                    for r0 in (0..ROWS).step_by(MR) {
                                        let (x, s) = (&xq[r0 * kp..], &xs[r0 * kp / QBLOCK..]);
                                        for (p, a) in four.into_iter().zip(acc.iter_mut()) {
                                            (k.gemm_i8_panel)(x, s, MR, kp, p, a);
                                        }
                                    }
                                }
                            }
                            std::hint::black_box(&acc);
                        })
                    },
                );
            }
        }
    }
    g.finish();
}

fn attention(c: &mut Criterion) {
    let (t, d) = (128usize, 64usize);
    let q = values(4 * d, 5);
    let kt = values(d * t, 6);
    let rows = [&q[..d], &q[d..2 * d], &q[2 * d..3 * d], &q[3 * d..]];
    let mut g = c.benchmark_group("attention");
    g.throughput(Throughput::Elements((4 * d * t) as u64));
    for k in tiers() {
        let mut out = vec![0f32; 4 * t];
        g.bench_function(
            format!("scores, 4 queries, one panel each, {}", k.isa.name()),
            |b| {
                b.iter(|| {
                    for (r, o) in out.chunks_exact_mut(t).enumerate() {
                        (k.row_panel_f32)(rows[r], &kt, t, o);
                    }
                    std::hint::black_box(&out);
                })
            },
        );
        g.bench_function(
            format!("scores, 4 queries, row_panel4, {}", k.isa.name()),
            |b| {
                b.iter(|| {
                    (k.row_panel4_f32)(rows, 4, &kt, t, &mut out, t);
                    std::hint::black_box(&out);
                })
            },
        );
        let scores = values(t, 7);
        let mut row = scores.clone();
        g.bench_function(format!("softmax {t}, {}", k.isa.name()), |b| {
            b.iter(|| {
                row.copy_from_slice(&scores);
                (k.softmax_rows_f32)(&mut row, 1, 1.0);
                std::hint::black_box(&row);
            })
        });
    }
    g.finish();
}

fn elementwise(c: &mut Criterion) {
    let (t, h) = (128usize, 384usize);
    let x = values(t * h, 8);
    let mut g = c.benchmark_group("elementwise");
    g.throughput(Throughput::Elements((t * h) as u64));
    for k in tiers() {
        let (mut q, mut s) = (vec![0i8; t * h], vec![0f32; t * h / QBLOCK]);
        g.bench_function(format!("quantize 128x384, {}", k.isa.name()), |b| {
            b.iter(|| {
                (k.quantize_blocks)(&x, t, h, h, &mut q, &mut s);
                std::hint::black_box((&q, &s));
            })
        });
        let scales = [0.01f32; NR];
        let bias = [0.1f32; NR];
        g.bench_function(format!("epilogue + GELU, 128x384, {}", k.isa.name()), |b| {
            let mut acc = [[0.5f32; NR]; MR];
            b.iter(|| {
                for _ in 0..t * h / (MR * NR) {
                    (k.panel_epilogue)(&mut acc, MR, &scales, Some(&bias), true);
                }
                std::hint::black_box(&acc);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, gemm, attention, elementwise);
criterion_main!(benches);
