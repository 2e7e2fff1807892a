//! The accelerator stage through onnxruntime (`ort-cpu`, and `qnn` on Qualcomm's HTP
//! emulator) with stand-in encoder graphs: bucket choice and padding, rows copied back, the
//! head over the device's hidden states, every fallback and its record, `Never`'s errors,
//! backend names, and sessions sharing one device model across threads.
//!
//! Needs onnxruntime's library in `DBRT_ONNXRUNTIME_LIB` (and the QNN provider's in
//! `DBRT_QNN_EP_LIB`); without it each test says so and passes, unless
//! `DBRT_REQUIRE_ONNXRUNTIME=1`.

mod offload_graphs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dbrt::offload::{BackendChoice, FallbackKind, FallbackPolicy, OffloadOptions};
use dbrt::{Error, Sequence, Session, SessionOptions};
use dbrt_convert::StorageType;
use dbrt_tests::*;
use offload_graphs::{expected, write_artifacts, Kind};

const BUCKETS: &[usize] = &[8, 16, 32];

struct Setup {
    _model_dir: tempfile::TempDir,
    artifacts: tempfile::TempDir,
    model: Arc<dbrt::Model>,
    lib: PathBuf,
}

/// The tiny model and stand-in artifacts of `kind` for `buckets`; `None` without onnxruntime.
fn setup(kind: Kind, buckets: &[usize]) -> Option<Setup> {
    let lib = offload_graphs::onnxruntime()?;
    let (model_dir, path) = convert(&fixtures().join("tiny/v3-style"), StorageType::F32);
    let model = open(&path);
    let artifacts = tempfile::tempdir().unwrap();
    write_artifacts(artifacts.path(), &model, kind, buckets);
    Some(Setup {
        _model_dir: model_dir,
        artifacts,
        model,
        lib,
    })
}

fn options(
    backend: &str,
    artifacts: &Path,
    lib: &Path,
    fallback: FallbackPolicy,
) -> SessionOptions {
    SessionOptions {
        offload: OffloadOptions {
            backend: backend.parse().unwrap(),
            artifacts: Some(artifacts.to_path_buf()),
            fallback,
            onnxruntime_library: Some(lib.to_path_buf()),
            qnn_library: offload_graphs_qnn_quiet(),
        },
        ..Default::default()
    }
}

/// The QNN library if set (without the skip message: only the qnn tests need it).
fn offload_graphs_qnn_quiet() -> Option<PathBuf> {
    std::env::var_os("DBRT_QNN_EP_LIB").map(PathBuf::from)
}

impl Setup {
    fn session(&self, backend: &str, fallback: FallbackPolicy) -> dbrt::Result<Session> {
        let o = options(backend, self.artifacts.path(), &self.lib, fallback);
        Session::new(self.model.clone(), o)
    }

    fn cpu(&self) -> Session {
        Session::new(self.model.clone(), SessionOptions::default()).unwrap()
    }
}

fn ids(n: usize) -> Vec<u32> {
    (0..n as u32).map(|i| 1 + (i * 37) % 900).collect()
}

fn seq(ids: &[u32]) -> Sequence<'_> {
    Sequence {
        ids,
        type_ids: None,
    }
}

/// The embeddings (the encoder's input) of `ids`, from the CPU session.
fn embeddings(cpu: &mut Session, ids: &[u32]) -> Vec<f32> {
    let mut pass = cpu.forward_pass(seq(ids)).unwrap();
    let (hidden, _, _) = pass.cpu_encoder();
    hidden.to_vec()
}

/// Logits of the CPU head over the embeddings of `ids` transformed as bucket `bucket`'s
/// stand-in graph transforms them.
fn head_of_stand_in(cpu: &mut Session, ids: &[u32], bucket: usize) -> Vec<f32> {
    let h = cpu.model().config().hidden_size;
    let mut logits = vec![0f32; cpu.model().config().num_labels];
    let mut pass = cpu.forward_pass(seq(ids)).unwrap();
    let (hidden, _, _) = pass.cpu_encoder();
    for (i, x) in hidden.iter_mut().enumerate() {
        *x = expected(*x, i % h, h, bucket, ids.len());
    }
    pass.head(&mut logits).unwrap();
    logits
}

