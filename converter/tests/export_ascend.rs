//! `dbrt-convert export-onnx --target ascend`, `register-om` and `embed-om` on the tiny fixtures:
//! the one graph's interface (symbolic sequence dim), opset and ops against ATC's list, the
//! manifest, the gears refused, the offline model recorded and refused, and the `.dbrt` copy
//! that holds it (opens in the runtime, same logits). The graph's numerics are checked in
//! onnxruntime by `scripts/ascend/check_graph.py` and end to end through the backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dbrt::format::{DType, MetaValue, ModelFile};
use dbrt::offload::manifest::{Manifest, Precision, MANIFEST_FILE};
use dbrt_convert::export::embed::{META_GEARS, META_SOC_VERSION, META_SOURCE, OM_TENSOR};
use dbrt_convert::export::{
    atc_command, embed_om, export_ascend, register_om, AscendOptions, ASCEND_GRAPH_FILE,
    ASCEND_OPS, ASCEND_OPSET, INPUT_HIDDEN, INPUT_MASK, OUTPUT, SEQ_DIM,
};
use dbrt_convert::{ConvertError, ConvertOptions, StorageType};
use onnx_protobuf::{tensor_proto::DataType, tensor_shape_proto::dimension::Value, type_proto};
use onnx_protobuf::{Message, ModelProto};

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tiny")
        .join(name)
}

fn convert(dir: &Path, fixture: &str, storage: StorageType) -> PathBuf {
    let out = dir.join(format!("{}-{}.dbrt", fixture, storage.name()));
    let opts = ConvertOptions {
        storage,
        ..Default::default()
    };
    dbrt_convert::convert(&tiny(fixture), &out, &opts, &mut ()).unwrap();
    out
}

fn gears(g: &[usize]) -> AscendOptions {
    AscendOptions {
        gears: g.to_vec(),
        precision: Precision::F32,
    }
}

/// A value's dims: numbers, or the symbolic dim's name.
fn dims(v: &onnx_protobuf::ValueInfoProto) -> Vec<String> {
    let Some(type_proto::Value::TensorType(t)) = &v.type_.value else {
        panic!("{} is not a tensor", v.name);
    };
    assert_eq!(t.elem_type, DataType::FLOAT as i32, "{}", v.name);
    (t.shape.dim.iter())
        .map(|d| match &d.value {
            Some(Value::DimValue(n)) => n.to_string(),
            Some(Value::DimParam(p)) => p.clone(),
            _ => "?".into(),
        })
        .collect()
}

