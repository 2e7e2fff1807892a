//! The `ascend` backend end to end, against the stand-in AscendCL (tests/ascend): dbrt's Ascend
//! export (`export_ascend`), "compiled" by the stand-in ATC (tests/ascend/atc-standin, ATC's
//! arguments, the ONNX inside), registered (`register_om`) or embedded (`embed_om`), loaded and
//! run by the backend through the documented AscendCL calls; the stand-in runs the graph in
//! onnxruntime and checks every call's discipline (contexts, sizes, ownership, gears).
//!
//! What this proves: dbrt's use of the API (order, sizes, ownership, errors, fallback) and its
//! padding, gear choice, buffer layout and copies. What it cannot: the real library, ATC's
//! acceptance of the graph, the NPU's numbers and speed.
//!
//! Needs `DBRT_ASCENDCL_STANDIN` (tests/ascend/build.sh prints it) and `DBRT_ONNXRUNTIME_LIB`;
//! without them these tests say so and pass, unless `DBRT_REQUIRE_ONNXRUNTIME=1` (CI).

mod ascend_standin;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ascend_standin::{compiled, options, serial, standin, Standin};
use dbrt::offload::{FallbackKind, FallbackPolicy};
use dbrt::{Error, Model, Sequence, Session};
use dbrt_convert::export::embed_om;
use dbrt_convert::StorageType;
use dbrt_tests::*;

/// Hidden states through the stand-in (onnxruntime, f32) against dbrt's f32 CPU encoder.
const HIDDEN_TOLERANCE: f32 = 1e-4;
/// Logits of the real model through the stand-in against dbrt's CPU f32 (the bar).
const LOGIT_TOLERANCE: f32 = 1e-4;

fn on_ascend(s: &Standin, model: &Arc<Model>, artifacts: Option<&Path>) -> Session {
    let session = Session::new(model.clone(), options(s, artifacts, FallbackPolicy::Never))
        .unwrap_or_else(|e| panic!("ascend: {e}"));
    assert_eq!(session.backend(), "ascend");
    session
}

/// Ids of length `len` in the model's vocabulary.
fn ids_of_length(model: &Model, len: usize, seed: u32) -> Vec<u32> {
    let vocab = model.config().vocab_size as u32;
    (0..len as u32)
        .map(|i| 3 + (i.wrapping_mul(2654435761).wrapping_add(seed)) % (vocab - 3))
        .collect()
}

/// max |Δ| of the last hidden states (token rows) between the CPU and the device session,
/// checking the call ran on the device in the gear expected.
fn hidden_diff(s: &Standin, cpu: &mut Session, dev: &mut Session, ids: &[u32], gear: usize) -> f32 {
    let seq = Sequence {
        ids,
        type_ids: None,
    };
    let want = cpu.run_hidden(seq).unwrap().to_vec();
    let got = dev.run_hidden(seq).unwrap().to_vec();
    assert_eq!(dev.last_backend(), Some("ascend"), "ran on the device");
    assert!(dev.last_fallback().is_none());
    assert_eq!(
        s.stats().last_gear,
        gear as u64,
        "{} tokens ran in gear",
        ids.len()
    );
    max_abs_diff(&want, &got)
}

fn tiny(name: &str) -> (tempfile::TempDir, PathBuf) {
    convert(&fixtures().join("tiny").join(name), StorageType::F32)
}

