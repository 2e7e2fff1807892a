//! A session's offload: choosing and attaching its backend (libraries, artifacts, the device
//! model shared through the model's cache), and running each call's encoder on the device or,
//! recorded and logged, on the CPU.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use super::device::{Accelerator, DeviceModel, Message, RunFailure};
use super::manifest::{Manifest, MANIFEST_FILE, MAX_MANIFEST_BYTES};
use super::ort::backend::{attach_runtime, CompileError, Libraries, OrtModel, Provider};
use super::{BackendChoice, Fallback, FallbackKind, FallbackPolicy, OffloadOptions};
use crate::error::{Error, Result};
use crate::model::stage::{EncoderStage, ForwardPass, Rows};
use crate::model::Model;

/// Which device model a cache entry is: backend, artifact directory, threads.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    backend: &'static str,
    dir: PathBuf,
    threads: usize,
}

/// The device models attached to one model, shared by its sessions while any holds them.
#[derive(Default)]
pub struct DeviceCache(Mutex<Vec<(Key, Weak<DeviceModel>)>>);

fn provider(backend: &'static str) -> Option<Provider> {
    match backend {
        "qnn" => Some(Provider::Qnn),
        "ort-cpu" => Some(Provider::Cpu),
        _ => None,
    }
}

fn libraries(options: &OffloadOptions) -> Libraries<'_> {
    Libraries {
        onnxruntime: options.onnxruntime_library.as_deref(),
        qnn: options.qnn_library.as_deref(),
    }
}

/// Whether backend `name` can attach (its libraries load and it has a device): why not, in
/// the error. `cpu` and `auto` always can (`auto` falls back to the CPU).
pub fn backend_available(name: &str, options: &OffloadOptions) -> std::result::Result<(), String> {
    match name.parse::<BackendChoice>().map_err(|e| e.to_string())? {
        BackendChoice::Cpu | BackendChoice::Auto => Ok(()),
        BackendChoice::Named(n) => match provider(n) {
            None => Ok(()),
            Some(p) => attach_runtime(p, &libraries(options)).map(|_| ()),
        },
    }
}

/// Attaches `backend` for `model`: the cached device model, or one compiled from the artifacts.
fn device_model(
    model: &Model,
    backend: &'static str,
    options: &OffloadOptions,
    threads: usize,
) -> std::result::Result<Arc<DeviceModel>, (FallbackKind, Error)> {
    let unavailable = |reason: String| {
        let e = Error::BackendUnavailable { backend, reason };
        (FallbackKind::BackendUnavailable, e)
    };
    let invalid = |e: Error| (FallbackKind::InvalidArtifacts, e);
    let p = provider(backend).ok_or_else(|| unavailable("not an accelerator".into()))?;
    let (rt, device) = attach_runtime(p, &libraries(options)).map_err(unavailable)?;
    let dir = options.artifacts.as_deref().ok_or_else(|| {
        invalid(Error::InvalidArtifacts(
            "no artifact directory given".into(),
        ))
    })?;
    let key = Key {
        backend,
        dir: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
        threads,
    };
    let mut cache = model.devices.0.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|(_, w)| w.strong_count() > 0);
    if let Some(m) = cache
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(m);
    }
    let (manifest, graphs) = read_artifacts(model, dir).map_err(invalid)?;
    let ort = OrtModel::new(rt, device.as_ref(), &graphs, manifest.hidden_size, threads).map_err(
        |e| match e {
            CompileError::Backend(reason) => unavailable(reason),
            CompileError::Graph(e) => invalid(Error::InvalidArtifacts(format!(
                "{backend} cannot load them: {e}"
            ))),
        },
    )?;
    let m = Arc::new(DeviceModel {
        backend,
        buckets: manifest.graphs.iter().map(|g| g.bucket).collect(),
        hidden_size: manifest.hidden_size,
        ort,
    });
    cache.push((key, Arc::downgrade(&m)));
    Ok(m)
}

