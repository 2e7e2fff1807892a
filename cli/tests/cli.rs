//! The `dbrt` binary end to end on a tiny fixture (ids in, logits out).

use std::process::Command;

fn tiny_model(dir: &std::path::Path) -> std::path::PathBuf {
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny/v3-style");
    let out = dir.join("tiny.dbrt");
    dbrt_convert::convert(&src, &out, &Default::default(), &mut ()).unwrap();
    out
}

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
