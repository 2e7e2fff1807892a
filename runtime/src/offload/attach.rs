//! A session's offload: choosing and attaching its backend (libraries, artifacts, the device
//! model shared through the model's cache), and running each call's encoder on the device or,
//! recorded and logged, on the CPU.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use super::artifacts::{embedded_offline_model, read_graphs, read_manifest, read_offline_model};
use super::ascend::backend::{AscendModel, AttachError};
use super::ascend::library as ascend_library;
use super::device::{Accelerator, DeviceModel, Engine, Message, RunFailure};
use super::manifest::OM_TENSOR;
use super::ort::backend::{attach_runtime, CompileError, Libraries, OrtModel, Provider};
use super::{BackendChoice, Fallback, FallbackKind, FallbackPolicy, OffloadOptions};
use crate::error::{Error, Result};
use crate::model::stage::{EncoderStage, ForwardPass, Rows};
use crate::model::Model;

/// Which device model a cache entry is: backend, artifact directory (`None`: the offline
/// model inside the `.dbrt` file), threads, device.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    backend: &'static str,
    dir: Option<PathBuf>,
    threads: usize,
    device: i32,
}

/// The device models attached to one model, shared by its sessions while any holds them.
#[derive(Default)]
pub struct DeviceCache(Mutex<Vec<(Key, Weak<DeviceModel>)>>);

/// What attaches a backend: onnxruntime with a provider, or AscendCL.
enum Attacher {
    Ort(Provider),
    Ascend,
}

fn attacher(backend: &'static str) -> Option<Attacher> {
    match backend {
        "qnn" => Some(Attacher::Ort(Provider::Qnn)),
        "ort-cpu" => Some(Attacher::Ort(Provider::Cpu)),
        "ascend" => Some(Attacher::Ascend),
        _ => None,
    }
}

/// The accelerators `auto` tries, in order.
const AUTO: [&str; 2] = ["qnn", "ascend"];

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
        BackendChoice::Named(n) => match attacher(n) {
            None => Ok(()),
            Some(Attacher::Ort(p)) => attach_runtime(p, &libraries(options)).map(|_| ()),
            Some(Attacher::Ascend) => {
                ascend_library::library(options.ascendcl_library.as_deref()).map(|_| ())
            }
        },
    }
}

/// A device-model attach failure: the fallback kind it counts as, and the error.
type AttachFailure = (FallbackKind, Error);

/// The cached device model of `key`, or the one `make` builds (then cached).
fn cached(
    model: &Model,
    key: Key,
    make: impl FnOnce() -> std::result::Result<DeviceModel, AttachFailure>,
) -> std::result::Result<Arc<DeviceModel>, AttachFailure> {
    let mut cache = model.devices.0.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|(_, w)| w.strong_count() > 0);
    if let Some(m) = cache
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(m);
    }
    let m = Arc::new(make()?);
    cache.push((key, Arc::downgrade(&m)));
    Ok(m)
}

fn canonical(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
}

/// Attaches `backend` for `model`: the cached device model, or one compiled from the artifacts.
fn device_model(
    model: &Model,
    backend: &'static str,
    options: &OffloadOptions,
    threads: usize,
) -> std::result::Result<Arc<DeviceModel>, AttachFailure> {
    let unavailable = |reason: String| {
        let e = Error::BackendUnavailable { backend, reason };
        (FallbackKind::BackendUnavailable, e)
    };
    let invalid = |e: Error| (FallbackKind::InvalidArtifacts, e);
    let p = match attacher(backend) {
        None => return Err(unavailable("not an accelerator".into())),
        Some(Attacher::Ascend) => return ascend_device_model(model, options),
        Some(Attacher::Ort(p)) => p,
    };
    let (rt, device) = attach_runtime(p, &libraries(options)).map_err(unavailable)?;
    let dir = options.artifacts.as_deref().ok_or_else(|| {
        invalid(Error::InvalidArtifacts(
            "no artifact directory given".into(),
        ))
    })?;
    let key = Key {
        backend,
        dir: Some(canonical(dir)),
        threads,
        device: 0,
    };
    cached(model, key, || {
        let manifest = read_manifest(model, dir).map_err(invalid)?;
        if manifest.ascend.is_some() {
            return Err(invalid(Error::InvalidArtifacts(format!(
                "{} holds an Ascend export (one dynamic graph for ATC); {backend} needs one \
                 graph per bucket: export without --target ascend",
                dir.display()
            ))));
        }
        let graphs = read_graphs(&manifest, dir).map_err(invalid)?;
        let ort = OrtModel::new(rt, device.as_ref(), &graphs, manifest.hidden_size, threads)
            .map_err(|e| match e {
                CompileError::Backend(reason) => unavailable(reason),
                CompileError::Graph(e) => invalid(Error::InvalidArtifacts(format!(
                    "{backend} cannot load them: {e}"
                ))),
            })?;
        Ok(DeviceModel {
            backend,
            buckets: manifest.graphs.iter().map(|g| g.bucket).collect(),
            hidden_size: manifest.hidden_size,
            engine: Engine::Ort(ort),
        })
    })
}

