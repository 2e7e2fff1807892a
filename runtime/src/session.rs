//! Sessions: the scratch memory, kernels and worker threads for running a model, all set up
//! once at creation. Running (tokenizing, encoding, classifying) allocates nothing.
//!
//! One vocabulary names the calls, in Rust, C and Java alike: `run_*` takes token ids (already
//! tokenized), `classify_*` takes text (tokenized by the session); zero-shot takes text, so it
//! is `classify_zero_shot`. A method that writes into a caller's buffer ends in `_into`; one
//! without returns its result (a `Vec` for text, a slice of the session's own buffer for ids).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::kernels::{Isa, Kernels};
use crate::memory::{self, Buffers};
use crate::model::scratch::ForwardScratch;
use crate::model::stage::{check_finite, EncoderStage, ForwardPass, Rows};
use crate::model::Model;
use crate::offload::{Fallback, Offload, OffloadOptions};
use crate::pool::Pool;
use crate::tokenizer::{TokenizerScratch, Truncation};

/// Default longest word (in normalized UTF-8 bytes) a session's tokenizer takes: a single
/// 100,000-character ASCII word fits; longer words are an `InputTooLong` error.
pub const DEFAULT_MAX_WORD_BYTES: usize = 128 * 1024;

/// The largest `max_word_bytes` a session accepts (the tokenizer's word buffers grow with it).
pub const MAX_WORD_BYTES_LIMIT: usize = 16 << 20;

/// How a session is sized.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Longest input in tokens; `None` means the model's maximum. At least 3 for a model with
    /// a tokenizer (`[CLS] [SEP] [SEP]`), 1 otherwise.
    pub max_sequence_length: Option<usize>,
    /// Most sequences in one [`Session::run_batch_into`] or [`Session::run_padded_into`]
    /// call; `0` means 1.
    pub max_batch: usize,
    /// Longest word the tokenizer takes, in bytes; `None` means [`DEFAULT_MAX_WORD_BYTES`].
    /// Text length is not limited: text is tokenized word by word.
    pub max_word_bytes: Option<usize>,
    /// How pairs are truncated to the maximum length.
    pub truncation: Truncation,
    /// Threads a forward pass uses (the caller's included); `0` means 1, and more than the
    /// cores available to the process means as many as there are cores (logged as a warning;
    /// [`Session::threads`] says how many run). Results are bit-identical for every count.
    pub threads: usize,
    /// Runs exactly `threads` threads even beyond the cores (tests of thread counts a machine
    /// lacks: results are the same bits for every count, and this is how to check it).
    #[doc(hidden)]
    pub exact_threads: bool,
    /// Kernel tier; `None` means the best this CPU runs, or `DBRT_FORCE_ISA` when set.
    pub isa: Option<Isa>,
    /// The label that means entailment, for zero-shot classification; `None` means the one
    /// [`Model::entailment_label`] finds by name.
    pub entailment_label: Option<usize>,
    /// Which encoder runs (dbrt's CPU encoder by default, or an accelerator) and when a call
    /// falls back to the CPU.
    pub offload: OffloadOptions,
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
    scratch: ForwardScratch,
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
    /// The encoder's backend, and which one ran the last call.
    offload: Offload,
    /// Where the next run panics: for the tests that check a session survives a panic.
    panic_at: Option<PanicPoint>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("max_sequence_length", &self.max_len)
            .field("threads", &self.pool.threads())
            .field("isa", &self.kernels.isa)
            .field("backend", &self.offload.backend())
            .finish_non_exhaustive()
    }
}

