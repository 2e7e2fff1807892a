//! A session survives a panic in the middle of a call (a bug, caught at the C boundary or by a
//! Rust caller): the next call answers, with the bits a fresh session gives.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use dbrt::{PanicPoint, Session, SessionOptions, DEFAULT_HYPOTHESIS_TEMPLATE};
use dbrt_convert::StorageType;
use dbrt_tests::*;

const PREMISE: &str = "A man plays a guitar on a quiet street.";
const HYPOTHESIS: &str = "Someone makes music.";

/// A named call whose panic the session must survive.
type Call = (&'static str, fn(&mut Session));

fn answers(s: &mut Session) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let classify = s.classify(PREMISE, Some(HYPOTHESIS)).expect("classify");
    let ids = s.tokenize(PREMISE, None).expect("tokenize").0.to_vec();
    let seq = dbrt::Sequence {
        ids: &ids,
        type_ids: None,
    };
    let logits = s.run_logits(seq).expect("logits").to_vec();
    let zero_shot = s
        .classify_zero_shot(
            PREMISE,
            &["music", "sports", "cooking"],
            DEFAULT_HYPOTHESIS_TEMPLATE,
            false,
        )
        .expect("zero-shot");
    (classify, logits, zero_shot)
}

#[test]
fn a_session_answers_correctly_after_a_panic_in_any_call() {
    // The real model: the tiny fixtures carry no tokenizer, and text calls are what is tested.
    {
        let storage = StorageType::Int8;
        let (_dir, path) = convert(&real_model_onnx(), storage);
        let model = open(&path);
        for threads in [1, 2] {
            let options = SessionOptions {
                threads,
                // The model's labels are not named: zero-shot needs one.
                entailment_label: Some(0),
                ..Default::default()
            };
            let expected = answers(&mut Session::new(Arc::clone(&model), options.clone()).unwrap());
            let mut s = Session::new(Arc::clone(&model), options).unwrap();
            let calls: [Call; 3] = [
                ("classify", |s| drop(s.classify(PREMISE, Some(HYPOTHESIS)))),
                ("zero-shot", |s| {
                    drop(s.classify_zero_shot(PREMISE, &["a", "b"], "It is {}.", true))
                }),
                ("logits", |s| {
                    let ids = [1, 5, 9, 2];
                    drop(s.run_logits(dbrt::Sequence {
                        ids: &ids,
                        type_ids: None,
                    }))
                }),
            ];
            for (name, call) in calls {
                for point in [PanicPoint::AfterTokenizing, PanicPoint::InWorker] {
                    if name == "logits" && point == PanicPoint::AfterTokenizing {
                        continue; // ids in: nothing is tokenized
                    }
                    s.inject_panic(point);
                    let caught = catch_unwind(AssertUnwindSafe(|| call(&mut s)));
                    assert!(
                        caught.is_err(),
                        "{storage:?}, {threads} threads, {name}: the injected panic at {point:?} did not happen"
                    );
                    assert_eq!(
                        answers(&mut s),
                        expected,
                        "{storage:?}, {threads} threads: after a panic at {point:?} in {name}"
                    );
                }
            }
        }
    }
}
