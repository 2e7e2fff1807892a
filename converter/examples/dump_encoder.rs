//! Dumps dbrt's encoder stage on the CPU for checking exported graphs against it
//! (`scripts/npu/check_export.py`): for each case, the hidden states after the embedding
//! LayerNorm (the graph's input) and the CPU encoder's output, every row.
//!
//! ```text
//! cargo run --release -p dbrt-convert --example dump_encoder -- MODEL OUT_DIR SPEC...
//!   SPEC: rows:FILE.jsonl:N   the first N rows' input_ids of a goldens file (N 0: all)
//!         random:LEN:SEED     LEN random token ids (xorshift from SEED)
//! cargo run --release -p dbrt-convert --example dump_encoder -- head MODEL OUT_DIR
//! ```
//!
//! Writes `OUT_DIR/case-{k}.in.f32` and `case-{k}.out.f32` (`[len, hidden]` little-endian f32)
//! and `OUT_DIR/cases.txt` (`k len ids golden-logits` per line, `-` for none).
//!
//! `head`: for each case with a graph's output beside it (`case-{k}.graph.f32`, written by
//! `check_export.py --save`), the model's CPU head over that output instead of the CPU
//! encoder's: its logits against the CPU's and the golden `logits_fp32`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

type Case = (Vec<u32>, Option<Vec<f32>>);

fn ids_of(spec: &str, vocab: usize, max: usize) -> Result<Vec<Case>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        ["rows", file, n] => {
            let n: usize = n.parse().map_err(|_| format!("{spec}: N"))?;
            let n = if n == 0 { usize::MAX } else { n };
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
                    let golden = v["logits_fp32"].as_array().map(|l| {
                        l.iter()
                            .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
                            .collect()
                    });
                    Ok((ids, golden))
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
            Ok(vec![(ids, None)])
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
    if let [head, model, dir] = args.as_slice() {
        if head == "head" {
            return heads(model, dir);
        }
    }
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
        for (ids, golden) in ids_of(spec, vocab, max)? {
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
            let _ = writeln!(
                list,
                "{k} {} {} {}",
                ids.len(),
                join(&ids),
                golden.map_or("-".into(), |g| join(&g))
            );
            k += 1;
        }
    }
    std::fs::write(out.join("cases.txt"), list).map_err(|e| e.to_string())?;
    eprintln!("{k} cases in {}", out.display());
    Ok(())
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

fn parse<T: std::str::FromStr>(s: &str) -> Vec<T> {
    s.split(',').filter_map(|x| x.parse().ok()).collect()
}

/// The `head` mode (see the module's doc).
fn heads(model: &str, dir: &str) -> Result<(), String> {
    let model = Arc::new(dbrt::Model::open(model).map_err(|e| e.to_string())?);
    let (h, labels) = (model.config().hidden_size, model.config().num_labels);
    let types = model.config().type_vocab_size > 0;
    let dir = PathBuf::from(dir);
    let list = std::fs::read_to_string(dir.join("cases.txt")).map_err(|e| e.to_string())?;
    let mut session = dbrt::Session::new(model, Default::default()).map_err(|e| e.to_string())?;
    let (mut n, mut agree, mut agree_golden, mut d_cpu, mut d_golden) = (0, 0, 0, 0f32, 0f32);
    let argmax = |v: &[f32]| (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b });
    for line in list.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [k, _, ids, golden] = f.as_slice() else {
            continue;
        };
        let Ok(bytes) = std::fs::read(dir.join(format!("case-{k}.graph.f32"))) else {
            continue;
        };
        let out: Vec<f32> = (bytes.chunks_exact(4))
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let ids: Vec<u32> = parse(ids);
        let zeros = vec![0u32; ids.len()];
        let seq = dbrt::Sequence {
            ids: &ids,
            type_ids: types.then_some(&zeros[..]),
        };
        let cpu = session.run_logits(seq).map_err(|e| e.to_string())?.to_vec();
        let mut pass = session.forward_pass(seq).map_err(|e| e.to_string())?;
        let (hidden, _, _) = pass.cpu_encoder();
        if out.len() != hidden.len() || out.len() < h {
            return Err(format!(
                "case {k}: {} values for {}",
                out.len(),
                hidden.len()
            ));
        }
        hidden.copy_from_slice(&out);
        let mut logits = vec![0f32; labels];
        pass.head(&mut logits).map_err(|e| e.to_string())?;
        n += 1;
        agree += (argmax(&logits) == argmax(&cpu)) as usize;
        d_cpu = d_cpu.max(max_diff(&logits, &cpu));
        let golden: Vec<f32> = parse(golden);
        if golden.len() == labels {
            agree_golden += (argmax(&logits) == argmax(&golden)) as usize;
            d_golden = d_golden.max(max_diff(&logits, &golden));
        }
    }
    println!(
        "{n} cases through the graph + CPU head: argmax = CPU's on {agree}, max |dlogit| vs CPU \
         {d_cpu:.3e}; vs logits_fp32: argmax on {agree_golden}, max |dlogit| {d_golden:.3e}"
    );
    Ok(())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
