//! libdbrt: the C interface of dbrt, declared in `include/dbrt.h` (generated from this crate by
//! cbindgen; `tests/header.rs` fails when the checked-in header is stale).
//!
//! Conventions, after llama.h and onnxruntime's C API: opaque handles with create/free pairs
//! (every free accepts NULL); a `dbrt_status` from every fallible call and the message in a
//! thread-local `dbrt_last_error()`; strings as pointer + length, validated as UTF-8; outputs
//! into the caller's buffers with their capacity; options through a builder with setters. No
//! panic crosses the boundary: every function runs in [`status::guard`].
//!
//! Names follow the Rust [`Session`]'s: `dbrt_session_run_*` takes token ids,
//! `dbrt_session_classify_*` takes text. Every output goes into a caller's buffer, so no C name
//! carries Rust's `_into`.

// Exported functions check every pointer they dereference and say so in SAFETY comments; the
// remaining contract (a pointer, if not NULL, points at what the header says) is C's.
#![allow(clippy::missing_safety_doc)]
// C names: the handle types are spelled as the header spells them.
#![allow(non_camel_case_types)]

mod args;
mod logging;
mod offload;
mod status;

use std::cell::UnsafeCell;
use std::ffi::{c_char, CStr};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dbrt_runtime::format::ModelFile;
use dbrt_runtime::kernels::Isa;
use dbrt_runtime::{
    Model, Sequence, Session, SessionOptions, Truncation, WeightType, DEFAULT_HYPOTHESIS_TEMPLATE,
};

pub use args::dbrt_str;
pub use logging::{dbrt_log_callback, dbrt_log_level};
pub use offload::{dbrt_fallback_kind, dbrt_fallback_policy};
pub use status::dbrt_status;
use status::dbrt_status::*;
use status::{guard, Failure, Outcome};

/// The version of this C API: it changes when a declaration in this header changes
/// incompatibly. Compare it with `dbrt_api_version()` to catch a header/library mismatch.
pub const DBRT_API_VERSION: u32 = 2;

/// An opened model: immutable, shareable by any number of threads and sessions.
pub struct dbrt_model {
    model: Arc<Model>,
    /// Label names, each NUL-terminated for C.
    labels: Vec<Vec<u8>>,
}

/// Session options, set one by one before `dbrt_session_create`.
pub struct dbrt_session_options {
    options: SessionOptions,
}

/// A session: the scratch memory, kernels and worker threads that run a model. One thread
/// at a time; create one session per thread.
pub struct dbrt_session {
    /// `None` once closed.
    inner: UnsafeCell<Option<Session>>,
    /// Set while a call uses `inner`: a second thread gets `DBRT_SESSION_BUSY` instead of a
    /// data race.
    busy: AtomicBool,
}

/// Storage precision of a model's large matrices.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum dbrt_weight_type {
    DBRT_WEIGHTS_F32 = 0,
    DBRT_WEIGHTS_F16 = 1,
    DBRT_WEIGHTS_BF16 = 2,
    DBRT_WEIGHTS_INT8 = 3,
}

fn model_ref<'a>(m: *const dbrt_model) -> Outcome<&'a dbrt_model> {
    // SAFETY: a non-NULL model handle comes from dbrt_model_open* and is live until
    // dbrt_model_free (the header's contract).
    unsafe { m.as_ref() }.ok_or_else(|| Failure::null("model"))
}

fn options_mut<'a>(o: *mut dbrt_session_options) -> Outcome<&'a mut SessionOptions> {
    // SAFETY: a non-NULL options handle comes from dbrt_session_options_create, is live until
    // its free, and is used by one thread at a time (the header's contract).
    unsafe { o.as_mut() }
        .map(|o| &mut o.options)
        .ok_or_else(|| Failure::null("options"))
}

/// Runs `f` on the session behind `s`, which only this call may use meanwhile.
fn with_session<T>(s: *mut dbrt_session, f: impl FnOnce(&mut Session) -> Outcome<T>) -> Outcome<T> {
    // SAFETY: a non-NULL session handle comes from dbrt_session_create and is live until
    // dbrt_session_free (the header's contract). Only `busy` is touched through this shared
    // reference before the flag is won.
    let handle = unsafe { s.as_ref() }.ok_or_else(|| Failure::null("session"))?;
    if handle.busy.swap(true, Ordering::Acquire) {
        return Err(Failure::new(
            DBRT_SESSION_BUSY,
            "the session is in use by another thread (one thread at a time)",
        ));
    }
    struct Release<'a>(&'a AtomicBool);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
        }
    }
    let _release = Release(&handle.busy);
    // SAFETY: winning the busy flag gives this call the only access to `inner` until
    // `_release` drops.
    let inner = unsafe { &mut *handle.inner.get() };
    let session = inner
        .as_mut()
        .ok_or_else(|| Failure::new(DBRT_SESSION_CLOSED, "the session is closed"))?;
    f(session)
}

fn isa_name(isa: Isa) -> &'static CStr {
    match isa {
        Isa::Scalar => c"scalar",
        Isa::Avx2 => c"avx2",
        Isa::Avx512Vnni => c"avx512vnni",
        Isa::Neon => c"neon",
        Isa::NeonDotprod => c"neon-dotprod",
        Isa::NeonI8mm => c"neon-i8mm",
    }
}

