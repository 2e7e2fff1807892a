//! Sessions: the scratch memory, kernels and worker threads for running a model, all set up
//! once at creation. Running (tokenizing, encoding, classifying) allocates nothing.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::kernels::{Isa, Kernels};
use crate::model::deberta::{Exec, Rows, Scratch};
use crate::model::Model;
use crate::pool::Pool;
use crate::tokenizer::{TokenizerScratch, Truncation};

/// Default longest word (in normalized UTF-8 bytes) a session's tokenizer takes: a single
/// 100,000-character ASCII word fits; longer words are an `InputTooLong` error.
pub const DEFAULT_MAX_WORD_BYTES: usize = 128 * 1024;

/// How a session is sized.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Longest input in tokens; `None` means the model's maximum.
    pub max_sequence_length: Option<usize>,
    /// Most sequences in one `run_batch` call; `0` means 1.
    pub max_batch: usize,
    /// Longest word the tokenizer takes, in bytes; `None` means [`DEFAULT_MAX_WORD_BYTES`].
    /// Text length is not limited: text is tokenized word by word.
    pub max_word_bytes: Option<usize>,
    /// How pairs are truncated to the maximum length.
    pub truncation: Truncation,
    /// Threads a forward pass uses (the caller's included); `0` means 1. Results are
    /// bit-identical for every thread count.
    pub threads: usize,
    /// Kernel tier; `None` means the best this CPU runs, or `DBRT_FORCE_ISA` when set.
    pub isa: Option<Isa>,
    /// The label that means entailment, for zero-shot classification; `None` means the one
    /// [`Model::entailment_label`] finds by name.
    pub entailment_label: Option<usize>,
}

/// The hypothesis template of Hugging Face's zero-shot pipeline.
pub const DEFAULT_HYPOTHESIS_TEMPLATE: &str = "This example is {}.";

/// Room reserved for a zero-shot hypothesis (template + label); a longer one grows the buffer
/// once, later calls reuse it.
const HYPOTHESIS_CAPACITY: usize = 1024;

/// One sequence of token ids, with token type ids for models that have them.
#[derive(Debug, Clone, Copy)]
pub struct Sequence<'a> {
    pub ids: &'a [u32],
    pub type_ids: Option<&'a [u32]>,
}

/// Runs a shared model. One thread at a time; create one session per thread.
pub struct Session {
    model: Arc<Model>,
    scratch: Scratch,
    kernels: Kernels,
    pool: Pool,
    max_len: usize,
    max_batch: usize,
    logits: Vec<f32>,
    tokenizer: TokenizerScratch,
    ids: Vec<u32>,
    type_ids: Vec<u32>,
    truncation: Truncation,
    entailment: Option<usize>,
    hypothesis: String,
}

