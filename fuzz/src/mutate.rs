//! Structure-aware mutation of a valid `.dbrt` file: the fuzzer's bytes are a program of typed
//! edits (metadata values, tensor records, tensor data, the relative-position index, the
//! tokenizer's token ids), after which the file is re-sealed with valid checksums so that the
//! checksum does not reject everything and the checks behind it are reached.

use dbrt::format::{storage_bytes, DType, FileWriter, Layout, MetaValue, Metadata, ModelFile};

use crate::{
    dtype_from, interesting_i64, interesting_u64, meta_value, record_at, seal, Cursor, KNOWN_KEYS,
};

struct Tensor {
    name: String,
    dtype: DType,
    layout: Layout,
    shape: Vec<u64>,
    data: Vec<u8>,
}

/// An edit of the serialized tensor table, applied after the file is written.
enum Raw {
    Dim {
        record: usize,
        dim: usize,
        value: u64,
    },
    Ndim {
        record: usize,
        value: u8,
    },
    Dtype {
        record: usize,
        value: u8,
    },
    Layout {
        record: usize,
        value: u16,
    },
    Offset {
        record: usize,
        value: u64,
    },
    Nbytes {
        record: usize,
        value: u64,
    },
}

/// What one input does: the mutated file, and how the model is then run.
pub struct Mutated {
    pub bytes: Vec<u8>,
    pub max_len: usize,
    pub ids: Vec<u32>,
    /// The edits, in words, for a reader of a reproducer (`DBRT_FUZZ_VERBOSE=1`).
    pub log: Vec<String>,
}

const TOKEN_KEYS: [&str; 3] = ["tokenizer.cls_id", "tokenizer.sep_id", "tokenizer.unk_id"];
const REL_INDEX: &str = "deberta.encoder.rel_pos_index";
/// Largest tensor a reshape may make (bytes): bigger shapes are forged in the record instead.
const MAX_RESHAPE_BYTES: u64 = 1 << 22;

fn remove(meta: &Metadata, key: &str) -> Metadata {
    let mut m = Metadata::new();
    for (k, v) in meta.entries().iter().filter(|(k, _)| k != key) {
        m.set(k, v.clone());
    }
    m
}