#[test]
fn one_graph_with_a_symbolic_length_in_atcs_opset_and_ops() {
    for fixture in ["v3-style", "separate-pos-proj", "v2-absolute-pos"] {
        let dir = tempfile::tempdir().unwrap();
        let model = convert(dir.path(), fixture, StorageType::F32);
        let art = dir.path().join("art");
        // Out of order and repeated: ascending, once each.
        let m = export_ascend(&model, &art, &gears(&[64, 8, 16, 8])).unwrap();
        let text = std::fs::read_to_string(art.join(MANIFEST_FILE)).unwrap();
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        assert!(text.contains("target ascend\ngears 8 16 64\n"), "{text}");
        assert!(!text.contains("\nom "), "no offline model yet: {text}");
        let file = ModelFile::open(&model).unwrap();
        m.check_model(file.header()).unwrap();
        let part = m.ascend.as_ref().unwrap();
        assert_eq!((part.gears.as_slice(), &part.om), (&[8, 16, 64][..], &None));
        assert_eq!(m.graphs.len(), 1);
        let g = &m.graphs[0];
        assert_eq!((g.bucket, g.file.as_str()), (64, ASCEND_GRAPH_FILE));
        let bytes = std::fs::read(art.join(&g.file)).unwrap();
        assert_eq!(
            (bytes.len() as u64, crc32fast::hash(&bytes)),
            (g.bytes, g.crc32)
        );
        // Nothing but the graph and the manifest.
        assert_eq!(std::fs::read_dir(&art).unwrap().count(), 2, "{fixture}");

        let p = ModelProto::parse_from_bytes(&bytes).unwrap();
        assert_eq!(p.ir_version, 8);
        let opset: Vec<_> = (p.opset_import.iter())
            .map(|o| (o.domain.as_str(), o.version))
            .collect();
        assert_eq!(opset, [("", ASCEND_OPSET)]);
        assert_eq!(ASCEND_OPSET, 13);
        let names: Vec<&str> = p.graph.input.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, [INPUT_HIDDEN, INPUT_MASK]);
        assert_eq!(dims(&p.graph.input[0]), ["1", SEQ_DIM, "32"]);
        assert_eq!(dims(&p.graph.input[1]), ["1", SEQ_DIM]);
        assert_eq!(p.graph.output.len(), 1);
        assert_eq!(p.graph.output[0].name, OUTPUT);
        assert_eq!(dims(&p.graph.output[0]), ["1", SEQ_DIM, "32"]);
        for n in &p.graph.node {
            let op = n.op_type.as_str();
            assert!(ASCEND_OPS.contains(&op), "{fixture}: {op} in the graph");
            assert!(n.domain.is_empty(), "{op} in domain {}", n.domain);
        }
        let count = |op: &str| p.graph.node.iter().filter(|n| n.op_type == op).count();
        // LayerNorm spelled out: two means per norm, two norms per layer, two layers.
        assert_eq!(count("ReduceMean"), 8, "{fixture}");
        // No shape constant holds a length: every reshape infers it.
        for t in &p.graph.initializer {
            if t.data_type == DataType::INT64 as i32 && t.dims.len() == 1 && t.dims[0] >= 3 {
                let v: Vec<i64> = (t.raw_data.chunks_exact(8))
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                    .collect();
                assert!(v.contains(&-1), "{fixture}: shape {} is {v:?}", t.name);
            }
        }
        let index = (p.graph.initializer.iter())
            .find(|t| t.data_type == DataType::INT64 as i32 && t.dims.len() == 4);
        let relative = dbrt::Model::open(&model)
            .unwrap()
            .config()
            .relative_attention;
        if !relative {
            assert!(index.is_none());
            assert_eq!(count("Slice"), 0);
        } else {
            // Made for the longest gear, cut at run time to the length Shape(hidden) gives.
            assert_eq!(index.unwrap().dims, [1, 4, 64, 64], "{fixture}");
            assert_eq!(count("Shape"), 1);
            let shape = p.graph.node.iter().find(|n| n.op_type == "Shape").unwrap();
            assert_eq!(shape.input, [INPUT_HIDDEN]);
            assert_eq!(count("Slice"), 2);
        }
    }
}

#[test]
fn gears_atc_cannot_take_or_the_model_cannot_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = convert(dir.path(), "v3-style", StorageType::F32);
    let art = dir.path().join("art");
    let max = dbrt::Model::open(&model).unwrap().max_sequence_length();
    let many: Vec<usize> = (1..=101).collect();
    for (g, says) in [
        (vec![64], "1 distinct gear(s)"),
        (vec![64, 64], "1 distinct gear(s)"),
        (vec![], "0 distinct gear(s)"),
        (vec![0, 8], "a gear of 0"),
        (vec![8, max + 1], "exceed the model's maximum"),
        (many, "101 distinct gear(s)"),
    ] {
        let e = export_ascend(&model, &art, &gears(&g)).unwrap_err();
        assert!(matches!(e, ConvertError::Invalid(_)), "{g:?}: {e}");
        assert!(e.to_string().contains(says), "{g:?}: {e}");
    }
    assert!(!art.join(MANIFEST_FILE).exists());
}

#[test]
fn the_atc_command_names_the_inputs_the_hidden_size_and_every_gear() {
    let dir = tempfile::tempdir().unwrap();
    let model = convert(dir.path(), "v3-style", StorageType::F32);
    let art = dir.path().join("art");
    let m = export_ascend(&model, &art, &gears(&[16, 64, 128])).unwrap();
    let cmd = atc_command(&m, &art, "Ascend310B1").unwrap();
    let want = format!(
        "atc --framework=5 --model={} --output={} --input_format=ND \
         --input_shape=\"hidden:1,-1,32;mask:1,-1\" --dynamic_dims=\"16,16;64,64;128,128\" \
         --soc_version=Ascend310B1",
        art.join(ASCEND_GRAPH_FILE).display(),
        art.join("encoder").display()
    );
    assert_eq!(cmd, want);
}

