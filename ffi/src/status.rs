//! Status codes, the thread-local last error, and the guard every exported function runs in.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

use dbrt_runtime::boundary::catch_panic;
#[cfg(test)]
use dbrt_runtime::error::Status;
use dbrt_runtime::Error;

/// What a call returned. `DBRT_OK` is 0; every other value is a failure whose message
/// `dbrt_last_error()` gives on the same thread.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum dbrt_status {
    DBRT_OK = 0,
    /// An argument is out of range or inconsistent (an option value, a length, a shape).
    DBRT_INVALID_ARGUMENT = 1,
    /// A required handle or pointer is NULL.
    DBRT_NULL_POINTER = 2,
    /// A string is not valid UTF-8.
    DBRT_INVALID_UTF8 = 3,
    /// An output buffer is too small; the call reports the size it needs where it can.
    DBRT_BUFFER_TOO_SMALL = 4,
    /// The input has more tokens than the session's maximum sequence length.
    DBRT_INPUT_TOO_LONG = 5,
    /// The input has no tokens.
    DBRT_EMPTY_INPUT = 6,
    /// A token id or token type id is outside the model's vocabulary.
    DBRT_INVALID_TOKEN = 7,
    /// More sequences than the session's maximum batch.
    DBRT_BATCH_TOO_LARGE = 8,
    /// The model file cannot be opened or read.
    DBRT_IO_ERROR = 9,
    /// The bytes are not a .dbrt file (bad magic).
    DBRT_NOT_A_MODEL = 10,
    /// The file is shorter than its header says.
    DBRT_TRUNCATED_FILE = 11,
    /// The file is damaged: a checksum, the header, metadata or a tensor record is wrong.
    DBRT_CORRUPT_FILE = 12,
    /// A .dbrt version or byte order this library does not read.
    DBRT_UNSUPPORTED_FORMAT = 13,
    /// A well-formed file whose model is incomplete or inconsistent (missing or misshapen
    /// tensors, missing or wrong metadata).
    DBRT_INVALID_MODEL = 14,
    /// A model this library does not run (architecture, activation, options).
    DBRT_UNSUPPORTED_MODEL = 15,
    /// A caller's model buffer is not aligned to 64 bytes (use the copying open instead).
    DBRT_MISALIGNED_BUFFER = 16,
    /// The model has no tokenizer, or its tokenizer tables are damaged.
    DBRT_TOKENIZER_ERROR = 17,
    /// The requested kernel tier does not run on this CPU.
    DBRT_UNSUPPORTED_ISA = 18,
    /// Zero-shot classification needs the entailment label, and the model does not name one:
    /// set it with `dbrt_session_options_set_entailment_label`.
    DBRT_NO_ENTAILMENT_LABEL = 19,
    /// The session was closed with `dbrt_session_close`.
    DBRT_SESSION_CLOSED = 20,
    /// Another thread is using the session (a session serves one thread at a time).
    DBRT_SESSION_BUSY = 21,
    /// A bug in dbrt was caught at the library boundary; the message says where.
    DBRT_INTERNAL_ERROR = 22,
    /// Memory for the session or model could not be allocated (the size asked for is in the
    /// message): a smaller maximum length, batch or thread count needs less.
    DBRT_OUT_OF_MEMORY = 23,
    /// No backend has the name given to `dbrt_session_options_set_backend`.
    DBRT_UNKNOWN_BACKEND = 24,
    /// The session's backend cannot run here (its libraries are absent or do not load, or it
    /// finds no device) and its fallback policy is `DBRT_FALLBACK_NEVER`.
    DBRT_BACKEND_UNAVAILABLE = 25,
    /// The artifact directory is missing, corrupt or exported from another model, and the
    /// fallback policy is `DBRT_FALLBACK_NEVER`.
    DBRT_INVALID_ARTIFACTS = 26,
    /// The accelerator failed during a run, and the fallback policy does not recompute on the
    /// CPU.
    DBRT_DEVICE_ERROR = 27,
}

use dbrt_status::*;

impl dbrt_status {
    /// Every status, in order; `dbrt_status_str` and the tests walk it.
    pub(crate) const ALL: [dbrt_status; 28] = [
        DBRT_OK,
        DBRT_INVALID_ARGUMENT,
        DBRT_NULL_POINTER,
        DBRT_INVALID_UTF8,
        DBRT_BUFFER_TOO_SMALL,
        DBRT_INPUT_TOO_LONG,
        DBRT_EMPTY_INPUT,
        DBRT_INVALID_TOKEN,
        DBRT_BATCH_TOO_LARGE,
        DBRT_IO_ERROR,
        DBRT_NOT_A_MODEL,
        DBRT_TRUNCATED_FILE,
        DBRT_CORRUPT_FILE,
        DBRT_UNSUPPORTED_FORMAT,
        DBRT_INVALID_MODEL,
        DBRT_UNSUPPORTED_MODEL,
        DBRT_MISALIGNED_BUFFER,
        DBRT_TOKENIZER_ERROR,
        DBRT_UNSUPPORTED_ISA,
        DBRT_NO_ENTAILMENT_LABEL,
        DBRT_SESSION_CLOSED,
        DBRT_SESSION_BUSY,
        DBRT_INTERNAL_ERROR,
        DBRT_OUT_OF_MEMORY,
        DBRT_UNKNOWN_BACKEND,
        DBRT_BACKEND_UNAVAILABLE,
        DBRT_INVALID_ARTIFACTS,
        DBRT_DEVICE_ERROR,
    ];

