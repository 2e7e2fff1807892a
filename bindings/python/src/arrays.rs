//! numpy arrays out, token ids in, without the numpy C API (not part of the stable ABI that an
//! abi3 wheel is limited to): floats are copied into a `bytearray` that `numpy.frombuffer`
//! views (writable, owned by the array).

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict, PyTuple};

/// A float32 array of `shape` holding `data` (row-major).
pub fn f32_array<'py>(
    py: Python<'py>,
    data: &[f32],
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    debug_assert_eq!(shape.iter().product::<usize>(), data.len());
    let bytes = PyByteArray::new_with(py, std::mem::size_of_val(data), |buf| {
        for (b, v) in buf.chunks_exact_mut(4).zip(data) {
            b.copy_from_slice(&v.to_ne_bytes());
        }
        Ok(())
    })?;
    let numpy = py.import("numpy")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", numpy.getattr("float32")?)?;
    numpy
        .call_method("frombuffer", (bytes,), Some(&kwargs))?
        .call_method1("reshape", (PyTuple::new(py, shape)?,))
}

/// Token ids from a list, tuple or numpy array of integers. An id outside `u32` is the
/// runtime's `InvalidTokenId` (status INVALID_TOKEN), as an id beyond the vocabulary is.
pub fn token_ids(py: Python<'_>, ids: &Bound<'_, PyAny>, vocab: usize) -> PyResult<Vec<u32>> {
    // A numpy array becomes a list of Python ints first (extracting from the array element
    // by element works too, through numpy scalars, but far slower).
    let list = if ids.hasattr("tolist")? {
        ids.call_method0("tolist")?
    } else {
        ids.clone()
    };
    let wide: Vec<i64> = list.extract()?;
    wide.into_iter()
        .map(|id| {
            u32::try_from(id).map_err(|_| {
                crate::errors::to_py(py, &dbrt::Error::InvalidTokenId { id, vocab }, None)
            })
        })
        .collect()
}
