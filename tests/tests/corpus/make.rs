//! Builds the crafted corpus entries from the tiny fixtures (random weights) and the tiny
//! tokenizer: one entry per defect class of the hardening work (issue 12, items 1-4, 8, 9).

use std::path::{Path, PathBuf};

use dbrt::format::{FileWriter, MetaValue, Metadata, ModelFile};
use dbrt_convert::{ConvertOptions, StorageType};
use dbrt_tests::*;

fn tiny_tokenizer() -> PathBuf {
    workspace_root().join("tests/corpus/tiny-tokenizer.json")
}

/// The v3-style tiny model with the tiny tokenizer; int8 with int4 embeddings keeps the
/// committed files small (80 kB).
pub fn tiny_model(storage: StorageType) -> (tempfile::TempDir, PathBuf) {
    let opts = ConvertOptions {
        storage,
        int4_embeddings: storage == StorageType::Int8,
        tokenizer: Some(tiny_tokenizer()),
        ..Default::default()
    };
    convert_with(&fixtures().join("tiny/v3-style"), &opts)
}

/// Re-serializes `file` with `edit` applied to its metadata and tensors (name → data).
fn rewrite(
    file: &ModelFile,
    edit: impl FnOnce(&mut Metadata, &mut Vec<(String, Vec<u8>)>),
) -> Vec<u8> {
    let mut meta = file.metadata().clone();
    let mut data: Vec<(String, Vec<u8>)> = file
        .records()
        .map(|r| (r.name.clone(), file.tensor(&r.name).unwrap().bytes.to_vec()))
        .collect();
    edit(&mut meta, &mut data);
    let mut w = FileWriter::new();
    w.metadata = meta;
    for r in file.records() {
        let (_, d) = data.iter().find(|(n, _)| *n == r.name).unwrap();
        w.add_tensor_with_layout(&r.name, r.dtype, r.layout, &r.shape, d.clone())
            .unwrap();
    }
    let mut out = Vec::new();
    w.write(&mut out).unwrap();
    out
}

fn set(key: &'static str, v: MetaValue) -> impl FnOnce(&mut Metadata, &mut Vec<(String, Vec<u8>)>) {
    move |m, _| m.set(key, v)
}

