//! `dbrt eval` for real work: rows in parallel, standard input and output, the column names
//! datasets use, probabilities and the predicted label, accuracy and a confusion matrix against
//! gold labels, and bad rows named by line.

mod tiny_text;

use serde_json::{json, Value};
use tiny_text::*;

/// Text rows of every length the tiny model takes, some pairs, some single texts, some ids.
fn mixed_rows() -> Vec<Value> {
    let words = [
        "the", "people", "said", "new", "time", "work", "first", "you",
    ];
    (0..23)
        .map(|i| {
            let premise: Vec<&str> = (0..1 + 3 * i).map(|j| words[(i + j) % 8]).collect();
            match i % 3 {
                0 => json!({"premise": premise.join(" "), "hypothesis": words[i % 8], "id": i}),
                1 => json!({"premise": premise.join(" "), "id": i}),
                _ => json!({"input_ids": [1, 10 + i, 20 + i, 2], "id": i}),
            }
        })
        .collect()
}

/// Rows run on 1 and on 3 sessions come out the same, byte for byte, in input order.
#[test]
fn threads_give_identical_output_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let model = text_model(dir.path(), None);
    let data = dir.path().join("in.jsonl");
    std::fs::write(&data, rows_text(&mixed_rows())).unwrap();
    let out = |threads: &str| {
        let out = dir.path().join(format!("out-{threads}.jsonl"));
        let args = ["eval", "--model", path(&model), "--data", path(&data)];
        let summary = run_ok(
            &[&args[..], &["--out", path(&out), "--threads", threads]].concat(),
            "",
        );
        assert!(summary.contains("rows: 23 ("), "{summary}");
        std::fs::read(out).unwrap()
    };
    let one = out("1");
    assert_eq!(one, out("3"));
    let written = jsonl(std::str::from_utf8(&one).unwrap());
    assert_eq!(written.len(), 23);
    for (i, row) in written.iter().enumerate() {
        assert_eq!(row["id"], i, "rows out of order");
        let logits = floats(&row["logits"]);
        let p = &row["probabilities"];
        // Probabilities by label name are the softmax of the logits; `label` the argmax's name.
        let exp: Vec<f64> = logits.iter().map(|l| l.exp()).collect();
        for (k, e) in exp.iter().enumerate() {
            let want = e / exp.iter().sum::<f64>();
            let got = p[format!("LABEL_{k}")].as_f64().unwrap();
            assert!((got - want).abs() < 1e-6, "row {i}: p{k} {got} vs {want}");
        }
        let best = (0..3).fold(0, |b, k| if logits[k] > logits[b] { k } else { b });
        assert_eq!(row["label"], format!("LABEL_{best}"));
    }
    let err = run_err(
        &[
            "eval",
            "--model",
            path(&model),
            "--data",
            path(&data),
            "--out",
            "-",
            "--threads",
            "0",
        ],
        "",
    );
    assert!(err.contains("--threads 0"), "{err}");
}

/// `-` reads the rows from standard input and writes them to standard output, the summary then
/// on standard error; nothing but the summary on standard error when it is not a terminal (no
/// progress bar).
#[test]
fn standard_input_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = text_model(dir.path(), None);
    let rows = rows_text(&mixed_rows());
    let (data, out) = (dir.path().join("in.jsonl"), dir.path().join("out.jsonl"));
    std::fs::write(&data, &rows).unwrap();
    let o = run(
        &[
            "eval",
            "--model",
            path(&model),
            "--data",
            path(&data),
            "--out",
            path(&out),
        ],
        "",
    );
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("rows: 23 ("));
    let o = run(
        &[
            "eval",
            "--model",
            path(&model),
            "--data",
            "-",
            "--out",
            "-",
            "--threads",
            "2",
        ],
        &rows,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, std::fs::read(&out).unwrap());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("rows: 23 (") && err.contains("2 sessions"),
        "{err}"
    );
}