/// An Ascend export of the tiny model in `dir/art`, with `bytes` as its offline model.
fn exported_with_om(dir: &Path, bytes: &[u8]) -> (PathBuf, PathBuf) {
    let model = convert(dir, "v3-style", StorageType::F32);
    let art = dir.join("art");
    export_ascend(&model, &art, &gears(&[16, 64])).unwrap();
    std::fs::write(art.join("encoder.om"), bytes).unwrap();
    (model, art)
}

#[test]
fn register_om_records_length_crc_and_soc_and_copies_a_file_from_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let (_, art) = exported_with_om(dir.path(), b"an offline model");
    let m = register_om(&art, None, "Ascend310B1").unwrap();
    let om = m.ascend.as_ref().unwrap().om.clone().unwrap();
    assert_eq!((om.file.as_str(), om.bytes), ("encoder.om", 16));
    assert_eq!(om.crc32, crc32fast::hash(b"an offline model"));
    assert_eq!(om.soc_version, "Ascend310B1");
    let text = std::fs::read_to_string(art.join(MANIFEST_FILE)).unwrap();
    assert_eq!(Manifest::parse(&text).unwrap(), m);
    assert!(text.ends_with(&format!("om encoder.om 16 {:08x} Ascend310B1\n", om.crc32)));

    // From elsewhere: copied in under its own name; registering again replaces the line.
    let other = dir.path().join("encoder_linux_aarch64.om");
    std::fs::write(&other, b"another").unwrap();
    let m = register_om(&art, Some(&other), "Ascend310P3").unwrap();
    let om = m.ascend.unwrap().om.unwrap();
    assert_eq!(
        (om.file.as_str(), om.bytes),
        ("encoder_linux_aarch64.om", 7)
    );
    assert_eq!(std::fs::read(art.join(&om.file)).unwrap(), b"another");
    let text = std::fs::read_to_string(art.join(MANIFEST_FILE)).unwrap();
    assert_eq!(text.matches("\nom ").count(), 1, "{text}");
    // No temporary file is left behind.
    let names: Vec<String> = (std::fs::read_dir(&art).unwrap())
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".partial")), "{names:?}");
}

#[test]
fn register_om_refuses_what_it_cannot_record() {
    let dir = tempfile::tempdir().unwrap();
    let (model, art) = exported_with_om(dir.path(), b"om");
    let before = std::fs::read_to_string(art.join(MANIFEST_FILE)).unwrap();
    let empty = dir.path().join("empty.om");
    std::fs::write(&empty, b"").unwrap();
    let cases: Vec<(Option<PathBuf>, &str, &str)> = vec![
        (Some(empty), "Ascend310B1", "0 bytes"),
        (
            Some(dir.path().join("absent.om")),
            "Ascend310B1",
            "cannot read",
        ),
        (None, "", "SoC version"),
        (None, "Ascend 310", "SoC version"),
        (
            Some(art.join(MANIFEST_FILE)),
            "Ascend310B1",
            "named as the export's",
        ),
    ];
    for (om, soc, says) in cases {
        let e = register_om(&art, om.as_deref(), soc).unwrap_err();
        assert!(e.to_string().contains(says), "{om:?} {soc:?}: {e}");
    }
    assert_eq!(
        std::fs::read_to_string(art.join(MANIFEST_FILE)).unwrap(),
        before
    );
    // A static export is not an Ascend one.
    let stat = dir.path().join("static");
    let opts = dbrt_convert::export::ExportOptions {
        buckets: vec![16],
        precision: Precision::F32,
    };
    dbrt_convert::export::export_onnx(&model, &stat, &opts).unwrap();
    std::fs::write(stat.join("encoder.om"), b"om").unwrap();
    let e = register_om(&stat, None, "Ascend310B1").unwrap_err();
    assert!(e.to_string().contains("not an Ascend export"), "{e}");
    // No export at all.
    let e = register_om(dir.path(), None, "Ascend310B1").unwrap_err();
    assert!(matches!(e, ConvertError::Io { .. }), "{e}");
}

