//! The converter on hostile and broken inputs and outputs: every case is a typed error naming the
//! input and the field or tensor, never a panic, an abort or a file that cannot be used; and a
//! failed write leaves nothing behind.

use std::path::{Path, PathBuf};

use dbrt_convert::{ConvertError, ConvertOptions, StorageType};
use dbrt_tests::*;
use safetensors::tensor::TensorView;
use serde_json::{json, Value};

fn tiny() -> PathBuf {
    fixtures().join("tiny/v3-style")
}

/// A tokenizer.json for the tiny models (vocabulary of 1000): the real model's pipeline with a
/// vocabulary of its own, and `normalizer` as given.
fn tokenizer_json(normalizer: Value, pieces: Vec<(String, f64)>) -> Value {
    let special = |id: u32, content: &str, normalized: bool| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": normalized, "special": true})
    };
    let mut vocab: Vec<Value> = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]
        .iter()
        .map(|p| json!([p, 0.0]))
        .collect();
    vocab.extend(pieces.into_iter().map(|(p, s)| json!([p, s])));
    let tok = |t: &str, type_id: u32| json!({"SpecialToken": {"id": t, "type_id": type_id}});
    let seq = |s: &str, type_id: u32| json!({"Sequence": {"id": s, "type_id": type_id}});
    json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(0, "[PAD]", false), special(1, "[CLS]", false),
                         special(2, "[SEP]", false), special(3, "[UNK]", true)],
        "normalizer": normalizer,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": true},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0)],
            "pair": [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0), seq("B", 1), tok("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [2], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": true},
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": false}
    })
}

fn normalizer_with(charsmap: &[u8]) -> Value {
    json!({"type": "Sequence", "normalizers": [
        {"type": "Strip", "strip_left": true, "strip_right": true},
        {"type": "Precompiled", "precompiled_charsmap": base64(charsmap)},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}
    ]})
}

