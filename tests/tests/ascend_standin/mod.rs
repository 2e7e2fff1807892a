//! The stand-in AscendCL (tests/ascend/standin, built by tests/ascend/build.sh) seen from a
//! test: its path, and its control entries (counters, injected failures, run mode), reached by
//! opening the same library dbrt opened, which gives the same instance.

#![allow(dead_code)] // each test binary uses part of it

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The stand-in library's path, for `DBRT_ASCENDCL_LIB` / `OffloadOptions::ascendcl_library`.
pub const STANDIN_ENV: &str = "DBRT_ASCENDCL_STANDIN";

/// `struct standin_stats` (tests/ascend/standin/standin_control.h), every field a `uint64_t`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Live aclrtMalloc blocks and their bytes.
    pub allocations: u64,
    pub allocated_bytes: u64,
    pub contexts: u64,
    pub streams: u64,
    /// Loaded model instances.
    pub models: u64,
    pub descs: u64,
    pub datasets: u64,
    pub data_buffers: u64,
    /// aclrtSetDevice calls not yet matched by aclrtResetDevice.
    pub devices: u64,
    /// onnxruntime sessions (one per shared weight memory).
    pub ort_sessions: u64,
    /// Since the last reset:
    pub violations: u64,
    pub executes: u64,
    pub last_gear: u64,
    pub calls_total: u64,
    pub allocations_total: u64,
}

/// The stand-in's control entries.
pub struct Standin {
    pub path: PathBuf,
    reset: unsafe extern "C" fn(),
    fail: unsafe extern "C" fn(*const c_char, u32, i32),
    set_run_mode: unsafe extern "C" fn(i32),
    get_stats: unsafe extern "C" fn(*mut Stats),
    calls: unsafe extern "C" fn(*const c_char) -> u64,
    last_violation: unsafe extern "C" fn() -> *const c_char,
    /// AscendCL's own entries, for a test that plays the host app.
    pub acl: HostAcl,
}

/// The AscendCL entries a host app calls around dbrt (CANN's signatures).
pub struct HostAcl {
    pub set_device: unsafe extern "C" fn(i32) -> i32,
    pub reset_device: unsafe extern "C" fn(i32) -> i32,
    pub create_context: unsafe extern "C" fn(*mut *mut c_void, i32) -> i32,
    pub destroy_context: unsafe extern "C" fn(*mut c_void) -> i32,
    pub get_current_context: unsafe extern "C" fn(*mut *mut c_void) -> i32,
}

impl HostAcl {
    /// The context current on this thread (NULL if none).
    pub fn current(&self) -> *mut c_void {
        let mut c = std::ptr::null_mut();
        // SAFETY: writes one pointer.
        match unsafe { (self.get_current_context)(&mut c) } {
            0 => c,
            _ => std::ptr::null_mut(),
        }
    }
}

fn symbol(handle: *mut c_void, name: &CStr) -> *mut c_void {
    // SAFETY: a live handle and a NUL-terminated name.
    let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
    assert!(!p.is_null(), "the stand-in has no {name:?}");
    p
}

