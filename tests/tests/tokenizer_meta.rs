//! Tokenizer metadata and tables that passed the file's checksums but not the model: every id
//! the tokenizer can emit must lie in the vocabulary (it indexes the embedding unchecked), and a
//! session's maximum length must leave room for every text call.

use std::sync::Arc;

use dbrt::format::{FileWriter, MetaValue, ModelFile};
use dbrt::{Error, Model, Session, SessionOptions, Truncation};
use dbrt_convert::StorageType;
use dbrt_tests::*;

/// The tiny models' vocabulary size (tests/fixtures/tiny/*/config.json).
const TINY_VOCAB: usize = 1000;

/// A DeBERTa-v3-shaped Unigram tokenizer.json with `pieces` pieces: the specials, `▁`, the
/// letters a-z alone and after `▁`, then filler pieces `▁wN` up to the count.
fn tokenizer_json(pieces: usize) -> Vec<u8> {
    let mut vocab: Vec<(String, f64)> = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
        .iter()
        .map(|s| (s.to_string(), 0.0))
        .collect();
    vocab.push(("▁".into(), -2.0));
    for c in 'a'..='z' {
        vocab.push((c.to_string(), -3.0));
        vocab.push((format!("▁{c}"), -2.5));
    }
    let mut i = 0;
    while vocab.len() < pieces {
        vocab.push((format!("▁w{i}"), -1.0));
        i += 1;
    }
    vocab.truncate(pieces);
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0, "[PAD]"), special(1, "[CLS]"), special(2, "[SEP]"),
            special(3, "[UNK]"), special(4, "[MASK]")],
        "normalizer": null,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
            "split": true},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [2], "tokens": ["[SEP]"]}
            }
        },
        "decoder": null,
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": false}
    });
    serde_json::to_vec(&json).unwrap()
}

/// The tiny v3-style model with the tokenizer of `json` compiled in (checksums valid), then
/// `edit` applied to its metadata.
fn tiny_with_tokenizer(json: &[u8], edit: impl FnOnce(&mut FileWriter)) -> Vec<u8> {
    let (_d, path) = convert(&fixtures().join("tiny/v3-style"), StorageType::F32);
    let file = ModelFile::open(&path).unwrap();
    let mut w = FileWriter::new();
    w.metadata = file.metadata().clone();
    dbrt_convert::tokenizer_compile::compile(json, 128)
        .unwrap()
        .add_to(&mut w)
        .unwrap();
    edit(&mut w);
    for r in file.records() {
        if w.has_tensor(&r.name) {
            continue;
        }
        let v = file.tensor(&r.name).unwrap();
        w.add_tensor_with_layout(&r.name, r.dtype, r.layout, &r.shape, v.bytes.to_vec())
            .unwrap();
    }
    let mut out = Vec::new();
    w.write(&mut out).unwrap();
    out
}

fn open_bytes(bytes: &[u8]) -> Result<Model, Error> {
    Model::from_file(ModelFile::from_bytes_copied(bytes)?)
}

fn session(bytes: &[u8], max: Option<usize>, truncation: Truncation) -> Result<Session, Error> {
    let opts = SessionOptions {
        max_sequence_length: max,
        truncation,
        ..Default::default()
    };
    Session::new(Arc::new(open_bytes(bytes)?), opts)
}

#[test]
fn a_tokenizer_within_the_vocabulary_opens_and_classifies() {
    let bytes = tiny_with_tokenizer(&tokenizer_json(100), |_| {});
    let mut s = session(&bytes, None, Truncation::LongestFirst).unwrap();
    let (ids, _) = s.tokenize("a b [MASK] é", Some("zz")).unwrap();
    // [CLS] ▁a ▁b ▁ [MASK] ▁ [UNK] [SEP] ▁z z [SEP], as tokenizers has it.
    assert_eq!(ids, [1, 7, 9, 5, 4, 5, 3, 2, 57, 56, 2]);
    let oracle = tokenizers::Tokenizer::from_bytes(tokenizer_json(100)).unwrap();
    assert_eq!(
        ids,
        oracle
            .encode(("a b [MASK] é", "zz"), true)
            .unwrap()
            .get_ids()
    );
    let p = s.classify("a b", Some("c")).unwrap();
    assert_eq!(p.len(), 3);
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
}

