//! `dbrt classify` on the real int8 model: the labels ranked, the predicted one first, in text
//! and JSON; `--threads`, `--max-length` and `--isa` reach the session; bad values are errors
//! naming the option and the value.

mod common;

use common::dbrt;
use serde_json::Value;

fn real_model() -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/aegis-nli-xsmall-int8.dbrt");
    assert!(
        p.is_file(),
        "{} is missing: run DBRT_DTYPE=int8 scripts/fetch-model.sh models/aegis-nli-xsmall-int8.dbrt",
        p.display()
    );
    p
}

const PREMISE: &str = "A man is playing a guitar on stage.";
const HYPOTHESIS: &str = "Nobody is playing music.";

fn classify(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["classify", "--premise", PREMISE, "--hypothesis", HYPOTHESIS];
    args.extend_from_slice(extra);
    dbrt(&args, &[("--model", &real_model())])
}

fn json(extra: &[&str]) -> Value {
    let o = classify(&[extra, &["--json"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn prints_the_labels_ranked_the_predicted_one_first() {
    let j = json(&[]);
    let labels = j["labels"].as_object().unwrap();
    let model = dbrt::Model::open(real_model()).unwrap();
    assert_eq!(labels.len(), model.labels().len(), "{j}");
    let (best, p) = labels
        .iter()
        .map(|(l, p)| (l.clone(), p.as_f64().unwrap()))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(j["label"], best.as_str(), "{j}");
    assert_eq!(j["score"].as_f64().unwrap(), p, "{j}");
    assert_eq!(j["backend"], "cpu", "{j}");

    let o = classify(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<(String, f64)> = text
        .lines()
        .map(|l| {
            let (label, p) = l.rsplit_once(' ').unwrap();
            (label.trim().to_string(), p.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), labels.len(), "{text}");
    assert_eq!(rows[0].0, best, "{text}");
    assert!(rows.windows(2).all(|w| w[0].1 >= w[1].1), "{text}");
    for (label, p) in &rows {
        assert!(
            (labels[label].as_f64().unwrap() - p).abs() < 1e-4,
            "{label}: {text}"
        );
    }
}

#[test]
fn threads_max_length_and_isa_reach_the_session() {
    // --max-length: a long premise whose point comes last is cut before it.
    let long = "The movie was long. ".repeat(30) + "It was terrible and nobody liked it.";
    let run = |extra: &[&str]| {
        let o = dbrt(
            &[
                &[
                    "classify",
                    "--premise",
                    &long,
                    "--hypothesis",
                    "The movie was good.",
                    "--json",
                ],
                extra,
            ]
            .concat(),
            &[("--model", &real_model())],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    let (full, cut) = (run(&[]), run(&["--max-length", "16"]));
    assert!(
        (full["score"].as_f64().unwrap() - cut["score"].as_f64().unwrap()).abs() > 0.05
            || full["label"] != cut["label"],
        "{full} {cut}"
    );
    assert_eq!(run(&["--max-length", "512"]), full);

    // --isa and --threads: the session says what it runs (RUST_LOG=info), and the answer
    // stays the same.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_dbrt"))
        .args([
            "classify",
            "--premise",
            PREMISE,
            "--hypothesis",
            HYPOTHESIS,
            "--json",
        ])
        .args(["--isa", "scalar", "--threads", "64", "--model"])
        .arg(real_model())
        .env("RUST_LOG", "info")
        .env_remove("DBRT_FORCE_ISA")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("dbrt kernels: scalar"), "{err}");
    assert!(err.contains("64 threads requested"), "{err}");
    let scalar: Value = serde_json::from_slice(&o.stdout).unwrap();
    let best = json(&[]);
    assert_eq!(scalar["label"], best["label"], "{scalar} {best}");
    assert!((scalar["score"].as_f64().unwrap() - best["score"].as_f64().unwrap()).abs() < 0.02);
}

#[test]
fn bad_values_are_errors_naming_the_option_and_value() {
    let unavailable = dbrt::kernels::Isa::ALL
        .into_iter()
        .find(|i| !i.available())
        .map(|i| i.name());
    let mut cases = vec![
        (
            vec!["--threads", "0"],
            "--threads must be at least 1, got 0".to_string(),
        ),
        (vec!["--max-length", "0"], "--max-length 0: ".into()),
        (vec!["--max-length", "2"], "--max-length 2: ".into()),
        (vec!["--max-length", "513"], "--max-length 513: ".into()),
        (vec!["--isa", "bogus"], "--isa \"bogus\": ".into()),
    ];
    if let Some(isa) = unavailable {
        cases.push((
            vec!["--isa", isa],
            format!("--isa {isa}: this CPU does not run it"),
        ));
    }
    for (extra, want) in &cases {
        let o = classify(extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{extra:?} accepted");
        assert!(
            err.contains(want.as_str()),
            "{extra:?}: want {want:?} in {err}"
        );
    }
}
