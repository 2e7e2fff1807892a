//! What every input format is read into: a config, labels, f32 tensors under their Hugging Face
//! names, a tokenizer, and where it all came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{io_err, ConvertError, Result};
use dbrt::Config;

/// A dense row-major f32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data }
    }

    /// The transpose of a 2-D tensor.
    pub fn transposed(&self) -> Tensor {
        let (r, c) = (self.shape[0], self.shape[1]);
        let mut out = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                out[j * r + i] = self.data[i * c + j];
            }
        }
        Tensor::new(vec![c, r], out)
    }
}

/// Which element type a source tensor had (reported, and kept for `--dtype` decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceDType {
    F32,
    F16,
    BF16,
    /// int8/uint8 dequantized exactly: `(q - zero_point) * scale`.
    Int8Dequantized,
}

/// One input file and its SHA-256, recorded in the output's provenance.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub sha256: String,
}

impl SourceFile {
    /// Hashes a file as it streams by (weights may be larger than one would hold twice).
    pub fn hash(path: &Path) -> Result<SourceFile> {
        let mut hasher = Sha256::new();
        let mut f = std::fs::File::open(path).map_err(io_err(path))?;
        std::io::copy(&mut f, &mut hasher).map_err(io_err(path))?;
        Ok(Self::named(path, &hasher.finalize()))
    }

    pub fn hash_bytes(path: &Path, bytes: &[u8]) -> SourceFile {
        Self::named(path, &Sha256::digest(bytes))
    }

    fn named(path: &Path, digest: &[u8]) -> SourceFile {
        let sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        SourceFile { name, sha256 }
    }
}

/// A checkpoint read from any supported input.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub config: Config,
    pub labels: Vec<String>,
    /// Hugging Face names with the `deberta.` prefix of the sequence-classification model.
    pub tensors: BTreeMap<String, Tensor>,
    pub source_dtypes: BTreeMap<String, SourceDType>,
    pub tokenizer_json: Option<Vec<u8>>,
    /// `hf-safetensors`, `hf-pytorch-bin`, `onnx`.
    pub source_kind: &'static str,
    pub sources: Vec<SourceFile>,
    /// What was converted (a directory or an .onnx file), named in errors about tensors.
    pub input: PathBuf,
    /// Where the config came from: config.json, or the .onnx file it was inferred from.
    pub config_source: PathBuf,
}

impl Checkpoint {
    /// A tensor by name; a value in it that is not finite or too large (`validate::check_weights`) is
    /// an error naming it.
    pub fn get(&self, name: &str) -> Result<&Tensor> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| ConvertError::MissingTensor(name.into()))?;
        crate::validate::check_weights(&self.input, name, &t.data, "")?;
        Ok(t)
    }

    /// A tensor that must have `shape`.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<&Tensor> {
        let t = self.get(name)?;
        if t.shape != shape {
            return Err(ConvertError::Shape {
                name: name.into(),
                expected: shape.to_vec(),
                actual: t.shape.clone(),
            });
        }
        Ok(t)
    }
}

/// Labels from an `id2label` map, or `LABEL_i` where it is missing or does not match the
/// classifier's width (transformers omits the default two labels from config.json).
pub fn labels_for(id2label: Option<&BTreeMap<usize, String>>, n: usize) -> Vec<String> {
    match id2label {
        Some(m) if m.len() == n && (0..n).all(|i| m.contains_key(&i)) => {
            (0..n).map(|i| m[&i].clone()).collect()
        }
        Some(m) => {
            log::warn!(
                "id2label names {} labels, the classifier has {n}: the labels are LABEL_0.. \
                 (name them with --labels)",
                m.len()
            );
            (0..n).map(|i| format!("LABEL_{i}")).collect()
        }
        None => (0..n).map(|i| format!("LABEL_{i}")).collect(),
    }
}
