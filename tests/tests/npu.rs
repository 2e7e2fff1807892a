//! The exported encoder graphs (`dbrt-convert export-onnx`) run through the session's
//! accelerator stage, against dbrt's own f32 CPU encoder: in onnxruntime's CPU provider
//! (`ort-cpu`, exact to 1e-4 on hidden states for the tiny fixtures and the real model at every
//! bucket; real logits within 1e-3 of transformers' on all 1,277 pairs), and on Qualcomm's HTP
//! emulator (`qnn`, fp16: argmax agreement on real pairs).
//!
//! onnxruntime is found through `DBRT_ONNXRUNTIME_LIB` and its QNN provider through
//! `DBRT_QNN_EP_LIB` (`eval "$(scripts/npu-env.sh)"` sets both). Without them these tests say so
//! and pass, unless `DBRT_REQUIRE_ONNXRUNTIME=1` (CI), where they fail.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use dbrt::offload::manifest::Precision;
use dbrt::offload::{BackendChoice, FallbackPolicy, OffloadOptions};
use dbrt::{Model, Sequence, Session, SessionOptions};
use dbrt_convert::export::{export_onnx, ExportOptions};
use dbrt_convert::StorageType;
use dbrt_tests::*;

/// Hidden states: max |Δ| over token rows between the exported graph in onnxruntime's CPU
/// provider and dbrt's f32 CPU encoder.
const HIDDEN_TOLERANCE: f32 = 1e-4;
/// Logits through the exported graph and dbrt's head against transformers' f32 logits.
const LOGIT_TOLERANCE: f32 = 1e-3;

/// Whether the libraries a backend needs are given; `false` means skip (told on stderr),
/// and under `DBRT_REQUIRE_ONNXRUNTIME=1` their absence fails the test.
fn have(vars: &[&str], test: &str) -> bool {
    let missing: Vec<&str> = vars
        .iter()
        .copied()
        .filter(|v| std::env::var_os(v).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var("DBRT_REQUIRE_ONNXRUNTIME").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test}: DBRT_REQUIRE_ONNXRUNTIME=1 but {missing:?} unset"
    );
    eprintln!("{test}: skipped, {missing:?} unset (eval \"$(scripts/npu-env.sh)\" sets them)");
    false
}

fn export(model: &Path, buckets: &[usize], precision: Precision) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ExportOptions {
        buckets: buckets.to_vec(),
        precision,
    };
    export_onnx(model, dir.path(), &options).unwrap_or_else(|e| panic!("export: {e}"));
    dir
}

fn session_on(model: &Arc<Model>, backend: &'static str, artifacts: &Path) -> Session {
    let options = SessionOptions {
        offload: OffloadOptions {
            backend: BackendChoice::Named(backend),
            artifacts: Some(artifacts.to_path_buf()),
            fallback: FallbackPolicy::Never,
            ..Default::default()
        },
        ..Default::default()
    };
    let s = Session::new(model.clone(), options).unwrap_or_else(|e| panic!("{backend}: {e}"));
    assert_eq!(s.backend(), backend);
    s
}

/// Runs `ids` on both sessions and returns max |Δ| of the last hidden states (token rows).
fn hidden_diff(cpu: &mut Session, dev: &mut Session, ids: &[u32], types: Option<&[u32]>) -> f32 {
    let seq = Sequence {
        ids,
        type_ids: types,
    };
    let want = cpu.run_hidden(seq).unwrap().to_vec();
    let got = dev.run_hidden(seq).unwrap().to_vec();
    assert_eq!(dev.last_backend(), Some(dev.backend()), "ran on the device");
    assert!(dev.last_fallback().is_none());
    max_abs_diff(&want, &got)
}

/// Token ids of length `len` from a real text (the model's tokenizer, or any ids in the
/// vocabulary for models without one).
fn ids_of_length(model: &Model, len: usize, seed: u32) -> Vec<u32> {
    let vocab = model.config().vocab_size as u32;
    (0..len as u32)
        .map(|i| 3 + (i.wrapping_mul(2654435761).wrapping_add(seed)) % (vocab - 3))
        .collect()
}

