//! `DebertaV2ForSequenceClassification`, one struct per Hugging Face module, each naming the
//! class it mirrors in
//! <https://github.com/huggingface/transformers/blob/main/src/transformers/models/deberta_v2/modeling_deberta_v2.py>.
//! This is the plain f32 reference: every faster path is tested against it.
//!
//! Input-independent work happened in the converter: the relative embeddings were normalized and
//! projected through the key/query weights (`rel_pos_key`, `rel_pos_query`), and the bucketed
//! relative positions turned into an index table (`rel_pos_index`).

use super::config::Config;
use super::weights::{MatRef, VecRef};
use crate::error::{Error, Result};
use crate::format::ModelFile;
use crate::kernels::scalar;

/// `nn.Linear`: `y = x W^T + b`, with `W` stored `[out, in]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Linear {
    pub w: MatRef,
    pub b: Option<VecRef>,
}

impl Linear {
    fn resolve(f: &ModelFile, prefix: &str, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let w = MatRef::resolve(f, &format!("{prefix}.weight"), out, inp)?;
        let b = if bias {
            Some(VecRef::resolve(f, &format!("{prefix}.bias"), out)?)
        } else {
            None
        };
        Ok(Linear { w, b })
    }

    /// `x`: `[t, in]` → `out`: `[t, out]`. `scratch` holds one widened weight row.
    pub fn forward(&self, bytes: &[u8], x: &[f32], t: usize, out: &mut [f32], scratch: &mut [f32]) {
        let (n_out, n_in) = (self.w.rows, self.w.cols);
        let w = self.w.view(bytes);
        let b = self.b.map(|b| b.view(bytes));
        for o in 0..n_out {
            let row = w.row(o, n_in, scratch);
            let bias = b.map_or(0.0, |b| b[o]);
            for i in 0..t {
                out[i * n_out + o] = scalar::dot(&x[i * n_in..(i + 1) * n_in], row) + bias;
            }
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
    fn forward(&self, bytes: &[u8], x: &mut [f32]) {
        let (g, b) = (self.gamma.view(bytes), self.beta.view(bytes));
        for row in x.chunks_exact_mut(self.gamma.len) {
            scalar::layer_norm(row, g, b, self.eps);
        }
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
    /// `[2 * att_span, all_head]`: projected relative embeddings (c2p uses keys, p2c queries).
    rel_key: Option<MatRef>,
    rel_query: Option<MatRef>,
    output: Linear,
    norm: LayerNorm,
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
    scores: Vec<f32>,
    rel_k: Vec<f32>,
    rel_q: Vec<f32>,
    row: Vec<f32>,
    pooled: Vec<f32>,
}

impl Scratch {
    pub fn new(c: &Config, max_len: usize) -> Scratch {
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
        let rel_rows = 2 * max_len - 1;
        let rel = |on: bool| {
            if c.relative_attention && on {
                vec![0.0; rel_rows * ah]
            } else {
                Vec::new()
            }
        };
        Scratch {
            hidden: vec![0.0; max_len * h],
            emb: vec![0.0; max_len * c.embedding_size],
            q: vec![0.0; max_len * ah],
            k: vec![0.0; max_len * ah],
            v: vec![0.0; max_len * ah],
            ctx: vec![0.0; max_len * ah],
            attn_out: vec![0.0; max_len * h],
            inter: vec![0.0; max_len * c.intermediate_size],
            scores: vec![0.0; max_len],
            rel_k: rel(c.pos_att.c2p),
            rel_q: rel(c.pos_att.p2c),
            row: vec![0.0; widest],
            pooled: vec![0.0; c.pooler_hidden_size],
        }
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
            let rel = |on: bool, what: &str| -> Result<Option<MatRef>> {
                match c.relative_attention && on {
                    true => Ok(Some(MatRef::resolve(
                        f,
                        &format!("{p}.attention.self.{what}"),
                        rel_rows,
                        ah,
                    )?)),
                    false => Ok(None),
                }
            };
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
                    rel_key: rel(c.pos_att.c2p, "rel_pos_key")?,
                    rel_query: rel(c.pos_att.p2c, "rel_pos_query")?,
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
            Some((v.record.offset as usize, n))
        } else {
            None
        };
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
            head,
        })
    }

    /// Runs the encoder over one sequence; the last hidden state is left in `s.hidden[..t*H]`.
    /// Ids were checked against the vocabulary and token types by the caller.
    pub fn encode(
        &self,
        bytes: &[u8],
        c: &Config,
        ids: &[u32],
        types: Option<&[u32]>,
        s: &mut Scratch,
    ) {
        let t = ids.len();
        let (h, e) = (c.hidden_size, c.embedding_size);
        // DebertaV2Embeddings
        let emb = &self.embeddings;
        let word = emb.word.view(bytes);
        let pos = emb.position.map(|m| m.view(bytes));
        let typ = emb.token_type.map(|m| m.view(bytes));
        let target = if emb.embed_proj.is_some() {
            &mut s.emb[..t * e]
        } else {
            &mut s.hidden[..t * h]
        };
        for (i, out) in target.chunks_exact_mut(e).enumerate() {
            out.copy_from_slice(word.row(ids[i] as usize, e, &mut s.row));
            if let Some(p) = &pos {
                scalar::axpy(1.0, p.row(i, e, &mut s.row), out);
            }
            if let (Some(tt), Some(types)) = (&typ, types) {
                scalar::axpy(1.0, tt.row(types[i] as usize, e, &mut s.row), out);
            }
        }
        if let Some(proj) = &emb.embed_proj {
            proj.forward(
                bytes,
                &s.emb[..t * e],
                t,
                &mut s.hidden[..t * h],
                &mut s.row,
            );
        }
        emb.norm.forward(bytes, &mut s.hidden[..t * h]);
        // DebertaV2Encoder
        for layer in &self.layers {
            layer.forward(self, bytes, c, t, s);
        }
    }

