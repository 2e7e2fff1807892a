//! `dbrt-convert export-onnx --target ascend`: the encoder stage as ONE graph with a symbolic
//! sequence dim, `encoder-ascend.onnx` (`hidden [1, seq, H]`, `mask [1, seq]` →
//! `last_hidden [1, seq, H]`), for Huawei's ATC to compile into an offline model with one
//! gear per sequence length (`--dynamic_dims`); the manifest says `target ascend` and lists
//! the gears. The graph computes what the static graphs compute, with the constants made for
//! the longest gear and cut at run time (see `encoder::Length::Dynamic`).
//!
//! Opset 13 and the ops of [`ASCEND_OPS`], because ATC's ONNX parser maps each op per opset
//! version (`ai.onnx::<opset>::<Op>`), and older CANN releases register some ops only up to
//! opset 13: the ONNX parser plugins of the CANN 5.x/6.x era register `GatherElements` for
//! opsets 8–13 (`ops/built-in/framework/onnx_plugin/gather_elements_plugin.cc`), the current
//! ones for 8–18; `LayerNormalization` (an opset-17 op) has a parser only in recent releases
//! (hicann/ops-nn's ONNX plugin registers `ai.onnx::17/18::LayerNormalization`), and is absent
//! from CANN 5.0.4's "supported ONNX operators" list, which has every op used here (MatMul,
//! Add, Sub, Mul, Div, Softmax, Transpose, Reshape, ReduceMean, Sqrt, Erf, Tanh, Relu,
//! GatherElements, Cast, Shape, Slice, Concat). So LayerNorm is spelled out with ReduceMean
//! (whose `axes` is an attribute at opset 13, an input from 18), which ATC's fusion passes
//! may fuse back; opset 13 is in the 9–18 range current ATC takes, and is what a board with
//! an older CANN still parses.
//!
//! ATC takes 2 to 100 gears (`--dynamic_dims`); a gear's dims are, in input order, all the
//! symbolic dims: `seq` of `hidden`, then `seq` of `mask`.

use std::fs;
use std::path::Path;
use std::time::Instant;

use dbrt::offload::manifest::{
    AscendPart, Graph, Manifest, ModelIdentity, Precision, MANIFEST_FILE, MAX_GEARS,
};
use onnx_protobuf::Message;

use super::encoder::{self, Form, Length};
use super::{Pending, DEFAULT_BUCKETS};
use crate::error::{io_err, ConvertError, Result};

/// The one graph's file name in an Ascend export.
pub const ASCEND_GRAPH_FILE: &str = "encoder-ascend.onnx";
/// The offline model's default name: what `atc --output=DIR/encoder` writes (before any
/// suffix ATC adds).
pub const DEFAULT_OM_FILE: &str = "encoder.om";
/// The opset an Ascend graph declares (see the module's doc).
pub const ASCEND_OPSET: i64 = 13;
/// The fewest gears ATC compiles.
pub const MIN_GEARS: usize = 2;

/// The ops an Ascend graph may hold (the exporter's tests check every node against it).
pub const ASCEND_OPS: &[&str] = &[
    "MatMul",
    "Add",
    "Mul",
    "Sub",
    "Div",
    "Softmax",
    "Transpose",
    "Reshape",
    "ReduceMean",
    "Sqrt",
    "Erf",
    "Tanh",
    "Relu",
    "GatherElements",
    "Cast",
    "Shape",
    "Slice",
    "Concat",
];

/// What to export for Ascend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AscendOptions {
    /// The sequence lengths ATC compiles (any order; repeats are one), 2 to 100 of them.
    pub gears: Vec<usize>,
    /// The weights' precision in the graph.
    pub precision: Precision,
}

impl Default for AscendOptions {
    fn default() -> Self {
        AscendOptions {
            gears: DEFAULT_BUCKETS.to_vec(),
            precision: Precision::F32,
        }
    }
}

