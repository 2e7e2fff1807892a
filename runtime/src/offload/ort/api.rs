//! The few entries of onnxruntime's C API (`OrtApi`, in `onnxruntime_c_api.h`) that dbrt calls
//! (those on sessions and tensors are in `api_run.rs`).
//!
//! `OrtApi` is a table of function pointers that only ever grows at its end: an entry keeps its
//! position in every later version. Rather than declaring the 300-odd entries before the last
//! one used, each entry is read at its index. The indices were counted from the header
//! (`include/onnxruntime/core/session/onnxruntime_c_api.h`, API version 30, every entry from
//! `CreateStatus` = 0 to `EpDevice_EpName` = 312) and checked against onnxruntime 1.32's
//! library: `CreateStatus`/`GetErrorMessage`/`GetErrorCode`/`ReleaseStatus` round-trip a
//! message, `GetBuildInfoString` (254) returns "ORT Build Info...", and
//! `RegisterExecutionProviderLibrary` → `GetEpDevices` → `EpDevice_EpName` lists
//! "CPUExecutionProvider" and "QNNExecutionProvider". The tests call every entry used.
//!
//! Every entry used exists since API version 22 (onnxruntime 1.22, which added plugin
//! execution providers), so that is the version asked of `GetApi`.

use std::ffi::{c_char, c_int, c_void, CStr};

/// The `OrtApi` version requested: the lowest with every entry below.
pub const API_VERSION: u32 = 22;

/// Opaque onnxruntime objects.
#[repr(C)]
pub struct OrtStatus {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtEnv {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtSession {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtSessionOptions {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtValue {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtMemoryInfo {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtEpDevice {
    _private: [u8; 0],
}

pub type Status = *mut OrtStatus;

/// `OrtLoggingFunction`.
pub type LoggingFunction = unsafe extern "C" fn(
    param: *mut c_void,
    severity: c_int,
    category: *const c_char,
    logid: *const c_char,
    code_location: *const c_char,
    message: *const c_char,
);

/// `OrtApiBase`: what `OrtGetApiBase` returns.
#[repr(C)]
pub struct OrtApiBase {
    pub get_api: unsafe extern "C" fn(version: u32) -> *const *const c_void,
    pub get_version_string: unsafe extern "C" fn() -> *const c_char,
}

/// `ORT_LOGGING_LEVEL_WARNING`.
pub const LOGGING_LEVEL_WARNING: c_int = 2;
/// `ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT`.
pub const ELEMENT_FLOAT: c_int = 1;
/// `OrtArenaAllocator` and `OrtMemTypeDefault`.
pub(super) const ARENA_ALLOCATOR: c_int = 1;
pub(super) const MEM_TYPE_DEFAULT: c_int = 0;

// Positions in `OrtApi` (see the module's comment for how they were checked).
pub(super) const GET_ERROR_MESSAGE: usize = 2;
pub(super) const CREATE_ENV_WITH_CUSTOM_LOGGER: usize = 4;
pub(super) const CREATE_SESSION_FROM_ARRAY: usize = 8;
pub(super) const RUN: usize = 9;
pub(super) const CREATE_SESSION_OPTIONS: usize = 10;
pub(super) const SET_INTRA_OP_NUM_THREADS: usize = 24;
pub(super) const SESSION_GET_INPUT_COUNT: usize = 30;
pub(super) const SESSION_GET_OUTPUT_COUNT: usize = 31;
pub(super) const CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE: usize = 49;
pub(super) const CREATE_CPU_MEMORY_INFO: usize = 69;
pub(super) const RELEASE_STATUS: usize = 93;
pub(super) const RELEASE_MEMORY_INFO: usize = 94;
pub(super) const RELEASE_SESSION: usize = 95;
pub(super) const RELEASE_VALUE: usize = 96;
pub(super) const RELEASE_SESSION_OPTIONS: usize = 100;
pub(super) const ADD_SESSION_CONFIG_ENTRY: usize = 130;
pub(super) const REGISTER_EXECUTION_PROVIDER_LIBRARY: usize = 301;
pub(super) const GET_EP_DEVICES: usize = 303;
pub(super) const SESSION_OPTIONS_APPEND_EXECUTION_PROVIDER_V2: usize = 304;
pub(super) const EP_DEVICE_EP_NAME: usize = 312;
/// Entries the table must hold (the last one used, plus one).
pub(super) const ENTRIES: usize = EP_DEVICE_EP_NAME + 1;

/// An `OrtApi` table of at least [`API_VERSION`].
#[derive(Clone, Copy)]
pub struct Api {
    table: *const *const c_void,
}

// SAFETY: the table is immutable static data inside the loaded library, which is never
// unloaded; onnxruntime's C API may be called from any thread.
unsafe impl Send for Api {}
// SAFETY: as for Send: shared reads of an immutable table.
unsafe impl Sync for Api {}

/// Reads entry `$index` of the table as a function of type `$ty`; a NULL entry (a library
/// that lacks it) is an error naming it.
macro_rules! entry {
    ($api:expr, $index:expr, $ty:ty) => {{
        let p = $api.raw($index);
        if p.is_null() {
            return Err(concat!("onnxruntime's C API has no ", stringify!($index)).into());
        }
        // SAFETY: a non-null entry is a function of this signature (as above); function
        // pointers and data pointers have the same size on every target dbrt builds for.
        unsafe { std::mem::transmute::<*const c_void, $ty>(p) }
    }};
}
pub(super) use entry;

impl Api {
    /// Entry `index` of the table (NULL past the entries dbrt knows).
    pub(super) fn raw(&self, index: usize) -> *const c_void {
        if index >= ENTRIES {
            return std::ptr::null();
        }
        // SAFETY: the table is a library's `OrtApi` of version >= API_VERSION (`Api::new`'s
        // contract), which holds every entry below `ENTRIES` (all exist since 1.22).
        unsafe { *self.table.add(index) }
    }

