//! `dbrt-convert embed-om`: a copy of a `.dbrt` model with the offline model of an Ascend
//! export inside, as an optional part (docs/FORMAT.md, "Optional parts: the Ascend offline
//! model"): the u8 tensor [`OM_TENSOR`] `[n]` and the metadata [`META_GEARS`],
//! [`META_SOC_VERSION`] and [`META_SOURCE`]. Readers look tensors up by name and metadata by
//! key, so one that does not know the part never reads it.
//!
//! Every other tensor is copied as it is stored (dtype, layout, shape, bytes: packed int8
//! panels and their block sums included) and every metadata entry as it is: the copy runs
//! exactly as the model does. The export must come from this model (its manifest's identity)
//! and its offline model must match the manifest's length and CRC-32.

use std::path::Path;

use dbrt::format::{DType, MetaValue, ModelFile};
use dbrt::offload::manifest::{ModelIdentity, MAX_GRAPH_BYTES};

use super::om::{read_bounded, read_manifest};
use crate::error::{ConvertError, Result};

/// The offline model's bytes (u8 `[n]`) and the gears it was compiled for (i64 list,
/// ascending): the names the runtime reads.
pub use dbrt::offload::manifest::{OM_GEARS as META_GEARS, OM_TENSOR};
/// The `--soc_version` it was compiled for (string).
pub const META_SOC_VERSION: &str = "ascend.soc_version";
/// `"<file_len> <data_crc32 hex8> <tables_crc32 hex8>"` of the model the export was made from
/// (string): the copy's own checksums differ from it, as it holds the offline model.
pub const META_SOURCE: &str = "ascend.source";

/// Writes `out`, a copy of `model` holding the offline model registered in the Ascend export
/// in `dir`; returns its length in bytes. A previous Ascend part of `model` is replaced.
pub fn embed_om(model: &Path, dir: &Path, out: &Path) -> Result<u64> {
    let file = ModelFile::open(model).map_err(|e| ConvertError::Parse {
        path: model.to_path_buf(),
        message: format!("not a .dbrt file dbrt opens: {e}"),
    })?;
    let manifest = read_manifest(dir)?;
    let part = manifest.ascend.as_ref().ok_or_else(|| {
        ConvertError::Invalid(format!(
            "{}: not an Ascend export (no 'target ascend')",
            dir.display()
        ))
    })?;
    let om = part.om.as_ref().ok_or_else(|| {
        ConvertError::Invalid(format!(
            "{}: no offline model registered (run ATC, then dbrt-convert register-om)",
            dir.display()
        ))
    })?;
    manifest
        .check_model(file.header())
        .map_err(|e| ConvertError::Invalid(format!("{}: {e}", dir.display())))?;
    let om_path = dir.join(&om.file);
    let om_bytes = read_bounded(&om_path, MAX_GRAPH_BYTES)?;
    let crc = crc32fast::hash(&om_bytes);
    if om_bytes.len() as u64 != om.bytes || crc != om.crc32 {
        return Err(ConvertError::Invalid(format!(
            "{}: {} bytes, CRC-32 {crc:08x}; the manifest registered {} bytes, {:08x} \
             (register it again after compiling)",
            om_path.display(),
            om_bytes.len(),
            om.bytes,
            om.crc32
        )));
    }
    // What is copied is checked first: the copy's checksums are computed afresh and would
    // otherwise seal damage in.
    file.verify_data()
        .map_err(|e| ConvertError::Invalid(format!("{}: {e}", model.display())))?;
    let mut w = crate::copy::copy_of(&file, |t| t != OM_TENSOR, |k| !is_ascend_key(k))?;
    let n = om_bytes.len() as u64;
    w.add_tensor(OM_TENSOR, DType::U8, &[n], om_bytes)?;
    let gears = part.gears.iter().map(|&g| g as i64).collect();
    w.metadata.set(META_GEARS, MetaValue::I64List(gears));
    let soc = MetaValue::Str(om.soc_version.clone());
    w.metadata.set(META_SOC_VERSION, soc);
    w.metadata
        .set(META_SOURCE, MetaValue::Str(source_text(&manifest.model)));
    // The copy is read back before it replaces anything at `out`.
    let expect_crc = crc;
    w.write_to_path_checked(out, |tmp: &Path| {
        let copy = ModelFile::open(tmp)?;
        let t = copy.tensor(OM_TENSOR)?;
        if crc32fast::hash(t.bytes) != expect_crc {
            return Err(ConvertError::Invalid(format!(
                "{}: the offline model does not read back as written",
                out.display()
            )));
        }
        Ok(())
    })
}

/// The metadata keys of the Ascend part.
fn is_ascend_key(k: &str) -> bool {
    [META_GEARS, META_SOC_VERSION, META_SOURCE].contains(&k)
}

/// [`META_SOURCE`]'s value for `m`.
pub fn source_text(m: &ModelIdentity) -> String {
    format!("{} {:08x} {:08x}", m.file_len, m.data_crc32, m.tables_crc32)
}
