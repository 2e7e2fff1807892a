//! Handles to tensors inside a mapped file, resolved and checked once when a model is opened,
//! and viewed in place (no copy) during a forward pass.

use half::{bf16, f16};

use crate::error::{Error, Result};
use crate::format::{DType, ModelFile, TensorView};

/// A row-major `[rows, cols]` matrix of f32, f16 or bf16 in the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef {
    offset: usize,
    pub rows: usize,
    pub cols: usize,
    dtype: DType,
}

/// An f32 vector in the file (biases, LayerNorm parameters).
#[derive(Debug, Clone, Copy)]
pub(crate) struct VecRef {
    offset: usize,
    pub len: usize,
}

/// A matrix viewed in the file's bytes.
pub(crate) enum Matrix<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    BF16(&'a [bf16]),
}

fn expect_shape(v: &TensorView<'_>, shape: &[usize]) -> Result<()> {
    let want: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    if v.record.shape != want {
        return Err(Error::TensorShape {
            name: v.record.name.clone(),
            expected: want,
            actual: v.record.shape.clone(),
            dtype: v.record.dtype.name(),
        });
    }
    Ok(())
}

/// Tensor records hold absolute file offsets, so a handle is just that offset.
fn offset_in(v: &TensorView<'_>) -> usize {
    v.record.offset as usize
}

impl MatRef {
    pub fn resolve(file: &ModelFile, name: &str, rows: usize, cols: usize) -> Result<MatRef> {
        let v = file.tensor(name)?;
        expect_shape(&v, &[rows, cols])?;
        // Cast once here so that an unaligned tensor is an error at open, not at run time.
        match v.record.dtype {
            DType::F32 => drop(v.f32()?),
            DType::F16 => drop(v.f16()?),
            DType::BF16 => drop(v.bf16()?),
            dtype => {
                return Err(Error::TensorDtype {
                    name: name.into(),
                    dtype: dtype.name(),
                })
            }
        }
        Ok(MatRef {
            offset: offset_in(&v),
            rows,
            cols,
            dtype: v.record.dtype,
        })
    }

    pub fn view<'a>(&self, bytes: &'a [u8]) -> Matrix<'a> {
        let n = self.rows * self.cols * self.dtype.size();
        let b = &bytes[self.offset..self.offset + n];
        // The casts were checked when the model was opened; the bytes never change.
        match self.dtype {
            DType::F32 => Matrix::F32(bytemuck::cast_slice(b)),
            DType::F16 => Matrix::F16(bytemuck::cast_slice(b)),
            _ => Matrix::BF16(bytemuck::cast_slice(b)),
        }
    }
}

impl VecRef {
    pub fn resolve(file: &ModelFile, name: &str, len: usize) -> Result<VecRef> {
        let v = file.tensor(name)?;
        expect_shape(&v, &[len])?;
        v.f32()?;
        Ok(VecRef {
            offset: offset_in(&v),
            len,
        })
    }

    pub fn view<'a>(&self, bytes: &'a [u8]) -> &'a [f32] {
        bytemuck::cast_slice(&bytes[self.offset..self.offset + 4 * self.len])
    }
}

impl<'a> Matrix<'a> {
    /// Row `r` as f32: in place for f32 storage, else widened into `scratch`.
    #[inline]
    pub fn row<'s>(&'s self, r: usize, cols: usize, scratch: &'s mut [f32]) -> &'s [f32] {
        let span = r * cols..(r + 1) * cols;
        match self {
            Matrix::F32(d) => &d[span],
            Matrix::F16(d) => {
                let out = &mut scratch[..cols];
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(&d[span], out);
                out
            }
            Matrix::BF16(d) => {
                let out = &mut scratch[..cols];
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(&d[span], out);
                out
            }
        }
    }
}