/// Drops a handle made by `Box::into_raw`, catching a panic in its destructor. NULL is ignored.
///
/// # Safety
/// `handle` is NULL or came from `Box::into_raw` and is not used again.
unsafe fn free_handle<T>(handle: *mut T) {
    if handle.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: the caller's contract.
        drop(unsafe { Box::from_raw(handle) });
        Ok(())
    });
}

/// The defaults of the C API's session options: Rust's, with batches of up to 16.
fn default_options() -> SessionOptions {
    SessionOptions {
        max_batch: 16,
        ..Default::default()
    }
}

fn new_model(model: Model) -> *mut dbrt_model {
    let labels = model
        .labels()
        .iter()
        .map(|l| l.bytes().chain([0]).collect())
        .collect();
    Box::into_raw(Box::new(dbrt_model {
        model: Arc::new(model),
        labels,
    }))
}

/// Bytes a caller keeps alive and unchanged for as long as the model (and its sessions) live.
struct CallerMemory {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the memory is only read, and the caller guarantees it stays valid and unchanged until
// the last user of the model is freed (dbrt_model_open_memory_borrowed's contract), so sharing
// the pointer between threads is sound.
unsafe impl Send for CallerMemory {}
// SAFETY: as above: shared read-only access.
unsafe impl Sync for CallerMemory {}

impl AsRef<[u8]> for CallerMemory {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: checked non-NULL, aligned and not too long at creation; valid for the
        // model's lifetime by the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Writes the new model into `*out_model` (NULL first, so a failure leaves NULL there).
fn open_into(out_model: *mut *mut dbrt_model, open: impl FnOnce() -> Outcome<Model>) -> Outcome {
    // SAFETY: out_model is checked for NULL and alignment; writable by the header's contract.
    let out = unsafe { args::out(out_model, "out_model") }?;
    *out = null_mut();
    *out = new_model(open()?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Version and errors

/// The library's version, e.g. "0.1.0": a static NUL-terminated string; never fails.
#[no_mangle]
pub extern "C" fn dbrt_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("version"),
        };
    VERSION.as_ptr()
}

/// The C API version the library was built with; equals `DBRT_API_VERSION` when the header
/// and the library match. Never fails.
#[no_mangle]
pub extern "C" fn dbrt_api_version() -> u32 {
    DBRT_API_VERSION
}

/// The name of a status ("DBRT_OK", "DBRT_BUFFER_TOO_SMALL", ...), or "DBRT_UNKNOWN_STATUS"
/// for a value that is not one. A static NUL-terminated string; never fails. Takes the value
/// as an int so that any value is safe to pass.
#[no_mangle]
pub extern "C" fn dbrt_status_str(status: i32) -> *const c_char {
    let name: &[u8] = usize::try_from(status)
        .ok()
        .and_then(|i| dbrt_status::ALL.get(i))
        .map_or(b"DBRT_UNKNOWN_STATUS\0", |s| s.name());
    name.as_ptr().cast()
}

/// The message of the last call that failed on the calling thread ("" if none has).
///
/// Lifetime: the string belongs to the library and stays valid until the next failing call on
/// the same thread; copy it to keep it. Thread safety: each thread has its own. Never fails.
#[no_mangle]
pub extern "C" fn dbrt_last_error() -> *const c_char {
    status::last_error()
}

// ---------------------------------------------------------------------------------------------
// Models

/// Opens the `.dbrt` file at `path` (`path_len` bytes, no terminator needed), mapping it
/// read-only, and validates it.
///
/// The file must not change while the model is open: the model reads its weights from the
/// map, so a program that truncates the file in place makes the process fault (SIGBUS) and
/// one that copies another model over it in place changes the answers. While the model is
/// open the file holds a shared advisory lock (flock), and dbrt's own tools refuse to write
/// over it; they replace files by renaming a new file over them, which open maps survive.
/// Where other programs may rewrite the file, use `dbrt_model_open_read`.
///
/// Ownership: on success `*out_model` is a new model the caller frees with `dbrt_model_free`;
/// on failure it is set to NULL. The path is not kept.
/// Thread safety: a model is immutable; any number of threads and sessions may use it at once.
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8 (where paths must be UTF-8), DBRT_IO_ERROR,
/// DBRT_NOT_A_MODEL, DBRT_TRUNCATED_FILE, DBRT_CORRUPT_FILE, DBRT_UNSUPPORTED_FORMAT,
/// DBRT_INVALID_MODEL, DBRT_UNSUPPORTED_MODEL, DBRT_TOKENIZER_ERROR (DBRT_IO_ERROR also when
/// a process writing the file holds its exclusive lock).
#[no_mangle]
pub unsafe extern "C" fn dbrt_model_open(
    path: *const c_char,
    path_len: usize,
    out_model: *mut *mut dbrt_model,
) -> dbrt_status {
    guard(|| {
        open_into(out_model, || {
            // SAFETY: `path` is readable for `path_len` bytes by this function's contract.
            Ok(Model::open(unsafe { path_arg(path, path_len) }?)?)
        })
    })
}

/// Opens the `.dbrt` file at `path` like `dbrt_model_open`, but reads it into memory instead
/// of mapping it: nothing done to the file afterwards (truncating it, copying another model
/// over it) reaches the model, at the cost of the file's size in memory for as long as the
/// model lives.
///
/// Ownership: as `dbrt_model_open`.
/// Errors: as `dbrt_model_open`, and DBRT_OUT_OF_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_model_open_read(
    path: *const c_char,
    path_len: usize,
    out_model: *mut *mut dbrt_model,
) -> dbrt_status {
    guard(|| {
        open_into(out_model, || {
            // SAFETY: `path` is readable for `path_len` bytes by this function's contract.
            Ok(Model::open_read(unsafe { path_arg(path, path_len) }?)?)
        })
    })
}

/// A path from C: `path_len` bytes, any bytes on Unix, UTF-8 elsewhere.
///
/// # Safety
/// `path` points at `path_len` readable bytes, or is NULL (an error).
unsafe fn path_arg<'a>(path: *const c_char, path_len: usize) -> Outcome<&'a std::path::Path> {
    // SAFETY: `path_len` readable bytes by the caller's contract; checked for NULL.
    let bytes = unsafe { args::slice(path.cast::<u8>(), path_len, "path") }?;
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(std::path::Path::new(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    Ok(std::path::Path::new(std::str::from_utf8(bytes).map_err(
        |_| Failure::new(DBRT_INVALID_UTF8, "the path is not valid UTF-8"),
    )?))
}

/// Opens a model from `len` bytes in memory (an Android asset, an iOS bundle resource),
/// copying them: the caller may free its buffer as soon as this returns.
///
/// Ownership: as `dbrt_model_open`. Costs a copy of the file; see
/// `dbrt_model_open_memory_borrowed` to avoid it.
/// Errors: as `dbrt_model_open`, without DBRT_IO_ERROR, and DBRT_OUT_OF_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_model_open_memory(
    data: *const u8,
    len: usize,
    out_model: *mut *mut dbrt_model,
) -> dbrt_status {
    guard(|| {
        open_into(out_model, || {
            // SAFETY: `len` readable bytes by the header's contract; checked for NULL.
            let bytes = unsafe { args::slice(data, len, "data") }?;
            Ok(Model::from_file(ModelFile::from_bytes_copied(bytes)?)?)
        })
    })
}

/// Opens a model in place from `len` bytes in memory, without copying: `data` must start on
/// a 64-byte boundary (memory from mmap does; otherwise use `dbrt_model_open_memory`).
///
/// Lifetime: the caller keeps the bytes valid and unchanged until `dbrt_model_free` of this
/// model AND `dbrt_session_free` of every session created from it have returned.
/// Ownership: as `dbrt_model_open`.
/// Errors: as `dbrt_model_open_memory`, and DBRT_MISALIGNED_BUFFER.
#[no_mangle]
pub unsafe extern "C" fn dbrt_model_open_memory_borrowed(
    data: *const u8,
    len: usize,
    out_model: *mut *mut dbrt_model,
) -> dbrt_status {
    guard(|| {
        open_into(out_model, || {
            // Checks NULL and length once; CallerMemory re-forms the slice on each use.
            // SAFETY: `len` readable bytes by the header's contract.
            unsafe { args::slice(data, len, "data") }?;
            let memory = CallerMemory { ptr: data, len };
            Ok(Model::from_file(ModelFile::from_buffer(memory)?)?)
        })
    })
}

/// Releases the caller's reference to a model. Sessions created from it hold their own and
/// keep working until they are freed. NULL is accepted and ignored.
///
/// Lifetime: `model` must not be used after this call. Thread safety: no other thread may be
/// using this handle (sessions are independent of it).
#[no_mangle]
pub unsafe extern "C" fn dbrt_model_free(model: *mut dbrt_model) {
    // SAFETY: a non-NULL handle came from Box::into_raw in new_model and is freed once (the
    // header's contract).
    unsafe { free_handle(model) };
}

/// The number of labels (logits) the model outputs into `*out_count`.
/// Thread safety: any thread. Errors: DBRT_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn dbrt_model_num_labels(
    model: *const dbrt_model,
    out_count: *mut usize,
) -> dbrt_status {
    guard(|| {
        let m = model_ref(model)?;
        // SAFETY: checked for NULL and alignment; writable by the header's contract.
        *unsafe { args::out(out_count, "out_count") }? = m.labels.len();
        Ok(())
    })
}

/// The name of label `index` (the logit at that position): `*out_name` is NUL-terminated,
/// `*out_len` (if `out_len` is not NULL) its length in bytes without the terminator.
///
/// Lifetime: the string belongs to the model and lives until `dbrt_model_free`.
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_ARGUMENT (index out of range).
#[no_mangle]
pub unsafe extern "C" fn dbrt_model_label(
    model: *const dbrt_model,
    index: usize,
    out_name: *mut *const c_char,
    out_len: *mut usize,
) -> dbrt_status {
    guard(|| {
        let m = model_ref(model)?;
        // SAFETY: checked for NULL and alignment; writable by the header's contract.
        let name = unsafe { args::out(out_name, "out_name") }?;
        let label = m.labels.get(index).ok_or_else(|| {
            Failure::new(
                DBRT_INVALID_ARGUMENT,
                format!("label {index} of {}", m.labels.len()),
            )
        })?;
        *name = label.as_ptr().cast();
        if !out_len.is_null() {
            // SAFETY: checked for NULL and alignment; writable by the header's contract.
            *unsafe { args::out(out_len, "out_len") }? = label.len() - 1;
        }
        Ok(())
    })
}

/// The label the model names entailment into `*out_index`: the one its file stores
/// (`dbrt-convert --entailment-label`), else the first whose lower-cased name starts with
/// "entail", as Hugging Face's zero-shot pipeline looks it up.
/// Errors: DBRT_NULL_POINTER, DBRT_NO_ENTAILMENT_LABEL when there is none (the default
/// model's labels are "neutral" and "contradiction_or_entailment").
#[no_mangle]
pub unsafe extern "C" fn dbrt_model_entailment_label(
    model: *const dbrt_model,
    out_index: *mut usize,
) -> dbrt_status {
    guard(|| {
        let m = model_ref(model)?;
        // SAFETY: checked for NULL and alignment; writable by the header's contract.
        let out = unsafe { args::out(out_index, "out_index") }?;
        *out = m
            .model
            .entailment_label()
            .ok_or(dbrt_runtime::Error::NoEntailmentLabel)?;
        Ok(())
    })
}

/// The longest input the model takes, in tokens, into `*out_tokens`.
/// Errors: DBRT_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn dbrt_model_max_sequence_length(
    model: *const dbrt_model,
    out_tokens: *mut usize,
) -> dbrt_status {
    guard(|| {
        let m = model_ref(model)?;
        // SAFETY: checked for NULL and alignment; writable by the header's contract.
        *unsafe { args::out(out_tokens, "out_tokens") }? = m.model.max_sequence_length();
        Ok(())
    })
}

