//! Writing a `.dbrt` file. Used by the converter and by tests that forge files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::header::{tables_crc, Header, HEADER_LEN};
use super::tensor::{DType, Layout, TensorRecord, MAX_DIMS, NAME_LEN, RECORD_LEN};
use super::{align_up, Metadata, DATA_ALIGN, FLAG_DATA_CRC, FORMAT_MAJOR, FORMAT_MINOR};
use crate::error::{Error, Result};

struct Pending {
    name: String,
    dtype: DType,
    layout: Layout,
    shape: Vec<u64>,
    data: Vec<u8>,
}

/// Collects metadata and tensors, then writes them as one file.
#[derive(Default)]
pub struct FileWriter {
    pub metadata: Metadata,
    tensors: Vec<Pending>,
}

impl FileWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a row-major tensor. `data` holds its elements little-endian.
    pub fn add_tensor(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        data: Vec<u8>,
    ) -> Result<()> {
        self.add_tensor_with_layout(name, dtype, Layout::RowMajor, shape, data)
    }

    /// Adds a tensor stored in `layout` (see [`Layout`]).
    pub fn add_tensor_with_layout(
        &mut self,
        name: &str,
        dtype: DType,
        layout: Layout,
        shape: &[u64],
        data: Vec<u8>,
    ) -> Result<()> {
        let bad = |m: String| Error::InvalidArgument(format!("tensor '{name}': {m}"));
        if name.is_empty() || name.len() > NAME_LEN || name.contains('\0') {
            return Err(bad(format!("names take 1 to {NAME_LEN} bytes and no NUL")));
        }
        if shape.len() > MAX_DIMS {
            return Err(bad(format!(
                "{} dimensions, at most {MAX_DIMS}",
                shape.len()
            )));
        }
        if super::storage_bytes(dtype, layout, shape) != Some(data.len() as u64) {
            return Err(bad(format!(
                "{} bytes for shape {shape:?} of {} in {layout:?}",
                data.len(),
                dtype.name()
            )));
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(bad("added twice".into()));
        }
        self.tensors.push(Pending {
            name: name.into(),
            dtype,
            layout,
            shape: shape.to_vec(),
            data,
        });
        Ok(())
    }

    pub fn add_f32(&mut self, name: &str, shape: &[u64], data: &[f32]) -> Result<()> {
        self.add_tensor(name, DType::F32, shape, bytemuck::cast_slice(data).to_vec())
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.tensors.iter().any(|t| t.name == name)
    }

    /// Serializes everything into `out`, returning the number of bytes written.
    pub fn write(mut self, out: &mut impl Write) -> std::io::Result<u64> {
        self.tensors
            .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let meta = self.metadata.encode();
        let meta_offset = HEADER_LEN as u64;
        let table_offset = meta_offset + meta.len() as u64;
        let table_len = (self.tensors.len() * RECORD_LEN) as u64;
        let data_offset = align_up(table_offset + table_len, DATA_ALIGN);
        let mut records = Vec::with_capacity(self.tensors.len());
        let mut at = data_offset;
        let mut data_crc = crc32fast::Hasher::new();
        for t in &self.tensors {
            records.push(TensorRecord {
                name: t.name.clone(),
                dtype: t.dtype,
                layout: t.layout,
                shape: t.shape.clone(),
                crc32: crc32fast::hash(&t.data),
                offset: at,
                nbytes: t.data.len() as u64,
            });
            at = align_up(at + t.data.len() as u64, DATA_ALIGN);
        }
        let file_len = at;
        let mut table = Vec::with_capacity(table_len as usize);
        for r in &records {
            table.extend_from_slice(&r.encode());
        }
        // The data CRC covers the padding too: hash the section exactly as written.
        let mut pos = data_offset;
        let zeros = [0u8; DATA_ALIGN as usize];
        for (t, r) in self.tensors.iter().zip(&records) {
            data_crc.update(&zeros[..(r.offset - pos) as usize]);
            data_crc.update(&t.data);
            pos = r.offset + r.nbytes;
        }
        data_crc.update(&zeros[..(file_len - pos) as usize]);
        let mut header = Header {
            major: FORMAT_MAJOR,
            minor: FORMAT_MINOR,
            flags: FLAG_DATA_CRC,
            file_len,
            meta_offset,
            meta_len: meta.len() as u64,
            table_offset,
            tensor_count: records.len() as u64,
            record_len: RECORD_LEN as u32,
            alignment: DATA_ALIGN as u32,
            data_offset,
            data_len: file_len - data_offset,
            data_crc32: data_crc.finalize(),
            tables_crc32: 0,
        };
        header.tables_crc32 = tables_crc(&header.to_bytes(), &meta, &table);
        out.write_all(&header.to_bytes())?;
        out.write_all(&meta)?;
        out.write_all(&table)?;
        let mut pos = table_offset + table_len;
        for (t, r) in self.tensors.iter().zip(&records) {
            out.write_all(&zeros[..(r.offset - pos) as usize])?;
            out.write_all(&t.data)?;
            pos = r.offset + r.nbytes;
        }
        out.write_all(&zeros[..(file_len - pos) as usize])?;
        Ok(file_len)
    }

    /// Writes to `path` through a temporary file and a rename, so that a reader never maps a
    /// half-written model. See [`FileWriter::write_to_path_checked`].
    pub fn write_to_path(self, path: &Path) -> Result<u64, WriteError> {
        self.write_to_path_checked(path, |_| Ok::<(), WriteError>(()))
    }

    /// Writes to a temporary file beside `path` that no other writer shares (its name holds the
    /// process id and a counter, and it is created with `create_new`), syncs it to disk, lets
    /// `check` inspect it, then renames it over `path`. Whatever fails, the temporary file is
    /// removed.
    ///
    /// An existing `path` is replaced only if no process holds a lock on it: dbrt holds a shared
    /// advisory lock on every model it has open from a path, so a model in use is refused
    /// ([`WriteError::InUse`]) instead of being swapped under its user. The exclusive lock taken
    /// for the check is held across the rename and released right after.
    pub fn write_to_path_checked<E: From<WriteError>>(
        self,
        path: &Path,
        check: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<u64, E> {
        let (tmp, file) = create_temporary(path)?;
        let tmp = RemoveOnDrop(Some(tmp));
        let at = |source| WriteError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut out = std::io::BufWriter::new(file);
        let n = self.write(&mut out).map_err(at)?;
        let file = out.into_inner().map_err(|e| at(e.into_error()))?;
        file.sync_all().map_err(at)?;
        drop(file);
        check(tmp.path())?;
        let lock = lock_destination(path)?;
        std::fs::rename(tmp.path(), path).map_err(at)?;
        tmp.keep();
        drop(lock);
        // The rename is durable once the directory is synced too; where the platform cannot
        // sync a directory, the file is in place all the same.
        if let Some(dir) = path.parent().map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        }) {
            if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
                log::debug!("cannot sync directory {}: {e}", dir.display());
            }
        }
        Ok(n)
    }
}