/// Reads at most `limit` bytes of `path` (more is an error).
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    // Reserved up front, fallibly: a graph of a few hundred MB on a small device is an error,
    // not an abort.
    bytes
        .try_reserve_exact(limit as usize + 1)
        .map_err(|_| Error::OutOfMemory {
            what: "an encoder graph read from the artifacts",
            bytes: limit + 1,
        })?;
    File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(Error::InvalidArtifacts(format!(
            "{} is longer than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Each bucket's graph bytes.
type Graphs = Vec<(usize, Vec<u8>)>;

/// The manifest of `dir`, checked against `model`, and each graph's bytes, checked against it.
fn read_artifacts(model: &Model, dir: &Path) -> Result<(Manifest, Graphs)> {
    let path = dir.join(MANIFEST_FILE);
    if !path.is_file() {
        return Err(Error::InvalidArtifacts(format!(
            "no {MANIFEST_FILE} in {} (not an export, or an incomplete one)",
            dir.display()
        )));
    }
    let text = read_bounded(&path, MAX_MANIFEST_BYTES)?;
    let text = std::str::from_utf8(&text)
        .map_err(|_| Error::InvalidArtifacts(format!("{MANIFEST_FILE} is not UTF-8")))?;
    let manifest = Manifest::parse(text)?;
    manifest.check_model(model.file().header())?;
    let c = model.config();
    if (manifest.layers, manifest.hidden_size) != (c.num_hidden_layers, c.hidden_size) {
        return Err(Error::InvalidArtifacts(format!(
            "{} layers of {} in the manifest, the model has {} of {}",
            manifest.layers, manifest.hidden_size, c.num_hidden_layers, c.hidden_size
        )));
    }
    let mut graphs = Vec::with_capacity(manifest.graphs.len());
    for g in &manifest.graphs {
        if g.bucket > model.max_sequence_length() {
            return Err(Error::InvalidArtifacts(format!(
                "bucket {} exceeds the model's {} positions",
                g.bucket,
                model.max_sequence_length()
            )));
        }
        let path = dir.join(&g.file);
        let len = path.metadata().map(|m| m.len()).unwrap_or(0);
        if len != g.bytes {
            return Err(Error::InvalidArtifacts(format!(
                "{} has {len} bytes, the manifest says {}",
                g.file, g.bytes
            )));
        }
        let bytes = read_bounded(&path, g.bytes)?;
        let crc = crc32fast::hash(&bytes);
        if bytes.len() as u64 != g.bytes || crc != g.crc32 {
            return Err(Error::InvalidArtifacts(format!(
                "{} is corrupt: CRC-32 {crc:08x}, the manifest says {:08x}",
                g.file, g.crc32
            )));
        }
        graphs.push((g.bucket, bytes));
    }
    Ok((manifest, graphs))
}

/// A session's offload state: its accelerator if one attached, its policy, which backend ran
/// the last call and why it fell back (in a buffer reserved at creation).
pub struct Offload {
    backend: &'static str,
    policy: FallbackPolicy,
    accel: Option<Accelerator>,
    last: Option<&'static str>,
    fallback: Option<FallbackKind>,
    /// Why the backend did not attach: every call runs on the CPU for that reason.
    attach_failure: Option<FallbackKind>,
    message: Message,
}

impl Offload {
    /// Attaches the backend `options` choose; attach problems fall back to the CPU (recorded,
    /// logged) unless the policy is `Never`, where they are the error.
    pub fn new(model: &Model, options: &OffloadOptions, threads: usize) -> Result<Offload> {
        let mut o = Offload {
            backend: "cpu",
            policy: options.fallback,
            accel: None,
            last: None,
            fallback: None,
            attach_failure: None,
            message: Message::default(),
        };
        let (backend, may_fall_back) = match options.backend {
            BackendChoice::Cpu | BackendChoice::Named("cpu") => return Ok(o),
            BackendChoice::Auto => ("qnn", true),
            BackendChoice::Named(n) => (n, options.fallback != FallbackPolicy::Never),
        };
        let attached = device_model(model, backend, options, threads)
            .and_then(|m| Accelerator::new(m).map_err(|e| (FallbackKind::BackendUnavailable, e)));
        match attached {
            Ok(a) => {
                log::info!(
                    "encoder offloaded to {backend} (buckets {:?})",
                    a.model.buckets
                );
                o.backend = backend;
                o.accel = Some(a);
            }
            Err((_, e)) if !may_fall_back => return Err(e),
            Err((kind, e)) => {
                // `auto` on a machine without the NPU is expected to land on the CPU.
                let level = match options.backend {
                    BackendChoice::Auto => log::Level::Info,
                    _ => log::Level::Warn,
                };
                log::log!(
                    level,
                    "backend {backend} did not attach, running on the CPU: {e}"
                );
                o.message.set(format_args!("{backend}: {e}"));
                o.attach_failure = Some(kind);
                o.fallback = Some(kind);
            }
        }
        Ok(o)
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    pub fn last_backend(&self) -> Option<&'static str> {
        self.last
    }

    /// The accelerator as an encoder stage, if one is attached.
    pub fn stage(&mut self) -> Option<&mut dyn EncoderStage> {
        self.accel.as_mut().map(|a| a as &mut dyn EncoderStage)
    }

    /// Whether both use one device model (the same compiled graphs).
    pub fn shares_device_with(&self, other: &Offload) -> bool {
        match (&self.accel, &other.accel) {
            (Some(a), Some(b)) => Arc::ptr_eq(&a.model, &b.model),
            _ => false,
        }
    }

    pub fn last_fallback(&self) -> Option<Fallback<'_>> {
        self.fallback.map(|kind| Fallback {
            kind,
            message: self.message.as_str(),
        })
    }

    /// The embeddings of `ids`, then the encoder on the device, or on the CPU when there is
    /// none or when it cannot run this call (per the policy). Allocates nothing unless it
    /// returns an error.
    pub(crate) fn encode(
        &mut self,
        pass: &mut ForwardPass<'_>,
        ids: &[u32],
        types: Option<&[u32]>,
        rows: Rows,
    ) -> Result<()> {
        pass.embed(ids, types);
        let Some(accel) = self.accel.as_mut() else {
            self.last = Some("cpu");
            return pass.encode(rows);
        };
        self.fallback = self.attach_failure;
        let (hidden, _, _) = pass.cpu_encoder();
        let failure = match accel.run_tokens(hidden, ids.len(), rows) {
            Ok(()) => {
                self.last = Some(accel.model.backend);
                return Ok(());
            }
            Err(f) => f,
        };
        let kind = match failure {
            RunFailure::TooLong if self.policy == FallbackPolicy::Never => {
                return Err(Error::InputTooLong {
                    len: ids.len(),
                    max: accel.model.largest_bucket(),
                })
            }
            RunFailure::Device if self.policy != FallbackPolicy::Always => {
                return Err(Error::Device {
                    backend: accel.model.backend,
                    message: accel.message.as_str().to_owned(),
                })
            }
            RunFailure::TooLong => FallbackKind::TooLong,
            RunFailure::Device => FallbackKind::DeviceError,
        };
        log::warn!(
            "{} ran this call on the CPU ({}): {}",
            accel.model.backend,
            kind.as_str(),
            accel.message.as_str()
        );
        self.message.set(format_args!("{}", accel.message.as_str()));
        self.fallback = Some(kind);
        self.last = Some("cpu");
        // The device may have left the hidden states half written: from the embeddings again.
        pass.embed(ids, types);
        pass.encode(rows)
    }
}
