//! `DebertaV2ForSequenceClassification`, one struct per Hugging Face module, each naming the
//! class it mirrors in
//! <https://github.com/huggingface/transformers/blob/main/src/transformers/models/deberta_v2/modeling_deberta_v2.py>.
//! With f32/f16 weights and the scalar kernels this is the plain reference every faster path is
//! tested against; with int8 weights, linear layers run the int8 GEMM kernels.
//!
//! Input-independent work happened in the converter: the relative embeddings were normalized and
//! projected through the key/query weights (`rel_pos_key`, `rel_pos_query`), and the bucketed
//! relative positions turned into an index table (`rel_pos_index`).

use std::ops::Range;

use super::config::{Activation, Config};
use super::weights::{MatRef, Matrix, PackedRef, VecRef};
use crate::error::{Error, Result};
use crate::format::ModelFile;
use crate::kernels::{self, scalar, Epilogue4, Kernels, Panel, Tile, MR, NR, QBLOCK};
use crate::memory::{product, sum, Buffers};
use crate::pool::{share, Pool, SharedMut};

/// What a forward pass runs on: the session's kernels and threads.
pub(crate) struct Exec<'a> {
    pub k: Kernels,
    pub pool: &'a Pool,
}

#[derive(Debug, Clone, Copy)]
enum Weight {
    Float(MatRef),
    Int8(PackedRef),
}

/// `nn.Linear`: `y = x W^T + b`, with `W` stored `[out, in]` (f32/f16/bf16, or packed int8).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Linear {
    w: Weight,
    b: Option<VecRef>,
    rows: usize,
    cols: usize,
}

/// Per-session work buffers of the linear layers.
pub(crate) struct Work {
    /// One widened weight row per thread.
    row: Vec<f32>,
    widest: usize,
    /// Quantized input rows and their scales.
    xq: Vec<i8>,
    xs: Vec<f32>,
}

impl Linear {
    fn resolve(f: &ModelFile, prefix: &str, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let name = format!("{prefix}.weight");
        let w = match PackedRef::resolve(f, &name, out, inp)? {
            Some(p) => Weight::Int8(p),
            None => Weight::Float(MatRef::resolve(f, &name, out, inp)?),
        };
        let b = if bias {
            Some(VecRef::resolve(f, &format!("{prefix}.bias"), out)?)
        } else {
            None
        };
        Ok(Linear {
            w,
            b,
            rows: out,
            cols: inp,
        })
    }

    /// `x`: `[t, in]` → `out`: `[t, out]`, then `act`. Output columns are split across threads.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        bytes: &[u8],
        x: &[f32],
        t: usize,
        out: &mut [f32],
        act: Option<Activation>,
        w: &mut Work,
        ex: &Exec<'_>,
    ) {
        let (n_out, n_in) = (self.rows, self.cols);
        let b = self.b.map(|b| b.view(bytes));
        let out = SharedMut::new(&mut out[..t * n_out]);
        match self.w {
            Weight::Float(m) => {
                let wm = m.view(bytes);
                let rows = SharedMut::new(&mut w.row);
                let widest = w.widest;
                let dot = ex.k.dot_f32;
                ex.pool.run(&|ti, tn| {
                    // SAFETY: thread ti owns its own widened-row slot.
                    let scratch = unsafe { rows.slice(ti * widest..(ti + 1) * widest) };
                    for o in share(n_out, ti, tn) {
                        let row = wm.row(o, n_in, scratch);
                        let bias = b.map_or(0.0, |b| b[o]);
                        for i in 0..t {
                            let v = dot(&x[i * n_in..(i + 1) * n_in], row) + bias;
                            // SAFETY: column o belongs to this thread alone.
                            unsafe { out.slice(i * n_out + o..i * n_out + o + 1)[0] = v };
                        }
                    }
                });
                if let Some(a) = act {
                    // SAFETY: the threads are done; this is the only reference.
                    scalar::activate(a, unsafe { out.slice(0..t * n_out) });
                }
            }
            Weight::Int8(p) => {
                let (kp, nb) = (p.kp, p.kp / QBLOCK);
                quantize_activations(ex, x, t, n_in, kp, &mut w.xq, &mut w.xs);
                let (xq, xs) = (&w.xq[..t * kp], &w.xs[..t * nb]);
                ex.pool
                    .run(&|ti, tn| self.int8_share(bytes, p, xq, xs, t, &out, act, ti, tn, &ex.k));
            }
        }
    }

    /// Several layers over one input (query, key and value): quantized once, and all their
    /// panels in one run of the pool (one wait instead of three). The same bits as one
    /// `forward` each.
    pub fn forward_same_input<const N: usize>(
        layers: [&Linear; N],
        bytes: &[u8],
        x: &[f32],
        t: usize,
        outs: [&mut [f32]; N],
        w: &mut Work,
        ex: &Exec<'_>,
    ) {
        let packed = layers.map(|l| match l.w {
            Weight::Int8(p) if p.kp == layers[0].kp() && l.cols == layers[0].cols => Some(p),
            _ => None,
        });
        if packed.iter().any(Option::is_none) {
            for (l, out) in layers.into_iter().zip(outs) {
                l.forward(bytes, x, t, out, None, w, ex);
            }
            return;
        }
        let (kp, nb) = (layers[0].kp(), layers[0].kp() / QBLOCK);
        quantize_activations(ex, x, t, layers[0].cols, kp, &mut w.xq, &mut w.xs);
        let (xq, xs) = (&w.xq[..t * kp], &w.xs[..t * nb]);
        let mut widths = layers.iter().map(|l| l.rows);
        let outs = outs.map(|o| SharedMut::new(&mut o[..t * widths.next().expect("N layers")]));
        ex.pool.run(&|ti, tn| {
            for ((l, p), out) in layers.iter().zip(&packed).zip(&outs) {
                let p = p.expect("checked above");
                l.int8_share(bytes, p, xq, xs, t, out, None, ti, tn, &ex.k);
            }
        });
    }

    /// Thread `ti` of `tn`'s share of an int8 layer: its panels of `out` (`[t, rows]`) from the
    /// quantized input `xq`/`xs`, then `act`.
    #[allow(clippy::too_many_arguments)]
    fn int8_share(
        &self,
        bytes: &[u8],
        p: PackedRef,
        xq: &[i8],
        xs: &[f32],
        t: usize,
        out: &SharedMut<f32>,
        act: Option<Activation>,
        ti: usize,
        tn: usize,
        k: &Kernels,
    ) {
        let (n_out, kp, nb) = (self.rows, p.kp, p.kp / QBLOCK);
        let b = self.b.map(|b| b.view(bytes));
        let ws = p.scales.view(bytes);
        let (gemm, gemm4) = (k.gemm_i8_panel, k.gemm_i8_panel4);
        // Dequantize, add the bias, activate and store rows r0..r0+m of one panel:
        // whole panels by the tier's kernel, the last narrower one here (the same
        // operations as scalar::panel_epilogue, on fewer columns).
        let fused = matches!(act, None | Some(Activation::Gelu));
        let epilogue = |panel: usize, r0: usize, m: usize, acc: &mut [[f32; NR]; MR]| {
            let o0 = panel * NR;
            if o0 >= n_out {
                return; // the padding of an interleaved layout
            }
            let cols = NR.min(n_out - o0);
            let (wsp, bp) = (&ws[o0..o0 + cols], b.map(|b| &b[o0..o0 + cols]));
            if cols == NR && fused {
                let wsp: &[f32; NR] = wsp.try_into().expect("NR scales");
                let bp: Option<&[f32; NR]> = bp.map(|b| b.try_into().expect("NR biases"));
                (k.panel_epilogue)(acc, m, wsp, bp, act.is_some());
                for (r, y) in acc.iter().enumerate().take(m) {
                    let at = (r0 + r) * n_out + o0;
                    // SAFETY: columns o0..o0+NR belong to this thread's panels.
                    unsafe { out.slice(at..at + NR) }.copy_from_slice(y);
                }
                return;
            }
            for (r, a) in acc.iter().enumerate().take(m) {
                let mut y = [0f32; NR];
                let y = &mut y[..cols];
                for ((yj, aj), wj) in y.iter_mut().zip(a).zip(wsp) {
                    *yj = aj * wj;
                }
                if let Some(bp) = bp {
                    for (yj, bj) in y.iter_mut().zip(bp) {
                        *yj += bj;
                    }
                }
                match act {
                    Some(Activation::Gelu) => scalar::gelu_fast(y),
                    Some(a) => scalar::activate(a, y),
                    None => {}
                }
                let at = (r0 + r) * n_out + o0;
                // SAFETY: columns o0..o0+cols belong to this thread's panels.
                unsafe { out.slice(at..at + cols) }.copy_from_slice(y);
            }
        };
        let mut acc = [[0f32; NR]; MR];
        // Whole interleaved sets per thread, so that a pass of four starts on one.
        let il = p.interleave;
        let sets = share(p.panels / il, ti, tn);
        let mine = sets.start * il..sets.end * il;
        let mut panel = mine.start;
        while panel < mine.end {
            // Four whole panels with a fused epilogue per pass where the tier has a kernel for
            // it: all rows in one call, written straight into the output.
            let o = panel * NR..(panel + 4) * NR;
            if let Some(gemm4) = gemm4.filter(|_| panel + 4 <= mine.end && fused && o.end <= n_out)
            {
                let pw = [0, 1, 2, 3].map(|i| p.panel(bytes, panel + i));
                let epi = Epilogue4 {
                    scales: ws[o.clone()].try_into().expect("4·NR scales"),
                    bias: b.map(|b| b[o.clone()].try_into().expect("4·NR biases")),
                    gelu: act.is_some(),
                };
                // The next four panels' weights (12-48 kB, first read from memory) while
                // these run over every row.
                if panel + 8 <= mine.end {
                    let next = p.panel(bytes, panel + 4).w;
                    for line in next[..(kp * NR * 4).min(next.len())].chunks(64) {
                        kernels::prefetch(line.as_ptr().cast());
                    }
                }
                // SAFETY: columns o of every row belong to this thread's panels.
                let tile = unsafe { out.tile(o.start, t, n_out) };
                gemm4(xq, xs, kp, pw, Some(epi), tile);
                panel += 4;
            } else {
                let pw = p.panel(bytes, panel);
                for r0 in (0..t).step_by(MR) {
                    let m = MR.min(t - r0);
                    gemm(&xq[r0 * kp..], &xs[r0 * nb..], m, kp, pw, &mut acc);
                    epilogue(panel, r0, m, &mut acc);
                }
                panel += 1;
            }
        }
    }

    fn kp(&self) -> usize {
        match self.w {
            Weight::Int8(p) => p.kp,
            Weight::Float(_) => 0,
        }
    }
}

