//! What `dbrt eval` counts over its rows and prints at the end: the backends that ran, agreement
//! with reference logits, accuracy and a confusion matrix against gold labels, skipped rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::rows::Done;
use crate::common::{argmax, mean_abs_dp};

/// Agreement of the rows' logits with reference logits under one key.
#[derive(Default)]
struct Agreement {
    rows: usize,
    agree: usize,
    max_diff: f32,
    sum_dp: f64,
}

impl Agreement {
    fn add(&mut self, reference: &[f32], ours: &[f32]) {
        self.rows += 1;
        self.agree += (argmax(reference) == argmax(ours)) as usize;
        for (a, b) in reference.iter().zip(ours) {
            self.max_diff = self.max_diff.max((a - b).abs());
        }
        self.sum_dp += mean_abs_dp(reference, ours);
    }

    fn percent(&self) -> f64 {
        100.0 * self.agree as f64 / self.rows.max(1) as f64
    }
}

/// Everything counted over the rows written.
pub struct Summary {
    labels: Vec<String>,
    pub rows: usize,
    ran_on: BTreeMap<&'static str, usize>,
    fell_back: BTreeMap<&'static str, usize>,
    fp32: Agreement,
    /// onnxruntime's int8 logits against the same rows' fp32 ones, for comparison.
    ort: Agreement,
    /// Counts by gold label (rows) and predicted label (columns), the model's labels first,
    /// then gold values the model does not name (as their JSON text).
    confusion: Vec<Vec<usize>>,
    gold_names: Vec<String>,
    no_gold: usize,
    pub skipped: Vec<(usize, String)>,
}

impl Summary {
    pub fn new(labels: &[String]) -> Summary {
        Summary {
            labels: labels.to_vec(),
            rows: 0,
            ran_on: Default::default(),
            fell_back: Default::default(),
            fp32: Default::default(),
            ort: Default::default(),
            confusion: vec![vec![0; labels.len()]; labels.len()],
            gold_names: labels.to_vec(),
            no_gold: 0,
            skipped: Vec::new(),
        }
    }

