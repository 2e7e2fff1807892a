//! `dbrt-convert export-onnx` on the tiny fixtures: the artifact directory's manifest against
//! the files, each graph's interface and ops, the weights an int8 model exports, f16 storage,
//! and the inputs it refuses. (The graphs' numerics are checked in onnxruntime, where the
//! runtime's backends run them.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dbrt::offload::manifest::{Manifest, Precision, MANIFEST_FILE};
use dbrt_convert::export::{export_onnx, ExportOptions, INPUT_HIDDEN, INPUT_MASK, OPS, OUTPUT};
use dbrt_convert::{ConvertError, ConvertOptions, StorageType};
use onnx_protobuf::{tensor_proto::DataType, type_proto, Message, ModelProto, TensorProto};

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tiny")
        .join(name)
}

/// `fixture` converted with `storage` into `dir/{storage}.dbrt`.
fn convert(dir: &Path, fixture: &str, storage: StorageType) -> PathBuf {
    let out = dir.join(format!("{}-{}.dbrt", fixture, storage.name()));
    let opts = ConvertOptions {
        storage,
        ..Default::default()
    };
    dbrt_convert::convert(&tiny(fixture), &out, &opts, &mut ()).unwrap();
    out
}

fn options(buckets: &[usize], precision: Precision) -> ExportOptions {
    ExportOptions {
        buckets: buckets.to_vec(),
        precision,
    }
}

fn load(dir: &Path, bucket: usize) -> ModelProto {
    let bytes = std::fs::read(dir.join(format!("encoder-{bucket}.onnx"))).unwrap();
    ModelProto::parse_from_bytes(&bytes).unwrap()
}

/// A value's element type and static dims.
fn io(v: &onnx_protobuf::ValueInfoProto) -> (i32, Vec<i64>) {
    let Some(type_proto::Value::TensorType(t)) = &v.type_.value else {
        panic!("{} is not a tensor", v.name);
    };
    let dims = t.shape.dim.iter().map(|d| d.dim_value()).collect();
    (t.elem_type, dims)
}

