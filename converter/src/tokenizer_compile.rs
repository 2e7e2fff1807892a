//! Compiles a tokenizer.json (a DeBERTa-v2/v3 SentencePiece Unigram tokenizer) into the tables
//! and metadata the runtime's tokenizer walks in place. See docs/FORMAT.md, "Tokenizer".
//! Whatever the runtime could not reproduce exactly is refused here, by name.

use std::collections::BTreeMap;

use dbrt::format::{DType, FileWriter, MetaValue};
use serde_json::Value;

use crate::error::{ConvertError, Result};

fn unsupported(what: impl std::fmt::Display) -> ConvertError {
    ConvertError::Unsupported(format!("tokenizer: {what}"))
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value> {
    v.get(key)
        .ok_or_else(|| ConvertError::Invalid(format!("tokenizer.json: no '{key}'")))
}

/// The compiled tokenizer, ready to be added to a file.
pub struct CompiledTokenizer {
    tensors: Vec<(&'static str, DType, Vec<u8>, u64)>,
    meta: Vec<(&'static str, MetaValue)>,
    /// Highest token id the tokenizer produces.
    pub max_id: u32,
}

impl CompiledTokenizer {
    pub fn add_to(self, w: &mut FileWriter) -> Result<()> {
        for (name, dtype, data, n) in self.tensors {
            w.add_tensor(name, dtype, &[n], data)?;
        }
        for (k, v) in self.meta {
            w.metadata.set(k, v);
        }
        Ok(())
    }
}

/// A byte trie over the pieces, numbered breadth first (children after parents).
fn build_trie(pieces: &[String]) -> (Vec<u32>, Vec<u8>, Vec<u32>, Vec<i32>) {
    let mut children: Vec<BTreeMap<u8, usize>> = vec![BTreeMap::new()];
    let mut value: Vec<i32> = vec![-1];
    for (id, p) in pieces.iter().enumerate() {
        let mut node = 0;
        for &b in p.as_bytes() {
            node = match children[node].get(&b) {
                Some(&n) => n,
                None => {
                    children.push(BTreeMap::new());
                    value.push(-1);
                    let n = children.len() - 1;
                    children[node].insert(b, n);
                    n
                }
            };
        }
        // A piece listed twice resolves to its last id, as tokenizers' token_to_ids does.
        if node != 0 {
            value[node] = id as i32;
        }
    }
    let mut order = vec![0usize];
    let mut new_id = vec![usize::MAX; children.len()];
    new_id[0] = 0;
    let mut i = 0;
    while i < order.len() {
        for &c in children[order[i]].values() {
            new_id[c] = order.len();
            order.push(c);
        }
        i += 1;
    }
    let (mut edge_start, mut labels, mut targets, mut values) =
        (vec![0u32], Vec::new(), Vec::new(), Vec::new());
    for &old in &order {
        for (&b, &c) in &children[old] {
            labels.push(b);
            targets.push(new_id[c] as u32);
        }
        edge_start.push(labels.len() as u32);
        values.push(value[old]);
    }
    (edge_start, labels, targets, values)
}

fn ids_in_template(pp: &Value) -> Result<(u32, u32)> {
    let kind = pp.get("type").and_then(Value::as_str).unwrap_or("none");
    if kind != "TemplateProcessing" {
        return Err(unsupported(format!(
            "post-processor '{kind}' (dbrt knows the [CLS] A [SEP] B [SEP] template)"
        )));
    }
    // The exact shape dbrt applies: [CLS]:0 $A:0 [SEP]:0 and [CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1.
    let shape = |key: &str| -> Vec<String> {
        pp.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|p| match p.as_object().and_then(|o| o.iter().next()) {
                        Some((k, v)) => {
                            format!("{k}:{}:{}", v["id"].as_str().unwrap_or(""), v["type_id"])
                        }
                        None => String::new(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let single = shape("single");
    let pair = shape("pair");
    let want_single = [
        "SpecialToken:[CLS]:0",
        "Sequence:A:0",
        "SpecialToken:[SEP]:0",
    ];
    let want_pair = [
        "SpecialToken:[CLS]:0",
        "Sequence:A:0",
        "SpecialToken:[SEP]:0",
        "Sequence:B:1",
        "SpecialToken:[SEP]:1",
    ];
    if single != want_single || pair != want_pair {
        return Err(unsupported(format!(
            "template single {single:?} pair {pair:?}"
        )));
    }
    let special = |name: &str| -> Result<u32> {
        let ids = pp["special_tokens"][name]["ids"]
            .as_array()
            .ok_or_else(|| unsupported(format!("no ids for {name}")))?;
        match ids.as_slice() {
            [id] => id
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| unsupported(format!("{name} id {id}"))),
            _ => Err(unsupported(format!("{name} maps to {} ids", ids.len()))),
        }
    };
    Ok((special("[CLS]")?, special("[SEP]")?))
}

fn normalizers(n: &Value) -> Result<(Vec<String>, Option<Vec<u8>>)> {
    let list: Vec<&Value> = match n.get("type").and_then(Value::as_str) {
        None => Vec::new(),
        Some("Sequence") => field(n, "normalizers")?
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        Some(_) => vec![n],
    };
    let mut names = Vec::new();
    let mut charsmap = None;
    // Stages in the only order the runtime applies them: strip, charsmap, collapse spaces.
    let mut stage = 0;
    for item in list {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("?");
        let (name, at) = match kind {
            "Strip" => {
                let l = item
                    .get("strip_left")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let r = item
                    .get("strip_right")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                (
                    match (l, r) {
                        (true, true) => "strip",
                        (true, false) => "strip_left",
                        (false, true) => "strip_right",
                        (false, false) => continue,
                    },
                    1,
                )
            }
            "Precompiled" => {
                let b64 = field(item, "precompiled_charsmap")?.as_str().unwrap_or("");
                let bytes = base64::decode(b64)
                    .map_err(|e| ConvertError::Invalid(format!("precompiled_charsmap: {e}")))?;
                if !bytes.is_empty() {
                    crate::validate::check_charsmap(&bytes).map_err(|m| {
                        ConvertError::Invalid(format!("tokenizer.json: precompiled_charsmap: {m}"))
                    })?;
                    charsmap = Some(bytes);
                }
                ("precompiled", 2)
            }
            "Replace" => {
                let pat = item["pattern"]["Regex"]
                    .as_str()
                    .or(item["pattern"]["String"].as_str());
                if pat != Some(" {2,}") || item["content"].as_str() != Some(" ") {
                    return Err(unsupported(format!(
                        "Replace {} → {}",
                        item["pattern"], item["content"]
                    )));
                }
                ("collapse_spaces", 3)
            }
            other => return Err(unsupported(format!("normalizer '{other}'"))),
        };
        if at <= stage {
            return Err(unsupported(format!(
                "normalizer order (… {kind} after a later stage)"
            )));
        }
        stage = at;
        if name != "precompiled" || charsmap.is_some() {
            names.push(name.to_string());
        }
    }
    Ok((names, charsmap))
}

fn metaspace(p: &Value) -> Result<(String, bool)> {
    let item = match p.get("type").and_then(Value::as_str) {
        Some("Sequence") => match field(p, "pretokenizers")?.as_array().map(Vec::as_slice) {
            Some([one]) => one,
            _ => {
                return Err(unsupported(
                    "a pre-tokenizer sequence other than one Metaspace",
                ))
            }
        },
        _ => p,
    };
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("none");
    if kind != "Metaspace" {
        return Err(unsupported(format!("pre-tokenizer '{kind}'")));
    }
    if item.get("replacement").and_then(Value::as_str) != Some("\u{2581}") {
        return Err(unsupported(format!(
            "Metaspace replacement {}",
            item["replacement"]
        )));
    }
    let prepend = match (
        item.get("prepend_scheme").and_then(Value::as_str),
        item.get("add_prefix_space").and_then(Value::as_bool),
    ) {
        (Some(s @ ("always" | "first" | "never")), _) => s.to_string(),
        (None, Some(true)) | (None, None) => "always".to_string(),
        (None, Some(false)) => "never".to_string(),
        (Some(s), _) => return Err(unsupported(format!("prepend scheme '{s}'"))),
    };
    Ok((
        prepend,
        item.get("split").and_then(Value::as_bool).unwrap_or(true),
    ))
}

/// Compiles tokenizer.json bytes. `max_length` is the truncation length the runtime applies.
pub fn compile(json: &[u8], max_length: usize) -> Result<CompiledTokenizer> {
    let t: Value = serde_json::from_slice(json)
        .map_err(|e| ConvertError::Invalid(format!("tokenizer.json: {e}")))?;
    let model = field(&t, "model")?;
    let kind = model.get("type").and_then(Value::as_str).unwrap_or("?");
    if kind != "Unigram" {
        return Err(unsupported(format!(
            "model '{kind}' (dbrt runs SentencePiece Unigram tokenizers)"
        )));
    }
    if model.get("byte_fallback").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported("byte_fallback"));
    }
    let vocab = field(model, "vocab")?
        .as_array()
        .ok_or_else(|| ConvertError::Invalid("tokenizer.json: vocab".into()))?;
    let mut pieces = Vec::with_capacity(vocab.len());
    let mut scores = Vec::with_capacity(vocab.len());
    for v in vocab {
        let (p, s) = (
            v.get(0).and_then(Value::as_str),
            v.get(1).and_then(Value::as_f64),
        );
        let (Some(p), Some(s)) = (p, s) else {
            return Err(ConvertError::Invalid(format!(
                "tokenizer.json: vocab entry {v}"
            )));
        };
        pieces.push(p.to_string());
        scores.push(s);
    }
    let unk_id = model
        .get("unk_id")
        .and_then(Value::as_u64)
        .ok_or_else(|| unsupported("a Unigram model without unk_id"))?;
    if unk_id >= pieces.len() as u64 {
        return Err(ConvertError::Invalid(format!(
            "tokenizer.json: unk_id {unk_id} is outside the {} pieces",
            pieces.len()
        )));
    }
    let min_score = scores.iter().copied().fold(f64::INFINITY, f64::min);
    let (normalizers, charsmap) = normalizers(t.get("normalizer").unwrap_or(&Value::Null))?;
    let (prepend, split) = metaspace(t.get("pre_tokenizer").unwrap_or(&Value::Null))?;
    let (cls, sep) = ids_in_template(t.get("post_processor").unwrap_or(&Value::Null))?;
    let (mut added, mut added_ids, mut added_norm) = (Vec::new(), Vec::new(), Vec::new());
    let mut max_id = (pieces.len() as u32).saturating_sub(1).max(cls).max(sep);
    for a in t
        .get("added_tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let content = a["content"].as_str().unwrap_or_default();
        for flag in ["lstrip", "rstrip", "single_word"] {
            if a[flag].as_bool() == Some(true) {
                return Err(unsupported(format!("added token '{content}' with {flag}")));
            }
        }
        if content.is_empty() || content.len() > 64 {
            return Err(unsupported(format!(
                "added token of {} bytes (1 to 64)",
                content.len()
            )));
        }
        let id = a["id"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                ConvertError::Invalid(format!("added token '{content}' has no 32-bit id"))
            })?;
        max_id = max_id.max(id);
        added.push(content.to_string());
        added_ids.push(id as i64);
        added_norm.push(a["normalized"].as_bool().unwrap_or(false) as i64);
    }
    let (edge_start, labels, targets, values) = build_trie(&pieces);
    let bytes_of = |v: &[u32]| bytemuck::cast_slice::<u32, u8>(v).to_vec();
    let mut tensors = vec![
        (
            "tokenizer.scores",
            DType::F64,
            bytemuck::cast_slice::<f64, u8>(&scores).to_vec(),
            scores.len() as u64,
        ),
        (
            "tokenizer.trie.edge_start",
            DType::I32,
            bytes_of(&edge_start),
            edge_start.len() as u64,
        ),
        (
            "tokenizer.trie.labels",
            DType::U8,
            labels.clone(),
            labels.len() as u64,
        ),
        (
            "tokenizer.trie.targets",
            DType::I32,
            bytes_of(&targets),
            targets.len() as u64,
        ),
        (
            "tokenizer.trie.values",
            DType::I32,
            bytemuck::cast_slice::<i32, u8>(&values).to_vec(),
            values.len() as u64,
        ),
    ];
    if let Some(c) = charsmap {
        let n = c.len() as u64;
        tensors.push(("tokenizer.charsmap", DType::U8, c, n));
    }
    let meta = vec![
        ("tokenizer.kind", MetaValue::Str("unigram".into())),
        ("tokenizer.unk_id", MetaValue::I64(unk_id as i64)),
        // tokenizers' Unigram always fuses consecutive unknowns.
        ("tokenizer.fuse_unk", MetaValue::Bool(true)),
        ("tokenizer.min_score", MetaValue::F64(min_score)),
        ("tokenizer.normalizers", MetaValue::StrList(normalizers)),
        ("tokenizer.metaspace.prepend", MetaValue::Str(prepend)),
        ("tokenizer.metaspace.split", MetaValue::Bool(split)),
        ("tokenizer.added.tokens", MetaValue::StrList(added)),
        ("tokenizer.added.ids", MetaValue::I64List(added_ids)),
        ("tokenizer.added.normalized", MetaValue::I64List(added_norm)),
        ("tokenizer.cls_id", MetaValue::U64(cls as u64)),
        ("tokenizer.sep_id", MetaValue::U64(sep as u64)),
        ("tokenizer.max_length", MetaValue::U64(max_length as u64)),
        (
            "tokenizer.truncation",
            MetaValue::Str("longest_first".into()),
        ),
        ("tokenizer.padding", MetaValue::Str("none".into())),
    ];
    Ok(CompiledTokenizer {
        tensors,
        meta,
        max_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tokenizer.json of four pieces; `edit` changes it.
    fn compile_edited(edit: impl Fn(&mut Value)) -> Result<CompiledTokenizer> {
        let tok = |t: &str, ty: u32| serde_json::json!({"SpecialToken": {"id": t, "type_id": ty}});
        let seq = |t: &str, ty: u32| serde_json::json!({"Sequence": {"id": t, "type_id": ty}});
        let mut t = serde_json::json!({
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always"},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0)],
                "pair": [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0), seq("B", 1), tok("[SEP]", 1)],
                "special_tokens": {"[CLS]": {"ids": [1]}, "[SEP]": {"ids": [2]}}
            },
            "model": {"type": "Unigram", "unk_id": 3,
                      "vocab": [["[PAD]", 0.0], ["[CLS]", 0.0], ["[SEP]", 0.0], ["[UNK]", 0.0]]}
        });
        edit(&mut t);
        compile(t.to_string().as_bytes(), 16)
    }

    #[test]
    fn ids_are_checked_not_truncated() {
        assert_eq!(compile_edited(|_| {}).unwrap().max_id, 3);
        let e = compile_edited(|t| t["model"]["unk_id"] = 4.into());
        let e = e.err().unwrap().to_string();
        assert!(e.contains("unk_id 4 is outside the 4 pieces"), "{e}");
        // 2^32 + 1 read as 32 bits was 1, a valid id.
        let e = compile_edited(|t| {
            t["post_processor"]["special_tokens"]["[CLS]"]["ids"] =
                serde_json::json!([(1u64 << 32) + 1])
        });
        let e = e.err().unwrap().to_string();
        assert!(e.contains("[CLS] id 4294967297"), "{e}");
        let e = compile_edited(|t| {
            t["added_tokens"] = serde_json::json!([{"id": (1u64 << 32) + 2, "content": "[X]"}])
        });
        let e = e.err().unwrap().to_string();
        assert!(e.contains("added token '[X]' has no 32-bit id"), "{e}");
    }

    #[test]
    fn trie_is_breadth_first_and_last_id_wins() {
        let pieces: Vec<String> = ["ab", "a", "b", "ab"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (start, labels, targets, values) = build_trie(&pieces);
        assert_eq!(labels[..2], [b'a', b'b']);
        assert!(targets
            .iter()
            .enumerate()
            .all(|(e, &t)| t as usize > start.iter().rposition(|&s| s as usize <= e).unwrap()));
        // "ab" was listed as 0 and 3: 3 wins.
        let a = targets[0] as usize;
        let ab = targets[start[a] as usize] as usize;
        assert_eq!((values[a], values[ab]), (1, 3));
    }
}
