//! Damaged and forged `.dbrt` files: each kind of damage gives its own typed error, and no byte
//! pattern makes the reader panic.

use dbrt::format::{reseal, FileWriter, MetaValue, ModelFile, HEADER_LEN, RECORD_LEN};
use dbrt::{Error, Model, Sequence, Session, SessionOptions};
use dbrt_convert::StorageType;
use dbrt_tests::*;

fn valid_bytes() -> Vec<u8> {
    let (_d, path) = convert(&fixtures().join("tiny/v3-style"), StorageType::F32);
    std::fs::read(path).unwrap()
}

fn open(bytes: &[u8]) -> Result<Model, Error> {
    Model::from_file(ModelFile::from_bytes_copied(bytes)?)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Offset of tensor record `i` in the file.
fn record_at(b: &[u8], i: usize) -> usize {
    u64_at(b, 48) as usize + i * RECORD_LEN
}

/// Rewrites a valid file through the writer with `edit` applied to its metadata and tensors.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(&mut FileWriter, &ModelFile, &mut Vec<String>),
) -> Vec<u8> {
    let file = ModelFile::from_bytes_copied(bytes).unwrap();
    let mut w = FileWriter::new();
    w.metadata = file.metadata().clone();
    let mut skip = Vec::new();
    edit(&mut w, &file, &mut skip);
    for r in file.records() {
        if skip.contains(&r.name) || w.has_tensor(&r.name) {
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

#[test]
fn valid_file_opens_and_verifies() {
    let b = valid_bytes();
    let f = ModelFile::from_bytes_copied(&b).unwrap();
    f.verify_data().unwrap();
    open(&b).unwrap();
}

#[test]
fn truncated_files() {
    let b = valid_bytes();
    for cut in [0, 4, 7] {
        assert!(matches!(open(&b[..cut]), Err(Error::BadMagic)), "cut {cut}");
    }
    assert!(matches!(
        open(&b[..100]),
        Err(Error::Truncated { what: "header", .. })
    ));
    for cut in [HEADER_LEN, 300, b.len() / 2, b.len() - 1] {
        assert!(
            matches!(open(&b[..cut]), Err(Error::Truncated { what: "file", .. })),
            "cut {cut}"
        );
    }
}

#[test]
fn flipped_bytes_in_header_and_tables() {
    let b = valid_bytes();
    // Up to the end of the tensor table; the zero padding before the data is not read.
    let table_end = u64_at(&b, 48) as usize + u64_at(&b, 56) as usize * RECORD_LEN;
    for at in 0..table_end {
        let mut m = b.clone();
        m[at] ^= 0x20;
        let e = open(&m)
            .err()
            .unwrap_or_else(|| panic!("flip at {at} opened"));
        match at {
            0..=7 => assert!(matches!(e, Error::BadMagic), "{at}: {e}"),
            8..=9 => assert!(matches!(e, Error::UnsupportedVersion { .. }), "{at}: {e}"),
            12..=15 => assert!(matches!(e, Error::CorruptHeader(_)), "{at}: {e}"),
            20..=23 => assert!(matches!(e, Error::CorruptHeader(_)), "{at}: {e}"),
            24..=31 => assert!(
                matches!(e, Error::Truncated { .. } | Error::CorruptHeader(_)),
                "{at}: {e}"
            ),
            // Everything else in the header, the metadata and the tensor table is covered by the
            // checksum (section bounds may fail first).
            _ => assert!(
                matches!(e, Error::ChecksumMismatch { .. } | Error::CorruptHeader(_)),
                "{at}: {e}"
            ),
        }
    }
}

#[test]
fn flipped_data_byte_fails_verification() {
    let mut b = valid_bytes();
    let at = u64_at(&b, 72) as usize + 10;
    b[at] ^= 1;
    let f = ModelFile::from_bytes_copied(&b).unwrap();
    assert!(matches!(
        f.verify_data(),
        Err(Error::DataChecksumMismatch { .. })
    ));
}

#[test]
fn unknown_major_version_and_byte_order() {
    let mut b = valid_bytes();
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    assert!(matches!(
        open(&b),
        Err(Error::UnsupportedVersion { major: 2, .. })
    ));
    let mut b = valid_bytes();
    b[10..12].copy_from_slice(&7u16.to_le_bytes()); // a newer minor version still reads
    reseal(&mut b).unwrap();
    open(&b).unwrap();
    let mut b = valid_bytes();
    b[12..16].reverse();
    assert!(matches!(open(&b), Err(Error::ByteOrder)));
}

#[test]
fn forged_records_behind_a_valid_checksum() {
    let b = valid_bytes();
    // Offset past the end of the file.
    let mut m = b.clone();
    let r = record_at(&m, 3);
    m[r + 136..r + 144].copy_from_slice(&(b.len() as u64).to_le_bytes());
    reseal(&mut m).unwrap();
    assert!(matches!(open(&m), Err(Error::TensorOutOfBounds { .. })));
    // Offset inside the data but not 64-byte aligned.
    let mut m = b.clone();
    let r = record_at(&m, 3);
    let off = u64_at(&m, r + 136);
    m[r + 136..r + 144].copy_from_slice(&(off + 4).to_le_bytes());
    reseal(&mut m).unwrap();
    assert!(matches!(open(&m), Err(Error::MisalignedTensor { .. })));
    // Byte length that disagrees with shape and dtype.
    let mut m = b.clone();
    let r = record_at(&m, 3);
    let n = u64_at(&m, r + 144);
    m[r + 144..r + 152].copy_from_slice(&(n + 4).to_le_bytes());
    reseal(&mut m).unwrap();
    assert!(matches!(
        open(&m),
        Err(Error::CorruptTensorRecord { index: 3, .. })
    ));
    // Unknown dtype.
    let mut m = b.clone();
    let r = record_at(&m, 0);
    m[r + 96] = 99;
    reseal(&mut m).unwrap();
    assert!(matches!(
        open(&m),
        Err(Error::CorruptTensorRecord { index: 0, .. })
    ));
    // Records out of order break binary search.
    let mut m = b.clone();
    let (r0, r1) = (record_at(&m, 0), record_at(&m, 1));
    let first = m[r0..r0 + RECORD_LEN].to_vec();
    m.copy_within(r1..r1 + RECORD_LEN, r0);
    m[r1..r1 + RECORD_LEN].copy_from_slice(&first);
    reseal(&mut m).unwrap();
    assert!(matches!(
        open(&m),
        Err(Error::CorruptTensorRecord { index: 1, .. })
    ));
    // A metadata value type that does not exist.
    let mut m = b.clone();
    let key = b"general.architecture";
    let at = m.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    m[at] = 42;
    reseal(&mut m).unwrap();
    assert!(matches!(open(&m), Err(Error::CorruptMetadata(_))));
}

#[test]
fn missing_and_misshapen_tensors() {
    let b = valid_bytes();
    let m = rewrite(&b, |_, _, skip| skip.push("classifier.bias".into()));
    assert!(matches!(open(&m), Err(Error::MissingTensor { name }) if name == "classifier.bias"));
    let m = rewrite(&b, |w, _, _| {
        w.add_f32("pooler.dense.bias", &[31], &[0.0; 31]).unwrap();
    });
    assert!(
        matches!(open(&m), Err(Error::TensorShape { name, .. }) if name == "pooler.dense.bias")
    );
    let m = rewrite(&b, |w, _, _| {
        w.add_tensor(
            "pooler.dense.bias",
            dbrt::format::DType::I32,
            &[32],
            vec![0; 128],
        )
        .unwrap();
    });
    assert!(matches!(open(&m), Err(Error::TensorDtype { .. })));
    let m = rewrite(&b, |w, f, _| {
        let n = 2 * f.metadata().u64("deberta.max_position_embeddings").unwrap() as usize - 1;
        let idx = vec![1000i32; n]; // rows that do not exist
        w.add_tensor(
            "deberta.encoder.rel_pos_index",
            dbrt::format::DType::I32,
            &[n as u64],
            bytemuck_cast(&idx),
        )
        .unwrap();
    });
    assert!(matches!(open(&m), Err(Error::BadMetadata { .. })));
}

/// One relative projection int8 (packed per head) and the other f32: refused by name, not run
/// with one of them silently dropped.
#[test]
fn int8_and_float_relative_projections_together_are_refused() {
    let tiny = fixtures().join("tiny/v3-style");
    let (_d8, int8) = convert(&tiny, StorageType::Int8);
    let (_d32, f32_path) = convert(&tiny, StorageType::F32);
    let int8 = std::fs::read(int8).unwrap();
    let floats = ModelFile::from_bytes_copied(&std::fs::read(f32_path).unwrap()).unwrap();
    // The int8 file rewritten as it is opens (the rewrite keeps packed layouts).
    assert!(open(&rewrite(&int8, |_, _, _| {})).is_ok());
    let name = "deberta.encoder.layer.0.attention.self.rel_pos_query";
    let mixed = rewrite(&int8, |w, _, _| {
        let v = floats.tensor(name).unwrap();
        w.add_tensor(name, v.record.dtype, &v.record.shape, v.bytes.to_vec())
            .unwrap();
    });
    assert!(
        matches!(open(&mixed), Err(Error::BadMetadata { key, .. }) if key == name),
        "{:?}",
        open(&mixed).err()
    );
}

fn bytemuck_cast(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn missing_or_unsupported_config() {
    let b = valid_bytes();
    let m = rewrite(&b, |w, f, _| {
        let mut meta = dbrt::format::Metadata::new();
        for (k, v) in f
            .metadata()
            .entries()
            .iter()
            .filter(|(k, _)| k != "deberta.hidden_size")
        {
            meta.set(k, v.clone());
        }
        w.metadata = meta;
    });
    assert!(
        matches!(open(&m), Err(Error::MissingMetadata { key }) if key == "deberta.hidden_size")
    );
    let m = rewrite(&b, |w, _, _| {
        w.metadata
            .set("deberta.hidden_act", MetaValue::Str("swish".into()))
    });
    assert!(matches!(open(&m), Err(Error::Unsupported(_))));
    let m = rewrite(&b, |w, _, _| {
        w.metadata
            .set("deberta.hidden_size", MetaValue::Str("32".into()))
    });
    assert!(matches!(open(&m), Err(Error::BadMetadata { .. })));
    let m = rewrite(&b, |w, _, _| {
        w.metadata
            .set("general.architecture", MetaValue::Str("BertModel".into()))
    });
    assert!(matches!(open(&m), Err(Error::Unsupported(_))));
}

/// Sizes that come from metadata no tensor ties down. Each of these files has valid checksums
/// and used to abort the process (an infallible allocation of 51 GB to 2 TB) when a session was
/// made; each must be a typed error, at open or at session creation.
#[test]
fn sizes_no_tensor_ties_are_bounded() {
    let b = valid_bytes();
    let no_relative = |w: &mut FileWriter| {
        w.metadata
            .set("deberta.relative_attention", MetaValue::Bool(false))
    };
    // 65,536 positions and nothing position-dependent: a legal model whose full-length session
    // needs ~50 GB. Opening works; a full-length session is refused for its size, a short one
    // is made.
    let m = rewrite(&b, |w, _, _| {
        no_relative(w);
        w.metadata
            .set("deberta.max_position_embeddings", MetaValue::U64(65536));
    });
    let model = std::sync::Arc::new(open(&m).expect("a legal model"));
    let e = Session::new(model.clone(), SessionOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::OutOfMemory { bytes, .. } if bytes > 1 << 34),
        "{e}"
    );
    let short = SessionOptions {
        max_sequence_length: Some(64),
        ..Default::default()
    };
    let mut s = Session::new(model, short).expect("a 64-token session");
    let ids = [1, 5, 7, 2];
    s.run_logits(Sequence {
        ids: &ids,
        type_ids: None,
    })
    .expect("runs");
    // position_buckets sized the int8 attention's scratch even without relative attention.
    let m = rewrite(&b, |w, _, _| {
        no_relative(w);
        w.metadata
            .set("deberta.position_buckets", MetaValue::I64(1 << 30));
    });
    let e = open(&m).unwrap_err();
    assert!(
        matches!(&e, Error::Unsupported(m) if m.contains("position_buckets")),
        "{e}"
    );
    // All heads' width 2^30 in a model without layers (no attention tensor to check it by).
    // Head size 2^20 is past its own bound; 2^10 only past the bound on all heads together.
    for (head_size, says) in [(1 << 20, "attention_head_size"), (1 << 10, "heads")] {
        let m = rewrite(&b, |w, _, _| {
            w.metadata
                .set("deberta.num_hidden_layers", MetaValue::U64(0));
            w.metadata
                .set("deberta.num_attention_heads", MetaValue::U64(1024));
            w.metadata
                .set("deberta.attention_head_size", MetaValue::U64(head_size));
        });
        let e = open(&m).unwrap_err();
        assert!(e.to_string().contains(says), "head size {head_size}: {e}");
    }
}

/// The int8 attention reads the relative rows between the entries of a sequence's extreme
/// distances: a permuted index (in range, so it passed the old check) must be refused at
/// open, not panic in the attention.
#[test]
fn a_permuted_relative_position_index_is_refused() {
    let tiny = fixtures().join("tiny/v3-style");
    let (_d, path) = convert(&tiny, StorageType::Int8);
    let b = std::fs::read(path).unwrap();
    let name = "deberta.encoder.rel_pos_index";
    let m = rewrite(&b, |w, f, _| {
        let v = f.tensor(name).unwrap();
        let mut idx: Vec<i32> = v.i32().unwrap().to_vec();
        let n = idx.len();
        idx.swap(0, n - 1); // the farthest distances' rows, exchanged
        w.add_tensor(name, v.record.dtype, &v.record.shape, bytemuck_cast(&idx))
            .unwrap();
    });
    let e = open(&m).unwrap_err();
    assert!(
        matches!(&e, Error::BadMetadata { key, .. } if key == name),
        "{e}"
    );
}

#[test]
fn buffers_and_paths() {
    let b = valid_bytes();
    // A buffer that does not start on a 64-byte boundary is refused, not copied behind one's back.
    let mut v = vec![0u8; b.len() + 64];
    let shift = (64 - v.as_ptr() as usize % 64) % 64 + 1;
    v[shift..shift + b.len()].copy_from_slice(&b);
    struct Window(Vec<u8>, usize, usize);
    impl AsRef<[u8]> for Window {
        fn as_ref(&self) -> &[u8] {
            &self.0[self.1..self.1 + self.2]
        }
    }
    let w = Window(v, shift, b.len());
    assert!(matches!(
        ModelFile::from_buffer(w),
        Err(Error::MisalignedBuffer { required: 64 })
    ));
    assert!(matches!(
        Model::open("/nonexistent/model.dbrt"),
        Err(Error::Io { .. })
    ));
}

/// Random damage to the first kilobytes (header, metadata, records), resealed or not: every
/// outcome is an `Ok` or a typed error, never a panic.
#[test]
fn random_damage_never_panics() {
    let b = valid_bytes();
    let span = (u64_at(&b, 72) as usize).min(b.len());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = 0;
    for i in 0..3000 {
        let mut m = b.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % span;
            m[at] = next() as u8;
        }
        if i % 2 == 0 {
            let _ = reseal(&mut m);
        }
        if i % 7 == 0 {
            m.truncate((next() as usize) % m.len());
        }
        let r = std::panic::catch_unwind(|| open(&m).map(|_| ()));
        match r {
            Ok(Err(_)) => errors += 1,
            Ok(Ok(())) => {}
            Err(_) => panic!("iteration {i} panicked"),
        }
    }
    assert!(
        errors > 1000,
        "only {errors} of 3000 damaged files were refused"
    );
}

/// A file whose weights are finite but overflow f32 in the activations (written directly: the
/// converter refuses them) answers a typed error, not NaN logits, call after call.
#[test]
fn weights_that_overflow_give_a_typed_error_not_nan() {
    let valid = valid_bytes();
    let with = |tensor: &str, value: f32| {
        rewrite(&valid, |w, file, _| {
            let r = file.records().find(|r| r.name == tensor).unwrap();
            let n = file.tensor(tensor).unwrap().bytes.len() / 4;
            let data = value.to_le_bytes().repeat(n);
            w.add_tensor_with_layout(tensor, r.dtype, r.layout, &r.shape, data)
                .unwrap();
        })
    };
    let ids = [1u32, 5, 2];
    let seq = Sequence {
        ids: &ids,
        type_ids: None,
    };
    let session = |bytes: &[u8]| {
        Session::new(
            std::sync::Arc::new(open(bytes).unwrap()),
            Default::default(),
        )
        .unwrap()
    };

    let mut s = session(&with("classifier.weight", 3e38));
    for _ in 0..2 {
        let e = s.run_logits(seq).unwrap_err();
        assert!(matches!(e, Error::NonFinite { what: "logits" }), "{e}");
        let mut out = [0.0; 3];
        let e = s.run_batch_into(&[seq], &mut out).unwrap_err();
        assert!(matches!(e, Error::NonFinite { what: "logits" }), "{e}");
    }
    // The hidden states do not read the head: they are fine.
    assert!(s.run_hidden(seq).unwrap().iter().all(|v| v.is_finite()));

    let last_norm = "deberta.encoder.layer.1.output.LayerNorm.weight";
    let mut s = session(&with(last_norm, 3e38));
    let e = s.run_hidden(seq).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NonFinite {
                what: "hidden states"
            }
        ),
        "{e}"
    );
}
