//! `dbrt`: the runtime-side command. It depends on the runtime only, so it builds for an edge
//! board as the library does.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
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
    /// Run every row of a JSONL file (`premise`/`hypothesis`, or `input_ids`) and write it back
    /// with `input_ids` and `logits` added; prints agreement with `logits_fp32` where present.
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
    },
}

fn open(path: &PathBuf) -> Result<(Arc<Model>, Session), String> {
    let model = Arc::new(Model::open(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let session = Session::new(model.clone(), Default::default()).map_err(|e| e.to_string())?;
    Ok((model, session))
}

fn classify(
    model: PathBuf,
    premise: String,
    hypothesis: Option<String>,
    as_json: bool,
) -> Result<(), String> {
    let (model, mut session) = open(&model)?;
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
        println!("{}", json!({ "labels": labels }));
    } else {
        for (label, p) in model.labels().iter().zip(&probs) {
            println!("{label:<16} {p:.4}");
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
    let (model, mut session) = open(&model)?;
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

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

fn eval(model: PathBuf, data: PathBuf, out: PathBuf, retokenize: bool) -> Result<(), String> {
    let (model, mut session) = open(&model)?;
    let input = std::fs::File::open(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let output = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = BufWriter::new(output);
    let (mut rows, mut compared, mut agree, mut max_diff) = (0usize, 0usize, 0usize, 0f32);
    let mut sum_dp = 0f64;
    let t0 = std::time::Instant::now();
    for (n, line) in std::io::BufReader::new(input).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let mut row: Value =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let given: Option<Vec<u32>> = row.get("input_ids").and_then(Value::as_array).map(|a| {
            a.iter()
                .map(|v| v.as_u64().unwrap_or(u64::MAX).min(u32::MAX as u64) as u32)
                .collect()
        });
        let (ids, types) = match (given, retokenize) {
            (Some(ids), false) => (ids, None),
            _ => {
                let premise = row
                    .get("premise")
                    .and_then(Value::as_str)
                    .ok_or(format!("line {}: no premise", n + 1))?;
                let hyp = row.get("hypothesis").and_then(Value::as_str);
                let (ids, types) = session
                    .tokenize(premise, hyp)
                    .map_err(|e| format!("line {}: {e}", n + 1))?;
                (ids.to_vec(), Some(types.to_vec()))
            }
        };
        let types = types.filter(|_| model.config().type_vocab_size > 0);
        let logits = session
            .logits(Sequence {
                ids: &ids,
                type_ids: types.as_deref(),
            })
            .map_err(|e| format!("line {}: {e}", n + 1))?;
        let logits = logits.to_vec();
        if let Some(reference) = row.get("logits_fp32").and_then(Value::as_array) {
            let r: Vec<f32> = reference
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
                .collect();
            if r.len() == logits.len() {
                compared += 1;
                agree += (argmax(&r) == argmax(&logits)) as usize;
                for (a, b) in r.iter().zip(&logits) {
                    max_diff = max_diff.max((a - b).abs());
                }
                let (pr, pl) = (dbrt::softmax(&r), dbrt::softmax(&logits));
                sum_dp += pr
                    .iter()
                    .zip(&pl)
                    .map(|(a, b)| (a - b).abs() as f64)
                    .sum::<f64>()
                    / pr.len() as f64;
            }
        }
        row["input_ids"] = json!(ids);
        row["logits"] = json!(logits);
        writeln!(w, "{row}").map_err(|e| e.to_string())?;
        rows += 1;
    }
    w.flush().map_err(|e| e.to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "rows: {rows} ({:.1} ms/row)",
        1e3 * secs / rows.max(1) as f64
    );
    if compared > 0 {
        println!(
            "vs logits_fp32 on {compared} rows: argmax agreement {:.2}% ({agree}/{compared}), max |dlogit| {max_diff:.3e}, mean |dp| {:.2e}",
            100.0 * agree as f64 / compared as f64,
            sum_dp / compared as f64
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
        } => classify(model, premise, hypothesis, json),
        Command::Eval {
            model,
            data,
            out,
            retokenize,
        } => eval(model, data, out, retokenize),
        Command::Tokenize { model, data, out } => tokenize(model, data, out),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dbrt: {e}");
            ExitCode::FAILURE
        }
    }
}
