//! `dbrt-convert register-om`: records the offline model ATC compiled from an Ascend export as
//! its manifest's `om` line (file, length, CRC-32, SoC), so that the runtime checks it before
//! loading it. The manifest is rewritten under a temporary name and renamed over the old one:
//! a reader sees the old manifest or the new, never a part.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use dbrt::offload::manifest::{
    Manifest, OfflineModel, MANIFEST_FILE, MAX_GRAPH_BYTES, MAX_MANIFEST_BYTES,
};

use super::ascend::DEFAULT_OM_FILE;
use crate::error::{io_err, ConvertError, Result};

/// The longest SoC version recorded (`Ascend310B1`, `Ascend310P3`, ...).
pub const MAX_SOC_VERSION_LEN: usize = 64;

/// Reads and parses `dir`'s manifest (bounded in size).
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = read_bounded(&path, MAX_MANIFEST_BYTES)?;
    let text = String::from_utf8(text).map_err(|_| ConvertError::Parse {
        path: path.clone(),
        message: "not UTF-8 text".into(),
    })?;
    Manifest::parse(&text).map_err(|e| ConvertError::Parse {
        path,
        message: e.to_string(),
    })
}

/// A file's bytes, refused (before reading) when empty or longer than `max`.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    if len == 0 || len > max {
        return Err(ConvertError::Invalid(format!(
            "{}: {len} bytes (expected 1 to {max})",
            path.display()
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take`: a file that grows while read is still bounded.
    (&mut f)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 != len {
        return Err(ConvertError::Invalid(format!(
            "{}: changed while read ({len} bytes, then {})",
            path.display(),
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// A SoC version as the manifest holds it: letters, digits, `.`, `-`, `_`.
fn check_soc_version(soc: &str) -> Result<()> {
    let ok = !soc.is_empty()
        && soc.len() <= MAX_SOC_VERSION_LEN
        && soc
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    match ok {
        true => Ok(()),
        false => Err(ConvertError::Invalid(format!(
            "SoC version {soc:?}: expected 1 to {MAX_SOC_VERSION_LEN} letters, digits, '.', \
             '-' or '_' (e.g. Ascend310B1)"
        ))),
    }
}

/// Records the offline model `om` (default `dir/encoder.om`; a file elsewhere is copied into
/// `dir` under its own name) in the Ascend export in `dir`, compiled for `soc_version`;
/// returns the manifest written.
pub fn register_om(dir: &Path, om: Option<&Path>, soc_version: &str) -> Result<Manifest> {
    check_soc_version(soc_version)?;
    let mut manifest = read_manifest(dir)?;
    let Some(part) = manifest.ascend.as_mut() else {
        return Err(ConvertError::Invalid(format!(
            "{}: not an Ascend export (no 'target ascend'); export with --target ascend first",
            dir.join(MANIFEST_FILE).display()
        )));
    };
    let src: PathBuf = om.map_or_else(|| dir.join(DEFAULT_OM_FILE), Path::to_path_buf);
    let name = src
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| plain_name(n))
        .ok_or_else(|| {
            ConvertError::Invalid(format!(
                "{}: the offline model's file name must be letters, digits, '.', '-' or '_'",
                src.display()
            ))
        })?
        .to_owned();
    if name == MANIFEST_FILE || manifest.graphs.iter().any(|g| g.file == name) {
        return Err(ConvertError::Invalid(format!(
            "{}: the offline model cannot be named as the export's own files",
            src.display()
        )));
    }
    let bytes = read_bounded(&src, MAX_GRAPH_BYTES)?;
    let dst = dir.join(&name);
    if !same_file(&src, &dst) {
        write_atomic(&dst, &bytes)?;
    }
    part.om = Some(OfflineModel {
        file: name,
        bytes: bytes.len() as u64,
        crc32: crc32fast::hash(&bytes),
        soc_version: soc_version.to_owned(),
    });
    let text = manifest.to_text();
    Manifest::parse(&text)?;
    write_atomic(&dir.join(MANIFEST_FILE), text.as_bytes())?;
    Ok(manifest)
}

fn plain_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && n != "."
        && n != ".."
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.partial"));
    let write_err = |source| ConvertError::Write {
        path: tmp.clone(),
        source,
    };
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(write_err)?;
        f.write_all(bytes).map_err(write_err)?;
        f.sync_all().map_err(write_err)?;
        fs::rename(&tmp, path).map_err(|source| ConvertError::Write {
            path: path.to_path_buf(),
            source,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
