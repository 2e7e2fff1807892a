//! The offload's fallbacks to the CPU, each recorded (kind and message) with the CPU's
//! results, and each a typed error under `FallbackPolicy::Never`: onnxruntime's library absent,
//! artifacts of another model, a corrupt graph, no manifest, a sequence longer than the largest
//! bucket, and a device error at run time (after which the embeddings are recomputed).
//!
//! Needs `DBRT_ONNXRUNTIME_LIB` (see offload.rs).

mod offload_graphs;

use dbrt::offload::{BackendChoice, FallbackKind, FallbackPolicy};
use dbrt::{Error, Session, SessionOptions};
use offload_graphs::setup::*;
use offload_graphs::Kind;

/// A session whose backend fell back at attach time: it runs on the CPU, says why, and its
/// logits are the CPU's; with `Never`, `Session::new` fails with `want`.
fn check_attach_fallback(s: &Setup, opts: SessionOptions, kind: FallbackKind, says: &str) {
    let mut cpu = s.cpu();
    let mut never = opts.clone();
    never.offload.fallback = FallbackPolicy::Never;
    let e = Session::new(s.model.clone(), never).unwrap_err();
    let matches = match kind {
        FallbackKind::BackendUnavailable => matches!(e, Error::BackendUnavailable { .. }),
        FallbackKind::InvalidArtifacts => matches!(e, Error::InvalidArtifacts(_)),
        _ => false,
    };
    assert!(matches, "{e:?} is not {kind:?}");
    assert!(e.to_string().contains(says), "{e} should say {says:?}");
    let mut session = Session::new(s.model.clone(), opts).unwrap();
    assert_eq!(session.backend(), "cpu");
    let f = session.last_fallback().expect("the fallback is recorded");
    assert_eq!(f.kind, kind);
    assert!(f.message.contains(says), "{f} should say {says:?}");
    let ids = ids(5);
    let got = session.run_logits(seq(&ids)).unwrap().to_vec();
    assert_eq!(got, cpu.run_logits(seq(&ids)).unwrap());
    assert_eq!(session.last_backend(), Some("cpu"));
    assert_eq!(session.last_fallback().map(|f| f.kind), Some(kind));
}

#[test]
fn a_library_that_does_not_load_falls_back_to_the_cpu() {
    let Some(s) = setup(Kind::Affine, BUCKETS) else {
        return;
    };
    let bogus = s.artifacts.path().join("no-such-libonnxruntime.so");
    let mut o = options(
        "ort-cpu",
        s.artifacts.path(),
        &bogus,
        FallbackPolicy::Always,
    );
    check_attach_fallback(
        &s,
        o.clone(),
        FallbackKind::BackendUnavailable,
        "no-such-libonnxruntime",
    );
    // `auto` tries qnn, which cannot attach with this library either: the CPU, recorded.
    o.offload.backend = BackendChoice::Auto;
    let session = Session::new(s.model.clone(), o).unwrap();
    assert_eq!(session.backend(), "cpu");
    assert!(session.last_fallback().is_some());
}

/// `ort-cpu` over the setup's artifacts, falling back always: it must not attach, for `kind`.
fn ort_cpu_falls_back(s: &Setup, kind: FallbackKind, says: &str) {
    let o = options(
        "ort-cpu",
        s.artifacts.path(),
        &s.lib,
        FallbackPolicy::Always,
    );
    check_attach_fallback(s, o, kind, says);
}

#[test]
fn artifacts_of_another_model_fall_back_to_the_cpu() {
    let Some(s) = setup(Kind::Affine, BUCKETS) else {
        return;
    };
    let text = std::fs::read_to_string(s.artifacts.path().join("manifest.txt")).unwrap();
    let mut m = dbrt::offload::manifest::Manifest::parse(&text).unwrap();
    m.model.tables_crc32 ^= 1;
    offload_graphs::write_manifest(s.artifacts.path(), &m);
    ort_cpu_falls_back(&s, FallbackKind::InvalidArtifacts, "another model");
}

