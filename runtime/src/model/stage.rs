//! The encoder as a stage between the embeddings and the head, and a session's forward pass
//! through it: embeddings → [`EncoderStage`] → head. The CPU encoder is one implementation;
//! an accelerator (a device running the encoder's graph) is meant to be another.

use super::encoder::Encoder;
use super::exec::Exec;
use super::scratch::{EncoderScratch, ForwardScratch, LinearScratch};
use super::Model;
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::pool::Pool;

/// Which rows of the last hidden state a run must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Every token's.
    All,
    /// The first token's (`[CLS]`), for the classification head.
    First,
}

/// The encoder stack as a stage: hidden states in, hidden states out.
///
/// The contract:
/// - **Input**: `hidden` holds the hidden states of `len = mask.len()` positions after the
///   embedding LayerNorm, `[len, hidden_size]` row-major f32 (`hidden.len() == len *
///   hidden_size`).
/// - **Mask**: `mask[i]` is 1 for a token and 0 for padding, padding only after the tokens
///   (right padding, as Hugging Face's `attention_mask`); at least one token. Tokens attend
///   to tokens only.
/// - **Output**: the last layer's hidden states (before the pooler), written over `hidden`
///   in the same layout. With [`Rows::All`] every token's row is defined; with
///   [`Rows::First`] only row 0. Padded positions' rows (and, with `Rows::First`, rows after
///   the first) are unspecified.
/// - **Length**: `len` is at most [`EncoderStage::max_sequence_length`]; a stage with a
///   static shape (a device's bucket) pads internally and may take shorter inputs.
/// - **Memory**: a stage owns (or borrows from its session) every buffer it needs,
///   allocated when the session is created: `run` allocates nothing.
/// - **Errors**: a typed [`Error`], never a panic; after an error `hidden` is unspecified, so
///   a caller that falls back to another stage (the CPU) recomputes the embeddings first.
#[doc(hidden)]
pub trait EncoderStage {
    /// The stage's name, for logs and for recording which stage ran.
    fn name(&self) -> &'static str;

    /// The longest input `run` takes.
    fn max_sequence_length(&self) -> usize;

    /// Runs the encoder over `hidden` in place (see the trait's contract).
    fn run(&mut self, hidden: &mut [f32], mask: &[u32], rows: Rows) -> Result<()>;
}

/// The encoder on the CPU: the model's layers, the session's kernels and threads, and the
/// session's scratch (borrowed for one run, so making one costs nothing).
#[doc(hidden)]
pub struct CpuEncoder<'a> {
    pub(super) encoder: &'a Encoder,
    pub(super) ex: Exec<'a>,
    pub(super) scratch: &'a mut EncoderScratch,
    pub(super) linear: &'a mut LinearScratch,
}

impl CpuEncoder<'_> {
    /// The layers over `t` tokens of `hidden` (`[t, hidden_size]`).
    fn forward(&mut self, hidden: &mut [f32], t: usize, rows: Rows) {
        let encoder = self.encoder;
        let n = encoder.layers().len();
        for (i, layer) in encoder.layers().iter().enumerate() {
            // The last layer computes keys and values for every token but queries, attention
            // output and feed-forward for `[CLS]` alone when that is all the head reads (the
            // row is the same bits as with every row).
            let last = i + 1 == n;
            let rows = if last && rows == Rows::First { 1 } else { t };
            layer.forward(self, hidden, t, rows);
        }
    }
}

impl EncoderStage for CpuEncoder<'_> {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn max_sequence_length(&self) -> usize {
        self.scratch.max_len
    }

    fn run(&mut self, hidden: &mut [f32], mask: &[u32], rows: Rows) -> Result<()> {
        let (len, h) = (mask.len(), self.ex.config.hidden_size);
        if len > self.max_sequence_length() {
            return Err(Error::InputTooLong {
                len,
                max: self.max_sequence_length(),
            });
        }
        if hidden.len() != len * h {
            return Err(Error::InvalidArgument(format!(
                "{} hidden values for {len} positions of {h}",
                hidden.len()
            )));
        }
        // Padding after the tokens changes nothing of theirs (a token attends to tokens only):
        // run the tokens alone.
        let t = tokens_of(mask)?;
        self.forward(&mut hidden[..t * h], t, rows);
        Ok(())
    }
}

