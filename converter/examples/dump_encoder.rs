//! Dumps dbrt's encoder stage on the CPU for checking exported graphs against it
//! (`scripts/npu/check_export.py`): for each case, the hidden states after the embedding
//! LayerNorm (the graph's input) and the CPU encoder's output, every row.
//!
//! ```text
//! cargo run --release -p dbrt-convert --example dump_encoder -- MODEL OUT_DIR SPEC...
//!   SPEC: rows:FILE.jsonl:N   the first N rows' input_ids of a goldens file
//!         random:LEN:SEED     LEN random token ids (xorshift from SEED)
//! ```
//!
//! Writes `OUT_DIR/case-{k}.in.f32` and `case-{k}.out.f32` (`[len, hidden]` little-endian f32)
//! and `OUT_DIR/cases.txt` (`k len` per line).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

fn ids_of(spec: &str, vocab: usize, max: usize) -> Result<Vec<Vec<u32>>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        ["rows", file, n] => {
            let n: usize = n.parse().map_err(|_| format!("{spec}: N"))?;
            let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .take(n)
                .map(|l| {
                    let v: serde_json::Value =
                        serde_json::from_str(l).map_err(|e| e.to_string())?;
                    let ids = v["input_ids"].as_array().ok_or("no input_ids")?;
                    let mut ids: Vec<u32> =
                        ids.iter().map(|x| x.as_u64().unwrap_or(0) as u32).collect();
                    ids.truncate(max);
                    Ok(ids)
                })
                .collect()
        }
        ["random", len, seed] => {
            let len: usize = len.parse().map_err(|_| format!("{spec}: LEN"))?;
            let mut s: u64 = seed.parse::<u64>().map_err(|_| format!("{spec}: SEED"))? | 1;
            let ids = (0..len.min(max))
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s % vocab as u64) as u32
                })
                .collect();
            Ok(vec![ids])
        }
        _ => Err(format!("{spec}: expected rows:FILE:N or random:LEN:SEED")),
    }
}

fn write_f32(path: &PathBuf, v: &[f32]) -> Result<(), String> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, out, specs @ ..] = args.as_slice() else {
        return Err("usage: dump_encoder MODEL OUT_DIR SPEC...".into());
    };
    let model = Arc::new(dbrt::Model::open(model).map_err(|e| e.to_string())?);
    let (vocab, max) = (model.config().vocab_size, model.max_sequence_length());
    let types = model.config().type_vocab_size > 0;
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let mut session = dbrt::Session::new(model, Default::default()).map_err(|e| e.to_string())?;
    let mut list = String::new();
    let mut k = 0;
    for spec in specs {
        for ids in ids_of(spec, vocab, max)? {
            let zeros = vec![0u32; ids.len()];
            let seq = dbrt::Sequence {
                ids: &ids,
                type_ids: types.then_some(&zeros[..]),
            };
            let mut pass = session.forward_pass(seq).map_err(|e| e.to_string())?;
            let (hidden, mask, mut cpu) = pass.cpu_encoder();
            write_f32(&out.join(format!("case-{k}.in.f32")), hidden)?;
            let mask = mask.to_vec();
            use dbrt::model::stage::{EncoderStage, Rows};
            cpu.run(hidden, &mask, Rows::All)
                .map_err(|e| e.to_string())?;
            write_f32(&out.join(format!("case-{k}.out.f32")), hidden)?;
            let _ = writeln!(list, "{k} {}", ids.len());
            k += 1;
        }
    }
    std::fs::write(out.join("cases.txt"), list).map_err(|e| e.to_string())?;
    eprintln!("{k} cases in {}", out.display());
    Ok(())
}
