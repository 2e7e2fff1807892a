//! `dbrt`: the runtime-side command. It depends on the runtime only, so it builds for an edge
//! board as the library does.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use dbrt::offload::{BackendChoice, FallbackPolicy, OffloadOptions};
use dbrt::{Model, Sequence, Session};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "dbrt",
    version,
    about = "Run DeBERTa-v3 models from .dbrt files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify a premise / hypothesis pair; prints every label with its probability.
    Classify {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        premise: String,
        #[arg(long)]
        hypothesis: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        offload: OffloadArgs,
    },
    /// Tokenize every row of a JSONL file (`premise`, optional `hypothesis`) without running the
    /// model; writes each row back with `input_ids` (and `token_type_ids` where the model has
    /// token types).
    Tokenize {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure latency percentiles, throughput, open time, time to first result and peak RSS
    /// for every combination of sequence length, batch size and thread count, with one session
    /// or several running at once.
    Bench(BenchArgs),
    /// Run every row of a JSONL file (`premise`/`hypothesis`, or `input_ids` with optional
    /// `token_type_ids`) and write it back with `input_ids` (and `token_type_ids` where the model
    /// has token types) and `logits` added; prints agreement with `logits_fp32` where present.
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Tokenize the text even when the row carries `input_ids`.
        #[arg(long)]
        retokenize: bool,
        #[command(flatten)]
        offload: OffloadArgs,
    },
}

/// Where the encoder runs: dbrt's CPU kernels or an accelerator (see README "NPU offload").
#[derive(Args, Clone)]
struct OffloadArgs {
    /// cpu (dbrt's kernels), auto (an accelerator that attaches, else cpu), qnn (Qualcomm's NPU
    /// through onnxruntime's QNN provider) or ort-cpu (onnxruntime's CPU provider).
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// The directory `dbrt-convert export-onnx` wrote for this model.
    #[arg(long)]
    artifacts: Option<PathBuf>,
    /// When a call runs on the CPU instead: always (recorded and logged), not-on-device-error
    /// (a device error fails the call), never (the backend must attach and run every call).
    #[arg(long, default_value = "always")]
    fallback: String,
    /// onnxruntime's shared library (default: $DBRT_ONNXRUNTIME_LIB, then the system's).
    #[arg(long)]
    onnxruntime_lib: Option<PathBuf>,
    /// onnxruntime's QNN provider library, next to libQnnHtp.so (default: $DBRT_QNN_EP_LIB).
    #[arg(long)]
    qnn_lib: Option<PathBuf>,
    /// AscendCL's library, libascendcl.so, for --backend ascend (default: $DBRT_ASCENDCL_LIB,
    /// then the system's).
    #[arg(long)]
    ascendcl_lib: Option<PathBuf>,
    /// The Ascend device id (aclrtSetDevice) for --backend ascend.
    #[arg(long, default_value_t = 0)]
    ascend_device: i32,
}

impl OffloadArgs {
    fn options(&self) -> Result<OffloadOptions, String> {
        Ok(OffloadOptions {
            backend: self
                .backend
                .parse::<BackendChoice>()
                .map_err(|e| e.to_string())?,
            artifacts: self.artifacts.clone(),
            fallback: match self.fallback.as_str() {
                "always" => FallbackPolicy::Always,
                "not-on-device-error" => FallbackPolicy::NotOnDeviceError,
                "never" => FallbackPolicy::Never,
                f => {
                    return Err(format!(
                        "--fallback {f}: always, not-on-device-error or never"
                    ))
                }
            },
            onnxruntime_library: self.onnxruntime_lib.clone(),
            qnn_library: self.qnn_lib.clone(),
            ascendcl_library: self.ascendcl_lib.clone(),
            ascend_device: self.ascend_device,
        })
    }
}

/// Which backend ran the session's last call, and why it fell back if it did.
fn backend_record(session: &Session) -> Value {
    json!({
        "backend": session.last_backend().unwrap_or("none"),
        "fallback": session.last_fallback().map(|f| json!({
            "kind": f.kind.as_str(), "message": f.message,
        })),
    })
}

