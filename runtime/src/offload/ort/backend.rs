//! The backends through onnxruntime: `qnn` (the QNN execution provider's HTP device) and
//! `ort-cpu` (onnxruntime's CPU provider, the reference). A [`OrtModel`] holds one onnxruntime
//! session per bucket, shared by dbrt sessions; an [`OrtState`] holds one dbrt session's
//! buffers and the tensors wrapped over them, made once.

use std::ffi::{c_char, CString};
use std::path::Path;

use super::api::{Api, OrtMemoryInfo, OrtSession, OrtValue, ELEMENT_FLOAT};
use super::library::{self, Runtime};
use crate::offload::device::Message;

/// Which provider an [`OrtModel`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Qnn,
    Cpu,
}

/// Library paths a provider is loaded from (the session's options).
pub struct Libraries<'a> {
    pub onnxruntime: Option<&'a Path>,
    pub qnn: Option<&'a Path>,
}

/// Loads onnxruntime (and registers QNN's provider for `Qnn`) and finds the device: why not,
/// in the error.
pub fn attach_runtime(
    provider: Provider,
    libs: &Libraries<'_>,
) -> Result<(&'static Runtime, Option<Device>), String> {
    let rt = library::runtime(libs.onnxruntime)?;
    match provider {
        Provider::Cpu => Ok((rt, None)),
        Provider::Qnn => {
            library::register_qnn(rt, libs.qnn)?;
            let device = library::qnn_device(rt)?;
            let htp = library::qnn_path(libs.qnn)?
                .parent()
                .map(|d| d.join("libQnnHtp.so"))
                .ok_or("the QNN provider library's path has no directory")?;
            if !htp.is_file() {
                return Err(format!(
                    "no libQnnHtp.so next to the provider: {}",
                    htp.display()
                ));
            }
            Ok((rt, Some(Device { device, htp })))
        }
    }
}

/// The QNN provider's device and its HTP backend library.
pub struct Device {
    device: *const super::api::OrtEpDevice,
    htp: std::path::PathBuf,
}

/// The graphs of one artifact directory, compiled for one provider: one onnxruntime session
/// per bucket (ascending).
pub struct OrtModel {
    rt: &'static Runtime,
    sessions: Vec<(usize, *mut OrtSession)>,
    hidden_size: usize,
}

// SAFETY: onnxruntime's `Run` is thread-safe on one session (its documented contract), and the
// sessions are only released in Drop, when no dbrt session holds the model any more.
unsafe impl Send for OrtModel {}
// SAFETY: as for Send: shared use is concurrent `Run` calls.
unsafe impl Sync for OrtModel {}

impl Drop for OrtModel {
    fn drop(&mut self) {
        for &(_, s) in &self.sessions {
            self.rt.api.release_session(s);
        }
    }
}

/// Frees session options however creating the session ends.
struct Options<'a>(&'a Runtime, *mut super::api::OrtSessionOptions);

impl Drop for Options<'_> {
    fn drop(&mut self) {
        self.0.api.release_session_options(self.1);
    }
}

