//! Creating a session may allocate; tokenizing and classifying may not, on one thread or many.
//! Proven with a counting global allocator that counts every thread's allocations (this file
//! holds one test, so nothing else runs while it counts). An offloaded session (onnxruntime's
//! CPU provider over stand-in graphs) is counted too: onnxruntime's own C++ allocations are
//! not ours, but nothing on dbrt's side may allocate per run, falling back included.

mod ascend_standin;
mod offload_graphs;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dbrt_tests::*;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn note() {
    if COUNTING.load(Ordering::SeqCst) {
        COUNT.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// atomics, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    COUNT.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    COUNT.load(Ordering::SeqCst)
}

#[test]
fn tokenize_and_classify_allocate_nothing() {
    for (storage, threads) in [
        (dbrt_convert::StorageType::F16, 1),
        (dbrt_convert::StorageType::Int8, 2),
    ] {
        check(storage, threads);
    }
    check_offloaded();
    check_ascend();
}

/// A session on the `ascend` backend (the stand-in AscendCL): see [`offloaded_runs`]. The
/// stand-in's and onnxruntime's own allocations are C's, not counted here (the stand-in counts
/// device allocations, checked in tests/tests/ascend.rs).
fn check_ascend() {
    use dbrt::offload::FallbackPolicy;
    let Some(s) = ascend_standin::standin("alloc ascend") else {
        return;
    };
    let _one = ascend_standin::serial();
    let (_d, path) = convert(
        &fixtures().join("tiny/v3-style"),
        dbrt_convert::StorageType::F32,
    );
    let artifacts = ascend_standin::compiled(&path, &[8, 16]);
    let opts = ascend_standin::options(s, Some(artifacts.path()), FallbackPolicy::Always);
    offloaded_runs(dbrt::Session::new(open(&path), opts).unwrap(), "ascend");
    s.assert_clean();
}

fn check_offloaded() {
    use dbrt::offload::{FallbackPolicy, OffloadOptions};
    let Some(lib) = offload_graphs::onnxruntime() else {
        return;
    };
    let (_d, path) = convert(
        &fixtures().join("tiny/v3-style"),
        dbrt_convert::StorageType::F32,
    );
    let model = open(&path);
    let artifacts = tempfile::tempdir().unwrap();
    let kind = offload_graphs::Kind::Affine;
    offload_graphs::write_artifacts(artifacts.path(), &model, kind, &[8, 16]);
    let opts = dbrt::SessionOptions {
        offload: OffloadOptions {
            backend: "ort-cpu".parse().unwrap(),
            artifacts: Some(artifacts.path().to_path_buf()),
            fallback: FallbackPolicy::Always,
            onnxruntime_library: Some(lib),
            qnn_library: None,
            ..Default::default()
        },
        ..Default::default()
    };
    offloaded_runs(dbrt::Session::new(model, opts).unwrap(), "ort-cpu");
}

/// A session offloaded to `backend` with buckets 8 and 16: runs in every bucket, padded or
/// not, and a too-long input's recorded fallback to the CPU allocate nothing.
fn offloaded_runs(mut session: dbrt::Session, backend: &str) {
    use dbrt::offload::FallbackKind;
    assert_eq!(session.backend(), backend);
    let ids: Vec<u32> = (1..=40).collect();
    let run = |session: &mut dbrt::Session, n: usize| {
        let seq = dbrt::Sequence {
            ids: &ids[..n],
            type_ids: None,
        };
        session.run_logits(seq).unwrap();
    };
    // Once before counting: a backend's first run may set things up.
    run(&mut session, 5);
    let n = allocations_during(|| {
        for len in [1, 5, 8, 9, 16] {
            run(&mut session, len);
            assert_eq!(session.last_backend(), Some(backend));
        }
        run(&mut session, 40);
        assert_eq!(session.last_backend(), Some("cpu"));
        let f = session.last_fallback().map(|f| f.kind);
        assert_eq!(f, Some(FallbackKind::TooLong));
    });
    assert_eq!(n, 0, "{n} heap allocations in runs on {backend}");
}

fn check(storage: dbrt_convert::StorageType, threads: usize) {
    let (_d, path) = convert(&real_model_onnx(), storage);
    let model = open(&path);
    let opts = dbrt::SessionOptions {
        threads,
        ..Default::default()
    };
    let mut session = dbrt::Session::new(model.clone(), opts).unwrap();
    let rows = real_rows("rte_dev.goldens.jsonl");
    let long = "word ".repeat(20_000);
    let mut probs = vec![0f32; model.config().num_labels];
    // The counter itself must see allocations, or the test proves nothing.
    assert!(allocations_during(|| drop(vec![0u8; 16])) > 0);
    let n = allocations_during(|| {
        for r in rows.iter().take(5) {
            let (ids, _) = session.tokenize(&r.premise, Some(&r.hypothesis)).unwrap();
            assert_eq!(ids, &r.input_ids[..]);
            session
                .classify_into(&r.premise, Some(&r.hypothesis), &mut probs)
                .unwrap();
            session
                .run_logits(dbrt::Sequence {
                    ids: &r.input_ids,
                    type_ids: None,
                })
                .unwrap();
        }
        session.tokenize(&long, Some("short")).unwrap();
        session.classify_into("", None, &mut probs).unwrap();
    });
    assert_eq!(
        n, 0,
        "{n} heap allocations while tokenizing and classifying ({storage:?}, {threads} threads)"
    );
}
