//! `dbrt bench`: latency percentiles, throughput, open time, time to first result and peak
//! RSS for every combination of sequence length, batch size and thread count.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use dbrt::{Model, Sequence, Session};
use serde_json::{json, Value};

use crate::common::{backend_record, OffloadArgs};

/// Peak resident memory of this process so far (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The value at fraction `p` of `sorted` (not empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, value_delimiter = ',', default_value = "32,128,512")]
    seq: Vec<usize>,
    /// Threads per session (a session runs at most as many as there are cores, and reports the
    /// count it runs).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "1")]
    batch: Vec<usize>,
    /// Sessions running the same input at once, each on its own OS thread with `--threads`
    /// threads: throughput is then the total over all sessions, latencies those of every run.
    #[arg(long, default_value = "1")]
    sessions: usize,
    /// Timed iterations per configuration and session (after one warm-up).
    #[arg(long, default_value = "20")]
    iters: usize,
    /// Kernel tier (default: the best this CPU runs; DBRT_FORCE_ISA also works).
    #[arg(long)]
    isa: Option<String>,
    /// One JSON object per configuration and line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    offload: OffloadArgs,
}

pub fn bench(a: BenchArgs) -> Result<(), String> {
    let isa = a
        .isa
        .as_deref()
        .map(dbrt::kernels::Isa::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let positive = |name: &str, values: &[usize]| match values.iter().find(|&&v| v == 0) {
        Some(_) => Err(format!("--{name} must be at least 1")),
        None => Ok(()),
    };
    positive("seq", &a.seq)?;
    positive("threads", &a.threads)?;
    positive("batch", &a.batch)?;
    positive("sessions", &[a.sessions])?;
    positive("iters", &[a.iters])?;
    for &seq in &a.seq {
        for &threads in &a.threads {
            for &batch in &a.batch {
                let row = bench_one(&a, isa, seq, threads, batch)?;
                if a.json {
                    println!("{row}");
                } else {
                    let f = |k: &str| row[k].as_f64().unwrap_or(f64::NAN);
                    println!(
                        "seq {:>3} batch {batch} threads {} sessions {} {:<12} {:<8} p50 {:7.2} ms  p90 {:7.2} ms  p99 {:7.2} ms  {:7.1} runs/s  {:7.1} seq/s  open {:.1} ms  first {:.1} ms  peak RSS {:.1} MB",
                        row["seq"],
                        row["threads"],
                        a.sessions,
                        row["isa"].as_str().unwrap_or("?"),
                        row["backend"].as_str().unwrap_or("?"),
                        f("p50_ms"),
                        f("p90_ms"),
                        f("p99_ms"),
                        f("runs_per_s"),
                        f("throughput_seq_per_s"),
                        f("open_ms"),
                        f("first_result_ms"),
                        f("peak_rss_mb"),
                    );
                }
            }
        }
    }
    Ok(())
}

/// One configuration: `a.sessions` sessions, each on its own thread, run the same batch
/// `a.iters` times at once (after one warm-up each, which all finish before timing starts).
fn bench_one(
    a: &BenchArgs,
    isa: Option<dbrt::kernels::Isa>,
    seq: usize,
    threads: usize,
    batch: usize,
) -> Result<Value, String> {
    use std::time::Instant;
    // Open anew for each configuration: open time and time to first result are part of what is
    // measured.
    let t0 = Instant::now();
    let model = Arc::new(Model::open(&a.model).map_err(|e| e.to_string())?);
    let open_ms = t0.elapsed().as_secs_f64() * 1e3;
    let seq = seq.min(model.max_sequence_length());
    let opts = dbrt::SessionOptions {
        max_sequence_length: Some(seq),
        max_batch: batch,
        threads,
        isa,
        offload: a.offload.options()?,
        ..Default::default()
    };
    let mut sessions = (0..a.sessions)
        .map(|_| Session::new(model.clone(), opts.clone()).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    // Real token ids: a long text through the model's own tokenizer, cut to `seq`.
    let text = "The quick brown fox jumps over the lazy dog while the committee reviews its annual budget. ".repeat(64);
    let ids: Vec<u32> = match sessions[0].tokenize(&text, None) {
        Ok((ids, _)) => ids.to_vec(),
        Err(_) => (0..seq as u32)
            .map(|i| 1 + i % (model.config().vocab_size as u32 - 1))
            .collect(),
    };
    let (isa_name, threads_run) = (sessions[0].isa().name(), sessions[0].threads());
    let seqs: Vec<Sequence<'_>> = (0..batch)
        .map(|_| Sequence {
            ids: &ids,
            type_ids: None,
        })
        .collect();
    let labels = model.config().num_labels;
    let ready = std::sync::Barrier::new(a.sessions + 1);
    let (first_result_ms, wall_s, times) = std::thread::scope(|scope| {
        let runners: Vec<_> = sessions
            .iter_mut()
            .map(|s| {
                let (seqs, ready) = (&seqs, &ready);
                scope.spawn(move || -> Result<Vec<f64>, String> {
                    let mut out = vec![0f32; batch * labels];
                    let first = s.run_batch_into(seqs, &mut out).map_err(|e| e.to_string());
                    ready.wait();
                    first?;
                    Ok((0..a.iters)
                        .map(|_| {
                            let t = Instant::now();
                            s.run_batch_into(seqs, &mut out).expect("ran once already");
                            t.elapsed().as_secs_f64() * 1e3
                        })
                        .collect())
                })
            })
            .collect();
        ready.wait();
        let first_result_ms = t0.elapsed().as_secs_f64() * 1e3;
        let start = Instant::now();
        let mut times = Vec::with_capacity(a.sessions * a.iters);
        for r in runners {
            times.extend(
                r.join()
                    .map_err(|_| "a bench session panicked".to_string())??,
            );
        }
        Ok::<_, String>((first_result_ms, start.elapsed().as_secs_f64(), times))
    })?;
    let mut times = times;
    times.sort_by(f64::total_cmp);
    let runs_per_s = times.len() as f64 / wall_s;
    let record = backend_record(&sessions[0]);
    Ok(json!({
        "backend": record["backend"], "fallback": record["fallback"],
        "seq": ids.len(), "batch": batch, "threads": threads_run, "threads_requested": threads,
        "sessions": a.sessions, "isa": isa_name,
        "weights": format!("{:?}", model.weight_type()).to_lowercase(),
        "p50_ms": percentile(&times, 0.5), "p90_ms": percentile(&times, 0.9),
        "p99_ms": percentile(&times, 0.99), "min_ms": times[0],
        "runs_per_s": runs_per_s, "throughput_seq_per_s": runs_per_s * batch as f64,
        "open_ms": open_ms, "first_result_ms": first_result_ms, "peak_rss_mb": peak_rss_mb(),
    }))
}