impl OrtModel {
    /// Compiles each `(bucket, graph bytes)` for the provider; a graph the provider cannot
    /// take whole (with CPU fallback disabled for QNN) is an error naming its bucket.
    pub fn new(
        rt: &'static Runtime,
        device: Option<&Device>,
        graphs: &[(usize, Vec<u8>)],
        hidden_size: usize,
        threads: usize,
    ) -> Result<OrtModel, CompileError> {
        let mut model = OrtModel {
            rt,
            sessions: Vec::with_capacity(graphs.len()),
            hidden_size,
        };
        for (bucket, bytes) in graphs {
            let started = std::time::Instant::now();
            let options = session_options(rt, device, threads).map_err(CompileError::Backend)?;
            let api = &rt.api;
            let graph = |e| CompileError::Graph(format!("bucket {bucket}: {e}"));
            let session = api
                .create_session_from_array(rt.env, bytes, options.1)
                .map_err(graph)?;
            model.sessions.push((*bucket, session));
            check_interface(api, session, *bucket, hidden_size).map_err(graph)?;
            log::info!(
                "compiled the {bucket}-token graph in {:.2} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(model)
    }

    pub fn buckets(&self) -> impl Iterator<Item = usize> + '_ {
        self.sessions.iter().map(|&(b, _)| b)
    }
}

/// Why graphs did not compile: the provider could not be set up, or a graph is refused.
#[derive(Debug)]
pub enum CompileError {
    Backend(String),
    Graph(String),
}

/// Session options for the provider: `threads` intra-op threads, and for QNN its HTP device
/// with every node on it.
fn session_options<'a>(
    rt: &'a Runtime,
    device: Option<&Device>,
    threads: usize,
) -> Result<Options<'a>, String> {
    let api = &rt.api;
    let options = Options(rt, api.create_session_options()?);
    api.set_intra_op_threads(options.1, threads)?;
    if let Some(d) = device {
        // Every node on the HTP, or no session: a graph half on the CPU is not offload.
        api.add_config_entry(options.1, c"session.disable_cpu_ep_fallback", c"1")?;
        let htp = CString::new(d.htp.as_os_str().as_encoded_bytes())
            .map_err(|_| "the HTP library's path holds a NUL byte".to_string())?;
        let mut keys: Vec<*const c_char> = vec![
            c"backend_path".as_ptr(),
            c"enable_htp_fp16_precision".as_ptr(),
        ];
        let mut values: Vec<*const c_char> = vec![htp.as_ptr(), c"1".as_ptr()];
        // On x86_64 the HTP is Qualcomm's emulator, which cannot detect a chip: fp16 needs one
        // named (a phone's is detected).
        if cfg!(target_arch = "x86_64") {
            keys.extend([c"soc_model".as_ptr(), c"htp_arch".as_ptr()]);
            values.extend([c"60".as_ptr(), c"75".as_ptr()]);
        }
        api.append_execution_provider_v2(options.1, rt.env, d.device, &keys, &values)?;
    }
    Ok(options)
}

/// Refuses a graph whose interface is not `hidden [1, S, H]`, `mask [1, S]` (f32) →
/// `last_hidden [1, S, H]` for bucket `S`: it would fail every run.
fn check_interface(api: &Api, session: *mut OrtSession, s: usize, h: usize) -> Result<(), String> {
    let (inputs, outputs) = api.session_io_counts(session)?;
    if (inputs, outputs) != (2, 1) {
        return Err(format!(
            "{inputs} inputs and {outputs} outputs (hidden, mask -> last_hidden expected)"
        ));
    }
    let (s, h) = (s as i64, h as i64);
    let want = |name: &str| match name {
        "hidden" | "last_hidden" => Some(vec![1, s, h]),
        "mask" => Some(vec![1, s]),
        _ => None,
    };
    let mut names = Vec::with_capacity(3);
    for (output, index) in [(false, 0), (false, 1), (true, 0)] {
        let io = api.session_io(session, output, index)?;
        let dims = want(&io.name).filter(|_| (io.name == "last_hidden") == output);
        match dims {
            Some(d) if d == io.dims && io.element == ELEMENT_FLOAT => names.push(io.name),
            Some(d) => {
                return Err(format!(
                    "'{}' is {:?} of element type {}, expected {d:?} of f32",
                    io.name, io.dims, io.element
                ))
            }
            None => {
                return Err(format!(
                    "unexpected {} '{}'",
                    ["input", "output"][output as usize],
                    io.name
                ))
            }
        }
    }
    if names[0] == names[1] {
        return Err(format!("two inputs named '{}'", names[0]));
    }
    Ok(())
}

/// One dbrt session's device state: input, mask and output buffers for the largest bucket,
/// and for each bucket the three tensors over their first `bucket` rows.
pub struct OrtState {
    hidden: Vec<f32>,
    mask: Vec<f32>,
    out: Vec<f32>,
    /// Per bucket of the model, in its order: (hidden, mask, out).
    values: Vec<[*mut OrtValue; 3]>,
    info: *mut OrtMemoryInfo,
    rt: &'static Runtime,
}

// SAFETY: the tensors point into this state's own buffers and are used only through `&mut
// self`; moving the state does not move the buffers' heap memory.
unsafe impl Send for OrtState {}

