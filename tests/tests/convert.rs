//! Converter inputs beyond the fixtures' own containers: sharded and f16 safetensors, ONNX with
//! and without a config.json beside it, and refusals that name what is unsupported.

use std::collections::HashMap;
use std::path::Path;

use dbrt::{Sequence, Session};
use dbrt_convert::{ConvertError, ConvertOptions, StorageType};
use dbrt_tests::*;
use safetensors::tensor::TensorView;

fn copy_config(from: &Path, to: &Path) {
    std::fs::copy(from.join("config.json"), to.join("config.json")).unwrap();
}

fn max_diff_over_cases(model_path: &Path, goldens: &str) -> f32 {
    let model = open(model_path);
    let mut s = Session::new(model, Default::default()).unwrap();
    tiny_goldens(goldens)
        .cases
        .iter()
        .map(|c| {
            max_abs_diff(
                s.run_logits(Sequence {
                    ids: &c.input_ids,
                    type_ids: None,
                })
                .unwrap(),
                &c.logits,
            )
        })
        .fold(0.0, f32::max)
}

#[test]
fn sharded_and_f16_safetensors() {
    let src = fixtures().join("tiny/v3-style");
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();

    // Two shards and an index, as save_pretrained(max_shard_size=...) writes them.
    let dir = tempfile::tempdir().unwrap();
    copy_config(&src, dir.path());
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in names.chunks(names.len() / 2 + 1).enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", i + 1);
        let views: Vec<(String, TensorView<'_>)> = chunk
            .iter()
            .map(|n| (n.clone(), st.tensor(n).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, &dir.path().join(&file)).unwrap();
        for n in chunk {
            weight_map.insert(n.clone(), file.clone().into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let (_o, out) = convert(dir.path(), StorageType::F32);
    let d = max_diff_over_cases(&out, "v3-style");
    assert!(d <= 1e-4, "sharded: {d:e}");

    // The same weights stored as f16: the converter widens them; logits move by f16 rounding.
    let dir16 = tempfile::tempdir().unwrap();
    copy_config(&src, dir16.path());
    let halves: HashMap<String, (Vec<usize>, Vec<u8>)> = names
        .iter()
        .map(|n| {
            let t = st.tensor(n).unwrap();
            let h: Vec<u8> = t
                .data()
                .chunks_exact(4)
                .flat_map(|c| {
                    half::f16::from_f32(f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes()
                })
                .collect();
            (n.clone(), (t.shape().to_vec(), h))
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = halves
        .iter()
        .map(|(n, (shape, data))| {
            (
                n.clone(),
                TensorView::new(safetensors::Dtype::F16, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir16.path().join("model.safetensors")).unwrap();
    let (_o2, out16) = convert(dir16.path(), StorageType::F32);
    let d16 = max_diff_over_cases(&out16, "v3-style");
    assert!(d16 > 0.0 && d16 < 2e-2, "f16 source: {d16:e}");
    let meta = dbrt::format::ModelFile::open(&out16).unwrap();
    assert_eq!(
        meta.metadata()
            .str_list("provenance.source_dtypes")
            .unwrap(),
        ["F16"]
    );
}

fn convert_err(dir: &Path) -> ConvertError {
    let out = dir.join("out.dbrt");
    dbrt_convert::convert(dir, &out, &ConvertOptions::default(), &mut ())
        .expect_err("conversion should fail")
}

#[test]
fn unsupported_inputs_are_named() {
    let src = fixtures().join("tiny/v3-style");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            src.join("model.safetensors"),
            dir.path().join("model.safetensors"),
        )
        .unwrap();
        let mut c = config.clone();
        edit(&mut c);
        std::fs::write(dir.path().join("config.json"), c.to_string()).unwrap();
        let e = convert_err(dir.path());
        e.to_string()
    };
    let e = with(&|c| c["model_type"] = "bert".into());
    assert!(e.contains("model_type 'bert'"), "{e}");
    let e = with(&|c| c["hidden_act"] = "swish".into());
    assert!(e.contains("hidden_act 'swish'"), "{e}");
    let e = with(&|c| c["conv_kernel_size"] = 3.into());
    assert!(e.contains("ConvLayer"), "{e}");
    let e = with(&|c| c["num_hidden_layers"] = 3.into());
    assert!(
        e.contains("deberta.encoder.layer.2."),
        "missing tensor not named: {e}"
    );
    let e = with(&|c| c["hidden_size"] = 48.into());
    assert!(e.contains("shape"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("config.json"), config.to_string()).unwrap();
    let e = convert_err(empty.path()).to_string();
    assert!(e.contains("no model.safetensors"), "{e}");
}

/// The config read from the ONNX graph alone equals the real model's config.json (as
/// reconstructed in shared/fixtures/make/rebuild.py), and a config.json beside the .onnx wins.
#[test]
fn onnx_config_inference_matches_the_real_config() {
    let onnx = real_model_onnx();
    let inferred = dbrt_convert::read_checkpoint(&onnx, &ConvertOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let linked = dir.path().join("model.onnx");
    std::os::unix::fs::symlink(&onnx, &linked).unwrap();
    let cfg = serde_json::json!({
        "model_type": "deberta-v2", "hidden_act": "gelu", "hidden_size": 384, "intermediate_size": 1536,
        "layer_norm_eps": 1e-7, "max_position_embeddings": 512, "max_relative_positions": -1,
        "norm_rel_ebd": "layer_norm", "num_attention_heads": 6, "num_hidden_layers": 12, "pad_token_id": 0,
        "pooler_hidden_act": "gelu", "pooler_hidden_size": 384, "pos_att_type": ["p2c", "c2p"],
        "position_biased_input": false, "position_buckets": 256, "relative_attention": true,
        "share_att_key": true, "type_vocab_size": 0, "vocab_size": 128100,
        "id2label": {"0": "contradiction", "1": "entailment"}
    });
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let opts = ConvertOptions {
        tokenizer: Some(onnx.parent().unwrap().join("policy_nli_tokenizer")),
        ..Default::default()
    };
    let declared = dbrt_convert::read_checkpoint(&linked, &opts).unwrap();
    let mut a = inferred.config.clone();
    let b = declared.config.clone();
    // f32 epsilon read from the graph vs the decimal in config.json.
    assert!(
        (a.layer_norm_eps - b.layer_norm_eps).abs() < 1e-13,
        "{} vs {}",
        a.layer_norm_eps,
        b.layer_norm_eps
    );
    a.layer_norm_eps = b.layer_norm_eps;
    assert_eq!(a, b);
    assert_eq!(inferred.labels, ["LABEL_0", "LABEL_1"]);
    assert_eq!(declared.labels, ["contradiction", "entailment"]);
    assert_eq!(inferred.tensors.len(), declared.tensors.len());
    assert!(declared.tokenizer_json.is_some());
}
