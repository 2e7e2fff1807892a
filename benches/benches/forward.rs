//! Criterion benchmarks of the real int8 model end to end (token ids to logits): 32 and 128
//! tokens, 1 and 2 threads, the best tier of this CPU. `scripts/fetch-model.sh` with
//! `DBRT_DTYPE=int8` makes the file; `DBRT_BENCH_MODEL` points elsewhere.
//! `cargo bench -p dbrt-benches --bench forward`. `dbrt bench` and `benches/peers.py` measure
//! the same against onnxruntime; this one tracks dbrt across commits.

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dbrt::{Model, Sequence, Session, SessionOptions};

fn forward(c: &mut Criterion) {
    let path = std::env::var("DBRT_BENCH_MODEL").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/aegis-nli-xsmall-int8.dbrt")
            .display()
            .to_string()
    });
    let model = Arc::new(Model::open(&path).unwrap_or_else(|e| {
        panic!("{path}: {e} (run DBRT_DTYPE=int8 scripts/fetch-model.sh models/aegis-nli-xsmall-int8.dbrt)")
    }));
    let mut g = c.benchmark_group("forward int8");
    for threads in [1usize, 2] {
        let opts = SessionOptions {
            threads,
            ..Default::default()
        };
        let mut s = Session::new(model.clone(), opts).unwrap();
        for tokens in [32usize, 128] {
            let ids: Vec<u32> = (0..tokens as u32)
                .map(|i| 1 + (i * 7919) % 120_000)
                .collect();
            g.bench_with_input(
                BenchmarkId::new(format!("{threads} thread(s), {}", s.isa().name()), tokens),
                &ids,
                |b, ids| {
                    b.iter(|| {
                        let logits = s
                            .run_logits(Sequence {
                                ids,
                                type_ids: None,
                            })
                            .unwrap();
                        std::hint::black_box(logits[0]);
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = forward
}
criterion_main!(benches);