/// Applies the program in `data` to one of `bases` (the first byte picks it).
pub fn mutate(bases: &[Vec<u8>], data: &[u8]) -> Mutated {
    let mut c = Cursor::new(data);
    let base = &bases[c.u8() as usize % bases.len()];
    let max_len = 1 + c.below(24);
    let n_ids = c.below(6);
    let ids: Vec<u32> = (0..n_ids)
        .map(|_| match c.u8() % 4 {
            0 => interesting_u64(&mut c) as u32,
            _ => c.u16() as u32 % 1000,
        })
        .collect();
    let file = ModelFile::from_bytes_copied(base).expect("base models are valid");
    let mut meta = file.metadata().clone();
    let mut tensors: Vec<Tensor> = file
        .records()
        .map(|r| Tensor {
            data: file.tensor(&r.name).expect("listed").bytes.to_vec(),
            name: r.name,
            dtype: r.dtype,
            layout: r.layout,
            shape: r.shape,
        })
        .collect();
    let mut raw = Vec::new();
    let mut log = Vec::new();
    let vocab = meta.u64("deberta.vocab_size").unwrap_or(1000);
    let mut steps = 0;
    while !c.is_empty() && steps < 64 {
        steps += 1;
        match c.u8() % 16 {
            0 | 1 => {
                let key = if c.one_in(3) {
                    KNOWN_KEYS[c.below(KNOWN_KEYS.len())].to_string()
                } else {
                    let e = meta.entries();
                    e[c.below(e.len())].0.clone()
                };
                let v = meta_value(&mut c);
                log.push(format!("set {key} = {v:?}"));
                meta.set(&key, v);
            }
            2 => {
                let e = meta.entries();
                if e.is_empty() {
                    continue;
                }
                let key = e[c.below(e.len())].0.clone();
                log.push(format!("remove {key}"));
                meta = remove(&meta, &key);
            }
            3 => {
                // Nudge an integer, keeping it near its valid value.
                let ints: Vec<(String, i128)> = meta
                    .entries()
                    .iter()
                    .filter_map(|(k, v)| match v {
                        MetaValue::U64(x) => Some((k.clone(), *x as i128)),
                        MetaValue::I64(x) => Some((k.clone(), *x as i128)),
                        _ => None,
                    })
                    .collect();
                if ints.is_empty() {
                    continue;
                }
                let (k, x) = &ints[c.below(ints.len())];
                let y = match c.u8() % 7 {
                    0 => x + 1,
                    1 => x - 1,
                    2 => x * 2,
                    3 => x / 2,
                    4 => x * 1024,
                    5 => x + 1000,
                    _ => 0,
                };
                let v = match meta.get(k) {
                    Some(MetaValue::U64(_)) => MetaValue::U64(y.clamp(0, u64::MAX as i128) as u64),
                    _ => MetaValue::I64(y.clamp(i64::MIN as i128, i64::MAX as i128) as i64),
                };
                log.push(format!("nudge {k} = {v:?}"));
                meta.set(k, v);
            }
            4 => {
                // A token id near or past the vocabulary.
                let id = match c.u8() % 3 {
                    0 => vocab + c.below(4) as u64,
                    1 => vocab - 1 - c.below(4) as u64,
                    _ => interesting_u64(&mut c),
                };
                // Zero bytes (libFuzzer's short inputs) pick the special tokens every text
                // uses, and [MASK], the added token the target's texts contain.
                if c.u8() % 4 == 1 {
                    if let Some(MetaValue::I64List(l)) = meta.get("tokenizer.added.ids").cloned() {
                        let mut l = l;
                        if !l.is_empty() {
                            let i = l.len() - 1 - c.below(l.len());
                            l[i] = id as i64;
                            log.push(format!("tokenizer.added.ids[{i}] = {id}"));
                            meta.set("tokenizer.added.ids", MetaValue::I64List(l));
                        }
                    }
                } else {
                    let key = TOKEN_KEYS[c.below(3)];
                    // unk_id is an i64 in the file, the others u64: either type is tried.
                    let v = if c.one_in(2) {
                        MetaValue::U64(id)
                    } else {
                        MetaValue::I64(id as i64)
                    };
                    log.push(format!("{key} = {v:?}"));
                    meta.set(key, v);
                }
            }
            5 => {
                // Permute the relative-position index: entries stay in range.
                if let Some(t) = tensors.iter_mut().find(|t| t.name == REL_INDEX) {
                    let n = t.data.len() / 4;
                    if n < 2 {
                        continue;
                    }
                    let (i, j) = (c.below(n), c.below(n));
                    match c.u8() % 3 {
                        0 => {
                            for k in 0..4 {
                                t.data.swap(4 * i + k, 4 * j + k);
                            }
                        }
                        1 => {
                            let (a, b) = (i.min(j), i.max(j));
                            let mut v: Vec<[u8; 4]> = t.data[4 * a..4 * b]
                                .chunks_exact(4)
                                .map(|x| x.try_into().expect("4"))
                                .collect();
                            v.reverse();
                            t.data[4 * a..4 * b].copy_from_slice(&v.concat());
                        }
                        _ => {
                            let k = 1 + c.below(n - 1);
                            let mut v: Vec<[u8; 4]> = t
                                .data
                                .chunks_exact(4)
                                .map(|x| x.try_into().expect("4"))
                                .collect();
                            v.rotate_left(k);
                            t.data = v.concat();
                        }
                    }
                    log.push(format!("permute {REL_INDEX} at {i},{j}"));
                }
            }
            6 | 7 => {
                // Overwrite data bytes of one tensor.
                let ti = c.below(tensors.len());
                let t = &mut tensors[ti];
                if t.data.is_empty() {
                    continue;
                }
                let at = c.below(t.data.len());
                let n = 1 + c.below(8);
                let src = c.bytes(n);
                for (k, &b) in src.iter().enumerate() {
                    if let Some(d) = t.data.get_mut(at + k) {
                        *d = b;
                    }
                }
                log.push(format!("{} data[{at}..] = {src:?}", t.name));
            }
            8 => {
                // A special value in a float or integer tensor.
                let ti = c.below(tensors.len());
                let t = &mut tensors[ti];
                let size = t.dtype.size().max(1);
                let n = t.data.len() / size;
                if n == 0 {
                    continue;
                }
                let i = c.below(n);
                let word: Vec<u8> = match t.dtype {
                    DType::F32 => [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -0.0]
                        [c.below(5)]
                    .to_le_bytes()
                    .to_vec(),
                    DType::F64 => [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300]
                        [c.below(5)]
                    .to_le_bytes()
                    .to_vec(),
                    DType::I32 => (interesting_i64(&mut c) as i32).to_le_bytes().to_vec(),
                    _ => interesting_u64(&mut c).to_le_bytes()[..size].to_vec(),
                };
                if word.len() == size {
                    t.data[i * size..(i + 1) * size].copy_from_slice(&word);
                    log.push(format!("{}[{i}] = {word:?}", t.name));
                }
            }
            9 => {
                let ti = c.below(tensors.len());
                log.push(format!("drop {}", tensors[ti].name));
                tensors.remove(ti);
            }
            10 => {
                // Reshape a tensor consistently (data resized), so the writer accepts it.
                let ti = c.below(tensors.len());
                let ndim = c.below(5);
                let shape: Vec<u64> = (0..ndim)
                    .map(|_| match c.u8() % 3 {
                        0 => c.below(9) as u64,
                        1 => tensors[ti].shape.get(c.below(4)).copied().unwrap_or(1),
                        _ => interesting_u64(&mut c) % 4096,
                    })
                    .collect();
                let t = &mut tensors[ti];
                let dtype = if c.one_in(4) {
                    dtype_from(&mut c)
                } else {
                    t.dtype
                };
                match storage_bytes(dtype, t.layout, &shape) {
                    Some(n) if n <= MAX_RESHAPE_BYTES => {
                        log.push(format!("reshape {} to {dtype:?} {shape:?}", t.name));
                        t.data.resize(n as usize, 0);
                        t.shape = shape;
                        t.dtype = dtype;
                    }
                    _ => {}
                }
            }
            11 => {
                // A tensor under another tensor's name (a layer's twin), or a new one.
                let ti = c.below(tensors.len());
                let src = &tensors[ti];
                let name = match c.u8() % 3 {
                    0 => src.name.replace("layer.0", "layer.2"),
                    1 => src.name.replace("layer.1", "layer.0"),
                    _ => format!("{}_", src.name),
                };
                if name.len() > 96 {
                    continue;
                }
                let t = Tensor {
                    name: name.clone(),
                    dtype: src.dtype,
                    layout: src.layout,
                    shape: src.shape.clone(),
                    data: src.data.clone(),
                };
                tensors.retain(|t| t.name != name);
                log.push(format!("copy {} as {name}", t.name));
                tensors.push(t);
            }
            12 => {
                let record = c.below(tensors.len());
                let dim = c.below(4);
                let value = interesting_u64(&mut c);
                log.push(format!("record {record} dim {dim} = {value}"));
                raw.push(Raw::Dim { record, dim, value });
            }
            13 => {
                let record = c.below(tensors.len());
                match c.u8() % 3 {
                    0 => {
                        let value = c.u8() % 6;
                        log.push(format!("record {record} ndim = {value}"));
                        raw.push(Raw::Ndim { record, value });
                    }
                    1 => {
                        let value = c.u8() % 16;
                        log.push(format!("record {record} dtype = {value}"));
                        raw.push(Raw::Dtype { record, value });
                    }
                    _ => {
                        let value = c.u16() % 8;
                        log.push(format!("record {record} layout = {value}"));
                        raw.push(Raw::Layout { record, value });
                    }
                }
            }
            14 => {
                let record = c.below(tensors.len());
                let value = match c.u8() % 2 {
                    0 => interesting_u64(&mut c),
                    _ => (c.u16() as u64) * 64,
                };
                log.push(format!("record {record} offset = {value}"));
                raw.push(Raw::Offset { record, value });
            }
            _ => {
                let record = c.below(tensors.len());
                let value = interesting_u64(&mut c);
                log.push(format!("record {record} nbytes = {value}"));
                raw.push(Raw::Nbytes { record, value });
            }
        }
        if tensors.is_empty() {
            break;
        }
    }
    let mut w = FileWriter::new();
    w.metadata = meta;
    for t in tensors {
        // A tensor the writer refuses (e.g. a name added twice) is left out.
        let _ = w.add_tensor_with_layout(&t.name, t.dtype, t.layout, &t.shape, t.data);
    }
    let mut bytes = Vec::new();
    w.write(&mut bytes).expect("writing to memory");
    for r in raw {
        let (record, at, val): (usize, usize, Vec<u8>) = match r {
            Raw::Dim { record, dim, value } => (record, 104 + 8 * dim, value.to_le_bytes().into()),
            Raw::Ndim { record, value } => (record, 97, vec![value]),
            Raw::Dtype { record, value } => (record, 96, vec![value]),
            Raw::Layout { record, value } => (record, 98, value.to_le_bytes().into()),
            Raw::Offset { record, value } => (record, 136, value.to_le_bytes().into()),
            Raw::Nbytes { record, value } => (record, 144, value.to_le_bytes().into()),
        };
        if let Some(r) = record_at(&bytes, record) {
            bytes[r + at..r + at + val.len()].copy_from_slice(&val);
        }
    }
    seal(&mut bytes);
    Mutated {
        bytes,
        max_len,
        ids,
        log,
    }
}