/// The width of a hidden state (one token's vector in `dbrt_session_run_hidden`) into
/// `*out_size`. Errors: DBRT_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn dbrt_model_hidden_size(
    model: *const dbrt_model,
    out_size: *mut usize,
) -> dbrt_status {
    guard(|| {
        let m = model_ref(model)?;
        // SAFETY: checked for NULL and alignment; writable by the header's contract.
        *unsafe { args::out(out_size, "out_size") }? = m.model.config().hidden_size;
        Ok(())
    })
}

/// The storage precision of the model's weights into `*out_type`.
/// Errors: DBRT_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn dbrt_model_weight_type(
    model: *const dbrt_model,
    out_type: *mut dbrt_weight_type,
) -> dbrt_status {
    guard(|| {
        let m = model_ref(model)?;
        // SAFETY: checked for NULL and alignment; writable by the header's contract.
        *unsafe { args::out(out_type, "out_type") }? = match m.model.weight_type() {
            WeightType::F32 => dbrt_weight_type::DBRT_WEIGHTS_F32,
            WeightType::F16 => dbrt_weight_type::DBRT_WEIGHTS_F16,
            WeightType::BF16 => dbrt_weight_type::DBRT_WEIGHTS_BF16,
            WeightType::Int8 => dbrt_weight_type::DBRT_WEIGHTS_INT8,
        };
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Session options

/// New session options with the defaults: 1 thread, the model's maximum length, batches of
/// up to 16, the best kernels for this CPU (or DBRT_FORCE_ISA), longest-first truncation, the
/// entailment label found by name.
///
/// Ownership: `*out_options` is freed with `dbrt_session_options_free`; it may be freed right
/// after the sessions that use it are created. Thread safety: one thread at a time.
/// Errors: DBRT_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_create(
    out_options: *mut *mut dbrt_session_options,
) -> dbrt_status {
    guard(|| {
        // SAFETY: checked for NULL and alignment; writable by the header's contract.
        let out = unsafe { args::out(out_options, "out_options") }?;
        *out = Box::into_raw(Box::new(dbrt_session_options {
            options: default_options(),
        }));
        Ok(())
    })
}

/// Frees session options. NULL is accepted and ignored.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_free(options: *mut dbrt_session_options) {
    // SAFETY: a non-NULL handle came from Box::into_raw in dbrt_session_options_create and is freed once (the
    // header's contract).
    unsafe { free_handle(options) };
}

/// Threads one forward pass uses, the caller's included (1 to 256); more than the cores available
/// to the process run as many as there are cores (logged as a warning; `dbrt_session_threads`
/// says how many run). Results are bit-identical for every thread count.
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_threads(
    options: *mut dbrt_session_options,
    threads: usize,
) -> dbrt_status {
    guard(|| {
        let o = options_mut(options)?;
        if !(1..=256).contains(&threads) {
            return Err(Failure::new(
                DBRT_INVALID_ARGUMENT,
                format!("{threads} threads (1 to 256)"),
            ));
        }
        o.threads = threads;
        Ok(())
    })
}

/// The longest input a session takes, in tokens (1 to the model's maximum, and at least 3 for
/// a model with a tokenizer: `[CLS] [SEP] [SEP]` must fit; longer pairs are
/// truncated when tokenized from text, longer token ids are DBRT_INPUT_TOO_LONG). Sets the
/// session's memory. Checked against the model by `dbrt_session_create`.
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_ARGUMENT (0).
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_max_sequence_length(
    options: *mut dbrt_session_options,
    tokens: usize,
) -> dbrt_status {
    guard(|| {
        let o = options_mut(options)?;
        if tokens == 0 {
            return Err(Failure::new(
                DBRT_INVALID_ARGUMENT,
                "a maximum length of 0 tokens",
            ));
        }
        o.max_sequence_length = Some(tokens);
        Ok(())
    })
}

/// Most pairs one `dbrt_session_classify_batch` call takes (at least 1).
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_ARGUMENT (0).
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_max_batch(
    options: *mut dbrt_session_options,
    max_batch: usize,
) -> dbrt_status {
    guard(|| {
        let o = options_mut(options)?;
        if max_batch == 0 {
            return Err(Failure::new(DBRT_INVALID_ARGUMENT, "a maximum batch of 0"));
        }
        o.max_batch = max_batch;
        Ok(())
    })
}

/// The kernel tier by name: "auto" (the best this CPU runs), "scalar", "avx2", "avx512vnni",
/// "neon", "neon-dotprod", "neon-i8mm". Whether the CPU runs it is checked by `dbrt_session_create`
/// (DBRT_UNSUPPORTED_ISA). Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8,
/// DBRT_INVALID_ARGUMENT (unknown name).
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_isa(
    options: *mut dbrt_session_options,
    name: *const c_char,
    name_len: usize,
) -> dbrt_status {
    guard(|| {
        let o = options_mut(options)?;
        // SAFETY: `name_len` readable bytes by the header's contract; checked for NULL.
        let name = unsafe { args::text(name, name_len, "name") }?;
        o.isa = match name {
            "auto" => None,
            n => Some(Isa::parse(n)?),
        };
        Ok(())
    })
}

/// How a pair too long for the session is cut: "longest_first" (the default, as tokenizers
/// does), "only_first" or "only_second".
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8, DBRT_INVALID_ARGUMENT (unknown name).
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_truncation(
    options: *mut dbrt_session_options,
    name: *const c_char,
    name_len: usize,
) -> dbrt_status {
    guard(|| {
        let o = options_mut(options)?;
        // SAFETY: `name_len` readable bytes by the header's contract; checked for NULL.
        o.truncation = match unsafe { args::text(name, name_len, "name") }? {
            "longest_first" => Truncation::LongestFirst,
            "only_first" => Truncation::OnlyFirst,
            "only_second" => Truncation::OnlySecond,
            other => {
                return Err(Failure::new(
                    DBRT_INVALID_ARGUMENT,
                    format!("truncation '{other}' (longest_first, only_first, only_second)"),
                ))
            }
        };
        Ok(())
    })
}

/// The label zero-shot classification reads as entailment, for models whose labels are not
/// named. Checked against the model by `dbrt_session_create`.
/// Errors: DBRT_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_options_set_entailment_label(
    options: *mut dbrt_session_options,
    index: usize,
) -> dbrt_status {
    guard(|| {
        options_mut(options)?.entailment_label = Some(index);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// Creates a session over `model` with `options` (NULL for the defaults). Everything a run
/// needs is allocated here: the calls on a session allocate nothing.
///
/// Ownership: `*out_session` is freed with `dbrt_session_free` (NULL on failure). The session
/// holds its own reference to the model, and copies the options.
/// Thread safety: a session serves one thread at a time (a concurrent call gets
/// DBRT_SESSION_BUSY); create one per thread, all over one model.
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_ARGUMENT (an option out of range for this model,
/// threads that cannot start), DBRT_UNSUPPORTED_ISA, DBRT_OUT_OF_MEMORY (the session's memory,
/// which grows with the maximum length squared and the threads, cannot be had).
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_create(
    model: *const dbrt_model,
    options: *const dbrt_session_options,
    out_session: *mut *mut dbrt_session,
) -> dbrt_status {
    guard(|| {
        // SAFETY: checked for NULL and alignment; writable by the header's contract.
        let out = unsafe { args::out(out_session, "out_session") }?;
        *out = null_mut();
        let m = model_ref(model)?;
        // SAFETY: a non-NULL options handle is live and not being modified (the contract).
        let options = match unsafe { options.as_ref() } {
            Some(o) => o.options.clone(),
            None => default_options(),
        };
        let session = Session::new(m.model.clone(), options)?;
        *out = Box::into_raw(Box::new(dbrt_session {
            inner: UnsafeCell::new(Some(session)),
            busy: AtomicBool::new(false),
        }));
        Ok(())
    })
}

/// Closes a session: stops its threads and frees its memory now. The handle stays valid: every
/// later call on it returns DBRT_SESSION_CLOSED, closing again is a no-op, and
/// `dbrt_session_free` still frees it. Errors: DBRT_NULL_POINTER, DBRT_SESSION_BUSY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_close(session: *mut dbrt_session) -> dbrt_status {
    guard(|| {
        // SAFETY: a non-NULL handle is live until dbrt_session_free (the header's contract).
        let handle = unsafe { session.as_ref() }.ok_or_else(|| Failure::null("session"))?;
        if handle.busy.swap(true, Ordering::Acquire) {
            return Err(Failure::new(
                DBRT_SESSION_BUSY,
                "the session is in use by another thread",
            ));
        }
        // SAFETY: winning the busy flag gives this call the only access to `inner`.
        let closed = unsafe { (*handle.inner.get()).take() };
        handle.busy.store(false, Ordering::Release);
        drop(closed);
        Ok(())
    })
}

/// Frees a session, open or closed. NULL is accepted and ignored.
/// Lifetime: `session` must not be used after this call, nor by another thread during it.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_free(session: *mut dbrt_session) {
    // SAFETY: a non-NULL handle came from Box::into_raw in dbrt_session_create and is freed once (the
    // header's contract).
    unsafe { free_handle(session) };
}

/// The kernel tier the session runs ("avx2", "neon-dotprod", ...) into `*out_name`: a static
/// NUL-terminated string. Errors: DBRT_NULL_POINTER, DBRT_SESSION_CLOSED, DBRT_SESSION_BUSY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_isa(
    session: *mut dbrt_session,
    out_name: *mut *const c_char,
) -> dbrt_status {
    // SAFETY: the header's contract for both pointers.
    unsafe { session_name(session, out_name, |s| isa_name(s.isa())) }
}

/// Writes the static name `name` gives for the session into `*out_name`.
///
/// # Safety
/// `session` is NULL or a live session handle; `out_name` is NULL or writable.
pub(crate) unsafe fn session_name(
    session: *mut dbrt_session,
    out_name: *mut *const c_char,
    name: impl FnOnce(&Session) -> &'static CStr,
) -> dbrt_status {
    guard(|| {
        // SAFETY: checked for NULL and alignment; writable by the caller's contract.
        let out = unsafe { args::out(out_name, "out_name") }?;
        *out = with_session(session, |s| Ok(name(s).as_ptr()))?;
        Ok(())
    })
}

/// The threads the session runs into `*out_threads`: the count its options asked for, or the
/// cores available to the process when that is fewer.
/// Errors: DBRT_NULL_POINTER, DBRT_SESSION_CLOSED, DBRT_SESSION_BUSY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_threads(
    session: *mut dbrt_session,
    out_threads: *mut usize,
) -> dbrt_status {
    guard(|| {
        // SAFETY: checked for NULL and alignment; writable by the header's contract.
        let out = unsafe { args::out(out_threads, "out_threads") }?;
        *out = with_session(session, |s| Ok(s.threads()))?;
        Ok(())
    })
}