/// Exports `model`'s encoder into `out_dir` (created if absent) as one dynamic graph for ATC;
/// returns the manifest written (no offline model yet). Written as [`super::export_onnx`]
/// writes: under temporary names, the manifest last.
pub fn export_ascend(model: &Path, out_dir: &Path, options: &AscendOptions) -> Result<Manifest> {
    fs::metadata(model).map_err(io_err(model))?;
    let m = dbrt::Model::open(model).map_err(|e| ConvertError::Parse {
        path: model.to_path_buf(),
        message: format!("not a .dbrt model dbrt opens: {e}"),
    })?;
    let gears = check_gears(&m, options)?;
    let max = *gears.last().expect("checked: at least two gears");
    fs::create_dir_all(out_dir).map_err(|source| ConvertError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let c = m.config();
    let layers = (0..c.num_hidden_layers)
        .map(|l| dbrt::model::export::layer(&m, l))
        .collect::<dbrt::Result<Vec<_>>>()?;
    let t0 = Instant::now();
    let form = Form {
        length: Length::Dynamic { max },
        precision: options.precision,
        opset: ASCEND_OPSET,
        fused_layer_norm: false,
    };
    let proto = encoder::graph(&m, &layers, &form)?;
    let nodes = proto.graph.node.len();
    let bytes = proto.write_to_bytes().map_err(|e| {
        ConvertError::Invalid(format!(
            "the graph of up to {max} tokens does not serialize: {e}"
        ))
    })?;
    drop(proto);
    let mut pending = Pending::default();
    pending.write(out_dir, ASCEND_GRAPH_FILE, &bytes)?;
    log::info!(
        "{ASCEND_GRAPH_FILE}: {:.1} MB, {nodes} nodes, built and written in {:.2} s",
        bytes.len() as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    let manifest = Manifest {
        model: ModelIdentity::of(m.file().header()),
        layers: c.num_hidden_layers,
        hidden_size: c.hidden_size,
        precision: options.precision,
        graphs: vec![Graph {
            bucket: max,
            file: ASCEND_GRAPH_FILE.into(),
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        }],
        ascend: Some(AscendPart { gears, om: None }),
    };
    super::finish(pending, out_dir, manifest)
}

/// The gears sorted and deduplicated, checked against ATC's limits, the model and the size
/// of the graph (made for the longest).
fn check_gears(m: &dbrt::Model, options: &AscendOptions) -> Result<Vec<usize>> {
    let mut gears = options.gears.clone();
    gears.sort_unstable();
    gears.dedup();
    if gears.first() == Some(&0) {
        return Err(ConvertError::Invalid(
            "export-onnx --target ascend: a gear of 0 tokens".into(),
        ));
    }
    if !(MIN_GEARS..=MAX_GEARS).contains(&gears.len()) {
        return Err(ConvertError::Invalid(format!(
            "export-onnx --target ascend: {} distinct gear(s); ATC compiles {MIN_GEARS} to \
             {MAX_GEARS} (--gears)",
            gears.len()
        )));
    }
    const WHO: &str = "export-onnx --target ascend";
    super::fits_model(m, WHO, "gear", &gears)?;
    let max = gears[gears.len() - 1];
    super::fits_file(m, options.precision, max, WHO, "a shorter longest gear")?;
    Ok(gears)
}

/// The `atc` arguments that compile the Ascend export in `dir` (described by `manifest`) for
/// `soc_version`, writing `dir/encoder.om` (ATC may add a suffix to the name).
pub fn atc_args(manifest: &Manifest, dir: &Path, soc_version: &str) -> Result<Vec<String>> {
    let (Some(part), [graph]) = (&manifest.ascend, manifest.graphs.as_slice()) else {
        return Err(ConvertError::Invalid(format!(
            "{}: not an Ascend export (no 'target ascend' and one graph)",
            dir.join(MANIFEST_FILE).display()
        )));
    };
    let h = manifest.hidden_size;
    let dims: Vec<String> = part.gears.iter().map(|g| format!("{g},{g}")).collect();
    let stem = DEFAULT_OM_FILE.trim_end_matches(".om");
    Ok(vec![
        "--framework=5".into(),
        format!("--model={}", dir.join(&graph.file).display()),
        format!("--output={}", dir.join(stem).display()),
        "--input_format=ND".into(),
        format!("--input_shape=hidden:1,-1,{h};mask:1,-1"),
        format!("--dynamic_dims={}", dims.join(";")),
        format!("--soc_version={soc_version}"),
    ])
}

/// [`atc_args`] as one shell command line (values with `;` quoted).
pub fn atc_command(manifest: &Manifest, dir: &Path, soc_version: &str) -> Result<String> {
    let args = atc_args(manifest, dir, soc_version)?;
    let quoted = args.iter().map(|a| match a.split_once('=') {
        Some((k, v)) if v.contains([';', ' ', '<', '>', '|']) => format!("{k}=\"{v}\""),
        _ => a.clone(),
    });
    Ok(std::iter::once("atc".to_string())
        .chain(quoted)
        .collect::<Vec<_>>()
        .join(" "))
}
