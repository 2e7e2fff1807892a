//! Opening a `.dbrt` file: from a path through a read-only memory map, or from bytes the caller
//! owns. Every offset and length is checked here, before any tensor is viewed.

use std::fs::File;
use std::path::Path;

use super::header::{tables_crc, Header, HEADER_LEN};
use super::tensor::{DType, TensorRecord, RECORD_LEN};
use super::{Metadata, DATA_ALIGN, FLAG_DATA_CRC};
use crate::error::{Error, Result};
use crate::memory::Buffers;

/// Bytes behind a model: a memory map, or a buffer handed over by the caller.
type Storage = Box<dyn AsRef<[u8]> + Send + Sync>;

/// A 64-byte aligned copy of a caller's bytes, for buffers that are not aligned themselves.
struct AlignedBytes {
    blocks: Vec<[u8; 64]>,
    len: usize,
}

impl AsRef<[u8]> for AlignedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.blocks.as_flattened()[..self.len]
    }
}

/// A read-only map of a file, and the file, open under a shared advisory lock until the map
/// is dropped.
struct LockedMap {
    map: memmap2::Mmap,
    _file: File,
}

impl AsRef<[u8]> for LockedMap {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Takes a shared advisory lock on a model file for as long as `file` stays open. A writer
/// holding the exclusive lock (dbrt's converter, while it replaces the file) makes this fail;
/// a file system without locks is no reason to refuse the model.
fn lock_shared(file: &File, path: &Path) -> Result<()> {
    match file.try_lock_shared() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "the file is locked by a process writing it",
            ),
        }),
        Err(std::fs::TryLockError::Error(e)) => {
            log::debug!("{}: no shared lock ({e}); opening unlocked", path.display());
            Ok(())
        }
    }
}

/// An opened, validated `.dbrt` file. Immutable and shareable across threads.
pub struct ModelFile {
    storage: Storage,
    header: Header,
    meta: Metadata,
}

/// A tensor viewed in place in the file's bytes.
#[derive(Debug, Clone)]
pub struct TensorView<'a> {
    pub record: TensorRecord,
    pub bytes: &'a [u8],
}

impl<'a> TensorView<'a> {
    fn cast<T: bytemuck::AnyBitPattern>(&self, want: DType) -> Result<&'a [T]> {
        if self.record.dtype != want {
            return Err(Error::TensorDtype {
                name: self.record.name.clone(),
                dtype: self.record.dtype.name(),
            });
        }
        bytemuck::try_cast_slice(self.bytes).map_err(|_| Error::MisalignedTensor {
            name: self.record.name.clone(),
        })
    }
    pub fn f32(&self) -> Result<&'a [f32]> {
        self.cast(DType::F32)
    }
    pub fn f16(&self) -> Result<&'a [half::f16]> {
        self.cast(DType::F16)
    }
    pub fn bf16(&self) -> Result<&'a [half::bf16]> {
        self.cast(DType::BF16)
    }
    pub fn i32(&self) -> Result<&'a [i32]> {
        self.cast(DType::I32)
    }
}