/// The `ascend` device model: AscendCL, the offline model (from the artifact directory, else
/// the `.dbrt` file's `ascend.om`), the device's context and weight memory.
fn ascend_device_model(
    model: &Model,
    options: &OffloadOptions,
) -> std::result::Result<Arc<DeviceModel>, AttachFailure> {
    let backend = "ascend";
    let unavailable = |reason: String| {
        let e = Error::BackendUnavailable { backend, reason };
        (FallbackKind::BackendUnavailable, e)
    };
    let invalid = |e: Error| (FallbackKind::InvalidArtifacts, e);
    let lib = ascend_library::library(options.ascendcl_library.as_deref()).map_err(unavailable)?;
    let key = Key {
        backend,
        dir: options.artifacts.as_deref().map(canonical),
        threads: 0,
        device: options.ascend_device,
    };
    cached(model, key, || {
        // Read (and its CRC checked) once per device model.
        let mut embedded: &[u8] = &[];
        let (gears, owned) = match options.artifacts.as_deref() {
            Some(dir) => {
                let (gears, om) = read_offline_model(model, dir).map_err(invalid)?;
                (gears, Some(om))
            }
            None => {
                let (gears, om) = embedded_offline_model(model).map_err(invalid)?;
                embedded = om;
                (gears, None)
            }
        };
        let om = owned.as_deref().unwrap_or(embedded);
        let h = model.config().hidden_size;
        let m = AscendModel::new(lib, options.ascend_device, om, gears.clone(), h).map_err(
            |e| match e {
                AttachError::Unavailable(reason) => unavailable(reason),
                AttachError::Invalid(why) => invalid(Error::InvalidArtifacts(format!(
                    "{backend} cannot use the offline model: {why}"
                ))),
            },
        )?;
        Ok(DeviceModel {
            backend,
            buckets: gears,
            hidden_size: h,
            engine: Engine::Ascend(m, owned),
        })
    })
}

/// Attaches `backend` for one session: the device model, then the session's state on it.
fn attach(
    model: &Model,
    backend: &'static str,
    options: &OffloadOptions,
    threads: usize,
) -> std::result::Result<Accelerator, AttachFailure> {
    let m = device_model(model, backend, options, threads)?;
    // The device model checked the embedded offline model when it was built; the mapped file
    // does not change under it.
    let om = match (&m.engine, options.artifacts.is_none()) {
        (Engine::Ascend(..), true) => model.file().get(OM_TENSOR).map(|t| t.bytes),
        _ => None,
    };
    Accelerator::new(m, om)
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
        let (candidates, may_fall_back): (&[&'static str], bool) = match &options.backend {
            BackendChoice::Cpu | BackendChoice::Named("cpu") => return Ok(o),
            BackendChoice::Auto => (&AUTO, true),
            BackendChoice::Named(n) => (
                std::slice::from_ref(n),
                options.fallback != FallbackPolicy::Never,
            ),
        };
        let mut failures: Vec<(&str, AttachFailure)> = Vec::new();
        for &backend in candidates {
            match attach(model, backend, options, threads) {
                Ok(a) => {
                    log::info!(
                        "encoder offloaded to {backend} (buckets {:?})",
                        a.model.buckets
                    );
                    o.backend = backend;
                    o.accel = Some(a);
                    return Ok(o);
                }
                Err(f) => failures.push((backend, f)),
            }
        }
        if !may_fall_back {
            if let Some((_, (_, e))) = failures.pop() {
                return Err(e);
            }
        }
        // `auto` on a machine without an NPU is expected to land on the CPU.
        let level = match options.backend {
            BackendChoice::Auto => log::Level::Info,
            _ => log::Level::Warn,
        };
        let mut kind = FallbackKind::BackendUnavailable;
        o.message.set(format_args!(""));
        for (i, (backend, (k, e))) in failures.iter().enumerate() {
            log::log!(
                level,
                "backend {backend} did not attach, running on the CPU: {e}"
            );
            let sep = if i == 0 { "" } else { "; " };
            let _ = std::fmt::Write::write_fmt(&mut o.message, format_args!("{sep}{backend}: {e}"));
            kind = *k;
        }
        o.attach_failure = Some(kind);
        o.fallback = Some(kind);
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