fn plain_pieces() -> Vec<(String, f64)> {
    ["\u{2581}a", "\u{2581}b", "a", "b"]
        .iter()
        .enumerate()
        .map(|(i, p)| (p.to_string(), -1.0 - i as f64))
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// A copy of the tiny v3-style model in a fresh directory; `edit` changes its config.json.
fn model_dir(edit: impl Fn(&mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        tiny().join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(tiny().join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    dir
}

fn with_tokenizer(tokenizer: &Value) -> tempfile::TempDir {
    let dir = model_dir(|_| {});
    std::fs::write(dir.path().join("tokenizer.json"), tokenizer.to_string()).unwrap();
    dir
}

fn convert_to(input: &Path, out: &Path, storage: StorageType) -> Result<u64, ConvertError> {
    let opts = ConvertOptions {
        storage,
        ..Default::default()
    };
    dbrt_convert::convert(input, out, &opts, &mut ())
}

/// Converts `input` into a fresh directory: the error, and whether that directory is still
/// empty (no file, no temporary file left behind).
fn refused(input: &Path) -> (String, bool) {
    let out = tempfile::tempdir().unwrap();
    let e = convert_to(input, &out.path().join("out.dbrt"), StorageType::F32)
        .expect_err("the conversion must fail")
        .to_string();
    let empty = std::fs::read_dir(out.path()).unwrap().next().is_none();
    (e, empty)
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect()
}

#[test]
fn a_tokenizer_that_loads_converts() {
    // The baseline the hostile cases below depart from.
    let dir = with_tokenizer(&tokenizer_json(
        json!({"type": "Strip", "strip_left": true, "strip_right": true}),
        plain_pieces(),
    ));
    let out = tempfile::tempdir().unwrap();
    convert_to(dir.path(), &out.path().join("m.dbrt"), StorageType::F32).unwrap();
    let model = open(&out.path().join("m.dbrt"));
    assert_eq!(model.encode("a b", None).unwrap().ids, [1, 4, 5, 2]);
}

#[test]
fn a_charsmap_that_would_panic_in_tokenizers_is_refused() {
    // A trie of 4 units whose root points at unit 0: the `tokenizers` crate indexes unit
    // 0 ^ '[' = 91 when it normalizes the added token [UNK], and panics.
    let mut blob = 16u32.to_le_bytes().to_vec();
    blob.extend([0u8; 16]);
    let dir = with_tokenizer(&tokenizer_json(normalizer_with(&blob), plain_pieces()));
    let (e, empty) = refused(dir.path());
    assert!(
        e.contains("tokenizer.json")
            && e.contains("normalizer.normalizers[1].precompiled_charsmap")
            && e.contains("reaches unit"),
        "{e}"
    );
    assert!(empty);
}

#[test]
fn a_forged_charsmap_size_is_refused_before_it_is_allocated() {
    // 2^32 - 4 bytes of trie announced, 16 present: `spm_precompiled` reserves 8 GB first.
    let mut blob = 0xFFFF_FFFCu32.to_le_bytes().to_vec();
    blob.extend([0u8; 16]);
    let dir = with_tokenizer(&tokenizer_json(normalizer_with(&blob), plain_pieces()));
    let (e, empty) = refused(dir.path());
    assert!(
        e.contains("tokenizer.json")
            && e.contains("precompiled_charsmap")
            && e.contains("trie size 4294967292"),
        "{e}"
    );
    assert!(empty);
}

#[test]
fn a_huge_vocabulary_piece_is_refused() {
    // `tokenizers` drops its Unigram trie recursively, a frame per byte: 1 MB overflows the
    // stack of this test's thread.
    let mut pieces = plain_pieces();
    pieces.push(("x".repeat(1 << 20), -9.0));
    let dir = with_tokenizer(&tokenizer_json(
        json!({"type": "Strip", "strip_left": true, "strip_right": true}),
        pieces,
    ));
    let (e, empty) = refused(dir.path());
    assert!(
        e.contains("tokenizer.json")
            && e.contains("model.vocab")
            && e.contains("piece 8 has 1048576 bytes, more than 1024"),
        "{e}"
    );
    assert!(empty);
}

#[test]
fn config_values_outside_the_runtime_bounds_are_refused() {
    for (field, value, says) in [
        // relative_position_index(10^9) alone would take 8 GB.
        (
            "max_position_embeddings",
            json!(1_000_000_000u64),
            "1000000000 is outside 1..=65536",
        ),
        (
            "max_position_embeddings",
            json!(1u64 << 63),
            "9223372036854775808 is outside",
        ),
        ("max_position_embeddings", json!(1), "1 is below 3"),
        ("position_buckets", json!(1u64 << 40), "(at most 65536)"),
        ("pad_token_id", json!(1u64 << 32), "does not fit in 32 bits"),
        ("layer_norm_eps", json!(0.0), "layer_norm_eps 0"),
        ("num_attention_heads", json!(1 << 20), "num_attention_heads"),
    ] {
        let dir = model_dir(|c| c[field] = value.clone());
        let (e, empty) = refused(dir.path());
        assert!(
            e.contains("config.json") && e.contains(field) && e.contains(says),
            "{field} = {value}: {e}"
        );
        assert!(empty, "{field}");
    }
}

/// The tiny model with one element of `tensor` set to `value`.
fn with_weight(tensor: &str, index: usize, value: f32) -> tempfile::TempDir {
    let dir = model_dir(|_| {});
    let bytes = std::fs::read(tiny().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    let (_, _, d) = data.iter_mut().find(|(n, _, _)| n == tensor).unwrap();
    d[index * 4..index * 4 + 4].copy_from_slice(&value.to_le_bytes());
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    dir
}

#[test]
fn non_finite_weights_are_refused_by_name() {
    for (tensor, value) in [
        ("deberta.encoder.layer.1.output.dense.weight", f32::NAN),
        ("classifier.bias", f32::INFINITY),
        // Read only to compute the relative-position projections, never written as such.
        ("deberta.encoder.rel_embeddings.weight", f32::NEG_INFINITY),
    ] {
        let dir = with_weight(tensor, 1, value);
        let (e, empty) = refused(dir.path());
        assert!(
            e.contains(&dir.path().display().to_string())
                && e.contains(&format!("tensor '{tensor}' holds {value} at element 1")),
            "{tensor}: {e}"
        );
        assert!(empty, "{tensor}");
    }
}

/// Finite weights so large that activations overflow f32 (every input would answer NaN) are
/// refused by name, as non-finite ones are.
#[test]
fn weights_beyond_the_bound_are_refused_by_name() {
    for (tensor, value) in [
        ("pooler.dense.bias", 1.25e38f32),
        ("deberta.encoder.layer.1.output.dense.weight", -2e6),
        ("deberta.encoder.rel_embeddings.weight", 1e30),
    ] {
        let dir = with_weight(tensor, 2, value);
        let (e, empty) = refused(dir.path());
        assert!(
            e.contains(&format!("tensor '{tensor}' holds {value:e} at element 2"))
                && e.contains("within ±1e6"),
            "{tensor}: {e}"
        );
        assert!(empty, "{tensor}");
    }
}

#[test]
fn weights_beyond_f16_are_refused_when_stored_as_f16() {
    let tensor = "deberta.encoder.layer.0.intermediate.dense.weight";
    let dir = with_weight(tensor, 3, 1e5);
    let out = tempfile::tempdir().unwrap();
    // f32 keeps it; f16 would store infinity.
    convert_to(dir.path(), &out.path().join("f32.dbrt"), StorageType::F32).unwrap();
    let e = convert_to(dir.path(), &out.path().join("f16.dbrt"), StorageType::F16)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("tensor '{tensor}' holds inf at element 3"))
            && e.contains("--dtype f32"),
        "{e}"
    );
    assert!(!out.path().join("f16.dbrt").exists());
    assert!(leftovers(out.path()).is_empty());
}

#[test]
fn a_missing_input_is_said_not_to_exist() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = refused(&dir.path().join("no-such-model"));
    assert!(
        e.contains("no-such-model does not exist") && !e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn an_unwritable_output_is_a_write_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Root writes through permission bits: a parent that is a regular file stops anyone.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let e = convert_to(&tiny(), &file.join("out.dbrt"), StorageType::F32).unwrap_err();
    assert!(matches!(e, ConvertError::Write { .. }), "{e:?}");
    let e = e.to_string();
    assert!(
        e.starts_with(&format!("cannot write {}", file.join("out.dbrt").display())),
        "{e}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

/// A tmpfs of `size` mounted (with `options`) for the duration of a test. Mounting needs
/// privileges; without them there is no such file system to test on, and `None` says so.
struct Mount(tempfile::TempDir);

impl Mount {
    fn new(options: &str) -> Option<Mount> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Mount(dir))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn a_full_or_read_only_file_system_is_a_write_error_and_leaves_nothing() {
    // 64 KiB: the tiny model's file (~180 KB) does not fit.
    let Some(full) = Mount::new("size=64k") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs privileges)");
        return;
    };
    let out = full.0.path().join("out.dbrt");
    let e = convert_to(&tiny(), &out, StorageType::F32).unwrap_err();
    assert!(matches!(e, ConvertError::Write { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot write {}", out.display()))
            && e.to_string().contains("No space left on device"),
        "{e}"
    );
    assert!(std::fs::read_dir(full.0.path()).unwrap().next().is_none());

    let ro = Mount::new("size=1m,ro").expect("mounted once already");
    let e = convert_to(&tiny(), &ro.0.path().join("out.dbrt"), StorageType::F32)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot write") && e.contains("Read-only file system"),
        "{e}"
    );
}

#[test]
fn a_model_in_use_is_not_replaced() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("model.dbrt");
    convert_to(&tiny(), &out, StorageType::F32).unwrap();
    let before = std::fs::read(&out).unwrap();
    // What dbrt holds on a model it has open: a shared lock. flock locks of two opens
    // conflict even within one process.
    let user = std::fs::File::open(&out).unwrap();
    user.lock_shared().unwrap();
    let e = convert_to(&tiny(), &out, StorageType::F16).unwrap_err();
    assert!(matches!(e, ConvertError::InUse { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "{} is open in a dbrt process (a model in use); write elsewhere or close it first",
            out.display()
        )
    );
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert!(leftovers(out_dir.path()).is_empty());
    user.unlock().unwrap();
    convert_to(&tiny(), &out, StorageType::F16).unwrap();
    assert_ne!(std::fs::read(&out).unwrap(), before);
    assert!(leftovers(out_dir.path()).is_empty());
}

#[test]
fn writers_of_one_output_do_not_share_a_temporary_file() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("model.dbrt");
    // Another writer's temporary file under the name every writer once used.
    let other = out_dir.path().join("model.dbrt.partial");
    std::fs::write(&other, b"another writer's half-written file").unwrap();
    std::thread::scope(|s| {
        for storage in [StorageType::F32, StorageType::F16, StorageType::Int8] {
            let out = &out;
            s.spawn(move || {
                for _ in 0..4 {
                    convert_to(&tiny(), out, storage).unwrap();
                }
            });
        }
    });
    dbrt::Model::open(&out).unwrap();
    assert_eq!(
        std::fs::read(&other).unwrap(),
        b"another writer's half-written file"
    );
    assert_eq!(leftovers(out_dir.path()), ["model.dbrt.partial"]);
}

#[test]
fn the_real_tokenizer_passes_the_checks() {
    // Its charsmap is SentencePiece's nmt_nfkc: every unit a lookup reaches lies in the trie.
    let dir = real_tokenizer_dir();
    for file in ["tokenizer.json", "spm.model"] {
        let (json, _) = dbrt_convert::tokenizer_source::find(&dir, Some(&dir.join(file))).unwrap();
        assert!(json.is_some(), "{file}");
    }
}

// ---- pytorch_model.bin: the zip archive and the pickle ----

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// One member of a hand-made zip archive: its compression method, and a size its central
/// directory entry may claim instead of the true one (written as zip64).
struct Member<'a> {
    name: &'a str,
    data: &'a [u8],
    method: u16,
    claimed_size: Option<u64>,
}

fn stored<'a>(name: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        name,
        data,
        method: 0,
        claimed_size: None,
    }
}

