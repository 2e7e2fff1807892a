//! Writing a `.dbrt` file. Used by the converter and by tests that forge files.

use std::io::Write;

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
    /// half-written model.
    pub fn write_to_path(self, path: &std::path::Path) -> std::io::Result<u64> {
        let tmp = path.with_extension("dbrt.partial");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let n = self.write(&mut f)?;
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(n)
    }
}
