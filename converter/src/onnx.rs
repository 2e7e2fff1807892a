//! ONNX exports of `DebertaV2ForSequenceClassification`, fp32 or quantized by onnxruntime
//! (MatMulInteger / DynamicQuantizeLinear). Named initializers keep their Hugging Face names
//! (often behind a prefix such as `m.`); anonymous linear weights (`onnx::MatMul_1234`) are
//! identified by following them through the graph to the named `.bias` they are added to.
//! int8/uint8 weights are dequantized exactly, `(q - zero_point) * scale` in f32; where a weight
//! exists both as float and as int8, the float one is the original and is kept.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use onnx_protobuf::{Message, ModelProto, NodeProto, TensorProto};

use crate::checkpoint::{labels_for, Checkpoint, SourceDType, SourceFile, Tensor};
use crate::error::{io_err, parse_err, ConvertError, Result};
use dbrt::model::config::{Activation, PosAttention, RelEmbeddingNorm};
use dbrt::Config;

/// Settings an ONNX graph does not state plainly; `None` means "infer".
#[derive(Debug, Clone, Default)]
pub struct OnnxOverrides {
    pub num_attention_heads: Option<usize>,
    pub max_position_embeddings: Option<usize>,
    pub position_buckets: Option<i64>,
    pub max_relative_positions: Option<i64>,
    pub pos_att_type: Option<Vec<String>>,
    pub layer_norm_eps: Option<f64>,
}

/// How a weight is consumed, which tells its layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Second input of MatMul/MatMulInteger, or Gemm without transB: stored `[in, out]`.
    MatMulB,
    /// Gemm with transB = 1: stored `[out, in]` like Hugging Face.
    GemmTransB,
    /// First input of Gather: an embedding table.
    Gather,
    Other,
}

struct Graph<'a> {
    path: &'a Path,
    nodes: &'a [NodeProto],
    init: HashMap<&'a str, &'a TensorProto>,
    consumers: HashMap<&'a str, Vec<usize>>,
}

const DT_FLOAT: i32 = 1;
const DT_UINT8: i32 = 2;
const DT_INT8: i32 = 3;
const DT_INT32: i32 = 6;
const DT_INT64: i32 = 7;
const DT_FLOAT16: i32 = 10;
const DT_DOUBLE: i32 = 11;
const DT_BFLOAT16: i32 = 16;

/// Decodes a tensor's elements as f32 (ints exactly, as long as they fit f32's 24 bits).
fn values(path: &Path, t: &TensorProto) -> Result<Vec<f32>> {
    if !t.external_data.is_empty() || t.data_location.value() == 1 {
        return Err(ConvertError::Unsupported(format!(
            "tensor '{}' keeps its data in an external file; re-export with the weights inside the .onnx",
            t.name
        )));
    }
    let numel = dims(t)
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| parse_err(path, format!("tensor '{}': dims {:?}", t.name, t.dims)))?;
    let raw = &t.raw_data;
    let v: Vec<f32> = match t.data_type {
        DT_FLOAT if !raw.is_empty() => bytemuck::pod_collect_to_vec::<u8, f32>(raw),
        DT_FLOAT => t.float_data.clone(),
        DT_UINT8 if !raw.is_empty() => raw.iter().map(|&b| b as f32).collect(),
        DT_INT8 if !raw.is_empty() => raw.iter().map(|&b| b as i8 as f32).collect(),
        DT_UINT8 | DT_INT8 | DT_INT32 if raw.is_empty() => {
            t.int32_data.iter().map(|&x| x as f32).collect()
        }
        DT_INT32 => bytemuck::pod_collect_to_vec::<u8, i32>(raw)
            .iter()
            .map(|&x| x as f32)
            .collect(),
        DT_INT64 if !raw.is_empty() => bytemuck::pod_collect_to_vec::<u8, i64>(raw)
            .iter()
            .map(|&x| x as f32)
            .collect(),
        DT_INT64 => t.int64_data.iter().map(|&x| x as f32).collect(),
        DT_DOUBLE if !raw.is_empty() => bytemuck::pod_collect_to_vec::<u8, f64>(raw)
            .iter()
            .map(|&x| x as f32)
            .collect(),
        DT_DOUBLE => t.double_data.iter().map(|&x| x as f32).collect(),
        DT_FLOAT16 => crate::hf::widen_f16(raw),
        DT_BFLOAT16 => crate::hf::widen_bf16(raw),
        dt => {
            return Err(ConvertError::Unsupported(format!(
                "tensor '{}' has ONNX data type {dt}",
                t.name
            )))
        }
    };
    if v.len() != numel {
        return Err(parse_err(
            path,
            format!(
                "tensor '{}': {} values for dims {:?}",
                t.name,
                v.len(),
                t.dims
            ),
        ));
    }
    Ok(v)
}

