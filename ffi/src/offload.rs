//! The C API of encoder offload: choosing a backend and its artifacts in the session options,
//! asking whether a backend can run here, and what ran a session's last call.

use std::ffi::{c_char, CStr};
use std::path::PathBuf;

use dbrt_runtime::offload::{self, BackendChoice, FallbackKind, FallbackPolicy, OffloadOptions};

use crate::status::dbrt_status::{self, *};
use crate::status::{guard, Failure, Outcome};
use crate::{
    args, dbrt_session, dbrt_session_options, default_options, options_mut, session_name,
    with_session,
};

/// When a session with an accelerator runs a call on the CPU instead (values of
/// `dbrt_session_options_set_fallback`).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum dbrt_fallback_policy {
    /// For every reason (the default): logged, and recorded for `dbrt_session_last_fallback`.
    DBRT_FALLBACK_ALWAYS = 0,
    /// As ALWAYS, except that a device error during a run is returned (DBRT_DEVICE_ERROR).
    DBRT_FALLBACK_NOT_ON_DEVICE_ERROR = 1,
    /// Never: a backend that cannot attach fails `dbrt_session_create`; an input longer than
    /// the largest bucket or a device error fails the call.
    DBRT_FALLBACK_NEVER = 2,
}

/// Why a call ran on the CPU rather than the session's backend (`dbrt_session_last_fallback`).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum dbrt_fallback_kind {
    /// No fallback: the last call ran on the session's backend.
    DBRT_FALLBACK_NONE = 0,
    /// The backend's libraries are absent or do not load, or it has no device.
    DBRT_FALLBACK_BACKEND_UNAVAILABLE = 1,
    /// The artifacts are missing, corrupt, or exported from another model.
    DBRT_FALLBACK_INVALID_ARTIFACTS = 2,
    /// The input is longer than the largest exported bucket.
    DBRT_FALLBACK_TOO_LONG = 3,
    /// The device failed during the run.
    DBRT_FALLBACK_DEVICE_ERROR = 4,
}

/// A backend's name as a static C string.
fn backend_c_name(name: &str) -> &'static CStr {
    match name {
        "qnn" => c"qnn",
        "ort-cpu" => c"ort-cpu",
        "ascend" => c"ascend",
        _ => c"cpu",
    }
}

/// Copies `s` into a caller's buffer of `cap` bytes, NUL-terminated, cut on a character
/// boundary when it does not fit. A NULL buffer or a capacity of 0 takes nothing.
///
/// # Safety
/// When `buf` is not NULL it points at `cap` writable bytes.
unsafe fn write_message(buf: *mut c_char, cap: usize, s: &str) -> Outcome {
    if buf.is_null() || cap == 0 {
        return Ok(());
    }
    // SAFETY: non-NULL; `cap` writable bytes by the caller's contract.
    let out = unsafe { args::out_slice(buf.cast::<u8>(), cap, cap, "message buffer") }?;
    let mut n = s.len().min(cap - 1);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out[n] = 0;
    Ok(())
}

/// Sets the path option `field` picks from a UTF-8 path; NULL (with length 0) resets it to the
/// default.
///
/// # Safety
/// As `args::optional_text` for `ptr` and `len`.
unsafe fn set_path(
    options: *mut dbrt_session_options,
    ptr: *const c_char,
    len: usize,
    field: fn(&mut OffloadOptions) -> &mut Option<PathBuf>,
) -> dbrt_status {
    guard(|| {
        let o = options_mut(options)?;
        // SAFETY: forwarded contract.
        let path = match unsafe { args::optional_text(ptr, len, "path") }? {
            Some("") => return Err(Failure::new(DBRT_INVALID_ARGUMENT, "path is empty")),
            t => t.map(PathBuf::from),
        };
        *field(&mut o.offload) = path;
        Ok(())
    })
}

/// The encoder's backend by name: "cpu" (the default: dbrt's own kernels), "auto" (an
/// accelerator that attaches, else the CPU), "qnn" (Qualcomm's NPU through onnxruntime's QNN
/// execution provider), "ort-cpu" (onnxruntime's CPU provider, a reference) or "ascend"
/// (Huawei's NPU through AscendCL). An accelerator needs `dbrt_session_options_set_artifacts`
/// ("ascend" not when the model file holds its offline model). Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8,
/// DBRT_UNKNOWN_BACKEND.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_backend(
    options: *mut dbrt_session_options,
    name: *const c_char,
    name_len: usize,
) -> dbrt_status {
    guard(|| {
        let o = options_mut(options)?;
        // SAFETY: `name_len` readable bytes by the header's contract; checked for NULL.
        let name = unsafe { args::text(name, name_len, "name") }?;
        o.offload.backend = name.parse::<BackendChoice>()?;
        Ok(())
    })
}