impl ModelFile {
    /// Maps `path` read-only and validates it. The file stays open under a shared advisory
    /// lock while the model lives, so that dbrt's own tools refuse to write over it; other
    /// programs may ignore the lock (see [`ModelFile::read`]).
    pub fn open(path: impl AsRef<Path>) -> Result<ModelFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(io_error(path))?;
        lock_shared(&file, path)?;
        // SAFETY: the map is read-only and private to this process, and dbrt's writers neither
        // truncate nor rewrite a file in place: they write a new file and rename it over the
        // old one, whose pages this map keeps. A program that truncates or overwrites the file
        // in place while it is mapped changes what the model reads, or (truncation) makes a
        // read past the end fault: README's "Robustness" and the header say so, and
        // `ModelFile::read` is the mode that cannot be affected.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error(path))?;
        Self::from_storage(Box::new(LockedMap { map, _file: file }))
    }

    /// Reads `path` into memory and validates it: what later happens to the file cannot
    /// affect the model, at the cost of the file's size in memory (a map shares its pages
    /// with the page cache and loads them on first use).
    pub fn read(path: impl AsRef<Path>) -> Result<ModelFile> {
        use std::io::Read;
        let path = path.as_ref();
        let mut file = File::open(path).map_err(io_error(path))?;
        lock_shared(&file, path)?;
        let len = file.metadata().map_err(io_error(path))?.len();
        let len = usize::try_from(len).map_err(|_| Error::OutOfMemory {
            what: "the model file's bytes",
            bytes: len,
        })?;
        let mut blocks =
            Buffers::allocating().zeroed::<[u8; 64]>(len.div_ceil(64), "the model file's bytes")?;
        file.read_exact(&mut blocks.as_flattened_mut()[..len])
            .map_err(io_error(path))?;
        Self::from_storage(Box::new(AlignedBytes { blocks, len }))
    }

    /// Uses a caller's buffer in place. It must start on a 64-byte boundary (tensor data is
    /// viewed without copying); use [`ModelFile::from_bytes_copied`] otherwise.
    pub fn from_buffer<B: AsRef<[u8]> + Send + Sync + 'static>(buffer: B) -> Result<ModelFile> {
        if !(buffer.as_ref().as_ptr() as usize).is_multiple_of(DATA_ALIGN as usize) {
            return Err(Error::MisalignedBuffer {
                required: DATA_ALIGN as usize,
            });
        }
        Self::from_storage(Box::new(buffer))
    }

    /// Copies `bytes` into an aligned buffer of its own.
    pub fn from_bytes_copied(bytes: &[u8]) -> Result<ModelFile> {
        let mut blocks = Buffers::allocating()
            .zeroed::<[u8; 64]>(bytes.len().div_ceil(64), "a copy of the model's bytes")?;
        blocks.as_flattened_mut()[..bytes.len()].copy_from_slice(bytes);
        Self::from_storage(Box::new(AlignedBytes {
            blocks,
            len: bytes.len(),
        }))
    }

    fn from_storage(storage: Storage) -> Result<ModelFile> {
        let bytes = (*storage).as_ref();
        let header = Header::parse(bytes)?;
        let actual = bytes.len() as u64;
        if actual < header.file_len {
            return Err(Error::Truncated {
                what: "file",
                needed: header.file_len,
                actual,
            });
        }
        let corrupt = |m: String| Error::CorruptHeader(m);
        if actual != header.file_len {
            return Err(corrupt(format!(
                "header says {} bytes, the file has {actual}",
                header.file_len
            )));
        }
        if header.meta_offset != HEADER_LEN as u64 || header.record_len as usize != RECORD_LEN {
            return Err(corrupt("section layout".into()));
        }
        let meta_end = header
            .meta_offset
            .checked_add(header.meta_len)
            .filter(|&e| e <= actual && e <= header.table_offset)
            .ok_or_else(|| corrupt("metadata section out of bounds".into()))?;
        let table_len = header
            .tensor_count
            .checked_mul(RECORD_LEN as u64)
            .ok_or_else(|| corrupt("tensor count overflows".into()))?;
        let table_end = header
            .table_offset
            .checked_add(table_len)
            .filter(|&e| e <= actual)
            .ok_or_else(|| corrupt("tensor table out of bounds".into()))?;
        let meta_bytes = &bytes[header.meta_offset as usize..meta_end as usize];
        let table = &bytes[header.table_offset as usize..table_end as usize];
        let computed = tables_crc(&bytes[..HEADER_LEN], meta_bytes, table);
        if computed != header.tables_crc32 {
            return Err(Error::ChecksumMismatch {
                stored: header.tables_crc32,
                computed,
            });
        }
        // Past the checksum, a mismatch below means a writer bug, not damage; still an error.
        if header.alignment as u64 != DATA_ALIGN || header.data_offset % DATA_ALIGN != 0 {
            return Err(corrupt("data alignment".into()));
        }
        let data_end = header
            .data_offset
            .checked_add(header.data_len)
            .filter(|&e| header.data_offset >= table_end && e == actual)
            .ok_or_else(|| corrupt("data section out of bounds".into()))?;
        let meta = Metadata::decode(meta_bytes)?;
        let mut prev: Option<TensorRecord> = None;
        for i in 0..header.tensor_count {
            let at = (i as usize) * RECORD_LEN;
            let rec = TensorRecord::decode(i, &table[at..at + RECORD_LEN])?;
            let end = rec.offset.checked_add(rec.nbytes);
            if rec.offset < header.data_offset || end.is_none_or(|e| e > data_end) {
                return Err(Error::TensorOutOfBounds { name: rec.name });
            }
            if rec.offset % DATA_ALIGN != 0 {
                return Err(Error::MisalignedTensor { name: rec.name });
            }
            if let Some(p) = &prev {
                if p.name.as_bytes() >= rec.name.as_bytes() {
                    return Err(Error::CorruptTensorRecord {
                        index: i,
                        reason: format!("'{}' is not sorted after '{}'", rec.name, p.name),
                    });
                }
            }
            prev = Some(rec);
        }
        Ok(ModelFile {
            storage,
            header,
            meta,
        })
    }

    /// The whole file's bytes.
    pub fn bytes(&self) -> &[u8] {
        (*self.storage).as_ref()
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    fn record_bytes(&self, i: u64) -> &[u8] {
        let at = (self.header.table_offset + i * RECORD_LEN as u64) as usize;
        &self.bytes()[at..at + RECORD_LEN]
    }

    fn view(&self, rec: TensorRecord) -> TensorView<'_> {
        // Bounds were checked for every record in `from_storage`.
        let bytes = &self.bytes()[rec.offset as usize..(rec.offset + rec.nbytes) as usize];
        TensorView { record: rec, bytes }
    }

    /// Tensor records in name order.
    pub fn records(&self) -> impl Iterator<Item = TensorRecord> + '_ {
        (0..self.header.tensor_count)
            .map(|i| TensorRecord::decode(i, self.record_bytes(i)).expect("validated at open"))
    }

    /// Finds a tensor by binary search over the sorted record table.
    pub fn get(&self, name: &str) -> Option<TensorView<'_>> {
        let key = name.as_bytes();
        let (mut lo, mut hi) = (0u64, self.header.tensor_count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let rb = self.record_bytes(mid);
            let n = rb[..super::NAME_LEN]
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(super::NAME_LEN);
            match rb[..n].cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let rec = TensorRecord::decode(mid, rb).expect("validated at open");
                    return Some(self.view(rec));
                }
            }
        }
        None
    }

    /// Like [`ModelFile::get`], with a typed error for a missing tensor.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        self.get(name)
            .ok_or_else(|| Error::MissingTensor { name: name.into() })
    }

    /// Checks the CRC-32 of the data section and of every tensor. Reads the whole file, so it is
    /// not done at open; `dbrt-convert inspect --verify` and the tests call it.
    pub fn verify_data(&self) -> Result<()> {
        let h = &self.header;
        if h.flags & FLAG_DATA_CRC != 0 {
            let data = &self.bytes()[h.data_offset as usize..(h.data_offset + h.data_len) as usize];
            if crc32fast::hash(data) != h.data_crc32 {
                return Err(Error::DataChecksumMismatch {
                    tensor: "(data section)".into(),
                });
            }
        }
        for rec in self.records() {
            let v = self.view(rec);
            if crc32fast::hash(v.bytes) != v.record.crc32 {
                return Err(Error::DataChecksumMismatch {
                    tensor: v.record.name,
                });
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for ModelFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelFile")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}
