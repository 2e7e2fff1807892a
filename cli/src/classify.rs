//! `dbrt classify` (one pair, labelled probabilities) and `dbrt tokenize` (ids for a JSONL file).

use std::path::PathBuf;

use dbrt::offload::OffloadOptions;
use serde_json::{json, Value};

use crate::common::{backend_record, map_jsonl, open};

pub fn classify(
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

pub fn tokenize(model: PathBuf, data: PathBuf, out: PathBuf) -> Result<(), String> {
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
