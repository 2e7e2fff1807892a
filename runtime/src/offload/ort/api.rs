//! The few entries of onnxruntime's C API (`OrtApi`, in `onnxruntime_c_api.h`) that dbrt calls.
//!
//! `OrtApi` is a table of function pointers that only ever grows at its end: an entry keeps its
//! position in every later version. Rather than declaring the 300-odd entries before the last
//! one used, each entry is read at its index. The indices were counted from the header
//! (`include/onnxruntime/core/session/onnxruntime_c_api.h`, API version 30, every entry from
//! `CreateStatus` = 0 to `EpDevice_EpName` = 312) and checked against onnxruntime 1.32's
//! library: `CreateStatus`/`GetErrorMessage`/`GetErrorCode`/`ReleaseStatus` round-trip a
//! message, `GetBuildInfoString` (254) returns "ORT Build Info...", and
//! `RegisterExecutionProviderLibrary` → `GetEpDevices` → `EpDevice_EpName` lists
//! "CPUExecutionProvider" and "QNNExecutionProvider". The tests exercise every entry below.
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
const ARENA_ALLOCATOR: c_int = 1;
const MEM_TYPE_DEFAULT: c_int = 0;

// Positions in `OrtApi` (see the module's comment for how they were checked).
const GET_ERROR_MESSAGE: usize = 2;
const CREATE_ENV_WITH_CUSTOM_LOGGER: usize = 4;
const CREATE_SESSION_FROM_ARRAY: usize = 8;
const RUN: usize = 9;
const CREATE_SESSION_OPTIONS: usize = 10;
const SET_INTRA_OP_NUM_THREADS: usize = 24;
const SESSION_GET_INPUT_COUNT: usize = 30;
const SESSION_GET_OUTPUT_COUNT: usize = 31;
const CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE: usize = 49;
const CREATE_CPU_MEMORY_INFO: usize = 69;
const RELEASE_STATUS: usize = 93;
const RELEASE_MEMORY_INFO: usize = 94;
const RELEASE_SESSION: usize = 95;
const RELEASE_VALUE: usize = 96;
const RELEASE_SESSION_OPTIONS: usize = 100;
const ADD_SESSION_CONFIG_ENTRY: usize = 130;
const REGISTER_EXECUTION_PROVIDER_LIBRARY: usize = 301;
const GET_EP_DEVICES: usize = 303;
const SESSION_OPTIONS_APPEND_EXECUTION_PROVIDER_V2: usize = 304;
const EP_DEVICE_EP_NAME: usize = 312;
/// Entries the table must hold (the last one used, plus one).
const ENTRIES: usize = EP_DEVICE_EP_NAME + 1;

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

