//! The `.dbrt` file: a fixed header, typed metadata, a table of fixed-size tensor records and
//! 64-byte-aligned tensor data. The specification is `docs/FORMAT.md`; this module is the one
//! place that reads and writes it.

mod header;
mod meta;
pub mod pack;
mod reader;
mod tensor;
mod writer;

pub use header::{Header, HEADER_LEN};
pub use meta::{MetaValue, Metadata};
pub use reader::{ModelFile, TensorView};
pub use tensor::{storage_bytes, DType, Layout, TensorRecord, MAX_DIMS, NAME_LEN, RECORD_LEN};
pub use writer::{FileWriter, WriteError};

/// First bytes of every `.dbrt` file. The high byte and the CR LF / ^Z catch text-mode damage,
/// as in PNG.
pub const MAGIC: [u8; 8] = *b"\x89DBRT\r\n\x1a";
/// Readers refuse a file whose major version differs; minor versions only add.
pub const FORMAT_MAJOR: u16 = 1;
pub const FORMAT_MINOR: u16 = 0;
/// Written little-endian; a reader on the other byte order sees `0x04030201`.
pub const BYTE_ORDER_MARK: u32 = 0x0102_0304;
/// Alignment of the data section and of every tensor in it.
pub const DATA_ALIGN: u64 = 64;

/// Header flag: `data_crc32` holds the CRC-32 of the whole data section.
pub const FLAG_DATA_CRC: u32 = 1;

/// Recomputes the header/tables checksum of a whole file in place, after a tool (or a test that
/// forges damage behind the checksum) edited the header, metadata or tensor table.
pub fn reseal(file: &mut [u8]) -> crate::Result<()> {
    let h = Header::parse(file)?;
    let meta = (h.meta_offset as usize, h.meta_len as usize);
    let table = (
        h.table_offset as usize,
        h.tensor_count as usize * RECORD_LEN,
    );
    let end = |(o, l): (usize, usize)| o.checked_add(l).filter(|&e| e <= file.len());
    let (Some(me), Some(te)) = (end(meta), end(table)) else {
        return Err(crate::Error::CorruptHeader("sections out of bounds".into()));
    };
    let crc = header::tables_crc(&file[..HEADER_LEN], &file[meta.0..me], &file[table.0..te]);
    file[header::TABLES_CRC_AT..header::TABLES_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

pub(crate) fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}
