//! The model: a validated `.dbrt` file, its decoded config, labels and tokenizer, and handles
//! to every tensor the forward pass reads.
//!
//! The forward pass, `DebertaV2ForSequenceClassification` as Hugging Face's
//! `modeling_deberta_v2.py` writes it
//! (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/deberta_v2/modeling_deberta_v2.py>),
//! each struct naming the class it mirrors, one module per concern: `embeddings` → the encoder
//! stage (`stage`, over the `encoder`'s layers: `attention` and `feed_forward`, built
//! from `linear` layers and `layer_norm`) → `head`. Each module finds its own tensors
//! under the name prefix it is given (`tensors`); a run reads the session's kernels, threads
//! and the file's bytes through one context (`exec`) and works in the session's buffers
//! (`scratch`). With f32/f16 weights and the scalar kernels this is the plain reference
//! every faster path is tested against; with int8 weights, linear layers run the int8 GEMM
//! kernels.

mod attention;
pub mod config;
mod embeddings;
mod encoder;
mod exec;
#[doc(hidden)]
pub mod export;
mod feed_forward;
mod head;
mod layer_norm;
mod linear;
pub(crate) mod scratch;
#[doc(hidden)]
pub mod stage;
mod tensors;
mod weights;

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{DType, ModelFile};
use crate::tokenizer::{Encoding, Tokenizer};
use config::Config;
use embeddings::Embeddings;
use encoder::Encoder;
use head::Head;
use tensors::Tensors;

/// Storage precision of a model's large matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightType {
    F32,
    F16,
    BF16,
    Int8,
}

impl WeightType {
    /// `f32`, `f16`, `bf16` or `int8`: as the CLI and the bindings print it.
    pub fn name(self) -> &'static str {
        match self {
            WeightType::F32 => "f32",
            WeightType::F16 => "f16",
            WeightType::BF16 => "bf16",
            WeightType::Int8 => "int8",
        }
    }
}

