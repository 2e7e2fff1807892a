//! The AscendCL entries dbrt calls (CANN's `acl/acl.h`, `acl_rt.h`, `acl_mdl.h`), resolved from
//! a library opened at run time: no CANN headers or libraries at build time.
//!
//! Signatures and constants are those CANN documents. `aclError` is an `int`: 0 success,
//! 1xxxxx a caller or environment error, 2xxxxx resources, 5xxxxx internal.

use std::ffi::{c_char, c_int, c_void, CStr};

pub type AclError = c_int;
pub type Context = *mut c_void;
pub type Stream = *mut c_void;

/// Opaque AscendCL objects.
#[repr(C)]
pub struct ModelDesc {
    _private: [u8; 0],
}
#[repr(C)]
pub struct Dataset {
    _private: [u8; 0],
}
#[repr(C)]
pub struct DataBuffer {
    _private: [u8; 0],
}

pub const SUCCESS: AclError = 0;
/// `ACL_ERROR_REPEAT_INITIALIZE`: `aclInit` was already called in this process (by the host
/// app, say): AscendCL is ready.
pub const REPEAT_INITIALIZE: AclError = 100002;

/// `aclrtRunMode`: the app runs on the device's own CPU (an edge board's SoC), or on a host
/// with the NPU behind PCIe.
pub const RUN_MODE_DEVICE: c_int = 0;
pub const RUN_MODE_HOST: c_int = 1;

/// `aclrtMemMallocPolicy`: huge pages when there are some, else normal ones.
pub const MALLOC_HUGE_FIRST: c_int = 0;

/// `aclrtMemcpyKind`.
pub const MEMCPY_HOST_TO_DEVICE: c_int = 1;
pub const MEMCPY_DEVICE_TO_HOST: c_int = 2;
pub const MEMCPY_DEVICE_TO_DEVICE: c_int = 3;

/// `ACL_MAX_DIM_CNT`, `ACL_MAX_TENSOR_NAME_LEN`.
pub const MAX_DIMS: usize = 128;
pub const MAX_NAME: usize = 128;

/// `ACL_DYNAMIC_TENSOR_NAME`: the input through which a dynamic-dims model takes its gear.
pub const GEAR_INPUT: &CStr = c"ascend_mbatch_shape_data";

/// `aclmdlIODims`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IoDims {
    pub name: [c_char; MAX_NAME],
    pub dim_count: usize,
    pub dims: [i64; MAX_DIMS],
}

impl IoDims {
    pub const ZERO: IoDims = IoDims {
        name: [0; MAX_NAME],
        dim_count: 0,
        dims: [0; MAX_DIMS],
    };

    /// The dims in use (`dim_count`, bounded by the array).
    pub fn used(&self) -> &[i64] {
        &self.dims[..self.dim_count.min(MAX_DIMS)]
    }
}

/// Declares the table of entries: each field a function pointer resolved by its C name.
macro_rules! acl_table {
    ($($field:ident = $name:literal: fn($($arg:ty),*) -> $ret:ty;)*) => {
        /// AscendCL's entries, resolved from one loaded library.
        pub struct Acl {
            $(pub $field: unsafe extern "C" fn($($arg),*) -> $ret,)*
        }

        impl Acl {
            /// Resolves every entry from `handle` (a library opened with dlopen and never
            /// closed); the first missing name is the error.
            ///
            /// # Safety
            /// `handle` must be a live dlopen handle of a library whose symbols of these names
            /// have these C signatures (AscendCL's, as CANN documents them).
            pub unsafe fn resolve(handle: *mut c_void) -> Result<Acl, &'static str> {
                Ok(Acl {
                    $($field: {
                        let name = concat!($name, "\0");
                        // SAFETY: a live handle (the caller's contract) and a NUL-terminated
                        // name.
                        let sym = unsafe { libc::dlsym(handle, name.as_ptr().cast()) };
                        if sym.is_null() {
                            return Err($name);
                        }
                        // SAFETY: the symbol is AscendCL's function of this signature (the
                        // caller's contract); a data pointer and a function pointer have one
                        // size on the platforms dbrt builds for.
                        unsafe {
                            std::mem::transmute::<
                                *mut c_void,
                                unsafe extern "C" fn($($arg),*) -> $ret,
                            >(sym)
                        }
                    },)*
                })
            }
        }
    };
}

