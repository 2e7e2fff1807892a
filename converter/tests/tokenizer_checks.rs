//! `check_json` refuses, with an error naming the field, the tokenizer.json files that would make
//! the `tokenizers` crate abort or panic while loading them (entries of tests/corpus/convert
//! that CI's fuzz run found). Loading them unchecked aborts the process (a forged trie size:
//! an 8 GiB allocation) or panics inside `tokenizers` (an `expect`), which the converter
//! contains but a fuzz run counts as a crash.

use std::path::Path;

fn check(entry: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/corpus/convert")
        .join(entry)
        .join("tokenizer.json");
    let json = std::fs::read(&path).unwrap();
    match dbrt_convert::tokenizer_source::check_json(&path, &json) {
        Ok(()) => panic!("{entry}: accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_charsmap_inside_an_untagged_sequence_is_checked() {
    // The Sequence's "type" key is mangled: tokenizers still reads it, untagged.
    let e = check("charsmap-untagged-sequence");
    assert!(
        e.contains("normalizer.normalizers[1].precompiled_charsmap") && e.contains("trie size"),
        "{e}"
    );
}

#[test]
fn a_precompiled_normalizer_without_its_charsmap_is_refused() {
    let e = check("precompiled-without-charsmap");
    assert!(
        e.contains("normalizer.normalizers[1] is a Precompiled normalizer without"),
        "{e}"
    );
}

fn check_text(json: &str) -> String {
    let path = Path::new("crafted/tokenizer.json");
    match dbrt_convert::tokenizer_source::check_json(path, json.as_bytes()) {
        Ok(()) => panic!("accepted: {json}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_repeated_key_cannot_hide_a_normalizer() {
    // serde_json's Value keeps the last "normalizer", tokenizers builds both: the first one's
    // forged trie size (8 GiB) would abort the process.
    let e = check_text(
        r#"{"normalizer": {"type": "Precompiled", "precompiled_charsmap": "8P///wAAAAA="},
            "normalizer": null}"#,
    );
    assert!(e.contains(r#"key "normalizer" appears twice"#), "{e}");
}

#[test]
fn an_empty_tagged_charsmap_is_refused() {
    // tokenizers panics on it ("Cannot parse precompiled_charsmap").
    let e = check_text(
        r#"{"normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": ""}]}}"#,
    );
    assert!(
        e.contains("normalizer.normalizers[0].precompiled_charsmap") && e.contains("shorter"),
        "{e}"
    );
}