fn f32s(t: &TensorProto) -> Vec<f32> {
    assert_eq!(t.data_type, DataType::FLOAT as i32, "{}", t.name);
    (t.raw_data.chunks_exact(4))
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn initializers(m: &ModelProto) -> HashMap<String, &TensorProto> {
    m.graph
        .initializer
        .iter()
        .map(|t| (t.name.clone(), t))
        .collect()
}

#[test]
fn a_tiny_fixture_exports_a_graph_per_bucket_and_a_manifest_that_matches_them() {
    for fixture in ["v3-style", "separate-pos-proj", "v2-absolute-pos"] {
        let dir = tempfile::tempdir().unwrap();
        let model = convert(dir.path(), fixture, StorageType::F32);
        let art = dir.path().join("art");
        // Out of order and repeated: one graph each, ascending.
        let m = export_onnx(&model, &art, &options(&[64, 8, 128, 8], Precision::F32)).unwrap();
        let text = std::fs::read_to_string(art.join(MANIFEST_FILE)).unwrap();
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        let file = dbrt::format::ModelFile::open(&model).unwrap();
        m.check_model(file.header()).unwrap();
        assert_eq!((m.layers, m.hidden_size), (2, 32));
        let buckets: Vec<usize> = m.graphs.iter().map(|g| g.bucket).collect();
        assert_eq!(buckets, [8, 64, 128]);
        for g in &m.graphs {
            let bytes = std::fs::read(art.join(&g.file)).unwrap();
            assert_eq!(g.file, format!("encoder-{}.onnx", g.bucket));
            assert_eq!(bytes.len() as u64, g.bytes, "{fixture} {}", g.file);
            assert_eq!(crc32fast::hash(&bytes), g.crc32, "{fixture} {}", g.file);
        }
        // Nothing but the graphs and the manifest is left behind.
        assert_eq!(std::fs::read_dir(&art).unwrap().count(), 4, "{fixture}");
    }
}

#[test]
fn graphs_have_the_fixed_interface_and_only_the_allowed_ops() {
    let dir = tempfile::tempdir().unwrap();
    let model = convert(dir.path(), "v3-style", StorageType::F32);
    let art = dir.path().join("art");
    export_onnx(&model, &art, &options(&[16, 128], Precision::F32)).unwrap();
    for s in [16i64, 128] {
        let m = load(&art, s as usize);
        assert_eq!(m.ir_version, 8);
        assert_eq!(m.opset_import.len(), 1);
        assert_eq!(
            (m.opset_import[0].domain.as_str(), m.opset_import[0].version),
            ("", 17)
        );
        let g = &m.graph;
        let f32 = DataType::FLOAT as i32;
        let names: Vec<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, [INPUT_HIDDEN, INPUT_MASK]);
        assert_eq!(io(&g.input[0]), (f32, vec![1, s, 32]));
        assert_eq!(io(&g.input[1]), (f32, vec![1, s]));
        assert_eq!(g.output.len(), 1);
        assert_eq!(g.output[0].name, OUTPUT);
        assert_eq!(io(&g.output[0]), (f32, vec![1, s, 32]));
        for n in &g.node {
            assert!(
                OPS.contains(&n.op_type.as_str()),
                "{} in the graph",
                n.op_type
            );
            assert!(n.domain.is_empty(), "{} in domain {}", n.op_type, n.domain);
        }
        // Every Erf is the GELU pattern's (Div → Erf → Add → Mul → Mul), which QNN fuses.
        let erfs = g.node.iter().filter(|n| n.op_type == "Erf").count();
        assert_eq!(erfs, 2, "one GELU per layer");
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        let gelu = ["Div", "Erf", "Add", "Mul", "Mul"];
        assert_eq!(ops.windows(5).filter(|w| *w == gelu).count(), erfs);
        // Self-contained: every initializer's data is in the file.
        for t in &g.initializer {
            assert!(
                t.external_data.is_empty() && !t.raw_data.is_empty(),
                "{}",
                t.name
            );
        }
        // The relative index: one per head, [1, heads, S, S], in range of its projections.
        let index = (g.initializer.iter())
            .find(|t| t.data_type == DataType::INT64 as i32 && t.dims.len() == 4)
            .expect("a relative index");
        assert_eq!(index.dims, [1, 4, s, s]);
    }
}

#[test]
fn buckets_beyond_the_models_length_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let model = convert(dir.path(), "v3-style", StorageType::F32);
    let art = dir.path().join("art");
    // The defaults include 256 and 512; the tiny models take 128 positions.
    let e = export_onnx(&model, &art, &ExportOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConvertError::Invalid(_)), "{e:?}");
    assert!(msg.contains("256, 512") && msg.contains("128"), "{msg}");
    assert!(!msg.contains("64,"), "{msg}");
    let e = export_onnx(&model, &art, &options(&[], Precision::F32)).unwrap_err();
    assert!(e.to_string().contains("buckets"), "{e}");
    let e = export_onnx(&model, &art, &options(&[0, 8], Precision::F32)).unwrap_err();
    assert!(e.to_string().contains("at least 1"), "{e}");
    assert!(!art.join(MANIFEST_FILE).exists());
}

#[test]
fn a_failed_export_leaves_the_previous_one_and_a_new_one_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = convert(dir.path(), "v3-style", StorageType::F32);
    let art = dir.path().join("art");
    let first = export_onnx(&model, &art, &options(&[8], Precision::F32)).unwrap();
    let manifest = std::fs::read(art.join(MANIFEST_FILE)).unwrap();
    assert!(export_onnx(&model, &art, &options(&[8, 129], Precision::F16)).is_err());
    assert_eq!(std::fs::read(art.join(MANIFEST_FILE)).unwrap(), manifest);
    let second = export_onnx(&model, &art, &options(&[8], Precision::F16)).unwrap();
    assert_ne!(first.graphs[0].crc32, second.graphs[0].crc32);
    let text = std::fs::read_to_string(art.join(MANIFEST_FILE)).unwrap();
    assert_eq!(Manifest::parse(&text).unwrap(), second);
    let bytes = std::fs::read(art.join("encoder-8.onnx")).unwrap();
    assert_eq!(crc32fast::hash(&bytes), second.graphs[0].crc32);
}

