//! From a checkpoint to a `.dbrt` file: checks every tensor's shape against the config, does the
//! input-independent work (relative-position projections and index), picks storage dtypes and
//! writes metadata.

use dbrt::format::pack::pack_i8;
use dbrt::format::{DType, FileWriter, Layout, MetaValue};
use dbrt::model::config::{relative_position_index, RelEmbeddingNorm};
use dbrt::Config;

use crate::checkpoint::{Checkpoint, Tensor};
use crate::error::{ConvertError, Result};
use crate::validate::{check_config, check_weights, MAX_DERIVED_BYTES};

/// Storage type of the large matrices. Vectors (biases, LayerNorms) always stay f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageType {
    #[default]
    F32,
    F16,
    /// Linear weights symmetric int8 per output channel, pre-packed for the GEMM kernels; the
    /// word embedding int8 with one scale per row; other matrices (relative-position
    /// projections, position and type embeddings, classifier) f16.
    Int8,
}

impl StorageType {
    pub fn name(self) -> &'static str {
        match self {
            StorageType::F32 => "f32",
            StorageType::F16 => "f16",
            StorageType::Int8 => "int8",
        }
    }
}

/// Symmetric int4 with one scale per row: `q = round(w / s)` in [-7, 7] (half to even), `s`
/// the clipping scale between 0.6 and 1 times `max|w| / 7` with the least squared error; two
/// values per byte, the first in the low nibble (`DType::I4`).
fn quantize_rows_int4(t: &Tensor) -> (Vec<u8>, Vec<f32>) {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let row_bytes = cols.div_ceil(2);
    let mut q = vec![0u8; rows * row_bytes];
    let mut scales = vec![0f32; rows];
    for (r, (w, out)) in t
        .data
        .chunks_exact(cols)
        .zip(q.chunks_exact_mut(row_bytes))
        .enumerate()
    {
        let amax = w.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let q = |v: f32, s: f32| (v / s).round_ties_even().clamp(-7.0, 7.0);
        // The clipping scale with the least squared error: with 15 levels, clipping the few
        // largest values buys finer steps for all the others.
        let s = (0..=8)
            .map(|i| amax * (1.0 - 0.05 * i as f32) / 7.0)
            .filter(|&s| s > 0.0)
            .map(|s| (w.iter().map(|&v| (v - q(v, s) * s).powi(2)).sum::<f32>(), s))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(1.0, |(_, s)| s);
        scales[r] = s;
        for (i, &v) in w.iter().enumerate() {
            let n = (q(v, s) as i8 as u8) & 0x0f;
            out[i / 2] |= if i % 2 == 0 { n } else { n << 4 };
        }
    }
    (q, scales)
}

/// Symmetric int8 with one scale per row: `q = round(w / s)` in [-127, 127], `s = max|w| / 127`.
fn quantize_rows(t: &Tensor) -> (Vec<i8>, Vec<f32>) {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let mut q = vec![0i8; rows * cols];
    let mut scales = vec![0f32; rows];
    dbrt::kernels::scalar::quantize_rows(&t.data, rows, cols, cols, &mut q, &mut scales);
    (q, scales)
}

/// How int8 linear weights are packed (each layout runs on every CPU; see `dbrt::format::Layout`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Packing {
    /// `Layout::I8Panel16x4`: two 8-row panels alternating group by group, read by AVX-512 in
    /// one load, which is what makes the AVX-512 int8 GEMM faster (README, "int8 and the
    /// kernels"; `cargo bench -p dbrt-benches --bench kernels -- "four panels"` measures it).
    #[default]
    Interleaved16,
    /// `Layout::I8Panel8x4`: 8-row panels one after another.
    Panels8,
}

impl Packing {
    fn layout(self) -> Layout {
        match self {
            Packing::Interleaved16 => Layout::I8Panel16x4,
            Packing::Panels8 => Layout::I8Panel8x4,
        }
    }
}

