//! Finding the tokenizer of a checkpoint and bringing it to tokenizer.json form: taken as is,
//! or built from a SentencePiece `spm.model` the way transformers' `DebertaV2Converter` does.

use std::path::{Path, PathBuf};

use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{
    NormalizerWrapper, Precompiled, Replace, Sequence as NormSequence, Strip,
};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::checkpoint::SourceFile;
use crate::error::{io_err, parse_err, ConvertError, Result};
use crate::validate::{check_charsmap, check_piece};
use serde_json::Value;

/// Looks for `tokenizer.json`, then `spm.model`, in `dir` and in its subdirectories whose name
/// contains "tokenizer" (the layout of the pip package). `explicit` wins when given.
pub fn find(dir: &Path, explicit: Option<&Path>) -> Result<(Option<Vec<u8>>, Option<SourceFile>)> {
    let path = match explicit {
        Some(p) if p.is_dir() => Some(search(p).ok_or_else(|| {
            ConvertError::NoTokenizer(format!(
                "{} has no tokenizer.json or spm.model",
                p.display()
            ))
        })?),
        Some(p) => Some(p.to_path_buf()),
        None => search(dir),
    };
    let Some(path) = path else {
        log::warn!(
            "no tokenizer in {}: the model will take token ids only",
            dir.display()
        );
        return Ok((None, None));
    };
    let bytes = std::fs::read(&path).map_err(io_err(&path))?;
    let source = SourceFile::hash_bytes(&path, &bytes);
    let json = if path.extension().is_some_and(|e| e == "model") {
        spm_to_json(&path, &bytes)?
    } else {
        bytes
    };
    // Whatever the source, the `tokenizers` crate must be able to load it: `dbrt-convert
    // check-tokenizer` compares the runtime against it.
    check_json(&path, &json)?;
    load(&path, &json)?;
    Ok((Some(json), Some(source)))
}

/// Loads a tokenizer.json with the `tokenizers` crate, once [`check_json`] has passed it. A
/// panic in the crate (on input no check here foresaw) is contained and reported as an error.
fn load(path: &Path, json: &[u8]) -> Result<Tokenizer> {
    match std::panic::catch_unwind(|| Tokenizer::from_bytes(json)) {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(parse_err(path, format!("tokenizer does not load: {e}"))),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(parse_err(
                path,
                format!("tokenizer does not load: the tokenizers crate panicked: {what}"),
            ))
        }
    }
}

/// Refuses what would make the `tokenizers` crate panic or abort while loading a tokenizer.json
/// (see [`crate::validate`]): vocabulary pieces longer than [`crate::validate::MAX_PIECE_BYTES`], and
/// precompiled charsmaps that do not pass [`check_charsmap`].
pub fn check_json(path: &Path, json: &[u8]) -> Result<()> {
    // The checks below read a `Value`, where the last of two equal keys wins, while `tokenizers`
    // builds every "normalizer" or "model" entry it meets: a repeated key would hide one.
    serde_json::from_slice::<NoRepeatedKeys>(json).map_err(|e| parse_err(path, e))?;
    let t: Value = serde_json::from_slice(json).map_err(|e| parse_err(path, e))?;
    let pieces: Vec<&str> = match t.pointer("/model/vocab") {
        // Unigram: [piece, score] pairs.
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|e| e.get(0).and_then(Value::as_str))
            .collect(),
        // BPE and WordPiece: piece → id.
        Some(Value::Object(m)) => m.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    for (i, p) in pieces.iter().enumerate() {
        check_piece(i, p).map_err(|m| parse_err(path, format!("model.vocab: {m}")))?;
    }
    if let Some(n) = t.get("normalizer") {
        check_normalizer(path, n, "normalizer")?;
    }
    Ok(())
}

/// Any JSON document in which no object repeats a key (anything else is refused, naming the key).
struct NoRepeatedKeys;

impl<'de> serde::Deserialize<'de> for NoRepeatedKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(NoRepeatedKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoRepeatedKeys {
    type Value = NoRepeatedKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut a: A,
    ) -> std::result::Result<Self, A::Error> {
        while a.next_element::<NoRepeatedKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut a: A,
    ) -> std::result::Result<Self, A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(k) = a.next_key::<String>()? {
            a.next_value::<NoRepeatedKeys>()?;
            if !keys.insert(k.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "key \"{k}\" appears twice in one object"
                )));
            }
        }
        Ok(self)
    }
}