fn model_entries() -> Vec<(&'static str, Vec<u8>)> {
    let (_d, p) = tiny_model(StorageType::Int8);
    let int8 = ModelFile::from_bytes_copied(&std::fs::read(p).unwrap()).unwrap();
    let vocab = int8.metadata().u64("deberta.vocab_size").unwrap();
    let mut v: Vec<(&'static str, Vec<u8>)> =
        vec![("valid-int8-int4-tokenizer", rewrite(&int8, |_, _| {}))];
    // Item 1: sizes from metadata that nothing ties to a tensor.
    v.push((
        "alloc-max-position-65536-no-relative-attention",
        rewrite(&int8, |m, _| {
            m.set("deberta.relative_attention", MetaValue::Bool(false));
            m.set("deberta.max_position_embeddings", MetaValue::U64(65536));
        }),
    ));
    v.push((
        "alloc-position-buckets-2pow30",
        // No layers, so no per-layer relative projection ties the span to a tensor.
        rewrite(&int8, |m, _| {
            m.set("deberta.num_hidden_layers", MetaValue::U64(0));
            m.set("deberta.position_buckets", MetaValue::I64(1 << 30));
        }),
    ));
    v.push((
        "alloc-max-relative-positions-2pow30",
        rewrite(&int8, |m, _| {
            m.set("deberta.num_hidden_layers", MetaValue::U64(0));
            m.set("deberta.position_buckets", MetaValue::I64(0));
            m.set("deberta.max_relative_positions", MetaValue::I64(1 << 30));
        }),
    ));
    v.push((
        "alloc-zero-layers-heads-x-head-size-2pow30",
        rewrite(&int8, |m, _| {
            m.set("deberta.num_hidden_layers", MetaValue::U64(0));
            m.set("deberta.num_attention_heads", MetaValue::U64(1024));
            m.set("deberta.attention_head_size", MetaValue::U64(1 << 20));
        }),
    ));
    v.push((
        "alloc-zero-layers-intermediate-2pow20",
        rewrite(&int8, |m, _| {
            m.set("deberta.num_hidden_layers", MetaValue::U64(0));
            m.set("deberta.intermediate_size", MetaValue::U64(1 << 20));
        }),
    ));
    // Item 2: token ids of the tokenizer metadata outside the vocabulary.
    v.push((
        "token-cls-id-out-of-range",
        rewrite(&int8, set("tokenizer.cls_id", MetaValue::U64(vocab))),
    ));
    v.push((
        "token-sep-id-u32-max",
        rewrite(
            &int8,
            set("tokenizer.sep_id", MetaValue::U64(u32::MAX as u64)),
        ),
    ));
    v.push((
        "token-unk-id-out-of-range",
        rewrite(
            &int8,
            set("tokenizer.unk_id", MetaValue::I64(vocab as i64 + 7)),
        ),
    ));
    v.push((
        "token-unk-id-negative",
        rewrite(&int8, set("tokenizer.unk_id", MetaValue::I64(-2))),
    ));
    v.push((
        "token-added-id-out-of-range",
        rewrite(&int8, |m, _| {
            let mut ids = match m.get("tokenizer.added.ids") {
                Some(MetaValue::I64List(l)) => l.clone(),
                other => panic!("tokenizer.added.ids: {other:?}"),
            };
            let last = ids.len() - 1; // [MASK]
            ids[last] = vocab as i64 + 1000;
            m.set("tokenizer.added.ids", MetaValue::I64List(ids));
        }),
    ));
    // Item 4: a relative-position index that is in range but not consecutive rows.
    let permuted = |t: &mut Vec<(String, Vec<u8>)>| {
        let (_, d) = t
            .iter_mut()
            .find(|(n, _)| n == "deberta.encoder.rel_pos_index")
            .unwrap();
        let mut idx: Vec<i32> = d
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        idx.reverse();
        *d = idx.iter().flat_map(|x| x.to_le_bytes()).collect();
    };
    v.push((
        "rel-pos-index-reversed-int8",
        rewrite(&int8, |_, t| permuted(t)),
    ));
    v.push((
        "rel-pos-index-swapped-int8",
        rewrite(&int8, |_, t| {
            let (_, d) = t
                .iter_mut()
                .find(|(n, _)| n == "deberta.encoder.rel_pos_index")
                .unwrap();
            let n = d.len() / 4;
            for k in 0..4 {
                d.swap(4 * (n / 2) + k, 4 * (n / 2 + 1) + k);
            }
        }),
    ));
    // Item 9: a maximum length of 1 or 2 leaves no room for [CLS] text [SEP].
    v.push((
        "max-position-1-no-relative-attention",
        rewrite(&int8, |m, _| {
            m.set("deberta.relative_attention", MetaValue::Bool(false));
            m.set("deberta.max_position_embeddings", MetaValue::U64(1));
        }),
    ));
    v.push((
        "max-position-2-no-relative-attention",
        rewrite(&int8, |m, _| {
            m.set("deberta.relative_attention", MetaValue::Bool(false));
            m.set("deberta.max_position_embeddings", MetaValue::U64(2));
        }),
    ));
    // Non-finite weights behind valid checksums.
    v.push((
        "nan-layer-norm-weight",
        rewrite(&int8, |_, t| {
            let (_, d) = t
                .iter_mut()
                .find(|(n, _)| n == "deberta.embeddings.LayerNorm.weight")
                .unwrap();
            d[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        }),
    ));
    v
}

/// Replaces the first value of tensor `name` in a safetensors file with `bits` (in the
/// tensor's dtype), leaving everything else as it is.
fn poison_safetensors(bytes: &[u8], name: &str, bits: &[u8]) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let start = header[name]["data_offsets"][0].as_u64().unwrap() as usize + 8 + n;
    let mut out = bytes.to_vec();
    out[start..start + bits.len()].copy_from_slice(bits);
    out
}

fn config_with(fixture: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let p = fixtures().join("tiny").join(fixture).join("config.json");
    let mut j: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    edit(&mut j);
    serde_json::to_vec_pretty(&j).unwrap()
}

fn tokenizer_with(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tiny_tokenizer()).unwrap()).unwrap();
    edit(&mut j);
    serde_json::to_vec(&j).unwrap()
}