/// The text and id routes give the same bits: `classify_logits` (allocating) equals
/// `classify_logits_into` and `run_logits` on the ids `tokenize` gives, and `classify` is their
/// softmax.
#[test]
fn the_classify_and_run_routes_agree() {
    let bytes = tiny_with_tokenizer(&tokenizer_json(100), |_| {});
    let mut s = session(&bytes, None, Truncation::LongestFirst).unwrap();
    let logits = s.classify_logits("a b", Some("c")).unwrap();
    let mut into = vec![0.0; logits.len()];
    s.classify_logits_into("a b", Some("c"), &mut into).unwrap();
    assert_eq!(into, logits);
    let (ids, types) = s.tokenize("a b", Some("c")).unwrap();
    let (ids, types) = (ids.to_vec(), types.to_vec());
    let ran = s
        .run_logits(dbrt::Sequence {
            ids: &ids,
            type_ids: Some(&types),
        })
        .unwrap();
    assert_eq!(ran, &logits[..]);
    assert_eq!(
        s.classify("a b", Some("c")).unwrap(),
        dbrt::softmax(&logits)
    );
}

/// Every id in the metadata, forged one at a time to the first id past the vocabulary (and to
/// far beyond it), is refused at open by a typed error naming the key and the id.
#[test]
fn out_of_vocabulary_ids_in_the_metadata_are_refused_at_open() {
    let json = tokenizer_json(100);
    type Edit = fn(&mut FileWriter, i64);
    let edits: [(&str, Edit); 4] = [
        ("tokenizer.cls_id", |w, id| {
            w.metadata
                .set("tokenizer.cls_id", MetaValue::U64(id as u64))
        }),
        ("tokenizer.sep_id", |w, id| {
            w.metadata
                .set("tokenizer.sep_id", MetaValue::U64(id as u64))
        }),
        ("tokenizer.unk_id", |w, id| {
            w.metadata.set("tokenizer.unk_id", MetaValue::I64(id))
        }),
        ("tokenizer.added.ids", |w, id| {
            // [MASK], the last added token.
            w.metadata.set(
                "tokenizer.added.ids",
                MetaValue::I64List(vec![0, 1, 2, 3, id]),
            )
        }),
    ];
    for (key, edit) in edits {
        for id in [TINY_VOCAB as i64, 1 << 31, (1 << 32) + 1] {
            let bytes = tiny_with_tokenizer(&json, |w| edit(w, id));
            match open_bytes(&bytes) {
                Err(Error::BadMetadata { key: k, reason }) => {
                    assert_eq!(k, key);
                    assert!(reason.contains(&id.to_string()), "{reason}");
                }
                other => panic!("{key} = {id}: {other:?}"),
            }
        }
        // The last id of the vocabulary is fine.
        let bytes = tiny_with_tokenizer(&json, |w| edit(w, TINY_VOCAB as i64 - 1));
        open_bytes(&bytes).unwrap_or_else(|e| panic!("{key} = {}: {e}", TINY_VOCAB - 1));
    }
}

