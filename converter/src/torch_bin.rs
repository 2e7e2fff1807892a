//! `pytorch_model.bin`: a torch zip archive whose pickle names each tensor's storage, read by a
//! zip reader and a pickle interpreter of our own that bound everything they read (see
//! `archive.rs` and `pickle.rs`); the data is read from the archive's stored members.

use std::collections::BTreeMap;
use std::path::Path;

use crate::archive::{Archive, ZipError};
use crate::checkpoint::{SourceDType, Tensor};
use crate::error::{io_err, parse_err, Result};
use crate::pickle::{Global, Id, Pickle, Value};

/// How many times over the tensors may read the archive's bytes: tensors that share a storage
/// (tied weights) read it more than once, but a forged state_dict of many views of one large
/// storage must not make the converter allocate without end.
const MAX_READS_OF_THE_FILE: usize = 4;

pub fn read(path: &Path) -> Result<BTreeMap<String, (Tensor, SourceDType)>> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    // SAFETY: read-only map of a file we only read from; the converter is the only user.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
    read_bytes(&map).map_err(|m| parse_err(path, m))
}

/// The f32, f16 and bf16 tensors of the torch archive `bytes`, by name; other dtypes are skipped.
pub(crate) fn read_bytes(
    bytes: &[u8],
) -> std::result::Result<BTreeMap<String, (Tensor, SourceDType)>, String> {
    let zip = Archive::new(bytes).map_err(|e| e.to_string())?;
    let pkl = zip
        .names()
        .find(|s| s.ends_with("/data.pkl"))
        .ok_or("not a torch archive: no data.pkl member")?;
    let prefix = &pkl[..pkl.len() - "/data.pkl".len()];
    // Older torch versions write no byteorder record; their data is read as little-endian.
    match zip.member(&format!("{prefix}/byteorder")) {
        Ok(r) if &bytes[r.clone()] != b"little" => {
            return Err("the tensors are not stored little-endian".into())
        }
        Ok(_) | Err(ZipError::Missing(_)) => {}
        Err(e) => return Err(e.to_string()),
    }
    let range = zip.member(pkl).map_err(|e| e.to_string())?;
    let pickle = crate::pickle::parse(&bytes[range]).map_err(|e| e.to_string())?;
    tensors(&zip, bytes, prefix, &pickle)
}

/// A tensor as the pickle describes it.
struct Described<'p> {
    storage_class: &'p str,
    key: &'p str,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
    requires_grad: bool,
}

fn tensors(
    zip: &Archive,
    bytes: &[u8],
    prefix: &str,
    p: &Pickle,
) -> std::result::Result<BTreeMap<String, (Tensor, SourceDType)>, String> {
    let Value::Dict(items) = p.get(p.root) else {
        return Err("the pickle does not hold a state_dict (a dict)".into());
    };
    let mut budget = bytes.len().saturating_mul(MAX_READS_OF_THE_FILE);
    let mut out = BTreeMap::new();
    for &(k, v) in items {
        let Value::Str(name) = p.get(k) else {
            return Err("the state_dict has a key that is not a string".into());
        };
        let Some(d) = describe(p, v).map_err(|m| format!("tensor '{name}': {m}"))? else {
            log::debug!("skipping {name}: not a tensor");
            continue;
        };
        let (dt, size) = match d.storage_class {
            "FloatStorage" => (SourceDType::F32, 4),
            "HalfStorage" => (SourceDType::F16, 2),
            "BFloat16Storage" => (SourceDType::BF16, 2),
            other => {
                log::debug!("skipping {name}: {other}");
                continue;
            }
        };
        log::trace!("{name}: {dt:?}, requires_grad {}", d.requires_grad);
        let member = format!("{prefix}/data/{}", d.key);
        let storage = zip
            .member(&member)
            .map_err(|e| format!("tensor '{name}': {e}"))?;
        let start = d
            .offset
            .checked_mul(size)
            .ok_or_else(|| format!("tensor '{name}' runs past the end of its storage"))?;
        let range = data_range(&d.shape, &d.stride, size, start as u64, storage.len())
            .map_err(|m| format!("tensor '{name}' {m} (its storage, {member})"))?;
        budget = budget.checked_sub(range.len()).ok_or_else(|| {
            format!(
                "tensor '{name}': the tensors read the file more than \
                 {MAX_READS_OF_THE_FILE} times over"
            )
        })?;
        let raw = &bytes[storage.start + range.start..storage.start + range.end];
        let data = decode(raw, dt).map_err(|m| format!("tensor '{name}': {m}"))?;
        out.insert(name.to_string(), (Tensor::new(d.shape, data), dt));
    }
    Ok(out)
}

