//! `dbrt bench`: for every model, ISA, sequence length, batch size and thread count, latency
//! (mean ± standard deviation over repetitions, percentiles over all runs), throughput, open
//! time, time to first result and peak RSS, each record naming the model, its weights, the
//! CPU and dbrt's version, so that a run on one board compares with a run on another.

mod host;
mod output;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use dbrt::kernels::Isa;
use dbrt::{Model, Sequence, Session};
use serde_json::{json, Value};

use crate::common::{backend_record, parse_isa, OffloadArgs};
pub use host::DBRT_VERSION;
use output::{Format, Printer};

/// The value at fraction `p` of `sorted` (not empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Mean and sample standard deviation (0 for one value).
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    (mean, var.sqrt())
}

#[derive(Args)]
#[command(
    after_help = "Example: the int8 and f32 default models, scalar and AVX2 kernels, as a \
Markdown table to paste into an issue:
  dbrt bench --model models/aegis-nli-xsmall-int8.dbrt,models/aegis-nli-xsmall.dbrt \\
    --isa scalar,avx2 --seq 32,128 --threads 1,2 --format md"
)]
pub struct BenchArgs {
    /// .dbrt model files to measure, repeated or comma-separated (`--model a.dbrt,b.dbrt`).
    #[arg(long, value_delimiter = ',', required = true, value_name = "FILE")]
    model: Vec<PathBuf>,
    /// Kernel tiers, comma-separated (`scalar,avx2`); each must run on this CPU. Default: the
    /// best this CPU runs, or DBRT_FORCE_ISA.
    #[arg(long, value_delimiter = ',', value_name = "ISA")]
    isa: Vec<String>,
    /// Sequence lengths in tokens, comma-separated; at most the model's maximum.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "32,128,512",
        value_name = "N"
    )]
    seq: Vec<usize>,
    /// Sequences per call, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1", value_name = "N")]
    batch: Vec<usize>,
    /// Threads per session, comma-separated (a session runs at most as many as there are
    /// cores, and reports the count it runs).
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_name = "N")]
    threads: Vec<usize>,
    /// Sessions running the same input at once, each on its own OS thread with `--threads`
    /// threads: throughput is then the total over all sessions, latencies those of every run.
    #[arg(long, default_value = "1", value_name = "N")]
    sessions: usize,
    /// Untimed runs per session before timing (the first gives the time to first result).
    #[arg(long, default_value = "1", value_name = "N")]
    warmup: usize,
    /// Repetitions: the mean ± standard deviation is over the repetitions' mean latencies.
    #[arg(long, default_value = "3", value_name = "N")]
    reps: usize,
    /// Timed runs per repetition and session; percentiles are over all runs.
    #[arg(long, default_value = "10", value_name = "N")]
    iters: usize,
    /// Output: text (an aligned table), md (Markdown), csv, json (one array) or jsonl.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Same as `--format jsonl` (one JSON record per line).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    #[command(flatten)]
    offload: OffloadArgs,
}

/// The arguments checked before anything runs: each error names the option and the value.
fn validate(a: &BenchArgs, models: &[(PathBuf, Model)]) -> Result<Vec<Option<Isa>>, String> {
    let list = |name: &str, values: &[usize]| -> Result<(), String> {
        if values.is_empty() {
            return Err(format!("--{name} is empty"));
        }
        match values.iter().find(|&&v| v == 0) {
            Some(v) => Err(format!("--{name} must be at least 1, got {v}")),
            None => Ok(()),
        }
    };
    list("seq", &a.seq)?;
    list("batch", &a.batch)?;
    list("threads", &a.threads)?;
    list("sessions", &[a.sessions])?;
    list("reps", &[a.reps])?;
    list("iters", &[a.iters])?;
    for (path, model) in models {
        // With a tokenizer, [CLS] and two [SEP] take three tokens.
        let min = if model.tokenizer().is_ok() { 3 } else { 1 };
        let max = model.max_sequence_length();
        if let Some(seq) = a.seq.iter().find(|s| !(min..=max).contains(*s)) {
            return Err(format!(
                "--seq {seq}: {} takes {min} to {max} tokens",
                path.display()
            ));
        }
    }
    if a.isa.is_empty() {
        return Ok(vec![None]);
    }
    a.isa.iter().map(|name| parse_isa(name).map(Some)).collect()
}

/// What every record of this run says about the machine, the build and a model.
struct Context {
    cpu: String,
    model: String,
    model_mb: f64,
    weights: String,
}

