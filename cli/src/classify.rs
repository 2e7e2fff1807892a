//! `dbrt classify` (one text or pair, its labels by probability) and `dbrt tokenize` (ids for
//! a JSONL file).

use std::path::PathBuf;

use clap::Args;
use dbrt::offload::OffloadOptions;
use serde_json::{json, Value};

use crate::common::{backend_record, map_jsonl, open, parse_isa, OffloadArgs};

#[derive(Args)]
#[command(
    after_help = "Example:\n  dbrt classify --model models/aegis-nli-xsmall-int8.dbrt \\
    --premise \"A man is playing a guitar on stage.\" \\
    --hypothesis \"Nobody is playing music.\""
)]
pub struct ClassifyArgs {
    /// The .dbrt model file.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The text to classify, or a pair's first text (the premise of an NLI pair).
    #[arg(long, value_name = "TEXT")]
    premise: String,
    /// A pair's second text (the hypothesis of an NLI pair).
    #[arg(long, value_name = "TEXT")]
    hypothesis: Option<String>,
    /// Threads the forward pass uses (at most the cores there are).
    #[arg(long, default_value_t = 1, value_name = "N")]
    threads: usize,
    /// Longest input in tokens, longer pairs truncated longest-first (default: the model's
    /// maximum).
    #[arg(long, value_name = "N")]
    max_length: Option<usize>,
    /// Kernel tier: scalar, avx2, avx512vnni, neon, neon-dotprod or neon-i8mm (default: the
    /// best this CPU runs, or DBRT_FORCE_ISA).
    #[arg(long, value_name = "ISA")]
    isa: Option<String>,
    /// One JSON object (`label`, `score`, every label's probability, the backend) instead of
    /// text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    offload: OffloadArgs,
}

/// Prints the labels by probability, the predicted one first.
pub fn classify(a: ClassifyArgs) -> Result<(), String> {
    if a.threads == 0 {
        return Err("--threads must be at least 1, got 0".into());
    }
    let isa = a.isa.as_deref().map(parse_isa).transpose()?;
    let model = std::sync::Arc::new(
        dbrt::Model::open(&a.model).map_err(|e| format!("{}: {e}", a.model.display()))?,
    );
    // [CLS] and two [SEP] take three tokens.
    let (min, max) = (3, model.max_sequence_length());
    if let Some(n) = a.max_length.filter(|n| !(min..=max).contains(n)) {
        return Err(format!(
            "--max-length {n}: {} takes {min} to {max} tokens",
            a.model.display()
        ));
    }
    let options = dbrt::SessionOptions {
        threads: a.threads,
        max_sequence_length: a.max_length,
        isa,
        offload: a.offload.options()?,
        ..Default::default()
    };
    let mut session = dbrt::Session::new(model.clone(), options).map_err(|e| e.to_string())?;
    let probs = session
        .classify(&a.premise, a.hypothesis.as_deref())
        .map_err(|e| e.to_string())?;
    let mut ranked: Vec<(&String, f32)> = model.labels().iter().zip(probs).collect();
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1));
    if a.json {
        let labels: serde_json::Map<String, Value> = ranked
            .iter()
            .map(|(l, p)| (l.to_string(), json!(p)))
            .collect();
        let mut out = backend_record(&session);
        out["label"] = json!(ranked[0].0);
        out["score"] = json!(ranked[0].1);
        out["labels"] = json!(labels);
        println!("{out}");
    } else {
        let width = ranked
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(0);
        for (label, p) in &ranked {
            println!("{label:<width$}  {p:.4}");
        }
        if let Some(f) = session.last_fallback() {
            println!("(ran on the CPU: {f})");
        } else if session.backend() != "cpu" {
            println!("(encoder on {})", session.backend());
        }
    }
    Ok(())
}

#[derive(Args)]
#[command(
    after_help = "Example:\n  dbrt tokenize --model models/aegis-nli-xsmall-int8.dbrt \\
    --data tests/fixtures/real/mnli_dev_matched.goldens.jsonl --out /tmp/ids.jsonl"
)]
pub struct TokenizeArgs {
    /// The .dbrt model file whose tokenizer is used.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Input JSONL: one object per line with `premise` and optional `hypothesis`.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Output JSONL: the input rows with `input_ids` (and `token_type_ids`) added.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn tokenize(a: TokenizeArgs) -> Result<(), String> {
    let (model, mut session) = open(&a.model, OffloadOptions::default())?;
    let with_types = model.config().type_vocab_size > 0;
    let t0 = std::time::Instant::now();
    let mut tokens = 0;
    let rows = map_jsonl(&a.data, &a.out, |n, mut row| {
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