/// The groups of values that share an int8 scale in a graph initializer exported from an int8
/// model: linear weights are stored `[in, out]` (one scale per output: a column), relative
/// projections per head `[1, heads, d, R]` (keys: a column of each head's block) or
/// `[1, heads, R, d]` (queries: a row).
fn scale_groups(t: &TensorProto) -> Vec<Vec<usize>> {
    let d: Vec<usize> = t.dims.iter().map(|&x| x as usize).collect();
    let (blocks, rows, cols, by_column) = match d.as_slice() {
        [i, o] => (1, *i, *o, true),
        [1, h, a, b] => (*h, *a, *b, t.name.starts_with("rel_key_t")),
        _ => return Vec::new(),
    };
    let mut groups = Vec::new();
    for blk in 0..blocks {
        let at = |r: usize, c: usize| blk * rows * cols + r * cols + c;
        match by_column {
            true => groups.extend((0..cols).map(|c| (0..rows).map(|r| at(r, c)).collect())),
            false => groups.extend((0..rows).map(|r| (0..cols).map(|c| at(r, c)).collect())),
        }
    }
    groups
}

#[test]
fn an_int8_model_exports_its_weights_dequantized_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (f32_model, i8_model) = (
        convert(dir.path(), "v3-style", StorageType::F32),
        convert(dir.path(), "v3-style", StorageType::Int8),
    );
    let (a, b) = (dir.path().join("f32"), dir.path().join("int8"));
    export_onnx(&f32_model, &a, &options(&[16], Precision::F32)).unwrap();
    export_onnx(&i8_model, &b, &options(&[16], Precision::F32)).unwrap();
    let (ga, gb) = (load(&a, 16), load(&b, 16));
    let (wa, wb) = (initializers(&ga), initializers(&gb));
    assert_eq!(wa.len(), wb.len());
    let mut quantized = 0;
    for (name, ta) in &wa {
        let tb = wb[name];
        assert_eq!(ta.dims, tb.dims, "{name}");
        if ta.data_type != DataType::FLOAT as i32 {
            assert_eq!(ta.raw_data, tb.raw_data, "{name}");
            continue;
        }
        let (x, q) = (f32s(ta), f32s(tb));
        let groups = scale_groups(ta);
        if groups.is_empty() {
            // Biases, LayerNorms, scalars: f32 in both files.
            assert_eq!(x, q, "{name}");
            continue;
        }
        for g in groups {
            // q · s with s = max|w| / 127: each value an integer multiple of its group's scale
            // (the largest exactly ±127 of it), within half a step of the f32 weight.
            let s = g.iter().map(|&i| q[i].abs()).fold(0f32, f32::max) / 127.0;
            for &i in &g {
                let steps = q[i] / s;
                assert!(
                    (steps - steps.round()).abs() < 1e-3,
                    "{name}[{i}]: {steps} steps"
                );
                assert!(
                    (q[i] - x[i]).abs() <= s * 0.5001,
                    "{name}[{i}]: {} vs {}",
                    q[i],
                    x[i]
                );
            }
            quantized += 1;
        }
    }
    // Six linear layers' outputs per layer and the two relative projections' rows.
    assert!(quantized > 2 * 6 * 32, "{quantized} groups checked");
}

#[test]
fn f16_precision_stores_weights_f16_at_about_half_the_size() {
    let dir = tempfile::tempdir().unwrap();
    let model = convert(dir.path(), "v3-style", StorageType::F32);
    let (a, b) = (dir.path().join("f32"), dir.path().join("f16"));
    let m32 = export_onnx(&model, &a, &options(&[8], Precision::F32)).unwrap();
    let m16 = export_onnx(&model, &b, &options(&[8], Precision::F16)).unwrap();
    assert_eq!(m16.precision, Precision::F16);
    let ratio = m16.graphs[0].bytes as f64 / m32.graphs[0].bytes as f64;
    assert!((0.45..0.6).contains(&ratio), "f16 / f32 size {ratio}");
    let (g32, g16) = (load(&a, 8), load(&b, 8));
    let w32 = initializers(&g32);
    let mut halves = 0;
    for t in &g16.graph.initializer {
        if t.data_type != DataType::FLOAT16 as i32 {
            continue;
        }
        halves += 1;
        let x = f32s(w32[&t.name]);
        let h: Vec<f32> = (t.raw_data.chunks_exact(2))
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect();
        let want: Vec<f32> = x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
        assert_eq!(h, want, "{}", t.name);
        // Read through a Cast to f32.
        let cast = (g16.graph.node.iter())
            .find(|n| n.input.first() == Some(&t.name))
            .unwrap();
        assert_eq!(cast.op_type, "Cast", "{}", t.name);
    }
    assert!(halves > 20, "{halves} f16 initializers");
    // Inputs and outputs stay f32.
    assert_eq!(io(&g16.graph.input[0]).0, DataType::FLOAT as i32);
    assert_eq!(io(&g16.graph.output[0]).0, DataType::FLOAT as i32);
}

