//! `dbrt bench`: every output format parses and every record names what was measured and
//! where; bad arguments are errors naming the option and the value; models × ISAs give one
//! record per combination.

mod common;

use common::{dbrt, tiny_model};
use serde_json::Value;

/// Options that keep a run to a few runs of the tiny model.
const QUICK: &[&str] = &[
    "--seq",
    "8",
    "--threads",
    "1",
    "--reps",
    "2",
    "--iters",
    "2",
];

fn bench(model: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["bench"];
    args.extend_from_slice(QUICK);
    args.extend_from_slice(extra);
    let o = dbrt(&args, &[("--model", model)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("", |(_, v)| v.trim())
        .to_string()
}

/// What every record must say, and latencies that are consistent.
fn check_record(r: &Value, model: &str, weights: &str) {
    assert_eq!(r["model"], model, "{r}");
    assert_eq!(r["weights"], weights, "{r}");
    assert_eq!(r["backend"], "cpu", "{r}");
    assert_eq!(r["threads"], 1, "{r}");
    assert_eq!(r["seq"], 8, "{r}");
    assert_eq!(
        (r["reps"].as_u64(), r["iters"].as_u64()),
        (Some(2), Some(2)),
        "{r}"
    );
    let version = r["dbrt_version"].as_str().unwrap();
    assert!(version.starts_with(env!("CARGO_PKG_VERSION")), "{r}");
    let cpu = r["cpu"].as_str().unwrap();
    assert!(!cpu.is_empty(), "{r}");
    if !cpu_model().is_empty() {
        assert_eq!(cpu, cpu_model(), "{r}");
    }
    assert!(
        dbrt::kernels::Isa::parse(r["isa"].as_str().unwrap()).is_ok(),
        "{r}"
    );
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {r}"));
    assert!(f("min_ms") > 0.0 && f("min_ms") <= f("p50_ms"), "{r}");
    assert!(
        f("p50_ms") <= f("p90_ms") && f("p90_ms") <= f("p99_ms"),
        "{r}"
    );
    assert!(
        f("min_ms") <= f("mean_ms") && f("mean_ms") <= f("p99_ms"),
        "{r}"
    );
    assert!(f("stddev_ms") >= 0.0 && f("stddev_ms").is_finite(), "{r}");
    for k in [
        "open_ms",
        "first_result_ms",
        "peak_rss_mb",
        "model_mb",
        "runs_per_s",
    ] {
        assert!(f(k) > 0.0 && f(k).is_finite(), "{k}: {r}");
    }
}

#[test]
fn every_format_parses_and_names_model_weights_isa_cpu_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let name = "v3-style.dbrt";
    let batches = ["--batch", "1,2"];

    let json: Value = serde_json::from_str(&bench(
        &model,
        &[&batches[..], &["--format", "json"]].concat(),
    ))
    .unwrap();
    let records = json.as_array().unwrap();
    assert_eq!(records.len(), 2, "{json}");
    for (r, batch) in records.iter().zip([1, 2]) {
        check_record(r, name, "f32");
        assert_eq!(r["batch"], batch, "{r}");
    }

    let jsonl = bench(&model, &[&batches[..], &["--format", "jsonl"]].concat());
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{jsonl}");
    lines.iter().for_each(|r| check_record(r, name, "f32"));
    // `--json` is `--format jsonl`, as scripts (benches/peers.py) read it.
    let legacy = bench(&model, &["--json"]);
    check_record(&serde_json::from_str(legacy.trim()).unwrap(), name, "f32");

    // CSV: a header row naming every field, then one row per combination, all as wide.
    let csv = bench(&model, &[&batches[..], &["--format", "csv"]].concat());
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    let header = &rows[0];
    for field in [
        "model",
        "weights",
        "isa",
        "cpu",
        "threads",
        "batch",
        "seq",
        "backend",
        "dbrt_version",
        "mean_ms",
        "stddev_ms",
        "p50_ms",
        "p90_ms",
        "open_ms",
        "first_result_ms",
        "peak_rss_mb",
    ] {
        assert!(header.contains(&field), "{field} not in {header:?}");
    }
    let col = |row: &[&str], k: &str| row[header.iter().position(|h| *h == k).unwrap()].to_string();
    for (row, batch) in rows[1..].iter().zip(["1", "2"]) {
        assert_eq!(row.len(), header.len(), "{row:?}");
        assert_eq!(col(row, "model"), name);
        assert_eq!(col(row, "weights"), "f32");
        assert_eq!(col(row, "batch"), batch);
        assert!(col(row, "mean_ms").parse::<f64>().unwrap() > 0.0, "{row:?}");
    }

    // The tables: a header row, then a row per combination with as many columns.
    let md = bench(&model, &[&batches[..], &["--format", "md"]].concat());
    let md: Vec<&str> = md.lines().collect();
    assert_eq!(md.len(), 4, "{md:?}");
    let cells = |l: &str| {
        l.trim_matches('|')
            .split('|')
            .map(str::trim)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let head = cells(md[0]);
    for h in [
        "model",
        "weights",
        "isa",
        "backend",
        "threads",
        "batch",
        "seq",
        "mean ± sd ms",
        "p50 ms",
        "p90 ms",
        "cpu",
        "dbrt",
    ] {
        assert!(head.iter().any(|c| c == h), "{h} not in {head:?}");
    }
    assert!(
        cells(md[1])
            .iter()
            .all(|c| c.trim_matches([':', '-']).is_empty() && c.contains("---")),
        "{}",
        md[1]
    );
    for l in &md[2..] {
        let row = cells(l);
        assert_eq!(row.len(), head.len(), "{l}");
        assert_eq!(row[0], name);
        assert_eq!(row[1], "f32");
        assert!(
            row[head.iter().position(|h| h == "mean ± sd ms").unwrap()].contains(" ± "),
            "{l}"
        );
    }
    let text = bench(&model, &batches);
    let text: Vec<&str> = text.lines().collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(
        text[0].starts_with("model ") && text[0].contains("p90 ms"),
        "{}",
        text[0]
    );
    // Aligned: each header sits where its values end or start.
    let at = text[0].find("p90 ms").unwrap() + "p90 ms".len();
    for l in &text[1..] {
        assert!(l.starts_with(name), "{l}");
        assert!(
            l[..at].ends_with(|c: char| c.is_ascii_digit()) && l[at..].starts_with(' '),
            "{l}"
        );
    }
}

/// Two models (f32 and int8) × two ISAs (scalar and the best this CPU runs): four records, in
/// that order, each naming its model, weights and ISA.
#[test]
fn models_times_isas_give_a_record_each() {
    let dir = tempfile::tempdir().unwrap();
    let f32_model = tiny_model(dir.path());
    let int8_model = dir.path().join("tiny-int8.dbrt");
    let opts = dbrt_convert::ConvertOptions {
        storage: dbrt_convert::StorageType::Int8,
        ..Default::default()
    };
    dbrt_convert::convert(&common::fixture("v3-style"), &int8_model, &opts, &mut ()).unwrap();
    let best = dbrt::kernels::Isa::all_available().last().unwrap().name();
    let models = format!("{},{}", f32_model.display(), int8_model.display());
    let mut args = vec!["bench", "--model", &models];
    args.extend_from_slice(QUICK);
    let isas = format!("scalar,{best}");
    args.extend_from_slice(&["--isa", &isas, "--format", "jsonl"]);
    let o = dbrt(&args, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let records: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["model"].as_str().unwrap(), r["isa"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("v3-style.dbrt", "scalar"),
            ("v3-style.dbrt", best),
            ("tiny-int8.dbrt", "scalar"),
            ("tiny-int8.dbrt", best)
        ]
    );
    for r in &records {
        let weights = if r["model"] == "tiny-int8.dbrt" {
            "int8"
        } else {
            "f32"
        };
        check_record(r, r["model"].as_str().unwrap(), weights);
    }
}

#[test]
fn bad_arguments_are_errors_naming_the_option_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let max = dbrt::Model::open(&model).unwrap().max_sequence_length();
    let over = (max + 1).to_string();
    let missing = dir.path().join("absent.dbrt");
    let both = format!("{},{}", model.display(), missing.display());
    let unavailable = dbrt::kernels::Isa::ALL
        .into_iter()
        .find(|i| !i.available())
        .map(|i| i.name());
    let mut cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--seq", &over], format!("--seq {over}: ")),
        (
            vec!["--seq", "8,0"],
            "--seq must be at least 1, got 0".into(),
        ),
        (vec!["--seq="], "'--seq <N>'".into()),
        (
            vec!["--batch", "0"],
            "--batch must be at least 1, got 0".into(),
        ),
        (
            vec!["--threads", "1,0"],
            "--threads must be at least 1, got 0".into(),
        ),
        (
            vec!["--reps", "0"],
            "--reps must be at least 1, got 0".into(),
        ),
        (
            vec!["--iters", "0"],
            "--iters must be at least 1, got 0".into(),
        ),
        (
            vec!["--sessions", "0"],
            "--sessions must be at least 1, got 0".into(),
        ),
        (vec!["--isa", "scalar,bogus"], "--isa \"bogus\": ".into()),
        (vec!["--isa", "scalar,"], "--isa \"\": ".into()),
        (vec!["--format", "xml"], "'--format <FORMAT>'".into()),
    ];
    if let Some(isa) = unavailable {
        cases.push((
            vec!["--isa", isa],
            format!("--isa {isa}: this CPU does not run it"),
        ));
    }
    for (extra, want) in &cases {
        let mut args = vec!["bench", "--model", model.to_str().unwrap(), "--seq", "8"];
        args.extend_from_slice(extra);
        let o = dbrt(&args, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{extra:?} accepted");
        assert!(
            err.contains(want.as_str()),
            "{extra:?}: want {want:?} in {err}"
        );
        assert!(
            o.stdout.is_empty(),
            "{extra:?} printed {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    let o = dbrt(&["bench", "--model", &both, "--seq", "8"], &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

/// Each record's peak RSS is its own configuration's: the int8 model measured after the f32
/// one (the real models: their resident sizes differ) does not report the f32 model's peak.
#[test]
fn peak_rss_is_each_configurations_own() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let (f32_model, int8_model) = (
        dir.join("aegis-nli-xsmall.dbrt"),
        dir.join("aegis-nli-xsmall-int8.dbrt"),
    );
    for m in [&f32_model, &int8_model] {
        assert!(
            m.is_file(),
            "{} is missing: run scripts/fetch-model.sh",
            m.display()
        );
    }
    let models = format!("{},{}", f32_model.display(), int8_model.display());
    let mut args = vec!["bench", "--model", &models];
    args.extend_from_slice(&[
        "--seq",
        "8",
        "--threads",
        "1",
        "--reps",
        "1",
        "--iters",
        "1",
        "--json",
    ]);
    let o = dbrt(&args, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rss: Vec<f64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["peak_rss_mb"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(rss.len(), 2);
    assert!(rss[1] < 0.8 * rss[0], "int8 after f32: {rss:?} MB");
}
