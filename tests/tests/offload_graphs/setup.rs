//! What the offload tests share: the tiny model with stand-in artifacts, session options for
//! a backend, token ids, and the expected results computed from the CPU's embeddings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dbrt::offload::{FallbackPolicy, OffloadOptions};
use dbrt::{Sequence, Session, SessionOptions};
use dbrt_convert::StorageType;
use dbrt_tests::*;

use super::{expected, write_artifacts, Kind};

pub const BUCKETS: &[usize] = &[8, 16, 32];

pub struct Setup {
    _model_dir: tempfile::TempDir,
    pub artifacts: tempfile::TempDir,
    pub model: Arc<dbrt::Model>,
    pub lib: PathBuf,
}

/// The tiny model and stand-in artifacts of `kind` for `buckets`; `None` without onnxruntime.
pub fn setup(kind: Kind, buckets: &[usize]) -> Option<Setup> {
    let lib = super::onnxruntime()?;
    let (model_dir, path) = convert(&fixtures().join("tiny/v3-style"), StorageType::F32);
    let model = open(&path);
    let artifacts = tempfile::tempdir().unwrap();
    write_artifacts(artifacts.path(), &model, kind, buckets);
    Some(Setup {
        _model_dir: model_dir,
        artifacts,
        model,
        lib,
    })
}

pub fn options(
    backend: &str,
    artifacts: &Path,
    lib: &Path,
    fallback: FallbackPolicy,
) -> SessionOptions {
    SessionOptions {
        offload: OffloadOptions {
            backend: backend.parse().unwrap(),
            artifacts: Some(artifacts.to_path_buf()),
            fallback,
            onnxruntime_library: Some(lib.to_path_buf()),
            qnn_library: qnn_quiet(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The QNN library if set (without the skip message: only the qnn tests need it).
pub fn qnn_quiet() -> Option<PathBuf> {
    std::env::var_os("DBRT_QNN_EP_LIB").map(PathBuf::from)
}

impl Setup {
    pub fn session(&self, backend: &str, fallback: FallbackPolicy) -> dbrt::Result<Session> {
        let o = options(backend, self.artifacts.path(), &self.lib, fallback);
        Session::new(self.model.clone(), o)
    }

    pub fn cpu(&self) -> Session {
        Session::new(self.model.clone(), SessionOptions::default()).unwrap()
    }
}

pub fn ids(n: usize) -> Vec<u32> {
    (0..n as u32).map(|i| 1 + (i * 37) % 900).collect()
}

pub fn seq(ids: &[u32]) -> Sequence<'_> {
    Sequence {
        ids,
        type_ids: None,
    }
}

/// The embeddings (the encoder's input) of `ids`, from the CPU session.
pub fn embeddings(cpu: &mut Session, ids: &[u32]) -> Vec<f32> {
    let mut pass = cpu.forward_pass(seq(ids)).unwrap();
    let (hidden, _, _) = pass.cpu_encoder();
    hidden.to_vec()
}

/// Logits of the CPU head over the embeddings of `ids` transformed as bucket `bucket`'s
/// stand-in graph transforms them.
pub fn head_of_stand_in(cpu: &mut Session, ids: &[u32], bucket: usize) -> Vec<f32> {
    let h = cpu.model().config().hidden_size;
    let mut logits = vec![0f32; cpu.model().config().num_labels];
    let mut pass = cpu.forward_pass(seq(ids)).unwrap();
    let (hidden, _, _) = pass.cpu_encoder();
    for (i, x) in hidden.iter_mut().enumerate() {
        *x = expected(*x, i % h, h, bucket, ids.len());
    }
    pass.head(&mut logits).unwrap();
    logits
}