    /// The status's name, NUL-terminated for C.
    pub(crate) fn name(self) -> &'static [u8] {
        match self {
            DBRT_OK => b"DBRT_OK\0",
            DBRT_INVALID_ARGUMENT => b"DBRT_INVALID_ARGUMENT\0",
            DBRT_NULL_POINTER => b"DBRT_NULL_POINTER\0",
            DBRT_INVALID_UTF8 => b"DBRT_INVALID_UTF8\0",
            DBRT_BUFFER_TOO_SMALL => b"DBRT_BUFFER_TOO_SMALL\0",
            DBRT_INPUT_TOO_LONG => b"DBRT_INPUT_TOO_LONG\0",
            DBRT_EMPTY_INPUT => b"DBRT_EMPTY_INPUT\0",
            DBRT_INVALID_TOKEN => b"DBRT_INVALID_TOKEN\0",
            DBRT_BATCH_TOO_LARGE => b"DBRT_BATCH_TOO_LARGE\0",
            DBRT_IO_ERROR => b"DBRT_IO_ERROR\0",
            DBRT_NOT_A_MODEL => b"DBRT_NOT_A_MODEL\0",
            DBRT_TRUNCATED_FILE => b"DBRT_TRUNCATED_FILE\0",
            DBRT_CORRUPT_FILE => b"DBRT_CORRUPT_FILE\0",
            DBRT_UNSUPPORTED_FORMAT => b"DBRT_UNSUPPORTED_FORMAT\0",
            DBRT_INVALID_MODEL => b"DBRT_INVALID_MODEL\0",
            DBRT_UNSUPPORTED_MODEL => b"DBRT_UNSUPPORTED_MODEL\0",
            DBRT_MISALIGNED_BUFFER => b"DBRT_MISALIGNED_BUFFER\0",
            DBRT_TOKENIZER_ERROR => b"DBRT_TOKENIZER_ERROR\0",
            DBRT_UNSUPPORTED_ISA => b"DBRT_UNSUPPORTED_ISA\0",
            DBRT_NO_ENTAILMENT_LABEL => b"DBRT_NO_ENTAILMENT_LABEL\0",
            DBRT_SESSION_CLOSED => b"DBRT_SESSION_CLOSED\0",
            DBRT_SESSION_BUSY => b"DBRT_SESSION_BUSY\0",
            DBRT_INTERNAL_ERROR => b"DBRT_INTERNAL_ERROR\0",
            DBRT_OUT_OF_MEMORY => b"DBRT_OUT_OF_MEMORY\0",
            DBRT_UNKNOWN_BACKEND => b"DBRT_UNKNOWN_BACKEND\0",
            DBRT_BACKEND_UNAVAILABLE => b"DBRT_BACKEND_UNAVAILABLE\0",
            DBRT_INVALID_ARTIFACTS => b"DBRT_INVALID_ARTIFACTS\0",
            DBRT_DEVICE_ERROR => b"DBRT_DEVICE_ERROR\0",
        }
    }
}

/// The C status of a runtime error: the enumerator with [`Error::status`]'s number.
pub(crate) fn status_of(e: &Error) -> dbrt_status {
    let code = e.status().code();
    // Every runtime status is a C status (tested below), so the fallback never runs.
    usize::try_from(code)
        .ok()
        .and_then(|i| dbrt_status::ALL.get(i).copied())
        .unwrap_or(DBRT_INTERNAL_ERROR)
}

/// A failure on its way to C: a status and its message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: dbrt_status,
    pub message: String,
}

