//! `DisentangledSelfAttention` and `DebertaV2SelfOutput`.
//!
//! Queries, keys and values are projected for every token (queries only for the rows a run
//! produces). The heads are split across the threads; each head's scores are
//! `((q·k + c2p) + p2c) · scale` (c2p: queries against the relative keys, p2c: keys against
//! the relative queries, both read at the distance `i - j`), softmaxed row by row, and times
//! the values into the head's columns of the context. Then the output dense layer and the
//! LayerNorm over the residual.
//!
//! The scores come from one of two algorithms, chosen by how the file stores the relative
//! projections: f32 ([`float`]: the projections read in place, transposed per head) or int8
//! ([`int8`]: the relative terms on the int8 GEMM kernels).

mod float;
mod int8;
mod int8_scores;

use super::exec::Exec;
use super::layer_norm::LayerNorm;
use super::linear::Linear;
use super::stage::CpuEncoder;
use super::tensors::Tensors;
use super::weights::{MatRef, PackedRef};
use super::Config;
use crate::error::{Error, Result};
use crate::kernels::{scalar, Kernels, NR};
use crate::pool::{share, SharedMut};
use float::FloatRel;
use int8::Int8Rel;
use int8_scores::Int8HeadScratch;

/// `DisentangledSelfAttention` (+ `DebertaV2SelfOutput` as `output`, `norm`).
#[derive(Debug)]
pub(crate) struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    /// Projected relative embeddings (c2p uses keys, p2c queries); both float or both int8.
    rel_key: Option<RelProjection>,
    rel_query: Option<RelProjection>,
    output: Linear,
    norm: LayerNorm,
}

/// A precomputed relative-position projection as the file stores it.
#[derive(Debug, Clone, Copy)]
enum RelProjection {
    /// `[2 * att_span, all_head]` floats.
    Float(MatRef),
    /// int8 per relative row and head: each head's `[2 * att_span, d]` block stacked
    /// (`[heads * 2 * att_span, d]`) and packed as a linear weight, for the int8 attention.
    Int8(PackedRef),
}

impl RelProjection {
    fn float(&self) -> Option<&MatRef> {
        match self {
            RelProjection::Float(m) => Some(m),
            RelProjection::Int8(_) => None,
        }
    }

    fn int8(&self) -> Option<&PackedRef> {
        match self {
            RelProjection::Int8(p) => Some(p),
            RelProjection::Float(_) => None,
        }
    }

    /// `{name}` under `t` when the config has relative attention and this term (`on`): int8
    /// when packed, else `[2 * att_span, all_head]` floats.
    fn resolve(t: &Tensors<'_>, leaf: &str, c: &Config, on: bool) -> Result<Option<Self>> {
        if !(c.relative_attention && on) {
            return Ok(None);
        }
        let rel_rows = 2 * c.att_span();
        let (heads, d) = (c.num_attention_heads, c.attention_head_size);
        if let Some(packed) = t.packed(leaf, heads * rel_rows, d)? {
            // Each head's rows must start on a panel.
            if !rel_rows.is_multiple_of(NR) {
                return Err(Error::BadMetadata {
                    key: t.name(leaf),
                    reason: format!(
                        "int8 relative rows per head ({rel_rows}) not a multiple of {NR}"
                    ),
                });
            }
            return Ok(Some(RelProjection::Int8(packed)));
        }
        let float = t.matrix(leaf, rel_rows, c.all_head_size())?;
        Ok(Some(RelProjection::Float(float)))
    }
}