/// A zip archive of `members`, laid out as `torch.save` lays it out (stored, no data
/// descriptors), with what each member's entry claims.
fn zip_archive(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for m in members {
        let offset = out.len() as u32;
        let len = m.data.len() as u32;
        let crc = crc32(m.data);
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([20, 0, 0, 0]);
        out.extend(m.method.to_le_bytes());
        out.extend([0; 4]);
        out.extend(crc.to_le_bytes());
        out.extend(len.to_le_bytes());
        out.extend(len.to_le_bytes());
        out.extend((m.name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(m.name.as_bytes());
        out.extend(m.data);
        let extra: Vec<u8> = match m.claimed_size {
            Some(size) => [1u16.to_le_bytes().as_slice(), &16u16.to_le_bytes()]
                .concat()
                .into_iter()
                .chain(size.to_le_bytes())
                .chain((m.data.len() as u64).to_le_bytes())
                .collect(),
            None => Vec::new(),
        };
        let (csize, usize_) = match m.claimed_size {
            Some(_) => (u32::MAX, u32::MAX),
            None => (len, len),
        };
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([45, 0, 45, 0, 0, 0]);
        central.extend(m.method.to_le_bytes());
        central.extend([0; 4]);
        central.extend(crc.to_le_bytes());
        central.extend(csize.to_le_bytes());
        central.extend(usize_.to_le_bytes());
        central.extend((m.name.len() as u16).to_le_bytes());
        central.extend((extra.len() as u16).to_le_bytes());
        // Comment length, disk, internal and external attributes.
        central.extend([0; 10]);
        central.extend(offset.to_le_bytes());
        central.extend(m.name.as_bytes());
        central.extend(extra);
    }
    let cd_offset = out.len() as u32;
    let n = members.len() as u16;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0; 4]);
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend([0; 2]);
    out
}

