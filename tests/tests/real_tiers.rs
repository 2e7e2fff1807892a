//! Every kernel tier against the scalar reference on the real int8 model: the same logits, bit
//! for bit, on the real NLI pairs (integer block sums are exact and every float step runs in one
//! order in all tiers), and the same bits at every thread count. On x86_64 this runs on all
//! 1,277 pairs; under qemu (aarch64, scripts/test.sh) `DBRT_REAL_TIER_ROWS` bounds the pairs
//! (emulated, the scalar tier takes ~4 s of CPU per pair) and `DBRT_REAL_INT8_MODEL` names an
//! int8 file converted beforehand (`scripts/fetch-model.sh`), instead of converting under qemu.

use std::sync::{Arc, OnceLock};

use dbrt::kernels::Isa;
use dbrt::{Sequence, Session};
use dbrt_convert::StorageType;
use dbrt_tests::*;

/// `DBRT_REAL_INT8_MODEL`, else the int8 conversion of the package's graph, made once per test
/// binary.
fn int8_model() -> Arc<dbrt::Model> {
    static M: OnceLock<(Option<tempfile::TempDir>, Arc<dbrt::Model>)> = OnceLock::new();
    M.get_or_init(|| match std::env::var_os("DBRT_REAL_INT8_MODEL") {
        Some(path) => (None, open(std::path::Path::new(&path))),
        None => {
            let (dir, path) = convert(&real_model_onnx(), StorageType::Int8);
            (Some(dir), open(&path))
        }
    })
    .1
    .clone()
}

/// `DBRT_REAL_TIER_ROWS`, else `all`.
fn row_limit(all: usize) -> usize {
    std::env::var("DBRT_REAL_TIER_ROWS")
        .ok()
        .map(|v| v.parse::<usize>().expect("DBRT_REAL_TIER_ROWS is a count"))
        .unwrap_or(all)
        .min(all)
}

/// Every real row, or an even spread of `DBRT_REAL_TIER_ROWS` of them across both files (so
/// that short and long pairs, MNLI and RTE, are all in a bounded run).
fn rows() -> Vec<RealRow> {
    let all: Vec<RealRow> = ["mnli_dev_matched.goldens.jsonl", "rte_dev.goldens.jsonl"]
        .iter()
        .flat_map(|f| real_rows(f))
        .collect();
    let n = row_limit(all.len());
    let step = all.len() / n.max(1);
    all.into_iter().step_by(step.max(1)).take(n).collect()
}

fn int8_logits(isa: Isa, threads: usize, rows: &[RealRow]) -> Vec<Vec<f32>> {
    let opts = dbrt::SessionOptions {
        isa: Some(isa),
        threads,
        exact_threads: true,
        ..Default::default()
    };
    let mut s = Session::new(int8_model(), opts).unwrap();
    rows.iter()
        .map(|r| {
            s.run_logits(Sequence {
                ids: &r.input_ids,
                type_ids: None,
            })
            .unwrap()
            .to_vec()
        })
        .collect()
}

#[test]
fn real_int8_every_tier_equals_scalar() {
    let rows = rows();
    assert!(!rows.is_empty());
    // Two threads give the same bits as one (tested below) in half the time.
    let reference = int8_logits(Isa::Scalar, 2, &rows);
    let tiers: Vec<Isa> = Isa::all_available()
        .into_iter()
        .filter(|&i| i != Isa::Scalar)
        .collect();
    assert!(!tiers.is_empty(), "no SIMD tier on this CPU");
    for isa in tiers {
        let got = int8_logits(isa, 2, &rows);
        for (i, (a, b)) in got.iter().zip(&reference).enumerate() {
            assert_eq!(a, b, "{} row {i} differs from scalar", isa.name());
        }
        eprintln!("{} equals scalar on all {} rows", isa.name(), rows.len());
    }
}

/// Every thread count computes the same bits as one thread, on every tier: on 20 rows, or a
/// tenth of `DBRT_REAL_TIER_ROWS` (each row runs six times per tier).
#[test]
fn real_int8_threads_are_bit_identical() {
    let n = std::env::var_os("DBRT_REAL_TIER_ROWS").map_or(20, |_| (row_limit(20) / 10).max(1));
    let rows: Vec<RealRow> = real_rows("rte_dev.goldens.jsonl")
        .into_iter()
        .take(n)
        .collect();
    for isa in Isa::all_available() {
        let one = int8_logits(isa, 1, &rows);
        for threads in [2, 3] {
            assert_eq!(
                int8_logits(isa, threads, &rows),
                one,
                "{} with {threads} threads differs from one thread",
                isa.name()
            );
        }
    }
}
