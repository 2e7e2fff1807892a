//! The `OrtApi` entries that describe a session's inputs and outputs (name, element type,
//! dimensions), so that a graph whose interface is not the manifest's bucket is refused when
//! it is attached rather than failing every run (positions checked as in `api.rs`).

use std::ffi::{c_char, c_int, c_void, CStr};

use super::api::*;

#[repr(C)]
pub struct OrtTypeInfo {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtTensorTypeAndShapeInfo {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtAllocator {
    _private: [u8; 0],
}

const SESSION_GET_INPUT_TYPE_INFO: usize = 33;
const SESSION_GET_OUTPUT_TYPE_INFO: usize = 34;
const SESSION_GET_INPUT_NAME: usize = 36;
const SESSION_GET_OUTPUT_NAME: usize = 37;
const CAST_TYPE_INFO_TO_TENSOR_INFO: usize = 55;
const GET_TENSOR_ELEMENT_TYPE: usize = 60;
const GET_DIMENSIONS_COUNT: usize = 61;
const GET_DIMENSIONS: usize = 62;
const ALLOCATOR_FREE: usize = 76;
const GET_ALLOCATOR_WITH_DEFAULT_OPTIONS: usize = 78;
const RELEASE_TYPE_INFO: usize = 98;

/// The most dimensions read of an input or output (the encoder's have 2 or 3).
const MAX_DIMS: usize = 8;

/// One input or output of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoInfo {
    pub name: String,
    /// `ONNXTensorElementDataType` (1 is float); 0 for what is not a tensor.
    pub element: c_int,
    /// -1 for a dimension that is not fixed.
    pub dims: Vec<i64>,
}

/// Releases a type info however reading it ends.
struct TypeInfo<'a>(&'a Api, *mut OrtTypeInfo);

impl Drop for TypeInfo<'_> {
    fn drop(&mut self) {
        let release = || -> Result<(), String> {
            let f = entry!(
                self.0,
                RELEASE_TYPE_INFO,
                unsafe extern "C" fn(*mut OrtTypeInfo)
            );
            // SAFETY: a type info the session returned, released once, here.
            unsafe { f(self.1) };
            Ok(())
        };
        let _ = release();
    }
}

impl Api {
    /// Input (or, with `output`, output) `index` of `session`.
    pub fn session_io(
        &self,
        session: *mut OrtSession,
        output: bool,
        index: usize,
    ) -> Result<IoInfo, String> {
        Ok(IoInfo {
            name: self.io_name(session, output, index)?,
            ..self.io_type(session, output, index)?
        })
    }

    fn io_name(
        &self,
        session: *mut OrtSession,
        output: bool,
        index: usize,
    ) -> Result<String, String> {
        type GetName = unsafe extern "C" fn(
            *const OrtSession,
            usize,
            *mut OrtAllocator,
            *mut *mut c_char,
        ) -> Status;
        type Free = unsafe extern "C" fn(*mut OrtAllocator, *mut c_void) -> Status;
        let allocator = {
            type F = unsafe extern "C" fn(*mut *mut OrtAllocator) -> Status;
            let f = entry!(self, GET_ALLOCATOR_WITH_DEFAULT_OPTIONS, F);
            let mut a = std::ptr::null_mut();
            // SAFETY: the output is written by the call; the allocator is onnxruntime's own
            // (never freed by its callers).
            self.check(unsafe { f(&mut a) })?;
            non_null(a, "GetAllocatorWithDefaultOptions")?
        };
        let get = match output {
            false => entry!(self, SESSION_GET_INPUT_NAME, GetName),
            true => entry!(self, SESSION_GET_OUTPUT_NAME, GetName),
        };
        let free = entry!(self, ALLOCATOR_FREE, Free);
        let mut name = std::ptr::null_mut();
        // SAFETY: a live session, an index below its count (the caller's), and the allocator
        // the name is allocated with.
        self.check(unsafe { get(session, index, allocator, &mut name) })?;
        let name = non_null(name, "SessionGetInputName")?;
        // SAFETY: a NUL-terminated string onnxruntime allocated; copied before it is freed.
        let text = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: freed once, with the allocator it came from.
        self.check(unsafe { free(allocator, name.cast()) })?;
        Ok(text)
    }

    fn io_type(
        &self,
        session: *mut OrtSession,
        output: bool,
        index: usize,
    ) -> Result<IoInfo, String> {
        type GetType =
            unsafe extern "C" fn(*const OrtSession, usize, *mut *mut OrtTypeInfo) -> Status;
        type Cast = unsafe extern "C" fn(
            *const OrtTypeInfo,
            *mut *const OrtTensorTypeAndShapeInfo,
        ) -> Status;
        type Element = unsafe extern "C" fn(*const OrtTensorTypeAndShapeInfo, *mut c_int) -> Status;
        type Count = unsafe extern "C" fn(*const OrtTensorTypeAndShapeInfo, *mut usize) -> Status;
        type Dims =
            unsafe extern "C" fn(*const OrtTensorTypeAndShapeInfo, *mut i64, usize) -> Status;
        let get = match output {
            false => entry!(self, SESSION_GET_INPUT_TYPE_INFO, GetType),
            true => entry!(self, SESSION_GET_OUTPUT_TYPE_INFO, GetType),
        };
        let mut info = std::ptr::null_mut();
        // SAFETY: a live session and an index below its count (the caller's).
        self.check(unsafe { get(session, index, &mut info) })?;
        let info = TypeInfo(self, non_null(info, "SessionGetInputTypeInfo")?);
        let mut tensor = std::ptr::null();
        let cast = entry!(self, CAST_TYPE_INFO_TO_TENSOR_INFO, Cast);
        // SAFETY: a live type info; the tensor info it yields is owned by it.
        self.check(unsafe { cast(info.1, &mut tensor) })?;
        let mut io = IoInfo {
            name: String::new(),
            element: 0,
            dims: Vec::new(),
        };
        if tensor.is_null() {
            return Ok(io);
        }
        let element = entry!(self, GET_TENSOR_ELEMENT_TYPE, Element);
        let count = entry!(self, GET_DIMENSIONS_COUNT, Count);
        let dims = entry!(self, GET_DIMENSIONS, Dims);
        let mut n = 0usize;
        // SAFETY: the tensor info lives as long as `info`, which is released after these.
        self.check(unsafe { element(tensor, &mut io.element) })?;
        // SAFETY: as above.
        self.check(unsafe { count(tensor, &mut n) })?;
        if n > MAX_DIMS {
            return Err(format!("{n} dimensions"));
        }
        io.dims = vec![0; n];
        // SAFETY: as above; `io.dims` holds the `n` values written.
        self.check(unsafe { dims(tensor, io.dims.as_mut_ptr(), n) })?;
        Ok(io)
    }
}
