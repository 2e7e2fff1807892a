//! What the backends' run-time loaded libraries share: where a library is looked for, and
//! opening it (never closed: the vendors' runtimes keep threads and state that unloading would
//! pull from under them).

use std::ffi::{c_void, CStr, CString};
use std::path::{Path, PathBuf};

/// A library's path: the session's option, else the environment variable `env`, else `name`
/// for the loader's search path.
pub fn library_path(option: Option<&Path>, env: &str, name: &str) -> PathBuf {
    match option {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os(env)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(name)),
    }
}

/// Whether two paths name one file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

pub fn c_path(path: &Path) -> Result<CString, String> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{} holds a NUL byte", path.display()))
}

/// Opens `path` (`RTLD_NOW | RTLD_LOCAL`); the error is the loader's own text.
pub fn open(path: &Path) -> Result<*mut c_void, String> {
    let c = c_path(path)?;
    // SAFETY: a NUL-terminated path.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if !handle.is_null() {
        return Ok(handle);
    }
    // SAFETY: dlerror returns NULL or a NUL-terminated thread-local string.
    let e = unsafe { libc::dlerror() };
    Err(match e.is_null() {
        true => "unknown error".into(),
        // SAFETY: non-null, NUL-terminated (above).
        false => unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned(),
    })
}
