//! One eval row: its ids (given or tokenized from its text columns) through a session, written
//! back with logits, probabilities and the predicted label.

use dbrt::{Model, Sequence, Session};
use serde_json::{json, Map, Value};

/// The text column pairs `dbrt eval` looks for, in order: NLI datasets, GLUE's, and Hugging
/// Face's text-classification pipeline's.
pub const COLUMN_SETS: [(&str, &str); 3] = [
    ("premise", "hypothesis"),
    ("sentence1", "sentence2"),
    ("text", "text_pair"),
];

/// Where a row's text is: the first column set present, or the user's `--columns`.
#[derive(Clone)]
pub enum Columns {
    Detect,
    Given(String, Option<String>),
}

impl Columns {
    pub fn parse(arg: Option<&str>) -> Result<Columns, String> {
        let Some(arg) = arg else {
            return Ok(Columns::Detect);
        };
        let names: Vec<&str> = arg.split(',').map(str::trim).collect();
        match names[..] {
            [a] if !a.is_empty() => Ok(Columns::Given(a.into(), None)),
            [a, b] if !a.is_empty() && !b.is_empty() => {
                Ok(Columns::Given(a.into(), Some(b.into())))
            }
            _ => Err(format!(
                "--columns {arg}: one or two column names, as in --columns question,answer"
            )),
        }
    }
}

/// A row run: what the summary counts, and the row to write.
pub struct Done {
    pub row: Value,
    pub logits: Vec<f32>,
    pub gold: Option<Value>,
    pub backend: &'static str,
    pub fallback: Option<&'static str>,
}

/// What JSON calls a value, for errors that say what was found instead.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The token ids under `key`, if the row has them: an array of integers that fit in 32 bits,
/// or an error naming the field and the entry.
fn ids_field(row: &Value, key: &str) -> Result<Option<Vec<u32>>, String> {
    let Some(v) = row.get(key) else {
        return Ok(None);
    };
    let entries = v
        .as_array()
        .ok_or_else(|| format!("{key} is {v} ({}), not an array of token ids", kind(v)))?;
    entries
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| {
                    format!(
                        "{key}[{i}] is {v} ({}), not a token id (an integer in 0..=4294967295)",
                        kind(v)
                    )
                })
        })
        .collect::<Result<Vec<u32>, String>>()
        .map(Some)
}

/// The row's text and optional second text.
fn texts<'r>(row: &'r Value, columns: &Columns) -> Result<(&'r str, Option<&'r str>), String> {
    let text = |key: &str, required: bool| -> Result<Option<&'r str>, String> {
        match row.get(key) {
            None | Some(Value::Null) if !required => Ok(None),
            None => Err(format!("no {key}")),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(format!("{key} is {v} ({}), not a string", kind(v))),
        }
    };
    match columns {
        Columns::Given(a, b) => {
            let first = text(a, true)?.unwrap_or_default();
            let second = b.as_deref().map(|b| text(b, true)).transpose()?.flatten();
            Ok((first, second))
        }
        Columns::Detect => {
            for (a, b) in COLUMN_SETS {
                if row.get(a).is_some() {
                    return Ok((text(a, true)?.unwrap_or_default(), text(b, false)?));
                }
            }
            let keys = row
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|| kind(row).to_string());
            Err(format!(
                "no text: expected premise/hypothesis, sentence1/sentence2, text/text_pair or \
                 input_ids (or name the columns with --columns A,B); the row has: {keys}"
            ))
        }
    }
}

/// Runs one JSONL line; errors say what is wrong with the row (the caller adds where it is).
pub fn run_row(
    session: &mut Session,
    model: &Model,
    line: &str,
    columns: &Columns,
    retokenize: bool,
) -> Result<Done, String> {
    let mut row: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if !row.is_object() {
        return Err(format!("{} ({}), not a JSON object", row, kind(&row)));
    }
    let given = match retokenize {
        false => ids_field(&row, "input_ids")?,
        true => None,
    };
    let (ids, types) = match given {
        Some(ids) => {
            let types = ids_field(&row, "token_type_ids")?;
            if let Some(t) = types.as_ref().filter(|t| t.len() != ids.len()) {
                return Err(format!(
                    "{} token_type_ids for {} input_ids",
                    t.len(),
                    ids.len()
                ));
            }
            (ids, types)
        }
        None => {
            let (first, second) = texts(&row, columns)?;
            let (ids, types) = session.tokenize(first, second).map_err(|e| e.to_string())?;
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
        .map_err(|e| e.to_string())?
        .to_vec();
    let labels = model.labels();
    let probabilities: Map<String, Value> = labels
        .iter()
        .zip(dbrt::softmax(&logits))
        .map(|(l, p)| (l.clone(), json!(p)))
        .collect();
    let predicted = labels
        .get(crate::common::argmax(&logits))
        .cloned()
        .unwrap_or_default();
    // The row's own label is the gold one: kept as gold_label, `label` becomes the prediction.
    let gold = row
        .as_object_mut()
        .and_then(|r| r.remove("label"))
        .filter(|g| !g.is_null());
    if let Some(g) = &gold {
        row["gold_label"] = g.clone();
    }
    row["input_ids"] = json!(ids);
    if let Some(types) = &types {
        row["token_type_ids"] = json!(types);
    }
    row["logits"] = json!(logits);
    row["probabilities"] = Value::Object(probabilities);
    row["label"] = json!(predicted);
    row["backend"] = json!(session.last_backend());
    Ok(Done {
        row,
        logits,
        gold,
        backend: session.last_backend().unwrap_or("none"),
        fallback: session.last_fallback().map(|f| f.kind.as_str()),
    })
}
