//! The DeBERTa encoder stage as one static-shape ONNX graph for a sequence length `S`:
//! `hidden [1, S, H]`, `mask [1, S]` → `last_hidden [1, S, H]`, the same computation as the
//! CPU encoder (`runtime/src/model/attention`), written with ops NPU compilers take.
//!
//! Per layer, heads batched as `[1, heads, S, ·]`:
//! - scores `((q·kᵀ + c2p) + p2c) · scale + mask_bias`, softmax over keys, times the values;
//!   `scale = 1/√(d · (1 + terms))` as the runtime computes it.
//! - c2p: `q · relKᵀ` over the relative rows this length reads (`[1, heads, S, R]`), then
//!   GatherElements along the last axis with the constant index `idx[i][j] = row(i - j)`.
//!   p2c: `relQ · kᵀ` (`[1, heads, R, S]`), GatherElements along the rows with the same index:
//!   element `(i, j)` is `relQ[row(i - j)] · k_j`. The relative projections are constants (the
//!   converter computed them from the relative embeddings), cut to the `R` rows used and laid
//!   out per head here, so no transpose of them runs.
//! - mask: `(mask - 1) · 10⁴` added over the keys; 10⁴ stays finite in fp16 on an NPU and
//!   makes a padded key's exponential exactly zero in f32.
//! - GELU as `x · (1 + erf(x / √2)) · 0.5`, the pattern QNN fuses into one Gelu (a standalone
//!   Erf is refused there).

use dbrt::model::config::Activation;
use dbrt::model::export::{Dense, LayerWeights, Norm};
use dbrt::offload::manifest::Precision;
use dbrt::Model;
use onnx_protobuf::ModelProto;

use super::onnx_builder::{Attr, Builder, Dim};
use super::relative::{RelLayer, Relative};
use crate::error::Result;

/// The graph's input and output names (fixed: the runtime's backends bind them).
pub const INPUT_HIDDEN: &str = "hidden";
pub const INPUT_MASK: &str = "mask";
pub const OUTPUT: &str = "last_hidden";

/// The additive bias of a padded key (see the module's doc).
const MASK_BIAS: f32 = 1e4;

/// The ops a graph may hold (the exporter's tests check every node against it).
pub const OPS: &[&str] = &[
    "MatMul",
    "Add",
    "Mul",
    "Sub",
    "Div",
    "Softmax",
    "Transpose",
    "Reshape",
    "LayerNormalization",
    "Erf",
    "Tanh",
    "Relu",
    "GatherElements",
    "Cast",
];

/// Bytes a graph of `s` tokens holds beyond the weights: the index (int64, per head) and the
/// relative projections cut to `2s - 1` rows. For refusing a bucket before building it.
pub fn extra_bytes(model: &Model, s: usize) -> u64 {
    let c = model.config();
    if !c.relative_attention {
        return 0;
    }
    let (s, heads, ah) = (
        s as u64,
        c.num_attention_heads as u64,
        c.all_head_size() as u64,
    );
    let rows = (2 * s - 1).min(2 * c.att_span() as u64);
    let terms = c.pos_att.c2p as u64 + c.pos_att.p2c as u64;
    heads * s * s * 8 + c.num_hidden_layers as u64 * terms * rows * ah * 4
}

/// The sequence lengths a graph takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Exactly `S` tokens, every shape static (the per-bucket graphs).
    Static(usize),
    /// Any length up to `max` (inputs `[1, seq, H]`, `[1, seq]`, `seq` symbolic): the
    /// relative constants are made for `max` and cut at run time to the length `Shape(hidden)`
    /// says, reshapes infer the length (−1). The index's top-left `S × S` corner is exactly
    /// length `S`'s index, as it depends on `i − j` only; c2p/p2c run over all of `max`'s
    /// projection rows, of which the index reads those of the length.
    Dynamic { max: usize },
}

/// The symbolic sequence dim of a `Length::Dynamic` graph.
pub const SEQ_DIM: &str = "seq";