/// Where [`Session::inject_panic`] makes the next run panic.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicPoint {
    /// After the text was tokenized into the session's buffers, before the encoder.
    AfterTokenizing,
    /// Inside the encoder, in the last thread of the session's pool.
    InWorker,
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
        let max_word = options.max_word_bytes.unwrap_or(DEFAULT_MAX_WORD_BYTES);
        if max_word == 0 || max_word > MAX_WORD_BYTES_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "max_word_bytes {max_word} must be in 1..={MAX_WORD_BYTES_LIMIT}"
            )));
        }
        // The pool runs no more threads than there are cores: size for the threads it runs.
        let pool = Pool::new(threads, options.exact_threads)
            .map_err(|e| Error::InvalidArgument(format!("cannot start worker threads: {e}")))?;
        let threads = pool.threads();
        // Measure the session before making it: a size the machine cannot hold is refused here,
        // as a typed error, instead of being found by the system's out-of-memory killer later.
        let bytes = Self::memory_bytes(&model, max_len, threads, max_word)?;
        if memory::physical_memory().is_some_and(|physical| bytes > physical) {
            return Err(Error::OutOfMemory {
                what: "a session, more than this machine's memory (lower max_sequence_length or threads)",
                bytes,
            });
        }
        // The i8mm tier's repack of the weights (once per model): after every check that can
        // refuse the session.
        model.prepare_weights(&kernels)?;
        let mut buf = Buffers::allocating();
        let scratch =
            ForwardScratch::new(model.config(), &model.network, max_len, threads, &mut buf)?;
        let logits = buf.zeroed(model.config().num_labels, "logits")?;
        let ids = buf.zeroed(max_len, "token ids")?;
        let type_ids = buf.zeroed(max_len, "token type ids")?;
        let offload = Offload::new(&model, &options.offload, threads)?;
        Ok(Session {
            offload,
            tokenizer: TokenizerScratch::new(max_word, max_len)?,
            ids,
            type_ids,
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
            panic_at: None,
        })
    }

    /// The bytes of scratch memory a session of `max_len` tokens on `threads` threads, taking
    /// words of up to `max_word_bytes`, takes (what [`Session::new`] checks against the
    /// machine's memory before allocating it).
    pub fn memory_bytes(
        model: &Model,
        max_len: usize,
        threads: usize,
        max_word_bytes: usize,
    ) -> Result<u64> {
        let mut buf = Buffers::dry_run();
        ForwardScratch::new(model.config(), &model.network, max_len, threads, &mut buf)?;
        TokenizerScratch::from_buffers(max_word_bytes, max_len, &mut buf)?;
        buf.zeroed::<f32>(model.config().num_labels, "logits")?;
        buf.zeroed::<u32>(2 * max_len, "token ids")?;
        Ok(buf.bytes())
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

    /// The backend the session's encoder is attached to: `cpu`, or the accelerator its
    /// [`OffloadOptions`] chose and that attached.
    pub fn backend(&self) -> &'static str {
        self.offload.backend()
    }

    /// The backend that ran the last call's encoder (`None` before the first call).
    pub fn last_backend(&self) -> Option<&'static str> {
        self.offload.last_backend()
    }

    /// Why the last call ran on the CPU rather than the session's backend, if it did; or,
    /// before any call, why the backend did not attach.
    pub fn last_fallback(&self) -> Option<Fallback<'_>> {
        self.offload.last_fallback()
    }

    /// Whether this session and `other` run one device model (for tests of the sharing).
    #[doc(hidden)]
    pub fn shares_device_with(&self, other: &Session) -> bool {
        self.offload.shares_device_with(&other.offload)
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

    /// Makes the next run panic at `point` (tests of what a caught panic leaves behind).
    #[doc(hidden)]
    pub fn inject_panic(&mut self, point: PanicPoint) {
        self.panic_at = Some(point);
    }

    fn panic_if_injected(&mut self, point: PanicPoint) {
        if self.panic_at == Some(point) {
            self.panic_at = None;
            match point {
                PanicPoint::AfterTokenizing => panic!("injected panic after tokenizing"),
                PanicPoint::InWorker => self.pool.run(&|ti, tn| {
                    assert!(ti + 1 < tn, "injected panic in thread {ti}");
                }),
            }
        }
    }

    /// Runs the embeddings and the encoder on checked ids.
    fn run_encoder(&mut self, ids: &[u32], types: Option<&[u32]>, rows: Rows) -> Result<()> {
        self.panic_if_injected(PanicPoint::InWorker);
        encode(
            &self.model,
            self.kernels,
            &self.pool,
            &mut self.scratch,
            &mut self.offload,
            Sequence {
                ids,
                type_ids: types,
            },
            rows,
        )
    }

    fn run_head(&mut self, out: Option<&mut [f32]>) -> Result<()> {
        let out = match out {
            Some(o) => o,
            None => &mut self.logits,
        };
        ForwardPass::new(&self.model, self.kernels, &self.pool, &mut self.scratch).head(out)
    }

    /// Runs token ids through the encoder: its last hidden state, `[tokens, hidden]` row-major.
    pub fn run_hidden(&mut self, seq: Sequence<'_>) -> Result<&[f32]> {
        self.check(&seq)?;
        self.run_encoder(seq.ids, seq.type_ids, Rows::All)?;
        let hidden = &self.scratch.hidden[..seq.ids.len() * self.model.config().hidden_size];
        check_finite(hidden, "hidden states")?;
        Ok(hidden)
    }

    /// Checks `seq` and runs its embeddings: the forward pass stage by stage, for tests of the
    /// encoder stage's contract.
    #[doc(hidden)]
    pub fn forward_pass(&mut self, seq: Sequence<'_>) -> Result<ForwardPass<'_>> {
        self.check(&seq)?;
        let mut pass = ForwardPass::new(&self.model, self.kernels, &self.pool, &mut self.scratch);
        pass.embed(seq.ids, seq.type_ids);
        Ok(pass)
    }

    /// [`Session::forward_pass`] and the session's accelerator as an encoder stage, if one is
    /// attached: for tests of the accelerator's stage contract.
    #[doc(hidden)]
    pub fn device_pass(
        &mut self,
        seq: Sequence<'_>,
    ) -> Result<(ForwardPass<'_>, Option<&mut dyn EncoderStage>)> {
        self.check(&seq)?;
        let Session {
            model,
            kernels,
            pool,
            scratch,
            offload,
            ..
        } = self;
        let mut pass = ForwardPass::new(model, *kernels, pool, scratch);
        pass.embed(seq.ids, seq.type_ids);
        Ok((pass, offload.stage()))
    }

    /// [`Session::run_logits`] with the last layer computed for every token, as transformers
    /// does: for tests that pin the `[CLS]`-only shortcut to the same bits.
    #[doc(hidden)]
    pub fn run_logits_all_rows(&mut self, seq: Sequence<'_>) -> Result<&[f32]> {
        self.check(&seq)?;
        self.run_encoder(seq.ids, seq.type_ids, Rows::All)?;
        self.run_head(None)?;
        Ok(&self.logits)
    }

    /// Runs token ids through the model: the classification logits of one sequence.
    pub fn run_logits(&mut self, seq: Sequence<'_>) -> Result<&[f32]> {
        self.check(&seq)?;
        self.run_encoder(seq.ids, seq.type_ids, Rows::First)?;
        self.run_head(None)?;
        Ok(&self.logits)
    }

    /// Runs several sequences of token ids, of any lengths, each at its own length (no
    /// padding): their logits into `out` (`[batch, num_labels]`).
    pub fn run_batch_into(&mut self, seqs: &[Sequence<'_>], out: &mut [f32]) -> Result<()> {
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
            o.copy_from_slice(self.run_logits(*seq)?);
        }
        Ok(())
    }

    /// Runs a right-padded batch of token ids (`ids` and `mask` are `[batch, width]`, mask 1 for
    /// tokens, 0 for padding after them), as Hugging Face takes it: logits into `out`
    /// (`[batch, num_labels]`). Padding is dropped, not computed.
    pub fn run_padded_into(
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
            out[b * n..(b + 1) * n].copy_from_slice(self.run_logits(seq)?);
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
        self.tokenize_pair(text, pair.map_or(Second::None, Second::Text))
    }

    /// Tokenizes into the session's id buffers. It borrows the fields it uses one by one, so
    /// that the second text may be the session's own hypothesis buffer: nothing is moved out
    /// of the session and back, which a panic in between would leave moved out.
    fn tokenize_pair(&mut self, text: &str, second: Second<'_>) -> Result<usize> {
        let Session {
            model,
            tokenizer,
            ids,
            type_ids,
            hypothesis,
            max_len,
            truncation,
            ..
        } = self;
        let pair = match second {
            Second::None => None,
            Second::Text(t) => Some(t),
            Second::Hypothesis => Some(hypothesis.as_str()),
        };
        model.tokenizer()?.encode_into(
            model.bytes(),
            text,
            pair,
            *max_len,
            *truncation,
            tokenizer,
            ids,
            type_ids,
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

    /// Classifies a text or a (premise, hypothesis) pair: its logits into `logits` (one per
    /// label). Allocates nothing.
    pub fn classify_logits_into(
        &mut self,
        text: &str,
        pair: Option<&str>,
        logits: &mut [f32],
    ) -> Result<()> {
        self.second_logits_into(text, pair.map_or(Second::None, Second::Text), logits)
    }

    fn second_logits_into(
        &mut self,
        text: &str,
        second: Second<'_>,
        logits: &mut [f32],
    ) -> Result<()> {
        let n = self.model.config().num_labels;
        if logits.len() != n {
            return Err(Error::InvalidArgument(format!(
                "{} outputs for {n} labels",
                logits.len()
            )));
        }
        let len = self.tokenize_pair(text, second)?;
        self.panic_if_injected(PanicPoint::AfterTokenizing);
        self.panic_if_injected(PanicPoint::InWorker);
        let types = self.model.config().type_vocab_size;
        let with_types = types > 0;
        // The second text's type is 1: a model with one token type cannot take a pair.
        if let Some(&id) = self.type_ids[..len]
            .iter()
            .find(|&&t| with_types && t as usize >= types)
        {
            return Err(Error::InvalidTokenType {
                id: id.into(),
                types,
            });
        }
        // The ids are the session's own: borrowed field by field beside the scratch.
        let Session {
            model,
            scratch,
            kernels,
            pool,
            ids,
            type_ids,
            offload,
            ..
        } = self;
        encode(
            model,
            *kernels,
            pool,
            scratch,
            offload,
            Sequence {
                ids: &ids[..len],
                type_ids: with_types.then_some(&type_ids[..len]),
            },
            Rows::First,
        )?;
        self.run_head(Some(logits))
    }

    /// Classifies a text or a (premise, hypothesis) pair: label probabilities (the softmax of
    /// its logits) into `probs` (one per label). Allocates nothing.
    pub fn classify_into(
        &mut self,
        text: &str,
        pair: Option<&str>,
        probs: &mut [f32],
    ) -> Result<()> {
        self.classify_logits_into(text, pair, probs)?;
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
    pub fn classify_zero_shot_into<'l>(
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
        for (i, score) in scores.iter_mut().enumerate() {
            let l = label(i)?;
            let h = &mut self.hypothesis;
            h.clear();
            h.push_str(&template[..slot]);
            h.push_str(l);
            h.push_str(&template[slot + 2..]);
            self.second_logits_into(text, Second::Hypothesis, &mut logits[..n])?;
            *score = if per_label {
                // softmax([contradiction, entailment])[1]
                1.0 / (1.0 + (logits[contra] - logits[entail]).exp())
            } else {
                logits[entail]
            };
        }
        if !per_label {
            crate::kernels::scalar::softmax(scores);
        }
        Ok(())
    }

    /// [`Session::classify_zero_shot_into`] over a slice of labels, returning the scores.
    pub fn classify_zero_shot(
        &mut self,
        text: &str,
        labels: &[&str],
        template: &str,
        multi_label: bool,
    ) -> Result<Vec<f32>> {
        let mut scores = vec![0.0; labels.len()];
        self.classify_zero_shot_into(text, |i| Ok(labels[i]), template, multi_label, &mut scores)?;
        Ok(scores)
    }

    /// Classifies a text or a (premise, hypothesis) pair: label probabilities.
    pub fn classify(&mut self, text: &str, pair: Option<&str>) -> Result<Vec<f32>> {
        let mut probs = vec![0.0; self.model.config().num_labels];
        self.classify_into(text, pair, &mut probs)?;
        Ok(probs)
    }

    /// Classifies a text or a (premise, hypothesis) pair: its logits.
    pub fn classify_logits(&mut self, text: &str, pair: Option<&str>) -> Result<Vec<f32>> {
        let mut logits = vec![0.0; self.model.config().num_labels];
        self.classify_logits_into(text, pair, &mut logits)?;
        Ok(logits)
    }
}

/// The second text of a pair: none, the caller's, or the session's zero-shot hypothesis.
#[derive(Clone, Copy)]
enum Second<'a> {
    None,
    Text(&'a str),
    Hypothesis,
}

/// Runs `model`'s embeddings and encoder stage (the CPU's, or the session's accelerator's) on
/// checked ids, the last hidden state left in `scratch`.
fn encode(
    model: &Model,
    k: Kernels,
    pool: &Pool,
    scratch: &mut ForwardScratch,
    offload: &mut Offload,
    seq: Sequence<'_>,
    rows: Rows,
) -> Result<()> {
    let mut pass = ForwardPass::new(model, k, pool, scratch);
    offload.encode(&mut pass, seq.ids, seq.type_ids, rows)
}

/// Probabilities from logits.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let mut p = logits.to_vec();
    crate::kernels::scalar::softmax(&mut p);
    p
}
