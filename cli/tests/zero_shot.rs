//! `dbrt zero-shot`: Hugging Face's zero-shot pipeline's scores, computed here from the logits
//! `dbrt eval` gives for each (text, hypothesis) pair, and its output shape, sorted by score.

mod tiny_text;

use std::path::Path;

use serde_json::{json, Value};
use tiny_text::*;

const NLI: [&str; 3] = ["contradiction", "neutral", "entailment"];

/// The logits of (text, template with each label) from `dbrt eval`.
fn pair_logits(model: &Path, text: &str, labels: &[&str], template: &str) -> Vec<Vec<f64>> {
    let rows: Vec<Value> = labels
        .iter()
        .map(|l| json!({"premise": text, "hypothesis": template.replace("{}", l)}))
        .collect();
    let out = run_ok(
        &["eval", "--model", path(model), "--data", "-", "--out", "-"],
        &rows_text(&rows),
    );
    jsonl(&out).iter().map(|r| floats(&r["logits"])).collect()
}

/// Hugging Face's scores from pair logits: single-label, a softmax of the entailment logits
/// over the candidates; multi-label, softmax([contradiction, entailment]) per candidate, where
/// contradiction is label 0, or the last when entailment is label 0.
fn pipeline_scores(logits: &[Vec<f64>], entail: usize, multi: bool) -> Vec<f64> {
    let contra = if entail == 0 { logits[0].len() - 1 } else { 0 };
    if multi {
        return logits
            .iter()
            .map(|l| 1.0 / (1.0 + (l[contra] - l[entail]).exp()))
            .collect();
    }
    let e: Vec<f64> = logits.iter().map(|l| l[entail].exp()).collect();
    e.iter().map(|x| x / e.iter().sum::<f64>()).collect()
}

