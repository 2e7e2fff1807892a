//! onnxruntime's library, loaded at run time (dlopen, never closed), and the process's one
//! `OrtEnv`, whose log goes to the `log` crate (onnxruntime must not print to stderr).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::api::{self, Api, OrtEnv};
use crate::offload::dl;

/// The environment variable naming onnxruntime's library when the options do not.
pub const ONNXRUNTIME_LIB_ENV: &str = "DBRT_ONNXRUNTIME_LIB";
/// The environment variable naming the QNN execution provider's library.
pub const QNN_EP_LIB_ENV: &str = "DBRT_QNN_EP_LIB";
/// The QNN provider's name, as its library registers it.
pub const QNN_EP_NAME: &str = "QNNExecutionProvider";

/// onnxruntime, loaded: its API table and the process's environment.
pub struct Runtime {
    pub api: Api,
    pub env: *mut OrtEnv,
    pub path: PathBuf,
}

// SAFETY: the environment is created once and never released; onnxruntime's environment and
// API are thread-safe (sessions are created and run on it from any thread).
unsafe impl Send for Runtime {}
// SAFETY: as for Send.
unsafe impl Sync for Runtime {}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Serializes loading attempts: a failed attempt is not kept, so a later session may name
/// another (correct) path; the first that loads is the process's.
static LOADING: Mutex<()> = Mutex::new(());
/// The QNN provider's library, once registered with the environment.
static QNN_REGISTERED: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The library path: the option, else the environment variable, else the system's name.
fn onnxruntime_path(option: Option<&Path>) -> PathBuf {
    dl::library_path(option, ONNXRUNTIME_LIB_ENV, "libonnxruntime.so")
}

/// The QNN provider's library: the option, else `DBRT_QNN_EP_LIB`.
pub fn qnn_path(option: Option<&Path>) -> Result<PathBuf, String> {
    match option {
        Some(p) => Ok(p.to_path_buf()),
        None => std::env::var_os(QNN_EP_LIB_ENV)
            .map(PathBuf::from)
            .ok_or_else(|| format!("no QNN provider library (set {QNN_EP_LIB_ENV})")),
    }
}

/// The process's onnxruntime, loading it from `option` (see [`onnxruntime_path`]) the first
/// time. Once loaded, asking for another file is an error naming both.
pub fn runtime(option: Option<&Path>) -> Result<&'static Runtime, String> {
    let path = onnxruntime_path(option);
    let _guard = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return match option.is_none() || dl::same_file(&rt.path, &path) {
            true => Ok(rt),
            false => Err(format!(
                "onnxruntime is already loaded from {}; this process cannot also load {}",
                rt.path.display(),
                path.display()
            )),
        };
    }
    let rt = load(&path)?;
    Ok(RUNTIME.get_or_init(|| rt))
}

fn load(path: &Path) -> Result<Runtime, String> {
    let handle = dl::open(path).map_err(|e| format!("cannot load {}: {e}", path.display()))?;
    // SAFETY: a live handle and a NUL-terminated symbol name.
    let sym = unsafe { libc::dlsym(handle, c"OrtGetApiBase".as_ptr()) };
    if sym.is_null() {
        return Err(format!(
            "{} has no OrtGetApiBase: not onnxruntime",
            path.display()
        ));
    }
    // SAFETY: OrtGetApiBase's C signature: no arguments, returns `const OrtApiBase*`.
    let get_base: unsafe extern "C" fn() -> *const api::OrtApiBase =
        unsafe { std::mem::transmute::<*mut c_void, _>(sym) };
    // SAFETY: calling onnxruntime's entry point, which returns a static table.
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err("OrtGetApiBase returned NULL".into());
    }
    // SAFETY: a static OrtApiBase of two function pointers.
    let base = unsafe { &*base };
    // SAFETY: returns a static NUL-terminated string (or NULL, checked).
    let v = unsafe { (base.get_version_string)() };
    let version = match v.is_null() {
        true => String::new(),
        // SAFETY: non-null and NUL-terminated.
        false => unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned(),
    };
    // An older library would print to stderr when asked for a version it lacks: ask only a
    // library whose version says it has it.
    if !version_at_least(&version, 1, api::API_VERSION) {
        return Err(format!(
            "onnxruntime {version} is too old: plugin execution providers need 1.{}",
            api::API_VERSION
        ));
    }
    // SAFETY: GetApi takes a version and returns the table or NULL.
    let table = unsafe { (base.get_api)(api::API_VERSION) };
    if table.is_null() {
        return Err(format!(
            "onnxruntime {version} does not provide C API version {}: too old",
            api::API_VERSION
        ));
    }
    // SAFETY: a non-null table of version API_VERSION from a library never unloaded.
    let api = unsafe { Api::new(table) };
    let env = api.create_env_with_custom_logger(log_to_log, api::LOGGING_LEVEL_WARNING, c"dbrt")?;
    log::info!("loaded onnxruntime {version} from {}", path.display());
    Ok(Runtime {
        api,
        env,
        path: path.to_path_buf(),
    })
}