#[test]
fn ort_cpu_pads_into_the_shortest_bucket_and_copies_the_rows_back() {
    let Some(s) = setup(Kind::Affine, BUCKETS) else {
        return;
    };
    let mut cpu = s.cpu();
    let mut dev = s.session("ort-cpu", FallbackPolicy::Never).unwrap();
    assert_eq!(dev.backend(), "ort-cpu");
    assert_eq!(dev.last_backend(), None);
    let h = s.model.config().hidden_size;
    for (len, bucket) in [
        (1, 8),
        (7, 8),
        (8, 8),
        (9, 16),
        (16, 16),
        (17, 32),
        (32, 32),
    ] {
        let ids = ids(len);
        let emb = embeddings(&mut cpu, &ids);
        let got = dev.run_hidden(seq(&ids)).unwrap().to_vec();
        assert_eq!(got.len(), len * h);
        let want: Vec<f32> = (emb.iter().enumerate())
            .map(|(i, &x)| expected(x, i % h, h, bucket, len))
            .collect();
        let d = max_abs_diff(&got, &want);
        assert!(d < 1e-5, "{len} tokens in bucket {bucket}: off by {d}");
        assert_eq!(dev.last_backend(), Some("ort-cpu"));
        assert!(dev.last_fallback().is_none());
    }
}

#[test]
fn logits_are_the_head_of_the_device_hidden_states() {
    let Some(s) = setup(Kind::Affine, BUCKETS) else {
        return;
    };
    let mut cpu = s.cpu();
    let mut dev = s.session("ort-cpu", FallbackPolicy::Never).unwrap();
    for (len, bucket) in [(3, 8), (12, 16), (30, 32)] {
        let ids = ids(len);
        let want = head_of_stand_in(&mut cpu, &ids, bucket);
        let got = dev.run_logits(seq(&ids)).unwrap().to_vec();
        let d = max_abs_diff(&got, &want);
        assert!(d < 1e-4, "{len} tokens: logits off by {d}");
        // And they are not the CPU encoder's (the device really ran).
        let plain = cpu.run_logits(seq(&ids)).unwrap().to_vec();
        assert!(max_abs_diff(&got, &plain) > 1e-3);
    }
}

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