/// One sequence's forward pass over a session's scratch, stage by stage.
#[doc(hidden)]
pub struct ForwardPass<'a> {
    model: &'a Model,
    ex: Exec<'a>,
    scratch: &'a mut ForwardScratch,
    len: usize,
}

impl<'a> ForwardPass<'a> {
    pub(crate) fn new(
        model: &'a Model,
        kernels: Kernels,
        pool: &'a Pool,
        scratch: &'a mut ForwardScratch,
    ) -> ForwardPass<'a> {
        ForwardPass {
            model,
            ex: Exec {
                kernels,
                pool,
                bytes: model.bytes(),
                smmla: model.smmla_weights(&kernels),
                config: model.config(),
            },
            scratch,
            len: 0,
        }
    }

    /// The embeddings of ids checked against the vocabulary and token types, into the
    /// hidden states.
    pub(crate) fn embed(&mut self, ids: &[u32], types: Option<&[u32]>) {
        let net = &self.model.network;
        net.embeddings.forward(&self.ex, ids, types, self.scratch);
        self.len = ids.len();
    }

    /// The hidden states (`[len, hidden_size]`), their mask (all tokens) and the session's
    /// CPU encoder stage.
    pub fn cpu_encoder(&mut self) -> (&mut [f32], &[u32], CpuEncoder<'_>) {
        let ForwardScratch {
            hidden,
            mask,
            linear,
            encoder,
            ..
        } = &mut *self.scratch;
        let cpu = CpuEncoder {
            encoder: &self.model.network.encoder,
            ex: self.ex,
            scratch: encoder,
            linear,
        };
        let len = self.len;
        let h = self.ex.config.hidden_size;
        (&mut hidden[..len * h], &mask[..len], cpu)
    }

    /// Runs the session's CPU encoder stage over the embeddings.
    pub(crate) fn encode(&mut self, rows: Rows) -> Result<()> {
        let (hidden, mask, mut stage) = self.cpu_encoder();
        stage.run(hidden, mask, rows)
    }

    /// The head over the `[CLS]` row of the hidden states, into `logits` (one per label).
    pub fn head(&mut self, logits: &mut [f32]) -> Result<()> {
        let head = self
            .model
            .network
            .head
            .as_ref()
            .ok_or_else(|| Error::Unsupported("the model has no classification head".into()))?;
        let n = self.ex.config.num_labels;
        if logits.len() != n {
            return Err(Error::InvalidArgument(format!(
                "{} outputs for {n} labels",
                logits.len()
            )));
        }
        head.forward(&self.ex, self.scratch, logits);
        check_finite(logits, "logits")
    }
}

/// The tokens a stage's mask holds: its ones, which must all come before its zeros (right
/// padding), and at least one.
pub(crate) fn tokens_of(mask: &[u32]) -> Result<usize> {
    let t = mask.iter().take_while(|&&m| m == 1).count();
    if mask[t..].iter().any(|&m| m != 0) {
        return Err(Error::InvalidArgument(
            "the mask is not right padding".into(),
        ));
    }
    if t == 0 {
        return Err(Error::EmptyInput);
    }
    Ok(t)
}

/// A typed error where a run's output holds an infinity or a NaN (weights that overflow f32),
/// so that no caller takes NaN probabilities for an answer.
pub(crate) fn check_finite(values: &[f32], what: &'static str) -> Result<()> {
    match values.iter().all(|v| v.is_finite()) {
        true => Ok(()),
        false => Err(Error::NonFinite { what }),
    }
}
