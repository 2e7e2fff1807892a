//! A copy of a `.dbrt` file in a writer: tensor records as stored (dtype, layout, shape and
//! bytes: packed int8 panels and their block sums included) and metadata entries as they are,
//! so that the copy runs exactly as the model does. `embed-om` and `relabel` start from it.

use dbrt::format::{FileWriter, ModelFile};

use crate::error::Result;

/// A writer holding the tensors of `file` whose names `keep_tensor` accepts and the metadata
/// entries whose keys `keep_key` accepts.
pub fn copy_of(
    file: &ModelFile,
    keep_tensor: impl Fn(&str) -> bool,
    keep_key: impl Fn(&str) -> bool,
) -> Result<FileWriter> {
    let mut w = FileWriter::new();
    for (k, v) in file.metadata().entries() {
        if keep_key(k) {
            w.metadata.set(k, v.clone());
        }
    }
    for rec in file.records() {
        if !keep_tensor(&rec.name) {
            continue;
        }
        let view = file.tensor(&rec.name)?;
        w.add_tensor_with_layout(
            &rec.name,
            rec.dtype,
            rec.layout,
            &rec.shape,
            view.bytes.to_vec(),
        )?;
    }
    Ok(w)
}