impl Failure {
    pub fn new(status: dbrt_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub fn null(what: &str) -> Failure {
        Failure::new(DBRT_NULL_POINTER, format!("{what} is NULL"))
    }

    /// The same failure, naming entry `index` of the array `array` (built only on failure, so
    /// that checking every entry of a batch allocates nothing).
    pub fn at(self, array: &str, index: usize) -> Failure {
        Failure::new(self.status, format!("{array}[{index}]: {}", self.message))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::new(status_of(&e), e.to_string())
    }
}

pub(crate) type Outcome<T = ()> = Result<T, Failure>;

thread_local! {
    /// The message of the last failed call on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// The longest message kept: messages quote inputs (a template, a file name), which may be
/// megabytes long.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1024;

fn set_last_error(message: &str) {
    let mut end = message.len().min(MAX_MESSAGE_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < message.len() { "..." } else { "" };
    // A message never holds NUL in practice (they come from our own formats); drop any, so the
    // C string is the whole message.
    let bytes: Vec<u8> = message[..end]
        .bytes()
        .chain(cut.bytes())
        .filter(|&b| b != 0)
        .collect();
    let message = CString::new(bytes).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = message);
}

/// The last error message of this thread, valid until the next failing call on this thread.
pub(crate) fn last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Runs the body of an exported function: its failure becomes a status and this thread's last
/// error, and a panic (a bug) becomes `DBRT_INTERNAL_ERROR` instead of unwinding into C, logged
/// through `log` (error level) and never printed.
pub(crate) fn guard(body: impl FnOnce() -> Outcome) -> dbrt_status {
    match catch_panic(body) {
        Ok(Ok(())) => DBRT_OK,
        Ok(Err(f)) => {
            set_last_error(&f.message);
            f.status
        }
        Err(what) => {
            set_last_error(&format!("internal error (a bug in dbrt): {what}"));
            DBRT_INTERNAL_ERROR
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_own_name_and_position() {
        for (i, s) in dbrt_status::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
            let name = s.name();
            assert_eq!(name.last(), Some(&0));
            assert!(format!("{s:?}").as_bytes() == &name[..name.len() - 1]);
        }
    }

    /// The runtime's statuses (what Python's exceptions carry) are the C enumerators of the
    /// same number and name.
    #[test]
    fn runtime_statuses_are_c_statuses() {
        for s in Status::ALL {
            let c = dbrt_status::ALL[s.code() as usize];
            assert_eq!(format!("{c:?}"), format!("DBRT_{}", s.name()));
        }
    }

    #[test]
    fn long_messages_are_cut_at_a_character() {
        host_setup();
        let long = format!("template '{}'", "é".repeat(2_000_000));
        assert_eq!(
            guard(|| Err(Failure::new(DBRT_INVALID_ARGUMENT, long))),
            DBRT_INVALID_ARGUMENT
        );
        // SAFETY: last_error points at this thread's live CString.
        let msg = unsafe { std::ffi::CStr::from_ptr(last_error()) }
            .to_str()
            .unwrap();
        assert!(
            msg.len() <= MAX_MESSAGE_BYTES + 3,
            "{} bytes kept",
            msg.len()
        );
        assert!(
            msg.starts_with("template 'éé") && msg.ends_with("é..."),
            "{msg}"
        );
    }

    /// Records what reaches `log`, to see where a caught panic's report goes.
    struct Capture(std::sync::Mutex<Vec<String>>);
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, r: &log::Record<'_>) {
            self.0.lock().unwrap().push(r.args().to_string());
        }
        fn flush(&self) {}
    }
    static CAPTURE: Capture = Capture(std::sync::Mutex::new(Vec::new()));
    static HOST_HOOK_RAN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// A host's logger and panic hook, set before dbrt's first call in this process: every
    /// test that calls an exported function runs this first.
    pub(crate) fn host_setup() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            log::set_logger(&CAPTURE).unwrap();
            log::set_max_level(log::LevelFilter::Trace);
            std::panic::set_hook(Box::new(|_| {
                HOST_HOOK_RAN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }));
        });
    }

    #[test]
    fn a_caught_panic_is_logged_not_printed_and_other_panics_keep_their_hook() {
        host_setup();
        let before = HOST_HOOK_RAN.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(guard(|| panic!("routed-7d1f")), DBRT_INTERNAL_ERROR);
        assert!(
            CAPTURE
                .0
                .lock()
                .unwrap()
                .iter()
                .any(|m| m.contains("routed-7d1f")),
            "the panic was not logged"
        );
        // Other tests run in parallel and may panic on purpose inside guard too: count only
        // panics outside it.
        let outside = std::thread::spawn(|| panic!("the host's own panic")).join();
        assert!(outside.is_err());
        assert!(
            HOST_HOOK_RAN.load(std::sync::atomic::Ordering::SeqCst) > before,
            "a panic outside dbrt did not reach the host's hook"
        );
    }

    #[test]
    fn a_panic_becomes_an_internal_error_with_its_message() {
        host_setup();
        let s = guard(|| panic!("boom"));
        assert_eq!(s, DBRT_INTERNAL_ERROR);
        // SAFETY: last_error points at this thread's live CString.
        let msg = unsafe { std::ffi::CStr::from_ptr(last_error()) };
        assert!(msg.to_str().unwrap().contains("boom"), "{msg:?}");
        assert_eq!(
            guard(|| Err(Failure::new(DBRT_EMPTY_INPUT, "x"))),
            DBRT_EMPTY_INPUT
        );
        assert_eq!(guard(|| Ok(())), DBRT_OK);
    }
}
