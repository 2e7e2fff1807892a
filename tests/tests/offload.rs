//! The accelerator stage through onnxruntime (`ort-cpu`, and `qnn` on Qualcomm's HTP
//! emulator) with stand-in encoder graphs: bucket choice and padding, rows copied back, the
//! stage's contract, the head over the device's hidden states, backend names, and sessions
//! sharing one device model across threads (the fallbacks are in offload_fallback.rs).
//!
//! Needs onnxruntime's library in `DBRT_ONNXRUNTIME_LIB` (and the QNN provider's in
//! `DBRT_QNN_EP_LIB`); without it each test says so and passes, unless
//! `DBRT_REQUIRE_ONNXRUNTIME=1`.

mod offload_graphs;

use std::path::Path;

use dbrt::model::stage::Rows;
use dbrt::offload::{BackendChoice, FallbackKind, FallbackPolicy, OffloadOptions};
use dbrt::{Error, Session};
use dbrt_tests::*;
use offload_graphs::setup::*;
use offload_graphs::{expected, Kind};

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
    // A file that is not a library, and one that is not onnxruntime.
    let not_elf = tempfile::tempdir().unwrap();
    let fake = not_elf.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not a library").unwrap();
    let why = dbrt::offload::backend_available("ort-cpu", &with(&fake)).unwrap_err();
    assert!(why.contains("libonnxruntime.so"), "{why}");
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

#[test]
fn the_accelerator_keeps_the_encoder_stage_contract() {
    let Some(s) = setup(Kind::Affine, BUCKETS) else {
        return;
    };
    let mut cpu = s.cpu();
    let mut dev = s.session("ort-cpu", FallbackPolicy::Never).unwrap();
    let h = s.model.config().hidden_size;
    let ten = ids(10);
    let emb = embeddings(&mut cpu, &ten);
    // Ten positions, six tokens then padding: bucket 8, the tokens' rows as with six alone.
    for rows in [Rows::All, Rows::First] {
        let (mut pass, stage) = dev.device_pass(seq(&ten)).unwrap();
        let stage = stage.expect("an accelerator is attached");
        assert_eq!((stage.name(), stage.max_sequence_length()), ("ort-cpu", 32));
        let (hidden, _, _) = pass.cpu_encoder();
        let mask = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
        stage.run(hidden, &mask, rows).unwrap();
        let n = if rows == Rows::All { 6 } else { 1 };
        let want: Vec<f32> = (emb[..n * h].iter().enumerate())
            .map(|(i, &x)| expected(x, i % h, h, 8, 6))
            .collect();
        assert!(max_abs_diff(&hidden[..n * h], &want) < 1e-5, "{rows:?}");
    }
    let (mut pass, stage) = dev.device_pass(seq(&ten)).unwrap();
    let stage = stage.unwrap();
    let (hidden, _, _) = pass.cpu_encoder();
    let e = stage.run(hidden, &[1, 0, 1, 0, 0, 0, 0, 0, 0, 0], Rows::All);
    assert!(matches!(e, Err(Error::InvalidArgument(_))), "{e:?}");
    let e = stage.run(hidden, &[0; 10], Rows::All);
    assert!(matches!(e, Err(Error::EmptyInput)), "{e:?}");
    let e = stage.run(&mut hidden[..h], &[1; 10], Rows::All);
    assert!(matches!(e, Err(Error::InvalidArgument(_))), "{e:?}");
    let forty = ids(40);
    let (mut pass, stage) = dev.device_pass(seq(&forty)).unwrap();
    let (hidden, mask, _) = pass.cpu_encoder();
    let e = stage.unwrap().run(hidden, mask, Rows::First);
    assert!(
        matches!(e, Err(Error::InputTooLong { len: 40, max: 32 })),
        "{e:?}"
    );
    // A CPU session has no accelerator stage.
    assert!(cpu.device_pass(seq(&ten)).unwrap().1.is_none());
}
