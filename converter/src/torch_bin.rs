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
        let numel: usize = t.shape.iter().product();
        // Only contiguous row-major tensors: what torch.save writes for a state_dict.
        let mut expect = 1usize;
        for (d, s) in t.shape.iter().zip(&t.stride).rev() {
            if *d > 1 && *s != expect {
                return Err(parse_err(
                    path,
                    format!("tensor '{}' is not contiguous", t.name),
                ));
            }
            expect *= d;
        }
        let start = t.absolute_offset as usize;
        let end = start
            .checked_add(numel * size)
            .filter(|&e| e <= bytes.len());
        let Some(end) = end else {
            return Err(parse_err(
                path,
                format!("tensor '{}' runs past the end of the file", t.name),
            ));
        };
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