/// The entry `name` of the library `handle` as a function pointer of type `T`.
///
/// # Safety
/// `T` must be the function pointer type of the C function `name`.
unsafe fn entry<T: Copy>(handle: *mut c_void, name: &CStr) -> T {
    let p = symbol(handle, name);
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: a non-null symbol of type `T` (the caller's contract), pointer-sized (checked).
    unsafe { std::mem::transmute_copy(&p) }
}

impl Standin {
    fn load(path: PathBuf) -> Standin {
        let c = CString::new(path.to_str().expect("UTF-8 path")).unwrap();
        // SAFETY: a NUL-terminated path; the handle is kept for the process.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(!h.is_null(), "cannot open the stand-in {}", path.display());
        // SAFETY: standin_control.h declares this and the entries below with these C signatures.
        let reset = unsafe { entry(h, c"standin_reset") };
        // SAFETY: as above.
        let fail = unsafe { entry(h, c"standin_fail") };
        // SAFETY: as above.
        let set_run_mode = unsafe { entry(h, c"standin_set_run_mode") };
        // SAFETY: as above.
        let get_stats = unsafe { entry(h, c"standin_get_stats") };
        // SAFETY: as above.
        let calls = unsafe { entry(h, c"standin_calls") };
        // SAFETY: as above.
        let last_violation = unsafe { entry(h, c"standin_last_violation") };
        // SAFETY: CANN's documented signatures (acl_rt.h), as the stand-in exports them.
        let acl = unsafe {
            HostAcl {
                set_device: entry(h, c"aclrtSetDevice"),
                reset_device: entry(h, c"aclrtResetDevice"),
                create_context: entry(h, c"aclrtCreateContext"),
                destroy_context: entry(h, c"aclrtDestroyContext"),
                get_current_context: entry(h, c"aclrtGetCurrentContext"),
            }
        };
        Standin {
            path,
            acl,
            reset,
            fail,
            set_run_mode,
            get_stats,
            calls,
            last_violation,
        }
    }

    pub fn reset(&self) {
        // SAFETY: no arguments.
        unsafe { (self.reset)() }
    }

    /// The `nth` call from now of `function` fails with `error`.
    pub fn fail(&self, function: &str, nth: u32, error: i32) {
        let f = CString::new(function).unwrap();
        // SAFETY: a NUL-terminated name, copied by the stand-in.
        unsafe { (self.fail)(f.as_ptr(), nth, error) }
    }

    pub fn set_run_mode(&self, mode: i32) {
        // SAFETY: an int.
        unsafe { (self.set_run_mode)(mode) }
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        // SAFETY: writes one struct of this layout.
        unsafe { (self.get_stats)(&mut s) };
        s
    }

    pub fn calls(&self, function: &str) -> u64 {
        let f = CString::new(function).unwrap();
        // SAFETY: a NUL-terminated name.
        unsafe { (self.calls)(f.as_ptr()) }
    }

    pub fn last_violation(&self) -> String {
        // SAFETY: NULL or a NUL-terminated string owned by the stand-in.
        let p = unsafe { (self.last_violation)() };
        match p.is_null() {
            true => String::new(),
            // SAFETY: non-null, NUL-terminated.
            false => unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned(),
        }
    }

    /// No discipline violation so far (the message of the last one otherwise).
    pub fn assert_clean(&self) {
        let v = self.stats().violations;
        assert_eq!(
            v,
            0,
            "stand-in violations: {v}, last: {}",
            self.last_violation()
        );
    }
}

/// The stand-in, if built and onnxruntime is there for it; `None` means skip (said on stderr),
/// and under `DBRT_REQUIRE_ONNXRUNTIME=1` (CI) their absence fails the test.
pub fn standin(test: &str) -> Option<&'static Standin> {
    static S: OnceLock<Option<Standin>> = OnceLock::new();
    let missing: Vec<&str> = [STANDIN_ENV, "DBRT_ONNXRUNTIME_LIB"]
        .into_iter()
        .filter(|v| std::env::var_os(v).is_none())
        .collect();
    if !missing.is_empty() {
        let required = std::env::var("DBRT_REQUIRE_ONNXRUNTIME").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{test}: DBRT_REQUIRE_ONNXRUNTIME=1 but {missing:?} unset"
        );
        eprintln!(
            "{test}: skipped, {missing:?} unset (tests/ascend/build.sh builds the stand-in; \
             eval \"$(scripts/npu-env.sh)\" gives onnxruntime)"
        );
        return None;
    }
    S.get_or_init(|| {
        Some(Standin::load(PathBuf::from(
            std::env::var_os(STANDIN_ENV).unwrap(),
        )))
    })
    .as_ref()
}

/// The stand-in is one instance per process: its tests run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// The SoC the stand-in ATC is told.
pub const SOC: &str = "Ascend310B1";

/// An Ascend export of `model` for `gears` (f32), compiled by the stand-in ATC with the
/// arguments `atc_args` gives, and registered in its manifest.
pub fn compiled(model: &Path, gears: &[usize]) -> tempfile::TempDir {
    use dbrt_convert::export::{atc_args, export_ascend, register_om, AscendOptions};
    let dir = tempfile::tempdir().expect("tempdir");
    let options = AscendOptions {
        gears: gears.to_vec(),
        precision: dbrt::offload::manifest::Precision::F32,
    };
    let manifest =
        export_ascend(model, dir.path(), &options).unwrap_or_else(|e| panic!("export: {e}"));
    let args = atc_args(&manifest, dir.path(), SOC).unwrap();
    let atc = dbrt_tests::workspace_root().join("tests/ascend/atc-standin");
    let out = std::process::Command::new("python3")
        .arg(&atc)
        .args(&args)
        .output()
        .expect("python3 runs the stand-in ATC");
    assert!(
        out.status.success(),
        "atc-standin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    register_om(dir.path(), None, SOC).unwrap_or_else(|e| panic!("register-om: {e}"));
    dir
}

/// Session options for backend `ascend` on the stand-in.
pub fn options(
    s: &Standin,
    artifacts: Option<&Path>,
    fallback: dbrt::offload::FallbackPolicy,
) -> dbrt::SessionOptions {
    dbrt::SessionOptions {
        offload: dbrt::offload::OffloadOptions {
            backend: dbrt::offload::BackendChoice::Named("ascend"),
            artifacts: artifacts.map(Path::to_path_buf),
            fallback,
            ascendcl_library: Some(s.path.clone()),
            ..Default::default()
        },
        ..Default::default()
    }
}