/// Negative dimensions (not legal in an initializer) read as 0, and `values` then refuses
/// whatever data comes with them.
fn dims(t: &TensorProto) -> Vec<usize> {
    t.dims.iter().map(|&d| d.max(0) as usize).collect()
}

/// The Hugging Face name inside an exported name: `m.deberta.x` → `deberta.x`.
fn hf_name(name: &str) -> Option<&str> {
    ["deberta.", "pooler.", "classifier."]
        .iter()
        .filter_map(|p| name.find(p).map(|i| &name[i..]))
        .min_by_key(|s| std::cmp::Reverse(s.len()))
}

impl<'a> Graph<'a> {
    /// The consumer that gives `name` its meaning, looking through pass-through ops.
    fn role(&self, name: &str) -> Role {
        let mut cur = name.to_string();
        for _ in 0..4 {
            let Some(cs) = self.consumers.get(cur.as_str()) else {
                return Role::Other;
            };
            let Some(&n) = cs.first() else {
                return Role::Other;
            };
            let node = &self.nodes[n];
            match node.op_type.as_str() {
                "Identity" | "Cast" | "DequantizeLinear" => match node.output.first() {
                    Some(o) => cur = o.clone(),
                    None => return Role::Other,
                },
                "MatMul" | "MatMulInteger" if node.input.get(1) == Some(&cur) => {
                    return Role::MatMulB
                }
                "Gemm" if node.input.get(1) == Some(&cur) => {
                    let trans_b = node
                        .attribute
                        .iter()
                        .find(|a| a.name == "transB")
                        .is_some_and(|a| a.i == 1);
                    return if trans_b {
                        Role::GemmTransB
                    } else {
                        Role::MatMulB
                    };
                }
                "Gather" if node.input.first() == Some(&cur) => return Role::Gather,
                _ => return Role::Other,
            }
        }
        Role::Other
    }