impl Session {
    pub fn new(model: Arc<Model>, options: SessionOptions) -> Result<Session> {
        let model_max = model.max_sequence_length();
        let max_len = options.max_sequence_length.unwrap_or(model_max);
        // Id-only calls run at any length; text calls need room for a pair's special tokens.
        let min_len = model.tokenizer().map_or(1, |t| t.min_sequence_length());
        if max_len < min_len || max_len > model_max {
            return Err(Error::InvalidArgument(format!(
                "max_sequence_length {max_len} must be in {min_len}..={model_max}"
            )));
        }
        let threads = options.threads.max(1);
        if threads > 256 {
            return Err(Error::InvalidArgument(format!(
                "{threads} threads (at most 256)"
            )));
        }
        let labels = model.config().num_labels;
        let entailment = options
            .entailment_label
            .or_else(|| model.entailment_label());
        if let Some(e) = options.entailment_label.filter(|&e| e >= labels) {
            return Err(Error::InvalidArgument(format!(
                "entailment label {e} of a model with {labels} labels"
            )));
        }
        let kernels = Kernels::select(options.isa)?;
        let pool = Pool::new(threads)
            .map_err(|e| Error::InvalidArgument(format!("cannot start worker threads: {e}")))?;
        let scratch = Scratch::new(model.config(), &model.network, max_len, threads);
        let logits = vec![0.0; model.config().num_labels];
        let max_word = options.max_word_bytes.unwrap_or(DEFAULT_MAX_WORD_BYTES);
        Ok(Session {
            tokenizer: TokenizerScratch::new(max_word, max_len)?,
            ids: vec![0; max_len],
            type_ids: vec![0; max_len],
            truncation: options.truncation,
            entailment,
            hypothesis: String::with_capacity(HYPOTHESIS_CAPACITY),
            model,
            scratch,
            kernels,
            pool,
            max_len,
            max_batch: options.max_batch.max(1),
            logits,
        })
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    pub fn max_sequence_length(&self) -> usize {
        self.max_len
    }

    /// The kernel tier this session runs.
    pub fn isa(&self) -> Isa {
        self.kernels.isa
    }

    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Most sequences one batch call takes.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The label zero-shot classification reads as entailment, if known.
    pub fn entailment_label(&self) -> Option<usize> {
        self.entailment
    }

    fn check(&self, seq: &Sequence<'_>) -> Result<()> {
        let c = self.model.config();
        let t = seq.ids.len();
        if t == 0 {
            return Err(Error::EmptyInput);
        }
        if t > self.max_len {
            return Err(Error::InputTooLong {
                len: t,
                max: self.max_len,
            });
        }
        if let Some(&id) = seq.ids.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(Error::InvalidTokenId {
                id: id as i64,
                vocab: c.vocab_size,
            });
        }
        if let Some(types) = seq.type_ids {
            if types.len() != t {
                return Err(Error::InvalidArgument(format!(
                    "{} token types for {t} tokens",
                    types.len()
                )));
            }
            // Models without token types ignore them, as Hugging Face's do.
            if c.type_vocab_size > 0 {
                if let Some(&id) = types.iter().find(|&&id| id as usize >= c.type_vocab_size) {
                    return Err(Error::InvalidTokenType {
                        id: id as i64,
                        types: c.type_vocab_size,
                    });
                }
            }
        }
        Ok(())
    }

    /// Runs the encoder on checked ids (`ids`/`types` may alias the session's own buffers, so
    /// they are passed by range when they do).
    fn run_encoder(&mut self, ids: &[u32], types: Option<&[u32]>, rows: Rows) {
        let m = &*self.model;
        let ex = Exec {
            k: self.kernels,
            pool: &self.pool,
        };
        m.network.encode(
            m.bytes(),
            m.config(),
            ids,
            types,
            rows,
            &mut self.scratch,
            &ex,
        );
    }

    fn run_head(&mut self, out: Option<&mut [f32]>) -> Result<()> {
        let m = &*self.model;
        let ex = Exec {
            k: self.kernels,
            pool: &self.pool,
        };
        let out = match out {
            Some(o) => o,
            None => &mut self.logits,
        };
        m.network
            .classify(m.bytes(), m.config(), &mut self.scratch, out, &ex)
    }

    /// The encoder's last hidden state, `[tokens, hidden]` row-major.
    pub fn last_hidden_state(&mut self, seq: Sequence<'_>) -> Result<&[f32]> {
        self.check(&seq)?;
        self.run_encoder(seq.ids, seq.type_ids, Rows::All);
        Ok(&self.scratch.hidden[..seq.ids.len() * self.model.config().hidden_size])
    }

    /// [`Session::logits`] with the last layer computed for every token, as transformers
    /// does: for tests that pin the `[CLS]`-only shortcut to the same bits.
    #[doc(hidden)]
    pub fn logits_all_rows(&mut self, seq: Sequence<'_>) -> Result<&[f32]> {
        self.check(&seq)?;
        self.run_encoder(seq.ids, seq.type_ids, Rows::All);
        self.run_head(None)?;
        Ok(&self.logits)
    }

    /// Classification logits of one sequence.
    pub fn logits(&mut self, seq: Sequence<'_>) -> Result<&[f32]> {
        self.check(&seq)?;
        self.run_encoder(seq.ids, seq.type_ids, Rows::First);
        self.run_head(None)?;
        Ok(&self.logits)
    }

