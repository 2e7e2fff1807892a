//! Reading an artifact directory (`manifest.txt`, the graphs, an Ascend offline model) and the
//! offline model a `.dbrt` file may hold, every size bounded and every checksum checked before
//! a backend sees the bytes.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::manifest::{
    Manifest, MANIFEST_FILE, MAX_GEARS, MAX_MANIFEST_BYTES, OM_GEARS, OM_TENSOR,
};
use crate::error::{Error, Result};
use crate::model::Model;

/// The gears and offline model of an Ascend export in `dir`, checked against its manifest.
pub(super) fn read_offline_model(model: &Model, dir: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let manifest = read_manifest(model, dir)?;
    let Some(part) = manifest.ascend else {
        return Err(Error::InvalidArtifacts(format!(
            "{} holds graphs per bucket, not an Ascend export: export with --target ascend",
            dir.display()
        )));
    };
    let Some(om) = part.om else {
        return Err(Error::InvalidArtifacts(format!(
            "the Ascend export in {} is not compiled yet: run scripts/ascend/compile.sh {0} \
             --soc_version <your SoC>",
            dir.display()
        )));
    };
    let bytes = read_checked(&dir.join(&om.file), om.bytes, om.crc32)?;
    log::info!(
        "Ascend offline model {} ({} bytes, compiled for {})",
        om.file,
        om.bytes,
        om.soc_version
    );
    Ok((part.gears, bytes))
}

/// The gears and bytes of the offline model inside `model`'s file, its CRC checked (AscendCL's
/// parser is not to be trusted with damaged bytes).
pub(super) fn embedded_offline_model(model: &Model) -> Result<(Vec<usize>, &[u8])> {
    let file = model.file();
    let Some(t) = file.get(OM_TENSOR) else {
        return Err(Error::InvalidArtifacts(
            "no artifact directory given, and the model holds no Ascend offline model \
             (dbrt-convert embed-om)"
                .into(),
        ));
    };
    if t.record.dtype != crate::format::DType::U8 || t.bytes.is_empty() {
        return Err(Error::InvalidArtifacts(format!(
            "{OM_TENSOR} is not a non-empty u8 tensor"
        )));
    }
    let crc = crc32fast::hash(t.bytes);
    if crc != t.record.crc32 {
        return Err(Error::InvalidArtifacts(format!(
            "{OM_TENSOR} is corrupt: CRC-32 {crc:08x}, its record says {:08x}",
            t.record.crc32
        )));
    }
    let gears = match file.metadata().get(OM_GEARS) {
        Some(crate::format::MetaValue::I64List(g)) => g.clone(),
        _ => {
            return Err(Error::InvalidArtifacts(format!(
                "{OM_TENSOR} without an {OM_GEARS} list"
            )))
        }
    };
    let max = model.max_sequence_length() as i64;
    let ascending = gears.windows(2).all(|w| w[0] < w[1]);
    if gears.is_empty()
        || gears.len() > MAX_GEARS
        || !ascending
        || gears[0] < 1
        || gears[gears.len() - 1] > max
    {
        return Err(Error::InvalidArtifacts(format!(
            "{OM_GEARS} must be 1..={MAX_GEARS} ascending lengths in 1..={max}"
        )));
    }
    Ok((gears.into_iter().map(|g| g as usize).collect(), t.bytes))
}

/// Reads at most `limit` bytes of `path` (more is an error).
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    // Reserved up front, fallibly: a graph of a few hundred MB on a small device is an error,
    // not an abort.
    bytes
        .try_reserve_exact(limit as usize + 1)
        .map_err(|_| Error::OutOfMemory {
            what: "an encoder graph read from the artifacts",
            bytes: limit + 1,
        })?;
    File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(Error::InvalidArtifacts(format!(
            "{} is longer than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Each bucket's graph bytes.
pub(super) type Graphs = Vec<(usize, Vec<u8>)>;

/// The manifest of `dir`, checked against `model`.
pub(super) fn read_manifest(model: &Model, dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    if !path.is_file() {
        return Err(Error::InvalidArtifacts(format!(
            "no {MANIFEST_FILE} in {} (not an export, or an incomplete one)",
            dir.display()
        )));
    }
    let text = read_bounded(&path, MAX_MANIFEST_BYTES)?;
    let text = std::str::from_utf8(&text)
        .map_err(|_| Error::InvalidArtifacts(format!("{MANIFEST_FILE} is not UTF-8")))?;
    let manifest = Manifest::parse(text)?;
    manifest.check_model(model.file().header())?;
    let c = model.config();
    if (manifest.layers, manifest.hidden_size) != (c.num_hidden_layers, c.hidden_size) {
        return Err(Error::InvalidArtifacts(format!(
            "{} layers of {} in the manifest, the model has {} of {}",
            manifest.layers, manifest.hidden_size, c.num_hidden_layers, c.hidden_size
        )));
    }
    for g in &manifest.graphs {
        if g.bucket > model.max_sequence_length() {
            return Err(Error::InvalidArtifacts(format!(
                "bucket {} exceeds the model's {} positions",
                g.bucket,
                model.max_sequence_length()
            )));
        }
    }
    Ok(manifest)
}

/// Each graph of `manifest` from `dir`, checked against it.
pub(super) fn read_graphs(manifest: &Manifest, dir: &Path) -> Result<Graphs> {
    let mut graphs = Vec::with_capacity(manifest.graphs.len());
    for g in &manifest.graphs {
        graphs.push((
            g.bucket,
            read_checked(&dir.join(&g.file), g.bytes, g.crc32)?,
        ));
    }
    Ok(graphs)
}

/// The file at `path`, which the manifest says has `bytes` bytes and CRC-32 `crc32`.
fn read_checked(path: &Path, bytes: u64, crc32: u32) -> Result<Vec<u8>> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let len = path.metadata().map(|m| m.len()).unwrap_or(0);
    if len != bytes {
        return Err(Error::InvalidArtifacts(format!(
            "{name} has {len} bytes, the manifest says {bytes}"
        )));
    }
    let data = read_bounded(path, bytes)?;
    let crc = crc32fast::hash(&data);
    if data.len() as u64 != bytes || crc != crc32 {
        return Err(Error::InvalidArtifacts(format!(
            "{name} is corrupt: CRC-32 {crc:08x}, the manifest says {crc32:08x}"
        )));
    }
    Ok(data)
}
