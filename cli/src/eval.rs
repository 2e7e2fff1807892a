//! `dbrt eval`: every row of a JSONL file through the model, on several sessions at once, written
//! back in input order with logits, probabilities and the predicted label; agreement with
//! reference logits, accuracy and a confusion matrix against gold labels printed at the end.

mod rows;
mod summary;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use clap::Args;
use dbrt::{Model, Session, SessionOptions};

use crate::common::OffloadArgs;
use rows::{run_row, Columns, Done};
use summary::Summary;

pub const EXAMPLES: &str = "Examples:
  dbrt eval --model models/aegis-nli-xsmall-int8.dbrt \\
      --data tests/fixtures/real/rte_dev.goldens.jsonl --out rte.out.jsonl --threads 2
  cat rows.jsonl | dbrt eval --model m.dbrt --data - --out - --columns question,answer > out.jsonl";

/// `dbrt eval`'s arguments.
#[derive(Args)]
pub struct EvalArgs {
    /// The .dbrt model file.
    #[arg(long)]
    model: PathBuf,
    /// JSONL rows to run, `-` for standard input: `input_ids` (with optional `token_type_ids`),
    /// or text in premise/hypothesis, sentence1/sentence2 or text/text_pair (the second
    /// optional). A `label` (a name or index of the model's labels) is the gold label.
    #[arg(long)]
    data: PathBuf,
    /// Where the rows go, `-` for standard output (the summary then goes to standard error):
    /// each row with `logits`, `probabilities` (label → p), `label` (the predicted label;
    /// the row's own label is kept as `gold_label`), `input_ids` and `backend` added.
    #[arg(long)]
    out: PathBuf,
    /// The text columns, `A` or `A,B`, instead of the column names looked for.
    #[arg(long, value_name = "A,B")]
    columns: Option<String>,
    /// Tokenize the text even when the row carries `input_ids`.
    #[arg(long)]
    retokenize: bool,
    /// Rows run at once, each on a single-threaded session of its own (the model's weights
    /// are shared). Rows are written in input order, the same bytes for every count.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Skip rows that cannot be run (not JSON, no text, bad ids, too long), each named on
    /// standard error and counted in the summary, instead of stopping at the first.
    #[arg(long)]
    skip_bad_rows: bool,
    /// Also write the summary as JSON to this file (accuracy, confusion matrix, skipped rows).
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,
    #[command(flatten)]
    offload: OffloadArgs,
}

/// The input's non-blank lines, numbered from 1.
fn read_lines(data: &Path) -> Result<(String, Vec<(usize, String)>), String> {
    let (name, text) = if data.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("standard input: {e}"))?;
        ("standard input".to_string(), text)
    } else {
        let name = data.display().to_string();
        let text = std::fs::read_to_string(data).map_err(|e| format!("{name}: {e}"))?;
        (name, text)
    };
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect();
    Ok((name, lines))
}

fn create_output(out: &Path) -> Result<Box<dyn Write>, String> {
    if out.as_os_str() == "-" {
        return Ok(Box::new(std::io::BufWriter::new(std::io::stdout().lock())));
    }
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(Box::new(std::io::BufWriter::new(file)))
}

/// A bar with rows/s and the time left, on standard error when it is a terminal; none otherwise.
fn progress_bar(rows: usize) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(rows as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} rows, {msg}, {elapsed} elapsed, ETA {eta}",
        )
        .expect("valid template"),
    );
    Some(bar)
}

pub fn eval(args: EvalArgs) -> Result<(), String> {
    let offload = args.offload.options()?;
    let columns = Columns::parse(args.columns.as_deref())?;
    if args.threads == 0 {
        return Err("--threads 0: at least 1".into());
    }
    if args.data.as_os_str() != "-" && args.data == args.out {
        return Err(format!(
            "--data and --out are both {}: the output would overwrite the rows being read",
            args.out.display()
        ));
    }
    let path = &args.model;
    let model = Arc::new(Model::open(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let options = SessionOptions {
        offload,
        threads: 1,
        ..Default::default()
    };
    let sessions = (0..args.threads)
        .map(|_| Session::new(model.clone(), options.clone()).map_err(|e| e.to_string()))
        .collect::<Result<Vec<Session>, String>>()?;
    let (source, lines) = read_lines(&args.data)?;
    let mut out = create_output(&args.out)?;
    let mut summary = Summary::new(model.labels());
    let t0 = std::time::Instant::now();
    let bar = progress_bar(lines.len());
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, Result<Done, String>)>();
    let written = std::thread::scope(|s| {
        for mut session in sessions {
            let (tx, next, stop, lines, model) = (tx.clone(), &next, &stop, &lines, &model);
            let (columns, retokenize) = (columns.clone(), args.retokenize);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, line)) = lines.get(i) else { break };
                    let done = run_row(&mut session, model, line, &columns, retokenize);
                    if tx.send((i, done)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Rows finish in any order; they are written in input order, and the first bad row in
        // input order is the one reported, whatever the thread count.
        let mut pending = BTreeMap::new();
        let mut want = 0;
        let mut write_in_order = || -> Result<(), String> {
            for (i, done) in &rx {
                pending.insert(i, done);
                while let Some(done) = pending.remove(&want) {
                    let line = lines[want].0;
                    want += 1;
                    match done {
                        Ok(d) => {
                            writeln!(out, "{}", d.row)
                                .map_err(|e| format!("{}: {e}", args.out.display()))?;
                            summary.add(&d);
                        }
                        Err(e) if args.skip_bad_rows => {
                            eprintln!("dbrt: {source}: line {line} skipped: {e}");
                            summary.skipped.push((line, e));
                        }
                        Err(e) => return Err(format!("{source}: line {line}: {e}")),
                    }
                    if let Some(b) = &bar {
                        let rate = want as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                        b.set_message(format!("{rate:.1} rows/s"));
                        b.inc(1);
                    }
                }
            }
            Ok(())
        };
        let r = write_in_order();
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        r
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    written?;
    out.flush()
        .map_err(|e| format!("{}: {e}", args.out.display()))?;
    drop(out);
    let secs = t0.elapsed().as_secs_f64();
    let report = summary.report(secs, args.threads);
    // The summary goes where the rows do not.
    if args.out.as_os_str() == "-" {
        eprint!("{report}");
    } else {
        print!("{report}");
    }
    if let Some(m) = &args.metrics {
        let json = summary.json(secs, args.threads).to_string() + "\n";
        std::fs::write(m, json).map_err(|e| format!("--metrics {}: {e}", m.display()))?;
    }
    Ok(())
}
