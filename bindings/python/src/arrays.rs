//! numpy arrays out, token ids in, without the numpy C API (not part of the stable ABI that an
//! abi3 wheel is limited to): floats are copied into a `bytearray` that `numpy.frombuffer`
//! views (writable, owned by the array).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyDict, PyList, PyString, PyTuple};

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

/// Which ids `token_ids` reads: their range error is the runtime's for that kind.
#[derive(Clone, Copy)]
pub enum Ids {
    /// Token ids, below the vocabulary's size.
    Tokens { vocab: usize },
    /// Token type ids, below the model's number of types.
    Types { types: usize },
}

/// Token ids from a list, tuple or numpy array of integers, one sequence (a numpy array of
/// shape `(1, n)`, as Hugging Face's tokenizers return with `return_tensors="np"`, is that
/// one row). An id outside `u32` is the runtime's `InvalidTokenId` (`InvalidTokenType`),
/// status INVALID_TOKEN, as an id beyond the vocabulary is; booleans are not ids.
pub fn token_ids(py: Python<'_>, ids: &Bound<'_, PyAny>, kind: Ids) -> PyResult<Vec<u32>> {
    // A numpy array becomes a list of Python ints first (extracting from the array element
    // by element works too, through numpy scalars, but far slower).
    let mut list = if ids.hasattr("tolist")? {
        ids.call_method0("tolist")?
    } else {
        ids.clone()
    };
    if let Ok(rows) = list.cast::<PyList>() {
        if rows.len() == 1 && rows.get_item(0)?.is_instance_of::<PyList>() {
            list = rows.get_item(0)?;
        }
    }
    if list.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err("token ids are integers, not a string"));
    }
    let mut out = Vec::new();
    for item in list.try_iter()? {
        let item = item?;
        if item.is_instance_of::<PyBool>() {
            return Err(PyTypeError::new_err("token ids are integers, not booleans"));
        }
        let id: i128 = item.extract()?;
        match u32::try_from(id) {
            Ok(id) => out.push(id),
            Err(_) => {
                let id = i64::try_from(id).unwrap_or(if id < 0 { i64::MIN } else { i64::MAX });
                let e = match kind {
                    Ids::Tokens { vocab } => dbrt::Error::InvalidTokenId { id, vocab },
                    Ids::Types { types } => dbrt::Error::InvalidTokenType { id, types },
                };
                return Err(crate::errors::to_py(py, &e, None));
            }
        }
    }
    Ok(out)
}