    /// ContextPooler + classifier over the `[CLS]` row of `s.hidden`.
    pub fn classify(
        &self,
        bytes: &[u8],
        c: &Config,
        s: &mut Scratch,
        logits: &mut [f32],
    ) -> Result<()> {
        let head = self
            .head
            .as_ref()
            .ok_or_else(|| Error::Unsupported("the model has no classification head".into()))?;
        let h = c.hidden_size;
        head.pooler
            .forward(bytes, &s.hidden[..h], 1, &mut s.pooled, &mut s.row);
        scalar::activate(c.pooler_hidden_act, &mut s.pooled);
        head.classifier
            .forward(bytes, &s.pooled, 1, logits, &mut s.row);
        Ok(())
    }

    fn rel_index<'a>(&self, bytes: &'a [u8]) -> &'a [i32] {
        match self.rel_pos_index {
            Some((off, n)) => bytemuck::cast_slice(&bytes[off..off + 4 * n]),
            None => &[],
        }
    }
}

impl Layer {
    fn forward(&self, net: &Network, bytes: &[u8], c: &Config, t: usize, s: &mut Scratch) {
        let h = c.hidden_size;
        self.attention.forward(net, bytes, c, t, s);
        // DebertaV2Intermediate
        let inter = &mut s.inter[..t * c.intermediate_size];
        self.intermediate
            .forward(bytes, &s.attn_out[..t * h], t, inter, &mut s.row);
        scalar::activate(c.hidden_act, inter);
        // DebertaV2Output: LayerNorm(dense(x) + attention_output)
        let out = &mut s.hidden[..t * h];
        self.output.forward(bytes, inter, t, out, &mut s.row);
        for (o, r) in out.iter_mut().zip(&s.attn_out[..t * h]) {
            *o += r;
        }
        self.norm.forward(bytes, out);
    }
}

impl Attention {
    fn forward(&self, net: &Network, bytes: &[u8], c: &Config, t: usize, s: &mut Scratch) {
        let (h, ah, d) = (c.hidden_size, c.all_head_size(), c.attention_head_size);
        let x = &s.hidden[..t * h];
        self.query
            .forward(bytes, x, t, &mut s.q[..t * ah], &mut s.row);
        self.key
            .forward(bytes, x, t, &mut s.k[..t * ah], &mut s.row);
        self.value
            .forward(bytes, x, t, &mut s.v[..t * ah], &mut s.row);

        // Relative projections for the 2t-1 distances that occur, as f32 rows indexed by
        // (i - j) + t - 1: never all 2 * att_span rows.
        let index = net.rel_index(bytes);
        let max_len = c.max_position_embeddings;
        let gather = |m: &Option<MatRef>, dst: &mut [f32], row: &mut [f32]| {
            if let Some(m) = m {
                let view = m.view(bytes);
                for (r, out) in dst[..(2 * t - 1) * ah].chunks_exact_mut(ah).enumerate() {
                    let dist = r + max_len - t; // (i - j) + max_len - 1 with i - j = r - (t - 1)
                    out.copy_from_slice(view.row(index[dist] as usize, ah, row));
                }
            }
        };
        gather(&self.rel_key, &mut s.rel_k, &mut s.row);
        gather(&self.rel_query, &mut s.rel_q, &mut s.row);

        let scale = 1.0 / ((d * c.pos_att.scale_factor()) as f32).sqrt();
        let ctx = &mut s.ctx[..t * ah];
        ctx.fill(0.0);
        for head in 0..c.num_attention_heads {
            let hd = head * d..(head + 1) * d;
            for i in 0..t {
                let qi = &s.q[i * ah..][hd.clone()];
                let scores = &mut s.scores[..t];
                for (j, sc) in scores.iter_mut().enumerate() {
                    let kj = &s.k[j * ah..][hd.clone()];
                    let r = (i + t - 1 - j) * ah;
                    let mut v = scalar::dot(qi, kj);
                    if self.rel_key.is_some() {
                        v += scalar::dot(qi, &s.rel_k[r..][hd.clone()]);
                    }
                    if self.rel_query.is_some() {
                        v += scalar::dot(kj, &s.rel_q[r..][hd.clone()]);
                    }
                    *sc = v * scale;
                }
                scalar::softmax(scores);
                let ci = &mut ctx[i * ah..][hd.clone()];
                for (j, &p) in scores.iter().enumerate() {
                    scalar::axpy(p, &s.v[j * ah..][hd.clone()], ci);
                }
            }
        }
        // DebertaV2SelfOutput: LayerNorm(dense(context) + input)
        let out = &mut s.attn_out[..t * h];
        self.output.forward(bytes, ctx, t, out, &mut s.row);
        for (o, r) in out.iter_mut().zip(&s.hidden[..t * h]) {
            *o += r;
        }
        self.norm.forward(bytes, out);
    }
}