#[test]
fn tiny_fixtures_match_the_cpu_encoder_at_every_bucket() {
    if !have(&["DBRT_ONNXRUNTIME_LIB"], "tiny ort-cpu") {
        return;
    }
    let buckets = [8, 16, 32, 128];
    for name in ["v3-style", "separate-pos-proj", "v2-absolute-pos"] {
        let (_d, path) = convert(&fixtures().join("tiny").join(name), StorageType::F32);
        let artifacts = export(&path, &buckets, Precision::F32);
        let model = open(&path);
        let mut cpu = Session::new(model.clone(), Default::default()).unwrap();
        let mut dev = session_on(&model, "ort-cpu", artifacts.path());
        let with_types = model.config().type_vocab_size > 1;
        let mut worst = 0f32;
        for (i, &bucket) in buckets.iter().enumerate() {
            // A full bucket and one padded to it (just above the bucket below).
            let below = if i == 0 { 0 } else { buckets[i - 1] };
            for len in [bucket, below + 1] {
                let ids = ids_of_length(&model, len, i as u32);
                let types: Vec<u32> = (0..len).map(|t| (t >= len / 2) as u32).collect();
                let d = hidden_diff(&mut cpu, &mut dev, &ids, with_types.then_some(&types));
                assert!(
                    d <= HIDDEN_TOLERANCE,
                    "{name}: {len} tokens in bucket {bucket}: max |dh| {d:e}"
                );
                worst = worst.max(d);
            }
        }
        // The goldens' own cases, through the head: transformers' logits.
        for case in tiny_goldens(name).cases {
            let types = with_types.then_some(case.token_type_ids.as_slice());
            let logits = dev
                .run_logits(Sequence {
                    ids: &case.input_ids,
                    type_ids: types,
                })
                .unwrap();
            let d = max_abs_diff(logits, &case.logits);
            assert!(d <= LOGIT_TOLERANCE, "{name}: max |dlogit| {d:e}");
        }
        eprintln!("{name}: exported graphs vs the CPU encoder, max |dh| {worst:.2e}");
    }
}

struct Real {
    _dir: tempfile::TempDir,
    path: PathBuf,
    model: Arc<Model>,
}

fn real() -> &'static Real {
    static R: OnceLock<Real> = OnceLock::new();
    R.get_or_init(|| {
        let (dir, path) = convert(&real_model_onnx(), StorageType::F32);
        let model = open(&path);
        Real {
            _dir: dir,
            path,
            model,
        }
    })
}

/// Every real pair's ids, tokenized by the model (equal to the goldens', checked in real.rs).
fn real_pairs() -> Vec<RealRow> {
    let mut rows = real_rows("mnli_dev_matched.goldens.jsonl");
    rows.extend(real_rows("rte_dev.goldens.jsonl"));
    rows
}

#[test]
fn real_model_matches_the_cpu_encoder_at_every_bucket_and_transformers_on_every_pair() {
    if !have(&["DBRT_ONNXRUNTIME_LIB"], "real ort-cpu") {
        return;
    }
    let r = real();
    let buckets = [64, 128, 256, 512];
    let artifacts = export(&r.path, &buckets, Precision::F32);
    let mut cpu = Session::new(r.model.clone(), Default::default()).unwrap();
    let mut dev = session_on(&r.model, "ort-cpu", artifacts.path());
    let rows = real_pairs();
    // Hidden states at every bucket: real text, a full bucket and one just above the bucket
    // below (padded), premises joined to reach the longer lengths.
    let long: Vec<u32> = rows
        .iter()
        .flat_map(|row| row.input_ids[1..row.input_ids.len() - 1].iter().copied())
        .take(600)
        .collect();
    let mut worst_hidden = 0f32;
    for (i, &bucket) in buckets.iter().enumerate() {
        let below = if i == 0 { 0 } else { buckets[i - 1] };
        // [CLS] ... [SEP]: at least 3 tokens.
        for len in [bucket, (below + 1).max(3)] {
            let mut ids = vec![1u32];
            ids.extend_from_slice(&long[..len - 2]);
            ids.push(2);
            let d = hidden_diff(&mut cpu, &mut dev, &ids, None);
            assert!(
                d <= HIDDEN_TOLERANCE,
                "{len} tokens in bucket {bucket}: max |dh| {d:e}"
            );
            worst_hidden = worst_hidden.max(d);
        }
    }
    // Logits on every pair against transformers' f32 logits.
    let (mut worst_logit, mut agree) = (0f32, 0usize);
    for (i, row) in rows.iter().enumerate() {
        let logits = dev
            .run_logits(Sequence {
                ids: &row.input_ids,
                type_ids: None,
            })
            .unwrap()
            .to_vec();
        assert_eq!(dev.last_backend(), Some("ort-cpu"), "row {i}");
        let logits = &logits[..];
        let d = max_abs_diff(logits, &row.logits_fp32);
        assert!(d <= LOGIT_TOLERANCE, "row {i}: max |dlogit| {d:e}");
        worst_logit = worst_logit.max(d);
        agree += (argmax(logits) == argmax(&row.logits_fp32)) as usize;
    }
    eprintln!(
        "real model, exported graphs in onnxruntime's CPU provider: max |dh| {worst_hidden:.2e} \
         over buckets {buckets:?}; on {} pairs max |dlogit| {worst_logit:.2e} vs transformers, \
         argmax agreement {agree}/{}",
        rows.len(),
        rows.len()
    );
}

