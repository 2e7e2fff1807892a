//! The `ascend` backend when AscendCL fails: every call dbrt makes, failed in turn by the
//! stand-in (tests/ascend), gives a typed error (fallback `never`), or the CPU with the reason
//! recorded (fallback `always`), and leaves nothing allocated; damaged or mismatched artifacts
//! are refused by name. Needs the stand-in and onnxruntime as tests/tests/ascend.rs says.

mod ascend_standin;

use std::path::Path;
use std::sync::Arc;

use ascend_standin::{compiled, serial, standin, Standin, Stats};
use dbrt::offload::manifest::Precision;
use dbrt::offload::{BackendChoice, FallbackKind, FallbackPolicy};
use dbrt::{Error, Model, Sequence, Session, SessionOptions};
use dbrt_convert::StorageType;
use dbrt_tests::*;

/// AscendCL's codes: a parameter refused, a model that does not parse, memory exhausted, an
/// execution failure on the device.
const INVALID_PARAM: i32 = 100000;
const PARSE_MODEL: i32 = 500002;
const OUT_OF_MEMORY: i32 = 207001;
const EXECUTE_FAILED: i32 = 507011;
/// For the calls that return a pointer (NULL when failed): any code.
const INTERNAL: i32 = 500000;

fn options(s: &Standin, artifacts: &Path, fallback: FallbackPolicy) -> SessionOptions {
    ascend_standin::options(s, Some(artifacts), fallback)
}

/// The live objects of the stand-in (what must return to where it was).
fn live(st: &Stats) -> [u64; 9] {
    [
        st.allocations,
        st.contexts,
        st.streams,
        st.models,
        st.descs,
        st.datasets,
        st.data_buffers,
        st.devices,
        st.ort_sessions,
    ]
}

struct Fixture {
    _model_dir: tempfile::TempDir,
    path: std::path::PathBuf,
    model: Arc<Model>,
    artifacts: tempfile::TempDir,
}

fn fixture(gears: &[usize]) -> Fixture {
    let (dir, path) = convert(&fixtures().join("tiny").join("v3-style"), StorageType::F32);
    let artifacts = compiled(&path, gears);
    Fixture {
        model: open(&path),
        path,
        _model_dir: dir,
        artifacts,
    }
}