    /// The first named `.bias` initializer reached from `name`, breadth first, within six ops.
    fn bias_of(&self, name: &str) -> Option<&'a str> {
        let mut queue = VecDeque::from([(name.to_string(), 0)]);
        let mut seen = std::collections::HashSet::new();
        while let Some((t, depth)) = queue.pop_front() {
            if depth > 6 {
                continue;
            }
            for &n in self.consumers.get(t.as_str()).into_iter().flatten() {
                if !seen.insert(n) {
                    continue;
                }
                let node = &self.nodes[n];
                if let Some(b) = node
                    .input
                    .iter()
                    .find(|i| i.ends_with(".bias") && self.init.contains_key(i.as_str()))
                {
                    return self.init.get_key_value(b.as_str()).map(|(k, _)| *k);
                }
                for o in &node.output {
                    queue.push_back((o.clone(), depth + 1));
                }
            }
        }
        None
    }

    fn dequantize(&self, base: &str, q: &TensorProto, role: Role) -> Result<Vec<f32>> {
        let missing =
            |what: &str| parse_err(self.path, format!("'{base}_quantized' has no {what}"));
        let scale = values(
            self.path,
            self.init
                .get(format!("{base}_scale").as_str())
                .ok_or_else(|| missing("scale"))?,
        )?;
        let zp = values(
            self.path,
            self.init
                .get(format!("{base}_zero_point").as_str())
                .ok_or_else(|| missing("zero point"))?,
        )?;
        let qv = values(self.path, q)?;
        let d = dims(q);
        if scale.len() != zp.len() || scale.is_empty() {
            return Err(parse_err(
                self.path,
                format!("'{base}': {} scales, {} zero points", scale.len(), zp.len()),
            ));
        }
        let cols = d.last().copied().unwrap_or(1).max(1);
        // Per-tensor, or per-channel: along the output (columns of an [in, out] MatMul weight,
        // rows of an embedding table).
        let channel = |i: usize| -> Result<usize> {
            match scale.len() {
                1 => Ok(0),
                n if role == Role::Gather && d.len() == 2 && n == d[0] => Ok(i / cols),
                n if d.len() == 2 && n == d[1] => Ok(i % cols),
                n => Err(parse_err(
                    self.path,
                    format!("'{base}': {n} scales for dims {d:?}"),
                )),
            }
        };
        let mut out = Vec::with_capacity(qv.len());
        for (i, &v) in qv.iter().enumerate() {
            let c = channel(i)?;
            out.push((v - zp[c]) * scale[c]);
        }
        Ok(out)
    }

    /// A scalar constant: an initializer or a Constant node's value.
    fn scalar(&self, name: &str) -> Option<f32> {
        if let Some(t) = self.init.get(name) {
            return values(self.path, t)
                .ok()
                .filter(|v| v.len() == 1)
                .map(|v| v[0]);
        }
        let node = self
            .nodes
            .iter()
            .find(|n| n.op_type == "Constant" && n.output.first().is_some_and(|o| o == name))?;
        let t = node
            .attribute
            .iter()
            .find(|a| a.name == "value")?
            .t
            .as_ref()?;
        values(self.path, t)
            .ok()
            .filter(|v| v.len() == 1)
            .map(|v| v[0])
    }

    /// LayerNorm epsilon: a LayerNormalization node's attribute, or the constant added to the
    /// variance before Sqrt in the decomposed form torch exports at opset < 17.
    fn layer_norm_eps(&self) -> Option<f64> {
        if let Some(n) = self
            .nodes
            .iter()
            .find(|n| n.op_type == "LayerNormalization")
        {
            return Some(
                n.attribute
                    .iter()
                    .find(|a| a.name == "epsilon")
                    .map_or(1e-5, |a| a.f) as f64,
            );
        }
        let producer: HashMap<&str, &NodeProto> = self
            .nodes
            .iter()
            .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
            .collect();
        for n in self.nodes.iter().filter(|n| n.op_type == "Sqrt") {
            let Some(add) = n.input.first().and_then(|i| producer.get(i.as_str())) else {
                continue;
            };
            if add.op_type != "Add" {
                continue;
            }
            let from_mean = add.input.iter().any(|i| {
                producer
                    .get(i.as_str())
                    .is_some_and(|p| p.op_type == "ReduceMean")
            });
            if !from_mean {
                continue;
            }
            if let Some(eps) = add.input.iter().find_map(|i| self.scalar(i)) {
                return Some(eps as f64);
            }
        }
        None
    }

    fn has_op(&self, op: &str) -> bool {
        self.nodes.iter().any(|n| n.op_type == op)
    }
}

