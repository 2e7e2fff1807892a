//! `dbrt.DbrtError`: a runtime error as a Python exception, with its status.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;

pyo3::create_exception!(
    dbrt,
    DbrtError,
    PyException,
    "A dbrt call failed. `status` is the C library's status name without its DBRT_ prefix \
     (\"INPUT_TOO_LONG\"), `code` its number (include/dbrt.h), and str(e) the message."
);

/// `e` as a `DbrtError`; `context` (an argument and index, `pairs[3]`) goes before the message.
pub fn to_py(py: Python<'_>, e: &dbrt::Error, context: Option<&str>) -> PyErr {
    let message = match context {
        Some(c) => format!("{c}: {e}"),
        None => e.to_string(),
    };
    with_status(py, e.status(), message)
}

/// A bug in dbrt (a panic) caught before it reached Python: a `DbrtError` with status
/// INTERNAL_ERROR, as the C library reports it, rather than pyo3's PanicException (a
/// BaseException that `except Exception` does not catch).
pub fn internal(py: Python<'_>, what: &str) -> PyErr {
    with_status(
        py,
        dbrt::Status::InternalError,
        format!("internal error (a bug in dbrt): {what}"),
    )
}

fn with_status(py: Python<'_>, status: dbrt::Status, message: String) -> PyErr {
    let err = DbrtError::new_err(message);
    let value = err.value(py);
    // Setting attributes on a fresh exception instance only fails without memory; the
    // exception is raised either way.
    let _ = value.setattr("status", status.name());
    let _ = value.setattr("code", status.code());
    err
}

/// A `DbrtError` for an argument the runtime would refuse the same way.
pub fn invalid_argument(py: Python<'_>, message: String) -> PyErr {
    to_py(py, &dbrt::Error::InvalidArgument(message), None)
}

/// Converts a runtime result, raising `DbrtError` for an error.
pub trait OrRaise<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrRaise<T> for dbrt::Result<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e, None))
    }
}