#[test]
fn every_failure_while_attaching_is_typed_or_falls_back_and_leaks_nothing() {
    let Some(s) = standin("ascend attach failures") else {
        return;
    };
    let _one = serial();
    let f = fixture(&[8, 16]);
    // (call, nth call from now, code, the fallback kind it must count as)
    use FallbackKind::{BackendUnavailable as Unavailable, InvalidArtifacts as Invalid};
    let mut cases = vec![
        ("aclrtSetDevice", 1, INVALID_PARAM, Unavailable),
        ("aclrtCreateContext", 1, INVALID_PARAM, Unavailable),
        ("aclrtCreateContext", 2, INVALID_PARAM, Unavailable),
        ("aclmdlQuerySizeFromMem", 1, PARSE_MODEL, Invalid),
        ("aclrtCreateStream", 1, INVALID_PARAM, Unavailable),
        ("aclrtGetRunMode", 1, INVALID_PARAM, Unavailable),
        ("aclmdlLoadFromMemWithMem", 1, PARSE_MODEL, Invalid),
        ("aclmdlLoadFromMemWithMem", 1, OUT_OF_MEMORY, Unavailable),
        ("aclmdlCreateDesc", 1, INTERNAL, Unavailable),
        ("aclmdlGetDesc", 1, INVALID_PARAM, Invalid),
        ("aclmdlGetInputIndexByName", 1, INVALID_PARAM, Invalid),
        ("aclmdlGetInputDynamicGearCount", 1, INVALID_PARAM, Invalid),
        ("aclmdlGetInputDynamicDims", 1, INVALID_PARAM, Invalid),
        ("aclmdlCreateDataset", 1, INTERNAL, Unavailable),
        ("aclmdlCreateDataset", 2, INTERNAL, Unavailable),
    ];
    // Weight, work, and the four buffers; each buffer's data buffer and its adding.
    for n in 1..=6 {
        cases.push(("aclrtMalloc", n, OUT_OF_MEMORY, Unavailable));
    }
    for n in 1..=4 {
        cases.push(("aclCreateDataBuffer", n, INTERNAL, Unavailable));
        cases.push(("aclmdlAddDatasetBuffer", n, INVALID_PARAM, Unavailable));
    }
    let baseline = live(&s.stats());
    for (call, nth, code, kind) in cases {
        for policy in [FallbackPolicy::Never, FallbackPolicy::Always] {
            s.reset();
            s.fail(call, nth, code);
            let what = format!("{call} #{nth} ({code}), {policy:?}");
            match Session::new(f.model.clone(), options(s, f.artifacts.path(), policy)) {
                Err(e) => {
                    assert_eq!(policy, FallbackPolicy::Never, "{what}: {e}");
                    match (kind, &e) {
                        (Unavailable, Error::BackendUnavailable { backend, reason }) => {
                            assert_eq!(*backend, "ascend");
                            assert!(reason.contains(call), "{what}: {reason}");
                        }
                        (Invalid, Error::InvalidArtifacts(m)) => {
                            assert!(m.contains("offline model"), "{what}: {m}")
                        }
                        _ => panic!("{what}: {e:?}, expected {kind:?}"),
                    }
                }
                Ok(mut session) => {
                    assert_eq!(policy, FallbackPolicy::Always, "{what}: attached");
                    assert_eq!(session.backend(), "cpu", "{what}");
                    let ids = [1u32, 5, 9, 2];
                    let seq = Sequence {
                        ids: &ids,
                        type_ids: None,
                    };
                    session.run_logits(seq).unwrap();
                    let fb = session.last_fallback().expect("recorded");
                    assert_eq!(fb.kind, kind, "{what}: {}", fb.message);
                    assert!(fb.message.contains("ascend"), "{what}: {}", fb.message);
                }
            }
            assert!(s.calls(call) >= nth as u64, "{what}: the call was reached");
            s.assert_clean();
            assert_eq!(live(&s.stats()), baseline, "{what}: left objects behind");
        }
    }
}

#[test]
fn every_failure_during_a_run_follows_the_policy_and_the_session_recovers() {
    let Some(s) = standin("ascend run failures") else {
        return;
    };
    let _one = serial();
    let f = fixture(&[8, 16]);
    let mut cpu = Session::new(f.model.clone(), Default::default()).unwrap();
    // 5 tokens in gear 8: the padding is zeroed (aclrtMemset) too.
    let ids = [1u32, 7, 11, 13, 2];
    let seq = Sequence {
        ids: &ids,
        type_ids: None,
    };
    let want = cpu.run_logits(seq).unwrap().to_vec();
    let cases = [
        ("aclrtMemcpy", 1),
        ("aclrtMemset", 1),
        ("aclrtMemcpy", 2),
        ("aclmdlSetInputDynamicDims", 1),
        ("aclmdlExecute", 1),
        ("aclrtMemcpy", 3),
        ("aclrtSetCurrentContext", 1),
    ];
    for policy in [
        FallbackPolicy::Always,
        FallbackPolicy::NotOnDeviceError,
        FallbackPolicy::Never,
    ] {
        let mut dev =
            Session::new(f.model.clone(), options(s, f.artifacts.path(), policy)).unwrap();
        assert_eq!(dev.backend(), "ascend");
        for (call, nth) in cases {
            let what = format!("{call} #{nth}, {policy:?}");
            s.reset();
            s.fail(call, nth, EXECUTE_FAILED);
            match dev.run_logits(seq) {
                Ok(got) => {
                    assert_eq!(policy, FallbackPolicy::Always, "{what}");
                    assert_eq!(got, &want[..], "{what}: the CPU's answer");
                    let fb = dev.last_fallback().expect("recorded");
                    assert_eq!(fb.kind, FallbackKind::DeviceError, "{what}");
                    assert!(
                        fb.message.contains(call) && fb.message.contains("507011"),
                        "{what}: {}",
                        fb.message
                    );
                    assert_eq!(dev.last_backend(), Some("cpu"));
                }
                Err(Error::Device { backend, message }) => {
                    assert_ne!(policy, FallbackPolicy::Always, "{what}");
                    assert_eq!(backend, "ascend");
                    assert!(message.contains(call), "{what}: {message}");
                }
                Err(e) => panic!("{what}: {e:?}"),
            }
            // The next call runs on the device again.
            let got = dev.run_logits(seq).unwrap().to_vec();
            assert_eq!(dev.last_backend(), Some("ascend"), "{what}: recovered");
            assert!(max_abs_diff(&got, &want) <= 1e-4, "{what}");
            s.assert_clean();
        }
    }
}