#[test]
fn tiny_models_match_the_cpu_encoder_in_every_gear_and_release_everything() {
    let Some(s) = standin("tiny ascend") else {
        return;
    };
    let _one = serial();
    let gears = [8, 16, 32];
    for name in ["v3-style", "separate-pos-proj"] {
        let (_d, path) = tiny(name);
        let artifacts = compiled(&path, &gears);
        let model = open(&path);
        let before = s.stats();
        s.reset();
        {
            let mut cpu = Session::new(model.clone(), Default::default()).unwrap();
            let mut dev = on_ascend(s, &model, Some(artifacts.path()));
            let mut worst = 0f32;
            for (i, &gear) in gears.iter().enumerate() {
                let below = if i == 0 { 0 } else { gears[i - 1] };
                for len in [gear, below + 1] {
                    let ids = ids_of_length(&model, len, i as u32);
                    let d = hidden_diff(s, &mut cpu, &mut dev, &ids, gear);
                    assert!(
                        d <= HIDDEN_TOLERANCE,
                        "{name}: {len} tokens: max |dh| {d:e}"
                    );
                    worst = worst.max(d);
                }
            }
            // Longer than the largest gear: the CPU runs it, said so.
            let mut fallback = Session::new(
                model.clone(),
                options(s, Some(artifacts.path()), FallbackPolicy::Always),
            )
            .unwrap();
            let ids = ids_of_length(&model, 33, 7);
            let seq = Sequence {
                ids: &ids,
                type_ids: None,
            };
            let want = cpu.run_hidden(seq).unwrap().to_vec();
            assert_eq!(fallback.run_hidden(seq).unwrap(), &want[..]);
            assert_eq!(
                fallback.last_fallback().unwrap().kind,
                FallbackKind::TooLong
            );
            // Two sessions share the device model: one weight memory, one onnxruntime session.
            assert!(dev.shares_device_with(&fallback));
            let st = s.stats();
            assert_eq!(
                (st.contexts, st.models, st.ort_sessions),
                (3, 2, 1),
                "{st:?}"
            );
            eprintln!("{name}: stand-in vs the CPU encoder, max |dh| {worst:.2e}");
        }
        s.assert_clean();
        // Everything made was released, the device reset.
        let after = s.stats();
        assert_eq!(
            (
                after.allocations,
                after.contexts,
                after.streams,
                after.models
            ),
            (
                before.allocations,
                before.contexts,
                before.streams,
                before.models
            ),
            "{after:?}"
        );
        assert_eq!(
            (
                after.descs,
                after.datasets,
                after.data_buffers,
                after.devices
            ),
            (
                before.descs,
                before.datasets,
                before.data_buffers,
                before.devices
            ),
            "{after:?}"
        );
    }
}

#[test]
fn runs_allocate_nothing_on_the_device_and_copy_device_to_device_on_the_board() {
    let Some(s) = standin("ascend runs") else {
        return;
    };
    let _one = serial();
    let (_d, path) = tiny("v3-style");
    let artifacts = compiled(&path, &[8, 16]);
    let model = open(&path);
    let mut cpu = Session::new(model.clone(), Default::default()).unwrap();
    for mode in [1, 0] {
        // ACL_HOST (1): host-device copies; ACL_DEVICE (0): the app on the board's own CPU.
        s.set_run_mode(mode);
        s.reset();
        let mut dev = on_ascend(s, &model, Some(artifacts.path()));
        let made = s.stats().allocations_total;
        for len in [3, 8, 9, 16] {
            let ids = ids_of_length(&model, len, 3);
            let gear = if len <= 8 { 8 } else { 16 };
            assert!(hidden_diff(s, &mut cpu, &mut dev, &ids, gear) <= HIDDEN_TOLERANCE);
        }
        assert_eq!(
            s.stats().allocations_total,
            made,
            "runs allocated device memory"
        );
        assert_eq!(s.stats().executes, 4);
        s.assert_clean();
    }
    s.set_run_mode(1);
}

#[test]
fn sessions_run_at_once_on_their_own_threads_and_move_between_threads() {
    let Some(s) = standin("ascend threads") else {
        return;
    };
    let _one = serial();
    let (_d, path) = tiny("v3-style");
    let artifacts = compiled(&path, &[8, 16]);
    let model = open(&path);
    s.reset();
    // Made on this thread, run on others (each run makes the session's context current there).
    let sessions: Vec<Session> = (0..3)
        .map(|_| on_ascend(s, &model, Some(artifacts.path())))
        .collect();
    let want: Vec<Vec<f32>> = {
        let mut cpu = Session::new(model.clone(), Default::default()).unwrap();
        (1..=16)
            .map(|len| {
                let ids = ids_of_length(&model, len, 5);
                let seq = Sequence {
                    ids: &ids,
                    type_ids: None,
                };
                cpu.run_logits(seq).unwrap().to_vec()
            })
            .collect()
    };
    let (model, want) = (&model, &want);
    std::thread::scope(|scope| {
        for mut session in sessions {
            scope.spawn(move || {
                for round in 0..3 {
                    for len in 1..=16 {
                        let ids = ids_of_length(model, len, 5);
                        let seq = Sequence {
                            ids: &ids,
                            type_ids: None,
                        };
                        let got = session.run_logits(seq).unwrap().to_vec();
                        assert_eq!(session.last_backend(), Some("ascend"));
                        let d = max_abs_diff(&got, &want[len - 1]);
                        assert!(d <= 1e-4, "round {round}, {len} tokens: {d:e}");
                    }
                }
            });
        }
    });
    assert_eq!(s.stats().executes, 3 * 3 * 16);
    s.assert_clean();
}

