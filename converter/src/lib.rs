//! dbrt-convert: reads a Hugging Face checkpoint or an ONNX export of a DeBERTa-v2/v3 model and
//! writes one memory-mappable `.dbrt` file (weights, config, labels, tokenizer).

mod archive;
pub mod build;
pub mod checkpoint;
mod copy;
pub mod error;
pub mod export;
pub mod hf;
pub mod labels;
pub mod onnx;
mod pickle;
pub mod tokenizer_compile;
pub mod tokenizer_source;
mod torch_bin;
pub mod validate;

use std::path::Path;

pub use build::{Packing, Progress, StorageType};
pub use checkpoint::Checkpoint;
pub use error::{ConvertError, Result};
pub use labels::{EntailmentLabel, LabelNames};
pub use onnx::OnnxOverrides;

/// What to convert and how.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    pub storage: StorageType,
    /// The word embedding (two thirds of DeBERTa-v3-xsmall's parameters) as row-wise int4.
    pub int4_embeddings: bool,
    /// The packed layout of int8 linear weights.
    pub packing: Packing,
    /// A tokenizer.json, spm.model, or a directory holding one; found beside the input otherwise.
    pub tokenizer: Option<std::path::PathBuf>,
    pub onnx: OnnxOverrides,
    /// Names for the labels (instead of config.json's `id2label`) and the entailment label.
    pub labels: LabelNames,
}

/// Reads a checkpoint: a Hugging Face directory, or an `.onnx` file.
pub fn read_checkpoint(input: &Path, opts: &ConvertOptions) -> Result<Checkpoint> {
    // What is not there is said so, not called the wrong kind of input.
    match std::fs::metadata(input) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConvertError::NotFound {
                path: input.to_path_buf(),
                what: "the input: a Hugging Face model directory or an .onnx file",
            })
        }
        r => r.map_err(error::io_err(input))?,
    };
    if input.is_dir() {
        hf::read_dir(input, opts.tokenizer.as_deref())
    } else if input.extension().is_some_and(|e| e == "onnx") {
        onnx::read(input, opts.tokenizer.as_deref(), &opts.onnx)
    } else {
        Err(ConvertError::Invalid(format!(
            "{}: expected a Hugging Face model directory or an .onnx file",
            input.display()
        )))
    }
}

/// Converts `input` and writes `output`, returning the file's size in bytes.
pub fn convert(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    progress: &mut dyn Progress,
) -> Result<u64> {
    check_output(output)?;
    let mut ck = read_checkpoint(input, opts)?;
    // The names are checked before the (long) build; the entailment label they imply goes
    // into the file after it.
    let mut named = dbrt::format::Metadata::new();
    ck.labels = labels::apply(&mut named, &ck.labels, &opts.labels, input)?;
    let mut writer = build::build(
        &ck,
        opts.storage,
        opts.int4_embeddings,
        opts.packing,
        progress,
    )?;
    if let Some(v) = named.get(labels::ENTAILMENT_KEY) {
        writer.metadata.set(labels::ENTAILMENT_KEY, v.clone());
    }
    // The file is written to a temporary name, opened as the runtime opens a model, and renamed
    // over `output` only if that succeeds: a file that cannot be used is never left behind.
    writer.write_to_path_checked(output, |written| {
        let refused = |e: dbrt::Error| {
            ConvertError::Invalid(format!(
                "{} converts to a file the runtime refuses: {e}",
                input.display()
            ))
        };
        let model = dbrt::Model::open(written).map_err(refused)?;
        model.file().verify_data().map_err(refused)?;
        // A session at the model's full length is what a default session asks for, on a phone
        // too: a file whose default session would need more is a trap, not a model.
        let len = model.max_sequence_length();
        let bytes = dbrt::Session::memory_bytes(&model, len, 1, dbrt::DEFAULT_MAX_WORD_BYTES)
            .map_err(refused)?;
        if bytes > MAX_DEFAULT_SESSION_BYTES {
            return Err(ConvertError::Invalid(format!(
                "{}: max_position_embeddings {len} makes a full-length session of {:.1} GB \
                 (more than {} GiB): lower it in config.json",
                input.display(),
                bytes as f64 / 1e9,
                MAX_DEFAULT_SESSION_BYTES >> 30
            )));
        }
        Ok(())
    })
}

/// Refuses an output path that names something other than a file (a directory, a device):
/// the new file would be renamed over it.
pub fn check_output(output: &Path) -> Result<()> {
    match std::fs::metadata(output) {
        Ok(m) if !m.is_file() => Err(ConvertError::Write {
            path: output.to_path_buf(),
            source: std::io::Error::other(if m.is_dir() {
                "it is a directory; name the .dbrt file to write"
            } else {
                "it is not a regular file"
            }),
        }),
        _ => Ok(()),
    }
}

/// The most memory a converted model's default session (its full length, one thread) may
/// take. DeBERTa-v3 at 512 positions takes 18 MB (xsmall) to ~60 MB (large); 4 GiB admits
/// long-context variants of several thousand positions.
pub const MAX_DEFAULT_SESSION_BYTES: u64 = 4 << 30;

/// A xorshift64 stream from `seed` (non-zero): the random inputs of the readers' unit tests,
/// the same on every run.
#[cfg(test)]
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
