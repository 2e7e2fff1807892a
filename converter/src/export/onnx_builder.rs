//! A small ONNX graph builder over `onnx-protobuf`: nodes with generated value names,
//! initializers (f32 weights stored f32, or f16 with a Cast back to f32), and the model
//! wrapper (opset 17 by default, IR version 8: what onnxruntime 1.14 and later read). Input and
//! output dims are static, or symbolic (`dim_param`) for a graph of any sequence length.

use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use protobuf::MessageField;

use dbrt::offload::manifest::Precision;

/// The default domain's opset the graphs use (LayerNormalization is opset 17).
pub const OPSET: i64 = 17;
/// IR version 8: onnxruntime ≥ 1.14 reads it.
pub const IR_VERSION: i64 = 8;

/// One dim of a graph input's or output's shape.
#[derive(Clone, Copy)]
pub enum Dim<'a> {
    Fixed(usize),
    /// A symbolic dim, e.g. `"seq"`: the graph takes any length there.
    Named(&'a str),
}

/// A node attribute.
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
}

/// A graph under construction.
pub struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    precision: Precision,
    opset: i64,
    next: usize,
}

impl Builder {
    pub fn new(precision: Precision) -> Builder {
        Builder {
            nodes: Vec::new(),
            initializers: Vec::new(),
            precision,
            opset: OPSET,
            next: 0,
        }
    }

    /// The default domain's opset the model declares (the caller keeps to its ops).
    pub fn with_opset(mut self, opset: i64) -> Builder {
        self.opset = opset;
        self
    }

    /// A fresh value name starting with `hint`.
    fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// Adds an `op` node over `inputs` with `attrs`; returns its (one) output's name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        self.op_into(op, inputs, attrs, &out);
        out
    }

    /// Adds an `op` node writing `out` (a graph output's name).
    pub fn op_into(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>, out: &str) {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = format!("{op}_{}", self.nodes.len());
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![out.to_string()];
        n.attribute = attrs.into_iter().map(|(k, v)| attribute(k, v)).collect();
        self.nodes.push(n);
    }

    /// Renames `from`, the output of the last node added, to `to`; false (and nothing
    /// renamed) when the last node does not output `from` (or there is none).
    pub fn rename_output(&mut self, from: &str, to: &str) -> bool {
        match self.nodes.last_mut() {
            Some(n) if n.output.len() == 1 && n.output[0] == from => {
                n.output[0] = to.into();
                true
            }
            _ => false,
        }
    }

    /// A weight initializer of `dims`, f32 or (with f16 precision) stored f16 and cast to f32;
    /// returns the name of its f32 value.
    pub fn weight(&mut self, hint: &str, dims: &[usize], data: &[f32]) -> String {
        let name = self.fresh(hint);
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.dims = dims.iter().map(|&d| d as i64).collect();
        match self.precision {
            Precision::F32 => {
                t.data_type = DataType::FLOAT as i32;
                t.raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
                self.initializers.push(t);
                name
            }
            Precision::F16 => {
                t.data_type = DataType::FLOAT16 as i32;
                t.raw_data = data
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect();
                self.initializers.push(t);
                // Named after the weight (not from the counter), so that an f16 graph's
                // initializers have the names of the f32 graph's.
                let out = format!("{name}_f32");
                let to = Attr::Int(DataType::FLOAT as i64);
                self.op_into("Cast", &[&name], vec![("to", to)], &out);
                out
            }
        }
    }

    /// An f32 constant kept f32 whatever the precision (scalars: scales, mask bias).
    pub fn constant_f32(&mut self, hint: &str, dims: &[usize], data: &[f32]) -> String {
        let name = self.fresh(hint);
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = DataType::FLOAT as i32;
        t.raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(t);
        name
    }

    /// An int64 constant (shapes, gather indices).
    pub fn constant_i64(&mut self, hint: &str, dims: &[usize], data: &[i64]) -> String {
        let name = self.fresh(hint);
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = DataType::INT64 as i32;
        t.raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(t);
        name
    }

    /// The model: `inputs` and `outputs` are f32 tensors of static shapes.
    pub fn finish(
        self,
        name: &str,
        inputs: &[(&str, &[usize])],
        outputs: &[(&str, &[usize])],
    ) -> ModelProto {
        let fixed = |io: &[(&str, &[usize])]| -> Vec<(String, Vec<Dim<'static>>)> {
            let dims = |d: &[usize]| d.iter().map(|&d| Dim::Fixed(d)).collect();
            io.iter().map(|(n, d)| (n.to_string(), dims(d))).collect()
        };
        self.finish_dims(name, &fixed(inputs), &fixed(outputs))
    }

    /// The model: `inputs` and `outputs` are f32 tensors whose dims may be symbolic.
    pub fn finish_dims(
        self,
        name: &str,
        inputs: &[(String, Vec<Dim<'_>>)],
        outputs: &[(String, Vec<Dim<'_>>)],
    ) -> ModelProto {
        let mut g = GraphProto::new();
        g.name = name.into();
        let self_opset = self.opset;
        g.node = self.nodes;
        g.initializer = self.initializers;
        g.input = inputs.iter().map(|(n, d)| value_info(n, d)).collect();
        g.output = outputs.iter().map(|(n, d)| value_info(n, d)).collect();
        let mut m = ModelProto::new();
        m.ir_version = IR_VERSION;
        m.producer_name = "dbrt-convert".into();
        m.producer_version = env!("CARGO_PKG_VERSION").into();
        let mut opset = OperatorSetIdProto::new();
        opset.domain = String::new();
        opset.version = self_opset;
        m.opset_import = vec![opset];
        m.graph = MessageField::some(g);
        m
    }
}

fn attribute(name: &str, v: Attr) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    match v {
        Attr::Int(i) => {
            a.type_ = AttributeType::INT.into();
            a.i = i;
        }
        Attr::Ints(is) => {
            a.type_ = AttributeType::INTS.into();
            a.ints = is;
        }
        Attr::Float(f) => {
            a.type_ = AttributeType::FLOAT.into();
            a.f = f;
        }
    }
    a
}

/// An f32 tensor's name, type and shape.
fn value_info(name: &str, dims: &[Dim<'_>]) -> ValueInfoProto {
    use tensor_shape_proto::dimension::Value;
    let mut shape = TensorShapeProto::new();
    shape.dim = dims
        .iter()
        .map(|d| {
            let mut dim = tensor_shape_proto::Dimension::new();
            dim.value = Some(match *d {
                Dim::Fixed(d) => Value::DimValue(d as i64),
                Dim::Named(p) => Value::DimParam(p.to_string()),
            });
            dim
        })
        .collect();
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = DataType::FLOAT as i32;
    tensor.shape = MessageField::some(shape);
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = MessageField::some(ty);
    v
}