/// Why [`FileWriter::write_to_path`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is open in a dbrt process (a model in use); write elsewhere or close it first"
    )]
    InUse { path: PathBuf },
}

/// Distinguishes the temporary files of writers in one process (the process id separates
/// processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `{path}.{pid}-{n}.partial`, created with `create_new`: a name no other writer uses.
fn create_temporary(path: &Path) -> Result<(PathBuf, std::fs::File), WriteError> {
    let name = path.file_name().ok_or_else(|| WriteError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    let mut last = None;
    // A name taken (a temporary file left by a killed process of the same id) moves on to the
    // next counter value; a few attempts are plenty.
    for _ in 0..16 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = name.to_os_string();
        tmp_name.push(format!(".{}-{n}.partial", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(source) => {
                return Err(WriteError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
    Err(WriteError::Io {
        path: path.to_path_buf(),
        source: last.expect("at least one attempt"),
    })
}

/// An exclusive lock on the file `path` names, if it exists; refused while a model holds it.
fn lock_destination(path: &Path) -> Result<Option<std::fs::File>, WriteError> {
    let existing = match std::fs::File::open(path) {
        Ok(f) => f,
        // Nothing to replace (or nothing that can be opened): the rename reports what is wrong.
        Err(_) => return Ok(None),
    };
    // Another writer holds the lock only across its rename; a model in use holds it for as long
    // as it is open. A few tries over a second tell the two apart.
    for attempt in 0..LOCK_TRIES {
        match existing.try_lock() {
            Ok(()) => return Ok(Some(existing)),
            Err(std::fs::TryLockError::WouldBlock) if attempt + 1 < LOCK_TRIES => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => break,
            // A file system without locks cannot tell; replacing is what happened before locks.
            Err(std::fs::TryLockError::Error(e)) => {
                log::debug!("cannot lock {}: {e}", path.display());
                return Ok(None);
            }
        }
    }
    Err(WriteError::InUse {
        path: path.to_path_buf(),
    })
}

/// Tries at taking a destination's lock, 10 ms apart.
const LOCK_TRIES: usize = 100;

/// Removes a temporary file unless it was renamed into place.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn path(&self) -> &Path {
        self.0.as_deref().expect("not yet kept")
    }
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            if let Err(e) = std::fs::remove_file(&p) {
                log::warn!("cannot remove {}: {e}", p.display());
            }
        }
    }
}
