//! tract on the package's own int8 ONNX graph, for benches/peers.py: prints one JSON line per
//! (sequence length) with p50/p90 latency in ms, one thread (tract runs single-threaded).
//! usage: tract_peer MODEL.onnx SEQ[,SEQ...] ITERS
//! Build: cargo build --release -p dbrt-benches --features tract --bin tract_peer

use std::time::Instant;

use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let (path, seqs, iters) = (&args[1], &args[2], args[3].parse::<usize>()?);
    for seq in seqs.split(',').map(|s| s.parse::<usize>()) {
        let seq = seq?;
        let t0 = Instant::now();
        let mut model = tract_onnx::onnx().model_for_path(path)?;
        // Every input is [1, seq] of i64 (input_ids, attention_mask, ...).
        for i in 0..model.inputs.len() {
            model.set_input_fact(i, i64::fact([1, seq]).into())?;
        }
        let plan = model.into_optimized()?.into_runnable()?;
        let open_ms = t0.elapsed().as_secs_f64() * 1e3;
        let inputs: TVec<TValue> = (0..plan.model().inputs.len())
            .map(|i| {
                let name = &plan.model().node(plan.model().inputs[i].node).name;
                let v: Vec<i64> = if name.contains("mask") {
                    vec![1; seq]
                } else {
                    (0..seq as i64).map(|j| 1 + (j * 7919) % 120_000).collect()
                };
                tract_ndarray::Array2::from_shape_vec((1, seq), v)
                    .unwrap()
                    .into_tvalue()
            })
            .collect();
        plan.run(inputs.clone())?; // warm-up
        let mut times: Vec<f64> = (0..iters)
            .map(|_| {
                let t = Instant::now();
                plan.run(inputs.clone()).expect("tract run");
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "{{\"seq\":{seq},\"threads\":1,\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"open_ms\":{open_ms:.1}}}",
            pct(0.5),
            pct(0.9)
        );
    }
    Ok(())
}