/// Checks every `precompiled_charsmap` under the normalizer, whatever the `type` tags around it
/// say: `tokenizers` also reads a normalizer without a tag (serde's untagged fallback), so a
/// Sequence whose `type` is missing still reaches its Precompiled members.
fn check_normalizer(path: &Path, n: &Value, at: &str) -> Result<()> {
    match n {
        Value::Object(m) => {
            // A tagged Precompiled without its charsmap makes `tokenizers` panic (an `expect`).
            if m.get("type").and_then(Value::as_str) == Some("Precompiled")
                && !m.contains_key("precompiled_charsmap")
            {
                return Err(parse_err(
                    path,
                    format!("{at} is a Precompiled normalizer without precompiled_charsmap"),
                ));
            }
            for (k, v) in m {
                let field = format!("{at}.{k}");
                if k != "precompiled_charsmap" {
                    check_normalizer(path, v, &field)?;
                    continue;
                }
                let b64 = v
                    .as_str()
                    .ok_or_else(|| parse_err(path, format!("{field} is not a string")))?;
                let blob =
                    base64::decode(b64).map_err(|e| parse_err(path, format!("{field}: {e}")))?;
                // An empty one too: tagged, `tokenizers` panics on it.
                check_charsmap(&blob).map_err(|m| parse_err(path, format!("{field}: {m}")))?;
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                check_normalizer(path, x, &format!("{at}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn search(dir: &Path) -> Option<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut subs: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().contains("tokenizer"))
            })
            .collect();
        subs.sort();
        dirs.extend(subs);
    }
    for name in ["tokenizer.json", "spm.model"] {
        if let Some(p) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
            return Some(p);
        }
    }
    None
}

/// The parts of SentencePiece's `ModelProto` a DeBERTa tokenizer needs. Declaring only these
/// lets prost skip the rest, whose field types changed between SentencePiece releases (field 50 of
/// `TrainerSpec` in DeBERTa-v3's spm.model does not decode with today's schema).
mod spm_proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(message, repeated, tag = "1")]
        pub pieces: Vec<Piece>,
        #[prost(message, optional, tag = "3")]
        pub normalizer_spec: Option<NormalizerSpec>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Piece {
        #[prost(string, optional, tag = "1")]
        pub piece: Option<String>,
        #[prost(float, optional, tag = "2")]
        pub score: Option<f32>,
        /// 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte.
        #[prost(int32, optional, tag = "3")]
        pub r#type: Option<i32>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NormalizerSpec {
        #[prost(bytes = "vec", optional, tag = "2")]
        pub precompiled_charsmap: Option<Vec<u8>>,
    }
}