/// The pairs the emulator runs: `DBRT_QNN_PAIRS` (default 100; 0 means all 1,277).
fn qnn_pairs() -> usize {
    std::env::var("DBRT_QNN_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

#[test]
fn qnn_on_the_htp_emulator_agrees_with_the_cpu_on_real_pairs() {
    if !have(&["DBRT_ONNXRUNTIME_LIB", "DBRT_QNN_EP_LIB"], "qnn") {
        return;
    }
    let r = real();
    let rows = real_pairs();
    let n = match qnn_pairs() {
        0 => rows.len(),
        n => n.min(rows.len()),
    };
    // The buckets these pairs need (every graph is compiled when the session attaches): the
    // longest real pair has 243 tokens, the first hundred at most 108.
    let longest = rows[..n]
        .iter()
        .map(|r| r.input_ids.len())
        .max()
        .unwrap_or(1);
    let mut buckets = Vec::new();
    for b in [64, 128, 256, 512] {
        buckets.push(b);
        if b >= longest {
            break;
        }
    }
    let t0 = std::time::Instant::now();
    let artifacts = export(&r.path, &buckets, Precision::F32);
    let export_s = t0.elapsed().as_secs_f64();
    let t0 = std::time::Instant::now();
    // Fallback disabled both in dbrt (Never) and in the provider (every node on HTP, or the
    // session fails to attach).
    let mut dev = session_on(&r.model, "qnn", artifacts.path());
    let attach_s = t0.elapsed().as_secs_f64();
    let mut cpu = Session::new(r.model.clone(), Default::default()).unwrap();
    let (mut agree, mut max_d, mut sum_dp) = (0usize, 0f32, 0f64);
    let t0 = std::time::Instant::now();
    for (i, row) in rows[..n].iter().enumerate() {
        let seq = Sequence {
            ids: &row.input_ids,
            type_ids: None,
        };
        let want = cpu.run_logits(seq).unwrap().to_vec();
        let got = dev.run_logits(seq).unwrap().to_vec();
        assert_eq!(dev.last_backend(), Some("qnn"), "row {i}");
        let got = &got[..];
        agree += (argmax(got) == argmax(&want)) as usize;
        max_d = max_d.max(max_abs_diff(got, &want));
        let (pw, pg) = (dbrt::softmax(&want), dbrt::softmax(got));
        sum_dp += pw
            .iter()
            .zip(&pg)
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
            / pw.len() as f64;
    }
    eprintln!(
        "qnn (HTP emulator, fp16) on {n} real pairs: argmax agreement with dbrt's CPU f32 \
         {agree}/{n} ({:.2}%), max |dlogit| {max_d:.3e}, mean |dp| {:.3e}; export {export_s:.1} s, \
         attach (compile {} buckets) {attach_s:.1} s, runs {:.1} s",
        100.0 * agree as f64 / n as f64,
        sum_dp / n as f64,
        buckets.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        agree * 100 >= n * 99,
        "argmax agreement {agree}/{n} is below 99%"
    );
}
