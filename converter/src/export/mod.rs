//! `dbrt-convert export-onnx`: the encoder stage of a `.dbrt` model (after the embedding
//! LayerNorm, through the last layer) as one static-shape ONNX graph per sequence-length
//! bucket, `encoder-{S}.onnx`, and the `manifest.txt` that ties them to the model
//! (`dbrt::offload::manifest`). The embeddings, the pooler and the head stay on the CPU.
//!
//! Every file is written under a temporary name and renamed into place once every graph is
//! written, the manifest last: an export that fails while building or writing leaves a
//! previous export as it was. A previous manifest is removed just before the renames, so that
//! no manifest ever lists graphs other than its own: a directory without a manifest is an
//! incomplete export. Graphs of a previous export's other buckets stay, unlisted.
//!
//! `--target ascend` ([`ascend`]) writes one graph with a dynamic sequence dim for Huawei's
//! ATC instead; [`om`] records the offline model ATC made from it, [`embed`] puts that model
//! into a copy of the `.dbrt` file.

pub mod ascend;
pub mod embed;
mod encoder;
pub mod om;
mod onnx_builder;
mod relative;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dbrt::offload::manifest::{
    Graph, Manifest, ModelIdentity, Precision, MANIFEST_FILE, MAX_GRAPHS, MAX_GRAPH_BYTES,
};
use onnx_protobuf::Message;

use crate::error::{io_err, ConvertError, Result};
pub use ascend::{
    atc_args, atc_command, export_ascend, AscendOptions, ASCEND_GRAPH_FILE, ASCEND_OPS,
    ASCEND_OPSET,
};
pub use embed::embed_om;
pub use encoder::{INPUT_HIDDEN, INPUT_MASK, OPS, OUTPUT, SEQ_DIM};
pub use om::register_om;
pub use onnx_builder::{IR_VERSION, OPSET};

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// Sequence lengths, one graph each (any order; repeats are one).
    pub buckets: Vec<usize>,
    /// The weights' precision in the graphs.
    pub precision: Precision,
}

/// The buckets [`ExportOptions::default`] exports.
pub const DEFAULT_BUCKETS: [usize; 4] = [64, 128, 256, 512];

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            buckets: DEFAULT_BUCKETS.to_vec(),
            precision: Precision::F32,
        }
    }
}

/// A graph's file name in the artifact directory.
pub fn graph_file(bucket: usize) -> String {
    format!("encoder-{bucket}.onnx")
}

