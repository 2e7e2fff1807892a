//! What the subcommands share: where the encoder runs (`OffloadArgs`), opening a model and
//! its session, reading JSONL rows, and small helpers.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use dbrt::kernels::Isa;
use dbrt::offload::{BackendChoice, FallbackPolicy, OffloadOptions};
use dbrt::{Model, Session};
use serde_json::{json, Value};

/// Where the encoder runs: dbrt's CPU kernels or an accelerator (see README "NPU offload").
#[derive(Args, Clone)]
pub struct OffloadArgs {
    /// cpu (dbrt's kernels), auto (an accelerator that attaches, else cpu), qnn (Qualcomm's NPU
    /// through onnxruntime's QNN provider), ort-cpu (onnxruntime's CPU provider) or ascend
    /// (Huawei's NPU through AscendCL).
    #[arg(long, default_value = "cpu", value_name = "NAME")]
    pub backend: String,
    /// The directory `dbrt-convert export-onnx` wrote for this model.
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// When a call runs on the CPU instead: always (recorded and logged), not-on-device-error
    /// (a device error fails the call), never (the backend must attach and run every call).
    #[arg(long, default_value = "always", value_name = "WHEN")]
    pub fallback: String,
    /// onnxruntime's shared library (default: $DBRT_ONNXRUNTIME_LIB, then the system's).
    #[arg(long, value_name = "FILE")]
    pub onnxruntime_lib: Option<PathBuf>,
    /// onnxruntime's QNN provider library, next to libQnnHtp.so (default: $DBRT_QNN_EP_LIB).
    #[arg(long, value_name = "FILE")]
    pub qnn_lib: Option<PathBuf>,
    /// AscendCL's library, libascendcl.so, for --backend ascend (default: $DBRT_ASCENDCL_LIB,
    /// then the system's).
    #[arg(long, value_name = "FILE")]
    pub ascendcl_lib: Option<PathBuf>,
    /// The Ascend device id (aclrtSetDevice) for --backend ascend.
    #[arg(long, default_value_t = 0, value_name = "ID")]
    pub ascend_device: i32,
}

impl OffloadArgs {
    pub fn options(&self) -> Result<OffloadOptions, String> {
        Ok(OffloadOptions {
            backend: self
                .backend
                .parse::<BackendChoice>()
                .map_err(|e| e.to_string())?,
            artifacts: self.artifacts.clone(),
            fallback: match self.fallback.as_str() {
                "always" => FallbackPolicy::Always,
                "not-on-device-error" => FallbackPolicy::NotOnDeviceError,
                "never" => FallbackPolicy::Never,
                f => {
                    return Err(format!(
                        "--fallback {f}: always, not-on-device-error or never"
                    ))
                }
            },
            onnxruntime_library: self.onnxruntime_lib.clone(),
            qnn_library: self.qnn_lib.clone(),
            ascendcl_library: self.ascendcl_lib.clone(),
            ascend_device: self.ascend_device,
        })
    }
}

/// Which backend ran the session's last call, and why it fell back if it did.
pub fn backend_record(session: &Session) -> Value {
    json!({
        "backend": session.last_backend().unwrap_or("none"),
        "fallback": session.last_fallback().map(|f| json!({
            "kind": f.kind.as_str(), "message": f.message,
        })),
    })
}

pub fn open(path: &PathBuf, offload: OffloadOptions) -> Result<(Arc<Model>, Session), String> {
    let model = Arc::new(Model::open(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let options = dbrt::SessionOptions {
        offload,
        ..Default::default()
    };
    let session = Session::new(model.clone(), options).map_err(|e| e.to_string())?;
    Ok((model, session))
}

/// The kernel tier named `name` (`--isa`), which this CPU must run.
pub fn parse_isa(name: &str) -> Result<Isa, String> {
    let isa = Isa::parse(name).map_err(|e| format!("--isa {name:?}: {e}"))?;
    if !isa.available() {
        let runs: Vec<&str> = Isa::all_available().iter().map(|i| i.name()).collect();
        return Err(format!(
            "--isa {name}: this CPU does not run it (it runs {})",
            runs.join(", ")
        ));
    }
    Ok(isa)
}

/// Reads JSONL rows, hands each to `f`, writes what it returns.
pub fn map_jsonl(
    data: &PathBuf,
    out: &PathBuf,
    mut f: impl FnMut(usize, Value) -> Result<Value, String>,
) -> Result<usize, String> {
    let input = std::fs::File::open(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let output = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = BufWriter::new(output);
    let mut rows = 0;
    for (n, line) in std::io::BufReader::new(input).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Value = serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        writeln!(w, "{}", f(n + 1, row)?).map_err(|e| e.to_string())?;
        rows += 1;
    }
    w.flush().map_err(|e| e.to_string())?;
    Ok(rows)
}

/// Mean over labels of |p_a - p_b| between the probabilities of two logit vectors.
pub fn mean_abs_dp(a: &[f32], b: &[f32]) -> f64 {
    let (pa, pb) = (dbrt::softmax(a), dbrt::softmax(b));
    pa.iter()
        .zip(&pb)
        .map(|(x, y)| (x - y).abs() as f64)
        .sum::<f64>()
        / pa.len() as f64
}

pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}
