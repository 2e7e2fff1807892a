//! `dbrt zero-shot`: Hugging Face's zero-shot-classification pipeline on the command line. The
//! text is the premise and the template with each candidate label the hypothesis; the runtime's
//! `classify_zero_shot` scores them (single-label: a softmax of the entailment logits over the
//! candidates; multi-label or one candidate: per candidate, softmax([contradiction, entailment])
//! with contradiction label 0, or the last label when entailment is label 0, as the pipeline
//! does). Results come out as the pipeline's: `{sequence, labels, scores}`, best first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use dbrt::{Model, Session, SessionOptions, DEFAULT_HYPOTHESIS_TEMPLATE};
use serde_json::{json, Value};

use crate::common::OffloadArgs;

pub const EXAMPLES: &str = "Examples:
  dbrt zero-shot --model models/aegis-nli-xsmall-int8.dbrt --entailment-label 1 \\
      --text 'The new phone has a great camera.' --labels technology,sports,politics
  dbrt zero-shot --model nli.dbrt --data texts.jsonl --labels urgent,billing --multi-label --out -";

/// `dbrt zero-shot`'s arguments.
#[derive(Args)]
pub struct ZeroShotArgs {
    /// The .dbrt model file: an NLI model with a tokenizer.
    #[arg(long)]
    model: PathBuf,
    /// The text to classify.
    #[arg(long, required_unless_present = "data", conflicts_with = "data")]
    text: Option<String>,
    /// Candidate labels, comma-separated; with --data, for the rows that carry no `labels`.
    #[arg(long, value_name = "A,B,...")]
    labels: Option<String>,
    /// The hypothesis; `{}` is replaced by each candidate label.
    #[arg(long, default_value = DEFAULT_HYPOTHESIS_TEMPLATE)]
    template: String,
    /// Score each label on its own (entailment against contradiction), so that several can be
    /// true; otherwise the scores are shared out over the labels and sum to 1.
    #[arg(long)]
    multi_label: bool,
    /// The model's label that means entailment, by name or index (default: the first label
    /// whose name starts with "entail", as Hugging Face's pipeline finds it).
    #[arg(long, value_name = "NAME|INDEX", allow_negative_numbers = true)]
    entailment_label: Option<String>,
    /// Print the result as one JSON object, `{"sequence", "labels", "scores"}`.
    #[arg(long)]
    json: bool,
    /// JSONL rows with `text` and optional `labels` (an array, or a comma-separated string):
    /// one JSON result per row, in input order.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Where --data's results go, `-` (the default) for standard output.
    #[arg(long, requires = "data", value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    offload: OffloadArgs,
}

