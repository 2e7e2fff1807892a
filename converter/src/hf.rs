//! Hugging Face checkpoints: `config.json`, weights as safetensors (single or sharded) or a
//! torch `pytorch_model.bin`, and `tokenizer.json` or `spm.model`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::checkpoint::{labels_for, Checkpoint, SourceDType, SourceFile, Tensor};
use crate::error::{io_err, parse_err, ConvertError, Result};
use dbrt::model::config::{Activation, PosAttention, RelEmbeddingNorm};
use dbrt::Config;

/// Reads a Hugging Face model directory.
pub fn read_dir(dir: &Path, tokenizer: Option<&Path>) -> Result<Checkpoint> {
    let cfg_path = dir.join("config.json");
    let cfg_bytes = std::fs::read(&cfg_path).map_err(io_err(&cfg_path))?;
    let mut sources = vec![SourceFile::hash_bytes(&cfg_path, &cfg_bytes)];
    let json: Value = serde_json::from_slice(&cfg_bytes).map_err(|e| parse_err(&cfg_path, e))?;
    let (mut config, id2label) = parse_config(&json, &cfg_path)?;

    let (raw, kind, files) = read_weights(dir)?;
    for f in &files {
        sources.push(SourceFile::hash(f)?);
    }
    let (tensors, source_dtypes) = normalize_names(raw);
    // The label count comes from the classifier, not from id2label (transformers omits the
    // default two labels from config.json).
    config.num_labels = tensors.get("classifier.bias").map_or(0, |t| t.data.len());
    let labels = labels_for(id2label.as_ref(), config.num_labels);
    let (tokenizer_json, tok_source) = crate::tokenizer_source::find(dir, tokenizer)?;
    if let Some(s) = tok_source {
        sources.push(s);
    }
    Ok(Checkpoint {
        config,
        labels,
        tensors,
        source_dtypes,
        tokenizer_json,
        source_kind: kind,
        sources,
        input: dir.to_path_buf(),
        config_source: cfg_path,
    })
}

fn get_usize(j: &Value, key: &str, default: usize, path: &Path) -> Result<usize> {
    match j.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| parse_err(path, format!("'{key}' must be a non-negative integer"))),
    }
}

fn get_i64(j: &Value, key: &str, default: i64, path: &Path) -> Result<i64> {
    match j.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| parse_err(path, format!("'{key}' must be an integer"))),
    }
}

fn get_bool(j: &Value, key: &str, default: bool, path: &Path) -> Result<bool> {
    match j.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| parse_err(path, format!("'{key}' must be a boolean"))),
    }
}

fn get_act(j: &Value, key: &str, path: &Path) -> Result<Activation> {
    let name = match j.get(key) {
        None | Some(Value::Null) => "gelu",
        Some(v) => v
            .as_str()
            .ok_or_else(|| parse_err(path, format!("'{key}' must be a string")))?,
    };
    Activation::parse(name).ok_or_else(|| ConvertError::Unsupported(format!("{key} '{name}'")))
}

