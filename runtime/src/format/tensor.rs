//! Fixed-size tensor records: 160 bytes each, sorted by name so a tensor is found by binary
//! search without building an index at open.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 96 | name, UTF-8, NUL-padded |
//! | 96 | 1 | dtype |
//! | 97 | 1 | ndim (0..=4) |
//! | 98 | 2 | layout id |
//! | 100 | 4 | CRC-32 of the tensor's bytes |
//! | 104 | 32 | shape, 4 × u64 (unused dims 0) |
//! | 136 | 8 | absolute byte offset in the file |
//! | 144 | 8 | byte length |
//! | 152 | 8 | reserved, zero |

use crate::error::{Error, Result};
use crate::kernels::{NR, QBLOCK};

pub const RECORD_LEN: usize = 160;
pub const NAME_LEN: usize = 96;
pub const MAX_DIMS: usize = 4;

/// Element types. Numbering is part of the format; never reuse a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DType {
    F32 = 1,
    F16 = 2,
    BF16 = 3,
    I8 = 4,
    U8 = 5,
    I32 = 6,
    F64 = 7,
    /// Signed 4-bit integers in [-8, 7], two per byte, the lower-indexed one in the low nibble;
    /// each row (last dimension) starts on a byte.
    I4 = 8,
}

impl DType {
    pub fn from_u8(v: u8) -> Option<DType> {
        Some(match v {
            1 => DType::F32,
            2 => DType::F16,
            3 => DType::BF16,
            4 => DType::I8,
            5 => DType::U8,
            6 => DType::I32,
            7 => DType::F64,
            8 => DType::I4,
            _ => return None,
        })
    }
    /// Bytes per element; for `I4`, the unit of storage and alignment (a row of `n` takes
    /// `n.div_ceil(2)` bytes: see [`storage_bytes`]).
    pub fn size(self) -> usize {
        match self {
            DType::F64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I8 | DType::U8 | DType::I4 => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I32 => "i32",
            DType::F64 => "f64",
            DType::I4 => "i4",
        }
    }
}

/// How a tensor's elements are laid out. Numbering is part of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Layout {
    RowMajor = 0,
    /// An int8 `[out, in]` matrix packed for the int8 GEMM kernels: panels of 8 output rows;
    /// within a panel, for each group of 4 inputs, 8 × 4 bytes (output-major). `out` is padded
    /// to a multiple of 8 and `in` to a multiple of 32 (the activation quantization block) with
    /// zeros. An AVX2 register holds one group (32 bytes); a NEON register half of one (4
    /// outputs × 4 inputs, for `sdot`). Packed by [`pack_i8`](super::pack::pack_i8), a panel
    /// found again by [`panel_span`](super::pack::panel_span).
    I8Panel8x4 = 1,
    /// As `I8Panel8x4` with panels of 16 output rows: for each group of 4 inputs, 16 × 4
    /// bytes, i.e. two 8-row panels alternating group by group (one 64-byte load holds both,
    /// for AVX-512). `out` is padded to a multiple of 16. Packed and read by the same functions.
    I8Panel16x4 = 2,
}

impl Layout {
    /// Output rows per packed panel; `None` for an unpacked layout.
    pub fn panel_rows(self) -> Option<usize> {
        match self {
            Layout::RowMajor => None,
            Layout::I8Panel8x4 => Some(NR),
            Layout::I8Panel16x4 => Some(2 * NR),
        }
    }

    pub fn from_u16(v: u16) -> Option<Layout> {
        match v {
            0 => Some(Layout::RowMajor),
            1 => Some(Layout::I8Panel8x4),
            2 => Some(Layout::I8Panel16x4),
            _ => None,
        }
    }
}

/// Bytes a tensor of `shape` takes in `layout`; `None` on overflow or a layout that does not
/// fit the dtype and shape.
pub fn storage_bytes(dtype: DType, layout: Layout, shape: &[u64]) -> Option<u64> {
    match layout {
        Layout::RowMajor if dtype == DType::I4 => {
            let (last, rows) = shape.split_last()?;
            rows.iter()
                .try_fold(last.div_ceil(2), |a, &d| a.checked_mul(d))
        }
        Layout::RowMajor => shape
            .iter()
            .try_fold(dtype.size() as u64, |a, &d| a.checked_mul(d)),
        Layout::I8Panel8x4 | Layout::I8Panel16x4 => match (dtype, shape) {
            (DType::I8, [rows, cols]) => {
                let nr = layout.panel_rows()? as u64;
                rows.div_ceil(nr)
                    .checked_mul(nr)?
                    .checked_mul(cols.div_ceil(QBLOCK as u64).checked_mul(QBLOCK as u64)?)
            }
            _ => None,
        },
    }
}