acl_table! {
    init = "aclInit": fn(*const c_char) -> AclError;
    recent_err_msg = "aclGetRecentErrMsg": fn() -> *const c_char;
    set_device = "aclrtSetDevice": fn(i32) -> AclError;
    reset_device = "aclrtResetDevice": fn(i32) -> AclError;
    create_context = "aclrtCreateContext": fn(*mut Context, i32) -> AclError;
    destroy_context = "aclrtDestroyContext": fn(Context) -> AclError;
    set_current_context = "aclrtSetCurrentContext": fn(Context) -> AclError;
    get_current_context = "aclrtGetCurrentContext": fn(*mut Context) -> AclError;
    create_stream = "aclrtCreateStream": fn(*mut Stream) -> AclError;
    destroy_stream = "aclrtDestroyStream": fn(Stream) -> AclError;
    get_run_mode = "aclrtGetRunMode": fn(*mut c_int) -> AclError;
    malloc = "aclrtMalloc": fn(*mut *mut c_void, usize, c_int) -> AclError;
    free = "aclrtFree": fn(*mut c_void) -> AclError;
    memset = "aclrtMemset": fn(*mut c_void, usize, i32, usize) -> AclError;
    memcpy = "aclrtMemcpy": fn(*mut c_void, usize, *const c_void, usize, c_int) -> AclError;
    query_size_from_mem = "aclmdlQuerySizeFromMem":
        fn(*const c_void, usize, *mut usize, *mut usize) -> AclError;
    load_from_mem_with_mem = "aclmdlLoadFromMemWithMem":
        fn(*const c_void, usize, *mut u32, *mut c_void, usize, *mut c_void, usize) -> AclError;
    unload = "aclmdlUnload": fn(u32) -> AclError;
    create_desc = "aclmdlCreateDesc": fn() -> *mut ModelDesc;
    destroy_desc = "aclmdlDestroyDesc": fn(*mut ModelDesc) -> AclError;
    get_desc = "aclmdlGetDesc": fn(*mut ModelDesc, u32) -> AclError;
    num_inputs = "aclmdlGetNumInputs": fn(*mut ModelDesc) -> usize;
    num_outputs = "aclmdlGetNumOutputs": fn(*mut ModelDesc) -> usize;
    input_size = "aclmdlGetInputSizeByIndex": fn(*mut ModelDesc, usize) -> usize;
    output_size = "aclmdlGetOutputSizeByIndex": fn(*mut ModelDesc, usize) -> usize;
    input_index_by_name = "aclmdlGetInputIndexByName":
        fn(*const ModelDesc, *const c_char, *mut usize) -> AclError;
    dynamic_gear_count = "aclmdlGetInputDynamicGearCount":
        fn(*const ModelDesc, usize, *mut usize) -> AclError;
    dynamic_dims = "aclmdlGetInputDynamicDims":
        fn(*const ModelDesc, usize, *mut IoDims, usize) -> AclError;
    create_dataset = "aclmdlCreateDataset": fn() -> *mut Dataset;
    destroy_dataset = "aclmdlDestroyDataset": fn(*const Dataset) -> AclError;
    add_dataset_buffer = "aclmdlAddDatasetBuffer": fn(*mut Dataset, *mut DataBuffer) -> AclError;
    create_data_buffer = "aclCreateDataBuffer": fn(*mut c_void, usize) -> *mut DataBuffer;
    destroy_data_buffer = "aclDestroyDataBuffer": fn(*const DataBuffer) -> AclError;
    set_input_dynamic_dims = "aclmdlSetInputDynamicDims":
        fn(u32, *mut Dataset, usize, *const IoDims) -> AclError;
    execute = "aclmdlExecute": fn(u32, *const Dataset, *mut Dataset) -> AclError;
}

/// A failed call: which entry, its code and AscendCL's own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub call: &'static str,
    pub code: AclError,
}

impl Failure {
    /// 2xxxxx: out of a resource (memory, streams) rather than refused input.
    pub fn is_resource(self) -> bool {
        (200000..300000).contains(&self.code)
    }
}

impl Acl {
    /// AscendCL's last error text on this thread, if any (borrowed: valid until the next call).
    pub fn recent_message(&self) -> &str {
        // SAFETY: returns NULL or a NUL-terminated thread-local string.
        let p = unsafe { (self.recent_err_msg)() };
        if p.is_null() {
            return "";
        }
        // SAFETY: non-null and NUL-terminated (above); read before the next AscendCL call.
        let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
        std::str::from_utf8(bytes).unwrap_or("(a message that is not UTF-8)")
    }

    /// `Ok` for success, else the failure of `call`.
    pub fn check(&self, call: &'static str, code: AclError) -> Result<(), Failure> {
        match code {
            SUCCESS => Ok(()),
            code => Err(Failure { call, code }),
        }
    }

    /// Writes what failed, AscendCL's message included, into `out` (allocation-free).
    pub fn describe(&self, f: Failure, out: &mut impl std::fmt::Write) {
        let _ = write!(out, "{} failed with error {}", f.call, f.code);
        let m = self.recent_message().trim();
        if !m.is_empty() {
            let _ = write!(out, ": {m}");
        }
    }

    /// [`Acl::describe`] as a string (attach time, where allocating is fine).
    pub fn describe_string(&self, f: Failure) -> String {
        let mut s = String::new();
        self.describe(f, &mut s);
        s
    }
}
