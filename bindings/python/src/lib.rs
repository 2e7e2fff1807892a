//! dbrt's Python module, `dbrt._dbrt`: the runtime's models and sessions as Python classes.
//! The package `dbrt` (python/dbrt) re-exports them and adds `CrossEncoder`.
//!
//! Every call into the engine runs with the GIL released, so Python threads with sessions of
//! their own run on several cores; a session serves one call at a time (others wait for it).
//! Errors are `dbrt.DbrtError`, carrying the C library's status name and number.

use pyo3::prelude::*;

mod arrays;
mod errors;
mod model;
mod session;

/// The kernel tiers this CPU runs, best last (`Model.session(isa=...)` takes these names).
#[pyfunction]
fn available_isas() -> Vec<&'static str> {
    dbrt::kernels::Isa::all_available()
        .into_iter()
        .map(|i| i.name())
        .collect()
}

#[pymodule]
fn _dbrt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The runtime's log records go to Python's logging (loggers "dbrt.*"), looked up at each
    // record (no caching: a logging configuration made after import applies; dbrt logs
    // rarely). Another extension may have installed the process's logger first; then
    // records go where it sends them.
    let installed = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::Nothing)
        .map(|l| l.filter(log::LevelFilter::Trace).install());
    if !matches!(installed, Ok(Ok(_))) {
        log::debug!("a logger was installed before dbrt's; records go to it");
    }
    m.add("__version__", dbrt::VERSION)?;
    m.add("DbrtError", m.py().get_type::<errors::DbrtError>())?;
    m.add(
        "DEFAULT_HYPOTHESIS_TEMPLATE",
        dbrt::session::DEFAULT_HYPOTHESIS_TEMPLATE,
    )?;
    m.add_class::<model::PyModel>()?;
    m.add_class::<session::PySession>()?;
    m.add_function(wrap_pyfunction!(available_isas, m)?)?;
    Ok(())
}