#[test]
fn a_corrupt_graph_falls_back_to_the_cpu() {
    let Some(s) = setup(Kind::Affine, BUCKETS) else {
        return;
    };
    let path = s.artifacts.path().join("encoder-16.onnx");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    ort_cpu_falls_back(
        &s,
        FallbackKind::InvalidArtifacts,
        "encoder-16.onnx is corrupt",
    );
}

#[test]
fn a_missing_manifest_falls_back_to_the_cpu() {
    let Some(s) = setup(Kind::Affine, BUCKETS) else {
        return;
    };
    std::fs::remove_file(s.artifacts.path().join("manifest.txt")).unwrap();
    ort_cpu_falls_back(&s, FallbackKind::InvalidArtifacts, "no manifest.txt");
}

#[test]
fn a_sequence_longer_than_the_largest_bucket_runs_on_the_cpu() {
    let Some(s) = setup(Kind::Affine, &[8, 16]) else {
        return;
    };
    let mut cpu = s.cpu();
    let mut dev = s.session("ort-cpu", FallbackPolicy::Always).unwrap();
    let long = ids(20);
    let got = dev.run_logits(seq(&long)).unwrap().to_vec();
    assert_eq!(got, cpu.run_logits(seq(&long)).unwrap());
    assert_eq!(dev.last_backend(), Some("cpu"));
    let f = dev.last_fallback().unwrap();
    assert_eq!(f.kind, FallbackKind::TooLong);
    assert!(f.message.contains("20 tokens"), "{f}");
    // The next call that fits runs on the device again, and the record is cleared.
    dev.run_logits(seq(&ids(4))).unwrap();
    assert_eq!(dev.last_backend(), Some("ort-cpu"));
    assert!(dev.last_fallback().is_none());
    let mut never = s.session("ort-cpu", FallbackPolicy::Never).unwrap();
    let e = never.run_logits(seq(&long)).unwrap_err();
    assert!(
        matches!(e, Error::InputTooLong { len: 20, max: 16 }),
        "{e:?}"
    );
}

#[test]
fn a_device_error_falls_back_or_fails_as_the_policy_says() {
    let Some(s) = setup(Kind::FailsAtRun, BUCKETS) else {
        return;
    };
    let mut cpu = s.cpu();
    let ids = ids(6);
    let mut dev = s.session("ort-cpu", FallbackPolicy::Always).unwrap();
    assert_eq!(dev.backend(), "ort-cpu");
    // The embeddings are recomputed after the failed run: the CPU's logits, bit for bit.
    let got = dev.run_logits(seq(&ids)).unwrap().to_vec();
    assert_eq!(got, cpu.run_logits(seq(&ids)).unwrap());
    assert_eq!(dev.last_backend(), Some("cpu"));
    let f = dev.last_fallback().unwrap();
    assert_eq!(f.kind, FallbackKind::DeviceError);
    assert!(!f.message.is_empty());
    for policy in [FallbackPolicy::NotOnDeviceError, FallbackPolicy::Never] {
        let mut strict = s.session("ort-cpu", policy).unwrap();
        let e = strict.run_logits(seq(&ids)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Device {
                    backend: "ort-cpu",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn a_graph_of_another_shape_than_its_bucket_falls_back_to_the_cpu() {
    let Some(s) = setup(Kind::Affine, BUCKETS) else {
        return;
    };
    // The manifest's bucket 8 names a graph made for 16 tokens (length and checksum right).
    let h = s.model.config().hidden_size;
    let bytes = offload_graphs::graph(Kind::Affine, 16, h);
    std::fs::write(s.artifacts.path().join("encoder-8.onnx"), &bytes).unwrap();
    let text = std::fs::read_to_string(s.artifacts.path().join("manifest.txt")).unwrap();
    let mut m = dbrt::offload::manifest::Manifest::parse(&text).unwrap();
    m.graphs[0].bytes = bytes.len() as u64;
    m.graphs[0].crc32 = crc32fast::hash(&bytes);
    offload_graphs::write_manifest(s.artifacts.path(), &m);
    let o = options(
        "ort-cpu",
        s.artifacts.path(),
        &s.lib,
        FallbackPolicy::Always,
    );
    let says = format!("bucket 8: 'hidden' is [1, 16, {h}]");
    check_attach_fallback(&s, o, FallbackKind::InvalidArtifacts, &says);
}
