//! The host's log callback: dbrt's `log` records (a backend that did not attach, a caught bug,
//! onnxruntime's messages) forwarded to a C function, so that an Android app can route them to
//! logcat and an iOS app to os_log. Without a callback they are dropped, as before.
//!
//! The callback is process wide. It is called with a read lock held, so that once
//! `dbrt_set_log_callback` returns no call to the callback it replaced is running or will start:
//! the host may then free what `user` points at.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

use crate::status::dbrt_status::{self, *};
use crate::status::{guard, Failure, Outcome};

/// The severity of a log message; a smaller value is more severe. The values are those of
/// Rust's `log::Level`. Passed as `int32_t`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum dbrt_log_level {
    /// Nothing is logged (only as a threshold).
    DBRT_LOG_OFF = 0,
    /// A failure dbrt recovered from, e.g. a caught bug (`DBRT_INTERNAL_ERROR`).
    DBRT_LOG_ERROR = 1,
    /// Something the host should know: e.g. the backend asked for did not attach and the
    /// session runs on the CPU.
    DBRT_LOG_WARN = 2,
    /// What dbrt chose: e.g. `auto` found no accelerator.
    DBRT_LOG_INFO = 3,
    /// Details for debugging dbrt.
    DBRT_LOG_DEBUG = 4,
    /// Everything, including onnxruntime's verbose messages.
    DBRT_LOG_TRACE = 5,
}

/// Receives one log message: `level` is a `dbrt_log_level` (1 error .. 5 trace), `message` a
/// NUL-terminated UTF-8 string valid only during the call, `user` the pointer given to
/// `dbrt_set_log_callback`.
pub type dbrt_log_callback =
    Option<unsafe extern "C-unwind" fn(level: i32, message: *const c_char, user: *mut c_void)>;

/// The host's callback and its pointer; `user` is only passed back to it.
struct Sink {
    callback: unsafe extern "C-unwind" fn(i32, *const c_char, *mut c_void),
    user: *mut c_void,
}

// SAFETY: `user` is never dereferenced by dbrt; the header says the callback may be called from
// any thread, so whatever it points at is the host's to make thread safe.
unsafe impl Send for Sink {}
// SAFETY: as above; a shared Sink is only read.
unsafe impl Sync for Sink {}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
/// Whether SINK holds a callback, read without the lock (by `dbrt_set_log_level`).
static HAS_SINK: AtomicBool = AtomicBool::new(false);
static THRESHOLD: AtomicI32 = AtomicI32::new(dbrt_log_level::DBRT_LOG_INFO as i32);
/// Held while `log`'s global level is computed from HAS_SINK and THRESHOLD and set, so that
/// two threads setting them at once leave the level of the last. Not SINK's lock: a callback
/// may set the level.
static LEVELS: Mutex<()> = Mutex::new(());

thread_local! {
    /// Set while this thread runs the callback: what it logs through dbrt is dropped, instead
    /// of recursing (or taking the lock twice).
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
    /// The message being passed, reused: formatting allocates once per thread.
    static MESSAGE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn filter_of(level: i32) -> log::LevelFilter {
    match level {
        i32::MIN..=0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// `log`'s global level: the threshold while a callback is set, off otherwise (so that the
/// runtime does not even format what nobody reads).
fn update_max_level(has_sink: bool) {
    let filter = if has_sink {
        filter_of(THRESHOLD.load(Ordering::Relaxed))
    } else {
        log::LevelFilter::Off
    };
    log::set_max_level(filter);
}

/// The `log::Log` libdbrt installs: forwards each record to the host's callback.
pub(crate) struct Forwarder;

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() as i32 <= THRESHOLD.load(Ordering::Relaxed)
    }

    fn log(&self, record: &log::Record<'_>) {
        // `try_with`: a message logged while this thread's locals are being destroyed (a
        // thread's exit) is dropped rather than a panic.
        let inside = IN_CALLBACK.try_with(Cell::get).unwrap_or(true);
        if !self.enabled(record.metadata()) || inside {
            return;
        }
        // A poisoned lock only means a writer panicked; the sink it holds is whole.
        let sink = SINK.read().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = sink.as_ref() else {
            return;
        };
        let _ = MESSAGE.try_with(|m| {
            let Ok(mut message) = m.try_borrow_mut() else {
                return;
            };
            message.clear();
            let _ = std::io::Write::write_fmt(&mut *message, *record.args());
            // The message would end at its first NUL: drop any.
            message.retain(|&b| b != 0);
            message.push(0);
            let _ = IN_CALLBACK.try_with(|f| f.set(true));
            // A callback that unwinds (a Rust host's panic) is stopped here, not in dbrt's
            // caller; the message is lost, the host stays up.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: the callback is the host's function with the header's signature; the
                // message is NUL-terminated and lives until it returns.
                unsafe {
                    (sink.callback)(record.level() as i32, message.as_ptr().cast(), sink.user)
                }
            }));
            let _ = IN_CALLBACK.try_with(|f| f.set(false));
        });
    }

    fn flush(&self) {}
}

static FORWARDER: Forwarder = Forwarder;