/// `nn.LayerNorm` with its weight and bias.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerNorm {
    gamma: VecRef,
    beta: VecRef,
    eps: f32,
}

impl LayerNorm {
    fn resolve(f: &ModelFile, prefix: &str, n: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            gamma: VecRef::resolve(f, &format!("{prefix}.weight"), n)?,
            beta: VecRef::resolve(f, &format!("{prefix}.bias"), n)?,
            eps: eps as f32,
        })
    }

    /// Normalizes each of the `[t, n]` rows of `x` in place.
    /// `LayerNorm(x + residual)` in place, row by row, the rows split across the threads.
    fn forward(&self, bytes: &[u8], x: &mut [f32], residual: Option<&[f32]>, ex: &Exec<'_>) {
        let (g, b) = (self.gamma.view(bytes), self.beta.view(bytes));
        let n = self.gamma.len;
        let rows = x.len() / n;
        let x = SharedMut::new(x);
        ex.pool.run(&|ti, tn| {
            let mine = share(rows, ti, tn);
            // SAFETY: rows are split between the threads.
            let part = unsafe { x.slice(mine.start * n..mine.end * n) };
            let res = residual.map(|r| &r[mine.start * n..mine.end * n]);
            (ex.k.layer_norm_rows_f32)(part, res, g, b, self.eps);
        });
    }
}

/// `DebertaV2Embeddings`.
#[derive(Debug)]
pub(crate) struct Embeddings {
    word: MatRef,
    position: Option<MatRef>,
    token_type: Option<MatRef>,
    embed_proj: Option<Linear>,
    norm: LayerNorm,
}

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
}

/// `DebertaV2Layer`: attention, `DebertaV2Intermediate`, `DebertaV2Output`.
#[derive(Debug)]
pub(crate) struct Layer {
    attention: Attention,
    intermediate: Linear,
    output: Linear,
    norm: LayerNorm,
}

/// `ContextPooler` + the classifier `nn.Linear`.
#[derive(Debug)]
pub(crate) struct Head {
    pooler: Linear,
    classifier: Linear,
}

/// `DebertaV2ForSequenceClassification` (or the bare `DebertaV2Model` when `head` is `None`).
#[derive(Debug)]
pub(crate) struct Network {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    /// `rel_pos_index[(i - j) + max_len - 1]`: row of `rel_key`/`rel_query` for distance i - j.
    rel_pos_index: Option<(usize, usize)>,
    /// The longest sequence whose distances all fall in linear buckets (consecutive relative
    /// rows).
    rel_linear_len: usize,
    pub head: Option<Head>,
}

/// Scratch buffers for one sequence of up to `max_len` tokens, owned by a session.
pub(crate) struct Scratch {
    pub hidden: Vec<f32>,
    emb: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    ctx: Vec<f32>,
    attn_out: Vec<f32>,
    inter: Vec<f32>,
    /// Per thread (`attn_stride` floats each): one head's transposed keys and f32 relative
    /// projections, its p2c table, four score rows, four shifted windows, four context rows,
    /// then the int8 attention's scales and products ([`AttnInt8Sizes::f32s`]). Allocated
    /// for both attentions; a model touches only its own part.
    attn: Vec<f32>,
    attn_stride: usize,
    /// Per thread (`attn_i8_stride` bytes each), for the int8 attention: one head's quantized
    /// queries and keys.
    attn_i8: Vec<i8>,
    attn_i8_stride: usize,
    int8: AttnInt8Sizes,
    pooled: Vec<f32>,
    work: Work,
}