/// Reports progress while tensors are written (the CLI draws a bar).
pub trait Progress {
    fn start(&mut self, _total: usize) {}
    fn step(&mut self, _name: &str) {}
}

impl Progress for () {}

/// `y = x W^T + b` for `x: [n, in]`, `W: [out, in]`, accumulated in f64.
fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    let (n, inp, out) = (x.shape[0], x.shape[1], w.shape[0]);
    let mut y = vec![0f32; n * out];
    for i in 0..n {
        let xi = &x.data[i * inp..(i + 1) * inp];
        for o in 0..out {
            let wo = &w.data[o * inp..(o + 1) * inp];
            let acc: f64 = xi.iter().zip(wo).map(|(a, b)| *a as f64 * *b as f64).sum();
            y[i * out + o] = (acc + b.map_or(0.0, |b| b.data[o] as f64)) as f32;
        }
    }
    Tensor::new(vec![n, out], y)
}

fn layer_norm_rows(x: &Tensor, g: &Tensor, b: &Tensor, eps: f64) -> Tensor {
    let mut out = x.clone();
    for row in out.data.chunks_exact_mut(x.shape[1]) {
        dbrt::kernels::scalar::layer_norm(row, &g.data, &b.data, eps as f32);
    }
    out
}

struct Out<'a> {
    w: FileWriter,
    /// The input, named in errors.
    input: &'a std::path::Path,
    storage: StorageType,
    /// The word embedding as int4 (row-wise) whatever `storage` says.
    int4_embeddings: bool,
    packing: Packing,
    progress: &'a mut dyn Progress,
}

