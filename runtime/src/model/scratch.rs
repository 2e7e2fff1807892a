//! The buffers a session allocates once, at creation, for forward passes over up to
//! `max_len` tokens: a run carves them and allocates nothing. Sizes come from a validated
//! config; products are checked all the same (32-bit targets).

use super::config::Config;
use super::Network;
use crate::error::Result;
use crate::kernels::{NR, QBLOCK};
use crate::memory::{product, sum, Buffers};

/// Every buffer of one session's forward pass: embeddings → encoder stage → head.
pub(crate) struct ForwardScratch {
    /// `[max_len, hidden]`: the embeddings' output, the encoder stage's input and output, the
    /// head's input.
    pub hidden: Vec<f32>,
    /// `max_len` ones: the attention mask of a sequence run at its own length (no padding).
    pub mask: Vec<u32>,
    /// `[max_len, embedding_size]`: the embeddings before their projection to the hidden size.
    pub embedded: Vec<f32>,
    /// The pooler's output.
    pub pooled: Vec<f32>,
    pub linear: LinearScratch,
    pub encoder: EncoderScratch,
}

/// The linear layers' buffers.
pub(crate) struct LinearScratch {
    /// One widened weight row per thread (`widest` floats each).
    pub row: Vec<f32>,
    pub widest: usize,
    /// Quantized input rows and their block scales.
    pub xq: Vec<i8>,
    pub xs: Vec<f32>,
}

/// The CPU encoder's activations (`[max_len, width]` each) and its attention's per-thread
/// buffers.
pub(crate) struct EncoderScratch {
    /// The longest sequence the buffers hold.
    pub max_len: usize,
    pub queries: Vec<f32>,
    pub keys: Vec<f32>,
    pub values: Vec<f32>,
    pub context: Vec<f32>,
    /// The attention block's output: the feed-forward's input and residual.
    pub attention_out: Vec<f32>,
    /// The feed-forward's activations.
    pub intermediate: Vec<f32>,
    pub attention: AttentionScratch,
}

/// Per-thread attention buffers, allocated for both attentions (a model touches only its
/// own part).
pub(crate) struct AttentionScratch {
    /// Per thread (`f32_stride` floats each): one head's transposed keys and f32 relative
    /// projections, its p2c table, four score rows, four shifted windows, four context rows
    /// (see `attention::HeadScratch`), then the int8 attention's scales and products
    /// ([`Int8AttentionSizes::f32s`]).
    pub f32s: Vec<f32>,
    pub f32_stride: usize,
    /// Per thread (`i8_stride` bytes each), for the int8 attention: one head's quantized
    /// queries and keys.
    pub i8s: Vec<i8>,
    pub i8_stride: usize,
    pub int8: Int8AttentionSizes,
}

/// Sizes of one thread's int8-attention buffers for sequences of up to `len` tokens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Int8AttentionSizes {
    pub len: usize,
    /// Head width rounded up to whole quantization blocks.
    pub kp: usize,
    /// Widest run of relative rows a head's c2p/p2c products cover.
    pub rel: usize,
}

impl Int8AttentionSizes {
    fn new(c: &Config, len: usize) -> Int8AttentionSizes {
        Int8AttentionSizes {
            len,
            kp: c.attention_head_size.div_ceil(QBLOCK) * QBLOCK,
            // Without relative attention there are no relative rows (and `att_span` is tied
            // to no tensor, so it must not size anything).
            rel: match c.relative_attention {
                true => (2 * c.att_span()).next_multiple_of(2 * NR),
                false => 0,
            },
        }
    }

    /// f32 per thread: query and key block scales, q·k, c2p and p2c products, and the p2c
    /// terms by query.
    fn f32s(&self) -> Result<usize> {
        let (len, nb) = (self.len, self.kp / QBLOCK);
        let what = "int8 attention scratch";
        sum(
            &[
                product(&[2, len, nb], what)?,
                product(&[2, len, len], what)?,
                product(&[2, len, self.rel], what)?,
            ],
            what,
        )
    }