/// premise/hypothesis, sentence1/sentence2, text/text_pair and --columns give the same logits
/// for the same texts; a first text alone is a single text in each.
#[test]
fn every_column_set_reads_the_same_texts() {
    let dir = tempfile::tempdir().unwrap();
    let model = text_model(dir.path(), None);
    let pairs = [
        ("the people said", Some("you work")),
        ("time is new", None),
        ("first", Some("the")),
    ];
    // With --columns A,B both columns must be there (a misspelt B is not a single text).
    let logits = |a: &str, b: &str, extra: &[&str]| -> Vec<Value> {
        let rows: Vec<Value> = pairs
            .iter()
            .filter(|(_, y)| y.is_some() || extra.is_empty())
            .map(|(x, y)| match y {
                Some(y) => json!({a: x, b: y, "other": 1}),
                None => json!({a: x, "other": 1}),
            })
            .collect();
        let args = [
            &["eval", "--model", path(&model), "--data", "-", "--out", "-"][..],
            extra,
        ]
        .concat();
        jsonl(&run_ok(&args, &rows_text(&rows)))
            .into_iter()
            .map(|r| r["logits"].clone())
            .collect()
    };
    let want = logits("premise", "hypothesis", &[]);
    assert_ne!(want[0], want[1]);
    assert_eq!(want, logits("sentence1", "sentence2", &[]));
    assert_eq!(want, logits("text", "text_pair", &[]));
    assert_eq!(
        [want[0].clone(), want[2].clone()],
        &logits("question", "answer", &["--columns", "question,answer"])[..]
    );
    // A row without B is an error; --columns A names a single-text column.
    let rows = rows_text(&[json!({"question": "time is new"})]);
    let err = run_err(
        &[
            "eval",
            "--model",
            path(&model),
            "--data",
            "-",
            "--out",
            "-",
            "--columns",
            "question,answer",
        ],
        &rows,
    );
    assert!(err.contains("standard input: line 1: no answer"), "{err}");
    let single = jsonl(&run_ok(
        &[
            "eval",
            "--model",
            path(&model),
            "--data",
            "-",
            "--out",
            "-",
            "--columns",
            "question",
        ],
        &rows,
    ));
    assert_eq!(single[0]["logits"], want[1]);
    let err = run_err(
        &[
            "eval",
            "--model",
            path(&model),
            "--data",
            "-",
            "--out",
            "-",
            "--columns",
            "a,b,c",
        ],
        "",
    );
    assert!(err.contains("--columns a,b,c"), "{err}");
}

/// The confusion-matrix line of `label`: its counts.
fn matrix_row(summary: &str, label: &str) -> Vec<usize> {
    let line = summary
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label))
        .unwrap_or_else(|| panic!("no row {label} in {summary}"));
    line.split_whitespace()
        .skip(1)
        .map(|c| c.parse().unwrap())
        .collect()
}

/// Gold labels by name (any case) or index; others counted apart; against a hand count. The
/// tiny model predicts LABEL_0 for every row (its goldens' logits all peak there).
#[test]
fn accuracy_and_confusion_against_a_hand_count() {
    let dir = tempfile::tempdir().unwrap();
    let model = text_model(dir.path(), None);
    let golds = [
        json!("LABEL_0"),
        json!("LABEL_0"),
        json!("label_1"),
        json!(2),
        json!("LABEL_2"),
        json!("entailment"),
        json!("entailment"),
        Value::Null,
    ];
    let mut rows: Vec<Value> = golds
        .iter()
        .enumerate()
        .map(|(i, g)| json!({"input_ids": [1, 30 + i, 2], "label": g}))
        .collect();
    rows.push(json!({"input_ids": [1, 40, 2]}));
    let metrics = dir.path().join("metrics.json");
    let o = run(
        &[
            "eval",
            "--model",
            path(&model),
            "--data",
            "-",
            "--out",
            "-",
            "--metrics",
            path(&metrics),
        ],
        &rows_text(&rows),
    );
    assert!(o.status.success());
    let (out, summary) = (
        jsonl(std::str::from_utf8(&o.stdout).unwrap()),
        String::from_utf8(o.stderr).unwrap(),
    );
    // Each row: the prediction under `label`, its own label kept as `gold_label`.
    for (row, gold) in out.iter().zip(&golds) {
        assert_eq!(row["label"], "LABEL_0", "{row}");
        assert_eq!(row.get("gold_label").unwrap_or(&Value::Null), gold);
    }
    // Scored: 5 rows (2 LABEL_0, 1 label_1, 2 and LABEL_2); right: the 2 LABEL_0 rows.
    assert!(summary.contains("accuracy: 40.00% (2/5 rows"), "{summary}");
    assert!(
        summary.contains("does not name (not in the accuracy): entailment 2"),
        "{summary}"
    );
    assert!(
        summary.contains("rows without a gold label: 2"),
        "{summary}"
    );
    assert_eq!(matrix_row(&summary, "LABEL_0"), [2, 0, 0]);
    assert_eq!(matrix_row(&summary, "LABEL_1"), [1, 0, 0]);
    assert_eq!(matrix_row(&summary, "LABEL_2"), [2, 0, 0]);
    assert_eq!(matrix_row(&summary, "entailment*"), [2, 0, 0]);
    let m: Value = serde_json::from_slice(&std::fs::read(&metrics).unwrap()).unwrap();
    assert_eq!(m["accuracy"], 0.4);
    assert_eq!(
        m["confusion"]["gold"],
        json!(["LABEL_0", "LABEL_1", "LABEL_2", "entailment"])
    );
    assert_eq!(
        m["confusion"]["counts"],
        json!([[2, 0, 0], [1, 0, 0], [2, 0, 0], [2, 0, 0]])
    );
}

