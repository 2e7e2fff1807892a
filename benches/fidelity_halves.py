#!/usr/bin/env python3
"""The int8 model's agreement with fp32 on the 1,277 real fixture rows, in two fixed halves.

    python3 benches/fidelity_halves.py [--dbrt-bin PATH] [--model FILE.dbrt] [--threads 2]

Runs `dbrt eval` once over tests/fixtures/real/mnli_dev_matched.goldens.jsonl and
rte_dev.goldens.jsonl (the rows' own input_ids, from Hugging Face's tokenizer) and compares each
row's `logits` with its `logits_fp32` (transformers, fp32): argmax agreement and mean |Δp| (the
softmax probabilities' absolute difference averaged over the labels, then over the rows, as
`dbrt eval`'s own summary computes it).

The halves (issue 19: decide on one half, confirm on the other): a row is in half A when the
first byte of sha256("<source>/<id>") is even, else in half B. The split depends on nothing but
the row's source and id, so it is the same on every run and for every model. The stored
onnxruntime int8 logits of each row (per-channel, and the package's graph, which the fixture
lacks for 9 RTE rows longer than the graph's 160 tokens) are shown beside it, on the rows that
carry them.
Standard library only; the bar of issue 19 is >= 99.5% and <= 0.005 on each half.
"""
import argparse, hashlib, json, math, os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DBRT_BIN = os.path.join(ROOT, "target/release/dbrt")
DBRT_MODEL = os.path.join(ROOT, "models/aegis-nli-xsmall-int8.dbrt")
FIXTURES = [os.path.join(ROOT, "tests/fixtures/real", f)
            for f in ("mnli_dev_matched.goldens.jsonl", "rte_dev.goldens.jsonl")]
BAR_AGREE, BAR_DP = 99.5, 0.005


def half(row):
    key = f"{row['source']}/{row['id']}".encode()
    return "A" if hashlib.sha256(key).digest()[0] % 2 == 0 else "B"


def softmax(v):
    m = max(v)
    e = [math.exp(x - m) for x in v]
    s = sum(e)
    return [x / s for x in e]


def argmax(v):
    return max(range(len(v)), key=lambda i: (v[i], -i))  # the first of equal maxima


def mean_abs_dp(a, b):
    pa, pb = softmax(a), softmax(b)
    return sum(abs(x - y) for x, y in zip(pa, pb)) / len(pa)


def stats(pairs):
    """pairs: [(logits, logits_fp32)] -> (rows, agreeing, percent, mean |dp|)"""
    n = len(pairs)
    agree = sum(argmax(a) == argmax(r) for a, r in pairs)
    dp = sum(mean_abs_dp(a, r) for a, r in pairs) / max(n, 1)
    return n, agree, 100.0 * agree / max(n, 1), dp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dbrt-bin", default=DBRT_BIN)
    ap.add_argument("--model", default=DBRT_MODEL)
    ap.add_argument("--threads", type=int, default=2, help="dbrt eval --threads (the output is the same for every count)")
    ap.add_argument("--keep", help="also write dbrt eval's output rows to this file")
    a = ap.parse_args()
    for path, what in ((a.dbrt_bin, "--dbrt-bin"), (a.model, "--model")):
        if not os.path.exists(path):
            sys.exit(f"{what} {path}: no such file (cargo build --release -p dbrt-cli; scripts/fetch-model.sh)")
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "rows.jsonl")
        with open(data, "w") as out:
            for f in FIXTURES:
                with open(f) as fh:
                    out.writelines(line if line.endswith("\n") else line + "\n" for line in fh if line.strip())
        result = a.keep or os.path.join(d, "out.jsonl")
        run = subprocess.run([a.dbrt_bin, "eval", "--model", a.model, "--data", data, "--out", result,
                              "--threads", str(a.threads)], capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"dbrt eval failed: {run.stderr.strip()}")
        with open(result) as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    summary = re.search(r"vs logits_fp32 on .*", run.stdout + run.stderr)

    groups = {}
    for r in rows:
        for g in (half(r), "all", f"{half(r)} {r['source']}"):
            groups.setdefault(g, []).append(r)
    peers = [("dbrt int8", "logits"), ("ort per-channel", "logits_ort_int8_per_channel"),
             ("ort shipped", "logits_ort_int8_shipped")]
    print(f"dbrt eval of {os.path.basename(a.model)} on {len(rows)} rows against logits_fp32; "
          f"halves by the first byte of sha256(\"<source>/<id>\"): even = A, odd = B")
    print(f"{'rows':<26} {'n':>5} " + " ".join(f"{p + ' agree':>24} {'mean |dp|':>9}" for p, _ in peers))
    order = ["A", "B", "all"] + sorted(g for g in groups if " " in g)
    for g in order:
        cells = []
        for _, key in peers:
            n, agree, pct, dp = stats([(r[key], r["logits_fp32"]) for r in groups[g] if key in r])
            cells.append(f"{f'{pct:.2f}% ({agree}/{n})':>24} {dp:>9.5f}")
        print(f"{g:<26} {len(groups[g]):>5} " + " ".join(cells))
    print(f"bar (issue 19): >= {BAR_AGREE}% and <= {BAR_DP} on each half")
    ok = True
    for g in ("A", "B"):
        n, agree, pct, dp = stats([(r["logits"], r["logits_fp32"]) for r in groups[g]])
        good = pct >= BAR_AGREE and dp <= BAR_DP
        ok &= good
        need = math.ceil(BAR_AGREE / 100 * n)
        print(f"  half {g}: {'meets' if good else 'misses'} it ({agree}/{n} agree, {need} needed; mean |dp| {dp:.5f})")
    if summary:
        print(f"dbrt eval's own summary: {summary.group(0)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