/// The directory `dbrt-convert export-onnx` wrote for this model (its manifest.txt and one
/// graph per bucket), as UTF-8; NULL with length 0 unsets it. Checked by `dbrt_session_create`.
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8, DBRT_INVALID_ARGUMENT (empty).
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_artifacts(
    options: *mut dbrt_session_options,
    dir: *const c_char,
    dir_len: usize,
) -> dbrt_status {
    // SAFETY: `dir_len` readable bytes when not NULL, by the header's contract.
    unsafe { set_path(options, dir, dir_len, |o| &mut o.artifacts) }
}

/// When a session runs a call on the CPU instead of its accelerator: a `dbrt_fallback_policy`
/// value (DBRT_FALLBACK_ALWAYS by default). Errors: DBRT_NULL_POINTER, DBRT_INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_fallback(
    options: *mut dbrt_session_options,
    policy: i32,
) -> dbrt_status {
    guard(|| {
        let o = options_mut(options)?;
        o.offload.fallback = match policy {
            0 => FallbackPolicy::Always,
            1 => FallbackPolicy::NotOnDeviceError,
            2 => FallbackPolicy::Never,
            p => {
                return Err(Failure::new(
                    DBRT_INVALID_ARGUMENT,
                    format!("fallback policy {p} (0, 1 or 2)"),
                ))
            }
        };
        Ok(())
    })
}

/// The path of onnxruntime's shared library (`libonnxruntime.so*`) for the "qnn" and "ort-cpu"
/// backends, as UTF-8; NULL with length 0 means the environment variable DBRT_ONNXRUNTIME_LIB,
/// then the system's library search path. Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8,
/// DBRT_INVALID_ARGUMENT (empty).
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_onnxruntime_library(
    options: *mut dbrt_session_options,
    path: *const c_char,
    path_len: usize,
) -> dbrt_status {
    // SAFETY: `path_len` readable bytes when not NULL, by the header's contract.
    unsafe { set_path(options, path, path_len, |o| &mut o.onnxruntime_library) }
}

/// The path of onnxruntime's QNN execution provider library
/// (`libonnxruntime_providers_qnn.so`, with `libQnnHtp.so` in the same directory) for the
/// "qnn" backend, as UTF-8; NULL with length 0 means the environment variable DBRT_QNN_EP_LIB.
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8, DBRT_INVALID_ARGUMENT (empty).
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_qnn_library(
    options: *mut dbrt_session_options,
    path: *const c_char,
    path_len: usize,
) -> dbrt_status {
    // SAFETY: `path_len` readable bytes when not NULL, by the header's contract.
    unsafe { set_path(options, path, path_len, |o| &mut o.qnn_library) }
}

/// The path of AscendCL's library (`libascendcl.so`, from CANN) for the "ascend" backend, as
/// UTF-8; NULL with length 0 means the environment variable DBRT_ASCENDCL_LIB, then the
/// system's library search path. Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8,
/// DBRT_INVALID_ARGUMENT (empty).
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_ascendcl_library(
    options: *mut dbrt_session_options,
    path: *const c_char,
    path_len: usize,
) -> dbrt_status {
    // SAFETY: `path_len` readable bytes when not NULL, by the header's contract.
    unsafe { set_path(options, path, path_len, |o| &mut o.ascendcl_library) }
}

/// The Ascend device (`aclrtSetDevice`'s id, 0 by default) for the "ascend" backend.
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_ARGUMENT (negative).
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_ascend_device(
    options: *mut dbrt_session_options,
    device: i32,
) -> dbrt_status {
    guard(|| {
        let o = options_mut(options)?;
        if device < 0 {
            return Err(Failure::new(
                DBRT_INVALID_ARGUMENT,
                format!("Ascend device {device} is negative"),
            ));
        }
        o.offload.ascend_device = device;
        Ok(())
    })
}