impl Api {
    /// Entry `index` of the table (NULL past the entries dbrt knows).
    fn raw(&self, index: usize) -> *const c_void {
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

    pub fn create_session_options(&self) -> Result<*mut OrtSessionOptions, String> {
        let f = entry!(
            self,
            CREATE_SESSION_OPTIONS,
            unsafe extern "C" fn(*mut *mut OrtSessionOptions) -> Status
        );
        let mut options = std::ptr::null_mut();
        // SAFETY: the output is written by the call.
        self.check(unsafe { f(&mut options) })?;
        non_null(options, "CreateSessionOptions")
    }

    pub fn release_session_options(&self, options: *mut OrtSessionOptions) {
        let release = || -> Result<(), String> {
            let f = entry!(
                self,
                RELEASE_SESSION_OPTIONS,
                unsafe extern "C" fn(*mut OrtSessionOptions)
            );
            // SAFETY: options created by CreateSessionOptions, released once.
            unsafe { f(options) };
            Ok(())
        };
        let _ = release();
    }

    pub fn set_intra_op_threads(
        &self,
        options: *mut OrtSessionOptions,
        threads: usize,
    ) -> Result<(), String> {
        type F = unsafe extern "C" fn(*mut OrtSessionOptions, c_int) -> Status;
        let f = entry!(self, SET_INTRA_OP_NUM_THREADS, F);
        let threads = c_int::try_from(threads).unwrap_or(c_int::MAX);
        // SAFETY: live session options.
        self.check(unsafe { f(options, threads) })
    }

    pub fn add_config_entry(
        &self,
        options: *mut OrtSessionOptions,
        key: &CStr,
        value: &CStr,
    ) -> Result<(), String> {
        type F =
            unsafe extern "C" fn(*mut OrtSessionOptions, *const c_char, *const c_char) -> Status;
        let f = entry!(self, ADD_SESSION_CONFIG_ENTRY, F);
        // SAFETY: live session options and NUL-terminated strings (copied by onnxruntime).
        self.check(unsafe { f(options, key.as_ptr(), value.as_ptr()) })
    }

    /// Appends one plugin execution provider's device with its options.
    pub fn append_execution_provider_v2(
        &self,
        options: *mut OrtSessionOptions,
        env: *mut OrtEnv,
        device: *const OrtEpDevice,
        keys: &[*const c_char],
        values: &[*const c_char],
    ) -> Result<(), String> {
        type F = unsafe extern "C" fn(
            *mut OrtSessionOptions,
            *mut OrtEnv,
            *const *const OrtEpDevice,
            usize,
            *const *const c_char,
            *const *const c_char,
            usize,
        ) -> Status;
        let f = entry!(self, SESSION_OPTIONS_APPEND_EXECUTION_PROVIDER_V2, F);
        let n = keys.len().min(values.len());
        // SAFETY: live options and environment, one device from GetEpDevices, and `n`
        // NUL-terminated keys and values that outlive the call (onnxruntime copies them).
        self.check(unsafe { f(options, env, &device, 1, keys.as_ptr(), values.as_ptr(), n) })
    }

    pub fn create_session_from_array(
        &self,
        env: *mut OrtEnv,
        bytes: &[u8],
        options: *mut OrtSessionOptions,
    ) -> Result<*mut OrtSession, String> {
        type F = unsafe extern "C" fn(
            *const OrtEnv,
            *const c_void,
            usize,
            *const OrtSessionOptions,
            *mut *mut OrtSession,
        ) -> Status;
        let f = entry!(self, CREATE_SESSION_FROM_ARRAY, F);
        let mut session = std::ptr::null_mut();
        // SAFETY: the bytes are read during the call only; the options and env are live.
        let status = unsafe {
            f(
                env,
                bytes.as_ptr().cast(),
                bytes.len(),
                options,
                &mut session,
            )
        };
        self.check(status)?;
        non_null(session, "CreateSessionFromArray")
    }

    /// The session's numbers of inputs and outputs.
    pub fn session_io_counts(&self, session: *mut OrtSession) -> Result<(usize, usize), String> {
        type F = unsafe extern "C" fn(*const OrtSession, *mut usize) -> Status;
        let inputs = entry!(self, SESSION_GET_INPUT_COUNT, F);
        let outputs = entry!(self, SESSION_GET_OUTPUT_COUNT, F);
        let (mut i, mut o) = (0, 0);
        // SAFETY: a live session; the counts are written by the calls.
        self.check(unsafe { inputs(session, &mut i) })?;
        // SAFETY: as above.
        self.check(unsafe { outputs(session, &mut o) })?;
        Ok((i, o))
    }

    pub fn release_session(&self, session: *mut OrtSession) {
        let release = || -> Result<(), String> {
            let f = entry!(self, RELEASE_SESSION, unsafe extern "C" fn(*mut OrtSession));
            // SAFETY: a session created by CreateSessionFromArray, released once.
            unsafe { f(session) };
            Ok(())
        };
        let _ = release();
    }

    pub fn create_cpu_memory_info(&self) -> Result<*mut OrtMemoryInfo, String> {
        type F = unsafe extern "C" fn(c_int, c_int, *mut *mut OrtMemoryInfo) -> Status;
        let f = entry!(self, CREATE_CPU_MEMORY_INFO, F);
        let mut info = std::ptr::null_mut();
        // SAFETY: the output is written by the call.
        self.check(unsafe { f(ARENA_ALLOCATOR, MEM_TYPE_DEFAULT, &mut info) })?;
        non_null(info, "CreateCpuMemoryInfo")
    }

    pub fn release_memory_info(&self, info: *mut OrtMemoryInfo) {
        let release = || -> Result<(), String> {
            let f = entry!(
                self,
                RELEASE_MEMORY_INFO,
                unsafe extern "C" fn(*mut OrtMemoryInfo)
            );
            // SAFETY: created by CreateCpuMemoryInfo, released once.
            unsafe { f(info) };
            Ok(())
        };
        let _ = release();
    }

    /// A float tensor of `shape` over `data`, which onnxruntime reads and writes in place.
    ///
    /// # Safety
    /// `data` stays allocated, unmoved and not otherwise accessed during runs, until the
    /// value is released.
    pub unsafe fn create_f32_tensor(
        &self,
        info: *const OrtMemoryInfo,
        data: *mut f32,
        len: usize,
        shape: &[i64],
    ) -> Result<*mut OrtValue, String> {
        type F = unsafe extern "C" fn(
            *const OrtMemoryInfo,
            *mut c_void,
            usize,
            *const i64,
            usize,
            c_int,
            *mut *mut OrtValue,
        ) -> Status;
        let f = entry!(self, CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE, F);
        let mut value = std::ptr::null_mut();
        let bytes = len * std::mem::size_of::<f32>();
        // SAFETY: `data` holds `len` floats (the caller's contract); the shape is read during
        // the call.
        let status = unsafe {
            f(
                info,
                data.cast(),
                bytes,
                shape.as_ptr(),
                shape.len(),
                ELEMENT_FLOAT,
                &mut value,
            )
        };
        self.check(status)?;
        non_null(value, "CreateTensorWithDataAsOrtValue")
    }

    pub fn release_value(&self, value: *mut OrtValue) {
        let release = || -> Result<(), String> {
            let f = entry!(self, RELEASE_VALUE, unsafe extern "C" fn(*mut OrtValue));
            // SAFETY: a value created by CreateTensorWithDataAsOrtValue, released once.
            unsafe { f(value) };
            Ok(())
        };
        let _ = release();
    }

    /// Runs `session` on `inputs` into the pre-allocated `outputs`: the status (NULL on
    /// success) is the caller's to check and release.
    ///
    /// # Safety
    /// `session` and the values are live; the values' buffers are not otherwise accessed
    /// during the call.
    pub unsafe fn run(
        &self,
        session: *mut OrtSession,
        input_names: &[*const c_char],
        inputs: &[*const OrtValue],
        output_names: &[*const c_char],
        outputs: &mut [*mut OrtValue],
    ) -> Result<Status, String> {
        type F = unsafe extern "C" fn(
            *mut OrtSession,
            *const c_void,
            *const *const c_char,
            *const *const OrtValue,
            usize,
            *const *const c_char,
            usize,
            *mut *mut OrtValue,
        ) -> Status;
        let f = entry!(self, RUN, F);
        let (ni, no) = (
            inputs.len().min(input_names.len()),
            outputs.len().min(output_names.len()),
        );
        // SAFETY: the caller's contract; `ni` names and values, `no` names and pre-allocated
        // output values (onnxruntime writes into their buffers).
        Ok(unsafe {
            f(
                session,
                std::ptr::null(),
                input_names.as_ptr(),
                inputs.as_ptr(),
                ni,
                output_names.as_ptr(),
                no,
                outputs.as_mut_ptr(),
            )
        })
    }
}

fn non_null<T>(p: *mut T, what: &str) -> Result<*mut T, String> {
    match p.is_null() {
        true => Err(format!("{what} returned NULL without an error")),
        false => Ok(p),
    }
}