#[test]
fn artifacts_that_are_not_a_compiled_ascend_export_are_refused_by_name() {
    let Some(s) = standin("ascend artifacts") else {
        return;
    };
    let _one = serial();
    let f = fixture(&[8, 16, 32]);
    let dir = f.artifacts.path();
    let refuse = |dir: &Path, want: &str| {
        let e = Session::new(f.model.clone(), options(s, dir, FallbackPolicy::Never)).unwrap_err();
        assert!(matches!(e, Error::InvalidArtifacts(_)), "{e:?}");
        assert!(e.to_string().contains(want), "{e} should say {want:?}");
    };
    let copy = |edit: &dyn Fn(&Path)| {
        let t = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, t.path().join(p.file_name().unwrap())).unwrap();
        }
        edit(t.path());
        t
    };
    let manifest = |d: &Path| d.join("manifest.txt");
    // Not compiled: no `om` line.
    let t = copy(&|d| {
        let text = std::fs::read_to_string(manifest(d)).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("om "))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(manifest(d), text).unwrap();
    });
    refuse(t.path(), "not compiled yet");
    // A damaged offline model.
    let t = copy(&|d| {
        let om = d.join("encoder.om");
        let mut b = std::fs::read(&om).unwrap();
        let last = b.len() - 1;
        b[last] ^= 1;
        std::fs::write(om, b).unwrap();
    });
    refuse(t.path(), "corrupt");
    // Gears in the manifest that the offline model was not compiled for.
    let t = copy(&|d| {
        let text = std::fs::read_to_string(manifest(d)).unwrap();
        std::fs::write(manifest(d), text.replace("gears 8 16 32", "gears 8 12 32")).unwrap();
    });
    refuse(t.path(), "has no gear");
    // A static export (graphs per bucket) is not an Ascend export.
    let t = tempfile::tempdir().unwrap();
    let opts = dbrt_convert::export::ExportOptions {
        buckets: vec![8],
        precision: Precision::F32,
    };
    dbrt_convert::export::export_onnx(&f.path, t.path(), &opts).unwrap();
    refuse(t.path(), "not an Ascend export");
    // And the onnxruntime backends refuse an Ascend export.
    let mut o = options(s, dir, FallbackPolicy::Never);
    o.offload.backend = BackendChoice::Named("ort-cpu");
    let e = Session::new(f.model.clone(), o).unwrap_err();
    assert!(e.to_string().contains("Ascend export"), "{e}");
    s.assert_clean();
}

#[test]
fn a_library_that_is_not_there_is_backend_unavailable_with_the_reason() {
    let Some(s) = standin("ascend missing library") else {
        return;
    };
    let _one = serial();
    let f = fixture(&[8, 16]);
    let mut o = options(s, f.artifacts.path(), FallbackPolicy::Never);
    o.offload.ascendcl_library = Some("/nonexistent/libascendcl.so".into());
    let e = Session::new(f.model.clone(), o.clone()).unwrap_err();
    let Error::BackendUnavailable { backend, reason } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(*backend, "ascend");
    // Not loadable; or, once the stand-in is this process's AscendCL, not a second library.
    assert!(reason.contains("/nonexistent/libascendcl.so"), "{reason}");
    assert!(dbrt::offload::backend_available("ascend", &o.offload).is_err());
    o.offload.fallback = FallbackPolicy::Always;
    let mut session = Session::new(f.model.clone(), o).unwrap();
    assert_eq!(session.backend(), "cpu");
    let ids = [1u32, 4, 2];
    session
        .run_logits(Sequence {
            ids: &ids,
            type_ids: None,
        })
        .unwrap();
    let fb = session.last_fallback().unwrap();
    assert_eq!(fb.kind, FallbackKind::BackendUnavailable);
    assert!(
        fb.message.contains("/nonexistent/libascendcl.so"),
        "{}",
        fb.message
    );
}