/// Maps `config.json` onto [`Config`] with `DebertaV2Config`'s defaults and the getattr
/// defaults of the modeling code. `num_labels` is set later from the classifier's shape.
pub fn parse_config(j: &Value, path: &Path) -> Result<(Config, Option<BTreeMap<usize, String>>)> {
    let model_type = j.get("model_type").and_then(Value::as_str).unwrap_or("");
    if model_type != "deberta-v2" {
        return Err(ConvertError::Unsupported(format!(
            "model_type '{model_type}': dbrt runs deberta-v2 (DeBERTa-v2 and -v3) models"
        )));
    }
    if get_usize(j, "conv_kernel_size", 0, path)? > 0 {
        return Err(ConvertError::Unsupported(
            "conv_kernel_size > 0 (the encoder's ConvLayer)".into(),
        ));
    }
    let hidden = get_usize(j, "hidden_size", 1536, path)?;
    let heads = get_usize(j, "num_attention_heads", 24, path)?;
    let pos_att: Vec<String> = match j.get("pos_att_type") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s
            .to_lowercase()
            .split('|')
            .map(|p| p.trim().to_string())
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(_) => return Err(parse_err(path, "'pos_att_type' must be a list or a string")),
    };
    let norm_rel_ebd_parts: Vec<String> = j
        .get("norm_rel_ebd")
        .and_then(Value::as_str)
        .unwrap_or("none")
        .to_lowercase()
        .split('|')
        .map(|p| p.trim().to_string())
        .collect();
    if let Some(p) = norm_rel_ebd_parts
        .iter()
        .find(|p| *p != "none" && *p != "layer_norm")
    {
        return Err(ConvertError::Unsupported(format!("norm_rel_ebd '{p}'")));
    }
    let norm_rel_ebd = if norm_rel_ebd_parts.iter().any(|p| p == "layer_norm") {
        RelEmbeddingNorm::LayerNorm
    } else {
        RelEmbeddingNorm::None
    };
    let eps = match j.get("layer_norm_eps") {
        None | Some(Value::Null) => 1e-7,
        Some(v) => v
            .as_f64()
            .ok_or_else(|| parse_err(path, "'layer_norm_eps' must be a number"))?,
    };
    let config = Config {
        vocab_size: get_usize(j, "vocab_size", 128100, path)?,
        hidden_size: hidden,
        num_hidden_layers: get_usize(j, "num_hidden_layers", 24, path)?,
        num_attention_heads: heads,
        attention_head_size: get_usize(
            j,
            "attention_head_size",
            hidden.checked_div(heads).unwrap_or(0),
            path,
        )?,
        intermediate_size: get_usize(j, "intermediate_size", 6144, path)?,
        max_position_embeddings: get_usize(j, "max_position_embeddings", 512, path)?,
        type_vocab_size: get_usize(j, "type_vocab_size", 0, path)?,
        embedding_size: get_usize(j, "embedding_size", hidden, path)?,
        layer_norm_eps: eps,
        hidden_act: get_act(j, "hidden_act", path)?,
        position_biased_input: get_bool(j, "position_biased_input", true, path)?,
        relative_attention: get_bool(j, "relative_attention", false, path)?,
        pos_att: PosAttention::parse(&pos_att)?,
        share_att_key: get_bool(j, "share_att_key", false, path)?,
        norm_rel_ebd,
        max_relative_positions: get_i64(j, "max_relative_positions", -1, path)?,
        position_buckets: get_i64(j, "position_buckets", -1, path)?,
        pooler_hidden_size: get_usize(j, "pooler_hidden_size", hidden, path)?,
        pooler_hidden_act: get_act(j, "pooler_hidden_act", path)?,
        num_labels: 0,
        pad_token_id: u32::try_from(get_usize(j, "pad_token_id", 0, path)?)
            .map_err(|_| parse_err(path, "'pad_token_id' does not fit in 32 bits"))?,
    };
    let id2label = match j.get("id2label") {
        Some(Value::Object(m)) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let i: usize = k
                    .parse()
                    .map_err(|_| parse_err(path, format!("id2label key '{k}'")))?;
                out.insert(i, v.as_str().unwrap_or_default().to_string());
            }
            Some(out)
        }
        // Only the inverse map: a hand-written config.json may give either.
        _ => match j.get("label2id") {
            Some(Value::Object(m)) => {
                let mut out = BTreeMap::new();
                for (name, i) in m {
                    let i = i.as_u64().ok_or_else(|| {
                        parse_err(path, format!("label2id '{name}' must map to an index"))
                    })?;
                    out.insert(i as usize, name.clone());
                }
                Some(out)
            }
            _ => None,
        },
    };
    Ok((config, id2label))
}

/// `c` as the `config.json` keys [`parse_config`] reads back to it: what the graph says,
/// under which a partial config.json beside an .onnx is laid.
pub fn config_json(c: &Config) -> Value {
    let act = |a: Activation| Value::from(a.name());
    serde_json::json!({
        "model_type": "deberta-v2",
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "attention_head_size": c.attention_head_size,
        "intermediate_size": c.intermediate_size,
        "max_position_embeddings": c.max_position_embeddings,
        "type_vocab_size": c.type_vocab_size,
        "embedding_size": c.embedding_size,
        "layer_norm_eps": c.layer_norm_eps,
        "hidden_act": act(c.hidden_act),
        "position_biased_input": c.position_biased_input,
        "relative_attention": c.relative_attention,
        "pos_att_type": c.pos_att.names(),
        "share_att_key": c.share_att_key,
        "norm_rel_ebd": match c.norm_rel_ebd {
            RelEmbeddingNorm::LayerNorm => "layer_norm",
            RelEmbeddingNorm::None => "none",
        },
        "max_relative_positions": c.max_relative_positions,
        "position_buckets": c.position_buckets,
        "pooler_hidden_size": c.pooler_hidden_size,
        "pooler_hidden_act": act(c.pooler_hidden_act),
        "pad_token_id": c.pad_token_id,
    })
}