/// On the real model, whose predictions vary: rows chosen where its fp32 logits win by more
/// than 1.5 (rte ids 0, 130, 159, 203 predict label 0; 8, 47, 57, 58 label 1), integer gold
/// labels (whatever the labels are named), counted by hand.
#[test]
fn real_model_accuracy_against_a_hand_count() {
    let rte = real_rows("rte_dev.goldens.jsonl");
    let pick = [
        (0, json!(0)),
        (130, json!(0)),
        (159, json!(1)),
        (203, json!(7)),
        (8, json!(1)),
        (47, json!(1)),
        (57, json!(0)),
        (58, Value::Null),
    ];
    let rows: Vec<Value> = pick
        .iter()
        .map(|(id, gold)| {
            let r = rte.iter().find(|r| r["id"] == *id).unwrap();
            json!({"input_ids": r["input_ids"], "logits_fp32": r["logits_fp32"], "label": gold})
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("m.json");
    let model = real_model();
    let o = run(
        &[
            "eval",
            "--model",
            path(&model),
            "--data",
            "-",
            "--out",
            "-",
            "--threads",
            "2",
            "--metrics",
            path(&metrics),
        ],
        &rows_text(&rows),
    );
    let summary = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{summary}");
    assert!(
        summary.contains("argmax agreement 100.00% (8/8)"),
        "{summary}"
    );
    // Scored 6 (gold 0 or 1); right: 0, 130 (0) and 8, 47 (1).
    assert!(summary.contains("accuracy: 66.67% (4/6 rows"), "{summary}");
    let m: Value = serde_json::from_slice(&std::fs::read(&metrics).unwrap()).unwrap();
    let labels = m["labels"].clone();
    assert_eq!(m["confusion"]["gold"], json!([labels[0], labels[1], "7"]));
    assert_eq!(m["confusion"]["counts"], json!([[2, 1], [1, 2], [1, 0]]));
    assert_eq!(
        (&m["scored"], &m["correct"], &m["rows_without_gold"]),
        (&json!(6), &json!(4), &json!(1))
    );
}

/// Bad rows are errors naming the input and the line, the first in input order whatever the
/// thread count; with --skip-bad-rows each is named, counted, and the good rows written.
#[test]
fn bad_rows_are_named_by_line_or_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let model = text_model(dir.path(), None);
    let good = r#"{"premise": "the people"}"#;
    for (bad, want) in [
        (r#"{"input_ids": [1, "5", 2]}"#, r#"line 3: input_ids[1] is "5" (a string), not a token id"#),
        (r#"{"input_ids": "1 5 2"}"#, r#"line 3: input_ids is "1 5 2" (a string), not an array"#),
        (r#"{"premise": 5}"#, "line 3: premise is 5 (a number), not a string"),
        (r#"{"question": "a"}"#, "line 3: no text: expected premise/hypothesis, sentence1/sentence2, text/text_pair or input_ids (or name the columns with --columns A,B); the row has: question"),
        (r#"{"premise": "a""#, "line 3: not JSON"),
        ("[1, 2]", "line 3: [1,2] (an array), not a JSON object"),
        (r#"{"input_ids": [1, 999999, 2]}"#, "line 3: "),
    ] {
        // Lines 3 and 6 are bad (line 2 blank): the error is line 3's on 1 and on 3 threads.
        let input = format!("{good}\n\n{bad}\n{good}\n{good}\n{bad}\n{good}\n");
        for threads in ["1", "3"] {
            let args = ["eval", "--model", path(&model), "--data", "-", "--out", "-", "--threads", threads];
            let err = run_err(&args, &input);
            assert!(err.contains(&format!("dbrt: standard input: {want}")), "{bad}: {err}");
        }
        let args = ["eval", "--model", path(&model), "--data", "-", "--out", "-", "--skip-bad-rows", "--threads", "2"];
        let o = run(&args, &input);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert_eq!(jsonl(std::str::from_utf8(&o.stdout).unwrap()).len(), 4);
        assert!(err.contains(&format!("dbrt: standard input: {}", want.replacen("line 3:", "line 3 skipped:", 1))), "{err}");
        assert!(err.contains("skipped 2 bad rows (--skip-bad-rows): lines 3, 6"), "{err}");
    }
    // A missing input, an unwritable output: named.
    let missing = dir.path().join("missing.jsonl");
    let err = run_err(
        &[
            "eval",
            "--model",
            path(&model),
            "--data",
            path(&missing),
            "--out",
            "-",
        ],
        "",
    );
    assert!(err.contains(path(&missing)), "{err}");
    let unwritable = dir.path().join("no/such/dir/out.jsonl");
    let err = run_err(
        &[
            "eval",
            "--model",
            path(&model),
            "--data",
            "-",
            "--out",
            path(&unwritable),
        ],
        "",
    );
    assert!(err.contains(path(&unwritable)), "{err}");
}