/// How a graph is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Form {
    pub length: Length,
    pub precision: Precision,
    /// The default domain's opset the graph declares.
    pub opset: i64,
    /// LayerNormalization (opset 17) as one node, or spelled out with ReduceMean, Sub, Mul,
    /// Add, Sqrt and Div (any opset from 13: `ReduceMean` takes `axes` as an attribute there).
    pub fused_layer_norm: bool,
}

impl Form {
    /// The static graph of `s` tokens (the QNN export).
    pub fn fixed(s: usize, precision: Precision) -> Form {
        Form {
            length: Length::Static(s),
            precision,
            opset: super::onnx_builder::OPSET,
            fused_layer_norm: true,
        }
    }

    /// The longest sequence the graph's constants are made for.
    fn max_len(&self) -> usize {
        match self.length {
            Length::Static(s) | Length::Dynamic { max: s } => s,
        }
    }

    /// A sequence-length entry of a shape constant: `s`, or −1 (inferred) when dynamic.
    fn seq_entry(&self) -> i64 {
        match self.length {
            Length::Static(s) => s as i64,
            Length::Dynamic { .. } => -1,
        }
    }
}

/// The encoder of `model` as `form` says, from its `layers` (all of them, in order).
pub fn graph(model: &Model, layers: &[LayerWeights], form: &Form) -> Result<ModelProto> {
    let c = model.config();
    let (h, nh, d) = (c.hidden_size, c.num_attention_heads, c.attention_head_size);
    let ah = c.all_head_size();
    let (max, seq) = (form.max_len(), form.seq_entry());
    let mut b = Builder::new(form.precision).with_opset(form.opset);
    let rel = Relative::new(model, &mut b, max)?;
    let index = match (&rel, form.length) {
        (Some(r), Length::Dynamic { .. }) => Some(cut_index(&mut b, &r.index)),
        (Some(r), Length::Static(_)) => Some(r.index.clone()),
        (None, _) => None,
    };
    // (mask - 1) · 10⁴, as [1, 1, 1, S] over the scores' keys.
    let one = b.constant_f32("one", &[], &[1.0]);
    let bias = b.constant_f32("mask_bias", &[], &[MASK_BIAS]);
    let m = b.op("Sub", &[INPUT_MASK, &one], vec![]);
    let m = b.op("Mul", &[&m, &bias], vec![]);
    let shape = b.constant_i64("mask_shape", &[4], &[1, 1, 1, seq]);
    let mask = b.op("Reshape", &[&m, &shape], vec![]);
    let split = b.constant_i64("split_heads", &[4], &[1, seq, nh as i64, d as i64]);
    let merged = b.constant_i64("merge_heads", &[3], &[1, seq, ah as i64]);
    let scale_factor = c.pos_att.scale_factor();
    let scale = 1.0 / ((d * scale_factor) as f32).sqrt();
    let scale = b.constant_f32("scale", &[], &[scale]);
    let eps = c.layer_norm_eps as f32;
    let eps_constant = (!form.fused_layer_norm).then(|| b.constant_f32("ln_eps", &[], &[eps]));
    let shared = Shared {
        split,
        merged,
        mask,
        scale,
        one,
        eps,
        eps_constant,
    };
    let mut x = INPUT_HIDDEN.to_string();
    for (l, w) in layers.iter().enumerate() {
        let rel_l = match (&rel, &index) {
            (Some(r), Some(index)) => Some(r.layer(&mut b, w, l, index)?),
            _ => None,
        };
        x = layer(&mut b, &shared, w, rel_l.as_ref(), &x, c.hidden_act);
    }
    // The last node's output under its fixed name; a model without layers adds zero to its
    // input (no Identity: not every NPU compiler takes it).
    if !b.rename_output(&x, OUTPUT) {
        let zero = b.constant_f32("zero", &[], &[0.0]);
        b.op_into("Add", &[&x, &zero], vec![], OUTPUT);
    }
    Ok(match form.length {
        Length::Static(s) => b.finish(
            &format!("dbrt_encoder_{s}"),
            &[(INPUT_HIDDEN, &[1, s, h]), (INPUT_MASK, &[1, s])],
            &[(OUTPUT, &[1, s, h])],
        ),
        Length::Dynamic { max } => {
            let (one, seq, h) = (Dim::Fixed(1), Dim::Named(SEQ_DIM), Dim::Fixed(h));
            b.finish_dims(
                &format!("dbrt_encoder_upto_{max}"),
                &[
                    (INPUT_HIDDEN.into(), vec![one, seq, h]),
                    (INPUT_MASK.into(), vec![one, seq]),
                ],
                &[(OUTPUT.into(), vec![one, seq, h])],
            )
        }
    })
}