/// Whether backend `name` can run here: its libraries load and it finds a device (found
/// through `options`' library paths, or the environment when `options` is NULL). Artifacts
/// are not checked. DBRT_OK if it can; DBRT_BACKEND_UNAVAILABLE if not, with the reason in
/// `why` (`why_len` bytes, NUL-terminated, cut to fit; NULL takes nothing).
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8, DBRT_UNKNOWN_BACKEND, DBRT_BACKEND_UNAVAILABLE.
#[no_mangle]
pub unsafe extern "C" fn dbrt_backend_available(
    name: *const c_char,
    name_len: usize,
    options: *const dbrt_session_options,
    why: *mut c_char,
    why_len: usize,
) -> dbrt_status {
    guard(|| {
        // SAFETY: `name_len` readable bytes by the header's contract; checked for NULL.
        let name = unsafe { args::text(name, name_len, "name") }?;
        // Refuse an unknown name before looking for libraries.
        name.parse::<BackendChoice>()?;
        // SAFETY: a non-NULL options handle is live and not being modified (the contract).
        let options: OffloadOptions = match unsafe { options.as_ref() } {
            Some(o) => o.options.offload.clone(),
            None => default_options().offload,
        };
        match offload::backend_available(name, &options) {
            Ok(()) => {
                // SAFETY: `why_len` writable bytes when not NULL, by the header's contract.
                unsafe { write_message(why, why_len, "") }?;
                Ok(())
            }
            Err(reason) => {
                // SAFETY: as above.
                unsafe { write_message(why, why_len, &reason) }?;
                Err(Failure::new(
                    DBRT_BACKEND_UNAVAILABLE,
                    format!("backend {name} is unavailable: {reason}"),
                ))
            }
        }
    })
}

/// The backend the session's encoder is attached to into `*out_name` (a static NUL-terminated
/// string): "cpu", or the accelerator that attached at `dbrt_session_create`.
/// Errors: DBRT_NULL_POINTER, DBRT_SESSION_CLOSED, DBRT_SESSION_BUSY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_backend(
    session: *mut dbrt_session,
    out_name: *mut *const c_char,
) -> dbrt_status {
    // SAFETY: the header's contract for both pointers.
    unsafe { session_name(session, out_name, |s| backend_c_name(s.backend())) }
}

/// The backend that ran the session's last call's encoder into `*out_name` (a static
/// NUL-terminated string: "cpu", "qnn", "ort-cpu", "ascend"), or "none" before the first call.
/// Errors: DBRT_NULL_POINTER, DBRT_SESSION_CLOSED, DBRT_SESSION_BUSY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_last_backend(
    session: *mut dbrt_session,
    out_name: *mut *const c_char,
) -> dbrt_status {
    // SAFETY: the header's contract for both pointers.
    unsafe {
        session_name(session, out_name, |s| {
            s.last_backend().map_or(c"none", backend_c_name)
        })
    }
}

/// Why the session's last call ran on the CPU instead of its backend (or, before any call, why
/// the backend did not attach): a `dbrt_fallback_kind` into `*out_kind` (DBRT_FALLBACK_NONE if
/// it did not fall back) and the reason into `message` (`message_len` bytes, NUL-terminated,
/// cut to fit; NULL takes nothing).
/// Errors: DBRT_NULL_POINTER, DBRT_SESSION_CLOSED, DBRT_SESSION_BUSY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_last_fallback(
    session: *mut dbrt_session,
    out_kind: *mut i32,
    message: *mut c_char,
    message_len: usize,
) -> dbrt_status {
    guard(|| {
        // SAFETY: checked for NULL and alignment; writable by the header's contract.
        let out = unsafe { args::out(out_kind, "out_kind") }?;
        with_session(session, |s| {
            let (kind, text) = match s.last_fallback() {
                None => (dbrt_fallback_kind::DBRT_FALLBACK_NONE, ""),
                Some(f) => (
                    match f.kind {
                        FallbackKind::BackendUnavailable => {
                            dbrt_fallback_kind::DBRT_FALLBACK_BACKEND_UNAVAILABLE
                        }
                        FallbackKind::InvalidArtifacts => {
                            dbrt_fallback_kind::DBRT_FALLBACK_INVALID_ARTIFACTS
                        }
                        FallbackKind::TooLong => dbrt_fallback_kind::DBRT_FALLBACK_TOO_LONG,
                        FallbackKind::DeviceError => dbrt_fallback_kind::DBRT_FALLBACK_DEVICE_ERROR,
                    },
                    f.message,
                ),
            };
            *out = kind as i32;
            // SAFETY: `message_len` writable bytes when not NULL, by the header's contract.
            unsafe { write_message(message, message_len, text) }
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_backend_has_its_own_c_name() {
        for &b in super::offload::BACKENDS {
            assert_eq!(super::backend_c_name(b).to_str(), Ok(b));
        }
    }
}
