//! AscendCL's library, loaded at run time (dlopen, never closed) and initialized once per
//! process (`aclInit`; never `aclFinalize`, which would pull AscendCL from under the host app).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::api::{Acl, REPEAT_INITIALIZE, SUCCESS};
use crate::offload::dl;

/// The environment variable naming AscendCL's library when the options do not.
pub const ASCENDCL_LIB_ENV: &str = "DBRT_ASCENDCL_LIB";

/// AscendCL, loaded and initialized.
pub struct Library {
    pub acl: Acl,
    pub path: PathBuf,
}

static LIBRARY: OnceLock<Library> = OnceLock::new();
/// Serializes loading attempts; a failed one is not kept, so a later session may name another
/// (correct) path. The first that loads and initializes is the process's.
static LOADING: Mutex<()> = Mutex::new(());

/// The process's AscendCL, loading and initializing it from `option` (else
/// `DBRT_ASCENDCL_LIB`, else the loader's search path) the first time.
pub fn library(option: Option<&Path>) -> Result<&'static Library, String> {
    let path = dl::library_path(option, ASCENDCL_LIB_ENV, "libascendcl.so");
    let _guard = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(lib) = LIBRARY.get() {
        return match option.is_none() || dl::same_file(&lib.path, &path) {
            true => Ok(lib),
            false => Err(format!(
                "AscendCL is already loaded from {}; this process cannot also load {}",
                lib.path.display(),
                path.display()
            )),
        };
    }
    let lib = load(&path)?;
    Ok(LIBRARY.get_or_init(|| lib))
}

fn load(path: &Path) -> Result<Library, String> {
    // The handle is never closed: AscendCL keeps threads and device state that unloading
    // would pull from under them.
    let handle = dl::open(path).map_err(|why| {
        format!(
            "cannot load AscendCL from {}: {why} (install CANN's runtime, or set {ASCENDCL_LIB_ENV})",
            path.display()
        )
    })?;
    // SAFETY: a live handle; the names are AscendCL's documented entries with the declared
    // signatures.
    let acl = unsafe { Acl::resolve(handle) }.map_err(|name| {
        format!(
            "{} has no {name}: not AscendCL, or older than dbrt needs",
            path.display()
        )
    })?;
    // SAFETY: aclInit takes a JSON config path or NULL (no configuration).
    let code = unsafe { (acl.init)(std::ptr::null()) };
    if code != SUCCESS && code != REPEAT_INITIALIZE {
        let failure = super::api::Failure {
            call: "aclInit",
            code,
        };
        return Err(acl.describe_string(failure));
    }
    log::info!("loaded AscendCL from {}", path.display());
    Ok(Library {
        acl,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_is_not_ascendcl_does_not_load() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libascendcl.so");
        std::fs::write(&fake, b"not a library").unwrap();
        let e = super::load(&fake).err().unwrap();
        assert!(e.starts_with("cannot load AscendCL"), "{e}");
        assert!(e.contains("DBRT_ASCENDCL_LIB"), "{e}");
        // A library, but not AscendCL.
        let e = super::load(std::path::Path::new("libc.so.6"))
            .err()
            .unwrap();
        assert!(e.contains("has no aclInit"), "{e}");
    }
}
