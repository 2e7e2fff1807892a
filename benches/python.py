#!/usr/bin/env python3
"""Pairs per second from Python (the dbrt wheel) against the dbrt CLI, on the same rows.

    bindings/python/build.sh --wheel-only && pip install target/python/wheels/dbrt-*.whl
    python3 benches/python.py [--rows N] [--reps 3] [--model M]

Rows: the 1,277 real NLI pairs of tests/fixtures/real (or the first N), tokenized from text by
both. The CLI: `dbrt eval --retokenize --threads T` (process start and model open included:
they are a few milliseconds of seconds). Python: `Session.classify_batch` on one session per
thread, each thread taking every T-th pair (the engine runs with the GIL released).
Configurations alternate, repetitions take the best; prints pairs/s and python/cli ratios.
"""
import argparse, json, os, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rows(limit):
    out = []
    for name in ("mnli_dev_matched.goldens.jsonl", "rte_dev.goldens.jsonl"):
        with open(os.path.join(ROOT, "tests/fixtures/real", name), encoding="utf-8") as f:
            out += [json.loads(l) for l in f if l.strip()]
    return [(r["premise"], r["hypothesis"]) for r in out][: limit or None]


def cli_seconds(cli, model, data, threads):
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        subprocess.run([cli, "eval", "--model", model, "--data", data, "--out", os.path.join(d, "o.jsonl"),
                        "--retokenize", "--threads", str(threads)], check=True, capture_output=True)
        return time.perf_counter() - start


def python_seconds(model, pairs, threads):
    sessions = [model.session() for _ in range(threads)]
    parts = [pairs[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=s.classify_batch, args=(p,)) for s, p in zip(sessions, parts)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models/aegis-nli-xsmall-int8.dbrt"))
    ap.add_argument("--cli", default=os.path.join(ROOT, "target/release/dbrt"))
    ap.add_argument("--rows", type=int, default=0, help="the first N pairs (default all 1,277)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    import dbrt

    pairs = rows(a.rows)
    model = dbrt.Model(a.model)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for p, h in pairs:
            f.write(json.dumps({"premise": p, "hypothesis": h}) + "\n")
        data = f.name
    try:
        best = {}
        for _ in range(a.reps):
            for t in map(int, a.threads.split(",")):
                for kind, run in (("cli", lambda: cli_seconds(a.cli, a.model, data, t)),
                                  ("python", lambda: python_seconds(model, pairs, t))):
                    s = run()
                    best[kind, t] = min(best.get((kind, t), s), s)
    finally:
        os.unlink(data)
    print(f"{len(pairs)} pairs, {model.weight_type} model, dbrt {dbrt.__version__}, isa {model.session().isa}, "
          f"best of {a.reps}")
    print("| threads | CLI pairs/s | Python pairs/s | Python/CLI |")
    print("|---|---|---|---|")
    for t in map(int, a.threads.split(",")):
        c, p = len(pairs) / best["cli", t], len(pairs) / best["python", t]
        print(f"| {t} | {c:.1f} | {p:.1f} | {p / c:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
