//! What the eval and zero-shot tests share: the tiny v3-style model with the tiny tokenizer (so
//! it takes text), its labels renamed if asked, and the `dbrt` binary run with standard input.
#![allow(dead_code)] // each test binary uses part of it

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The tiny v3-style model (three labels, LABEL_0..2) converted with the tiny tokenizer into
/// `dir`; with `labels`, its config's label names replaced first.
pub fn text_model(dir: &Path, labels: Option<[&str; 3]>) -> PathBuf {
    let fixture = workspace().join("tests/fixtures/tiny/v3-style");
    let source = dir.join(format!("source-{}", labels.is_some()));
    std::fs::create_dir_all(&source).unwrap();
    for f in ["model.safetensors", "config.json"] {
        std::fs::copy(fixture.join(f), source.join(f)).unwrap();
    }
    if let Some(labels) = labels {
        let path = source.join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["id2label"] = serde_json::json!({"0": labels[0], "1": labels[1], "2": labels[2]});
        config["label2id"] = serde_json::json!({labels[0]: 0, labels[1]: 1, labels[2]: 2});
        std::fs::write(&path, config.to_string()).unwrap();
    }
    let out = dir.join(format!("tiny-text-{}.dbrt", labels.is_some()));
    let options = dbrt_convert::ConvertOptions {
        tokenizer: Some(workspace().join("tests/corpus/tiny-tokenizer.json")),
        ..Default::default()
    };
    dbrt_convert::convert(&source, &out, &options, &mut ()).unwrap();
    out
}

/// The real default model, int8 (scripts/fetch-model.sh makes it).
pub fn real_model() -> PathBuf {
    let p = workspace().join("models/aegis-nli-xsmall-int8.dbrt");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-model.sh first",
        p.display()
    );
    p
}

pub fn real_rows(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(workspace().join("tests/fixtures/real").join(file)).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs `dbrt args`, `stdin` piped in; standard output and error are pipes (not terminals).
pub fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbrt"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `run`, which must succeed; its standard output.
pub fn run_ok(args: &[&str], stdin: &str) -> String {
    let o = run(args, stdin);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "dbrt {args:?} failed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    String::from_utf8(o.stdout).unwrap()
}

/// `run`, which must fail without a panic; its standard error.
pub fn run_err(args: &[&str], stdin: &str) -> String {
    let o = run(args, stdin);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "dbrt {args:?} succeeded: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

pub fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub fn rows_text(rows: &[Value]) -> String {
    rows.iter().map(|r| r.to_string() + "\n").collect()
}

pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not an array"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