/// Exports `model`'s encoder into `out_dir` (created if absent) as `options` say; returns the
/// manifest written. Buckets longer than the model's maximum sequence length are an error
/// naming them.
pub fn export_onnx(model: &Path, out_dir: &Path, options: &ExportOptions) -> Result<Manifest> {
    // What is not there is said so, not called the wrong kind of input.
    fs::metadata(model).map_err(io_err(model))?;
    let m = dbrt::Model::open(model).map_err(|e| ConvertError::Parse {
        path: model.to_path_buf(),
        message: format!("not a .dbrt model dbrt opens: {e}"),
    })?;
    let buckets = check_buckets(&m, options)?;
    fs::create_dir_all(out_dir).map_err(|source| ConvertError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let c = m.config();
    let layers = (0..c.num_hidden_layers)
        .map(|l| dbrt::model::export::layer(&m, l))
        .collect::<dbrt::Result<Vec<_>>>()?;
    // Written under temporary names; removed again if anything fails.
    let mut pending = Pending::default();
    let mut graphs = Vec::with_capacity(buckets.len());
    for &s in &buckets {
        let t0 = Instant::now();
        let proto = encoder::graph(&m, &layers, &encoder::Form::fixed(s, options.precision))?;
        let nodes = proto.graph.node.len();
        let bytes = proto.write_to_bytes().map_err(|e| {
            ConvertError::Invalid(format!("the graph of {s} tokens does not serialize: {e}"))
        })?;
        drop(proto);
        let file = graph_file(s);
        pending.write(out_dir, &file, &bytes)?;
        log::info!(
            "{file}: {:.1} MB, {} nodes, built and written in {:.2} s",
            bytes.len() as f64 / 1e6,
            nodes,
            t0.elapsed().as_secs_f64()
        );
        graphs.push(Graph {
            bucket: s,
            file,
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        });
    }
    let manifest = Manifest {
        model: ModelIdentity::of(m.file().header()),
        layers: c.num_hidden_layers,
        hidden_size: c.hidden_size,
        precision: options.precision,
        graphs,
        ascend: None,
    };
    finish(pending, out_dir, manifest)
}

/// Writes `manifest` last and renames every pending file into place; returns the manifest.
pub(crate) fn finish(mut pending: Pending, out_dir: &Path, manifest: Manifest) -> Result<Manifest> {
    // The runtime reads what it is given back: a manifest it would refuse is never written.
    Manifest::parse(&manifest.to_text())?;
    pending.write(out_dir, MANIFEST_FILE, manifest.to_text().as_bytes())?;
    pending.commit(&out_dir.join(MANIFEST_FILE))?;
    Ok(manifest)
}

/// The buckets sorted and deduplicated, each checked against the model and the size limits.
fn check_buckets(m: &dbrt::Model, options: &ExportOptions) -> Result<Vec<usize>> {
    let mut buckets = options.buckets.clone();
    buckets.sort_unstable();
    buckets.dedup();
    if buckets.is_empty() || buckets[0] == 0 {
        return Err(ConvertError::Invalid(
            "export-onnx: buckets must be one or more lengths of at least 1".into(),
        ));
    }
    if buckets.len() > MAX_GRAPHS {
        return Err(ConvertError::Invalid(format!(
            "export-onnx: {} buckets (at most {MAX_GRAPHS})",
            buckets.len()
        )));
    }
    fits_model(m, "export-onnx", "bucket", &buckets)?;
    for &s in &buckets {
        fits_file(m, options.precision, s, "export-onnx", "smaller buckets")?;
    }
    Ok(buckets)
}

/// Refuses `lengths` (`noun`s of the export `who`) longer than the model's maximum sequence
/// length, naming them.
pub(crate) fn fits_model(m: &dbrt::Model, who: &str, noun: &str, lengths: &[usize]) -> Result<()> {
    let max = m.max_sequence_length();
    let long: Vec<String> = (lengths.iter().filter(|&&s| s > max))
        .map(|s| s.to_string())
        .collect();
    if long.is_empty() {
        return Ok(());
    }
    Err(ConvertError::Invalid(format!(
        "{who}: {noun}(s) {} exceed the model's maximum sequence length {max}",
        long.join(", ")
    )))
}

/// Refuses a graph for up to `s` tokens that protobuf could not write (2 GiB a file), before
/// it is built; `hint` says what to export instead.
pub(crate) fn fits_file(
    m: &dbrt::Model,
    precision: Precision,
    s: usize,
    who: &str,
    hint: &str,
) -> Result<()> {
    let total = weight_bytes(m.config(), precision).saturating_add(encoder::extra_bytes(m, s));
    if total <= MAX_GRAPH_BYTES {
        return Ok(());
    }
    Err(ConvertError::Invalid(format!(
        "{who}: a graph for up to {s} tokens would hold about {:.2} GB (more than \
         {MAX_GRAPH_BYTES} bytes): use {hint}",
        total as f64 / 1e9
    )))
}

/// Bytes of the layers' weights in a graph (excluding the relative projections).
fn weight_bytes(c: &dbrt::Config, precision: Precision) -> u64 {
    let (h, ah, i) = (
        c.hidden_size as u64,
        c.all_head_size() as u64,
        c.intermediate_size as u64,
    );
    let per_layer = 4 * h * ah + 4 * ah + 2 * h * i + i + h + 4 * h + h;
    let width = match precision {
        Precision::F32 => 4,
        Precision::F16 => 2,
    };
    c.num_hidden_layers as u64 * per_layer * width
}

/// Files written under temporary names, renamed into place by [`Pending::commit`] in the
/// order written; removed if dropped before that.
#[derive(Default)]
pub(crate) struct Pending {
    files: Vec<(PathBuf, PathBuf)>,
}

impl Pending {
    pub(crate) fn write(&mut self, dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
        let (tmp, dst) = (dir.join(format!(".{name}.partial")), dir.join(name));
        let write_err = |source| ConvertError::Write {
            path: tmp.clone(),
            source,
        };
        // Registered first, so that a failed write is cleaned up too.
        self.files.push((tmp.clone(), dst));
        let mut f = fs::File::create(&tmp).map_err(write_err)?;
        f.write_all(bytes).map_err(write_err)?;
        f.sync_all().map_err(write_err)?;
        Ok(())
    }

    /// Renames the files into place, the last one (the manifest) last. A previous manifest
    /// is removed first, so that while the graphs are renamed the directory reads as an
    /// incomplete export rather than an old manifest over new graphs.
    pub(crate) fn commit(mut self, manifest: &Path) -> Result<()> {
        match fs::remove_file(manifest) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ConvertError::Write {
                    path: manifest.to_path_buf(),
                    source: e,
                })
            }
            _ => {}
        }
        while !self.files.is_empty() {
            let (tmp, dst) = self.files.remove(0);
            if let Err(source) = fs::rename(&tmp, &dst) {
                let _ = fs::remove_file(&tmp);
                return Err(ConvertError::Write { path: dst, source });
            }
        }
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = fs::remove_file(tmp);
        }
    }
}
