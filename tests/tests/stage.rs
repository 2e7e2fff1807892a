//! The encoder stage's contract (`dbrt::model::stage::EncoderStage`): embeddings → stage →
//! head, run by hand through the trait, gives the same bits as `Session::run_logits`; padding
//! after the tokens changes nothing of theirs; malformed inputs are typed errors.

use dbrt::model::stage::{EncoderStage, Rows};
use dbrt::{Error, Sequence, Session, SessionOptions};
use dbrt_convert::{ConvertOptions, StorageType};
use dbrt_tests::*;

/// Delegates to another stage, then (with `nudge`) adds 1 to one value of the first row
/// (enough to change an int8 code too): the comparison of bits must see a stage whose output differs, or it proves nothing.
struct Nudged<'a> {
    inner: &'a mut dyn EncoderStage,
    nudge: bool,
}

impl EncoderStage for Nudged<'_> {
    fn name(&self) -> &'static str {
        "nudged"
    }

    fn max_sequence_length(&self) -> usize {
        self.inner.max_sequence_length()
    }

    fn run(&mut self, hidden: &mut [f32], mask: &[u32], rows: Rows) -> dbrt::Result<()> {
        self.inner.run(hidden, mask, rows)?;
        if self.nudge {
            hidden[0] += 1.0;
        }
        Ok(())
    }
}

/// Embeddings → the session's CPU stage (wrapped) → head, by hand.
fn by_hand(session: &mut Session, seq: Sequence<'_>, rows: Rows, nudge: bool) -> Vec<u32> {
    let mut logits = vec![0f32; session.model().config().num_labels];
    let mut pass = session.forward_pass(seq).unwrap();
    let (hidden, mask, mut cpu) = pass.cpu_encoder();
    assert_eq!(cpu.name(), "cpu");
    assert_eq!(mask.len(), seq.ids.len());
    assert!(mask.iter().all(|&m| m == 1));
    let mut stage = Nudged {
        inner: &mut cpu,
        nudge,
    };
    stage.run(hidden, mask, rows).unwrap();
    pass.head(&mut logits).unwrap();
    bits(&logits)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn converted(name: &str, storage: StorageType) -> (tempfile::TempDir, std::path::PathBuf) {
    let opts = ConvertOptions {
        storage,
        ..Default::default()
    };
    convert_with(&fixtures().join("tiny").join(name), &opts)
}

#[test]
fn embeddings_stage_head_by_hand_equal_session_logits() {
    for name in ["v3-style", "separate-pos-proj", "v2-absolute-pos"] {
        // f32 runs the f32 attention, int8 the int8 one.
        for storage in [StorageType::F32, StorageType::Int8] {
            let (_dir, path) = converted(name, storage);
            let model = open(&path);
            let mut session = Session::new(model.clone(), SessionOptions::default()).unwrap();
            let has_types = model.config().type_vocab_size > 0;
            let goldens = tiny_goldens(name);
            for (i, case) in goldens.cases.iter().enumerate() {
                let seq = Sequence {
                    ids: &case.input_ids,
                    type_ids: has_types.then_some(&case.token_type_ids[..]),
                };
                let want = bits(session.run_logits(seq).unwrap());
                let at = format!("{name} {storage:?} case {i}");
                for rows in [Rows::All, Rows::First] {
                    assert_eq!(
                        by_hand(&mut session, seq, rows, false),
                        want,
                        "{at} {rows:?}"
                    );
                    let nudged = by_hand(&mut session, seq, rows, true);
                    assert_ne!(nudged, want, "{at} {rows:?}: a changed stage went unseen");
                }
            }
        }
    }
}

#[test]
fn the_cpu_stage_runs_the_tokens_of_a_right_padded_input_and_refuses_other_masks() {
    let (_dir, path) = converted("v3-style", StorageType::F32);
    let model = open(&path);
    let h = model.config().hidden_size;
    let mut session = Session::new(model.clone(), SessionOptions::default()).unwrap();
    let goldens = tiny_goldens("v3-style");
    let case = (goldens.cases.iter())
        .max_by_key(|c| c.input_ids.len())
        .unwrap();
    let seq = Sequence {
        ids: &case.input_ids,
        type_ids: Some(&case.token_type_ids[..]),
    };
    let t = seq.ids.len();
    let mut pass = session.forward_pass(seq).unwrap();
    let (hidden, _, mut cpu) = pass.cpu_encoder();
    let embedded = hidden.to_vec();
    // Three padded positions holding garbage: the tokens' rows are the same bits.
    let pad = 3;
    let mut padded = embedded.clone();
    padded.extend((0..pad * h).map(|i| i as f32 * 0.37 - 5.0));
    let mut mask = vec![1u32; t];
    mask.extend([0; 3]);
    cpu.run(&mut padded, &mask, Rows::All).unwrap();
    let mut plain = embedded.clone();
    cpu.run(&mut plain, &mask[..t], Rows::All).unwrap();
    assert_eq!(bits(&padded[..t * h]), bits(&plain));
    // Holes in the mask, a wrong hidden size, no token, too long: typed errors.
    let mut holes = mask.clone();
    holes[1] = 0;
    let mut x = padded.clone();
    let err = cpu.run(&mut x, &holes, Rows::All).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = cpu.run(&mut x[..h], &mask, Rows::All).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let zeros = vec![0u32; t];
    let err = cpu.run(&mut x[..t * h], &zeros, Rows::All).unwrap_err();
    assert!(matches!(err, Error::EmptyInput), "{err:?}");
    let long = cpu.max_sequence_length() + 1;
    let mut big = vec![0f32; long * h];
    let err = cpu.run(&mut big, &vec![1; long], Rows::All).unwrap_err();
    assert!(matches!(err, Error::InputTooLong { .. }), "{err:?}");
}
