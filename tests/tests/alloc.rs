//! Creating a session may allocate; tokenizing and classifying may not. Proven with a counting
//! global allocator that counts the allocations of the test's own thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dbrt_tests::*;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // try_with: the allocator may run while thread-locals are being torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// const-initialized thread-locals, which never allocate.
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
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    COUNT.with(|c| c.get())
}

#[test]
fn tokenize_and_classify_allocate_nothing() {
    let (_d, path) = convert(&real_model_onnx(), dbrt_convert::StorageType::F16);
    let model = open(&path);
    let mut session = dbrt::Session::new(model.clone(), Default::default()).unwrap();
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
            let logits = session
                .logits(dbrt::Sequence {
                    ids: &r.input_ids,
                    type_ids: None,
                })
                .unwrap();
            assert_eq!(argmax(logits), argmax(&r.logits_fp32));
        }
        session.tokenize(&long, Some("short")).unwrap();
        session.classify_into("", None, &mut probs).unwrap();
    });
    assert_eq!(
        n, 0,
        "{n} heap allocations while tokenizing and classifying"
    );
}