#[test]
fn the_host_apps_current_context_is_left_as_it_was() {
    let Some(s) = standin("ascend host context") else {
        return;
    };
    let _one = serial();
    let (_d, path) = tiny("v3-style");
    let artifacts = compiled(&path, &[8, 16]);
    let model = open(&path);
    let acl = &s.acl;
    // The host app's own device and context, current on this thread. (aclInit is dbrt's
    // first call on this process's stand-in, made by the session below, so the host's calls
    // come after a session exists: a first session makes sure of it.)
    drop(on_ascend(s, &model, Some(artifacts.path())));
    s.reset();
    let mut host = std::ptr::null_mut();
    // SAFETY: the stand-in's AscendCL entries, CANN's signatures.
    unsafe {
        assert_eq!((acl.set_device)(0), 0);
        assert_eq!((acl.create_context)(&mut host, 0), 0);
    }
    assert_eq!(acl.current(), host);
    {
        let mut dev = on_ascend(s, &model, Some(artifacts.path()));
        assert_eq!(acl.current(), host, "after the session was made");
        let ids = ids_of_length(&model, 5, 2);
        dev.run_logits(Sequence {
            ids: &ids,
            type_ids: None,
        })
        .unwrap();
        assert_eq!(dev.last_backend(), Some("ascend"));
        assert_eq!(acl.current(), host, "after a run");
    }
    assert_eq!(
        acl.current(),
        host,
        "after the session and its device model were dropped"
    );
    // SAFETY: as above; the host's context and device, released by the host.
    unsafe {
        assert_eq!((acl.destroy_context)(host), 0);
        assert_eq!((acl.reset_device)(0), 0);
    }
    s.assert_clean();
}

#[test]
fn an_offline_model_inside_the_dbrt_file_runs_without_artifacts() {
    let Some(s) = standin("embedded om") else {
        return;
    };
    let _one = serial();
    let (dir, path) = tiny("v3-style");
    let artifacts = compiled(&path, &[8, 16]);
    let embedded = dir.path().join("with-om.dbrt");
    embed_om(&path, artifacts.path(), &embedded).unwrap();
    let model = open(&embedded);
    let mut cpu = Session::new(open(&path), Default::default()).unwrap();
    s.reset();
    let mut dev = on_ascend(s, &model, None);
    for len in [5, 16] {
        let ids = ids_of_length(&model, len, 1);
        let gear = if len <= 8 { 8 } else { 16 };
        assert!(hidden_diff(s, &mut cpu, &mut dev, &ids, gear) <= HIDDEN_TOLERANCE);
    }
    s.assert_clean();
    // A model without one, and no artifacts: invalid artifacts, said so.
    let e = Session::new(open(&path), options(s, None, FallbackPolicy::Never)).unwrap_err();
    assert!(matches!(e, Error::InvalidArtifacts(_)), "{e}");
    assert!(e.to_string().contains("embed-om"), "{e}");
}

#[test]
fn real_pairs_give_the_cpu_logits_within_1e4() {
    let Some(s) = standin("real ascend") else {
        return;
    };
    let _one = serial();
    let path = workspace_root().join("models/aegis-nli-xsmall.dbrt");
    let artifacts = compiled(&path, &[64, 128, 256, 512]);
    let model = open(&path);
    let mut cpu = Session::new(model.clone(), Default::default()).unwrap();
    s.reset();
    let mut dev = on_ascend(s, &model, Some(artifacts.path()));
    let mut rows = real_rows("mnli_dev_matched.goldens.jsonl");
    rows.extend(real_rows("rte_dev.goldens.jsonl"));
    // An even spread, the longest pair included (onnxruntime's f32 on two cores: bounded).
    let n = std::env::var("DBRT_ASCEND_REAL_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48usize)
        .clamp(1, rows.len());
    let longest = (0..rows.len())
        .max_by_key(|&i| rows[i].input_ids.len())
        .unwrap();
    let mut picked: Vec<usize> = (0..n).map(|k| k * rows.len() / n).collect();
    picked.push(longest);
    let (mut worst, mut agree) = (0f32, 0);
    for &i in &picked {
        let row = &rows[i];
        let seq = Sequence {
            ids: &row.input_ids,
            type_ids: None,
        };
        let want = cpu.run_logits(seq).unwrap().to_vec();
        let got = dev.run_logits(seq).unwrap().to_vec();
        assert_eq!(dev.last_backend(), Some("ascend"));
        let d = max_abs_diff(&want, &got);
        assert!(d <= LOGIT_TOLERANCE, "row {i}: max |dlogit| {d:e}");
        worst = worst.max(d);
        agree += (argmax(&want) == argmax(&got)) as usize;
    }
    s.assert_clean();
    assert_eq!(agree, picked.len());
    eprintln!(
        "real model, {} pairs through the stand-in: max |dlogit| {worst:.2e} against the CPU",
        picked.len()
    );
}
