//! Stand-in encoder graphs for the offload tests (no exporter needed): static `[1, S, H]`
//! graphs whose output is a known function of `hidden` and `mask`, an artifact directory of
//! them with its manifest, and where onnxruntime's libraries are.

// Shared by offload.rs and alloc.rs, each of which uses a part.
#![allow(dead_code)]

pub mod setup;

use std::path::{Path, PathBuf};

use dbrt::offload::manifest::{Graph, Manifest, ModelIdentity, Precision};
use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    Message, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use protobuf::MessageField;

/// The scale each hidden value is multiplied by, per column.
pub fn scale(h: usize) -> Vec<f32> {
    (0..h).map(|i| 0.5 + i as f32 / h as f32).collect()
}

/// What the stand-in graph of bucket `bucket` gives for a token's value `x` in column `col`
/// of a sequence of `tokens` tokens: `x * scale[col] + bucket + tokens / 1000` (the bucket
/// says which graph ran, the token count that the mask had exactly `tokens` ones).
pub fn expected(x: f32, col: usize, h: usize, bucket: usize, tokens: usize) -> f32 {
    x * scale(h)[col] + bucket as f32 + tokens as f32 * 1e-3
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `expected` above.
    Affine,
    /// `x * scale + mask * bucket`: Reshape, Mul and Add only (ops the HTP takes).
    Simple,
    /// Affine, plus a Gather whose index (the token count) is out of range: fails at run time.
    FailsAtRun,
    /// An Erf standing alone, which the HTP refuses.
    StandaloneErf,
}

fn floats(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.data_type = 1;
    t.dims = dims.to_vec();
    t.float_data = v.to_vec();
    t
}

fn ints(name: &str, v: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.data_type = 7;
    t.dims = vec![v.len() as i64];
    t.int64_data = v.to_vec();
    t
}

fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = output.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.into()];
    n
}

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    shape.dim = dims
        .iter()
        .map(|&d| {
            let mut dim = tensor_shape_proto::Dimension::new();
            dim.value = Some(tensor_shape_proto::dimension::Value::DimValue(d));
            dim
        })
        .collect();
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = 1;
    tensor.shape = MessageField::some(shape);
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = MessageField::some(ty);
    v
}

/// The serialized stand-in graph of one bucket (opset 17, IR version 8).
pub fn graph(kind: Kind, bucket: usize, h: usize) -> Vec<u8> {
    let (s, hh) = (bucket as i64, h as i64);
    let mut g = GraphProto::new();
    g.name = format!("stand-in-{bucket}");
    g.input = vec![value("hidden", &[1, s, hh]), value("mask", &[1, s])];
    g.output = vec![value("last_hidden", &[1, s, hh])];
    g.initializer = vec![
        floats("scale", &[hh], &scale(h)),
        ints("shape3", &[1, s, 1]),
        floats("bucket", &[1], &[bucket as f32]),
        floats("milli", &[1], &[1e-3]),
    ];
    let mut nodes = vec![
        node("Reshape", &["mask", "shape3"], "m3"),
        node("Mul", &["hidden", "scale"], "hs"),
        node("Mul", &["m3", "bucket"], "mb"),
    ];
    match kind {
        Kind::Simple => nodes.push(node("Add", &["hs", "mb"], "last_hidden")),
        Kind::StandaloneErf => {
            nodes.push(node("Erf", &["hs"], "e"));
            nodes.push(node("Add", &["e", "mb"], "last_hidden"));
        }
        Kind::Affine | Kind::FailsAtRun => {
            nodes.push(node("ReduceSum", &["mask"], "count"));
            nodes.push(node("Mul", &["count", "milli"], "cm"));
            nodes.push(node("Add", &["hs", "mb"], "t1"));
            let out = if kind == Kind::Affine {
                "last_hidden"
            } else {
                "t2"
            };
            nodes.push(node("Add", &["t1", "cm"], out));
            if kind == Kind::FailsAtRun {
                let mut cast = node("Cast", &["count"], "index");
                let mut to = AttributeProto::new();
                to.name = "to".into();
                to.type_ = AttributeType::INT.into();
                to.i = 7;
                cast.attribute = vec![to];
                nodes.push(cast);
                g.initializer.push(floats("one", &[1], &[0.0]));
                nodes.push(node("Gather", &["one", "index"], "gathered"));
                nodes.push(node("Add", &["t2", "gathered"], "last_hidden"));
            }
        }
    }
    g.node = nodes;
    let mut m = ModelProto::new();
    m.ir_version = 8;
    let mut opset = OperatorSetIdProto::new();
    opset.version = 17;
    m.opset_import = vec![opset];
    m.producer_name = "dbrt-tests".into();
    m.graph = MessageField::some(g);
    m.write_to_bytes().expect("serializes")
}

/// Writes the stand-in graphs of `buckets` and their manifest for `model` into `dir`.
pub fn write_artifacts(dir: &Path, model: &dbrt::Model, kind: Kind, buckets: &[usize]) -> Manifest {
    let c = model.config();
    let mut graphs = Vec::new();
    for &b in buckets {
        let bytes = graph(kind, b, c.hidden_size);
        let file = format!("encoder-{b}.onnx");
        std::fs::write(dir.join(&file), &bytes).unwrap();
        graphs.push(Graph {
            bucket: b,
            file,
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        });
    }
    let manifest = Manifest {
        model: ModelIdentity::of(model.file().header()),
        layers: c.num_hidden_layers,
        hidden_size: c.hidden_size,
        precision: Precision::F32,
        graphs,
        ascend: None,
    };
    write_manifest(dir, &manifest);
    manifest
}

pub fn write_manifest(dir: &Path, m: &Manifest) {
    std::fs::write(
        dir.join(dbrt::offload::manifest::MANIFEST_FILE),
        m.to_text(),
    )
    .unwrap();
}

/// A library's path from the environment; `None` (after a message) when unset, unless
/// `DBRT_REQUIRE_ONNXRUNTIME=1`, where its absence fails the test.
fn library(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("DBRT_REQUIRE_ONNXRUNTIME").as_deref() == Ok("1") => {
            panic!("{var} is unset and DBRT_REQUIRE_ONNXRUNTIME=1")
        }
        None => {
            eprintln!("skipped: {var} is unset (set it to run this test)");
            None
        }
    }
}

pub fn onnxruntime() -> Option<PathBuf> {
    library("DBRT_ONNXRUNTIME_LIB")
}

pub fn qnn() -> Option<PathBuf> {
    library("DBRT_QNN_EP_LIB")
}