fn open(path: &PathBuf, offload: OffloadOptions) -> Result<(Arc<Model>, Session), String> {
    let model = Arc::new(Model::open(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let options = dbrt::SessionOptions {
        offload,
        ..Default::default()
    };
    let session = Session::new(model.clone(), options).map_err(|e| e.to_string())?;
    Ok((model, session))
}

fn classify(
    model: PathBuf,
    premise: String,
    hypothesis: Option<String>,
    as_json: bool,
    offload: OffloadOptions,
) -> Result<(), String> {
    let (model, mut session) = open(&model, offload)?;
    let probs = session
        .classify(&premise, hypothesis.as_deref())
        .map_err(|e| e.to_string())?;
    if as_json {
        let labels: serde_json::Map<String, Value> = model
            .labels()
            .iter()
            .zip(&probs)
            .map(|(l, p)| (l.clone(), json!(p)))
            .collect();
        let mut out = backend_record(&session);
        out["labels"] = json!(labels);
        println!("{out}");
    } else {
        for (label, p) in model.labels().iter().zip(&probs) {
            println!("{label:<16} {p:.4}");
        }
        if let Some(f) = session.last_fallback() {
            println!("(ran on the CPU: {f})");
        } else if session.backend() != "cpu" {
            println!("(encoder on {})", session.backend());
        }
    }
    Ok(())
}

/// Reads JSONL rows, hands each to `f`, writes what it returns.
fn map_jsonl(
    data: &PathBuf,
    out: &PathBuf,
    mut f: impl FnMut(usize, Value) -> Result<Value, String>,
) -> Result<usize, String> {
    let input = std::fs::File::open(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let output = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = BufWriter::new(output);
    let mut rows = 0;
    for (n, line) in std::io::BufReader::new(input).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Value = serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        writeln!(w, "{}", f(n + 1, row)?).map_err(|e| e.to_string())?;
        rows += 1;
    }
    w.flush().map_err(|e| e.to_string())?;
    Ok(rows)
}

fn tokenize(model: PathBuf, data: PathBuf, out: PathBuf) -> Result<(), String> {
    let (model, mut session) = open(&model, OffloadOptions::default())?;
    let with_types = model.config().type_vocab_size > 0;
    let t0 = std::time::Instant::now();
    let mut tokens = 0;
    let rows = map_jsonl(&data, &out, |n, mut row| {
        let premise = row
            .get("premise")
            .and_then(Value::as_str)
            .ok_or(format!("line {n}: no premise"))?
            .to_string();
        let hyp = row
            .get("hypothesis")
            .and_then(Value::as_str)
            .map(str::to_string);
        let (ids, types) = session
            .tokenize(&premise, hyp.as_deref())
            .map_err(|e| format!("line {n}: {e}"))?;
        tokens += ids.len();
        row["input_ids"] = json!(ids);
        if with_types {
            row["token_type_ids"] = json!(types);
        }
        Ok(row)
    })?;
    eprintln!(
        "rows: {rows}, tokens: {tokens}, {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

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
struct BenchArgs {
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

fn bench(a: BenchArgs) -> Result<(), String> {
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

/// Mean over labels of |p_a - p_b| between the probabilities of two logit vectors.
fn mean_abs_dp(a: &[f32], b: &[f32]) -> f64 {
    let (pa, pb) = (dbrt::softmax(a), dbrt::softmax(b));
    pa.iter()
        .zip(&pb)
        .map(|(x, y)| (x - y).abs() as f64)
        .sum::<f64>()
        / pa.len() as f64
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

/// The token ids under `key` in row `line`, if it has them: an array of integers that fit in 32
/// bits, or an error naming the line, the field and the entry.
fn ids_field(row: &Value, key: &str, line: usize) -> Result<Option<Vec<u32>>, String> {
    let Some(v) = row.get(key) else {
        return Ok(None);
    };
    let entries = v
        .as_array()
        .ok_or_else(|| format!("line {line}: {key} is {v}, not an array of integers"))?;
    entries
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| {
                    format!("line {line}: {key}[{i}] is {v}, not an integer in 0..=4294967295")
                })
        })
        .collect::<Result<Vec<u32>, String>>()
        .map(Some)
}

fn eval(
    model: PathBuf,
    data: PathBuf,
    out: PathBuf,
    retokenize: bool,
    offload: OffloadOptions,
) -> Result<(), String> {
    let (model, mut session) = open(&model, offload)?;
    // Calls per backend that ran them, and fallbacks by kind.
    let mut ran_on: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let mut fell_back: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let input = std::fs::File::open(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let output = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = BufWriter::new(output);
    let (mut rows, mut compared, mut agree, mut max_diff) = (0usize, 0usize, 0usize, 0f32);
    let mut sum_dp = 0f64;
    let (mut ort_rows, mut ort_agree, mut ort_dp) = (0usize, 0usize, 0f64);
    let t0 = std::time::Instant::now();
    for (n, line) in std::io::BufReader::new(input).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let mut row: Value =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let given = match retokenize {
            false => ids_field(&row, "input_ids", n + 1)?,
            true => None,
        };
        let (ids, types) = match given {
            Some(ids) => {
                let types = ids_field(&row, "token_type_ids", n + 1)?;
                if let Some(t) = types.as_ref().filter(|t| t.len() != ids.len()) {
                    return Err(format!(
                        "line {}: {} token_type_ids for {} input_ids",
                        n + 1,
                        t.len(),
                        ids.len()
                    ));
                }
                (ids, types)
            }
            None => {
                let premise = row
                    .get("premise")
                    .and_then(Value::as_str)
                    .ok_or(format!("line {}: no premise", n + 1))?;
                let hyp = row.get("hypothesis").and_then(Value::as_str);
                let (ids, types) = session
                    .tokenize(premise, hyp)
                    .map_err(|e| format!("line {}: {e}", n + 1))?;
                let types = (model.config().type_vocab_size > 0).then(|| types.to_vec());
                let ids = ids.to_vec();
                // Token types that came with the row belong to its old ids.
                if let Some(r) = row.as_object_mut() {
                    r.remove("token_type_ids");
                }
                (ids, types)
            }
        };
        let logits = session
            .run_logits(Sequence {
                ids: &ids,
                type_ids: types.as_deref(),
            })
            .map_err(|e| format!("line {}: {e}", n + 1))?;
        let logits = logits.to_vec();
        *ran_on
            .entry(session.last_backend().unwrap_or("none"))
            .or_default() += 1;
        if let Some(f) = session.last_fallback() {
            *fell_back.entry(f.kind.as_str()).or_default() += 1;
        }
        let floats = |key: &str| -> Option<Vec<f32>> {
            let a = row.get(key)?.as_array()?;
            Some(
                a.iter()
                    .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
                    .collect(),
            )
        };
        if let Some(r) = floats("logits_fp32").filter(|r| r.len() == logits.len()) {
            compared += 1;
            agree += (argmax(&r) == argmax(&logits)) as usize;
            for (a, b) in r.iter().zip(&logits) {
                max_diff = max_diff.max((a - b).abs());
            }
            sum_dp += mean_abs_dp(&r, &logits);
            // The rows' onnxruntime int8 logits, for a comparison on the same rows.
            if let Some(o) = floats("logits_ort_int8_per_channel").filter(|o| o.len() == r.len()) {
                ort_rows += 1;
                ort_agree += (argmax(&r) == argmax(&o)) as usize;
                ort_dp += mean_abs_dp(&r, &o);
            }
        }
        row["input_ids"] = json!(ids);
        if let Some(types) = &types {
            row["token_type_ids"] = json!(types);
        }
        row["logits"] = json!(logits);
        row["backend"] = json!(session.last_backend());
        writeln!(w, "{row}").map_err(|e| e.to_string())?;
        rows += 1;
    }
    w.flush().map_err(|e| e.to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "rows: {rows} ({:.1} ms/row)",
        1e3 * secs / rows.max(1) as f64
    );
    let counts = |m: &std::collections::BTreeMap<&str, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("encoder ran on: {}", counts(&ran_on));
    if !fell_back.is_empty() {
        println!("fell back to the CPU: {}", counts(&fell_back));
    }
    if compared > 0 {
        println!(
            "vs logits_fp32 on {compared} rows: argmax agreement {:.2}% ({agree}/{compared}), max |dlogit| {max_diff:.3e}, mean |dp| {:.2e}",
            100.0 * agree as f64 / compared as f64,
            sum_dp / compared as f64
        );
    }
    if ort_rows > 0 {
        println!(
            "onnxruntime int8 per-channel on the same {ort_rows} rows: argmax agreement {:.2}% ({ort_agree}/{ort_rows}), mean |dp| {:.2e}",
            100.0 * ort_agree as f64 / ort_rows as f64,
            ort_dp / ort_rows as f64
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let r = match Cli::parse().command {
        Command::Classify {
            model,
            premise,
            hypothesis,
            json,
            offload,
        } => offload
            .options()
            .and_then(|o| classify(model, premise, hypothesis, json, o)),
        Command::Eval {
            model,
            data,
            out,
            retokenize,
            offload,
        } => offload
            .options()
            .and_then(|o| eval(model, data, out, retokenize, o)),
        Command::Tokenize { model, data, out } => tokenize(model, data, out),
        Command::Bench(args) => bench(args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dbrt: {e}");
            ExitCode::FAILURE
        }
    }
}