type RawTensors = BTreeMap<String, (Tensor, SourceDType)>;

/// Reads every floating-point tensor of the checkpoint's weight files as f32.
fn read_weights(dir: &Path) -> Result<(RawTensors, &'static str, Vec<PathBuf>)> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let bin = dir.join("pytorch_model.bin");
    if single.exists() {
        Ok((read_safetensors(&single)?, "hf-safetensors", vec![single]))
    } else if index.exists() {
        let bytes = std::fs::read(&index).map_err(io_err(&index))?;
        let j: Value = serde_json::from_slice(&bytes).map_err(|e| parse_err(&index, e))?;
        let map = j
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| parse_err(&index, "no weight_map"))?;
        let files: BTreeSet<&str> = map.values().filter_map(Value::as_str).collect();
        let mut all = RawTensors::new();
        let mut paths = vec![index.clone()];
        for f in files {
            if f.contains('/') || f.contains("..") {
                return Err(parse_err(&index, format!("shard name '{f}'")));
            }
            let p = dir.join(f);
            all.extend(read_safetensors(&p)?);
            paths.push(p);
        }
        Ok((all, "hf-safetensors", paths))
    } else if bin.exists() {
        Ok((crate::torch_bin::read(&bin)?, "hf-pytorch-bin", vec![bin]))
    } else {
        Err(ConvertError::Invalid(format!(
            "{}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin",
            dir.display()
        )))
    }
}

fn read_safetensors(path: &Path) -> Result<RawTensors> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    // SAFETY: read-only map of a file we only read from; the converter is the only user.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
    let st = safetensors::SafeTensors::deserialize(&map).map_err(|e| parse_err(path, e))?;
    let mut out = RawTensors::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let (data, dt) = match view.dtype() {
            safetensors::Dtype::F32 => (
                bytemuck::pod_collect_to_vec::<u8, f32>(view.data()),
                SourceDType::F32,
            ),
            safetensors::Dtype::F16 => (widen_f16(view.data()), SourceDType::F16),
            safetensors::Dtype::BF16 => (widen_bf16(view.data()), SourceDType::BF16),
            other => {
                log::debug!("skipping {name}: dtype {other:?}");
                continue;
            }
        };
        out.insert(name, (Tensor::new(shape, data), dt));
    }
    Ok(out)
}

/// Little-endian f16 to f32.
pub(crate) fn widen_f16(bytes: &[u8]) -> Vec<f32> {
    bytemuck::pod_collect_to_vec::<u8, half::f16>(bytes)
        .iter()
        .map(|x| x.to_f32())
        .collect()
}

/// Little-endian bf16 to f32.
pub(crate) fn widen_bf16(bytes: &[u8]) -> Vec<f32> {
    bytemuck::pod_collect_to_vec::<u8, half::bf16>(bytes)
        .iter()
        .map(|x| x.to_f32())
        .collect()
}

/// Puts every tensor under the names of `DebertaV2ForSequenceClassification` (a bare
/// `DebertaV2Model` checkpoint lacks the `deberta.` prefix).
fn normalize_names(raw: RawTensors) -> (BTreeMap<String, Tensor>, BTreeMap<String, SourceDType>) {
    let bare = !raw.keys().any(|k| k.starts_with("deberta."));
    let mut tensors = BTreeMap::new();
    let mut dtypes = BTreeMap::new();
    for (k, (t, d)) in raw {
        let name = if bare && (k.starts_with("embeddings.") || k.starts_with("encoder.")) {
            format!("deberta.{k}")
        } else {
            k
        };
        dtypes.insert(name.clone(), d);
        tensors.insert(name, t);
    }
    (tensors, dtypes)
}
