//! The `dbrt` binary end to end on a tiny fixture (ids in, logits out).

mod common;

use common::*;
use std::process::Command;

#[test]
fn eval_writes_logits_and_reports_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    // Rows in the goldens' form: input_ids and the reference logits under logits_fp32.
    let goldens: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/tiny/v3-style/goldens.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let cases = goldens["cases"].as_array().unwrap();
    let data: String = cases
        .iter()
        .map(|c| {
            serde_json::json!({"input_ids": c["input_ids"], "logits_fp32": c["logits"]}).to_string()
                + "\n"
        })
        .collect();
    let (inp, out) = (dir.path().join("in.jsonl"), dir.path().join("out.jsonl"));
    std::fs::write(&inp, data).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dbrt"))
        .args(["eval", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&inp)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains(&format!("rows: {}", cases.len())),
        "{stdout}"
    );
    assert!(stdout.contains("argmax agreement 100.00%"), "{stdout}");
    let written: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written.len(), cases.len());
    for (w, c) in written.iter().zip(cases) {
        let got: Vec<f64> = w["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let want: Vec<f64> = c["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}

#[test]
fn errors_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    // The tiny model has no tokenizer: classify must say so and exit non-zero.
    let o = Command::new(env!("CARGO_BIN_EXE_dbrt"))
        .args(["classify", "--model"])
        .arg(&model)
        .args(["--premise", "a", "--hypothesis", "b"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("tokenizer"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let bad = dir.path().join("bad.dbrt");
    std::fs::write(&bad, b"not a model").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dbrt"))
        .args(["classify", "--model"])
        .arg(&bad)
        .args(["--premise", "a"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a .dbrt file"));
}

/// A model with token types (v2-style): the rows' `token_type_ids` reach the model, and the
/// logits are transformers' (they were ignored, which gave -4.27 instead of -7.77).
#[test]
fn eval_passes_token_type_ids_through() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_variant(dir.path(), "v2-absolute-pos");
    let cases = goldens("v2-absolute-pos");
    // Cases whose token types are not all zero: without them the logits differ.
    assert!(cases
        .iter()
        .any(|c| floats(&c["token_type_ids"]).iter().any(|&t| t != 0.0)));
    let data: String = cases
        .iter()
        .map(|c| {
            serde_json::json!({"input_ids": c["input_ids"], "token_type_ids": c["token_type_ids"]})
                .to_string()
                + "\n"
        })
        .collect();
    let (inp, out) = (dir.path().join("in.jsonl"), dir.path().join("out.jsonl"));
    std::fs::write(&inp, data).unwrap();
    let o = dbrt(
        &["eval"],
        &[("--model", &model), ("--data", &inp), ("--out", &out)],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let written: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written.len(), cases.len());
    for (i, (w, c)) in written.iter().zip(&cases).enumerate() {
        assert_eq!(w["token_type_ids"], c["token_type_ids"], "case {i}");
        for (a, b) in floats(&w["logits"]).iter().zip(floats(&c["logits"])) {
            assert!((a - b).abs() < 1e-4, "case {i}: {a} vs {b}");
        }
    }
}

/// Ids that are not 32-bit integers, and token types that do not match the ids, are errors
/// naming the line and the field (a string id became token id 4294967295).
#[test]
fn eval_rejects_malformed_ids_naming_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_variant(dir.path(), "v2-absolute-pos");
    let good = r#"{"input_ids": [1, 5, 2], "token_type_ids": [0, 0, 1]}"#;
    for (bad, want) in [
        (
            r#"{"input_ids": [1, "5", 2]}"#,
            "line 2: input_ids[1] is \"5\"",
        ),
        (
            r#"{"input_ids": [1, 5.5, 2]}"#,
            "line 2: input_ids[1] is 5.5",
        ),
        (r#"{"input_ids": [1, -5, 2]}"#, "line 2: input_ids[1] is -5"),
        (
            r#"{"input_ids": [1, 4294967296]}"#,
            "line 2: input_ids[1] is 4294967296",
        ),
        (
            r#"{"input_ids": "1 5 2"}"#,
            "line 2: input_ids is \"1 5 2\"",
        ),
        (
            r#"{"input_ids": [1, 5, 2], "token_type_ids": [0, "a", 1]}"#,
            "line 2: token_type_ids[1] is \"a\"",
        ),
        (
            r#"{"input_ids": [1, 5, 2], "token_type_ids": [0, 1]}"#,
            "line 2: 2 token_type_ids for 3 input_ids",
        ),
    ] {
        let inp = dir.path().join("in.jsonl");
        std::fs::write(&inp, format!("{good}\n{bad}\n")).unwrap();
        let o = dbrt(
            &["eval"],
            &[
                ("--model", &model),
                ("--data", &inp),
                ("--out", &dir.path().join("out.jsonl")),
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{bad} accepted");
        assert!(err.contains(want), "{bad}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `--sessions N` runs N sessions at once and reports their total throughput; more threads
/// than cores are capped, with a warning, and the threads really run are reported.
#[test]
fn bench_runs_sessions_at_once_and_reports_the_threads_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let cores = std::thread::available_parallelism().unwrap().get();
    let asked = (cores + 2).to_string();
    let o = dbrt(
        &[
            "bench",
            "--seq",
            "8",
            "--threads",
            &asked,
            "--sessions",
            "3",
            "--iters",
            "4",
            "--json",
        ],
        &[("--model", &model)],
    );
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("{asked} threads requested but only {cores} cores")),
        "{err}"
    );
    let row: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(row["threads"], cores, "{row}");
    assert_eq!(row["threads_requested"], cores + 2, "{row}");
    assert_eq!(row["sessions"], 3, "{row}");
    let runs_per_s = row["runs_per_s"].as_f64().unwrap();
    assert!(runs_per_s > 0.0 && runs_per_s.is_finite(), "{row}");
    for key in ["p50_ms", "p90_ms", "p99_ms", "min_ms"] {
        assert!(row[key].as_f64().unwrap() > 0.0, "{row}");
    }
    for (bad, want) in [
        ("--sessions=0", "--sessions must be at least 1"),
        ("--threads=0", "--threads must be at least 1"),
        ("--iters=0", "--iters must be at least 1"),
    ] {
        let o = dbrt(&["bench", "--seq", "8", bad], &[("--model", &model)]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{bad} accepted");
        assert!(err.contains(want), "{bad}: {err}");
    }
}

/// A session asked for more threads than there are cores runs as many as there are, and gives
/// the same bits as one thread.
#[test]
fn more_threads_than_cores_give_the_same_bits_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_variant(dir.path(), "v2-absolute-pos");
    let model = std::sync::Arc::new(dbrt::Model::open(&path).unwrap());
    let cores = std::thread::available_parallelism().unwrap().get();
    let logits = |threads: usize| {
        let mut s = dbrt::Session::new(
            model.clone(),
            dbrt::SessionOptions {
                threads,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.threads(), threads.min(cores));
        goldens("v2-absolute-pos")
            .iter()
            .map(|c| {
                let ids: Vec<u32> = floats(&c["input_ids"]).iter().map(|&v| v as u32).collect();
                let types: Vec<u32> = floats(&c["token_type_ids"])
                    .iter()
                    .map(|&v| v as u32)
                    .collect();
                s.run_logits(dbrt::Sequence {
                    ids: &ids,
                    type_ids: Some(&types),
                })
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let one = logits(1);
    for threads in [cores + 1, 4 * cores, 64] {
        assert_eq!(logits(threads), one, "{threads} threads");
    }
}

/// `--backend` and its fallback: the JSON and eval's summary say which backend ran each call
/// and why a call fell back; an unknown backend and `--fallback never` without the backend are
/// errors. With onnxruntime (DBRT_ONNXRUNTIME_LIB), eval runs the tiny model's exported graphs
/// on `ort-cpu`.
#[test]
fn the_backend_that_ran_is_reported_and_a_fallback_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let absent = ["--onnxruntime-lib", "/nonexistent/libonnxruntime.so"];
    let bench = |extra: &[&str]| {
        let mut args = vec!["bench", "--seq", "8", "--threads", "1", "--iters", "2"];
        args.extend_from_slice(extra);
        args.push("--json");
        dbrt(&args, &[("--model", &model)])
    };
    let row = |o: &std::process::Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap()
    };
    let cpu = row(&bench(&[]));
    assert_eq!(cpu["backend"], "cpu", "{cpu}");
    assert!(cpu["fallback"].is_null(), "{cpu}");
    let mut args = vec!["--backend", "ort-cpu", "--artifacts", "/nonexistent/dir"];
    args.extend_from_slice(&absent);
    let fell = row(&bench(&args));
    assert_eq!(fell["backend"], "cpu", "{fell}");
    assert_eq!(fell["fallback"]["kind"], "backend unavailable", "{fell}");
    let message = fell["fallback"]["message"].as_str().unwrap();
    assert!(message.contains("/nonexistent/libonnxruntime.so"), "{fell}");
    args.extend_from_slice(&["--fallback", "never"]);
    let o = bench(&args);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unavailable"));
    let o = bench(&["--backend", "tpu"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no backend named 'tpu'"));

    // eval's summary counts the calls per backend.
    let data: String = goldens("v3-style")
        .iter()
        .map(|c| serde_json::json!({"input_ids": c["input_ids"]}).to_string() + "\n")
        .collect();
    let (inp, out) = (dir.path().join("in.jsonl"), dir.path().join("out.jsonl"));
    std::fs::write(&inp, data).unwrap();
    let rows = goldens("v3-style").len();
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval"];
        args.extend_from_slice(extra);
        let o = dbrt(
            &args,
            &[("--model", &model), ("--data", &inp), ("--out", &out)],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let mut args = vec!["--backend", "ort-cpu", "--artifacts", "/nonexistent/dir"];
    args.extend_from_slice(&absent);
    let stdout = eval(&args);
    assert!(
        stdout.contains(&format!("encoder ran on: cpu {rows}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("fell back to the CPU: backend unavailable {rows}")),
        "{stdout}"
    );
    if std::env::var_os("DBRT_ONNXRUNTIME_LIB").is_none() {
        eprintln!("the ort-cpu route is skipped: DBRT_ONNXRUNTIME_LIB is unset");
        return;
    }
    let artifacts = dir.path().join("artifacts");
    let options = dbrt_convert::export::ExportOptions {
        buckets: vec![16, 128],
        ..Default::default()
    };
    dbrt_convert::export::export_onnx(&model, &artifacts, &options).unwrap();
    let artifacts = artifacts.to_str().unwrap();
    let stdout = eval(&["--backend", "ort-cpu", "--artifacts", artifacts]);
    assert!(
        stdout.contains(&format!("encoder ran on: ort-cpu {rows}")),
        "{stdout}"
    );
    assert!(!stdout.contains("fell back"), "{stdout}");
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(
        written
            .lines()
            .all(|l| l.contains("\"backend\":\"ort-cpu\"")),
        "{written}"
    );
}