    /// Logits of several sequences of any lengths, each run at its own length (no padding),
    /// into `out` (`[batch, num_labels]`).
    pub fn run_batch(&mut self, seqs: &[Sequence<'_>], out: &mut [f32]) -> Result<()> {
        let n = self.model.config().num_labels;
        if seqs.len() > self.max_batch {
            return Err(Error::BatchTooLarge {
                len: seqs.len(),
                max: self.max_batch,
            });
        }
        if out.len() != seqs.len() * n {
            return Err(Error::InvalidArgument(format!(
                "output of {} for {} x {n} logits",
                out.len(),
                seqs.len()
            )));
        }
        for (seq, o) in seqs.iter().zip(out.chunks_exact_mut(n.max(1))) {
            o.copy_from_slice(self.logits(*seq)?);
        }
        Ok(())
    }

    /// Logits of a right-padded batch (`ids` and `mask` are `[batch, width]`, mask 1 for tokens,
    /// 0 for padding after them), as Hugging Face takes it. Padding is dropped, not computed.
    pub fn run_padded(
        &mut self,
        ids: &[u32],
        mask: &[u32],
        type_ids: Option<&[u32]>,
        width: usize,
        out: &mut [f32],
    ) -> Result<()> {
        if width == 0
            || !ids.len().is_multiple_of(width)
            || mask.len() != ids.len()
            || type_ids.is_some_and(|t| t.len() != ids.len())
        {
            return Err(Error::InvalidArgument(
                "ids, mask and token types must all be [batch, width]".into(),
            ));
        }
        let n = self.model.config().num_labels;
        let batch = ids.len() / width;
        if batch > self.max_batch {
            return Err(Error::BatchTooLarge {
                len: batch,
                max: self.max_batch,
            });
        }
        if out.len() != batch * n {
            return Err(Error::InvalidArgument(format!(
                "output of {} for {batch} x {n} logits",
                out.len()
            )));
        }
        for b in 0..batch {
            let m = &mask[b * width..(b + 1) * width];
            let len = m.iter().take_while(|&&v| v == 1).count();
            if m[len..].iter().any(|&v| v != 0) {
                return Err(Error::InvalidArgument(format!(
                    "row {b}: the mask is not right padding"
                )));
            }
            let span = b * width..b * width + len;
            let seq = Sequence {
                ids: &ids[span.clone()],
                type_ids: type_ids.map(|t| &t[span]),
            };
            out[b * n..(b + 1) * n].copy_from_slice(self.logits(seq)?);
        }
        Ok(())
    }

    /// Tokenizes a text or a (premise, hypothesis) pair into the session's buffers: token ids
    /// and token type ids, truncated to the session's maximum length. Allocates nothing.
    pub fn tokenize(&mut self, text: &str, pair: Option<&str>) -> Result<(&[u32], &[u32])> {
        let n = self.tokenize_in_place(text, pair)?;
        Ok((&self.ids[..n], &self.type_ids[..n]))
    }

    fn tokenize_in_place(&mut self, text: &str, pair: Option<&str>) -> Result<usize> {
        let m = &*self.model;
        m.tokenizer()?.encode_into(
            m.bytes(),
            text,
            pair,
            self.max_len,
            self.truncation,
            &mut self.tokenizer,
            &mut self.ids,
            &mut self.type_ids,
        )
    }

    /// Like [`Session::tokenize`] for bytes that must be UTF-8 (from C, JNI, files).
    pub fn tokenize_bytes(&mut self, text: &[u8], pair: Option<&[u8]>) -> Result<(&[u32], &[u32])> {
        let text = std::str::from_utf8(text).map_err(|_| Error::InvalidUtf8)?;
        let pair = pair
            .map(std::str::from_utf8)
            .transpose()
            .map_err(|_| Error::InvalidUtf8)?;
        self.tokenize(text, pair)
    }

    /// Tokenizes a text or a pair and writes its logits into `logits` (one per label).
    /// Allocates nothing.
    pub fn pair_logits_into(
        &mut self,
        text: &str,
        pair: Option<&str>,
        logits: &mut [f32],
    ) -> Result<()> {
        let n = self.model.config().num_labels;
        if logits.len() != n {
            return Err(Error::InvalidArgument(format!(
                "{} outputs for {n} labels",
                logits.len()
            )));
        }
        let len = self.tokenize_in_place(text, pair)?;
        // The ids live in the session: move them out of the way of the mutable borrow, and back.
        let ids = std::mem::take(&mut self.ids);
        let types = std::mem::take(&mut self.type_ids);
        let with_types = self.model.config().type_vocab_size > 0;
        self.run_encoder(
            &ids[..len],
            with_types.then_some(&types[..len]),
            Rows::First,
        );
        self.ids = ids;
        self.type_ids = types;
        self.run_head(Some(logits))
    }

    /// Classifies a text or a pair into `probs` (one per label). Allocates nothing.
    pub fn classify_into(
        &mut self,
        text: &str,
        pair: Option<&str>,
        probs: &mut [f32],
    ) -> Result<()> {
        self.pair_logits_into(text, pair, probs)?;
        crate::kernels::scalar::softmax(probs);
        Ok(())
    }

    /// Zero-shot classification as Hugging Face's pipeline does it: `text` is the premise and
    /// `template` with its `{}` replaced by each candidate label the hypothesis. Single-label
    /// scores are a softmax of the entailment logits over the candidates; multi-label scores
    /// (and a single candidate) a softmax of entailment against contradiction per candidate,
    /// contradiction being label 0, or the last label when entailment is label 0.
    ///
    /// `label(i)` gives candidate `i` of `scores.len()`. Allocates nothing unless a hypothesis
    /// outgrows the session's buffer (1 KiB), once.
    pub fn zero_shot_into<'l>(
        &mut self,
        text: &str,
        mut label: impl FnMut(usize) -> Result<&'l str>,
        template: &str,
        multi_label: bool,
        scores: &mut [f32],
    ) -> Result<()> {
        let n = self.model.config().num_labels;
        let entail = self.entailment.ok_or(Error::NoEntailmentLabel)?;
        if n < 2 {
            return Err(Error::Unsupported(format!(
                "zero-shot classification needs an NLI model; this one has {n} label(s)"
            )));
        }
        let slot = template.find("{}").ok_or_else(|| {
            Error::InvalidArgument(format!("hypothesis template '{template}' has no {{}}"))
        })?;
        let contra = if entail == 0 { n - 1 } else { 0 };
        let per_label = multi_label || scores.len() == 1;
        // Logits of one pair; NLI heads have a handful of labels.
        let mut logits = [0f32; 16];
        if n > logits.len() {
            return Err(Error::Unsupported(format!(
                "zero-shot over {n} model labels"
            )));
        }
        let mut hypothesis = std::mem::take(&mut self.hypothesis);
        let mut result = Ok(());
        for (i, score) in scores.iter_mut().enumerate() {
            hypothesis.clear();
            hypothesis.push_str(&template[..slot]);
            match label(i) {
                Ok(l) => hypothesis.push_str(l),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            hypothesis.push_str(&template[slot + 2..]);
            if let Err(e) = self.pair_logits_into(text, Some(&hypothesis), &mut logits[..n]) {
                result = Err(e);
                break;
            }
            *score = if per_label {
                // softmax([contradiction, entailment])[1]
                1.0 / (1.0 + (logits[contra] - logits[entail]).exp())
            } else {
                logits[entail]
            };
        }
        self.hypothesis = hypothesis;
        result?;
        if !per_label {
            crate::kernels::scalar::softmax(scores);
        }
        Ok(())
    }

    /// [`Session::zero_shot_into`] over a slice of labels, returning the scores.
    pub fn zero_shot(
        &mut self,
        text: &str,
        labels: &[&str],
        template: &str,
        multi_label: bool,
    ) -> Result<Vec<f32>> {
        let mut scores = vec![0.0; labels.len()];
        self.zero_shot_into(text, |i| Ok(labels[i]), template, multi_label, &mut scores)?;
        Ok(scores)
    }

    /// Classifies a text or a (premise, hypothesis) pair: label probabilities.
    pub fn classify(&mut self, text: &str, pair: Option<&str>) -> Result<Vec<f32>> {
        let mut probs = vec![0.0; self.model.config().num_labels];
        self.classify_into(text, pair, &mut probs)?;
        Ok(probs)
    }
}

/// Probabilities from logits.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let mut p = logits.to_vec();
    crate::kernels::scalar::softmax(&mut p);
    p
}
