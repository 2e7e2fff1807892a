//! What the CLI tests share: tiny fixtures converted, the `dbrt` binary run.
#![allow(dead_code)] // each test binary uses part of it

use std::process::Command;

pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tiny")
        .join(name)
}

pub fn tiny_model(dir: &std::path::Path) -> std::path::PathBuf {
    tiny_variant(dir, "v3-style")
}

/// The tiny fixture `name`, converted into `dir`.
pub fn tiny_variant(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let out = dir.join(format!("{name}.dbrt"));
    dbrt_convert::convert(&fixture(name), &out, &Default::default(), &mut ()).unwrap();
    out
}

pub fn goldens(name: &str) -> Vec<serde_json::Value> {
    let g: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture(name).join("goldens.json")).unwrap())
            .unwrap();
    g["cases"].as_array().unwrap().clone()
}

pub fn dbrt(args: &[&str], paths: &[(&str, &std::path::Path)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dbrt"));
    c.args(args);
    for (flag, path) in paths {
        c.arg(flag).arg(path);
    }
    c.output().unwrap()
}

pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}