/// Whether "major.minor[.patch...]" is at least `major.minor`.
fn version_at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

/// onnxruntime's logging function: each message to `log`, at its severity.
unsafe extern "C" fn log_to_log(
    _param: *mut c_void,
    severity: c_int,
    category: *const c_char,
    _logid: *const c_char,
    _code_location: *const c_char,
    message: *const c_char,
) {
    let text = |p: *const c_char| match p.is_null() {
        true => std::borrow::Cow::Borrowed(""),
        // SAFETY: onnxruntime passes NUL-terminated strings valid during the call.
        false => String::from_utf8_lossy(unsafe { CStr::from_ptr(p) }.to_bytes()),
    };
    let level = match severity {
        0 => log::Level::Trace,
        1 => log::Level::Debug,
        2 => log::Level::Warn,
        _ => log::Level::Error,
    };
    // A panic must not unwind into C (a logger that panics): it is dropped here.
    let _ = std::panic::catch_unwind(|| {
        log::log!(target: "dbrt::onnxruntime", level, "[{}] {}", text(category), text(message));
    });
}

/// Registers the QNN provider's library with the environment, once per process.
pub fn register_qnn(rt: &Runtime, option: Option<&Path>) -> Result<(), String> {
    let path = qnn_path(option)?;
    let mut registered = QNN_REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(done) = registered.as_ref() {
        return match option.is_none() || dl::same_file(done, &path) {
            true => Ok(()),
            false => Err(format!(
                "the QNN provider is already registered from {}; not also from {}",
                done.display(),
                path.display()
            )),
        };
    }
    if !path.is_file() {
        return Err(format!("no QNN provider library at {}", path.display()));
    }
    let name = CString::new(QNN_EP_NAME).map_err(|e| e.to_string())?;
    rt.api
        .register_execution_provider_library(rt.env, &name, &dl::c_path(&path)?)
        .map_err(|e| format!("cannot register {}: {e}", path.display()))?;
    *registered = Some(path);
    Ok(())
}

/// The QNN provider's device (the HTP), once its library is registered.
pub fn qnn_device(rt: &Runtime) -> Result<*const api::OrtEpDevice, String> {
    for &d in rt.api.ep_devices(rt.env)? {
        if rt.api.ep_device_name(d)? == QNN_EP_NAME {
            return Ok(d);
        }
    }
    Err(format!("{QNN_EP_NAME} lists no device"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_is_not_onnxruntime_does_not_load() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libonnxruntime.so");
        std::fs::write(&fake, b"not a library").unwrap();
        let e = super::load(&fake).err().unwrap();
        assert!(
            e.starts_with("cannot load") && e.contains("libonnxruntime.so"),
            "{e}"
        );
        let e = super::load(&dir.path().join("absent.so")).err().unwrap();
        assert!(e.contains("absent.so"), "{e}");
        // A library, but not onnxruntime.
        let e = super::load(std::path::Path::new("libc.so.6"))
            .err()
            .unwrap();
        assert!(e.contains("no OrtGetApiBase"), "{e}");
    }

    #[test]
    fn versions_compare_by_number() {
        use super::version_at_least as at_least;
        assert!(at_least("1.22.0", 1, 22));
        assert!(at_least("1.32.0", 1, 22));
        assert!(at_least("2.0", 1, 22));
        assert!(!at_least("1.21.1", 1, 22));
        assert!(!at_least("1.9", 1, 22));
        assert!(!at_least("", 1, 22));
        assert!(!at_least("x.y", 1, 22));
    }
}