impl Drop for OrtState {
    fn drop(&mut self) {
        for v in self.values.iter().flatten() {
            self.rt.api.release_value(*v);
        }
        self.rt.api.release_memory_info(self.info);
    }
}

const INPUTS: [&std::ffi::CStr; 2] = [c"hidden", c"mask"];
const OUTPUTS: [&std::ffi::CStr; 1] = [c"last_hidden"];

impl OrtState {
    pub fn new(model: &OrtModel) -> Result<OrtState, String> {
        let h = model.hidden_size;
        let largest = model.buckets().max().unwrap_or(0);
        let rt = model.rt;
        let mut state = OrtState {
            hidden: vec![0.0; largest * h],
            mask: vec![0.0; largest],
            out: vec![0.0; largest * h],
            values: Vec::with_capacity(model.sessions.len()),
            info: rt.api.create_cpu_memory_info()?,
            rt,
        };
        let (hp, mp, op) = (
            state.hidden.as_mut_ptr(),
            state.mask.as_mut_ptr(),
            state.out.as_mut_ptr(),
        );
        let api = &rt.api;
        for bucket in model.buckets() {
            let (s, hs) = (bucket as i64, h as i64);
            // Pushed first so that Drop releases whatever was made if a later call fails.
            state.values.push([std::ptr::null_mut(); 3]);
            let v = state.values.last_mut().ok_or("no slot")?;
            // SAFETY: the buffers (for this and the next two tensors) are the state's own, at
            // least `bucket` rows long, never reallocated, and read or written only by `run`,
            // through `&mut self`; the tensors are released before the buffers (Drop).
            v[0] = unsafe { api.create_f32_tensor(state.info, hp, bucket * h, &[1, s, hs]) }?;
            // SAFETY: as above.
            v[1] = unsafe { api.create_f32_tensor(state.info, mp, bucket, &[1, s]) }?;
            // SAFETY: as above.
            v[2] = unsafe { api.create_f32_tensor(state.info, op, bucket * h, &[1, s, hs]) }?;
        }
        Ok(state)
    }

    /// Runs bucket `index` (of the model's) over the first `tokens` rows of `hidden`, into
    /// `hidden`'s first `rows` rows. A device error's message goes to `message`.
    pub fn run(
        &mut self,
        model: &OrtModel,
        index: usize,
        hidden: &mut [f32],
        tokens: usize,
        rows: usize,
        message: &mut Message,
    ) -> Result<(), ()> {
        let h = model.hidden_size;
        let Some(&(bucket, session)) = model.sessions.get(index) else {
            message.set(format_args!("no bucket {index}"));
            return Err(());
        };
        let n = tokens * h;
        self.hidden[..n].copy_from_slice(&hidden[..n]);
        self.hidden[n..bucket * h].fill(0.0);
        self.mask[..tokens].fill(1.0);
        self.mask[tokens..bucket].fill(0.0);
        let [hv, mv, ov] = self.values[index];
        let input_names = INPUTS.map(|c| c.as_ptr());
        let output_names = OUTPUTS.map(|c| c.as_ptr());
        let mut outputs = [ov];
        // SAFETY: a live session of `model` and this state's tensors for that bucket, whose
        // buffers nothing else touches during the call (`&mut self`).
        let status = unsafe {
            self.rt.api.run(
                session,
                &input_names,
                &[hv.cast_const(), mv.cast_const()],
                &output_names,
                &mut outputs,
            )
        };
        match status {
            Ok(s) if s.is_null() => {}
            Ok(s) => {
                self.rt
                    .api
                    .take_message(s, |m| message.set(format_args!("{m}")));
                return Err(());
            }
            Err(e) => {
                message.set(format_args!("{e}"));
                return Err(());
            }
        }
        // onnxruntime may have replaced a pre-allocated output it could not write into.
        if outputs[0] != ov {
            if !outputs[0].is_null() {
                self.rt.api.release_value(outputs[0]);
            }
            message.set(format_args!(
                "onnxruntime did not write the pre-allocated output"
            ));
            return Err(());
        }
        hidden[..rows * h].copy_from_slice(&self.out[..rows * h]);
        Ok(())
    }
}