/// An opened model. Immutable: share it between threads and sessions with `Arc`.
pub struct Model {
    file: ModelFile,
    config: Config,
    labels: Vec<String>,
    /// Which label means entailment: [`ENTAILMENT_KEY`] when the file states it, else by name.
    entailment: Option<usize>,
    tokenizer: Option<Tokenizer>,
    pub(crate) network: Network,
    /// The accelerators' device models attached for this model, shared by its sessions.
    pub(crate) devices: crate::offload::DeviceCache,
    /// The packed weights repacked for the i8mm tier, built by its first session.
    smmla: std::sync::OnceLock<weights::SmmlaWeights>,
    /// Held while they are built: one build, however many sessions start at once.
    smmla_build: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Maps and validates the model at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        Self::from_file(ModelFile::open(path)?)
    }

    /// Reads the model at `path` into memory and validates it: unlike [`Model::open`]'s map,
    /// nothing done to the file afterwards (truncating it, copying another model over it) can
    /// reach the model, at the cost of the file's size in memory.
    pub fn open_read(path: impl AsRef<Path>) -> Result<Model> {
        Self::from_file(ModelFile::read(path)?)
    }

    /// Builds a model over an already opened file (a mapping or a caller's buffer).
    pub fn from_file(file: ModelFile) -> Result<Model> {
        let meta = file.metadata();
        let arch = meta.str("general.architecture")?;
        if arch != "DebertaV2ForSequenceClassification" && arch != "DebertaV2Model" {
            return Err(Error::Unsupported(format!("architecture '{arch}'")));
        }
        let config = Config::from_metadata(meta)?;
        let labels = match config.num_labels {
            0 => Vec::new(),
            n => {
                let l = meta.str_list("labels.id2label")?;
                if l.len() != n {
                    return Err(Error::BadMetadata {
                        key: "labels.id2label".into(),
                        reason: format!("{} labels for {n} outputs", l.len()),
                    });
                }
                l.to_vec()
            }
        };
        let entailment = stated_entailment_label(meta, labels.len())?
            .unwrap_or_else(|| entailment_label(&labels));
        let network = Network::resolve(&file, &config)?;
        let tokenizer =
            Tokenizer::from_file(&file, config.max_position_embeddings, config.vocab_size)?;
        log::debug!(
            "opened DeBERTa model: {} layers, hidden {}, {} labels, tokenizer {}",
            config.num_hidden_layers,
            config.hidden_size,
            config.num_labels,
            tokenizer.is_some()
        );
        Ok(Model {
            file,
            config,
            labels,
            entailment,
            tokenizer,
            network,
            devices: Default::default(),
            smmla: Default::default(),
            smmla_build: Default::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Label names, index = logit position.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The label that means entailment: the one the file names ([`ENTAILMENT_KEY`], set by
    /// `dbrt-convert --entailment-label`; `None` when it says there is none), else found by
    /// name as Hugging Face's zero-shot pipeline finds it (the first whose lower-cased name
    /// starts with "entail"); `None` when the labels are not named so (`LABEL_0`, ...).
    pub fn entailment_label(&self) -> Option<usize> {
        self.entailment
    }

    pub fn file(&self) -> &ModelFile {
        &self.file
    }

    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer
            .as_ref()
            .ok_or_else(|| Error::Tokenizer("the model file carries no tokenizer".into()))
    }

    /// Tokenizes a text or a pair, truncated longest-first to the model's maximum length.
    /// Allocates its result and scratch: sessions tokenize without allocating.
    pub fn encode(&self, a: &str, b: Option<&str>) -> Result<Encoding> {
        self.tokenizer()?.encode(self.bytes(), a, b)
    }

    /// Precision of the word embedding, which sets the file's size.
    pub fn weight_type(&self) -> WeightType {
        match self
            .file
            .get("deberta.embeddings.word_embeddings.weight")
            .map(|v| v.record.dtype)
        {
            Some(DType::F16) => WeightType::F16,
            Some(DType::BF16) => WeightType::BF16,
            // int4 embeddings come only with int8 linear weights.
            Some(DType::I8 | DType::I4) => WeightType::Int8,
            _ => WeightType::F32,
        }
    }

    /// The longest input the model accepts, in tokens.
    pub fn max_sequence_length(&self) -> usize {
        self.config.max_position_embeddings
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.file.bytes()
    }

    /// The weights the session's kernels read besides the file: the i8mm repack for kernels
    /// that read [`WeightLayout::Smmla`](crate::kernels::WeightLayout::Smmla), built the first
    /// time (an error if its memory is not there), else nothing.
    pub(crate) fn prepare_weights(&self, k: &crate::kernels::Kernels) -> Result<()> {
        if k.weights != crate::kernels::WeightLayout::Smmla || self.smmla.get().is_some() {
            return Ok(());
        }
        let _one = self.smmla_build.lock().unwrap_or_else(|e| e.into_inner());
        if self.smmla.get().is_none() {
            let w = weights::SmmlaWeights::build(&self.file)?;
            let _ = self.smmla.set(w);
        }
        Ok(())
    }

    /// The i8mm repack when `k` reads it ([`Model::prepare_weights`] built it).
    pub(crate) fn smmla_weights(
        &self,
        k: &crate::kernels::Kernels,
    ) -> Option<&weights::SmmlaWeights> {
        match k.weights {
            crate::kernels::WeightLayout::Smmla => self.smmla.get(),
            crate::kernels::WeightLayout::Group4 => None,
        }
    }
}

/// `DebertaV2ForSequenceClassification` (or the bare `DebertaV2Model` when `head` is `None`):
/// handles to every tensor the forward pass reads, each checked when the model is opened.
#[derive(Debug)]
pub(crate) struct Network {
    pub embeddings: Embeddings,
    pub encoder: Encoder,
    pub head: Option<Head>,
}

impl Network {
    /// Finds and checks every tensor of the model `c` describes.
    fn resolve(f: &ModelFile, c: &Config) -> Result<Network> {
        let root = Tensors::root(f);
        let embeddings = Embeddings::resolve(&root.pp("deberta.embeddings"), c)?;
        let encoder = Encoder::resolve(&root.pp("deberta.encoder"), c)?;
        let head = match c.num_labels {
            0 => None,
            n => Some(Head::resolve(&root, c, n)?),
        };
        Ok(Network {
            embeddings,
            encoder,
            head,
        })
    }

    /// Widest quantized input row of any int8 layer (0 without int8 layers).
    pub fn max_kp(&self) -> usize {
        let head = self.head.iter().flat_map(Head::layers);
        (self.embeddings.embed_proj().into_iter())
            .chain(self.encoder.linears())
            .chain(head)
            .map(|l| l.kp())
            .max()
            .unwrap_or(0)
    }
}

/// The metadata key naming the entailment label (i64): its index, or -1 for "none".
pub const ENTAILMENT_KEY: &str = "labels.entailment";

/// What [`ENTAILMENT_KEY`] says: `None` when the file does not state it, `Some(None)` when it
/// states that no label means entailment.
fn stated_entailment_label(
    meta: &crate::format::Metadata,
    labels: usize,
) -> Result<Option<Option<usize>>> {
    if meta.get(ENTAILMENT_KEY).is_none() {
        return Ok(None);
    }
    match meta.i64(ENTAILMENT_KEY)? {
        -1 => Ok(Some(None)),
        i if (0..labels as i64).contains(&i) => Ok(Some(Some(i as usize))),
        i => Err(Error::BadMetadata {
            key: ENTAILMENT_KEY.into(),
            reason: format!("{i}: expected -1 (none) or a label index below {labels}"),
        }),
    }
}

fn entailment_label(labels: &[String]) -> Option<usize> {
    labels
        .iter()
        .position(|l| l.to_lowercase().starts_with("entail"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_entailment_label_is_found_by_its_name() {
        let names = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let find = |l: &[&str]| super::entailment_label(&names(l));
        assert_eq!(find(&["contradiction", "neutral", "entailment"]), Some(2));
        assert_eq!(find(&["ENTAILMENT", "NEUTRAL", "CONTRADICTION"]), Some(0));
        assert_eq!(find(&["not_entailment", "entails"]), Some(1));
        assert_eq!(find(&["LABEL_0", "LABEL_1"]), None);
        assert_eq!(find(&[]), None);
    }

    #[test]
    fn a_stated_entailment_label_is_read_and_checked() {
        use crate::format::{MetaValue, Metadata};
        let stated = |v: Option<MetaValue>| {
            let mut m = Metadata::new();
            if let Some(v) = v {
                m.set(super::ENTAILMENT_KEY, v);
            }
            super::stated_entailment_label(&m, 2)
        };
        assert_eq!(stated(None).unwrap(), None);
        assert_eq!(stated(Some(MetaValue::I64(1))).unwrap(), Some(Some(1)));
        assert_eq!(stated(Some(MetaValue::I64(-1))).unwrap(), Some(None));
        for bad in [MetaValue::I64(2), MetaValue::I64(-2), MetaValue::U64(0)] {
            let e = stated(Some(bad.clone())).unwrap_err().to_string();
            assert!(e.contains(super::ENTAILMENT_KEY), "{bad:?}: {e}");
        }
    }
}