/// The tiny model's config beside a `pytorch_model.bin` of `members`.
fn torch_dir(members: &[Member]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("tiny/v3-style-pytorch-bin/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), zip_archive(members)).unwrap();
    dir
}

/// A state_dict `{'w': <value>}`, the value's opcodes given.
fn state_dict_of(value: &[u8]) -> Vec<u8> {
    let mut p = b"\x80\x02}q\x00X\x01\x00\x00\x00w".to_vec();
    p.extend(value);
    p.extend(b"s.");
    p
}

fn refused_pickle(pickle: &[u8]) -> String {
    let dir = torch_dir(&[stored("archive/data.pkl", pickle)]);
    let (e, empty) = refused(dir.path());
    assert!(empty);
    e
}

#[test]
fn a_hand_made_archive_of_an_empty_state_dict_reads() {
    // The baseline of the cases below: the archive is read, and the model lacks its tensors.
    let e = refused_pickle(b"\x80\x02}.");
    assert!(e.contains("missing tensor"), "{e}");
}

#[test]
fn a_forged_member_size_is_refused_before_it_is_allocated() {
    // The pickle's entry claims 2^62 bytes: the old reader reserved that much and aborted.
    let dir = torch_dir(&[Member {
        claimed_size: Some(1 << 62),
        ..stored("archive/data.pkl", b"\x80\x02}.")
    }]);
    let (e, empty) = refused(dir.path());
    assert!(
        e.contains("pytorch_model.bin")
            && e.contains("member 'archive/data.pkl' is stored but its two sizes differ"),
        "{e}"
    );
    assert!(empty);
}

#[test]
fn a_compressed_member_is_refused_by_name() {
    let dir = torch_dir(&[Member {
        method: 8,
        ..stored("archive/data.pkl", b"\x80\x02}.")
    }]);
    let (e, _) = refused(dir.path());
    assert!(
        e.contains("member 'archive/data.pkl' is compressed (method 8)"),
        "{e}"
    );
}

#[test]
fn deeply_nested_tuples_do_not_overflow_the_stack() {
    // (((...),),) a million deep: the old reader's values dropped recursively, a frame a level.
    let mut v = vec![b')'];
    v.extend(std::iter::repeat_n(0x85, 1_000_000));
    let e = refused_pickle(&state_dict_of(&v));
    assert!(e.contains("missing tensor"), "{e}");
}

#[test]
fn deeply_nested_marks_are_refused() {
    let mut v = vec![b'('; 1_000_000];
    v.extend(std::iter::repeat_n(b't', 1_000_000));
    let e = refused_pickle(&state_dict_of(&v));
    assert!(
        e.contains("more than 64 nested MARKs (opcode 0x28 '(' at offset 75)"),
        "{e}"
    );
}

#[test]
fn memo_references_do_not_expand() {
    // m[i+1] = (m[i], m[i]) for 64 levels: 2^64 leaves had every reference been copied, as
    // the old reader copied them.
    let mut v = b"]".to_vec();
    for i in 1u8..=64 {
        // Memoize the top, push it again, pair the two.
        v.extend([b'q', i, b'h', i, 0x86]);
    }
    let started = std::time::Instant::now();
    let e = refused_pickle(&state_dict_of(&v));
    assert!(e.contains("missing tensor"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn an_unknown_global_is_refused_by_name() {
    let e = refused_pickle(&state_dict_of(b"cos\nsystem\n)R"));
    assert!(
        e.contains("pytorch_model.bin: pickle: unsupported GLOBAL 'os system' (opcode 0x63 'c' at offset 11)"),
        "{e}"
    );
}