/// Tokenizes a text, or a pair when `pair` is not NULL, as the model's tokenizer does
/// ([CLS] text [SEP] pair [SEP], truncated to the session's maximum length), into the caller's
/// `ids` and, when `type_ids` is not NULL, `type_ids`, each of `capacity` entries.
///
/// `*out_len` receives the number of tokens; if it exceeds `capacity` the call returns
/// DBRT_BUFFER_TOO_SMALL with `*out_len` set to the size needed and the buffers untouched.
/// Strings: `text_len` / `pair_len` bytes of UTF-8; a NULL `pair` needs `pair_len` 0.
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8, DBRT_BUFFER_TOO_SMALL, DBRT_INPUT_TOO_LONG
/// (a single word longer than the tokenizer takes), DBRT_TOKENIZER_ERROR, DBRT_SESSION_CLOSED,
/// DBRT_SESSION_BUSY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_tokenize(
    session: *mut dbrt_session,
    text: *const c_char,
    text_len: usize,
    pair: *const c_char,
    pair_len: usize,
    ids: *mut u32,
    type_ids: *mut u32,
    capacity: usize,
    out_len: *mut usize,
) -> dbrt_status {
    guard(|| {
        // SAFETY: checked for NULL and alignment; writable by the header's contract.
        let out_len = unsafe { args::out(out_len, "out_len") }?;
        // SAFETY: readable bytes of the given length by the header's contract.
        let text = unsafe { args::text(text, text_len, "text") }?;
        // SAFETY: as `text`.
        let pair = unsafe { args::optional_text(pair, pair_len, "pair") }?;
        with_session(session, |s| {
            let (got_ids, got_types) = s.tokenize(text, pair)?;
            let n = got_ids.len();
            *out_len = n;
            // SAFETY: `capacity` writable entries by the header's contract; checked for NULL.
            let ids = unsafe { args::out_slice(ids, capacity, n, "ids") }?;
            let types = match type_ids.is_null() {
                true => None,
                // SAFETY: as for `ids`.
                false => Some(unsafe { args::out_slice(type_ids, capacity, n, "type_ids") }?),
            };
            ids.copy_from_slice(got_ids);
            if let Some(t) = types {
                t.copy_from_slice(got_types);
            }
            Ok(())
        })
    })
}