/// Installs the forwarder as `log`'s logger, once per process (the answer is kept).
fn install() -> Outcome {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    if *INSTALLED.get_or_init(|| log::set_logger(&FORWARDER).is_ok()) {
        return Ok(());
    }
    Err(Failure::new(
        DBRT_INTERNAL_ERROR,
        "another logger is installed in this process; dbrt's messages go to it",
    ))
}

/// Replaces the sink, returning what `guard` should.
fn set_sink(sink: Option<Sink>) -> Outcome {
    if sink.is_some() {
        install()?;
    }
    let has_sink = sink.is_some();
    let mut slot = SINK.write().unwrap_or_else(|e| e.into_inner());
    *slot = sink;
    let _levels = LEVELS.lock().unwrap_or_else(|e| e.into_inner());
    HAS_SINK.store(has_sink, Ordering::Relaxed);
    update_max_level(has_sink);
    Ok(())
}

/// Routes dbrt's log messages to `callback` (process wide), replacing the previous callback;
/// NULL drops them again (the default). Messages at `dbrt_set_log_level`'s threshold or more
/// severe are passed (default `DBRT_LOG_INFO`).
///
/// Threads: the callback may be called from any thread that calls dbrt and from dbrt's worker
/// threads, several at once; it must be thread safe. It must not call `dbrt_set_log_callback`
/// (a deadlock: that waits for running callbacks to return); what it makes dbrt log is
/// dropped. When this call returns, the previous callback is not running and is not called
/// again, so its `user` may be freed. The message is valid only during the call: copy it to
/// keep it. A Rust callback that panics loses its message and the caller goes on; a C++
/// callback must not throw (an exception cannot cross C).
/// Errors: DBRT_INTERNAL_ERROR if another Rust logger is installed in the process.
#[no_mangle]
pub extern "C" fn dbrt_set_log_callback(
    callback: dbrt_log_callback,
    user: *mut c_void,
) -> dbrt_status {
    guard(|| set_sink(callback.map(|callback| Sink { callback, user })))
}

/// Sets the threshold: messages with a level at most `level` (`DBRT_LOG_ERROR` = 1 ..
/// `DBRT_LOG_TRACE` = 5) reach the log callback; `DBRT_LOG_OFF` passes none. Process wide.
/// Errors: DBRT_INVALID_ARGUMENT for a value outside 0..=5.
#[no_mangle]
pub extern "C" fn dbrt_set_log_level(level: i32) -> dbrt_status {
    guard(|| {
        if !(0..=5).contains(&level) {
            return Err(Failure::new(
                DBRT_INVALID_ARGUMENT,
                format!("log level {level}: expected 0 (off) to 5 (trace)"),
            ));
        }
        let _levels = LEVELS.lock().unwrap_or_else(|e| e.into_inner());
        THRESHOLD.store(level, Ordering::Relaxed);
        update_max_level(HAS_SINK.load(Ordering::Relaxed));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    use log::Log;
    use std::sync::Mutex;

    static SEEN: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

    unsafe extern "C-unwind" fn record(level: i32, message: *const c_char, user: *mut c_void) {
        assert_eq!(user as usize, 0x5eed);
        // SAFETY: the forwarder passes a NUL-terminated string valid during the call.
        let text = unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned();
        SEEN.lock().unwrap().push((level, text));
    }

    unsafe extern "C-unwind" fn panics(_: i32, _: *const c_char, _: *mut c_void) {
        panic!("the host's callback panicked");
    }

    /// Sets the sink without installing the logger or touching `log`'s global level.
    fn put(sink: Option<Sink>) {
        HAS_SINK.store(sink.is_some(), Ordering::Relaxed);
        *SINK.write().unwrap() = sink;
    }

    fn emit(level: log::Level, text: &str) {
        FORWARDER.log(
            &log::Record::builder()
                .level(level)
                .args(format_args!("{text}"))
                .build(),
        );
    }

    /// One test: the sink is process wide. The forwarder is called directly (the status tests
    /// install a logger of their own in this test binary).
    #[test]
    fn forwards_levels_and_text_until_unset_and_survives_a_panicking_callback() {
        crate::status::tests::host_setup();
        put(Some(Sink {
            callback: record,
            user: 0x5eed as *mut c_void,
        }));
        assert_eq!(
            dbrt_set_log_level(dbrt_log_level::DBRT_LOG_WARN as i32),
            DBRT_OK
        );
        emit(log::Level::Warn, "backend qnn did not attach");
        emit(log::Level::Info, "filtered out");
        emit(log::Level::Error, "nul\0inside");
        assert_eq!(dbrt_set_log_level(9), DBRT_INVALID_ARGUMENT);
        assert_eq!(
            *SEEN.lock().unwrap(),
            [
                (2, "backend qnn did not attach".into()),
                (1, "nulinside".into())
            ]
        );
        put(Some(Sink {
            callback: panics,
            user: std::ptr::null_mut(),
        }));
        emit(log::Level::Error, "lost, not fatal");
        // Before the sink goes: with none, the level would turn `log` off for this binary.
        assert_eq!(
            dbrt_set_log_level(dbrt_log_level::DBRT_LOG_INFO as i32),
            DBRT_OK
        );
        put(None);
        emit(log::Level::Error, "dropped");
        assert_eq!(SEEN.lock().unwrap().len(), 2);
    }
}
