//! What every language binding (the C library, the Python module) does where the host's code
//! calls dbrt's: a panic (a bug) comes back as a message instead of unwinding into the host,
//! and is logged through `log`, never printed on the host's stderr.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside a binding's call into dbrt.
    static IN_DBRT: Cell<bool> = const { Cell::new(false) };
}

/// Routes the panics of dbrt's code (inside [`catch_panic`], or on dbrt's worker threads) to
/// `log`: installed once, the hook passes every other panic to the hook it replaced.
fn route_panics_to_log() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let worker = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("dbrt-worker"));
            if IN_DBRT.with(Cell::get) || worker {
                log::error!("internal error (a bug in dbrt), caught: {info}");
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `body`; a panic in it becomes `Err` with the panic's message.
pub fn catch_panic<T>(body: impl FnOnce() -> T) -> Result<T, String> {
    route_panics_to_log();
    let outer = IN_DBRT.with(|f| f.replace(true));
    let result = catch_unwind(AssertUnwindSafe(body));
    IN_DBRT.with(|f| f.set(outer));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
    })
}
