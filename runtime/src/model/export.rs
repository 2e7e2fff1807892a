//! A view of an opened model for `dbrt-convert export-onnx`: what the exporter needs to write
//! the encoder stage as a graph and cannot read from the file without the runtime's knowledge
//! of its layouts. Each layer's weights as f32, as the CPU encoder computes with them (f16 and
//! bf16 widened, int8 dequantized exactly as `q · scale`, packed int8 unpacked), and the rows of
//! the relative projections each distance reads (the file's own index table, which the CPU
//! attention reads).
//!
//! Allocates freely (a layer's weights at a time): it is for the converter, not for sessions.

use super::tensors::Tensors;
use super::weights::PackedRef;
use super::Model;
use crate::error::{Error, Result};
use crate::format::pack::GROUP;
use crate::kernels::NR;

/// `nn.Linear`: `y = x Wᵀ + b`.
#[derive(Debug, Clone)]
pub struct Dense {
    /// `[out, inp]`, row-major.
    pub weight: Vec<f32>,
    /// `[out]`.
    pub bias: Vec<f32>,
    pub out: usize,
    pub inp: usize,
}

/// `nn.LayerNorm`'s parameters (its epsilon is the config's `layer_norm_eps`).
#[derive(Debug, Clone)]
pub struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// One `DebertaV2Layer`'s weights.
#[derive(Debug, Clone)]
pub struct LayerWeights {
    pub query: Dense,
    pub key: Dense,
    pub value: Dense,
    /// `attention.output.dense`.
    pub attention_output: Dense,
    /// `attention.output.LayerNorm`.
    pub attention_norm: Norm,
    pub intermediate: Dense,
    /// `output.dense`.
    pub output: Dense,
    /// `output.LayerNorm`.
    pub output_norm: Norm,
    /// c2p: the relative embeddings (normalized by the converter where the config says so)
    /// through the key projection, `[2 · att_span, all_head]`; `None` without c2p.
    pub rel_key: Option<Vec<f32>>,
    /// p2c: through the query projection, likewise; `None` without p2c.
    pub rel_query: Option<Vec<f32>>,
}

/// Layer `l`'s weights as f32.
pub fn layer(model: &Model, l: usize) -> Result<LayerWeights> {
    let c = model.config();
    if l >= c.num_hidden_layers {
        return Err(Error::InvalidArgument(format!(
            "layer {l} of a model of {}",
            c.num_hidden_layers
        )));
    }
    let (h, ah, inter) = (c.hidden_size, c.all_head_size(), c.intermediate_size);
    let root = Tensors::root(model.file());
    let t = root.pp("deberta.encoder.layer").pp(l);
    let bytes = model.bytes();
    let own = t.pp("attention.self");
    let rel = |leaf: &str, on: bool| -> Result<Option<Vec<f32>>> {
        match c.relative_attention && on {
            true => rel_projection(&own, leaf, bytes, model).map(Some),
            false => Ok(None),
        }
    };
    Ok(LayerWeights {
        query: dense(&own.pp("query_proj"), bytes, ah, h)?,
        key: dense(&own.pp("key_proj"), bytes, ah, h)?,
        value: dense(&own.pp("value_proj"), bytes, ah, h)?,
        attention_output: dense(&t.pp("attention.output.dense"), bytes, h, ah)?,
        attention_norm: norm(&t.pp("attention.output.LayerNorm"), bytes, h)?,
        intermediate: dense(&t.pp("intermediate.dense"), bytes, inter, h)?,
        output: dense(&t.pp("output.dense"), bytes, h, inter)?,
        output_norm: norm(&t.pp("output.LayerNorm"), bytes, h)?,
        rel_key: rel("rel_pos_key", c.pos_att.c2p)?,
        rel_query: rel("rel_pos_query", c.pos_att.p2c)?,
    })
}