/// `index[:, :, :S, :S]` with `S` the length of the graph's input, read at run time.
fn cut_index(b: &mut Builder, index: &str) -> String {
    let shape = b.op("Shape", &[INPUT_HIDDEN], vec![]);
    let one = b.constant_i64("one_i64", &[1], &[1]);
    let two = b.constant_i64("two_i64", &[1], &[2]);
    let len = b.op("Slice", &[&shape, &one, &two], vec![]); // [S]
    let ends = b.op("Concat", &[&len, &len], vec![("axis", Attr::Int(0))]);
    let starts = b.constant_i64("index_starts", &[2], &[0, 0]);
    let axes = b.constant_i64("index_axes", &[2], &[2, 3]);
    b.op("Slice", &[index, &starts, &ends, &axes], vec![])
}

/// Constants every layer reads.
struct Shared {
    split: String,
    merged: String,
    mask: String,
    scale: String,
    one: String,
    eps: f32,
    /// `eps` as a graph constant when LayerNorm is spelled out (`None`: one node each).
    eps_constant: Option<String>,
}

/// One `DebertaV2Layer` over `x` (`[1, S, H]`); returns its output's name.
fn layer(
    b: &mut Builder,
    sh: &Shared,
    w: &LayerWeights,
    rel: Option<&RelLayer>,
    x: &str,
    act: Activation,
) -> String {
    let heads = |b: &mut Builder, dense: &Dense, perm: &[i64]| {
        let y = linear(b, dense, x);
        let y = b.op("Reshape", &[&y, &sh.split], vec![]);
        b.op(
            "Transpose",
            &[&y],
            vec![("perm", Attr::Ints(perm.to_vec()))],
        )
    };
    let q = heads(b, &w.query, &[0, 2, 1, 3]); // [1, nh, S, d]
    let kt = heads(b, &w.key, &[0, 2, 3, 1]); // [1, nh, d, S]
    let v = heads(b, &w.value, &[0, 2, 1, 3]); // [1, nh, S, d]
    let mut scores = b.op("MatMul", &[&q, &kt], vec![]);
    if let Some(r) = rel {
        if let Some(rel_kt) = &r.key_t {
            let full = b.op("MatMul", &[&q, rel_kt], vec![]); // [1, nh, S, R]
            let c2p = b.op(
                "GatherElements",
                &[&full, &r.index],
                vec![("axis", Attr::Int(3))],
            );
            scores = b.op("Add", &[&scores, &c2p], vec![]);
        }
        if let Some(rel_q) = &r.query {
            let full = b.op("MatMul", &[rel_q, &kt], vec![]); // [1, nh, R, S]
            let p2c = b.op(
                "GatherElements",
                &[&full, &r.index],
                vec![("axis", Attr::Int(2))],
            );
            scores = b.op("Add", &[&scores, &p2c], vec![]);
        }
    }
    let scores = b.op("Mul", &[&scores, &sh.scale], vec![]);
    let scores = b.op("Add", &[&scores, &sh.mask], vec![]);
    let probs = b.op("Softmax", &[&scores], vec![("axis", Attr::Int(-1))]);
    let context = b.op("MatMul", &[&probs, &v], vec![]);
    let perm = Attr::Ints(vec![0, 2, 1, 3]);
    let context = b.op("Transpose", &[&context], vec![("perm", perm)]);
    let context = b.op("Reshape", &[&context, &sh.merged], vec![]);
    // DebertaV2SelfOutput: LayerNorm(dense(context) + x).
    let out = linear(b, &w.attention_output, &context);
    let out = b.op("Add", &[&out, x], vec![]);
    let attended = layer_norm(b, &w.attention_norm, &out, sh);
    // DebertaV2Intermediate, DebertaV2Output.
    let inter = linear(b, &w.intermediate, &attended);
    let inter = activation(b, act, &inter, &sh.one);
    let out = linear(b, &w.output, &inter);
    let out = b.op("Add", &[&out, &attended], vec![]);
    layer_norm(b, &w.output_norm, &out, sh)
}

