//! `dbrt eval`: every row of a JSONL file through the model, logits written back, agreement
//! with reference logits printed.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use dbrt::offload::OffloadOptions;
use dbrt::Sequence;
use serde_json::{json, Value};

use crate::common::{argmax, mean_abs_dp, open};

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

pub fn eval(
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