/// Classifies a text, or a (premise, hypothesis) pair when `pair` is not NULL: label
/// probabilities (softmax of the logits) into `probs`, which holds `capacity` floats (at least
/// the model's label count; DBRT_BUFFER_TOO_SMALL otherwise).
/// Strings: as `dbrt_session_tokenize`. Allocates nothing.
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8, DBRT_BUFFER_TOO_SMALL, DBRT_INPUT_TOO_LONG
/// (a single word longer than the tokenizer takes), DBRT_INVALID_ARGUMENT (a pair that the
/// session's only-first / only-second truncation cannot fit), DBRT_TOKENIZER_ERROR,
/// DBRT_UNSUPPORTED_MODEL (no classification head), DBRT_INVALID_MODEL (weights that overflow
/// f32 on this input: no NaN is ever returned), DBRT_SESSION_CLOSED, DBRT_SESSION_BUSY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_classify(
    session: *mut dbrt_session,
    text: *const c_char,
    text_len: usize,
    pair: *const c_char,
    pair_len: usize,
    probs: *mut f32,
    capacity: usize,
) -> dbrt_status {
    // SAFETY: forwarded: the same contract.
    unsafe {
        pair_outputs(
            session, text, text_len, pair, pair_len, probs, capacity, true,
        )
    }
}