    /// Bytes per thread: quantized queries and keys.
    fn i8s(&self) -> Result<usize> {
        product(&[2, self.len, self.kp], "int8 attention scratch")
    }
}

impl ForwardScratch {
    /// The buffers of a session for sequences of up to `max_len` tokens on `threads` threads,
    /// from `buf` (which may be a dry run that only counts their bytes).
    pub fn new(
        c: &Config,
        net: &Network,
        max_len: usize,
        threads: usize,
        buf: &mut Buffers,
    ) -> Result<ForwardScratch> {
        let (h, ah) = (c.hidden_size, c.all_head_size());
        let widest = [
            h,
            ah,
            c.embedding_size,
            c.intermediate_size,
            c.pooler_hidden_size,
        ]
        .into_iter()
        .max()
        .unwrap_or(h);
        let max_kp = net.max_kp();
        let rows = |w: usize, what| product(&[max_len, w], what);
        let hidden = buf.zeroed(rows(h, "hidden states")?, "hidden states")?;
        let embedded = buf.zeroed(rows(c.embedding_size, "embeddings")?, "embeddings")?;
        let encoder = EncoderScratch::new(c, max_len, threads, buf)?;
        let pooled = buf.zeroed(c.pooler_hidden_size, "pooler output")?;
        let linear = LinearScratch {
            row: buf.zeroed(product(&[widest, threads], "weight rows")?, "weight rows")?,
            widest,
            xq: buf.zeroed(
                rows(max_kp, "quantized activations")?,
                "quantized activations",
            )?,
            xs: buf.zeroed(
                rows(max_kp.div_ceil(QBLOCK), "activation scales")?,
                "activation scales",
            )?,
        };
        let mut mask = buf.zeroed(max_len, "attention mask")?;
        mask.fill(1);
        Ok(ForwardScratch {
            hidden,
            mask,
            embedded,
            pooled,
            linear,
            encoder,
        })
    }
}

impl EncoderScratch {
    fn new(c: &Config, max_len: usize, threads: usize, buf: &mut Buffers) -> Result<Self> {
        let (h, ah, d) = (c.hidden_size, c.all_head_size(), c.attention_head_size);
        // Per thread: keys and both relative projections transposed, the p2c table, four score
        // rows, four shifted c2p/p2c windows, four context rows; the int8 attention's part.
        let int8 = Int8AttentionSizes::new(c, max_len);
        let what = "attention scratch";
        let f32_stride = sum(
            &[
                product(&[d, max_len], what)?,
                product(&[2, d, 2 * max_len - 1], what)?,
                product(&[max_len, max_len], what)?,
                4 * max_len,
                4 * (max_len + 3),
                4 * d,
                int8.f32s()?,
            ],
            what,
        )?;
        let rows = |w: usize, what| product(&[max_len, w], what);
        Ok(EncoderScratch {
            max_len,
            queries: buf.zeroed(rows(ah, "queries")?, "queries")?,
            keys: buf.zeroed(rows(ah, "keys")?, "keys")?,
            values: buf.zeroed(rows(ah, "values")?, "values")?,
            context: buf.zeroed(rows(ah, "attention context")?, "attention context")?,
            attention_out: buf.zeroed(rows(h, "attention output")?, "attention output")?,
            intermediate: buf.zeroed(
                rows(c.intermediate_size, "feed-forward activations")?,
                "feed-forward activations",
            )?,
            attention: AttentionScratch {
                f32s: buf.zeroed(product(&[f32_stride, threads], what)?, what)?,
                f32_stride,
                i8s: buf.zeroed(
                    product(&[int8.i8s()?, threads], "int8 attention scratch")?,
                    "int8 attention scratch",
                )?,
                i8_stride: int8.i8s()?,
                int8,
            },
        })
    }
}