/// What `_rebuild_tensor_v2(storage, offset, shape, stride, requires_grad, hooks[, metadata])`,
/// or `_rebuild_parameter` of it, describes; `None` for a value that is no tensor.
fn describe(p: &Pickle, v: Id) -> std::result::Result<Option<Described<'_>>, String> {
    let args = match p.get(v) {
        Value::Call(Global::RebuildTensorV2, args) => *args,
        Value::Call(Global::RebuildParameter, args) => {
            // _rebuild_parameter(data, requires_grad, backward_hooks)
            match tuple(p, *args)?.first().map(|&t| p.get(t)) {
                Some(Value::Call(Global::RebuildTensorV2, args)) => *args,
                _ => return Err("_rebuild_parameter of something not a tensor".into()),
            }
        }
        _ => return Ok(None),
    };
    let args = tuple(p, args)?;
    if !(6..=7).contains(&args.len()) {
        return Err(format!("_rebuild_tensor_v2 with {} arguments", args.len()));
    }
    let Value::PersId(pid) = p.get(args[0]) else {
        return Err("its storage is not a persistent id".into());
    };
    let pid = tuple(p, *pid)?;
    let (storage_class, key) = match pid.iter().map(|&i| p.get(i)).collect::<Vec<_>>()[..] {
        [Value::Str(tag), Value::Global(Global::Storage(class)), Value::Str(key), Value::Str(_), Value::Int(_)]
            if &**tag == "storage" =>
        {
            (&**class, &**key)
        }
        _ => return Err("its storage is not ('storage', class, key, location, size)".into()),
    };
    let Value::Bool(requires_grad) = p.get(args[4]) else {
        return Err("its requires_grad is not a bool".into());
    };
    let offset = int(p, args[1])?;
    let dims = |id| -> std::result::Result<Vec<usize>, String> {
        tuple(p, id)?.iter().map(|&i| int(p, i)).collect()
    };
    Ok(Some(Described {
        storage_class,
        key,
        offset,
        shape: dims(args[2])?,
        stride: dims(args[3])?,
        requires_grad: *requires_grad,
    }))
}

fn tuple(p: &Pickle, id: Id) -> std::result::Result<&[Id], String> {
    match p.get(id) {
        Value::Tuple(t) => Ok(t),
        _ => Err("a tuple expected".into()),
    }
}

fn int(p: &Pickle, id: Id) -> std::result::Result<usize, String> {
    match p.get(id) {
        Value::Int(v) => usize::try_from(*v).map_err(|_| format!("a negative size {v}")),
        _ => Err("an integer expected".into()),
    }
}