/// Builds the tokenizer.json of a DeBERTa-v2/v3 SentencePiece model: Unigram over the pieces and
/// scores, Strip + the precompiled charsmap, Metaspace (prepend always), and the
/// `[CLS] A [SEP] B [SEP]` template.
pub fn spm_to_json(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let spm =
        <spm_proto::ModelProto as prost::Message>::decode(bytes).map_err(|e| parse_err(path, e))?;
    let pieces = &spm.pieces;
    if pieces.is_empty() {
        return Err(parse_err(path, "no pieces"));
    }
    let mut vocab: Vec<(String, f64)> = Vec::with_capacity(pieces.len());
    for (i, p) in pieces.iter().enumerate() {
        let piece = p.piece.clone().unwrap_or_default();
        check_piece(i, &piece).map_err(|m| parse_err(path, m))?;
        let score = p.score.unwrap_or(0.0);
        if !score.is_finite() {
            return Err(parse_err(path, format!("piece {i} has score {score}")));
        }
        vocab.push((piece, score as f64));
    }
    let unk_id = pieces.iter().position(|p| p.r#type == Some(2)); // Type::Unknown
                                                                  // transformers' converter leaves byte fallback off for DeBERTa, whatever the trainer said.
    let byte_fallback = false;
    let model = Unigram::from(vocab, unk_id, byte_fallback).map_err(|e| parse_err(path, e))?;
    let mut tk = Tokenizer::new(model);
    let mut norms: Vec<NormalizerWrapper> = vec![Strip::new(true, true).into()];
    if let Some(map) = spm
        .normalizer_spec
        .as_ref()
        .and_then(|n| n.precompiled_charsmap.as_ref())
    {
        if !map.is_empty() {
            check_charsmap(map).map_err(|m| {
                parse_err(path, format!("normalizer_spec.precompiled_charsmap: {m}"))
            })?;
            norms.push(
                Precompiled::from(map)
                    .map_err(|e| parse_err(path, e))?
                    .into(),
            );
        }
    }
    // transformers' DebertaV2Converter collapses runs of spaces after the charsmap.
    norms.push(
        Replace::new(ReplacePattern::Regex(" {2,}".into()), " ")
            .map_err(|e| parse_err(path, e))?
            .into(),
    );
    tk.with_normalizer(Some(NormSequence::new(norms)))
        .map_err(|e| parse_err(path, e))?;
    tk.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)));
    tk.with_decoder(Some(Metaspace::new('▁', PrependScheme::Always, true)));
    let id = |t: &str| pieces.iter().position(|p| p.piece.as_deref() == Some(t));
    let (cls, sep) = match (id("[CLS]"), id("[SEP]")) {
        (Some(c), Some(s)) => (c as u32, s as u32),
        _ => return Err(parse_err(path, "no [CLS] or [SEP] piece")),
    };
    let template = TemplateProcessing::builder()
        .try_single("[CLS]:0 $A:0 [SEP]:0")
        .and_then(|b| b.try_pair("[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1"))
        .map_err(|e| parse_err(path, e))?
        .special_tokens(vec![("[CLS]", cls), ("[SEP]", sep)])
        .build()
        .map_err(|e| parse_err(path, e))?;
    tk.with_post_processor(Some(template));
    let specials: Vec<AddedToken> = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
        .iter()
        // As transformers writes them: [UNK] is matched on normalized text, the others on raw.
        .map(|t| AddedToken::from(*t, true).normalized(*t == "[UNK]"))
        .collect();
    tk.add_special_tokens(specials)
        .map_err(|e| parse_err(path, e))?;
    tk.to_string(false)
        .map(String::into_bytes)
        .map_err(|e| parse_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::spm_proto::{ModelProto, NormalizerSpec, Piece};
    use super::*;

    /// An spm.model of the special pieces, `extra` pieces, and a charsmap if given.
    fn spm(extra: &[(&str, f32)], charsmap: Option<Vec<u8>>) -> Vec<u8> {
        let piece = |p: &str, score: f32, kind: i32| Piece {
            piece: Some(p.into()),
            score: Some(score),
            r#type: Some(kind),
        };
        let mut pieces = vec![
            piece("[PAD]", 0.0, 3),
            piece("[CLS]", 0.0, 3),
            piece("[SEP]", 0.0, 3),
            piece("[UNK]", 0.0, 2),
        ];
        pieces.extend(extra.iter().map(|&(p, s)| piece(p, s, 1)));
        let m = ModelProto {
            pieces,
            normalizer_spec: charsmap.map(|c| NormalizerSpec {
                precompiled_charsmap: Some(c),
            }),
        };
        prost::Message::encode_to_vec(&m)
    }

    fn convert(bytes: &[u8]) -> Result<Vec<u8>> {
        spm_to_json(Path::new("spm.model"), bytes)
    }

    #[test]
    fn spm_models_that_would_crash_tokenizers_are_refused() {
        convert(&spm(&[("\u{2581}a", -1.0)], None)).unwrap();
        // One stack frame per byte when tokenizers drops its trie.
        let long = "x".repeat(1 << 20);
        let e = convert(&spm(&[(&long, -1.0)], None))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("spm.model: vocabulary piece 4 has 1048576 bytes"),
            "{e}"
        );
        // A 4-unit trie: tokenizers indexes unit '[' = 91 normalizing [UNK], and panics.
        let mut blob = 16u32.to_le_bytes().to_vec();
        blob.extend([0u8; 16]);
        let e = convert(&spm(&[], Some(blob))).unwrap_err().to_string();
        assert!(
            e.contains("normalizer_spec.precompiled_charsmap: a lookup reaches unit"),
            "{e}"
        );
        let e = convert(&spm(&[("a", f32::NAN)], None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("piece 4 has score NaN"), "{e}");
    }
}
