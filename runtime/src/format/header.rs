//! The fixed 128-byte header. All integers little-endian.

use super::{BYTE_ORDER_MARK, FORMAT_MAJOR, MAGIC};
use crate::error::{Error, Result};

pub const HEADER_LEN: usize = 128;
/// Byte range of `tables_crc32`, zeroed while the checksum is computed.
pub(crate) const TABLES_CRC_AT: usize = 92;

/// The decoded header. Field offsets are given in `docs/FORMAT.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub major: u16,
    pub minor: u16,
    pub flags: u32,
    pub file_len: u64,
    pub meta_offset: u64,
    pub meta_len: u64,
    pub table_offset: u64,
    pub tensor_count: u64,
    pub record_len: u32,
    pub alignment: u32,
    pub data_offset: u64,
    pub data_len: u64,
    pub data_crc32: u32,
    pub tables_crc32: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Header {
    /// Decodes and checks the magic, version and byte order. Section bounds are checked by the
    /// reader, which knows the file length.
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        if bytes.len() < HEADER_LEN {
            // A file too short to hold even the magic is not a .dbrt file at all.
            if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
                return Err(Error::BadMagic);
            }
            return Err(Error::Truncated {
                what: "header",
                needed: HEADER_LEN as u64,
                actual: bytes.len() as u64,
            });
        }
        let b = &bytes[..HEADER_LEN];
        if b[..8] != MAGIC {
            return Err(Error::BadMagic);
        }
        let major = u16_at(b, 8);
        let minor = u16_at(b, 10);
        let bom = u32_at(b, 12);
        if bom != BYTE_ORDER_MARK {
            return if bom == BYTE_ORDER_MARK.swap_bytes() {
                Err(Error::ByteOrder)
            } else {
                Err(Error::CorruptHeader(format!("byte-order mark {bom:#010x}")))
            };
        }
        if major != FORMAT_MAJOR {
            return Err(Error::UnsupportedVersion {
                major,
                minor,
                supported: FORMAT_MAJOR,
            });
        }
        let header_len = u32_at(b, 20);
        if header_len as usize != HEADER_LEN {
            return Err(Error::CorruptHeader(format!("header length {header_len}")));
        }
        Ok(Header {
            major,
            minor,
            flags: u32_at(b, 16),
            file_len: u64_at(b, 24),
            meta_offset: u64_at(b, 32),
            meta_len: u64_at(b, 40),
            table_offset: u64_at(b, 48),
            tensor_count: u64_at(b, 56),
            record_len: u32_at(b, 64),
            alignment: u32_at(b, 68),
            data_offset: u64_at(b, 72),
            data_len: u64_at(b, 80),
            data_crc32: u32_at(b, 88),
            tables_crc32: u32_at(b, TABLES_CRC_AT),
        })
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.major.to_le_bytes());
        b[10..12].copy_from_slice(&self.minor.to_le_bytes());
        b[12..16].copy_from_slice(&BYTE_ORDER_MARK.to_le_bytes());
        b[16..20].copy_from_slice(&self.flags.to_le_bytes());
        b[20..24].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        b[24..32].copy_from_slice(&self.file_len.to_le_bytes());
        b[32..40].copy_from_slice(&self.meta_offset.to_le_bytes());
        b[40..48].copy_from_slice(&self.meta_len.to_le_bytes());
        b[48..56].copy_from_slice(&self.table_offset.to_le_bytes());
        b[56..64].copy_from_slice(&self.tensor_count.to_le_bytes());
        b[64..68].copy_from_slice(&self.record_len.to_le_bytes());
        b[68..72].copy_from_slice(&self.alignment.to_le_bytes());
        b[72..80].copy_from_slice(&self.data_offset.to_le_bytes());
        b[80..88].copy_from_slice(&self.data_len.to_le_bytes());
        b[88..92].copy_from_slice(&self.data_crc32.to_le_bytes());
        b[TABLES_CRC_AT..TABLES_CRC_AT + 4].copy_from_slice(&self.tables_crc32.to_le_bytes());
        b
    }
}

/// CRC-32 over the header (with its own checksum field zeroed), the metadata and the tensor table.
pub(crate) fn tables_crc(header: &[u8], meta: &[u8], table: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&header[..TABLES_CRC_AT]);
    h.update(&[0u8; 4]);
    h.update(&header[TABLES_CRC_AT + 4..HEADER_LEN]);
    h.update(meta);
    h.update(table);
    h.finalize()
}