/// As `dbrt_session_classify`, with the raw logits instead of probabilities.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_classify_logits(
    session: *mut dbrt_session,
    text: *const c_char,
    text_len: usize,
    pair: *const c_char,
    pair_len: usize,
    logits: *mut f32,
    capacity: usize,
) -> dbrt_status {
    // SAFETY: forwarded: the same contract.
    unsafe {
        pair_outputs(
            session, text, text_len, pair, pair_len, logits, capacity, false,
        )
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn pair_outputs(
    session: *mut dbrt_session,
    text: *const c_char,
    text_len: usize,
    pair: *const c_char,
    pair_len: usize,
    out: *mut f32,
    capacity: usize,
    probabilities: bool,
) -> dbrt_status {
    guard(|| {
        // SAFETY: readable bytes of the given length by the header's contract.
        let text = unsafe { args::text(text, text_len, "text") }?;
        // SAFETY: as `text`.
        let pair = unsafe { args::optional_text(pair, pair_len, "pair") }?;
        with_session(session, |s| {
            let n = s.model().config().num_labels;
            // SAFETY: `capacity` writable floats by the header's contract; checked for NULL.
            let out = unsafe { args::out_slice(out, capacity, n, "output") }?;
            match probabilities {
                true => s.classify_into(text, pair, out)?,
                false => s.classify_logits_into(text, pair, out)?,
            }
            Ok(())
        })
    })
}

/// Classifies `count` texts (`texts[i]`), or pairs (`texts[i]`, `pairs[i]`) when `pairs` is
/// not NULL: probabilities into `probs`, `[count][labels]` row-major, which holds `capacity`
/// floats (at least count × labels). At most the session's maximum batch (see
/// `dbrt_session_options_set_max_batch`). Every string is checked before any is run. Each pair
/// runs at its own length: no padding is computed.
/// Errors: as `dbrt_session_classify`, DBRT_BATCH_TOO_LARGE, DBRT_INVALID_ARGUMENT (count 0).
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_classify_batch(
    session: *mut dbrt_session,
    texts: *const dbrt_str,
    pairs: *const dbrt_str,
    count: usize,
    probs: *mut f32,
    capacity: usize,
) -> dbrt_status {
    guard(|| {
        // SAFETY: `count` readable entries by the header's contract; checked for NULL.
        let texts = unsafe { args::slice(texts, count, "texts") }?;
        let pairs = match pairs.is_null() {
            true => None,
            // SAFETY: as for `texts`.
            false => Some(unsafe { args::slice(pairs, count, "pairs") }?),
        };
        if count == 0 {
            return Err(Failure::new(DBRT_INVALID_ARGUMENT, "an empty batch"));
        }
        for (i, t) in texts.iter().enumerate() {
            // SAFETY: each entry's bytes are readable by the header's contract.
            unsafe { t.text("a text") }.map_err(|f| f.at("texts", i))?;
            if let Some(p) = pairs {
                // SAFETY: as above.
                unsafe { p[i].text("a pair") }.map_err(|f| f.at("pairs", i))?;
            }
        }
        with_session(session, |s| {
            if count > s.max_batch() {
                return Err(dbrt_runtime::Error::BatchTooLarge {
                    len: count,
                    max: s.max_batch(),
                }
                .into());
            }
            let n = s.model().config().num_labels;
            let needed = count
                .checked_mul(n)
                .ok_or_else(|| Failure::new(DBRT_INVALID_ARGUMENT, "batch size overflows"))?;
            // SAFETY: `capacity` writable floats by the header's contract; checked for NULL.
            let out = unsafe { args::out_slice(probs, capacity, needed, "probs") }?;
            for (i, row) in out.chunks_exact_mut(n.max(1)).enumerate().take(count) {
                // SAFETY: checked above; readable by the header's contract.
                let text = unsafe { texts[i].text("text") }?;
                let pair = match pairs {
                    // SAFETY: as above.
                    Some(p) => Some(unsafe { p[i].text("pair") }?),
                    None => None,
                };
                s.classify_into(text, pair, row)?;
            }
            Ok(())
        })
    })
}

/// Zero-shot classification, as Hugging Face's pipeline: each candidate label `labels[i]` is
/// put into `hypothesis_template` (its "{}"; NULL for "This example is {}.") and the model
/// judges whether `text` entails it. Scores go into `scores` (`capacity` ≥ `label_count`).
/// With `multi_label` 0 the scores are a softmax of the entailment logits over the candidates
/// (they sum to 1); otherwise (and for one candidate) each is the softmax of entailment against
/// contradiction for that candidate alone.
///
/// The entailment label comes from the model's label names or
/// `dbrt_session_options_set_entailment_label`.
/// Errors: DBRT_NULL_POINTER, DBRT_INVALID_UTF8, DBRT_INVALID_ARGUMENT (no candidates, no "{}"
/// in the template), DBRT_BUFFER_TOO_SMALL, DBRT_NO_ENTAILMENT_LABEL, DBRT_UNSUPPORTED_MODEL
/// (fewer than two labels), DBRT_TOKENIZER_ERROR, DBRT_INVALID_MODEL (as
/// `dbrt_session_classify`), DBRT_SESSION_CLOSED, DBRT_SESSION_BUSY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_classify_zero_shot(
    session: *mut dbrt_session,
    text: *const c_char,
    text_len: usize,
    labels: *const dbrt_str,
    label_count: usize,
    hypothesis_template: *const c_char,
    template_len: usize,
    multi_label: i32,
    scores: *mut f32,
    capacity: usize,
) -> dbrt_status {
    guard(|| {
        // SAFETY: readable memory of the given length by the header's contract.
        let text = unsafe { args::text(text, text_len, "text") }?;
        // SAFETY: as `text`.
        let labels = unsafe { args::slice(labels, label_count, "labels") }?;
        let template =
            // SAFETY: as `text`.
            unsafe { args::optional_text(hypothesis_template, template_len, "template") }?
                .unwrap_or(DEFAULT_HYPOTHESIS_TEMPLATE);
        if labels.is_empty() {
            return Err(Failure::new(DBRT_INVALID_ARGUMENT, "no candidate labels"));
        }
        for (i, l) in labels.iter().enumerate() {
            // SAFETY: each entry's bytes are readable by the header's contract.
            unsafe { l.text("a label") }.map_err(|f| f.at("labels", i))?;
        }
        with_session(session, |s| {
            // SAFETY: `capacity` writable floats by the header's contract; checked for NULL.
            let scores = unsafe { args::out_slice(scores, capacity, labels.len(), "scores") }?;
            let label = |i: usize| -> dbrt_runtime::Result<&str> {
                // SAFETY: checked above; readable by the header's contract.
                unsafe { labels[i].text("label") }.map_err(|_| dbrt_runtime::Error::InvalidUtf8)
            };
            s.classify_zero_shot_into(text, label, template, multi_label != 0, scores)?;
            Ok(())
        })
    })
}

/// Runs `len` token ids (and `type_ids`, or NULL, for models with token types) through the
/// model: logits into `logits` (`capacity` ≥ the label count).
/// Errors: DBRT_NULL_POINTER, DBRT_EMPTY_INPUT, DBRT_INPUT_TOO_LONG, DBRT_INVALID_TOKEN,
/// DBRT_BUFFER_TOO_SMALL, DBRT_UNSUPPORTED_MODEL (no classification head),
/// DBRT_INVALID_MODEL (weights that overflow f32 on this input), DBRT_SESSION_CLOSED,
/// DBRT_SESSION_BUSY.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_run_logits(
    session: *mut dbrt_session,
    ids: *const u32,
    type_ids: *const u32,
    len: usize,
    logits: *mut f32,
    capacity: usize,
) -> dbrt_status {
    // SAFETY: forwarded: the same contract.
    unsafe { run_ids(session, ids, type_ids, len, logits, capacity, false) }
}