impl Out<'_> {
    fn matrix(&mut self, name: &str, t: &Tensor) -> Result<()> {
        self.matrix_as(name, t, self.storage)
    }

    fn matrix_as(&mut self, name: &str, t: &Tensor, storage: StorageType) -> Result<()> {
        self.progress.step(name);
        let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
        match storage {
            StorageType::F32 => self.w.add_f32(name, &shape, &t.data)?,
            StorageType::F16 | StorageType::Int8 => {
                let h: Vec<half::f16> = t.data.iter().map(|&v| half::f16::from_f32(v)).collect();
                if let Some(i) = h.iter().position(|v| !v.is_finite()) {
                    return Err(ConvertError::NonFinite {
                        input: self.input.to_path_buf(),
                        tensor: name.into(),
                        value: h[i].to_f32(),
                        index: i,
                        hint: " (as f16: its value exceeds f16's range; convert with --dtype f32)",
                    });
                }
                self.w
                    .add_tensor(name, DType::F16, &shape, bytemuck::cast_slice(&h).to_vec())?
            }
        }
        Ok(())
    }

    /// A precomputed relative-position projection (`[rows, heads · d]`). In int8 files each
    /// head's `[rows, d]` block is stacked (`[heads · rows, d]`) and stored as a linear weight
    /// (int8 per relative row and head, packed in panels), so that the attention's c2p and p2c
    /// terms run on the int8 GEMM kernels against queries and keys quantized like any
    /// activation: a quarter of f32's bytes, no per-run transpose. Measured on all 1,277 real
    /// fixture rows (`dbrt eval`): mean |dp| 0.00406 and 1271/1277 argmax, against 0.00417
    /// and 1273 with f32 projections (the argmax count moves by a few rows between equally
    /// accurate variants; quantizing the keys of q·k too gave 1270 and 0.00429, so q·k stays
    /// f32). Otherwise as `--dtype` says.
    fn rel_projection(&mut self, name: &str, t: &Tensor, heads: usize) -> Result<()> {
        let (rows, ah) = (t.shape[0], t.shape[1]);
        if self.storage != StorageType::Int8 {
            return self.matrix(name, t);
        }
        if !rows.is_multiple_of(8) {
            // Heads would not start on a panel: f32, read by the f32 attention.
            return self.matrix_as(name, t, StorageType::F32);
        }
        let d = ah / heads;
        let mut stacked = Vec::with_capacity(rows * ah);
        for h in 0..heads {
            for r in 0..rows {
                stacked.extend_from_slice(&t.data[r * ah + h * d..r * ah + (h + 1) * d]);
            }
        }
        self.linear_weight(name, &Tensor::new(vec![heads * rows, d], stacked))
    }

    /// A linear layer's `[out, in]` weight: packed int8 + `{name}_scale` in int8 files.
    fn linear_weight(&mut self, name: &str, t: &Tensor) -> Result<()> {
        if self.storage != StorageType::Int8 {
            return self.matrix(name, t);
        }
        self.progress.step(name);
        let (rows, cols) = (t.shape[0], t.shape[1]);
        let (q, scales) = quantize_rows(t);
        let packed = pack_i8(&q, rows, cols, self.packing.layout())?;
        self.w.add_tensor(
            &format!("{name}_bsum"),
            DType::I32,
            &[packed.block_sums.len() as u64],
            bytemuck::cast_slice(&packed.block_sums).to_vec(),
        )?;
        self.w.add_tensor_with_layout(
            name,
            DType::I8,
            packed.layout,
            &[rows as u64, cols as u64],
            bytemuck::cast_slice(&packed.weights).to_vec(),
        )?;
        self.w
            .add_f32(&format!("{name}_scale"), &[rows as u64], &scales)?;
        Ok(())
    }

    /// An embedding table: row-wise int8 + `{name}_scale` in int8 files, row-wise int4 +
    /// `{name}_scale` with `--embeddings int4`.
    fn embedding(&mut self, name: &str, t: &Tensor) -> Result<()> {
        if self.int4_embeddings {
            self.progress.step(name);
            let (rows, cols) = (t.shape[0], t.shape[1]);
            let (q, scales) = quantize_rows_int4(t);
            self.w
                .add_tensor(name, DType::I4, &[rows as u64, cols as u64], q)?;
            self.w
                .add_f32(&format!("{name}_scale"), &[rows as u64], &scales)?;
            return Ok(());
        }
        if self.storage != StorageType::Int8 {
            return self.matrix(name, t);
        }
        self.progress.step(name);
        let (rows, cols) = (t.shape[0], t.shape[1]);
        let (q, scales) = quantize_rows(t);
        self.w.add_tensor(
            name,
            DType::I8,
            &[rows as u64, cols as u64],
            bytemuck::cast_slice(&q).to_vec(),
        )?;
        self.w
            .add_f32(&format!("{name}_scale"), &[rows as u64], &scales)?;
        Ok(())
    }

    fn vector(&mut self, name: &str, t: &Tensor) -> Result<()> {
        self.progress.step(name);
        self.w.add_f32(name, &[t.data.len() as u64], &t.data)?;
        Ok(())
    }
}

/// How many times [`build`] steps its progress for a model of config `c`: once per tensor it
/// writes from the checkpoint or computes (a packed weight's scales and block sums are part
/// of its step; the relative-position index and the tokenizer take none).
pub fn step_count(c: &Config) -> usize {
    let embeddings = 1
        + c.position_biased_input as usize
        + (c.type_vocab_size > 0) as usize
        + (c.embedding_size != c.hidden_size) as usize
        + 2;
    // Six linear layers (weight and bias) and two LayerNorms (weight and bias), and the
    // precomputed relative-position projections.
    let relative = if c.relative_attention {
        c.pos_att.c2p as usize + c.pos_att.p2c as usize
    } else {
        0
    };
    let per_layer = 6 * 2 + 2 * 2 + relative;
    let head = if c.num_labels > 0 { 4 } else { 0 };
    embeddings + c.num_hidden_layers * per_layer + head
}