#[test]
fn embed_om_writes_a_copy_that_runs_as_the_model_and_holds_the_offline_model() {
    let dir = tempfile::tempdir().unwrap();
    for storage in [StorageType::F32, StorageType::Int8] {
        let model = convert(dir.path(), "v3-style", storage);
        let art = dir.path().join(format!("art-{}", storage.name()));
        let om: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        export_ascend(&model, &art, &gears(&[16, 64])).unwrap();
        std::fs::write(art.join("encoder.om"), &om).unwrap();
        register_om(&art, None, "Ascend310B1").unwrap();
        let out = dir.path().join(format!("with-om-{}.dbrt", storage.name()));
        let n = embed_om(&model, &art, &out).unwrap();
        assert_eq!(std::fs::metadata(&out).unwrap().len(), n);

        let src = ModelFile::open(&model).unwrap();
        let copy = ModelFile::open(&out).unwrap();
        copy.verify_data().unwrap();
        let t = copy.tensor(OM_TENSOR).unwrap();
        assert_eq!(
            (t.record.dtype, t.record.shape.as_slice()),
            (DType::U8, &[1000][..])
        );
        assert_eq!(t.bytes, om.as_slice());
        assert_eq!(t.record.offset % 64, 0);
        let meta = copy.metadata();
        assert_eq!(
            meta.get(META_GEARS),
            Some(&MetaValue::I64List(vec![16, 64]))
        );
        let soc = MetaValue::Str("Ascend310B1".into());
        assert_eq!(meta.get(META_SOC_VERSION), Some(&soc));
        let h = src.header();
        let source = format!("{} {:08x} {:08x}", h.file_len, h.data_crc32, h.tables_crc32);
        assert_eq!(meta.get(META_SOURCE), Some(&MetaValue::Str(source)));
        // Every other record and entry as it was.
        for rec in src.records() {
            let c = copy.tensor(&rec.name).unwrap();
            let s = src.tensor(&rec.name).unwrap();
            assert_eq!(
                (
                    c.record.dtype,
                    c.record.layout,
                    &c.record.shape,
                    c.record.crc32
                ),
                (rec.dtype, rec.layout, &rec.shape, rec.crc32),
                "{}",
                rec.name
            );
            assert_eq!(c.bytes, s.bytes, "{}", rec.name);
        }
        assert_eq!(copy.records().count(), src.records().count() + 1);
        for (k, v) in src.metadata().entries() {
            assert_eq!(meta.get(k), Some(v), "{k}");
        }
        // The runtime opens it as it opens the model, with the same logits.
        let logits = |path: &Path| {
            let m = Arc::new(dbrt::Model::open(path).unwrap());
            let mut s = dbrt::Session::new(m, Default::default()).unwrap();
            let ids: Vec<u32> = (0..40).map(|i| (i * 37 + 1) % 90 + 1).collect();
            let seq = dbrt::Sequence {
                ids: &ids,
                type_ids: None,
            };
            s.run_logits(seq).unwrap().to_vec()
        };
        assert_eq!(logits(&out), logits(&model), "{}", storage.name());
    }
}

#[test]
fn embed_om_refuses_another_models_export_and_an_unregistered_or_changed_om() {
    let dir = tempfile::tempdir().unwrap();
    let (model, art) = exported_with_om(dir.path(), b"offline model");
    let out = dir.path().join("out.dbrt");
    let e = embed_om(&model, &art, &out).unwrap_err();
    assert!(e.to_string().contains("no offline model registered"), "{e}");
    register_om(&art, None, "Ascend310B1").unwrap();
    let other = convert(dir.path(), "separate-pos-proj", StorageType::F32);
    let e = embed_om(&other, &art, &out).unwrap_err();
    assert!(e.to_string().contains("another model"), "{e}");
    std::fs::write(art.join("encoder.om"), b"offline modeL").unwrap();
    let e = embed_om(&model, &art, &out).unwrap_err();
    assert!(e.to_string().contains("register it again"), "{e}");
    assert!(!out.exists());
    // A static export has no offline model.
    let e = embed_om(&model, dir.path(), &out).unwrap_err();
    assert!(matches!(e, ConvertError::Io { .. }), "{e}");
}