pub fn bench(a: BenchArgs) -> Result<(), String> {
    let format = if a.json { Format::Jsonl } else { a.format };
    let offload = a.offload.options()?;
    let models = a
        .model
        .iter()
        .map(|p| {
            Ok((
                p.clone(),
                Model::open(p).map_err(|e| format!("{}: {e}", p.display()))?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let isas = validate(&a, &models)?;
    let cpu = host::this_cpu();
    let contexts: Vec<Context> = models
        .iter()
        .map(|(path, model)| Context {
            cpu: cpu.clone(),
            model: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            model_mb: std::fs::metadata(path).map_or(f64::NAN, |m| m.len() as f64 / 1e6),
            weights: model.weight_type().name().to_string(),
        })
        .collect();
    // Each configuration opens its model anew (open time is measured): these are closed.
    drop(models);
    // Samples of what the rows will show, for the table's column widths: every model, and the
    // longest ISA and backend names a row can have.
    let known: Vec<Value> = contexts
        .iter()
        .map(|c| {
            json!({"model": c.model, "weights": c.weights, "cpu": c.cpu,
                   "dbrt_version": host::DBRT_VERSION, "isa": "neon-dotprod", "backend": "ort-cpu"})
        })
        .collect();
    let mut printer = Printer::new(format, &known.iter().collect::<Vec<_>>());
    printer.header();
    let shapes: Vec<(usize, usize, usize)> = a
        .seq
        .iter()
        .flat_map(|&s| a.batch.iter().map(move |&b| (s, b)))
        .flat_map(|(s, b)| a.threads.iter().map(move |&t| (s, b, t)))
        .collect();
    for (path, context) in a.model.iter().zip(&contexts) {
        for &isa in &isas {
            for &(seq, batch, threads) in &shapes {
                let opts = dbrt::SessionOptions {
                    max_sequence_length: Some(seq),
                    max_batch: batch,
                    threads,
                    isa,
                    offload: offload.clone(),
                    ..Default::default()
                };
                let row = bench_one(&a, path, context, opts).map_err(|e| {
                    let isa = isa.map_or("", |i| i.name());
                    let m = &context.model;
                    format!("{m} {isa} seq {seq} batch {batch} threads {threads}: {e}")
                })?;
                printer.row(row);
            }
        }
    }
    printer.finish();
    Ok(())
}

/// One configuration: `a.sessions` sessions, each on its own thread, run the same batch
/// `a.warmup` times untimed, then, once all are warm, `a.reps` × `a.iters` times timed.
fn bench_one(
    a: &BenchArgs,
    path: &PathBuf,
    context: &Context,
    opts: dbrt::SessionOptions,
) -> Result<Value, String> {
    let (seq, batch, threads) = (
        opts.max_sequence_length.unwrap_or(0),
        opts.max_batch,
        opts.threads,
    );
    host::reset_peak_rss();
    // Open anew for each configuration: open time and time to first result are part of what is
    // measured.
    let t0 = Instant::now();
    let model = Arc::new(Model::open(path).map_err(|e| e.to_string())?);
    let open_ms = t0.elapsed().as_secs_f64() * 1e3;
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
    let timed = a.reps * a.iters;
    let ready = std::sync::Barrier::new(a.sessions + 1);
    let (wall_s, per_session) = std::thread::scope(|scope| {
        let runners: Vec<_> = sessions
            .iter_mut()
            .map(|s| {
                let (seqs, ready) = (&seqs, &ready);
                scope.spawn(move || -> Result<(Option<f64>, Vec<f64>), String> {
                    let mut out = vec![0f32; batch * labels];
                    let mut first = None;
                    let mut run = |s: &mut Session| -> Result<(), String> {
                        s.run_batch_into(seqs, &mut out)
                            .map_err(|e| e.to_string())?;
                        first.get_or_insert(t0.elapsed().as_secs_f64() * 1e3);
                        Ok(())
                    };
                    let warm = (0..a.warmup).try_for_each(|_| run(s));
                    // Everyone waits, warm or failed: no session is left at the barrier.
                    ready.wait();
                    warm?;
                    let mut times = Vec::with_capacity(timed);
                    for _ in 0..timed {
                        let t = Instant::now();
                        run(s)?;
                        times.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok((first, times))
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        let results = runners
            .into_iter()
            .map(|r| {
                r.join()
                    .map_err(|_| "a bench session panicked".to_string())?
            })
            .collect::<Result<Vec<_>, String>>();
        Ok::<_, String>((start.elapsed().as_secs_f64(), results?))
    })?;
    // Time to first result: when the last session had its first.
    let first_result_ms = per_session
        .iter()
        .filter_map(|(first, _)| *first)
        .fold(0.0, f64::max);
    // A repetition's mean is over every session's runs in that repetition.
    let rep_means: Vec<f64> = (0..a.reps)
        .map(|r| {
            let rep = per_session
                .iter()
                .flat_map(|(_, t)| &t[r * a.iters..(r + 1) * a.iters]);
            rep.sum::<f64>() / (a.iters * a.sessions) as f64
        })
        .collect();
    let (mean_ms, stddev_ms) = mean_sd(&rep_means);
    let mut times: Vec<f64> = per_session.into_iter().flat_map(|(_, t)| t).collect();
    times.sort_by(f64::total_cmp);
    let runs_per_s = times.len() as f64 / wall_s;
    let record = backend_record(&sessions[0]);
    Ok(json!({
        "model": context.model, "model_mb": context.model_mb, "weights": context.weights,
        "cpu": context.cpu, "dbrt_version": host::DBRT_VERSION,
        "backend": record["backend"], "fallback": record["fallback"],
        "seq": ids.len(), "batch": batch, "threads": threads_run, "threads_requested": threads,
        "sessions": a.sessions, "isa": isa_name,
        "warmup": a.warmup, "reps": a.reps, "iters": a.iters,
        "mean_ms": mean_ms, "stddev_ms": stddev_ms,
        "p50_ms": percentile(&times, 0.5), "p90_ms": percentile(&times, 0.9),
        "p99_ms": percentile(&times, 0.99), "min_ms": times[0],
        "runs_per_s": runs_per_s, "throughput_seq_per_s": runs_per_s * batch as f64,
        "open_ms": open_ms, "first_result_ms": first_result_ms, "peak_rss_mb": host::peak_rss_mb(),
    }))
}