/// The model's labels as `0 name, 1 name`, for errors.
fn label_list(model: &Model) -> String {
    model
        .labels()
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{i} {l}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The entailment label: `--entailment-label` as a name (exactly, else ignoring case), then as
/// an index; without it, the one the model's label names give.
fn entailment_index(model: &Model, path: &Path, given: Option<&str>) -> Result<usize, String> {
    let labels = model.labels();
    let Some(given) = given else {
        return model.entailment_label().ok_or_else(|| {
            format!(
                "{}: none of the model's labels ({}) starts with \"entail\", so which one means \
                 entailment is not known: pass --entailment-label NAME or INDEX",
                path.display(),
                label_list(model)
            )
        });
    };
    labels
        .iter()
        .position(|l| l == given)
        .or_else(|| labels.iter().position(|l| l.eq_ignore_ascii_case(given)))
        .or_else(|| given.parse::<usize>().ok().filter(|&i| i < labels.len()))
        .ok_or_else(|| {
            format!(
                "--entailment-label {given}: neither a label of {} nor an index below {} (its \
                 labels: {})",
                path.display(),
                labels.len(),
                label_list(model)
            )
        })
}

/// Candidate labels from a comma-separated list.
fn split_labels(list: &str, what: &str) -> Result<Vec<String>, String> {
    let labels: Vec<String> = list.split(',').map(|l| l.trim().to_string()).collect();
    if labels.iter().any(String::is_empty) {
        return Err(format!("{what} {list:?}: an empty label"));
    }
    Ok(labels)
}

/// One text scored, best first (ties keep the candidates' order).
struct Scored {
    sequence: String,
    labels: Vec<String>,
    scores: Vec<f32>,
}

impl Scored {
    /// The pipeline's output, its keys in the pipeline's order.
    fn json(&self) -> String {
        format!(
            "{{\"sequence\":{},\"labels\":{},\"scores\":{}}}",
            json!(self.sequence),
            json!(self.labels),
            json!(self.scores)
        )
    }
}

fn score(
    session: &mut Session,
    text: &str,
    labels: &[String],
    args: &ZeroShotArgs,
) -> Result<Scored, String> {
    let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let scores = session
        .classify_zero_shot(text, &refs, &args.template, args.multi_label)
        .map_err(|e| e.to_string())?;
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    Ok(Scored {
        sequence: text.to_string(),
        labels: order.iter().map(|&i| labels[i].clone()).collect(),
        scores: order.iter().map(|&i| scores[i]).collect(),
    })
}

/// A row's text and candidate labels (its own, else `--labels`).
fn row_input(line: &str, default: Option<&[String]>) -> Result<(String, Vec<String>), String> {
    let row: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let text = match row.get("text") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(format!("text is {v}, not a string")),
        None => return Err("no text".into()),
    };
    let labels = match row.get("labels") {
        None | Some(Value::Null) => default
            .map(<[String]>::to_vec)
            .ok_or("no labels, and no --labels for rows without them")?,
        Some(Value::String(s)) => split_labels(s, "labels")?,
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                v => Err(format!("labels holds {v}, not a label name")),
            })
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(format!("labels is {v}, not an array of names")),
    };
    if labels.is_empty() {
        return Err("labels is empty".into());
    }
    Ok((text, labels))
}

pub fn zero_shot(args: ZeroShotArgs) -> Result<(), String> {
    let offload = args.offload.options()?;
    if !args.template.contains("{}") {
        return Err(format!(
            "--template {:?} has no {{}} where the label goes",
            args.template
        ));
    }
    let labels = args
        .labels
        .as_deref()
        .map(|l| split_labels(l, "--labels"))
        .transpose()?;
    let path = &args.model;
    let model = Arc::new(Model::open(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let entailment = entailment_index(&model, path, args.entailment_label.as_deref())?;
    let options = SessionOptions {
        offload,
        entailment_label: Some(entailment),
        ..Default::default()
    };
    let mut session = Session::new(model.clone(), options).map_err(|e| e.to_string())?;
    let Some(data) = &args.data else {
        let text = args.text.as_deref().unwrap_or_default();
        let labels = labels.ok_or("--labels: the candidate labels, as in --labels a,b,c")?;
        let result = score(&mut session, text, &labels, &args)?;
        if args.json {
            println!("{}", result.json());
        } else {
            let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
            let width = width.max("label".len());
            println!("{:<width$}  score", "label");
            for (l, s) in result.labels.iter().zip(&result.scores) {
                println!("{l:<width$}  {s:.4}");
            }
        }
        return Ok(());
    };
    let (name, input) = match data.as_os_str() == "-" {
        true => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| format!("standard input: {e}"))?;
            ("standard input".to_string(), s)
        }
        false => (
            data.display().to_string(),
            std::fs::read_to_string(data).map_err(|e| format!("{}: {e}", data.display()))?,
        ),
    };
    let out_path = args.out.clone().unwrap_or_else(|| PathBuf::from("-"));
    let mut out: Box<dyn Write> = match out_path.as_os_str() == "-" {
        true => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        false => Box::new(std::io::BufWriter::new(
            std::fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?,
        )),
    };
    let t0 = std::time::Instant::now();
    let mut rows = 0;
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let result = row_input(line, labels.as_deref())
            .and_then(|(text, labels)| score(&mut session, &text, &labels, &args))
            .map_err(|e| format!("{name}: line {}: {e}", n + 1))?;
        writeln!(out, "{}", result.json()).map_err(|e| format!("{}: {e}", out_path.display()))?;
        rows += 1;
    }
    out.flush()
        .map_err(|e| format!("{}: {e}", out_path.display()))?;
    eprintln!(
        "rows: {rows} ({:.1} ms/row)",
        t0.elapsed().as_secs_f64() * 1e3 / rows.max(1) as f64
    );
    Ok(())
}