/// Reads an ONNX export; `config.json` beside it, when present, supplies the config and labels
/// (what it leaves out is read from the graph).
pub fn read(path: &Path, tokenizer: Option<&Path>, ov: &OnnxOverrides) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let mut sources = vec![SourceFile::hash_bytes(path, &bytes)];
    let model = ModelProto::parse_from_bytes(&bytes)
        .map_err(|e| parse_err(path, format!("not an ONNX model: {e}")))?;
    drop(bytes);
    let g = model
        .graph
        .as_ref()
        .ok_or_else(|| parse_err(path, "no graph"))?;
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for inp in &n.input {
            consumers.entry(inp.as_str()).or_default().push(i);
        }
    }
    let graph = Graph {
        path,
        nodes: &g.node,
        init: g.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
        consumers,
    };

    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut dtypes: BTreeMap<String, SourceDType> = BTreeMap::new();
    let mut names: Vec<&str> = graph.init.keys().copied().collect();
    names.sort();
    // Float initializers first, so that an int8 copy never replaces a float original.
    for pass in [false, true] {
        for &name in &names {
            if name.ends_with("_scale") || name.ends_with("_zero_point") {
                continue;
            }
            let quantized = name.strip_suffix("_quantized");
            if quantized.is_some() != pass {
                continue;
            }
            let t = graph.init[name];
            let base = quantized.unwrap_or(name);
            let role = graph.role(name);
            let hf = match hf_name(base) {
                Some(n) => n.to_string(),
                None if dims(t).len() == 2 && role != Role::Other => {
                    match graph.bias_of(name).and_then(hf_name) {
                        Some(b) => format!("{}.weight", b.trim_end_matches(".bias")),
                        None => {
                            log::debug!("{name}: no bias reached, skipped");
                            continue;
                        }
                    }
                }
                None => continue,
            };
            if tensors.contains_key(&hf) {
                continue;
            }
            let (data, dt) = match quantized {
                Some(base) => (
                    graph.dequantize(base, t, role)?,
                    SourceDType::Int8Dequantized,
                ),
                None if matches!(t.data_type, DT_FLOAT | DT_FLOAT16 | DT_BFLOAT16 | DT_DOUBLE) => {
                    (values(path, t)?, SourceDType::F32)
                }
                None => continue,
            };
            let mut tensor = Tensor::new(dims(t), data);
            if role == Role::MatMulB && tensor.shape.len() == 2 {
                tensor = tensor.transposed();
            }
            dtypes.insert(hf.clone(), dt);
            tensors.insert(hf, tensor);
        }
    }

    let cfg_path = path.with_file_name("config.json");
    let config_source = if cfg_path.is_file() {
        cfg_path.clone()
    } else {
        path.to_path_buf()
    };
    let (config, id2label) = if cfg_path.is_file() {
        let b = std::fs::read(&cfg_path).map_err(io_err(&cfg_path))?;
        sources.push(SourceFile::hash_bytes(&cfg_path, &b));
        let j: serde_json::Value =
            serde_json::from_slice(&b).map_err(|e| parse_err(&cfg_path, e))?;
        let merged = merged_config_json(&graph, &tensors, ov, &j)?;
        let (mut c, id2label) = crate::hf::parse_config(&merged, &cfg_path)?;
        c.num_labels = tensors.get("classifier.bias").map_or(0, |t| t.data.len());
        (c, id2label)
    } else {
        (infer_config(&graph, &tensors, ov)?, None)
    };
    let labels = labels_for(id2label.as_ref(), config.num_labels);
    let dir = path.parent().unwrap_or(Path::new("."));
    let (tokenizer_json, tok_source) = crate::tokenizer_source::find(dir, tokenizer)?;
    sources.extend(tok_source);
    Ok(Checkpoint {
        config,
        labels,
        tensors,
        source_dtypes: dtypes,
        tokenizer_json,
        source_kind: "onnx",
        sources,
        input: path.to_path_buf(),
        config_source,
    })
}

/// config.json's keys laid over what the graph says: a partial config.json (only
/// `id2label`/`label2id`, or a few keys) takes the rest from the graph, not from
/// `DebertaV2Config`'s defaults, which describe another model size. When the graph does not
/// tell (an activation other than exact GELU, ...), a config.json naming its `model_type` is
/// the whole config, as Hugging Face reads it.
fn merged_config_json(
    g: &Graph<'_>,
    t: &BTreeMap<String, Tensor>,
    ov: &OnnxOverrides,
    j: &serde_json::Value,
) -> Result<serde_json::Value> {
    let inferred = match infer_config(g, t, ov) {
        Ok(c) => c,
        Err(e) if j.get("model_type").is_some() => {
            log::debug!("config.json alone: the graph does not tell ({e})");
            return Ok(j.clone());
        }
        Err(e) => return Err(e),
    };
    let mut merged = crate::hf::config_json(&inferred);
    if let (Some(m), Some(given)) = (merged.as_object_mut(), j.as_object()) {
        for (k, v) in given {
            m.insert(k.clone(), v.clone());
        }
    }
    Ok(merged)
}