impl Attention {
    /// The tensors under `deberta.encoder.layer.{l}.attention`.
    pub fn resolve(t: &Tensors<'_>, c: &Config) -> Result<Attention> {
        let (h, ah) = (c.hidden_size, c.all_head_size());
        let own = t.pp("self");
        let rel_key = RelProjection::resolve(&own, "rel_pos_key", c, c.pos_att.c2p)?;
        let rel_query = RelProjection::resolve(&own, "rel_pos_query", c, c.pos_att.p2c)?;
        // The attention takes both as floats or both as int8 (see `Attention::forward`).
        if let (Some(k), Some(q)) = (rel_key, rel_query) {
            if k.int8().is_some() != q.int8().is_some() {
                return Err(Error::BadMetadata {
                    key: own.name("rel_pos_query"),
                    reason: "stored as int8 and float: one relative projection each".into(),
                });
            }
        }
        Ok(Attention {
            query: Linear::resolve(&own.pp("query_proj"), ah, h, true)?,
            key: Linear::resolve(&own.pp("key_proj"), ah, h, true)?,
            value: Linear::resolve(&own.pp("value_proj"), ah, h, true)?,
            rel_key,
            rel_query,
            output: Linear::resolve(&t.pp("output.dense"), h, ah, true)?,
            norm: LayerNorm::resolve(&t.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    pub fn linears(&self) -> [&Linear; 4] {
        [&self.query, &self.key, &self.value, &self.output]
    }

    /// The attention block over the `t` tokens of `hidden` (`[t, hidden_size]`), for its
    /// first `rows` rows, into the scratch's `attention_out`.
    pub fn forward(&self, cpu: &mut CpuEncoder<'_>, hidden: &[f32], t: usize, rows: usize) {
        self.project(cpu, hidden, t, rows);
        self.heads(cpu, t, rows);
        // DebertaV2SelfOutput: LayerNorm(dense(context) + input)
        let CpuEncoder {
            ex,
            scratch,
            linear,
            ..
        } = cpu;
        let (h, ah) = (ex.config.hidden_size, ex.config.all_head_size());
        let out = &mut scratch.attention_out[..rows * h];
        let context = &scratch.context[..rows * ah];
        self.output.forward(ex, context, rows, out, None, linear);
        self.norm.forward(ex, out, Some(&hidden[..rows * h]));
    }

    /// Queries (of the first `rows` tokens), keys and values (of all `t`) into the scratch.
    fn project(&self, cpu: &mut CpuEncoder<'_>, x: &[f32], t: usize, rows: usize) {
        let CpuEncoder {
            ex,
            scratch,
            linear,
            ..
        } = cpu;
        let (h, ah) = (ex.config.hidden_size, ex.config.all_head_size());
        let x = &x[..t * h];
        let (k, v) = (&mut scratch.keys[..t * ah], &mut scratch.values[..t * ah]);
        if rows == t {
            let q = &mut scratch.queries[..t * ah];
            let qkv = [&self.query, &self.key, &self.value];
            Linear::forward_same_input(qkv, ex, x, t, [q, k, v], linear);
        } else {
            Linear::forward_same_input([&self.key, &self.value], ex, x, t, [k, v], linear);
            let q = &mut scratch.queries[..rows * ah];
            self.query
                .forward(ex, &x[..rows * h], rows, q, None, linear);
        }
    }

    /// Every head's scores, softmax and context, the heads split across the threads.
    fn heads(&self, cpu: &mut CpuEncoder<'_>, t: usize, rows: usize) {
        let CpuEncoder {
            encoder,
            ex,
            scratch,
            linear,
        } = cpu;
        let c = ex.config;
        let (ah, d) = (c.all_head_size(), c.attention_head_size);
        let bytes = ex.bytes;
        let job = HeadJob {
            ex,
            queries: &scratch.queries,
            keys: &scratch.keys,
            values: &scratch.values,
            context: SharedMut::new(&mut scratch.context[..t * ah]),
            t,
            rows,
            d,
            ah,
            scale: 1.0 / ((d * c.pos_att.scale_factor()) as f32).sqrt(),
            rel_index: encoder.rel_index(bytes),
            rel_offset: c.max_position_embeddings - t,
        };
        let float_rel = |r: Option<RelProjection>| r.and_then(|r| r.float().map(|m| m.view(bytes)));
        let float = FloatRel {
            key: float_rel(self.rel_key),
            query: float_rel(self.rel_query),
        };
        let int8 = matches!(
            self.rel_key.or(self.rel_query),
            Some(RelProjection::Int8(_))
        )
        .then(|| {
            let int8_rel = |r: Option<RelProjection>| r.and_then(|r| r.int8().copied());
            let (key, query) = (int8_rel(self.rel_key), int8_rel(self.rel_query));
            let linear = t <= encoder.rel_linear_len();
            Int8Rel::new(key, query, 2 * c.att_span(), t, linear, &|rr| {
                job.rel_row(rr)
            })
        });
        let attn = &mut scratch.attention;
        let (f32_stride, i8_stride, sizes) = (attn.f32_stride, attn.i8_stride, attn.int8);
        let per_thread = SharedMut::new(&mut attn.f32s);
        let per_thread_i8 = SharedMut::new(&mut attn.i8s);
        let widest = linear.widest;
        let widened = SharedMut::new(&mut linear.row);
        ex.pool.run(&|ti, tn| {
            // SAFETY: thread ti owns its own block of attention scratch.
            let block = unsafe { per_thread.slice(ti * f32_stride..(ti + 1) * f32_stride) };
            let (mut hs, rest) = HeadScratch::carve(block, t, d);
            // SAFETY: thread ti owns its own block of int8 attention scratch.
            let block_i8 = unsafe { per_thread_i8.slice(ti * i8_stride..(ti + 1) * i8_stride) };
            let mut int8_scratch = Int8HeadScratch::carve(sizes, t, rest, block_i8);
            // SAFETY: thread ti owns its own widened-row slot.
            let widened = unsafe { widened.slice(ti * widest..(ti + 1) * widest) };
            let heads = share(c.num_attention_heads, ti, tn);
            for head in heads.clone() {
                match &int8 {
                    Some(rel) => int8::head(&job, rel, head, &mut hs, &mut int8_scratch),
                    None => {
                        let prefetch_next = head + 1 < heads.end;
                        float::head(&job, &float, head, prefetch_next, &mut hs, widened);
                    }
                }
            }
        });
    }
}

/// What every head of one attention run reads, and the context the heads write.
struct HeadJob<'a> {
    ex: &'a Exec<'a>,
    /// `[t, all_head]` each (queries: the first `rows` rows).
    queries: &'a [f32],
    keys: &'a [f32],
    values: &'a [f32],
    /// `[rows, all_head]`: each head writes its `d` columns.
    context: SharedMut<f32>,
    t: usize,
    rows: usize,
    d: usize,
    ah: usize,
    scale: f32,
    /// The converter's relative-position index (see `Encoder::rel_index`).
    rel_index: &'a [i32],
    /// `max_len - t`: where this sequence's distances start in the index.
    rel_offset: usize,
}

impl HeadJob<'_> {
    /// Relative row of distance index `rr` = `(i - j) + t - 1`.
    #[inline(always)]
    fn rel_row(&self, rr: usize) -> usize {
        self.rel_index[rr + self.rel_offset] as usize
    }

    /// Score rows `i0..i0 + m` (`m` ≤ 4) of the head at column `h0`, unscaled: scaled,
    /// softmaxed, and the probabilities times the head's values into the context.
    #[inline(always)]
    fn attend(&self, i0: usize, m: usize, h0: usize, scores: &mut [f32], context_rows: &mut [f32]) {
        let (t, d, ah) = (self.t, self.d, self.ah);
        let k = &self.ex.kernels;
        (k.softmax_rows_f32)(&mut scores[..m * t], m, self.scale);
        let probs = rows_of(scores, 0, m, t, 0..t);
        let values = &self.values[h0..];
        (k.row_panel4_f32)(probs, m, values, ah, &mut context_rows[..m * d], d);
        for rr in 0..m {
            let i = i0 + rr;
            // SAFETY: columns h0..h0+d of row i belong to this thread's head.
            unsafe { self.context.slice(i * ah + h0..i * ah + h0 + d) }
                .copy_from_slice(&context_rows[rr * d..(rr + 1) * d]);
        }
    }
}

/// One thread's per-head buffers for `t` tokens (`r = 2t - 1` relative rows in use), carved
/// from its attention scratch (sized by `EncoderScratch::new`).
struct HeadScratch<'a> {
    /// `[d][t]`: the head's keys transposed (the int8 attention's staging rows too).
    keys_t: &'a mut [f32],
    /// `[d][r]`: the f32 relative keys transposed, rows reversed.
    rel_keys_t: &'a mut [f32],
    /// `[d][r]`: the f32 relative queries transposed.
    rel_queries_t: &'a mut [f32],
    /// `[t][t]`: `p2c_by_key[j][i]`, the p2c term of key `j` for query `i`.
    p2c_by_key: &'a mut [f32],
    /// `[4][t]`: four queries' score rows.
    scores: &'a mut [f32],
    /// `[4][t + 3]`: the window four rows of a shifted relative product are read from.
    window: &'a mut [f32],
    /// `[4][d]`: four queries' context rows.
    context_rows: &'a mut [f32],
}

impl<'a> HeadScratch<'a> {
    /// The buffers from the front of `block`, and what is left of it.
    fn carve(block: &'a mut [f32], t: usize, d: usize) -> (HeadScratch<'a>, &'a mut [f32]) {
        let r = 2 * t - 1;
        let (keys_t, rest) = block.split_at_mut(d * t);
        let (rel_keys_t, rest) = rest.split_at_mut(d * r);
        let (rel_queries_t, rest) = rest.split_at_mut(d * r);
        let (p2c_by_key, rest) = rest.split_at_mut(t * t);
        let (scores, rest) = rest.split_at_mut(4 * t);
        let (window, rest) = rest.split_at_mut(4 * (t + 3));
        let (context_rows, rest) = rest.split_at_mut(4 * d);
        let hs = HeadScratch {
            keys_t,
            rel_keys_t,
            rel_queries_t,
            p2c_by_key,
            scores,
            window,
            context_rows,
        };
        (hs, rest)
    }
}

/// `dst[dd·ld + m] = row(m)[dd]` for `m < n`, `dd < d`, eight rows at a time: each
/// destination row then takes eight contiguous values per visit instead of one (the per-head
/// transposes of keys and relative projections were a tenth of the run one value at a time).
fn transpose_rows<'a>(
    k: &Kernels,
    n: usize,
    d: usize,
    dst: &mut [f32],
    ld: usize,
    row: impl Fn(usize) -> &'a [f32],
) {
    for m0 in (0..n).step_by(8) {
        let rows = 8.min(n - m0);
        let src: [&[f32]; 8] = std::array::from_fn(|i| &row(m0 + i.min(rows - 1))[..d]);
        if rows == 8 {
            (k.transpose8)(src, d, &mut dst[m0..], ld);
        } else {
            scalar::transpose_rows(&src[..rows], d, &mut dst[m0..], ld);
        }
    }
}

/// Rows `i0..i0 + m` (`m` ≤ 4) of a row-major matrix with `stride` columns, each cut to `cols`,
/// as the four row operands of a row-panel kernel; unused slots repeat the last row.
fn rows_of(
    x: &[f32],
    i0: usize,
    m: usize,
    stride: usize,
    cols: std::ops::Range<usize>,
) -> [&[f32]; 4] {
    let row = |rr: usize| {
        let at = (i0 + rr.min(m - 1)) * stride;
        &x[at + cols.start..at + cols.end]
    };
    [row(0), row(1), row(2), row(3)]
}