/// `x Wᵀ + b`, the weight stored transposed (`[in, out]`) so that MatMul takes it as is.
fn linear(b: &mut Builder, dense: &Dense, x: &str) -> String {
    let (o, i) = (dense.out, dense.inp);
    let mut wt = vec![0f32; o * i];
    for (r, row) in dense.weight.chunks_exact(i.max(1)).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            wt[c * o + r] = v;
        }
    }
    let w = b.weight("weight", &[i, o], &wt);
    let bias = b.weight("bias", &[o], &dense.bias);
    let y = b.op("MatMul", &[x, &w], vec![]);
    b.op("Add", &[&y, &bias], vec![])
}

/// LayerNorm over the last axis: one LayerNormalization node, or (for compilers without it)
/// `(x - mean) / √(var + eps) · γ + β` with the mean and variance by ReduceMean, as the
/// runtime computes it.
fn layer_norm(b: &mut Builder, n: &Norm, x: &str, sh: &Shared) -> String {
    let g = b.weight("ln_weight", &[n.gamma.len()], &n.gamma);
    let beta = b.weight("ln_bias", &[n.beta.len()], &n.beta);
    let Some(eps) = &sh.eps_constant else {
        let attrs = vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(sh.eps))];
        return b.op("LayerNormalization", &[x, &g, &beta], attrs);
    };
    let mean_attrs = || vec![("axes", Attr::Ints(vec![-1])), ("keepdims", Attr::Int(1))];
    let mean = b.op("ReduceMean", &[x], mean_attrs());
    let centered = b.op("Sub", &[x, &mean], vec![]);
    let squared = b.op("Mul", &[&centered, &centered], vec![]);
    let var = b.op("ReduceMean", &[&squared], mean_attrs());
    let var = b.op("Add", &[&var, eps], vec![]);
    let std = b.op("Sqrt", &[&var], vec![]);
    let normed = b.op("Div", &[&centered, &std], vec![]);
    let scaled = b.op("Mul", &[&normed, &g], vec![]);
    b.op("Add", &[&scaled, &beta], vec![])
}

fn activation(b: &mut Builder, act: Activation, x: &str, one: &str) -> String {
    match act {
        Activation::Gelu => {
            // x · (1 + erf(x / √2)) · 0.5, torch's export of the exact GELU.
            let sqrt2 = b.constant_f32("sqrt2", &[], &[std::f32::consts::SQRT_2]);
            let half = b.constant_f32("half", &[], &[0.5]);
            let u = b.op("Div", &[x, &sqrt2], vec![]);
            let e = b.op("Erf", &[&u], vec![]);
            let e = b.op("Add", &[&e, one], vec![]);
            let y = b.op("Mul", &[x, &e], vec![]);
            b.op("Mul", &[&y, &half], vec![])
        }
        Activation::GeluTanh => {
            // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))), as the runtime computes it.
            let k = b.constant_f32("sqrt_2_over_pi", &[], &[0.797_884_6]);
            let c = b.constant_f32("gelu_cubic", &[], &[0.044715]);
            let half = b.constant_f32("half", &[], &[0.5]);
            let x2 = b.op("Mul", &[x, x], vec![]);
            let x3 = b.op("Mul", &[&x2, x], vec![]);
            let cx3 = b.op("Mul", &[&x3, &c], vec![]);
            let inner = b.op("Add", &[x, &cx3], vec![]);
            let inner = b.op("Mul", &[&inner, &k], vec![]);
            let t = b.op("Tanh", &[&inner], vec![]);
            let t = b.op("Add", &[&t, one], vec![]);
            let y = b.op("Mul", &[x, &t], vec![]);
            b.op("Mul", &[&y, &half], vec![])
        }
        Activation::Relu => b.op("Relu", &[x], vec![]),
        Activation::Tanh => b.op("Tanh", &[x], vec![]),
    }
}