#[test]
fn artifacts_of_another_model_fall_back_to_the_cpu() {
    let Some(s) = setup(Kind::Affine, BUCKETS) else {
        return;
    };
    let text = std::fs::read_to_string(s.artifacts.path().join("manifest.txt")).unwrap();
    let mut m = dbrt::offload::manifest::Manifest::parse(&text).unwrap();
    m.model.tables_crc32 ^= 1;
    offload_graphs::write_manifest(s.artifacts.path(), &m);
    let o = options(
        "ort-cpu",
        s.artifacts.path(),
        &s.lib,
        FallbackPolicy::Always,
    );
    check_attach_fallback(&s, o, FallbackKind::InvalidArtifacts, "another model");
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
    let o = options(
        "ort-cpu",
        s.artifacts.path(),
        &s.lib,
        FallbackPolicy::Always,
    );
    check_attach_fallback(
        &s,
        o,
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
    let o = options(
        "ort-cpu",
        s.artifacts.path(),
        &s.lib,
        FallbackPolicy::Always,
    );
    check_attach_fallback(&s, o, FallbackKind::InvalidArtifacts, "no manifest.txt");
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
fn backend_names_and_availability() {
    let e = "npu".parse::<BackendChoice>().unwrap_err();
    assert!(
        matches!(e, Error::UnknownBackend(ref n) if n == "npu"),
        "{e:?}"
    );
    let none = OffloadOptions::default();
    assert!(dbrt::offload::backend_available("npu", &none)
        .unwrap_err()
        .contains("npu"));
    assert!(dbrt::offload::backend_available("cpu", &none).is_ok());
    assert!(dbrt::offload::backend_available("auto", &none).is_ok());
    let Some(lib) = offload_graphs::onnxruntime() else {
        return;
    };
    let with = |p: &Path| OffloadOptions {
        onnxruntime_library: Some(p.to_path_buf()),
        ..Default::default()
    };
    assert_eq!(
        dbrt::offload::backend_available("ort-cpu", &with(&lib)),
        Ok(())
    );
    let bogus = Path::new("/nonexistent/libonnxruntime.so");
    let why = dbrt::offload::backend_available("ort-cpu", &with(bogus)).unwrap_err();
    assert!(why.contains("/nonexistent/libonnxruntime.so"), "{why}");
    // qnn without its provider library says so.
    let mut no_qnn = with(&lib);
    no_qnn.qnn_library = Some("/nonexistent/libonnxruntime_providers_qnn.so".into());
    let why = dbrt::offload::backend_available("qnn", &no_qnn).unwrap_err();
    assert!(why.contains("providers_qnn"), "{why}");
}

#[test]
fn two_sessions_share_one_device_model_across_threads() {
    let Some(s) = setup(Kind::Affine, BUCKETS) else {
        return;
    };
    let a = s.session("ort-cpu", FallbackPolicy::Never).unwrap();
    let b = s.session("ort-cpu", FallbackPolicy::Never).unwrap();
    assert!(a.shares_device_with(&b));
    let mut cpu = s.cpu();
    let lens = [3usize, 11, 25, 8, 16, 1];
    let want: Vec<Vec<f32>> = (lens.iter())
        .map(|&n| {
            head_of_stand_in(
                &mut cpu,
                &ids(n),
                BUCKETS.iter().copied().find(|&b| b >= n).unwrap(),
            )
        })
        .collect();
    let run = |mut session: Session| {
        let want = &want;
        move || {
            for _ in 0..20 {
                for (&n, w) in lens.iter().zip(want) {
                    let got = session.run_logits(seq(&ids(n))).unwrap();
                    assert!(max_abs_diff(got, w) < 1e-4);
                    assert_eq!(session.last_backend(), Some("ort-cpu"));
                }
            }
        }
    };
    std::thread::scope(|scope| {
        scope.spawn(run(a));
        scope.spawn(run(b));
    });
}

#[test]
fn qnn_runs_a_stand_in_graph_on_the_htp_with_cpu_fallback_disabled() {
    let Some(s) = setup(Kind::Simple, &[8, 16]) else {
        return;
    };
    if offload_graphs::qnn().is_none() {
        return;
    }
    let mut cpu = s.cpu();
    let mut dev = s.session("qnn", FallbackPolicy::Never).unwrap();
    assert_eq!(dev.backend(), "qnn");
    let h = s.model.config().hidden_size;
    let scale = offload_graphs::scale(h);
    for (len, bucket) in [(5, 8), (13, 16)] {
        let ids = ids(len);
        let emb = embeddings(&mut cpu, &ids);
        let got = dev.run_hidden(seq(&ids)).unwrap().to_vec();
        let want: Vec<f32> = (emb.iter().enumerate())
            .map(|(i, &x)| x * scale[i % h] + bucket as f32)
            .collect();
        // fp16 on the HTP.
        let d = max_abs_diff(&got, &want);
        assert!(d < 0.05, "{len} tokens: off by {d}");
        assert_eq!(dev.last_backend(), Some("qnn"));
    }
    // `auto` picks qnn.
    let auto = s.session("auto", FallbackPolicy::Always).unwrap();
    assert_eq!(auto.backend(), "qnn");
}

#[test]
fn qnn_refuses_a_graph_the_htp_cannot_run_whole() {
    let Some(s) = setup(Kind::StandaloneErf, &[8]) else {
        return;
    };
    if offload_graphs::qnn().is_none() {
        return;
    }
    // With the CPU provider's fallback disabled a node the HTP refuses fails the attach.
    let e = s.session("qnn", FallbackPolicy::Never).unwrap_err();
    assert!(matches!(e, Error::InvalidArtifacts(_)), "{e:?}");
    let session = s.session("qnn", FallbackPolicy::Always).unwrap();
    assert_eq!(session.backend(), "cpu");
    assert_eq!(
        session.last_fallback().map(|f| f.kind),
        Some(FallbackKind::InvalidArtifacts)
    );
}