/// The pipeline's `{sequence, labels, scores}` checked against the formula: the same label
/// scores, best first, keys in the pipeline's order.
fn check(result: &str, text: &str, labels: &[&str], want: &[f64]) {
    assert!(result.starts_with(r#"{"sequence":"#), "{result}");
    let r: Value = serde_json::from_str(result).unwrap();
    assert_eq!(r["sequence"], text);
    let scores = floats(&r["scores"]);
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "not sorted: {scores:?}"
    );
    let got: Vec<&str> = r["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    let mut all = labels.to_vec();
    all.sort();
    assert_eq!(sorted, all, "{result}");
    for (l, s) in got.iter().zip(&scores) {
        let w = want[labels.iter().position(|x| x == l).unwrap()];
        assert!((s - w).abs() < 1e-5, "{l}: {s} vs {w} in {result}");
    }
}

#[test]
fn scores_are_the_pipelines_from_the_pair_logits() {
    let dir = tempfile::tempdir().unwrap();
    let model = text_model(dir.path(), Some(NLI));
    let (text, labels) = (
        "the people said it was new",
        ["work", "time", "people", "you"],
    );
    let template = "This example is {}.";
    let logits = pair_logits(&model, text, &labels, template);
    let base = [
        "zero-shot",
        "--model",
        path(&model),
        "--text",
        text,
        "--labels",
        "work,time, people ,you",
        "--json",
    ];
    let single = run_ok(&base, "");
    let want = pipeline_scores(&logits, 2, false);
    check(single.trim(), text, &labels, &want);
    // The labels are told apart: not all scores equal, and they sum to 1.
    assert!(want.iter().any(|w| (w - want[0]).abs() > 1e-4), "{want:?}");
    assert!((want.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let multi = run_ok(&[&base[..], &["--multi-label"]].concat(), "");
    check(
        multi.trim(),
        text,
        &labels,
        &pipeline_scores(&logits, 2, true),
    );
    // One candidate is scored as multi-label is, as the pipeline does.
    let one = run_ok(
        &[
            "zero-shot",
            "--model",
            path(&model),
            "--text",
            text,
            "--labels",
            "time",
            "--json",
        ],
        "",
    );
    check(
        one.trim(),
        text,
        &["time"],
        &pipeline_scores(&logits[1..2], 2, true),
    );
    // Another template: the hypotheses change with it.
    let other = "It is about {} here";
    let logits = pair_logits(&model, text, &labels, other);
    let r = run_ok(&[&base[..], &["--template", other]].concat(), "");
    check(r.trim(), text, &labels, &pipeline_scores(&logits, 2, false));
    let err = run_err(&[&base[..], &["--template", "no slot"]].concat(), "");
    assert!(err.contains("--template \"no slot\" has no {}"), "{err}");
}

/// Without --json: a table, label and score, best first, the same numbers.
#[test]
fn text_output_is_a_sorted_table() {
    let dir = tempfile::tempdir().unwrap();
    let model = text_model(dir.path(), Some(NLI));
    let base = [
        "zero-shot",
        "--model",
        path(&model),
        "--text",
        "you work",
        "--labels",
        "the,first,new",
    ];
    let json: Value =
        serde_json::from_str(&run_ok(&[&base[..], &["--json"]].concat(), "")).unwrap();
    let table = run_ok(&base, "");
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["label", "score"]
    );
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[0], json["labels"][i], "{table}");
        let s: f64 = cells[1].parse().unwrap();
        assert!(
            (s - json["scores"][i].as_f64().unwrap()).abs() < 1e-4,
            "{table}"
        );
    }
    assert_eq!(table.lines().count(), 4, "{table}");
}

/// A model whose labels name no entailment: the error says what to pass and lists the labels;
/// --entailment-label by name or index gives what a model naming it gives; entailment as label
/// 0 makes the last label contradiction.
#[test]
fn the_entailment_label_is_named_or_given() {
    let dir = tempfile::tempdir().unwrap();
    let (named, plain) = (
        text_model(dir.path(), Some(NLI)),
        text_model(dir.path(), None),
    );
    let args = |m: &Path, extra: &[&str]| -> Vec<String> {
        let base = [
            "zero-shot",
            "--model",
            path(m),
            "--text",
            "the work",
            "--labels",
            "new,time",
            "--json",
        ];
        [&base[..], extra]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let run_args = |a: Vec<String>| run_ok(&a.iter().map(String::as_str).collect::<Vec<_>>(), "");
    let err = run_err(
        &args(&plain, &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "",
    );
    assert!(
        err.contains("none of the model's labels (0 LABEL_0, 1 LABEL_1, 2 LABEL_2)"),
        "{err}"
    );
    assert!(
        err.contains("pass --entailment-label NAME or INDEX"),
        "{err}"
    );
    let want = run_args(args(&named, &[]));
    assert_eq!(
        want,
        run_args(args(&plain, &["--entailment-label", "LABEL_2"]))
    );
    assert_eq!(
        want,
        run_args(args(&plain, &["--entailment-label", "label_2"]))
    );
    assert_eq!(want, run_args(args(&plain, &["--entailment-label", "2"])));
    assert_eq!(
        want,
        run_args(args(&named, &["--entailment-label", "entailment"]))
    );
    for bad in ["3", "entail", "-1"] {
        let a = args(&plain, &["--entailment-label", bad]);
        let err = run_err(&a.iter().map(String::as_str).collect::<Vec<_>>(), "");
        assert!(
            err.contains(&format!("--entailment-label {bad}: neither a label")),
            "{err}"
        );
        assert!(
            err.contains("(its labels: 0 LABEL_0, 1 LABEL_1, 2 LABEL_2)"),
            "{err}"
        );
    }
    let logits = pair_logits(&plain, "the work", &["new", "time"], "This example is {}.");
    let r = run_args(args(&plain, &["--entailment-label", "0", "--multi-label"]));
    check(
        r.trim(),
        "the work",
        &["new", "time"],
        &pipeline_scores(&logits, 0, true),
    );
}

/// --data: one result per row, in input order, each what --text gives; per-row labels (an
/// array or a comma-separated string) or --labels; bad rows named by line.
#[test]
fn jsonl_rows_give_one_result_each() {
    let dir = tempfile::tempdir().unwrap();
    let model = text_model(dir.path(), Some(NLI));
    let rows = [
        (
            json!({"text": "the people said", "labels": ["work", "time"]}),
            "work,time",
        ),
        (json!({"text": "you work", "id": 7}), "new,first,the"),
        (
            json!({"text": "first time", "labels": "you,people"}),
            "you,people",
        ),
    ];
    let input = rows
        .iter()
        .map(|(r, _)| r.to_string() + "\n\n")
        .collect::<String>();
    let data = dir.path().join("in.jsonl");
    std::fs::write(&data, &input).unwrap();
    let base = [
        "zero-shot",
        "--model",
        path(&model),
        "--labels",
        "new,first,the",
        "--multi-label",
    ];
    let to_stdout = run_ok(&[&base[..], &["--data", path(&data)]].concat(), "");
    let out = dir.path().join("out.jsonl");
    run_ok(
        &[&base[..], &["--data", "-", "--out", path(&out)]].concat(),
        &input,
    );
    assert_eq!(to_stdout, std::fs::read_to_string(&out).unwrap());
    let lines: Vec<&str> = to_stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    for (line, (row, labels)) in lines.iter().zip(&rows) {
        let text = row["text"].as_str().unwrap();
        let one = run_ok(
            &[
                "zero-shot",
                "--model",
                path(&model),
                "--text",
                text,
                "--labels",
                labels,
                "--multi-label",
                "--json",
            ],
            "",
        );
        assert_eq!(*line, one.trim());
    }
    for (bad, want) in [
        (r#"{"text": 5}"#, "line 2: text is 5, not a string"),
        (r#"{"labels": ["a"]}"#, "line 2: no text"),
        (r#"{"text": "a", "labels": []}"#, "line 2: labels is empty"),
        (
            r#"{"text": "a", "labels": "a,,b"}"#,
            "line 2: labels \"a,,b\": an empty label",
        ),
        (
            r#"{"text": "a", "labels": [1]}"#,
            "line 2: labels holds 1, not a label name",
        ),
    ] {
        let input = format!("{}\n{bad}\n", rows[0].0);
        let err = run_err(
            &["zero-shot", "--model", path(&model), "--data", "-"],
            &input,
        );
        assert!(
            err.contains(&format!("standard input: {want}")),
            "{bad}: {err}"
        );
    }
    let err = run_err(
        &["zero-shot", "--model", path(&model), "--data", "-"],
        r#"{"text": "a"}"#,
    );
    assert!(err.contains("line 1: no labels, and no --labels"), "{err}");
}

/// The real model with --entailment-label 1: its scores are the pipeline's formula on its own
/// pair logits, single- and multi-label.
#[test]
fn real_model_scores_are_the_pipelines() {
    let model = real_model();
    let text = "The new phone has a great camera and a battery that lasts two days.";
    let labels = ["technology", "sports", "politics", "cooking"];
    let logits = pair_logits(&model, text, &labels, "This example is {}.");
    for multi in [false, true] {
        let mut args = vec![
            "zero-shot",
            "--model",
            path(&model),
            "--entailment-label",
            "1",
            "--text",
            text,
            "--labels",
            "technology,sports,politics,cooking",
            "--json",
        ];
        if multi {
            args.push("--multi-label");
        }
        check(
            run_ok(&args, "").trim(),
            text,
            &labels,
            &pipeline_scores(&logits, 1, multi),
        );
    }
}
