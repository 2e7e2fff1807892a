//! `dbrt-convert inspect --verify` fails a file whose default session this machine cannot
//! hold, as it fails a damaged one.

use std::path::Path;
use std::process::Command;

use dbrt::format::{FileWriter, MetaValue, ModelFile};
use dbrt_convert::{ConvertOptions, StorageType};

fn inspect(path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dbrt-convert"))
        .arg("inspect")
        .arg(path)
        .arg("--verify")
        .output()
        .unwrap()
}

#[test]
fn verify_fails_a_model_whose_full_length_session_cannot_be_had() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny/v3-style");
    let good = dir.path().join("good.dbrt");
    let opts = ConvertOptions {
        storage: StorageType::F32,
        ..Default::default()
    };
    dbrt_convert::convert(&tiny, &good, &opts, &mut ()).unwrap();
    let out = inspect(&good);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("session at"));

    // Nothing position-dependent and 65,536 positions: a full-length session needs ~50 GB.
    let file = ModelFile::open(&good).unwrap();
    let mut w = FileWriter::new();
    w.metadata = file.metadata().clone();
    w.metadata
        .set("deberta.relative_attention", MetaValue::Bool(false));
    w.metadata
        .set("deberta.max_position_embeddings", MetaValue::U64(65536));
    for r in file.records() {
        let v = file.tensor(&r.name).unwrap();
        w.add_tensor_with_layout(&r.name, r.dtype, r.layout, &r.shape, v.bytes.to_vec())
            .unwrap();
    }
    let huge = dir.path().join("huge.dbrt");
    w.write_to_path(&huge).unwrap();
    let out = inspect(&huge);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "verified: {out:?}");
    assert!(
        err.contains("a session of 65536 tokens") && err.contains("cannot allocate"),
        "{err}"
    );
}