/// A tensor whose shape the config is read from: it must be a matrix.
fn matrix<'t>(
    g: &Graph<'_>,
    t: &'t BTreeMap<String, Tensor>,
    name: &str,
) -> Result<Option<&'t Tensor>> {
    match t.get(name) {
        Some(m) if m.shape.len() != 2 => Err(parse_err(
            g.path,
            format!("'{name}' has shape {:?}, expected a matrix", m.shape),
        )),
        m => Ok(m),
    }
}

fn len_of(t: &BTreeMap<String, Tensor>, name: &str) -> Result<usize> {
    t.get(name)
        .map(|t| t.data.len())
        .ok_or_else(|| ConvertError::MissingTensor(name.into()))
}

/// The config from tensor shapes and graph structure, for exports without a config.json.
fn infer_config(g: &Graph<'_>, t: &BTreeMap<String, Tensor>, ov: &OnnxOverrides) -> Result<Config> {
    let word = matrix(g, t, "deberta.embeddings.word_embeddings.weight")?.ok_or_else(|| {
        ConvertError::MissingTensor("deberta.embeddings.word_embeddings.weight".into())
    })?;
    let hidden = len_of(t, "deberta.embeddings.LayerNorm.weight")?;
    let layers = (0..)
        .take_while(|l| t.contains_key(&format!("deberta.encoder.layer.{l}.output.dense.bias")))
        .count();
    let heads = match ov.num_attention_heads {
        Some(0) => return Err(ConvertError::Invalid("--num-heads 0".into())),
        Some(h) => h,
        // Every published DeBERTa-v2/v3 size uses 64-wide heads.
        None if hidden > 0 && hidden % 64 == 0 => hidden / 64,
        None => {
            return Err(ConvertError::Invalid(format!(
                "hidden size {hidden}: pass --num-heads"
            )))
        }
    };
    let rel_rows = matrix(g, t, "deberta.encoder.rel_embeddings.weight")?.map(|r| r.shape[0]);
    let bucketed = g.has_op("Log");
    let pos_key = t.contains_key("deberta.encoder.layer.0.attention.self.pos_key_proj.bias");
    let pos_query = t.contains_key("deberta.encoder.layer.0.attention.self.pos_query_proj.bias");
    let pos_att = match &ov.pos_att_type {
        Some(v) => v.clone(),
        None if pos_key && !pos_query => vec!["c2p".into()],
        None if pos_query && !pos_key => vec!["p2c".into()],
        None => vec!["p2c".into(), "c2p".into()],
    };
    if !g.has_op("Erf") {
        return Err(ConvertError::Unsupported(
            "no Erf in the graph: the activation is not exact GELU".into(),
        ));
    }
    let position = matrix(g, t, "deberta.embeddings.position_embeddings.weight")?;
    let eps = ov
        .layer_norm_eps
        .or_else(|| g.layer_norm_eps())
        .unwrap_or(1e-7);
    let config = Config {
        vocab_size: word.shape[0],
        hidden_size: hidden,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        attention_head_size: hidden / heads,
        intermediate_size: len_of(t, "deberta.encoder.layer.0.intermediate.dense.bias")?,
        max_position_embeddings: ov
            .max_position_embeddings
            .or(position.map(|p| p.shape[0]))
            .unwrap_or(512),
        type_vocab_size: matrix(g, t, "deberta.embeddings.token_type_embeddings.weight")?
            .map_or(0, |x| x.shape[0]),
        embedding_size: word.shape[1],
        layer_norm_eps: eps,
        hidden_act: Activation::Gelu,
        position_biased_input: position.is_some(),
        relative_attention: rel_rows.is_some(),
        pos_att: PosAttention::parse(&pos_att)?,
        share_att_key: !pos_key && !pos_query,
        norm_rel_ebd: if t.contains_key("deberta.encoder.LayerNorm.weight") {
            RelEmbeddingNorm::LayerNorm
        } else {
            RelEmbeddingNorm::None
        },
        max_relative_positions: ov
            .max_relative_positions
            .unwrap_or(match (bucketed, rel_rows) {
                (false, Some(r)) => (r / 2) as i64,
                _ => -1,
            }),
        position_buckets: ov.position_buckets.unwrap_or(match (bucketed, rel_rows) {
            (true, Some(r)) => (r / 2) as i64,
            _ => -1,
        }),
        pooler_hidden_size: t.get("pooler.dense.bias").map_or(hidden, |b| b.data.len()),
        pooler_hidden_act: Activation::Gelu,
        num_labels: t.get("classifier.bias").map_or(0, |b| b.data.len()),
        pad_token_id: 0,
    };
    log::info!(
        "inferred from the graph: {layers} layers, hidden {hidden}, {heads} heads, eps {eps:e}, buckets {}",
        config.position_buckets
    );
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::GraphProto;
    use protobuf::MessageField;

    fn float(name: &str, dims: &[i64]) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.data_type = DT_FLOAT;
        t.dims = dims.to_vec();
        let n: i64 = dims.iter().product();
        t.float_data = vec![0.5; n.max(0) as usize];
        t
    }

    /// An .onnx file of these initializers and nodes, read without a config.json.
    fn read_graph(
        init: Vec<TensorProto>,
        nodes: Vec<NodeProto>,
        ov: &OnnxOverrides,
    ) -> Result<Checkpoint> {
        let mut g = GraphProto::new();
        g.initializer = init;
        g.node = nodes;
        let mut m = ModelProto::new();
        m.graph = MessageField::some(g);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, m.write_to_bytes().unwrap()).unwrap();
        read(&path, None, ov)
    }

    const WORD: &str = "deberta.embeddings.word_embeddings.weight";
    const LN: &str = "deberta.embeddings.LayerNorm.weight";

    #[test]
    fn config_inference_refuses_what_it_cannot_read_shapes_from() {
        let e = read_graph(vec![float(WORD, &[])], vec![], &Default::default());
        let e = e.unwrap_err().to_string();
        assert!(e.contains(WORD) && e.contains("expected a matrix"), "{e}");
        // An exact GELU, so that inference gets as far as dividing by the head count.
        let mut erf = NodeProto::new();
        erf.op_type = "Erf".into();
        // A LayerNorm of width 0: no head count can be derived from it.
        let e = read_graph(
            vec![float(WORD, &[4, 2]), float(LN, &[0])],
            vec![erf.clone()],
            &Default::default(),
        );
        let e = e.unwrap_err().to_string();
        assert!(e.contains("hidden size 0"), "{e}");
        let ov = OnnxOverrides {
            num_attention_heads: Some(0),
            ..Default::default()
        };
        let e = read_graph(
            vec![float(WORD, &[4, 64]), float(LN, &[64])],
            vec![erf],
            &ov,
        );
        let e = e.unwrap_err().to_string();
        assert!(e.contains("--num-heads 0"), "{e}");
    }

    #[test]
    fn a_node_without_outputs_is_not_followed() {
        let mut n = NodeProto::new();
        n.op_type = "Identity".into();
        n.input = vec!["onnx::MatMul_1".into()];
        let e = read_graph(
            vec![float("onnx::MatMul_1", &[2, 2])],
            vec![n],
            &Default::default(),
        );
        assert!(
            matches!(e, Err(ConvertError::MissingTensor(ref t)) if t == WORD),
            "{e:?}"
        );
    }

    #[test]
    fn element_counts_that_overflow_are_refused() {
        // 2^62 × 4 wraps to 0, which matched the 0 values given.
        let mut t = float("x", &[1 << 62, 4]);
        t.float_data.clear();
        let e = values(Path::new("m.onnx"), &t).unwrap_err().to_string();
        assert!(e.contains("tensor 'x': dims"), "{e}");
    }
}
