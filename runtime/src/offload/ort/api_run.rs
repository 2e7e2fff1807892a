//! The `OrtApi` entries for sessions and their tensors: session options, creating a session
//! from a graph's bytes, tensors over caller-owned memory, and running (see `api.rs` for how
//! the entries' positions were checked).

use std::ffi::{c_char, c_int, c_void, CStr};

use super::api::*;

impl Api {
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