#[test]
fn what_is_not_a_dbrt_model_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let art = dir.path().join("art");
    let opts = options(&[8], Precision::F32);
    let garbage = dir.path().join("model.dbrt");
    std::fs::write(&garbage, b"not a model at all, just some bytes").unwrap();
    let e = export_onnx(&garbage, &art, &opts).unwrap_err();
    assert!(
        matches!(&e, ConvertError::Parse { path, .. } if path == &garbage),
        "{e:?}"
    );
    // A Hugging Face directory is an input of the conversion, not of the export.
    let e = export_onnx(&tiny("v3-style"), &art, &opts).unwrap_err();
    assert!(matches!(e, ConvertError::Parse { .. }), "{e:?}");
    let e = export_onnx(&dir.path().join("absent.dbrt"), &art, &opts).unwrap_err();
    assert!(matches!(e, ConvertError::Io { .. }), "{e:?}");
    assert!(!art.join(MANIFEST_FILE).exists());
}

#[test]
fn the_cli_exports_and_drops_default_buckets_the_model_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    let model = convert(dir.path(), "v3-style", StorageType::F32);
    let art = dir.path().join("art");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dbrt-convert"))
        .args([
            "export-onnx".as_ref(),
            model.as_os_str(),
            "-o".as_ref(),
            art.as_os_str(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[256, 512] dropped"), "{stderr}");
    let text = std::fs::read_to_string(art.join(MANIFEST_FILE)).unwrap();
    let buckets: Vec<usize> = (Manifest::parse(&text).unwrap().graphs.iter())
        .map(|g| g.bucket)
        .collect();
    assert_eq!(buckets, [64, 128]);
    // Asked for by name, a bucket the model cannot take fails the command.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dbrt-convert"))
        .args([
            "export-onnx".as_ref(),
            model.as_os_str(),
            "-o".as_ref(),
            art.as_os_str(),
        ])
        .args(["--buckets", "64,200", "--precision", "f16"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bucket(s) 200"));
}

#[test]
fn the_runtime_view_reads_the_index_the_runtime_computes_and_refuses_what_is_out_of_range() {
    use dbrt::model::export::{layer, relative_rows};
    let dir = tempfile::tempdir().unwrap();
    for fixture in ["v3-style", "separate-pos-proj"] {
        let model = dbrt::Model::open(convert(dir.path(), fixture, StorageType::F32)).unwrap();
        let c = model.config();
        let max = c.max_position_embeddings;
        let full = dbrt::model::config::relative_position_index(c, max);
        for len in [1, 7, 64, max] {
            let rows = relative_rows(&model, len).unwrap();
            let want: Vec<usize> = full[max - len..max + len - 1]
                .iter()
                .map(|&r| r as usize)
                .collect();
            assert_eq!(rows, want, "{fixture} at {len}");
        }
        for len in [0, max + 1] {
            let e = relative_rows(&model, len).unwrap_err();
            assert!(matches!(e, dbrt::Error::InputTooLong { .. }), "{e:?}");
        }
        let e = layer(&model, c.num_hidden_layers).unwrap_err();
        assert!(e.to_string().contains("layer 2 of a model of 2"), "{e}");
        let w = layer(&model, 0).unwrap();
        assert_eq!(w.rel_key.is_some(), c.pos_att.c2p);
        assert_eq!(w.rel_query.is_some(), c.pos_att.p2c);
    }
}