/// Runs `len` token ids (and `type_ids`, or NULL) through the encoder: the last hidden state,
/// `[len][hidden size]` row-major, into `hidden` (`capacity` ≥ len × `dbrt_model_hidden_size`).
/// Errors: as `dbrt_session_run_logits`.
#[no_mangle]
pub unsafe extern "C" fn dbrt_session_run_hidden(
    session: *mut dbrt_session,
    ids: *const u32,
    type_ids: *const u32,
    len: usize,
    hidden: *mut f32,
    capacity: usize,
) -> dbrt_status {
    // SAFETY: forwarded: the same contract.
    unsafe { run_ids(session, ids, type_ids, len, hidden, capacity, true) }
}

/// Token ids through the model: the last hidden state (`hidden`) or the logits.
unsafe fn run_ids(
    session: *mut dbrt_session,
    ids: *const u32,
    type_ids: *const u32,
    len: usize,
    out: *mut f32,
    capacity: usize,
    hidden: bool,
) -> dbrt_status {
    guard(|| {
        // SAFETY: `len` readable ids (and types) by the header's contract; checked for NULL.
        let seq = unsafe { sequence(ids, type_ids, len) }?;
        with_session(session, |s| {
            let c = s.model().config();
            let needed = match hidden {
                true => len.saturating_mul(c.hidden_size),
                false => c.num_labels,
            };
            // Sized before running, so a small buffer costs no forward pass.
            // SAFETY: `capacity` writable floats by the header's contract; checked for NULL.
            let out = unsafe { args::out_slice(out, capacity, needed, "output") }?;
            out.copy_from_slice(match hidden {
                true => s.run_hidden(seq)?,
                false => s.run_logits(seq)?,
            });
            Ok(())
        })
    })
}

