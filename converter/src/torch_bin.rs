//! `pytorch_model.bin`: a torch zip archive whose pickle names each tensor's storage. The
//! pickle is read by the `repugnant-pickle` crate; the data is read from the archive's stored
//! (uncompressed) members at the offsets it reports.

use std::path::Path;

use repugnant_pickle::torch::{RepugnantTorchTensors, TensorType};

use crate::checkpoint::{SourceDType, Tensor};
use crate::error::{io_err, parse_err, Result};

pub fn read(path: &Path) -> Result<std::collections::BTreeMap<String, (Tensor, SourceDType)>> {
    let tensors = RepugnantTorchTensors::new_from_file(path).map_err(|e| parse_err(path, e))?;
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
        let too_large = || parse_err(path, format!("tensor '{}' has shape {:?}", t.name, t.shape));
        let numel = t
            .shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(too_large)?;
        // Only contiguous row-major tensors: what torch.save writes for a state_dict.
        if t.stride.len() != t.shape.len() {
            return Err(parse_err(
                path,
                format!(
                    "tensor '{}' has {} strides for {} dimensions",
                    t.name,
                    t.stride.len(),
                    t.shape.len()
                ),
            ));
        }
        let mut expect = 1usize;
        for (d, s) in t.shape.iter().zip(&t.stride).rev() {
            if *d > 1 && *s != expect {
                return Err(parse_err(
                    path,
                    format!("tensor '{}' is not contiguous", t.name),
                ));
            }
            // A zero dimension lets the others overflow what numel did not.
            expect = expect.saturating_mul(*d);
        }
        let end = numel
            .checked_mul(size)
            .and_then(|n| usize::try_from(t.absolute_offset).ok()?.checked_add(n))
            .filter(|&e| e <= bytes.len());
        let Some(end) = end else {
            return Err(parse_err(
                path,
                format!("tensor '{}' runs past the end of the file", t.name),
            ));
        };
        let start = end - numel * size;
        let raw = &bytes[start..end];
        let data = match dt {
            SourceDType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(raw),
            SourceDType::F16 => crate::hf::widen_f16(raw),
            _ => crate::hf::widen_bf16(raw),
        };
        out.insert(t.name, (Tensor::new(t.shape, data), dt));
    }
    Ok(out)
}