    /// The confusion row of a gold label: a label name (exactly, else ignoring case) or index
    /// of the model's, or another value, which gets a row of its own after the model's.
    fn gold_row(&mut self, gold: &Value) -> usize {
        let n = self.labels.len();
        let named = match gold {
            Value::String(s) => (self.labels.iter().position(|l| l == s))
                .or_else(|| self.labels.iter().position(|l| l.eq_ignore_ascii_case(s))),
            Value::Number(i) => i.as_u64().map(|i| i as usize).filter(|&i| i < n),
            _ => None,
        };
        named.unwrap_or_else(|| {
            let name = match gold {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            match self.gold_names[n..].iter().position(|g| *g == name) {
                Some(i) => n + i,
                None => {
                    self.gold_names.push(name);
                    self.confusion.push(vec![0; n]);
                    self.gold_names.len() - 1
                }
            }
        })
    }

    pub fn add(&mut self, done: &Done) {
        self.rows += 1;
        *self.ran_on.entry(done.backend).or_default() += 1;
        if let Some(kind) = done.fallback {
            *self.fell_back.entry(kind).or_default() += 1;
        }
        let floats = |key: &str| -> Option<Vec<f32>> {
            let a = done.row.get(key)?.as_array()?;
            Some(
                a.iter()
                    .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
                    .collect(),
            )
        };
        let n = done.logits.len();
        if let Some(r) = floats("logits_fp32").filter(|r| r.len() == n) {
            self.fp32.add(&r, &done.logits);
            if let Some(o) = floats("logits_ort_int8_per_channel").filter(|o| o.len() == n) {
                self.ort.add(&r, &o);
            }
        }
        match &done.gold {
            Some(g) => {
                let row = self.gold_row(g);
                let predicted = argmax(&done.logits);
                if let Some(c) = self.confusion[row].get_mut(predicted) {
                    *c += 1;
                }
            }
            None => self.no_gold += 1,
        }
    }

    /// Rows whose gold label the model names, and those predicted right.
    fn scored(&self) -> (usize, usize) {
        let n = self.labels.len();
        let scored = self.confusion[..n].iter().flatten().sum();
        let correct = (0..n).map(|i| self.confusion[i][i]).sum();
        (scored, correct)
    }

    /// The summary a person reads.
    pub fn report(&self, secs: f64, sessions: usize) -> String {
        let mut s = String::new();
        let rows = self.rows;
        let _ = writeln!(
            s,
            "rows: {rows} ({:.1} ms/row, {:.1} rows/s, {sessions} session{})",
            1e3 * secs / rows.max(1) as f64,
            rows as f64 / secs.max(1e-9),
            if sessions == 1 { "" } else { "s" }
        );
        let counts = |m: &BTreeMap<&str, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(s, "encoder ran on: {}", counts(&self.ran_on));
        if !self.fell_back.is_empty() {
            let _ = writeln!(s, "fell back to the CPU: {}", counts(&self.fell_back));
        }
        let a = &self.fp32;
        if a.rows > 0 {
            let _ = writeln!(
                s,
                "vs logits_fp32 on {} rows: argmax agreement {:.2}% ({}/{}), max |dlogit| {:.3e}, mean |dp| {:.2e}",
                a.rows, a.percent(), a.agree, a.rows, a.max_diff, a.sum_dp / a.rows as f64
            );
        }
        let o = &self.ort;
        if o.rows > 0 {
            let _ = writeln!(
                s,
                "onnxruntime int8 per-channel on the same {} rows: argmax agreement {:.2}% ({}/{}), mean |dp| {:.2e}",
                o.rows, o.percent(), o.agree, o.rows, o.sum_dp / o.rows as f64
            );
        }
        if self.no_gold < rows {
            self.write_accuracy(&mut s);
        }
        if !self.skipped.is_empty() {
            let lines: Vec<String> = self.skipped.iter().map(|(l, _)| l.to_string()).collect();
            let _ = writeln!(
                s,
                "skipped {} bad row{} (--skip-bad-rows): line{} {}",
                self.skipped.len(),
                if self.skipped.len() == 1 { "" } else { "s" },
                if self.skipped.len() == 1 { "" } else { "s" },
                lines.join(", ")
            );
        }
        s
    }

    fn write_accuracy(&self, s: &mut String) {
        let n = self.labels.len();
        let (scored, correct) = self.scored();
        match scored {
            0 => writeln!(
                s,
                "accuracy: no gold label is one of the model's ({})",
                self.labels.join(", ")
            ),
            _ => writeln!(
                s,
                "accuracy: {:.2}% ({correct}/{scored} rows whose gold label is one of the model's)",
                100.0 * correct as f64 / scored as f64
            ),
        }
        .ok();
        if self.gold_names.len() > n {
            let other: Vec<String> = (n..self.gold_names.len())
                .map(|i| {
                    format!(
                        "{} {}",
                        self.gold_names[i],
                        self.confusion[i].iter().sum::<usize>()
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "gold labels the model does not name (not in the accuracy): {}",
                other.join(", ")
            );
        }
        if self.no_gold > 0 {
            let _ = writeln!(s, "rows without a gold label: {}", self.no_gold);
        }
        let corner = "gold \\ predicted";
        let first = self
            .gold_names
            .iter()
            .map(|g| g.chars().count() + 1)
            .chain([corner.len()])
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "confusion matrix (rows: gold label, columns: predicted):"
        );
        let _ = write!(s, "{corner:<first$}");
        for l in &self.labels {
            let _ = write!(s, "  {l:>w$}", w = l.chars().count().max(6));
        }
        let _ = writeln!(s);
        for (i, (g, counts)) in self.gold_names.iter().zip(&self.confusion).enumerate() {
            // The model's own labels as gold only when some row has one.
            if i < n && scored == 0 {
                continue;
            }
            let name = if i < n { g.clone() } else { format!("{g}*") };
            let _ = write!(s, "{name:<first$}");
            for (l, c) in self.labels.iter().zip(counts) {
                let _ = write!(s, "  {c:>w$}", w = l.chars().count().max(6));
            }
            let _ = writeln!(s);
        }
        if self.gold_names.len() > n {
            let _ = writeln!(s, "(* not one of the model's labels)");
        }
    }

    /// The same as JSON, for `--metrics`.
    pub fn json(&self, secs: f64, sessions: usize) -> Value {
        let (scored, correct) = self.scored();
        let agreement = |a: &Agreement| {
            (a.rows > 0).then(|| {
                json!({"rows": a.rows, "argmax_agree": a.agree,
                       "max_abs_dlogit": a.max_diff, "mean_abs_dp": a.sum_dp / a.rows as f64})
            })
        };
        json!({
            "rows": self.rows,
            "seconds": secs,
            "rows_per_second": self.rows as f64 / secs.max(1e-9),
            "sessions": sessions,
            "backends": self.ran_on,
            "fallbacks": self.fell_back,
            "vs_logits_fp32": agreement(&self.fp32),
            "ort_int8_vs_logits_fp32": agreement(&self.ort),
            "labels": self.labels,
            "accuracy": (scored > 0).then(|| correct as f64 / scored as f64),
            "correct": correct,
            "scored": scored,
            "rows_without_gold": self.no_gold,
            "confusion": {
                "gold": self.gold_names,
                "predicted": self.labels,
                "counts": self.confusion,
            },
            "unnamed_gold": self.gold_names[self.labels.len()..],
            "skipped": self.skipped.iter().map(|(line, error)| json!({"line": line, "error": error})).collect::<Vec<_>>(),
        })
    }
}
