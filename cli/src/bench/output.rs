//! How `dbrt bench` prints its records: an aligned table (the default), a Markdown table, CSV,
//! one JSON array, or JSON lines. Rows are printed as they are measured (JSON's array at the
//! end), so a long run shows its progress.

use serde_json::Value;

/// `--format`: how the records are printed.
// Plain comments on the variants: doc comments would each become a paragraph of `--help`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    // An aligned table with a header row.
    Text,
    // A Markdown table, to paste into an issue.
    Md,
    // Comma-separated values with a header row, every field of the record.
    Csv,
    // One JSON array of records, printed at the end.
    Json,
    // One JSON record per line (what `--json` prints).
    Jsonl,
}

/// A table column: its header, the record field it shows, whether it is a number (aligned
/// right) and the least width its values need.
struct Column {
    header: &'static str,
    cell: fn(&Value) -> String,
    numeric: bool,
    min_width: usize,
}

const fn left(header: &'static str, cell: fn(&Value) -> String) -> Column {
    Column {
        header,
        cell,
        numeric: false,
        min_width: 0,
    }
}

const fn right(header: &'static str, cell: fn(&Value) -> String, min_width: usize) -> Column {
    Column {
        header,
        cell,
        numeric: true,
        min_width,
    }
}

fn text(r: &Value, key: &str) -> String {
    match &r[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

fn num(r: &Value, key: &str, decimals: usize) -> String {
    r[key]
        .as_f64()
        .map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

/// The tables' columns: what a comparison needs first, the machine and the build last.
const TABLE: &[Column] = &[
    left("model", |r| text(r, "model")),
    left("weights", |r| text(r, "weights")),
    right("size MB", |r| num(r, "model_mb", 1), 7),
    left("isa", |r| text(r, "isa")),
    left("backend", |r| text(r, "backend")),
    right("threads", |r| text(r, "threads"), 0),
    right("sessions", |r| text(r, "sessions"), 0),
    right("batch", |r| text(r, "batch"), 0),
    right("seq", |r| text(r, "seq"), 4),
    right(
        "mean ± sd ms",
        |r| format!("{} ± {}", num(r, "mean_ms", 2), num(r, "stddev_ms", 2)),
        15,
    ),
    right("p50 ms", |r| num(r, "p50_ms", 2), 7),
    right("p90 ms", |r| num(r, "p90_ms", 2), 7),
    right("seq/s", |r| num(r, "throughput_seq_per_s", 1), 7),
    right("open ms", |r| num(r, "open_ms", 1), 7),
    right("first ms", |r| num(r, "first_result_ms", 1), 7),
    right("peak RSS MB", |r| num(r, "peak_rss_mb", 1), 0),
    left("cpu", |r| text(r, "cpu")),
    left("dbrt", |r| text(r, "dbrt_version")),
];

/// CSV's columns: every field of the record, in the tables' order.
pub const CSV: &[&str] = &[
    "model",
    "weights",
    "model_mb",
    "isa",
    "backend",
    "fallback",
    "threads",
    "threads_requested",
    "sessions",
    "batch",
    "seq",
    "warmup",
    "reps",
    "iters",
    "mean_ms",
    "stddev_ms",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "min_ms",
    "runs_per_s",
    "throughput_seq_per_s",
    "open_ms",
    "first_result_ms",
    "peak_rss_mb",
    "cpu",
    "dbrt_version",
];

fn csv_field(r: &Value, key: &str) -> String {
    let s = match &r[key] {
        // A fallback is an object: its kind says what happened.
        Value::Object(f) => f
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        // Times to the microsecond, sizes to the kilobyte: what a spreadsheet needs.
        Value::Number(n) if n.is_f64() => num(r, key, 3),
        _ => text(r, key),
    };
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub struct Printer {
    format: Format,
    widths: Vec<usize>,
    json: Vec<Value>,
}

impl Printer {
    /// `known` holds values the rows will show (model names, the CPU), so the columns are wide
    /// enough before the first row is measured.
    pub fn new(format: Format, known: &[&Value]) -> Printer {
        let widths = TABLE
            .iter()
            .map(|c| {
                let values = known.iter().map(|r| (c.cell)(r).chars().count());
                values.fold(c.header.chars().count().max(c.min_width), usize::max)
            })
            .collect();
        Printer {
            format,
            widths,
            json: Vec::new(),
        }
    }

    fn table_row(&self, cells: &[String]) -> String {
        let padded = cells
            .iter()
            .zip(TABLE)
            .zip(&self.widths)
            .map(|((s, c), &w)| {
                if c.numeric {
                    format!("{s:>w$}")
                } else {
                    format!("{s:<w$}")
                }
            });
        let cells: Vec<String> = padded.collect();
        match self.format {
            Format::Md => format!("| {} |", cells.join(" | ")),
            _ => cells.join("  ").trim_end().to_string(),
        }
    }

    pub fn header(&self) {
        let headers: Vec<String> = TABLE.iter().map(|c| c.header.to_string()).collect();
        match self.format {
            Format::Text => println!("{}", self.table_row(&headers)),
            Format::Md => {
                println!("{}", self.table_row(&headers));
                let rule = TABLE.iter().zip(&self.widths).map(|(c, &w)| {
                    let dashes = "-".repeat(w.max(3) - 1);
                    if c.numeric {
                        format!("{dashes}:")
                    } else {
                        format!(":{dashes}")
                    }
                });
                println!(
                    "|{}|",
                    rule.map(|r| format!(" {r} ")).collect::<Vec<_>>().join("|")
                );
            }
            Format::Csv => println!("{}", CSV.join(",")),
            Format::Json | Format::Jsonl => {}
        }
    }

    pub fn row(&mut self, r: Value) {
        match self.format {
            Format::Text | Format::Md => {
                let cells: Vec<String> = TABLE.iter().map(|c| (c.cell)(&r)).collect();
                println!("{}", self.table_row(&cells));
            }
            Format::Csv => {
                let fields: Vec<String> = CSV.iter().map(|k| csv_field(&r, k)).collect();
                println!("{}", fields.join(","));
            }
            Format::Json => self.json.push(r),
            Format::Jsonl => println!("{r}"),
        }
    }

    pub fn finish(self) {
        if self.format == Format::Json {
            println!("{}", Value::Array(self.json));
        }
    }
}
