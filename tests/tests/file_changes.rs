//! A model file changed while a model is open: the lock a mapped model holds, and the mode that
//! reads the file into memory so that nothing done to the file reaches the model.

use std::fs::{File, TryLockError};
use std::sync::Arc;

use dbrt::{Error, Model, Sequence, Session};
use dbrt_convert::StorageType;
use dbrt_tests::*;

const IDS: [u32; 6] = [1, 17, 230, 4, 999, 2];

fn logits(model: &Arc<Model>) -> Vec<f32> {
    let mut s = Session::new(model.clone(), Default::default()).unwrap();
    s.run_logits(Sequence {
        ids: &IDS,
        type_ids: None,
    })
    .unwrap()
    .to_vec()
}

#[test]
fn a_model_read_into_memory_ignores_what_happens_to_its_file() {
    let (_d, path) = convert(&fixtures().join("tiny/v3-style"), StorageType::F32);
    let (_e, other) = convert(&fixtures().join("tiny/separate-pos-proj"), StorageType::F32);
    let model = Arc::new(Model::open_read(&path).unwrap());
    let before = logits(&model);
    // Another model copied over it in place (what `cp` does), then the file truncated: a map
    // would now read other weights, or fault.
    std::fs::write(&path, std::fs::read(&other).unwrap()).unwrap();
    assert_ne!(logits(&Arc::new(Model::open(&path).unwrap())), before);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert_eq!(logits(&model), before);
    assert!(matches!(Model::open_read(&path), Err(Error::BadMagic)));
}

#[test]
fn an_open_model_holds_a_shared_lock_on_its_file() {
    let (_d, path) = convert(&fixtures().join("tiny/v3-style"), StorageType::F32);
    let model = Model::open(&path).unwrap();
    let writer = File::options().write(true).open(&path).unwrap();
    assert!(
        matches!(writer.try_lock(), Err(TryLockError::WouldBlock)),
        "a writer could lock a model in use"
    );
    // Readers share it.
    let second = Model::open(&path).unwrap();
    drop((model, second));
    writer.try_lock().expect("the lock outlived the models");
    // And a file locked by a writer is not opened half-written.
    let e = Model::open(&path).unwrap_err();
    assert!(
        matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::WouldBlock),
        "{e}"
    );
    assert!(Model::open_read(&path).is_err());
    writer.unlock().unwrap();
    Model::open(&path).unwrap();
}
