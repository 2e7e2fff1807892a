//! Handles to tensors inside a mapped file, resolved and checked once when a model is opened,
//! and viewed in place (no copy) during a forward pass.

use half::{bf16, f16};

use crate::error::{Error, Result};
use crate::format::{pack, DType, Layout, ModelFile, TensorView};
use crate::kernels::{Panel, NR, QBLOCK};

/// A row-major `[rows, cols]` matrix of f32, f16, bf16, or int8 / int4 with one scale per row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef {
    offset: usize,
    pub rows: usize,
    pub cols: usize,
    dtype: DType,
    /// Row scales of an int8 or int4 matrix.
    scales: Option<VecRef>,
}

/// An int8 `[rows, cols]` matrix packed in `Layout::I8Panel8x4` or `I8Panel16x4` (seen as
/// 8-row panels, two of them interleaved), with one scale per row (output channel).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PackedRef {
    offset: usize,
    /// `cols` rounded up to a multiple of [`QBLOCK`]: the bytes per row of a quantized input.
    pub kp: usize,
    /// 8-row panels, including the padding of `I8Panel16x4` to an even count.
    pub panels: usize,
    /// 1 for `I8Panel8x4`, 2 for `I8Panel16x4` (see [`Panel`]).
    pub interleave: usize,
    pub scales: VecRef,
    /// `<name>_bsum`: per panel, per block of inputs, the 8 outputs' weight sums (i32).
    bsum: usize,
}

/// An f32 vector in the file (biases, LayerNorm parameters, scales).
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
    I8(&'a [i8], &'a [f32]),
    /// Two values per byte, low nibble first; `cols.div_ceil(2)` bytes per row.
    I4(&'a [u8], &'a [f32]),
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

impl MatRef {
    pub fn resolve(file: &ModelFile, name: &str, rows: usize, cols: usize) -> Result<MatRef> {
        let v = file.tensor(name)?;
        expect_shape(&v, &[rows, cols])?;
        if v.record.layout != Layout::RowMajor {
            return Err(Error::TensorDtype {
                name: name.into(),
                dtype: "a packed layout",
            });
        }
        let mut scales = None;
        // Cast once here so that an unaligned tensor is an error at open, not at run time.
        match v.record.dtype {
            DType::F32 => drop(v.f32()?),
            DType::F16 => drop(v.f16()?),
            DType::BF16 => drop(v.bf16()?),
            DType::I8 | DType::I4 => {
                scales = Some(VecRef::resolve(file, &format!("{name}_scale"), rows)?)
            }
            dtype => {
                return Err(Error::TensorDtype {
                    name: name.into(),
                    dtype: dtype.name(),
                })
            }
        }
        Ok(MatRef {
            offset: v.record.offset as usize,
            rows,
            cols,
            dtype: v.record.dtype,
            scales,
        })
    }

    pub fn view<'a>(&self, bytes: &'a [u8]) -> Matrix<'a> {
        let n = match self.dtype {
            DType::I4 => self.rows * self.cols.div_ceil(2),
            d => self.rows * self.cols * d.size(),
        };
        let b = &bytes[self.offset..self.offset + n];
        // The casts were checked when the model was opened; the bytes never change.
        match (self.dtype, self.scales) {
            (DType::F32, _) => Matrix::F32(bytemuck::cast_slice(b)),
            (DType::F16, _) => Matrix::F16(bytemuck::cast_slice(b)),
            (DType::I8, Some(s)) => Matrix::I8(bytemuck::cast_slice(b), s.view(bytes)),
            (DType::I4, Some(s)) => Matrix::I4(b, s.view(bytes)),
            _ => Matrix::BF16(bytemuck::cast_slice(b)),
        }
    }
}

impl PackedRef {
    /// A packed int8 weight named `name` (`[rows, cols]`) with its `{name}_scale`, if the
    /// file stores it so; `None` for any other storage.
    pub fn resolve(
        file: &ModelFile,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Option<PackedRef>> {
        let v = file.tensor(name)?;
        let Some(interleave) = pack::interleave(v.record.layout) else {
            return Ok(None);
        };
        expect_shape(&v, &[rows, cols])?;
        let scales = VecRef::resolve(file, &format!("{name}_scale"), rows)?;
        let kp = pack::padded_cols(cols);
        let panels = rows.div_ceil(NR * interleave) * interleave;
        let sums_name = format!("{name}_bsum");
        let sums = file.tensor(&sums_name)?;
        expect_shape(&sums, &[panels * (kp / QBLOCK) * NR])?;
        sums.i32()?;
        Ok(Some(PackedRef {
            offset: v.record.offset as usize,
            kp,
            panels,
            interleave,
            scales,
            bsum: sums.record.offset as usize,
        }))
    }

    /// 8-row panel `p` with its block sums, as the GEMM kernels read it.
    #[inline]
    pub fn panel<'a>(&self, bytes: &'a [u8], p: usize) -> Panel<'a> {
        let span = pack::panel_span(self.kp, self.interleave, p);
        let (w, s) = (self.offset, self.bsum);
        Panel {
            w: bytemuck::cast_slice(&bytes[w + span.weights.start..w + span.weights.end]),
            sums: bytemuck::cast_slice(&bytes[s + 4 * span.sums.start..s + 4 * span.sums.end]),
            interleave: self.interleave,
        }
    }
}

impl VecRef {
    pub fn resolve(file: &ModelFile, name: &str, len: usize) -> Result<VecRef> {
        let v = file.tensor(name)?;
        expect_shape(&v, &[len])?;
        v.f32()?;
        Ok(VecRef {
            offset: v.record.offset as usize,
            len,
        })
    }

    pub fn view<'a>(&self, bytes: &'a [u8]) -> &'a [f32] {
        bytemuck::cast_slice(&bytes[self.offset..self.offset + 4 * self.len])
    }
}

impl<'a> Matrix<'a> {
    /// Row `r` as f32: in place for f32 storage, else widened (or dequantized) into `scratch`.
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
            Matrix::I8(d, s) => {
                let out = &mut scratch[..cols];
                let scale = s[r];
                for (o, &q) in out.iter_mut().zip(&d[span]) {
                    *o = q as f32 * scale;
                }
                out
            }
            Matrix::I4(d, s) => {
                let out = &mut scratch[..cols];
                let scale = s[r];
                let row = &d[r * cols.div_ceil(2)..(r + 1) * cols.div_ceil(2)];
                for (i, o) in out.iter_mut().enumerate() {
                    let b = row[i / 2];
                    // Sign-extend the nibble: shift it to the top, then arithmetic-shift down.
                    let q = if i % 2 == 0 {
                        (b << 4) as i8 >> 4
                    } else {
                        b as i8 >> 4
                    };
                    *o = q as f32 * scale;
                }
                out
            }
        }
    }
}