unsafe fn sequence<'a>(ids: *const u32, type_ids: *const u32, len: usize) -> Outcome<Sequence<'a>> {
    // SAFETY: forwarded contract: `len` readable entries each.
    let ids = unsafe { args::slice(ids, len, "ids") }?;
    let type_ids = match type_ids.is_null() {
        true => None,
        // SAFETY: as above.
        false => Some(unsafe { args::slice(type_ids, len, "type_ids") }?),
    };
    Ok(Sequence { ids, type_ids })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_session_is_refused_and_the_flag_is_released_after_each_call() {
        crate::status::tests::host_setup();
        let s = dbrt_session {
            inner: UnsafeCell::new(None),
            busy: AtomicBool::new(true),
        };
        let p = &s as *const dbrt_session as *mut dbrt_session;
        let mut name = std::ptr::null();
        // SAFETY: `p` points at a live handle; `name` is writable.
        assert_eq!(unsafe { dbrt_session_isa(p, &mut name) }, DBRT_SESSION_BUSY);
        // SAFETY: as above.
        assert_eq!(unsafe { dbrt_session_close(p) }, DBRT_SESSION_BUSY);
        s.busy.store(false, Ordering::Relaxed);
        assert_eq!(
            // SAFETY: as above.
            unsafe { dbrt_session_isa(p, &mut name) },
            DBRT_SESSION_CLOSED
        );
        assert!(
            !s.busy.load(Ordering::Relaxed),
            "the flag outlived the call"
        );
        // SAFETY: as above.
        assert_eq!(unsafe { dbrt_session_close(p) }, DBRT_OK);
        assert!(!s.busy.load(Ordering::Relaxed));
    }
}