/// Everything a `.dbrt` file holds, ready to be written.
pub fn build(
    ck: &Checkpoint,
    storage: StorageType,
    int4_embeddings: bool,
    packing: Packing,
    progress: &mut dyn Progress,
) -> Result<FileWriter> {
    let c: &Config = &ck.config;
    // Before anything is allocated or computed from the config.
    check_config(c, &ck.config_source)?;
    let heads = c.num_attention_heads;
    let (h, e, ah, inter) = (
        c.hidden_size,
        c.embedding_size,
        c.all_head_size(),
        c.intermediate_size,
    );
    progress.start(step_count(c));
    let mut out = Out {
        w: FileWriter::new(),
        input: &ck.input,
        storage,
        int4_embeddings,
        packing,
        progress,
    };

    // Embeddings
    out.embedding(
        "deberta.embeddings.word_embeddings.weight",
        ck.get_shaped(
            "deberta.embeddings.word_embeddings.weight",
            &[c.vocab_size, e],
        )?,
    )?;
    if c.position_biased_input {
        let n = "deberta.embeddings.position_embeddings.weight";
        out.matrix(n, ck.get_shaped(n, &[c.max_position_embeddings, e])?)?;
    }
    if c.type_vocab_size > 0 {
        let n = "deberta.embeddings.token_type_embeddings.weight";
        out.matrix(n, ck.get_shaped(n, &[c.type_vocab_size, e])?)?;
    }
    if e != h {
        let n = "deberta.embeddings.embed_proj.weight";
        out.linear_weight(n, ck.get_shaped(n, &[h, e])?)?;
    }
    for p in ["weight", "bias"] {
        let n = format!("deberta.embeddings.LayerNorm.{p}");
        out.vector(&n, ck.get_shaped(&n, &[h])?)?;
    }

    // Relative embeddings, normalized once here instead of at every forward pass.
    let span = c.att_span();
    let rel = if c.relative_attention {
        let r = ck.get("deberta.encoder.rel_embeddings.weight")?;
        if r.shape.len() != 2 || r.shape[1] != h || r.shape[0] < 2 * span {
            return Err(ConvertError::Shape {
                name: "deberta.encoder.rel_embeddings.weight".into(),
                expected: vec![2 * span, h],
                actual: r.shape.clone(),
            });
        }
        let r = Tensor::new(vec![2 * span, h], r.data[..2 * span * h].to_vec());
        Some(match c.norm_rel_ebd {
            RelEmbeddingNorm::LayerNorm => layer_norm_rows(
                &r,
                ck.get_shaped("deberta.encoder.LayerNorm.weight", &[h])?,
                ck.get_shaped("deberta.encoder.LayerNorm.bias", &[h])?,
                c.layer_norm_eps,
            ),
            RelEmbeddingNorm::None => r,
        })
    } else {
        None
    };

    for l in 0..c.num_hidden_layers {
        let p = format!("deberta.encoder.layer.{l}");
        let lin = |out: &mut Out<'_>, name: &str, o: usize, i: usize| -> Result<()> {
            out.linear_weight(
                &format!("{p}.{name}.weight"),
                ck.get_shaped(&format!("{p}.{name}.weight"), &[o, i])?,
            )?;
            out.vector(
                &format!("{p}.{name}.bias"),
                ck.get_shaped(&format!("{p}.{name}.bias"), &[o])?,
            )
        };
        lin(&mut out, "attention.self.query_proj", ah, h)?;
        lin(&mut out, "attention.self.key_proj", ah, h)?;
        lin(&mut out, "attention.self.value_proj", ah, h)?;
        lin(&mut out, "attention.output.dense", h, ah)?;
        lin(&mut out, "intermediate.dense", inter, h)?;
        lin(&mut out, "output.dense", h, inter)?;
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
            for q in ["weight", "bias"] {
                let n = format!("{p}.{ln}.{q}");
                out.vector(&n, ck.get_shaped(&n, &[h])?)?;
            }
        }
        if let Some(r) = &rel {
            // DisentangledSelfAttention.disentangled_attention_bias: the relative embeddings
            // through key_proj/query_proj (share_att_key) or pos_key_proj/pos_query_proj.
            let proj = |which: &str, name: &str| -> Result<Tensor> {
                let w = ck.get_shaped(&format!("{p}.attention.self.{which}.weight"), &[ah, h])?;
                let b = ck.get_shaped(&format!("{p}.attention.self.{which}.bias"), &[ah])?;
                let bytes = (2 * span).checked_mul(ah).and_then(|n| n.checked_mul(4));
                if bytes.is_none_or(|b| b > MAX_DERIVED_BYTES) {
                    return Err(ConvertError::Invalid(format!(
                        "{name}: {} relative positions × {ah} is more than {MAX_DERIVED_BYTES} bytes",
                        2 * span
                    )));
                }
                let t = linear(r, w, Some(b));
                check_weights(
                    &ck.input,
                    name,
                    &t.data,
                    " (computed from the relative embeddings and the projection)",
                )?;
                Ok(t)
            };
            let (k, q) = if c.share_att_key {
                ("key_proj", "query_proj")
            } else {
                ("pos_key_proj", "pos_query_proj")
            };
            if c.pos_att.c2p {
                let n = format!("{p}.attention.self.rel_pos_key");
                out.rel_projection(&n, &proj(k, &n)?, heads)?;
            }
            if c.pos_att.p2c {
                let n = format!("{p}.attention.self.rel_pos_query");
                out.rel_projection(&n, &proj(q, &n)?, heads)?;
            }
        }
    }
    if c.relative_attention {
        let idx = relative_position_index(c, c.max_position_embeddings);
        out.w.add_tensor(
            "deberta.encoder.rel_pos_index",
            DType::I32,
            &[idx.len() as u64],
            bytemuck::cast_slice(&idx).to_vec(),
        )?;
    }

    if c.num_labels > 0 {
        let n = c.num_labels;
        out.linear_weight(
            "pooler.dense.weight",
            ck.get_shaped("pooler.dense.weight", &[c.pooler_hidden_size, h])?,
        )?;
        out.vector(
            "pooler.dense.bias",
            ck.get_shaped("pooler.dense.bias", &[c.pooler_hidden_size])?,
        )?;
        out.matrix(
            "classifier.weight",
            ck.get_shaped("classifier.weight", &[n, c.pooler_hidden_size])?,
        )?;
        out.vector("classifier.bias", ck.get_shaped("classifier.bias", &[n])?)?;
    }
    if let Some(tok) = &ck.tokenizer_json {
        let compiled = crate::tokenizer_compile::compile(tok, c.max_position_embeddings)?;
        if compiled.max_id as usize >= c.vocab_size {
            return Err(ConvertError::Invalid(format!(
                "the tokenizer produces id {} but the model's vocabulary has {}",
                compiled.max_id, c.vocab_size
            )));
        }
        compiled.add_to(&mut out.w)?;
    }

    let mut w = out.w;
    let m = &mut w.metadata;
    let arch = if c.num_labels > 0 {
        "DebertaV2ForSequenceClassification"
    } else {
        "DebertaV2Model"
    };
    m.set("general.architecture", MetaValue::Str(arch.into()));
    c.to_metadata(m);
    m.set("labels.id2label", MetaValue::StrList(ck.labels.clone()));
    m.set("quant.weights", MetaValue::Str(storage.name().into()));
    if int4_embeddings {
        m.set("quant.word_embeddings", MetaValue::Str("int4".into()));
    }
    m.set("quant.vectors", MetaValue::Str("f32".into()));
    m.set(
        "provenance.converter",
        MetaValue::Str(format!("dbrt-convert {}", env!("CARGO_PKG_VERSION"))),
    );
    m.set(
        "provenance.source_kind",
        MetaValue::Str(ck.source_kind.into()),
    );
    m.set(
        "provenance.sources",
        MetaValue::StrList(
            ck.sources
                .iter()
                .map(|s| format!("{} sha256:{}", s.name, s.sha256))
                .collect(),
        ),
    );
    let dtypes: std::collections::BTreeSet<String> = ck
        .source_dtypes
        .values()
        .map(|d| format!("{d:?}"))
        .collect();
    m.set(
        "provenance.source_dtypes",
        MetaValue::StrList(dtypes.into_iter().collect()),
    );
    Ok(w)
}