fn with_charsmap(bytes: &[u8]) -> impl FnOnce(&mut serde_json::Value) + '_ {
    move |j| {
        let norms = j["normalizer"]["normalizers"].as_array_mut().unwrap();
        norms.insert(
            1,
            serde_json::json!({"type": "Precompiled", "precompiled_charsmap": base64_encode(bytes)}),
        );
    }
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// (entry, base fixture, files laid over it).
type ConvertEntry = (&'static str, &'static str, Vec<(&'static str, Vec<u8>)>);

fn convert_entries() -> Vec<ConvertEntry> {
    let mut v: Vec<ConvertEntry> = Vec::new();
    let cfg = |name, value: serde_json::Value| {
        let value2 = value.clone();
        (
            name,
            "v3-style",
            vec![(
                "config.json",
                config_with("v3-style", move |j| j["max_position_embeddings"] = value2),
            )],
        )
    };
    // Item 8: sizes and values from config.json.
    v.push(cfg("max-position-1", 1.into()));
    v.push(cfg("max-position-2pow63", serde_json::json!(1u64 << 63)));
    v.push(cfg("max-position-1e9", serde_json::json!(1_000_000_000u64)));
    v.push((
        "max-position-65536-no-relative-attention",
        "v3-style",
        vec![(
            "config.json",
            config_with("v3-style", |j| {
                j["max_position_embeddings"] = 65536.into();
                j["relative_attention"] = false.into();
            }),
        )],
    ));
    v.push((
        "position-buckets-2pow30",
        "v3-style",
        vec![(
            "config.json",
            config_with("v3-style", |j| j["position_buckets"] = (1u64 << 30).into()),
        )],
    ));
    // Item 8: the tokenizer's precompiled charsmap, garbage and with a forged trie size.
    v.push((
        "charsmap-garbage",
        "v3-style",
        vec![(
            "tokenizer.json",
            tokenizer_with(with_charsmap(&[
                7, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
            ])),
        )],
    ));
    let mut forged = (0xFFFF_FFF0u32).to_le_bytes().to_vec();
    forged.extend_from_slice(&[0u8; 60]);
    v.push((
        "charsmap-forged-trie-size",
        "v3-style",
        vec![("tokenizer.json", tokenizer_with(with_charsmap(&forged)))],
    ));
    let mut forged = 8u32.to_le_bytes().to_vec();
    forged.extend_from_slice(&[0xFF; 8]);
    forged.extend_from_slice(b"abc\0");
    v.push((
        "charsmap-trie-units-out-of-range",
        "v3-style",
        vec![("tokenizer.json", tokenizer_with(with_charsmap(&forged)))],
    ));
    // Item 8: a 1 MB vocabulary piece (the trie of `tokenizers` recurses once per byte).
    v.push((
        "vocab-piece-1mb",
        "v3-style",
        vec![(
            "tokenizer.json",
            tokenizer_with(|j| {
                j["model"]["vocab"][998] = serde_json::json!(["a".repeat(1 << 20), -20.0]);
            }),
        )],
    ));
    // Item 2 at the source: special-token ids outside the vocabulary.
    v.push((
        "tokenizer-cls-id-out-of-range",
        "v3-style",
        vec![(
            "tokenizer.json",
            tokenizer_with(|j| {
                j["post_processor"]["special_tokens"]["[CLS]"]["ids"] = serde_json::json!([5000]);
            }),
        )],
    ));
    v.push((
        "tokenizer-added-id-out-of-range",
        "v3-style",
        vec![(
            "tokenizer.json",
            tokenizer_with(|j| {
                let a = j["added_tokens"].as_array_mut().unwrap();
                let last = a.len() - 1;
                a[last]["id"] = 4096.into();
            }),
        )],
    ));
    // A fuzz finding: finite weights near f32's limit, which overflow every activation.
    let f32_tiny = std::fs::read(fixtures().join("tiny/v3-style/model.safetensors")).unwrap();
    v.push((
        "huge-classifier-row",
        "v3-style",
        vec![(
            "model.safetensors",
            poison_safetensors(
                &f32_tiny,
                "classifier.weight",
                &3e38f32.to_le_bytes().repeat(32),
            ),
        )],
    ));
    // Item 8: non-finite weights.
    let bf16 = std::fs::read(fixtures().join("tiny/v3-style-bf16/model.safetensors")).unwrap();
    v.push((
        "nan-classifier-weight-bf16",
        "v3-style-bf16",
        vec![(
            "model.safetensors",
            poison_safetensors(&bf16, "classifier.weight", &half::bf16::NAN.to_le_bytes()),
        )],
    ));
    v.push((
        "inf-layer-norm-weight-bf16",
        "v3-style-bf16",
        vec![(
            "model.safetensors",
            poison_safetensors(
                &bf16,
                "deberta.embeddings.LayerNorm.weight",
                &half::bf16::INFINITY.to_le_bytes(),
            ),
        )],
    ));
    v
}

/// Texts in the tokenizer target's format: a first byte that splits a pair (0: one text).
fn text_entries() -> Vec<(&'static str, Vec<u8>)> {
    let single = |s: &[u8]| [&[0u8][..], s].concat();
    let pair = |a: &[u8], b: &[u8]| {
        assert!(!a.is_empty() && a.len() < 256 && !b.is_empty());
        // k % (a.len() + b.len()) == a.len() for k = a.len().
        [&[a.len() as u8][..], a, b].concat()
    };
    vec![
        ("word-over-byte-limit", single(&vec![b'a'; 128 * 1024 + 1])),
        ("invalid-utf8", single(b"ok \xff\xfe \xc3 end")),
        ("nul-and-controls", single(b"a\0b\x01\x7f\x1b[31mred")),
        (
            "combining-marks",
            single(
                "e\u{301}\u{302}\u{303}\u{304} a\u{308}"
                    .repeat(20)
                    .as_bytes(),
            ),
        ),
        (
            "zero-width-and-bidi",
            single("a\u{200b}b\u{200d}c\u{202e}dcba\u{2066}x".as_bytes()),
        ),
        ("emoji-sequences", single("👩‍👩‍👧‍👦 🏳️‍🌈 👍🏽 🇫🇷".as_bytes())),
        (
            "metaspace-and-specials",
            single("▁▁[MASK][CLS] [SEP]▁".as_bytes()),
        ),
        ("only-spaces", single(b"     \t\n  ")),
        ("pair-long-short", pair(&[b'x'; 200], b"short")),
        (
            "pair-unicode",
            pair("ﬁ ｆｕｌｌ".as_bytes(), "ǅ ẞ ß".as_bytes()),
        ),
        // Item 7: longest-first truncation of a pair whose texts both exceed half of the
        // maximum (64 tokens in the corpus test), in both length relations.
        (
            "pair-truncation-first-longer",
            pair("the ".repeat(50).as_bytes(), "and ".repeat(40).as_bytes()),
        ),
        (
            "pair-truncation-second-longer",
            pair("the ".repeat(40).as_bytes(), "and ".repeat(50).as_bytes()),
        ),
    ]
}

/// Writes every crafted entry under `out` (model/, convert/, text/); returns their count.
pub fn write_all(out: &Path) -> usize {
    let mut n = 0;
    let models = out.join("model");
    std::fs::create_dir_all(&models).unwrap();
    for (name, bytes) in model_entries() {
        std::fs::write(models.join(name), bytes).unwrap();
        n += 1;
    }
    for (name, base, files) in convert_entries() {
        let d = out.join("convert").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("base"), format!("{base}\n")).unwrap();
        for (f, b) in files {
            std::fs::write(d.join(f), b).unwrap();
        }
        n += 1;
    }
    let texts = out.join("text");
    std::fs::create_dir_all(&texts).unwrap();
    for (name, bytes) in text_entries() {
        std::fs::write(texts.join(name), bytes).unwrap();
        n += 1;
    }
    n
}

/// Every file under `dir`'s model/, convert/ and text/, relative to `dir`.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    for k in ["model", "convert", "text"] {
        if dir.join(k).is_dir() {
            walk(dir, &dir.join(k), &mut out);
        }
    }
    out.sort();
    out
}