    /// Wraps the table `GetApi(API_VERSION)` returned.
    ///
    /// # Safety
    /// `table` is non-null and was returned by `GetApi(API_VERSION)` of a library that stays
    /// loaded.
    pub unsafe fn new(table: *const *const c_void) -> Api {
        Api { table }
    }

    /// Turns a status into `Err(message)` (releasing it), NULL into `Ok`.
    pub fn check(&self, status: Status) -> Result<(), String> {
        if status.is_null() {
            return Ok(());
        }
        let mut message = String::new();
        self.take_message(status, |m| message.push_str(m));
        Err(message)
    }

    /// Hands a non-null status's message to `sink` (without allocating) and releases it.
    pub fn take_message(&self, status: Status, sink: impl FnOnce(&str)) {
        let read = || -> Result<(), String> {
            let get = entry!(
                self,
                GET_ERROR_MESSAGE,
                unsafe extern "C" fn(Status) -> *const c_char
            );
            // SAFETY: `status` is a live status onnxruntime returned; the message it points to
            // lives until the status is released below.
            let text = unsafe { get(status) };
            match text.is_null() {
                true => sink("(no message)"),
                // SAFETY: a NUL-terminated string owned by the status.
                false => sink(&String::from_utf8_lossy(
                    unsafe { CStr::from_ptr(text) }.to_bytes(),
                )),
            }
            Ok(())
        };
        let _ = read();
        let release = || -> Result<(), String> {
            let release = entry!(self, RELEASE_STATUS, unsafe extern "C" fn(Status));
            // SAFETY: the status is released once, here, and not used afterwards.
            unsafe { release(status) };
            Ok(())
        };
        let _ = release();
    }

    pub fn create_env_with_custom_logger(
        &self,
        logger: LoggingFunction,
        level: c_int,
        logid: &CStr,
    ) -> Result<*mut OrtEnv, String> {
        type F = unsafe extern "C" fn(
            LoggingFunction,
            *mut c_void,
            c_int,
            *const c_char,
            *mut *mut OrtEnv,
        ) -> Status;
        let f = entry!(self, CREATE_ENV_WITH_CUSTOM_LOGGER, F);
        let mut env = std::ptr::null_mut();
        // SAFETY: valid arguments; `env` receives the new environment.
        self.check(unsafe {
            f(
                logger,
                std::ptr::null_mut(),
                level,
                logid.as_ptr(),
                &mut env,
            )
        })?;
        non_null(env, "CreateEnvWithCustomLogger")
    }

    pub fn register_execution_provider_library(
        &self,
        env: *mut OrtEnv,
        name: &CStr,
        path: &CStr,
    ) -> Result<(), String> {
        type F = unsafe extern "C" fn(*mut OrtEnv, *const c_char, *const c_char) -> Status;
        let f = entry!(self, REGISTER_EXECUTION_PROVIDER_LIBRARY, F);
        // SAFETY: a live environment and NUL-terminated strings.
        self.check(unsafe { f(env, name.as_ptr(), path.as_ptr()) })
    }

    /// The execution-provider devices the environment knows (owned by it).
    pub fn ep_devices(&self, env: *mut OrtEnv) -> Result<&'static [*const OrtEpDevice], String> {
        type F = unsafe extern "C" fn(
            *const OrtEnv,
            *mut *const *const OrtEpDevice,
            *mut usize,
        ) -> Status;
        let f = entry!(self, GET_EP_DEVICES, F);
        let (mut devices, mut n) = (std::ptr::null(), 0usize);
        // SAFETY: a live environment; both outputs are written by the call.
        self.check(unsafe { f(env, &mut devices, &mut n) })?;
        if devices.is_null() || n == 0 {
            return Ok(&[]);
        }
        if n > 4096 {
            return Err(format!("GetEpDevices returned {n} devices"));
        }
        // SAFETY: onnxruntime returned an array of `n` device pointers owned by the
        // environment, which is never released.
        Ok(unsafe { std::slice::from_raw_parts(devices, n) })
    }

    pub fn ep_device_name(&self, device: *const OrtEpDevice) -> Result<&'static str, String> {
        let f = entry!(
            self,
            EP_DEVICE_EP_NAME,
            unsafe extern "C" fn(*const OrtEpDevice) -> *const c_char
        );
        // SAFETY: a device from GetEpDevices, owned by the never-released environment.
        let name = unsafe { f(device) };
        if name.is_null() {
            return Ok("");
        }
        // SAFETY: a NUL-terminated string owned by the device, which lives as long as the env.
        Ok(unsafe { CStr::from_ptr(name) }.to_str().unwrap_or(""))
    }
}

pub(super) fn non_null<T>(p: *mut T, what: &str) -> Result<*mut T, String> {
    match p.is_null() {
        true => Err(format!("{what} returned NULL without an error")),
        false => Ok(p),
    }
}