/// Sizes of one thread's int8-attention buffers for sequences of up to `len` tokens.
#[derive(Debug, Clone, Copy)]
struct AttnInt8Sizes {
    len: usize,
    /// Head width rounded up to whole quantization blocks.
    kp: usize,
    /// Widest run of relative rows a head's c2p/p2c products cover.
    rel: usize,
}

impl AttnInt8Sizes {
    fn new(c: &Config, len: usize) -> AttnInt8Sizes {
        AttnInt8Sizes {
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

impl Scratch {
    /// The buffers of a session for sequences of up to `max_len` tokens on `threads` threads,
    /// from `buf` (which may be a dry run that only counts their bytes). Sizes come from a
    /// validated config; products are checked all the same (32-bit targets).
    pub fn new(
        c: &Config,
        net: &Network,
        max_len: usize,
        threads: usize,
        buf: &mut Buffers,
    ) -> Result<Scratch> {
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
        let d = c.attention_head_size;
        // Per thread: keys and both relative projections transposed, the p2c table, four score
        // rows, four shifted c2p/p2c windows, four context rows; the int8 attention's part.
        let int8 = AttnInt8Sizes::new(c, max_len);
        let what = "attention scratch";
        let attn_stride = sum(
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
        Ok(Scratch {
            hidden: buf.zeroed(rows(h, "hidden states")?, "hidden states")?,
            emb: buf.zeroed(rows(c.embedding_size, "embeddings")?, "embeddings")?,
            q: buf.zeroed(rows(ah, "queries")?, "queries")?,
            k: buf.zeroed(rows(ah, "keys")?, "keys")?,
            v: buf.zeroed(rows(ah, "values")?, "values")?,
            ctx: buf.zeroed(rows(ah, "attention context")?, "attention context")?,
            attn_out: buf.zeroed(rows(h, "attention output")?, "attention output")?,
            inter: buf.zeroed(
                rows(c.intermediate_size, "feed-forward activations")?,
                "feed-forward activations",
            )?,
            attn: buf.zeroed(product(&[attn_stride, threads], what)?, what)?,
            attn_stride,
            attn_i8: buf.zeroed(
                product(&[int8.i8s()?, threads], "int8 attention scratch")?,
                "int8 attention scratch",
            )?,
            attn_i8_stride: int8.i8s()?,
            int8,
            pooled: buf.zeroed(c.pooler_hidden_size, "pooler output")?,
            work: Work {
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
            },
        })
    }
}

impl Network {
    /// Finds and checks every tensor the forward pass reads.
    pub fn resolve(f: &ModelFile, c: &Config) -> Result<Network> {
        let (h, e, ah) = (c.hidden_size, c.embedding_size, c.all_head_size());
        let eps = c.layer_norm_eps;
        let embeddings = Embeddings {
            word: MatRef::resolve(
                f,
                "deberta.embeddings.word_embeddings.weight",
                c.vocab_size,
                e,
            )?,
            position: match c.position_biased_input {
                true => Some(MatRef::resolve(
                    f,
                    "deberta.embeddings.position_embeddings.weight",
                    c.max_position_embeddings,
                    e,
                )?),
                false => None,
            },
            token_type: match c.type_vocab_size {
                0 => None,
                n => Some(MatRef::resolve(
                    f,
                    "deberta.embeddings.token_type_embeddings.weight",
                    n,
                    e,
                )?),
            },
            embed_proj: match e != h {
                true => Some(Linear::resolve(
                    f,
                    "deberta.embeddings.embed_proj",
                    h,
                    e,
                    false,
                )?),
                false => None,
            },
            norm: LayerNorm::resolve(f, "deberta.embeddings.LayerNorm", h, eps)?,
        };
        let rel_rows = 2 * c.att_span();
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let p = format!("deberta.encoder.layer.{l}");
            let rel = |on: bool, what: &str| -> Result<Option<RelProjection>> {
                if !(c.relative_attention && on) {
                    return Ok(None);
                }
                let name = format!("{p}.attention.self.{what}");
                let (heads, d) = (c.num_attention_heads, c.attention_head_size);
                if let Some(packed) = PackedRef::resolve(f, &name, heads * rel_rows, d)? {
                    // Each head's rows must start on a panel.
                    if !rel_rows.is_multiple_of(NR) {
                        return Err(Error::BadMetadata {
                            key: name,
                            reason: format!(
                                "int8 relative rows per head ({rel_rows}) not a multiple of {NR}"
                            ),
                        });
                    }
                    return Ok(Some(RelProjection::Int8(packed)));
                }
                Ok(Some(RelProjection::Float(MatRef::resolve(
                    f, &name, rel_rows, ah,
                )?)))
            };
            let (rel_key, rel_query) = (
                rel(c.pos_att.c2p, "rel_pos_key")?,
                rel(c.pos_att.p2c, "rel_pos_query")?,
            );
            // The attention takes both as floats or both as int8 (see `Attention::forward`).
            if let (Some(k), Some(q)) = (rel_key, rel_query) {
                if k.int8().is_some() != q.int8().is_some() {
                    return Err(Error::BadMetadata {
                        key: format!("{p}.attention.self.rel_pos_query"),
                        reason: "stored as int8 and float: one relative projection each".into(),
                    });
                }
            }
            layers.push(Layer {
                attention: Attention {
                    query: Linear::resolve(
                        f,
                        &format!("{p}.attention.self.query_proj"),
                        ah,
                        h,
                        true,
                    )?,
                    key: Linear::resolve(f, &format!("{p}.attention.self.key_proj"), ah, h, true)?,
                    value: Linear::resolve(
                        f,
                        &format!("{p}.attention.self.value_proj"),
                        ah,
                        h,
                        true,
                    )?,
                    rel_key,
                    rel_query,
                    output: Linear::resolve(
                        f,
                        &format!("{p}.attention.output.dense"),
                        h,
                        ah,
                        true,
                    )?,
                    norm: LayerNorm::resolve(
                        f,
                        &format!("{p}.attention.output.LayerNorm"),
                        h,
                        eps,
                    )?,
                },
                intermediate: Linear::resolve(
                    f,
                    &format!("{p}.intermediate.dense"),
                    c.intermediate_size,
                    h,
                    true,
                )?,
                output: Linear::resolve(
                    f,
                    &format!("{p}.output.dense"),
                    h,
                    c.intermediate_size,
                    true,
                )?,
                norm: LayerNorm::resolve(f, &format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        let rel_pos_index = if c.relative_attention {
            let name = "deberta.encoder.rel_pos_index";
            let v = f.tensor(name)?;
            let n = 2 * c.max_position_embeddings - 1;
            let idx = v.i32()?;
            if v.record.shape != [n as u64] {
                return Err(Error::TensorShape {
                    name: name.into(),
                    expected: vec![n as u64],
                    actual: v.record.shape.clone(),
                    dtype: "i32",
                });
            }
            // Every entry indexes the relative projections: check once, index freely later.
            if idx.iter().any(|&i| i < 0 || i as usize >= rel_rows) {
                return Err(Error::BadMetadata {
                    key: name.into(),
                    reason: "index out of range".into(),
                });
            }
            // Buckets grow with the distance (Hugging Face's log buckets, clamped), and the
            // int8 attention relies on it: a sequence's relative rows are those between the
            // entries of its extreme distances (`Int8Rel::new`).
            if let Some(at) = idx.windows(2).position(|w| w[0] > w[1]) {
                return Err(Error::BadMetadata {
                    key: name.into(),
                    reason: format!(
                        "entries {at} and {} decrease: not a relative-position index",
                        at + 1
                    ),
                });
            }
            Some((
                v.record.offset as usize,
                n,
                linear_len(idx, c.max_position_embeddings),
            ))
        } else {
            None
        };
        let rel_linear_len = rel_pos_index.map_or(0, |(_, _, l)| l);
        let rel_pos_index = rel_pos_index.map(|(o, n, _)| (o, n));
        let head = match c.num_labels {
            0 => None,
            n => Some(Head {
                pooler: Linear::resolve(f, "pooler.dense", c.pooler_hidden_size, h, true)?,
                classifier: Linear::resolve(f, "classifier", n, c.pooler_hidden_size, true)?,
            }),
        };
        Ok(Network {
            embeddings,
            layers,
            rel_pos_index,
            rel_linear_len,
            head,
        })
    }

    /// Widest quantized input row of any int8 layer (0 without int8 layers).
    fn max_kp(&self) -> usize {
        let mut kp = self.embeddings.embed_proj.map_or(0, |l| l.kp());
        for l in &self.layers {
            let a = &l.attention;
            for lin in [
                &a.query,
                &a.key,
                &a.value,
                &a.output,
                &l.intermediate,
                &l.output,
            ] {
                kp = kp.max(lin.kp());
            }
        }
        if let Some(h) = &self.head {
            kp = kp.max(h.pooler.kp()).max(h.classifier.kp());
        }
        kp
    }

    /// Runs the encoder over one sequence; the last hidden state is left in `s.hidden[..t*H]`
    /// (with [`Rows::First`], only its first row: the last layer computes keys and values for
    /// every token but queries, attention output and feed-forward for `[CLS]` alone, which is
    /// all the pooler reads; the row is the same bits as with [`Rows::All`]). Ids were checked
    /// against the vocabulary and token types by the caller.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        bytes: &[u8],
        c: &Config,
        ids: &[u32],
        types: Option<&[u32]>,
        rows: Rows,
        s: &mut Scratch,
        ex: &Exec<'_>,
    ) {
        let t = ids.len();
        let (h, e) = (c.hidden_size, c.embedding_size);
        // DebertaV2Embeddings
        let emb = &self.embeddings;
        let word = emb.word.view(bytes);
        let pos = emb.position.map(|m| m.view(bytes));
        let typ = emb.token_type.map(|m| m.view(bytes));
        let row = &mut s.work.row[..s.work.widest];
        let target = if emb.embed_proj.is_some() {
            &mut s.emb[..t * e]
        } else {
            &mut s.hidden[..t * h]
        };
        for (i, out) in target.chunks_exact_mut(e).enumerate() {
            out.copy_from_slice(word.row(ids[i] as usize, e, row));
            if let Some(p) = &pos {
                scalar::axpy(1.0, p.row(i, e, row), out);
            }
            if let (Some(tt), Some(types)) = (&typ, types) {
                scalar::axpy(1.0, tt.row(types[i] as usize, e, row), out);
            }
        }
        if let Some(proj) = &emb.embed_proj {
            proj.forward(
                bytes,
                &s.emb[..t * e],
                t,
                &mut s.hidden[..t * h],
                None,
                &mut s.work,
                ex,
            );
        }
        emb.norm.forward(bytes, &mut s.hidden[..t * h], None, ex);
        // DebertaV2Encoder
        for (i, layer) in self.layers.iter().enumerate() {
            let last = i + 1 == self.layers.len();
            let rows = if last && rows == Rows::First { 1 } else { t };
            layer.forward(self, bytes, c, t, rows, s, ex);
        }
    }

    /// ContextPooler + classifier over the `[CLS]` row of `s.hidden`.
    pub fn classify(
        &self,
        bytes: &[u8],
        c: &Config,
        s: &mut Scratch,
        logits: &mut [f32],
        ex: &Exec<'_>,
    ) -> Result<()> {
        let head = self
            .head
            .as_ref()
            .ok_or_else(|| Error::Unsupported("the model has no classification head".into()))?;
        let h = c.hidden_size;
        head.pooler.forward(
            bytes,
            &s.hidden[..h],
            1,
            &mut s.pooled,
            Some(c.pooler_hidden_act),
            &mut s.work,
            ex,
        );
        head.classifier
            .forward(bytes, &s.pooled, 1, logits, None, &mut s.work, ex);
        Ok(())
    }

    fn rel_index<'a>(&self, bytes: &'a [u8]) -> &'a [i32] {
        match self.rel_pos_index {
            Some((off, n)) => bytemuck::cast_slice(&bytes[off..off + 4 * n]),
            None => &[],
        }
    }
}

/// The longest `t` for which `index[max_len - t..max_len + t - 1]` (distances -(t-1)..t-1)
/// are consecutive rows.
fn linear_len(index: &[i32], max_len: usize) -> usize {
    let center = max_len - 1;
    let mut t = 1;
    while t < max_len
        && index[center - t] + 1 == index[center - t + 1]
        && index[center + t] == index[center + t - 1] + 1
    {
        t += 1;
    }
    t
}

/// The tier's activation quantization of `t` rows of `k` inputs into rows of `kp` codes, the
/// rows split across the threads (each row's codes and scales are its own: the same bits).
fn quantize_activations(
    ex: &Exec<'_>,
    x: &[f32],
    t: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    let nb = kp / QBLOCK;
    let (q, scales) = (
        SharedMut::new(&mut q[..t * kp]),
        SharedMut::new(&mut scales[..t * nb]),
    );
    ex.pool.run(&|ti, tn| {
        let rows = share(t, ti, tn);
        // SAFETY: rows are split between the threads.
        let (qr, sr) = unsafe {
            (
                q.slice(rows.start * kp..rows.end * kp),
                scales.slice(rows.start * nb..rows.end * nb),
            )
        };
        let xr = &x[rows.start * k..rows.end * k];
        (ex.k.quantize_blocks)(xr, rows.len(), k, kp, qr, sr);
    });
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

/// `dst[dd·n + m]` = column `h0 + dd` of row `row_of(m)` of a relative projection (`ah`
/// columns), for `m < n`, `dd < d`: in place when it is stored f32, else one widened row at a
/// time through `scratch`.
fn transpose_rel(
    k: &Kernels,
    m: &Matrix<'_>,
    row_of: impl Fn(usize) -> usize,
    n: usize,
    (ah, h0, d): (usize, usize, usize),
    dst: &mut [f32],
    scratch: &mut [f32],
) {
    if let Matrix::F32(data) = m {
        let at = |i: usize| row_of(i) * ah + h0;
        transpose_rows(k, n, d, dst, n, |i| &data[at(i)..at(i) + d]);
        return;
    }
    for i in 0..n {
        let src = &m.row(row_of(i), ah, scratch)[h0..h0 + d];
        for (dd, &v) in src.iter().enumerate() {
            dst[dd * n + i] = v;
        }
    }
}

/// Prefetches `d` values at `at(m)` of a relative projection for each relative row `m` of
/// `rows` (f32 storage; other storage is widened row by row and not worth it).
fn prefetch_rel(
    m: &Matrix<'_>,
    rows: std::ops::Range<usize>,
    at: impl Fn(usize) -> usize,
    d: usize,
) {
    if let Matrix::F32(data) = m {
        for row in rows {
            let span = &data[at(row)..at(row) + d];
            for line in span.chunks(16) {
                kernels::prefetch(line.as_ptr().cast());
            }
        }
    }
}

/// A layer's int8 relative projections (see [`RelProjection::Int8`]) and what of them a
/// sequence of `t` tokens reads.
struct Int8Rel {
    key: Option<PackedRef>,
    query: Option<PackedRef>,
    /// Relative rows per head (2 * att_span).
    rows: usize,
    /// First panel (within a head) of the relative rows in use, and their panel count.
    first: usize,
    panels: usize,
    /// Whether this sequence's relative rows are consecutive (see `Network::rel_linear_len`).
    linear: bool,
}

impl Int8Rel {
    /// The relative rows `t` tokens read, as whole panels starting on an interleaved pair (so
    /// that the four-panel kernel takes them). The index grows with the distance (checked at
    /// open), so those rows lie between the entries of distances -(t-1) and t-1.
    fn new(
        key: Option<PackedRef>,
        query: Option<PackedRef>,
        rows: usize,
        t: usize,
        linear: bool,
        rel_index: &impl Fn(usize) -> usize,
    ) -> Int8Rel {
        let (lo, hi) = (rel_index(0), rel_index(2 * t - 2) + 1);
        let first = lo / NR / 2 * 2;
        let end = hi.div_ceil(NR).next_multiple_of(2).min(rows / NR);
        Int8Rel {
            key,
            query,
            rows,
            first,
            panels: end - first,
            linear,
        }
    }

    /// How a query's terms are read from the products (see [`AttnInt8Scratch::scores_row`]).
    fn window(&self) -> RelWindow {
        RelWindow {
            c2p: self.key.is_some(),
            p2c: self.query.is_some(),
            linear: self.linear,
            row0: self.first * NR,
            width: self.panels * NR,
        }
    }
}

/// The c2p and p2c products' columns: relative rows `row0..row0 + width` of a head; which
/// terms there are, and whether the rows a query reads are consecutive.
#[derive(Debug, Clone, Copy)]
struct RelWindow {
    c2p: bool,
    p2c: bool,
    linear: bool,
    row0: usize,
    width: usize,
}

/// One thread's int8-attention buffers for `t` tokens, carved from its scratch.
struct AttnInt8Scratch<'a> {
    kp: usize,
    q_codes: &'a mut [i8],
    q_scales: &'a mut [f32],
    k_codes: &'a mut [i8],
    k_scales: &'a mut [f32],
    /// `[rows][t]` q·k, `[rows][width]` q·rel_k and `[t][width]` k·rel_q (see [`RelWindow`]).
    qk: &'a mut [f32],
    c2p: &'a mut [f32],
    p2c: &'a mut [f32],
    /// `[rows][t]`: the p2c terms of each query in key order (see `gather_p2c`).
    p2c_by_query: &'a mut [f32],
}

impl<'a> AttnInt8Scratch<'a> {
    fn carve(sizes: AttnInt8Sizes, t: usize, f: &'a mut [f32], b: &'a mut [i8]) -> Self {
        let (kp, nb) = (sizes.kp, sizes.kp / QBLOCK);
        let (q_scales, f) = f.split_at_mut(t * nb);
        let (k_scales, f) = f.split_at_mut(t * nb);
        let (qk, f) = f.split_at_mut(t * t);
        let (c2p, f) = f.split_at_mut(t * sizes.rel);
        let (p2c, f) = f.split_at_mut(t * sizes.rel);
        let p2c_by_query = &mut f[..t * t];
        let (q_codes, b) = b.split_at_mut(t * kp);
        let k_codes = &mut b[..t * kp];
        AttnInt8Scratch {
            kp,
            q_codes,
            q_scales,
            k_codes,
            k_scales,
            qk,
            c2p,
            p2c,
            p2c_by_query,
        }
    }

    /// When the relative rows are consecutive, each query's p2c terms (row j, column
    /// `last_0 + i - j`: an anti-diagonal, one cache line per key) gathered once per head into
    /// `p2c_by_query[i][j]` by 8×8 transposes of the skewed rows, so that `scores_row` adds a
    /// contiguous row. `last_0` is query 0's column for key 0.
    fn gather_p2c(&mut self, k: &Kernels, w: RelWindow, rows: usize, t: usize, last_0: usize) {
        debug_assert!(
            w.linear && w.p2c,
            "called for consecutive rows with p2c only"
        );
        let (p2c, ld) = (&*self.p2c, w.width);
        let skewed = |j: usize| &p2c[j * ld + last_0 - j..j * ld + last_0 - j + rows];
        transpose_rows(k, t, rows, self.p2c_by_query, t, skewed);
    }

    /// Query `i`'s `t` unscaled scores: (q·k + c2p) + p2c, the f32 attention's order.
    fn scores_row(
        &self,
        w: RelWindow,
        i: usize,
        t: usize,
        rel_index: &impl Fn(usize) -> usize,
        row: &mut [f32],
    ) {
        let ld = w.width;
        row.copy_from_slice(&self.qk[i * t..(i + 1) * t]);
        // Key j reads relative row index((i - j) + t - 1) - row0: when the rows are
        // consecutive, that is `last - j` for the row of j = 0.
        if w.linear {
            let last = rel_index(i + t - 1) - w.row0;
            if w.c2p {
                let c2p = &self.c2p[i * ld + last + 1 - t..i * ld + last + 1];
                for (sj, cj) in row.iter_mut().zip(c2p.iter().rev()) {
                    *sj += cj;
                }
            }
            if w.p2c {
                // Row j, column last - j, gathered by `gather_p2c`.
                for (sj, pj) in row.iter_mut().zip(&self.p2c_by_query[i * t..(i + 1) * t]) {
                    *sj += pj;
                }
            }
            return;
        }
        let at = |j: usize| rel_index(i + t - 1 - j) - w.row0;
        if w.c2p {
            let c2p = &self.c2p[i * ld..(i + 1) * ld];
            for (j, sj) in row.iter_mut().enumerate() {
                *sj += c2p[at(j)];
            }
        }
        if w.p2c {
            for (j, sj) in row.iter_mut().enumerate() {
                *sj += self.p2c[j * ld + at(j)];
            }
        }
    }
}

/// One head's score products into `sc`: q·k in f32; the queries and keys quantized as
/// activations, then q·rel_k and k·rel_q on the int8 GEMM kernels against the file's int8
/// relative rows, over the rows in use only (`last_0`: query 0's column for key 0 when the
/// rows are consecutive; then the p2c terms are also gathered by query for `scores_row`). `stage` holds `t` rows of `d` floats.
#[allow(clippy::too_many_arguments)]
fn int8_head(
    k: &Kernels,
    bytes: &[u8],
    rel: &Int8Rel,
    head: usize,
    (q, keys, h0, ah, d): (&[f32], &[f32], usize, usize, usize),
    rows: usize,
    t: usize,
    last_0: Option<usize>,
    stage: &mut [f32],
    sc: &mut AttnInt8Scratch<'_>,
) {
    let (kp, nb) = (sc.kp, sc.kp / QBLOCK);
    let key = |j: usize| &keys[j * ah + h0..j * ah + h0 + d];
    // q·k in f32 (int8 keys measurably cost agreement; the relative terms do not): the
    // keys transposed, four queries at a time.
    transpose_rows(k, t, d, stage, t, key);
    for i0 in (0..rows).step_by(4) {
        let m = 4.min(rows - i0);
        let qa = rows_of(q, i0, m, ah, h0..h0 + d);
        (k.row_panel4_f32)(
            qa,
            m,
            &stage[..d * t],
            t,
            &mut sc.qk[i0 * t..(i0 + m) * t],
            t,
        );
    }
    for i in 0..rows {
        stage[i * d..(i + 1) * d].copy_from_slice(&q[i * ah + h0..i * ah + h0 + d]);
    }
    (k.quantize_blocks)(&stage[..rows * d], rows, d, kp, sc.q_codes, sc.q_scales);
    let (qc, qs) = (&sc.q_codes[..rows * kp], &sc.q_scales[..rows * nb]);
    let (base, panels) = (head * rel.rows / NR + rel.first, rel.panels);
    let ld = panels * NR;
    // Rows r0..r1 of `x` times this head's relative rows in use, into the same rows of `out`:
    // all of them, or (when the rows are consecutive) the panels that hold `cols(r0, r1)`,
    // from an interleaved pair on and in whole passes of four where they fit.
    let product = |proj: &PackedRef,
                   (x, xs): (&[i8], &[f32]),
                   (r0, r1): (usize, usize),
                   cols: Option<Range<usize>>,
                   out: &mut [f32]| {
        let (pf, np) = match cols {
            Some(c) => {
                let pf = c.start / NR / 2 * 2;
                let np = (c.end.div_ceil(NR) - pf)
                    .next_multiple_of(4)
                    .min(panels - pf);
                (pf, np)
            }
            None => (0, panels),
        };
        let ws = &proj.scales.view(bytes)[(base + pf) * NR..];
        let panel = |p| proj.panel(bytes, base + pf + p);
        let (x, xs, m) = (&x[r0 * kp..], &xs[r0 * nb..], r1 - r0);
        let out = &mut out[r0 * ld + pf * NR..];
        int8_product(k, x, xs, m, kp, np, panel, ws, out, ld);
    };
    // Blocks of rows, each over the relative rows its terms read (query i reads columns
    // last_0 + i - j, j < t): 20-24 of 32 panels per block at 128 tokens.
    // (Otherwise one block: smaller calls over the same columns only cost.)
    let block = if last_0.is_some() {
        REL_PRODUCT_ROWS
    } else {
        t
    };
    if let Some(rk) = &rel.key {
        for r0 in (0..rows).step_by(block) {
            let r1 = (r0 + block).min(rows);
            let cols = last_0.map(|l| l + r0 + 1 - t..l + r1);
            product(rk, (qc, qs), (r0, r1), cols, sc.c2p);
        }
    }
    if let Some(rq) = &rel.query {
        for j in 0..t {
            stage[j * d..(j + 1) * d].copy_from_slice(key(j));
        }
        (k.quantize_blocks)(&stage[..t * d], t, d, kp, sc.k_codes, sc.k_scales);
        let (kc, ks) = (&sc.k_codes[..t * kp], &sc.k_scales[..t * nb]);
        for r0 in (0..t).step_by(block) {
            let r1 = (r0 + block).min(t);
            // Key j is read at columns last_0 + i - j for the queries i < rows.
            let cols = last_0.map(|l| l + 1 - r1..l + rows - r0);
            product(rq, (kc, ks), (r0, r1), cols, sc.p2c);
        }
        if let Some(l) = last_0 {
            sc.gather_p2c(k, rel.window(), rows, t, l);
        }
    }
}

/// Rows (queries or keys) per block of c2p / p2c products when the relative rows are
/// consecutive.
const REL_PRODUCT_ROWS: usize = 32;

/// `out[r·ld + o]` = the dequantized product of activation row `r` (`m` rows of `kp` codes)
/// and output `o` of `panels` packed panels (`scales` per output): the four-panel kernel
/// where the tier has one, else one panel at a time; the same bits either way.
#[allow(clippy::too_many_arguments)]
fn int8_product<'p>(
    k: &Kernels,
    xq: &[i8],
    xs: &[f32],
    m: usize,
    kp: usize,
    panels: usize,
    panel: impl Fn(usize) -> Panel<'p>,
    scales: &[f32],
    out: &mut [f32],
    ld: usize,
) {
    let nb = kp / QBLOCK;
    let mut p = 0;
    while p < panels {
        if let Some(gemm4) = k.gemm_i8_panel4.filter(|_| p + 4 <= panels) {
            let pw = [0, 1, 2, 3].map(|i| panel(p + i));
            let epi = Epilogue4 {
                scales: scales[p * NR..(p + 4) * NR]
                    .try_into()
                    .expect("4·NR scales"),
                bias: None,
                gelu: false,
            };
            gemm4(
                xq,
                xs,
                kp,
                pw,
                Some(epi),
                Tile::new(&mut out[p * NR..], m, ld),
            );
            p += 4;
        } else {
            let (pw, ws) = (panel(p), &scales[p * NR..(p + 1) * NR]);
            let ws: &[f32; NR] = ws.try_into().expect("NR scales");
            let mut acc = [[0f32; NR]; MR];
            for r0 in (0..m).step_by(MR) {
                let mm = MR.min(m - r0);
                (k.gemm_i8_panel)(&xq[r0 * kp..], &xs[r0 * nb..], mm, kp, pw, &mut acc);
                (k.panel_epilogue)(&mut acc, mm, ws, None, false);
                for (r, a) in acc.iter().enumerate().take(mm) {
                    out[(r0 + r) * ld + p * NR..][..NR].copy_from_slice(a);
                }
            }
            p += 1;
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

/// Which rows of the last hidden state an encoder run must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Every token's.
    All,
    /// The first token's (`[CLS]`), for the classification head.
    First,
}

impl Layer {
    /// Over `t` tokens, producing the first `rows` rows of the output (keys and values always
    /// cover all `t`).
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        net: &Network,
        bytes: &[u8],
        c: &Config,
        t: usize,
        rows: usize,
        s: &mut Scratch,
        ex: &Exec<'_>,
    ) {
        let h = c.hidden_size;
        self.attention.forward(net, bytes, c, t, rows, s, ex);
        // DebertaV2Intermediate (the activation fused into the linear layer)
        let inter = &mut s.inter[..rows * c.intermediate_size];
        self.intermediate.forward(
            bytes,
            &s.attn_out[..rows * h],
            rows,
            inter,
            Some(c.hidden_act),
            &mut s.work,
            ex,
        );
        // DebertaV2Output: LayerNorm(dense(x) + attention_output)
        let out = &mut s.hidden[..rows * h];
        self.output
            .forward(bytes, inter, rows, out, None, &mut s.work, ex);
        self.norm
            .forward(bytes, out, Some(&s.attn_out[..rows * h]), ex);
    }
}

impl Attention {
    /// Queries, scores and output for the first `rows` of `t` tokens.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        net: &Network,
        bytes: &[u8],
        c: &Config,
        t: usize,
        rows: usize,
        s: &mut Scratch,
        ex: &Exec<'_>,
    ) {
        let (h, ah, d) = (c.hidden_size, c.all_head_size(), c.attention_head_size);
        let x = &s.hidden[..t * h];
        if rows == t {
            let (q, k, v) = (&mut s.q[..t * ah], &mut s.k[..t * ah], &mut s.v[..t * ah]);
            let qkv = [&self.query, &self.key, &self.value];
            Linear::forward_same_input(qkv, bytes, x, t, [q, k, v], &mut s.work, ex);
        } else {
            let (k, v) = (&mut s.k[..t * ah], &mut s.v[..t * ah]);
            let kv = [&self.key, &self.value];
            Linear::forward_same_input(kv, bytes, x, t, [k, v], &mut s.work, ex);
            let q = &mut s.q[..rows * ah];
            self.query
                .forward(bytes, &x[..rows * h], rows, q, None, &mut s.work, ex);
        }

        // Relative projections for the 2t-1 distances that occur, read in place from the file
        // (f32; other storage widened into the thread's row) as rows indexed by
        // (i - j) + t - 1: never all 2 * att_span rows, and no copy of them.
        let index = net.rel_index(bytes);
        let max_len = c.max_position_embeddings;
        // Row (i - j) + t - 1 of a relative projection: distance index (i - j) + max_len - 1.
        let rel_index = |rr: usize| index[rr + max_len - t] as usize;
        let float_rel = |r: Option<RelProjection>| r.and_then(|r| r.float().map(|m| m.view(bytes)));
        let (rel_k, rel_q) = (float_rel(self.rel_key), float_rel(self.rel_query));
        // int8 relative projections: the scores run on the int8 GEMM (see `int8_head`).
        let int8_rel = |r: Option<RelProjection>| r.and_then(|r| r.int8().copied());
        let int8 = matches!(
            self.rel_key.or(self.rel_query),
            Some(RelProjection::Int8(_))
        )
        .then(|| {
            let (key, query) = (int8_rel(self.rel_key), int8_rel(self.rel_query));
            let linear = t <= net.rel_linear_len;
            Int8Rel::new(key, query, 2 * c.att_span(), t, linear, &rel_index)
        });
        let (sizes, i8_stride) = (s.int8, s.attn_i8_stride);
        let attn_i8 = SharedMut::new(&mut s.attn_i8);
        let widest = s.work.widest;
        let widened = SharedMut::new(&mut s.work.row);

        let scale = 1.0 / ((d * c.pos_att.scale_factor()) as f32).sqrt();
        let panel = ex.k.row_panel_f32;
        let (q, k, v) = (&s.q, &s.k, &s.v);
        let ctx = SharedMut::new(&mut s.ctx[..t * ah]);
        let per_thread = SharedMut::new(&mut s.attn);
        let stride = s.attn_stride;
        let r = 2 * t - 1; // relative rows in use
        let panel4 = ex.k.row_panel4_f32;
        // Heads are split across threads: each writes its own columns of the context.
        ex.pool.run(&|ti, tn| {
            // SAFETY: thread ti owns its own block of attention scratch.
            let mine = unsafe { per_thread.slice(ti * stride..(ti + 1) * stride) };
            let (kt, rest) = mine.split_at_mut(d * t);
            let (rkr, rest) = rest.split_at_mut(d * r);
            let (rq, rest) = rest.split_at_mut(d * r);
            let (p2ct, rest) = rest.split_at_mut(t * t);
            let (scores, rest) = rest.split_at_mut(4 * t);
            let (win, rest) = rest.split_at_mut(4 * (t + 3));
            let (ctx4, rest) = rest.split_at_mut(4 * d);
            // SAFETY: thread ti owns its own widened-row slot.
            let scratch = unsafe { widened.slice(ti * widest..(ti + 1) * widest) };
            // Rows i0..i0+m of a shifted relative product: row i (of a = q or k) takes columns
            // t-1-i.. of `m_t` ([d][r]). Four rows at once read one window of t + 3 columns
            // starting at t-4-i0; row i0+rr's part starts rr columns before the window's end
            // offset 3. `out(rr, values)` receives each row's t values.
            let shifted = |a: [&[f32]; 4],
                           i0: usize,
                           m: usize,
                           m_t: &[f32],
                           win: &mut [f32],
                           out: &mut dyn FnMut(usize, &[f32])| {
                if m == 4 {
                    let base = t - 4 - i0;
                    panel4(a, 4, &m_t[base..], r, &mut win[..4 * (t + 3)], t + 3);
                    for rr in 0..4 {
                        let at = rr * (t + 3) + 3 - rr;
                        out(rr, &win[at..at + t]);
                    }
                } else {
                    for (rr, &ar) in a.iter().enumerate().take(m) {
                        panel(ar, &m_t[t - 1 - (i0 + rr)..], r, &mut win[..t]);
                        out(rr, &win[..t]);
                    }
                }
            };
            let heads = share(c.num_attention_heads, ti, tn);
            // Score rows i0..i0+m of the head at column h0, unscaled: scaled, softmaxed, and
            // the probabilities times the head's values into the context.
            let attend = |i0: usize, m: usize, h0: usize, scores: &mut [f32], ctx4: &mut [f32]| {
                (ex.k.softmax_rows_f32)(&mut scores[..m * t], m, scale);
                let pa = rows_of(scores, 0, m, t, 0..t);
                panel4(pa, m, &v[h0..], ah, &mut ctx4[..m * d], d);
                for rr in 0..m {
                    let i = i0 + rr;
                    // SAFETY: columns h0..h0+d of row i belong to this thread's head.
                    unsafe { ctx.slice(i * ah + h0..i * ah + h0 + d) }
                        .copy_from_slice(&ctx4[rr * d..(rr + 1) * d]);
                }
            };
            // SAFETY: thread ti owns its own block of int8 attention scratch.
            let mine_i8 = unsafe { attn_i8.slice(ti * i8_stride..(ti + 1) * i8_stride) };
            let mut int8_scratch = AttnInt8Scratch::carve(sizes, t, rest, mine_i8);
            for head in heads.clone() {
                let h0 = head * d;
                if let Some(rel) = &int8 {
                    let scores = &mut scores[..4 * t];
                    let sc = &mut int8_scratch;
                    let qk = (&q[..], &k[..], h0, ah, d);
                    let w = rel.window();
                    let last_0 = w.linear.then(|| rel_index(t - 1) - w.row0);
                    int8_head(&ex.k, bytes, rel, head, qk, rows, t, last_0, kt, sc);
                    for i0 in (0..rows).step_by(4) {
                        let m = 4.min(rows - i0);
                        for rr in 0..m {
                            let row = &mut scores[rr * t..(rr + 1) * t];
                            sc.scores_row(rel.window(), i0 + rr, t, &rel_index, row);
                        }
                        attend(i0, m, h0, scores, ctx4);
                    }
                    continue;
                }
                // Keys and relative projections of this head, transposed so that a query's
                // scores against all keys are one row vector times a matrix (no reductions):
                // kt[dd][j] = k[j][dd]; rkr[dd][m] = rel_k[r-1-m][dd] (rows reversed, so the
                // c2p terms of query i are the contiguous columns t-1-i..2t-1-i);
                // rq[dd][m] = rel_q[m][dd] (the p2c terms of key j are columns t-1-j..2t-1-j).
                transpose_rows(&ex.k, t, d, kt, t, |j| &k[j * ah + h0..j * ah + h0 + d]);
                if let Some(rel_k) = &rel_k {
                    let m_row = |m| rel_index(r - 1 - m);
                    transpose_rel(&ex.k, rel_k, m_row, r, (ah, h0, d), rkr, scratch);
                }
                // Rows i0..i0+m of this head's columns of x ([t][ah]); unused slots repeat the
                // last row.
                let four = |x, i0, m| rows_of(x, i0, m, ah, h0..h0 + d);
                if let Some(rel_q) = &rel_q {
                    transpose_rel(&ex.k, rel_q, rel_index, r, (ah, h0, d), rq, scratch);
                    // p2ct[j][i] = k_j · rel_q[(i - j) + t - 1], four keys at a time.
                    for j0 in (0..t).step_by(4) {
                        let m = 4.min(t - j0);
                        shifted(four(k, j0, m), j0, m, rq, win, &mut |rr, vals| {
                            p2ct[(j0 + rr) * t..(j0 + rr + 1) * t].copy_from_slice(vals);
                        });
                    }
                }
                let blocks = rows.div_ceil(4);
                for i0 in (0..rows).step_by(4) {
                    // The next head's relative rows (~130 kB at 128 tokens, mostly from DRAM:
                    // the file's rows are 1.5 kB apart and each head reads 256 bytes of them),
                    // a share per block of queries so that they arrive while this head computes.
                    if head + 1 < heads.end {
                        let b = i0 / 4;
                        let share = b * r / blocks..(b + 1) * r / blocks;
                        for proj in [&rel_k, &rel_q].into_iter().flatten() {
                            prefetch_rel(proj, share.clone(), |m| rel_index(m) * ah + h0 + d, d);
                        }
                    }
                    let m = 4.min(rows - i0);
                    let qa = four(q, i0, m);
                    // score(i, j) = ((q_i·k_j + q_i·rel_k[i-j]) + k_j·rel_q[i-j]) · scale
                    panel4(qa, m, kt, t, &mut scores[..m * t], t);
                    if rel_k.is_some() {
                        shifted(qa, i0, m, rkr, win, &mut |rr, vals| {
                            for (sj, cj) in scores[rr * t..(rr + 1) * t].iter_mut().zip(vals) {
                                *sj += cj;
                            }
                        });
                    }
                    for rr in 0..m {
                        let i = i0 + rr;
                        let row = &mut scores[rr * t..(rr + 1) * t];
                        if rel_q.is_some() {
                            for (j, sj) in row.iter_mut().enumerate() {
                                *sj += p2ct[j * t + i];
                            }
                        }
                    }
                    attend(i0, m, h0, scores, ctx4);
                }
            }
        });
        // DebertaV2SelfOutput: LayerNorm(dense(context) + input)
        let out = &mut s.attn_out[..rows * h];
        self.output
            .forward(bytes, &s.ctx[..rows * ah], rows, out, None, &mut s.work, ex);
        self.norm
            .forward(bytes, out, Some(&s.hidden[..rows * h]), ex);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `scores_row`'s shortcut for consecutive relative rows (its p2c terms gathered per head
    /// by `gather_p2c`) reads what the index walk reads, with and without each term, for every
    /// query of lengths 1 to 40.
    #[test]
    fn scores_row_consecutive_rows_shortcut_matches_the_index_walk() {
        let mut seed = 12345u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for t in 1..40 {
            // Relative row of distance -(t - 1), in a window that starts at row 16.
            let (row0, first_row) = (16usize, 19usize);
            let width = (first_row - row0 + 2 * t - 1).next_multiple_of(16);
            let mut qk: Vec<f32> = (0..t * t).map(|_| next()).collect();
            let mut c2p: Vec<f32> = (0..t * width).map(|_| next()).collect();
            let mut p2c: Vec<f32> = (0..t * width).map(|_| next()).collect();
            let mut p2c_by_query = vec![f32::NAN; t * t];
            let mut sc = AttnInt8Scratch {
                kp: QBLOCK,
                q_codes: &mut [],
                q_scales: &mut [],
                k_codes: &mut [],
                k_scales: &mut [],
                qk: &mut qk,
                c2p: &mut c2p,
                p2c: &mut p2c,
                p2c_by_query: &mut p2c_by_query,
            };

            let rel_index = |rr: usize| first_row + rr;
            for (c2p, p2c) in [(true, true), (true, false), (false, true)] {
                let w = |linear| RelWindow {
                    c2p,
                    p2c,
                    linear,
                    row0,
                    width,
                };
                // The shortcut's p2c terms as the head gathers them: by every tier's 8×8
                // transposes (t ≥ 8) and the scalar remainder.
                for isa in crate::kernels::Isa::all_available() {
                    let k = Kernels::for_isa(isa).expect("an available tier");
                    sc.p2c_by_query.fill(f32::NAN);
                    if p2c {
                        sc.gather_p2c(&k, w(true), t, t, rel_index(t - 1) - row0);
                    }
                    for i in 0..t {
                        let (mut fast, mut walk) = (vec![0f32; t], vec![0f32; t]);
                        sc.scores_row(w(true), i, t, &rel_index, &mut fast);
                        sc.scores_row(w(false), i, t, &rel_index, &mut walk);
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        let at = format!("{isa:?} t={t} i={i} c2p={c2p} p2c={p2c}");
                        assert_eq!(bits(&fast), bits(&walk), "{at}");
                    }
                }
            }
        }
    }
}