/// One decoded tensor record. Offsets are absolute file offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRecord {
    pub name: String,
    pub dtype: DType,
    pub layout: Layout,
    pub shape: Vec<u64>,
    pub crc32: u32,
    pub offset: u64,
    pub nbytes: u64,
}

impl TensorRecord {
    pub fn numel(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
    }

    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[..self.name.len()].copy_from_slice(self.name.as_bytes());
        b[96] = self.dtype as u8;
        b[97] = self.shape.len() as u8;
        b[98..100].copy_from_slice(&(self.layout as u16).to_le_bytes());
        b[100..104].copy_from_slice(&self.crc32.to_le_bytes());
        for (i, d) in self.shape.iter().enumerate() {
            b[104 + 8 * i..112 + 8 * i].copy_from_slice(&d.to_le_bytes());
        }
        b[136..144].copy_from_slice(&self.offset.to_le_bytes());
        b[144..152].copy_from_slice(&self.nbytes.to_le_bytes());
        b
    }

    /// Decodes record `index` and checks everything that does not need the file around it.
    pub fn decode(index: u64, b: &[u8]) -> Result<TensorRecord> {
        let bad = |reason: String| Error::CorruptTensorRecord { index, reason };
        if b.len() != RECORD_LEN {
            return Err(bad(format!("record of {} bytes", b.len())));
        }
        let name_end = b[..NAME_LEN]
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(NAME_LEN);
        if name_end == 0 || b[name_end..NAME_LEN].iter().any(|&c| c != 0) {
            return Err(bad("empty or malformed name".into()));
        }
        let name = std::str::from_utf8(&b[..name_end])
            .map_err(|_| bad("name is not UTF-8".into()))?
            .to_string();
        let dtype = DType::from_u8(b[96]).ok_or_else(|| bad(format!("unknown dtype {}", b[96])))?;
        let ndim = b[97] as usize;
        if ndim > MAX_DIMS {
            return Err(bad(format!("{ndim} dimensions")));
        }
        let layout_id = u16::from_le_bytes([b[98], b[99]]);
        let layout = Layout::from_u16(layout_id)
            .ok_or_else(|| bad(format!("unknown layout {layout_id}")))?;
        let crc32 = u32::from_le_bytes(b[100..104].try_into().expect("4 bytes"));
        let dim =
            |i: usize| u64::from_le_bytes(b[104 + 8 * i..112 + 8 * i].try_into().expect("8 bytes"));
        let shape: Vec<u64> = (0..ndim).map(dim).collect();
        if (ndim..MAX_DIMS).any(|i| dim(i) != 0) || b[152..160].iter().any(|&c| c != 0) {
            return Err(bad("non-zero reserved bytes".into()));
        }
        let offset = u64::from_le_bytes(b[136..144].try_into().expect("8 bytes"));
        let nbytes = u64::from_le_bytes(b[144..152].try_into().expect("8 bytes"));
        let rec = TensorRecord {
            name,
            dtype,
            layout,
            shape,
            crc32,
            offset,
            nbytes,
        };
        let expect = storage_bytes(dtype, layout, &rec.shape)
            .ok_or_else(|| bad("shape overflows or does not fit the layout".into()))?;
        if expect != nbytes {
            return Err(bad(format!(
                "{nbytes} bytes for shape {:?} of {}",
                rec.shape,
                dtype.name()
            )));
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int4_rows_take_half_a_byte_per_value_rounded_up() {
        let b = |shape: &[u64]| storage_bytes(DType::I4, Layout::RowMajor, shape);
        assert_eq!(b(&[10, 384]), Some(1920));
        assert_eq!(b(&[3, 5]), Some(9)); // each row of 5 takes 3 bytes
        assert_eq!(b(&[7]), Some(4));
        assert_eq!(b(&[]), None);
        assert_eq!(storage_bytes(DType::I4, Layout::I8Panel8x4, &[8, 32]), None);
        assert_eq!(DType::from_u8(8), Some(DType::I4));
    }
}
