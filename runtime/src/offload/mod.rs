//! Offloading the encoder stage to an accelerator (an NPU through its vendor's runtime).
//!
//! The embeddings and the head stay on the CPU; the encoder stack runs as static-shape graphs,
//! one per sequence-length bucket, exported by `dbrt-convert export-onnx` next to a
//! [`manifest::Manifest`] that ties them to the `.dbrt` they came from. A session chooses a
//! backend ([`OffloadOptions::backend`]); when the backend cannot run a call the session runs
//! it on the CPU and records why ([`Fallback`]): never silently.

mod artifacts;
// AscendCL's backend, or (without the `ascend` feature) a stand-in where none attaches.
#[cfg(feature = "ascend")]
mod ascend;
#[cfg(not(feature = "ascend"))]
#[path = "ascend_stub.rs"]
mod ascend;
mod attach;
mod device;
#[cfg(any(feature = "onnxruntime", feature = "ascend"))]
mod dl;
pub mod manifest;
// onnxruntime's backends, or (without the `onnxruntime` feature) a stand-in where none attaches.
#[cfg(feature = "onnxruntime")]
mod ort;
#[cfg(not(feature = "onnxruntime"))]
#[path = "ort_stub.rs"]
mod ort;

pub use ascend::library::ASCENDCL_LIB_ENV;
pub use attach::backend_available;
pub(crate) use attach::{DeviceCache, Offload};
pub use ort::library::{ONNXRUNTIME_LIB_ENV, QNN_EP_LIB_ENV};

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The backends a session can name, besides `auto`: dbrt's own CPU encoder, Qualcomm's NPU
/// through onnxruntime's QNN execution provider (HTP backend), onnxruntime's CPU provider (a
/// reference backend, for checking exported graphs), and Huawei's Ascend NPU through
/// AscendCL (an ATC-compiled offline model).
pub const BACKENDS: &[&str] = &["cpu", "qnn", "ort-cpu", "ascend"];

/// Which encoder a session runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// dbrt's CPU encoder (the default).
    #[default]
    Cpu,
    /// The first accelerator that attaches (`qnn`, then `ascend`), else the CPU (whatever the
    /// [`FallbackPolicy`]: landing on the CPU is what `auto` means; it is still recorded).
    Auto,
    /// One backend by name (one of [`BACKENDS`]).
    Named(&'static str),
}

impl FromStr for BackendChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<BackendChoice> {
        match s {
            "cpu" => Ok(BackendChoice::Cpu),
            "auto" => Ok(BackendChoice::Auto),
            _ => BACKENDS
                .iter()
                .find(|&&b| b == s)
                .map(|&b| BackendChoice::Named(b))
                .ok_or_else(|| Error::UnknownBackend(s.chars().take(64).collect())),
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendChoice::Cpu => "cpu",
            BackendChoice::Auto => "auto",
            BackendChoice::Named(n) => n,
        })
    }
}

/// When a session whose backend is an accelerator runs a call on the CPU instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FallbackPolicy {
    /// For every reason in [`FallbackKind`] (the default): logged and recorded.
    #[default]
    Always,
    /// As `Always`, except that an error of the device during a run is returned
    /// ([`Error::Device`]) rather than recomputed on the CPU.
    NotOnDeviceError,
    /// Never: a backend that cannot attach fails [`crate::Session::new`], and an input longer
    /// than the largest bucket or a device error fails the call.
    Never,
}

/// How a session offloads its encoder.
#[derive(Debug, Clone, Default)]
pub struct OffloadOptions {
    /// The backend; `cpu` by default.
    pub backend: BackendChoice,
    /// The directory `dbrt-convert export-onnx` wrote (its `manifest.txt` and graphs).
    pub artifacts: Option<PathBuf>,
    pub fallback: FallbackPolicy,
    /// onnxruntime's shared library (`libonnxruntime.so*`); `None` means the environment
    /// variable `DBRT_ONNXRUNTIME_LIB`, then the system's search path.
    pub onnxruntime_library: Option<PathBuf>,
    /// The QNN execution provider's library (`libonnxruntime_providers_qnn.so`, next to
    /// `libQnnHtp.so`); `None` means `DBRT_QNN_EP_LIB`.
    pub qnn_library: Option<PathBuf>,
    /// AscendCL's library (`libascendcl.so`); `None` means the environment variable
    /// `DBRT_ASCENDCL_LIB`, then the system's search path.
    pub ascendcl_library: Option<PathBuf>,
    /// The Ascend device (`aclrtSetDevice`'s id); 0 by default.
    pub ascend_device: i32,
}

/// Why a call ran on the CPU instead of the session's backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackKind {
    /// The backend's libraries are absent or do not load, or it has no device.
    BackendUnavailable,
    /// The artifacts are missing, corrupt, or exported from another model.
    InvalidArtifacts,
    /// The input is longer than the largest bucket.
    TooLong,
    /// The device failed during the run.
    DeviceError,
}

impl FallbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackKind::BackendUnavailable => "backend unavailable",
            FallbackKind::InvalidArtifacts => "invalid artifacts",
            FallbackKind::TooLong => "input longer than the largest bucket",
            FallbackKind::DeviceError => "device error",
        }
    }
}

/// A recorded fallback: its kind and a message saying what exactly went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback<'a> {
    pub kind: FallbackKind,
    pub message: &'a str,
}

impl fmt::Display for Fallback<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}
