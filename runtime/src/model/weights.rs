//! Handles to tensors inside a mapped file, resolved and checked once when a model is opened,
//! and viewed in place (no copy) during a forward pass.

use half::{bf16, f16};

use crate::error::{Error, Result};
use crate::format::{pack, DType, Layout, ModelFile, TensorView};
use crate::kernels::{Panel, WeightLayout, NR, QBLOCK};

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
            layout: WeightLayout::Group4,
        }
    }

    /// The panels as the session's kernels read them: from the i8mm repack when the session
    /// has one (`smmla`), else from the file.
    #[inline]
    pub fn panels<'a>(&self, bytes: &'a [u8], smmla: Option<&'a SmmlaWeights>) -> Panels<'a> {
        Panels {
            packed: *self,
            bytes,
            smmla: smmla.map(|s| s.tensor((self.offset, self.interleave, self.kp, self.panels))),
        }
    }
}

/// A packed weight's panels, in the layout the session's GEMM kernels read.
#[derive(Clone, Copy)]
pub(crate) struct Panels<'a> {
    packed: PackedRef,
    bytes: &'a [u8],
    /// The weight's bytes in [`SmmlaWeights`], for the i8mm tier.
    smmla: Option<&'a [i8]>,
}

impl<'a> Panels<'a> {
    /// Panel `p` (`p < packed.panels`).
    #[inline]
    pub fn panel(&self, p: usize) -> Panel<'a> {
        match self.smmla {
            // From the panel on: the kernels read `kp · NR` bytes, a prefetch may look ahead.
            Some(w) => Panel {
                w: &w[p * self.packed.kp * NR..],
                sums: &[],
                interleave: 1,
                layout: WeightLayout::Smmla,
            },
            None => self.packed.panel(self.bytes, p),
        }
    }
}

/// A packed tensor: its offset in the file, interleave, inputs (`kp`) and panels.
type Key = (usize, usize, usize, usize);

/// Every packed int8 weight of a file, repacked once for the i8mm tier
/// ([`pack::repack_smmla`]): built by the first session that runs `smmla` kernels, kept by the
/// model and shared by its sessions. As many bytes as the file's packed weights.
#[derive(Debug)]
pub(crate) struct SmmlaWeights {
    w: Vec<i8>,
    /// Per packed tensor, by its offset in the file, interleave, inputs and panels: where its
    /// repacked bytes start in `w` (`kp · NR · panels` of them).
    at: Vec<(Key, usize)>,
}

impl SmmlaWeights {
    /// Repacks every packed tensor of `file`; an error (not an abort) when the memory is not
    /// there.
    pub fn build(file: &ModelFile) -> Result<SmmlaWeights> {
        let start = std::time::Instant::now();
        // (offset, interleave, kp, panels) of each packed `[rows, cols]` tensor.
        let mut tensors = Vec::new();
        for r in file.records() {
            let (Some(il), [rows, cols]) = (pack::interleave(r.layout), &r.shape[..]) else {
                continue;
            };
            let (rows, cols) = (usize::try_from(*rows), usize::try_from(*cols));
            let (Ok(rows), Ok(cols)) = (rows, cols) else {
                continue;
            };
            let kp = pack::padded_cols(cols);
            let panels = rows.div_ceil(NR * il) * il;
            tensors.push((r.offset as usize, il, kp, panels));
        }
        // Records that alias one tensor are repacked once.
        tensors.sort_unstable();
        tensors.dedup();
        let bytes = tensors
            .iter()
            .try_fold(0usize, |n, t| {
                n.checked_add(t.2.checked_mul(NR)?.checked_mul(t.3)?)
            })
            .ok_or_else(|| Error::InvalidArgument("packed tensors larger than memory".into()))?;
        // Each tensor lies inside the file (checked at open), so tensors that do not overlap
        // take at most the file's size: more means a crafted file, refused before allocating.
        if bytes > file.bytes().len() {
            return Err(Error::CorruptHeader(format!(
                "packed tensors take {bytes} bytes, more than the file's {}: their records overlap",
                file.bytes().len()
            )));
        }
        let mut w = Vec::new();
        w.try_reserve_exact(bytes).map_err(|_| Error::OutOfMemory {
            what: "the weights repacked for i8mm",
            bytes: bytes as u64,
        })?;
        let mut at = Vec::new();
        at.try_reserve_exact(tensors.len())
            .map_err(|_| Error::OutOfMemory {
                what: "the weights repacked for i8mm",
                bytes: bytes as u64,
            })?;
        let all = file.bytes();
        for (offset, il, kp, panels) in tensors {
            let n = kp * NR * panels;
            let src = offset
                .checked_add(n)
                .and_then(|end| all.get(offset..end))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("packed tensor at {offset}: truncated"))
                })?;
            let from = w.len();
            pack::repack_smmla(bytemuck::cast_slice(src), kp, il, panels, &mut w)?;
            at.push(((offset, il, kp, panels), from));
        }
        log::info!(
            "dbrt: {} packed weights repacked for i8mm: {bytes} bytes in {:.1} ms",
            at.len(),
            start.elapsed().as_secs_f64() * 1e3
        );
        Ok(SmmlaWeights { w, at })
    }

    /// The repacked bytes of a tensor (`kp · NR · panels`): every packed tensor has them.
    fn tensor(&self, key: Key) -> &[i8] {
        let i = self
            .at
            .binary_search_by_key(&key, |a| a.0)
            .expect("every packed tensor is repacked");
        let from = self.at[i].1;
        &self.w[from..from + key.2 * NR * key.3]
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
