//! `pytorch_model.bin`: a torch zip archive whose pickle names each tensor's storage. The
//! pickle is read by the `repugnant-pickle` crate; the data is read from the archive's stored
//! (uncompressed) members at the offsets it reports.

use std::path::Path;

use repugnant_pickle::torch::{RepugnantTorchTensors, TensorType};

use crate::checkpoint::{SourceDType, Tensor};
use crate::error::{io_err, parse_err, Result};

pub fn read(path: &Path) -> Result<std::collections::BTreeMap<String, (Tensor, SourceDType)>> {
    // repugnant-pickle indexes its stack unchecked on some malformed pickles: a panic there is
    // reported as what it is, a file that does not parse.
    let tensors = std::panic::catch_unwind(|| RepugnantTorchTensors::new_from_file(path))
        .map_err(|_| parse_err(path, "the pickle reader panicked: not a torch state_dict"))?
        .map_err(|e| parse_err(path, e))?;
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let mut out = std::collections::BTreeMap::new();
    for t in tensors {
        let (dt, size) = match t.tensor_type {
            TensorType::Float32 => (SourceDType::F32, 4),
            TensorType::Float16 => (SourceDType::F16, 2),
            TensorType::BFloat16 => (SourceDType::BF16, 2),
            other => {
                log::debug!("skipping {}: {other:?}", t.name);
                continue;
            }
        };
        let range = data_range(&t.shape, &t.stride, size, t.absolute_offset, bytes.len())
            .map_err(|m| parse_err(path, format!("tensor '{}' {m}", t.name)))?;
        let raw = &bytes[range];
        let data = match dt {
            SourceDType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(raw),
            SourceDType::F16 => crate::hf::widen_f16(raw),
            _ => crate::hf::widen_bf16(raw),
        };
        out.insert(t.name, (Tensor::new(t.shape, data), dt));
    }
    Ok(out)
}

/// Where the data of a tensor of `shape` (`elem` bytes an element) starting at byte `offset`
/// lies in a file of `file_len` bytes. Only contiguous row-major tensors, what `torch.save`
/// writes for a state_dict; every size computed without overflow.
fn data_range(
    shape: &[usize],
    stride: &[usize],
    elem: usize,
    offset: u64,
    file_len: usize,
) -> std::result::Result<std::ops::Range<usize>, String> {
    let numel = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("has shape {shape:?}, more elements than memory holds"))?;
    if stride.len() != shape.len() {
        return Err(format!(
            "has {} strides for {} dimensions",
            stride.len(),
            shape.len()
        ));
    }
    let mut expect = 1usize;
    for (d, s) in shape.iter().zip(stride).rev() {
        if *d > 1 && *s != expect {
            return Err("is not contiguous".into());
        }
        // A zero dimension lets the others overflow what numel did not.
        expect = expect.saturating_mul(*d);
    }
    let bytes = numel.checked_mul(elem);
    let start = usize::try_from(offset).ok();
    match (start, bytes) {
        (Some(start), Some(n)) if start.checked_add(n).is_some_and(|e| e <= file_len) => {
            Ok(start..start + n)
        }
        _ => Err("runs past the end of the file".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A torch archive holding `pickle` as its data.pkl.
    fn archive(pickle: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pytorch_model.bin");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let stored =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        z.start_file("archive/data.pkl", stored).unwrap();
        z.write_all(pickle).unwrap();
        z.finish().unwrap();
        (dir, path)
    }

    #[test]
    fn a_pickle_the_reader_panics_on_is_an_error() {
        // PROTO 2, MARK, OBJ: OBJ reads the class after the mark, and there is none.
        let (_dir, path) = archive(b"\x80\x02(o.");
        let e = read(&path).unwrap_err().to_string();
        assert!(
            e.contains("pytorch_model.bin: the pickle reader panicked"),
            "{e}"
        );
    }

    #[test]
    fn tensor_sizes_are_computed_without_overflow() {
        assert_eq!(data_range(&[2, 3], &[3, 1], 4, 8, 32), Ok(8..32));
        assert!(data_range(&[2, 3], &[3, 1], 4, 9, 32).is_err());
        assert!(data_range(&[2, 3], &[1, 2], 4, 0, 32).is_err());
        // 2^62 × 4 elements of 4 bytes: 2^66 bytes, which wrapped to an empty range.
        assert!(data_range(&[1 << 62, 4], &[4, 1], 4, 0, 100)
            .unwrap_err()
            .contains("more elements"));
        // 2^61 elements of 8 bytes wrap to 0 bytes as well.
        assert!(data_range(&[1 << 61], &[1], 8, 16, 100).is_err());
        assert!(data_range(&[4], &[1], 4, u64::MAX, 100).is_err());
    }
}