/// The row of the relative projections that each distance of a `len`-token sequence reads:
/// entry `(i - j) + len - 1` for `i, j < len`, as the CPU attention indexes them. Empty
/// without relative attention.
pub fn relative_rows(model: &Model, len: usize) -> Result<Vec<usize>> {
    let c = model.config();
    let max = c.max_position_embeddings;
    if len == 0 || len > max {
        return Err(Error::InputTooLong { len, max });
    }
    if !c.relative_attention {
        return Ok(Vec::new());
    }
    // Checked when the model was opened: 2·max - 1 entries, each a row of the projections.
    let index = Tensors::root(model.file())
        .tensor("deberta.encoder.rel_pos_index")?
        .i32()?;
    let rows = index
        .get(max - len..max + len - 1)
        .ok_or_else(|| Error::InvalidArgument("rel_pos_index is shorter than its config".into()))?;
    Ok(rows.iter().map(|&r| r.max(0) as usize).collect())
}

fn norm(t: &Tensors<'_>, bytes: &[u8], n: usize) -> Result<Norm> {
    Ok(Norm {
        gamma: t.vector("weight", n)?.view(bytes).to_vec(),
        beta: t.vector("bias", n)?.view(bytes).to_vec(),
    })
}

fn dense(t: &Tensors<'_>, bytes: &[u8], out: usize, inp: usize) -> Result<Dense> {
    Ok(Dense {
        weight: matrix(t, "weight", bytes, out, inp)?,
        bias: t.vector("bias", out)?.view(bytes).to_vec(),
        out,
        inp,
    })
}

/// A `[rows, cols]` matrix as f32, whatever its storage.
fn matrix(t: &Tensors<'_>, leaf: &str, bytes: &[u8], rows: usize, cols: usize) -> Result<Vec<f32>> {
    if let Some(p) = t.packed(leaf, rows, cols)? {
        return Ok(unpack(&p, bytes, rows, cols));
    }
    let m = t.matrix(leaf, rows, cols)?.view(bytes);
    let mut out = vec![0f32; rows * cols];
    let mut scratch = vec![0f32; cols];
    for (r, dst) in out.chunks_exact_mut(cols.max(1)).enumerate().take(rows) {
        dst.copy_from_slice(m.row(r, cols, &mut scratch));
    }
    Ok(out)
}

/// A packed int8 matrix dequantized: element `(r, c)` is `q · scale[r]`, `q` found where
/// `pack_i8` put it (group `c / 4` of row `r`'s panel, lane `r % 8`).
fn unpack(p: &PackedRef, bytes: &[u8], rows: usize, cols: usize) -> Vec<f32> {
    let scales = p.scales.view(bytes);
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        let panel = p.panel(bytes, r / NR);
        let (j, il) = (r % NR, panel.interleave);
        for c in 0..cols {
            let at = (c / GROUP) * NR * GROUP * il + j * GROUP + c % GROUP;
            out[r * cols + c] = panel.w[at] as f32 * scales[r];
        }
    }
    out
}

/// A relative projection as `[2 · att_span, all_head]` f32: int8 files stack each head's rows
/// (`[heads · rows, d]`, packed); other storage is that matrix already.
fn rel_projection(t: &Tensors<'_>, leaf: &str, bytes: &[u8], model: &Model) -> Result<Vec<f32>> {
    let c = model.config();
    let (rows, heads, d, ah) = (
        2 * c.att_span(),
        c.num_attention_heads,
        c.attention_head_size,
        c.all_head_size(),
    );
    let Some(p) = t.packed(leaf, heads * rows, d)? else {
        return matrix(t, leaf, bytes, rows, ah);
    };
    let stacked = unpack(&p, bytes, heads * rows, d);
    let mut out = vec![0f32; rows * ah];
    for hd in 0..heads {
        for r in 0..rows {
            let src = &stacked[(hd * rows + r) * d..(hd * rows + r + 1) * d];
            out[r * ah + hd * d..r * ah + (hd + 1) * d].copy_from_slice(src);
        }
    }
    Ok(out)
}
