//! Scalar f32 reference forward pass of the default model at several sequence lengths.
//! `cargo bench -p dbrt-benches` (after scripts/fetch-model.sh). Prints median and p90 latency.

use std::sync::Arc;
use std::time::Instant;

fn main() {
    let path = std::env::var("DBRT_BENCH_MODEL").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/aegis-nli-xsmall.dbrt"
        )
        .to_string()
    });
    let t0 = Instant::now();
    let model = match dbrt::Model::open(&path) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("{path}: {e} (run scripts/fetch-model.sh)");
            return;
        }
    };
    let open_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut s = dbrt::Session::new(model.clone(), Default::default()).unwrap();
    println!(
        "model {path}: open {open_ms:.1} ms, weights {:?}",
        model.weight_type()
    );
    for seq in [32usize, 128] {
        let ids: Vec<u32> = (0..seq as u32)
            .map(|i| if i == 0 { 1 } else { 1000 + i * 7 })
            .collect();
        let run = |s: &mut dbrt::Session| {
            s.logits(dbrt::Sequence {
                ids: &ids,
                type_ids: None,
            })
            .unwrap()
            .to_vec()
        };
        run(&mut s);
        let mut times: Vec<f64> = (0..10)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(run(&mut s));
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "seq {seq:>4}: p50 {:.1} ms, p90 {:.1} ms (scalar f32, 1 thread)",
            times[5], times[9]
        );
    }
}