/// The f32 values of `raw`, allocated fallibly: a tensor as large as the file may not fit.
fn decode(raw: &[u8], dt: SourceDType) -> std::result::Result<Vec<f32>, String> {
    let elem = if dt == SourceDType::F32 { 4 } else { 2 };
    let n = raw.len() / elem;
    let mut out = Vec::new();
    out.try_reserve_exact(n)
        .map_err(|_| format!("cannot allocate {} bytes", n.saturating_mul(4)))?;
    match dt {
        SourceDType::F32 => out.extend(
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        ),
        SourceDType::F16 => out.extend(
            raw.chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        _ => out.extend(
            raw.chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
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

    /// The bytes of a torch archive of `members` (name, data), written by the `zip` crate;
    /// `large` writes zip64 records.
    fn zip_bytes(members: &[(&str, &[u8])], large: bool) -> Vec<u8> {
        use std::io::Write;
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::FileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(large);
        for (name, data) in members {
            z.start_file(*name, stored).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    /// A state_dict of `n` names for one f32 tensor of shape [1000] at element `offset` of
    /// storage '0'.
    fn views(n: usize, offset: u8) -> Vec<u8> {
        let mut p = b"\x80\x02}".to_vec();
        for i in 0..n {
            p.extend(b"X\x01\x00\x00\x00");
            p.push(b'a' + i as u8);
            if i == 0 {
                p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage");
                p.extend(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu");
                p.extend(b"M\xe8\x03tQK");
                p.push(offset);
                p.extend(b"M\xe8\x03\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRq\x09");
            } else {
                p.extend(b"h\x09");
            }
            p.push(b's');
        }
        p.push(b'.');
        p
    }

    fn views_archive(n: usize, offset: u8) -> Vec<u8> {
        let data: Vec<u8> = (0..1000u32)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        zip_bytes(
            &[
                ("archive/data.pkl", &views(n, offset)),
                ("archive/data/0", &data),
            ],
            false,
        )
    }

    #[test]
    fn a_hand_written_state_dict_reads() {
        let t = read_bytes(&views_archive(1, 0)).unwrap();
        let (tensor, dt) = &t["a"];
        assert_eq!(
            (tensor.shape.as_slice(), *dt),
            (&[1000][..], SourceDType::F32)
        );
        assert_eq!(tensor.data[999], 999.0);
        // The same with zip64 extra fields in the local headers.
        let data: Vec<u8> = (0..1000u32)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        let zip64 = zip_bytes(
            &[
                ("archive/data.pkl", &views(1, 0)),
                ("archive/data/0", &data),
            ],
            true,
        );
        assert_eq!(read_bytes(&zip64).unwrap()["a"].0, *tensor);
    }

    #[test]
    fn a_tensor_past_its_storage_is_refused() {
        let e = read_bytes(&views_archive(1, 1))
            .map(|t| t.len())
            .unwrap_err();
        assert_eq!(
            e,
            "tensor 'a' runs past the end of the file (its storage, archive/data/0)"
        );
    }

    #[test]
    fn views_may_not_read_the_file_over_and_over() {
        // Tied weights are views of one storage; 5 views of a storage that is nearly the whole
        // file read it more than 4 times over.
        assert_eq!(read_bytes(&views_archive(4, 0)).unwrap().len(), 4);
        let e = read_bytes(&views_archive(5, 0))
            .map(|t| t.len())
            .unwrap_err();
        assert!(
            e.contains("tensor 'e': the tensors read the file more than 4 times"),
            "{e}"
        );
    }

    #[test]
    fn a_big_endian_archive_is_refused() {
        let data = [0u8; 4000];
        let bytes = zip_bytes(
            &[
                ("archive/data.pkl", &views(1, 0)),
                ("archive/byteorder", b"big"),
                ("archive/data/0", &data),
            ],
            false,
        );
        assert!(read_bytes(&bytes)
            .map(|t| t.len())
            .unwrap_err()
            .contains("little-endian"));
    }

    fn fixture() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/tiny/v3-style-pytorch-bin/pytorch_model.bin"
        ))
        .unwrap()
    }

    #[test]
    fn the_torch_written_fixture_reads() {
        let t = read_bytes(&fixture()).unwrap();
        let (w, dt) = &t["deberta.embeddings.word_embeddings.weight"];
        assert_eq!(
            (w.shape.as_slice(), *dt),
            (&[1000, 32][..], SourceDType::F32)
        );
        assert!(t.len() > 20, "{}", t.len());
    }

    #[test]
    fn the_fixture_truncated_anywhere_is_an_error() {
        let bytes = fixture();
        let zip = Archive::new(&bytes).unwrap();
        let pkl = &bytes[zip.member("pytorch_model/data.pkl").unwrap()];
        for n in 0..pkl.len() {
            let e = crate::pickle::parse(&pkl[..n]).err().unwrap();
            assert!(e.offset <= n, "{n}: {e}");
        }
        // The whole file cut within its pickle or its central directory.
        let tail = bytes.len() - 4096;
        for n in (0..9000).chain(tail..bytes.len()) {
            assert!(read_bytes(&bytes[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn random_byte_flips_of_the_fixture_are_read_or_refused() {
        let bytes = fixture();
        let pkl = Archive::new(&bytes)
            .unwrap()
            .member("pytorch_model/data.pkl")
            .unwrap();
        let mut next = crate::xorshift(0x9E37_79B9_7F4A_7C15);
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..4000 {
            let mut b = bytes.clone();
            for _ in 0..1 + next() % 3 {
                let r = next();
                // Half in the pickle, half in the local header or the central directory.
                let at = match r % 4 {
                    0 | 1 => pkl.start + (r >> 8) as usize % pkl.len(),
                    2 => (r >> 8) as usize % pkl.start,
                    _ => bytes.len() - 1 - (r >> 8) as usize % 4096,
                };
                b[at] ^= (r >> 40) as u8 | 1;
            }
            match read_bytes(&b) {
                Ok(_) => ok += 1,
                Err(_) => refused += 1,
            }
        }
        println!("{ok} read, {refused} refused");
        assert!(ok > 100 && refused > 100, "{ok} read, {refused} refused");
    }

    #[test]
    fn an_unsupported_opcode_is_an_error_naming_it() {
        // PROTO 2, MARK, OBJ: OBJ is nothing torch writes for a state_dict.
        let (_dir, path) = archive(b"\x80\x02(o.");
        let e = read(&path).unwrap_err().to_string();
        assert!(
            e.contains(
                "pytorch_model.bin: pickle: unsupported opcode (opcode 0x6f 'o' at offset 3)"
            ),
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