/// The pieces of the tables are ids too: a piece table larger than the vocabulary is refused.
#[test]
fn a_piece_table_larger_than_the_vocabulary_is_refused_at_open() {
    let bytes = tiny_with_tokenizer(&tokenizer_json(TINY_VOCAB + 1), |_| {});
    match open_bytes(&bytes) {
        Err(Error::BadMetadata { key, reason }) => {
            assert_eq!(key, "tokenizer.scores");
            assert!(reason.contains("1001 pieces"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // All of the vocabulary is fine, and its last piece is emitted.
    let bytes = tiny_with_tokenizer(&tokenizer_json(TINY_VOCAB), |_| {});
    let mut s = session(&bytes, None, Truncation::LongestFirst).unwrap();
    let last = format!("w{}", TINY_VOCAB - 59);
    assert_eq!(
        s.tokenize(&last, None).unwrap().0,
        [1, TINY_VOCAB as u32 - 1, 2]
    );
}

/// A word over the byte limit is reported in bytes, as a word, not as a count of tokens.
#[test]
fn a_word_over_the_byte_limit_is_word_too_long() {
    let bytes = tiny_with_tokenizer(&tokenizer_json(100), |_| {});
    let mut s = session(&bytes, None, Truncation::LongestFirst).unwrap();
    let max = dbrt::session::DEFAULT_MAX_WORD_BYTES;
    // `▁` is prepended after the limit is checked: the word itself may fill it.
    s.tokenize(&"a".repeat(max), None).unwrap();
    for text in ["a".repeat(max + 1), format!("b {}", "é".repeat(max))] {
        match s.tokenize(&text, Some("x")) {
            Err(e @ Error::WordTooLong { .. }) => {
                assert!(matches!(e, Error::WordTooLong { max: m } if m == max));
                assert!(e.to_string().contains(&format!("{max} bytes")), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Below room for `[CLS] a [SEP] b [SEP]` no text call can work: a session of a model with a
/// tokenizer refuses such a length, naming the minimum.
#[test]
fn a_maximum_length_below_the_pair_special_tokens_is_refused() {
    let bytes = tiny_with_tokenizer(&tokenizer_json(100), |_| {});
    let min = open_bytes(&bytes)
        .unwrap()
        .tokenizer()
        .unwrap()
        .min_sequence_length();
    assert_eq!(min, 3);
    for t in [
        Truncation::LongestFirst,
        Truncation::OnlyFirst,
        Truncation::OnlySecond,
    ] {
        for max in [0, 1, 2] {
            match session(&bytes, Some(max), t) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains("3..=128"), "{m}"),
                Err(e) => panic!("{max}: {e}"),
                Ok(_) => panic!("{max}: accepted"),
            }
        }
        session(&bytes, Some(min), t).unwrap();
    }
}

/// Without a tokenizer, id-only calls work at length 1, so 1 is accepted.
#[test]
fn a_model_without_tokenizer_runs_at_length_one() {
    let (_d, path) = convert(&fixtures().join("tiny/v3-style"), StorageType::F32);
    let mut s = Session::new(
        open(&path),
        SessionOptions {
            max_sequence_length: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let seq = dbrt::Sequence {
        ids: &[1],
        type_ids: None,
    };
    assert_eq!(s.run_logits(seq).unwrap().len(), 3);
}

/// At the minimum length every text call encodes (to its special tokens: no room is left for
/// text) and classifies, with every strategy; the one refusal is tokenizers' own: `only_second`
/// cannot cut a single text.
#[test]
fn every_text_call_works_at_the_minimum_length() {
    let bytes = tiny_with_tokenizer(&tokenizer_json(100), |_| {});
    let long = "a b c ".repeat(5_000);
    for t in [
        Truncation::LongestFirst,
        Truncation::OnlyFirst,
        Truncation::OnlySecond,
    ] {
        let mut s = session(&bytes, Some(3), t).unwrap();
        let singles: [&str; 4] = ["", "a", "a b", &long];
        for text in singles {
            match (t, s.tokenize(text, None)) {
                (_, Ok((ids, types))) => {
                    // Room for one text token after [CLS] [SEP].
                    let expect: &[u32] = if text.is_empty() { &[1, 2] } else { &[1, 7, 2] };
                    assert_eq!((ids, types), (expect, &[0u32; 3][..expect.len()]), "{t:?}");
                    s.classify(text, None).unwrap();
                }
                (Truncation::OnlySecond, Err(Error::InvalidArgument(m))) if text.len() > 1 => {
                    assert!(m.contains("only_second"), "{m}")
                }
                (_, Err(e)) => panic!("{t:?} {text:?}: {e}"),
            }
        }
        for (a, b) in [("", ""), ("a", ""), ("", "a"), (&long, &long), (&long, "a")] {
            let (ids, types) = s.tokenize(a, Some(b)).unwrap();
            assert_eq!((ids, types), (&[1, 2, 2][..], &[0, 0, 1][..]), "{t:?}");
            s.classify(a, Some(b)).unwrap();
        }
    }
}

/// A text of many added tokens: each match used to rescan the rest of the text for every other
/// added token (quadratic: a megabyte of `[MASK]` took hours); one pass now.
#[test]
fn a_text_of_many_added_tokens_takes_linear_time() {
    let bytes = tiny_with_tokenizer(&tokenizer_json(100), |_| {});
    let mut s = session(&bytes, None, Truncation::LongestFirst).unwrap();
    let text = "[MASK]".repeat(200_000) + "[SEP]";
    let start = std::time::Instant::now();
    let (ids, _) = s.tokenize(&text, Some("[CLS] a")).unwrap();
    let elapsed = start.elapsed();
    let mut expect = vec![1];
    expect.extend([4; 123]);
    expect.extend([2, 1, 7, 2]);
    assert_eq!(ids, expect);
    let mut oracle = tokenizers::Tokenizer::from_bytes(tokenizer_json(100)).unwrap();
    oracle
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length: 128,
            ..Default::default()
        }))
        .unwrap();
    let theirs = oracle.encode((text.as_str(), "[CLS] a"), true).unwrap();
    assert_eq!(ids, theirs.get_ids());
    // Milliseconds when linear; the quadratic scan took minutes already at a tenth of this.
    assert!(elapsed.as_secs() < 5, "{elapsed:?}");
}

/// A precompiled charsmap whose replacement strings run longer than any real one is refused at
/// open: every character of a text mapped to such a run would cost as much work as its length.
#[test]
fn a_charsmap_with_overlong_replacements_is_refused_at_open() {
    // A darts-clone trie mapping "a" to the string at offset 0: the root (unit 0, offset 0)
    // leads to unit 'a' (label 'a', a leaf, offset 1), whose value is unit 'a' ^ 1 = 0.
    let charsmap = |replacement: &[u8]| {
        let mut units = vec![0u32; 128];
        units[b'a' as usize] = (1 << 10) | (1 << 8) | b'a' as u32;
        let mut blob = ((units.len() * 4) as u32).to_le_bytes().to_vec();
        units.iter().for_each(|u| blob.extend(u.to_le_bytes()));
        blob.extend(replacement);
        blob.push(0);
        blob
    };
    let with = |replacement: &[u8]| {
        let blob = charsmap(replacement);
        tiny_with_tokenizer(&tokenizer_json(100), |w| {
            let names = vec!["precompiled".to_string()];
            w.metadata
                .set("tokenizer.normalizers", MetaValue::StrList(names));
            let n = blob.len() as u64;
            w.add_tensor("tokenizer.charsmap", dbrt::format::DType::U8, &[n], blob)
                .unwrap();
        })
    };
    // A short replacement is used: "a" reads as "b c".
    let mut s = session(&with(b"b c"), None, Truncation::LongestFirst).unwrap();
    assert_eq!(s.tokenize("a", None).unwrap().0, [1, 9, 11, 2]);
    let long = " b".repeat(1000);
    match open_bytes(&with(long.as_bytes())) {
        Err(Error::Tokenizer(m)) => assert!(m.contains("longer than 256 bytes"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// Tokenizer::encode_into takes the file's bytes from its caller: bytes of another file, short
/// ones or garbage give an error or ids, never a panic.
#[test]
fn encoding_over_bytes_of_another_file_does_not_panic() {
    let bytes = tiny_with_tokenizer(&tokenizer_json(100), |_| {});
    let model = open_bytes(&bytes).unwrap();
    let other =
        ModelFile::from_bytes_copied(&tiny_with_tokenizer(&tokenizer_json(1000), |_| {})).unwrap();
    let t = model.tokenizer().unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let garbage: Vec<u8> = (0..bytes.len())
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let max = 128;
    let mut scratch = dbrt::tokenizer::TokenizerScratch::new(1000, max).unwrap();
    let (mut ids, mut types) = (vec![0; max], vec![0; max]);
    let texts = ["a b [MASK] zz é", "w5 w17 ▁▁ abc", ""];
    for (name, buf) in [
        ("empty", &[][..]),
        ("short", &bytes[..bytes.len() / 2]),
        ("other file", other.bytes()),
        ("garbage", &garbage[..]),
    ] {
        for text in texts {
            match t.encode_into(
                buf,
                text,
                Some(text),
                max,
                Truncation::LongestFirst,
                &mut scratch,
                &mut ids,
                &mut types,
            ) {
                Ok(n) => assert!((3..=max).contains(&n), "{name}: {n}"),
                Err(Error::Tokenizer(m)) => assert!(m.contains("tables"), "{name}: {m}"),
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
    // The short and empty buffers cannot hold the tables.
    assert!(t
        .encode_into(
            &[],
            "a",
            None,
            max,
            Truncation::LongestFirst,
            &mut scratch,
            &mut ids,
            &mut types
        )
        .is_err());
}

/// A longest word beyond what the lattice can index is refused, not an overflow.
#[test]
fn an_unindexable_word_limit_is_refused() {
    let bytes = tiny_with_tokenizer(&tokenizer_json(100), |_| {});
    for max_word in [usize::MAX, usize::MAX - 2, 1 << 40, u32::MAX as usize] {
        let opts = SessionOptions {
            max_word_bytes: Some(max_word),
            ..Default::default()
        };
        match Session::new(Arc::new(open_bytes(&bytes).unwrap()), opts) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("max_word_bytes"), "{m}"),
            Err(e) => panic!("{max_word}: {e}"),
            Ok(_) => panic!("{max_word}: accepted"),
        }
    }
}

/// `tokenizer_json(100)` with more added tokens: (content, id, normalized).
fn with_added_tokens(extra: &[(&str, u32, bool)]) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(&tokenizer_json(100)).unwrap();
    let list = json["added_tokens"].as_array_mut().unwrap();
    for &(content, id, normalized) in extra {
        list.push(
            serde_json::json!({"id": id, "content": content, "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": normalized, "special": false}),
        );
    }
    serde_json::to_vec(&json).unwrap()
}

/// Overlapping added tokens, raw and normalized, are matched leftmost-longest, as the oracle.
#[test]
fn overlapping_added_tokens_match_the_oracle() {
    let extra = [
        ("ab", 100, false),
        ("abc", 101, false),
        ("bcd", 102, false),
        ("[MA", 103, false),
        ("xy", 104, true),
        ("xyz", 105, true),
        ("yz", 106, true),
    ];
    let json = with_added_tokens(&extra);
    let bytes = tiny_with_tokenizer(&json, |_| {});
    let mut s = session(&bytes, None, Truncation::LongestFirst).unwrap();
    let oracle = tokenizers::Tokenizer::from_bytes(&json).unwrap();
    for text in [
        "xabcd",
        "ab abc abcd bcd",
        "[MASK] [MA [MAS",
        "xyz xy xyzq",
        "wxyz yz q xyyz",
        "aabcabcbcdab",
    ] {
        let ours = s.tokenize(text, Some(text)).unwrap().0.to_vec();
        let theirs = oracle.encode((text, text), true).unwrap();
        assert_eq!(ours, theirs.get_ids(), "{text:?}");
    }
}

/// A normalized added token with a space would be matched by tokenizers across words, which
/// dbrt does not do: such a tokenizer is refused at open rather than encoded differently.
#[test]
fn a_normalized_added_token_spanning_words_is_refused() {
    for content in ["yz q", "x▁y"] {
        let json = with_added_tokens(&[(content, 100, true)]);
        match open_bytes(&tiny_with_tokenizer(&json, |_| {})) {
            Err(Error::Unsupported(m)) => assert!(m.contains(content), "{m}"),
            other => panic!("{other:?}"),
        }
        // Raw, it is matched in the raw text, as tokenizers does.
        let json = with_added_tokens(&[(content, 100, false)]);
        let mut s = session(
            &tiny_with_tokenizer(&json, |_| {}),
            None,
            Truncation::LongestFirst,
        )
        .unwrap();
        let text = format!("a{content}b");
        let theirs = tokenizers::Tokenizer::from_bytes(&json)
            .unwrap()
            .encode(text.as_str(), true)
            .unwrap();
        assert_eq!(s.tokenize(&text, None).unwrap().0, theirs.get_ids());
    }
}

/// Many added tokens sharing a first byte: finding them costs the length of a token, not the
/// number of tokens (50,000 tokens over 100,000 positions was billions of comparisons).
#[test]
fn many_added_tokens_are_found_in_time_independent_of_their_number() {
    let json = tokenizer_json(100);
    let bytes = tiny_with_tokenizer(&json, |w| {
        let n = 50_000;
        let mut tokens = vec!["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        tokens.extend((0..n).map(|i| format!("a{i}")));
        let mut ids = vec![0, 1, 2, 3, 4];
        ids.extend((0..n).map(|i| 100 + i % 800));
        let normalized = vec![0; tokens.len()];
        w.metadata
            .set("tokenizer.added.tokens", MetaValue::StrList(tokens));
        w.metadata
            .set("tokenizer.added.ids", MetaValue::I64List(ids));
        w.metadata
            .set("tokenizer.added.normalized", MetaValue::I64List(normalized));
    });
    let mut s = session(&bytes, None, Truncation::LongestFirst).unwrap();
    let text = "a ".repeat(100_000) + "a49999";
    let start = std::time::Instant::now();
    let (ids, _) = s.tokenize(&text, Some(&text)).unwrap();
    let elapsed = start.elapsed();
    // ▁a only: the first text is capped at the limit long before its added token.
    assert_eq!(ids.len(), 128);
    assert!(ids[1..63].iter().all(|&id| id == 7), "{ids:?}");
    assert!(elapsed.as_secs() < 5, "{elapsed:?}");
    assert_eq!(
        s.tokenize("a12a49999", None).unwrap().0,
        [1, 112, 100 + 49999 % 800, 2]
    );
}

/// A piece longer than any real one is refused at open: the Viterbi walks the trie from every
/// position of a word as far as the word matches a piece.
#[test]
fn an_overlong_piece_is_refused_at_open() {
    let with_piece = |len: usize| {
        let mut json: serde_json::Value = serde_json::from_slice(&tokenizer_json(100)).unwrap();
        json["model"]["vocab"][99] = serde_json::json!([format!("▁{}", "a".repeat(len)), -1.0]);
        tiny_with_tokenizer(&serde_json::to_vec(&json).unwrap(), |_| {})
    };
    // "▁" is 3 bytes: a piece of 1024 bytes is the longest taken, and it is used.
    let mut s = session(&with_piece(1021), None, Truncation::LongestFirst).unwrap();
    assert_eq!(s.tokenize(&"a".repeat(1021), None).unwrap().0, [1, 99, 2]);
    match open_bytes(&with_piece(1022)) {
        Err(Error::Tokenizer(m)) => assert!(m.contains("longer than 1024 bytes"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// The tokenizer gives the second text of a pair token type 1: a model with one token type
/// cannot take a pair, and says so instead of reading past its token-type table.
#[test]
fn a_pair_for_a_model_with_one_token_type_is_a_typed_error() {
    let bytes = tiny_with_tokenizer(&tokenizer_json(100), |w| {
        w.metadata
            .set("deberta.type_vocab_size", dbrt::format::MetaValue::U64(1));
        let row = [0.25f32; 32];
        w.add_tensor(
            "deberta.embeddings.token_type_embeddings.weight",
            dbrt::format::DType::F32,
            &[1, 32],
            row.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
        .unwrap();
    });
    let mut s = session(&bytes, None, Truncation::LongestFirst).unwrap();
    s.classify("a b", None)
        .expect("a single text has type 0 only");
    let e = s.classify("a b", Some("c")).unwrap_err();
    assert!(
        matches!(e, Error::InvalidTokenType { id: 1, types: 1 }),
        "{e}"
    );
}
