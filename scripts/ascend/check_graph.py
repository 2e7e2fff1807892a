#!/usr/bin/env python3
"""Checks the Ascend graph (`dbrt-convert export-onnx --target ascend`) in onnxruntime's CPU
provider: its interface (symbolic `seq` dim, opset, ops), and its output at every case's own
length (no padding) and padded to the smallest gear that holds it, against dbrt's CPU encoder
and, where given, the static per-bucket graphs of the same lengths.

A dev tool (numpy, onnx, onnxruntime). ATC's acceptance of the graph cannot be checked here:
what is checked is that one graph with a dynamic length computes what the static ones do.

    # dbrt's side: post-embedding hidden states and the CPU encoder's output per case
    cargo run --release -p dbrt-convert --example dump_encoder -- MODEL DUMP \\
        random:1:1 random:7:2 random:64:3 random:100:4 random:512:5 \\
        rows:tests/fixtures/real/rte_dev.goldens.jsonl:10
    dbrt-convert export-onnx MODEL -o ASCEND --target ascend
    # optional: static graphs at the cases' lengths, compared too
    dbrt-convert export-onnx MODEL -o STATIC --buckets 1,7,64,100,512
    check_graph.py ASCEND DUMP [--static STATIC] [--tol 1e-4]

Padded rows are filled with noise, not zeros, so that a graph that does not mask them is caught.
Exit status 1 when any difference exceeds --tol.
"""
import argparse
import collections
import os
import sys
import zlib

import numpy as np
import onnx
import onnxruntime as ort

# What the exporter promises for this target (converter/src/export/ascend.rs).
OPSET = 13
OPS = {"MatMul", "Add", "Mul", "Sub", "Div", "Softmax", "Transpose", "Reshape", "ReduceMean",
       "Sqrt", "Erf", "Tanh", "Relu", "GatherElements", "Cast", "Shape", "Slice", "Concat"}


def manifest(art):
    """hidden_size, gears and the graph lines (bucket, path), each graph's length and CRC-32
    checked against its line."""
    hidden, gears, graphs = None, [], []
    with open(os.path.join(art, "manifest.txt")) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            if p[0] == "hidden_size":
                hidden = int(p[1])
            elif p[0] == "gears":
                gears = [int(g) for g in p[1:]]
            elif p[0] == "graph":
                path = os.path.join(art, p[2])
                data = open(path, "rb").read()
                assert len(data) == int(p[3]), f"{p[2]}: length differs from the manifest"
                assert zlib.crc32(data) == int(p[4], 16), f"{p[2]}: CRC differs"
                graphs.append((int(p[1]), path))
    return hidden, gears, graphs


def check_interface(path):
    m = onnx.load(path)
    onnx.checker.check_model(m)
    opsets = {o.domain: o.version for o in m.opset_import}
    assert opsets == {"": OPSET}, f"opsets {opsets}"
    ops = collections.Counter(n.op_type for n in m.graph.node)
    assert set(ops) <= OPS, f"ops outside the list: {set(ops) - OPS}"
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(m.graph.input) + list(m.graph.output)}
    print(f"interface: {dims}; opset {OPSET}; ops: "
          + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
    return dims


def cases(dump, hidden):
    out = []
    with open(os.path.join(dump, "cases.txt")) as f:
        for line in f:
            k, n = map(int, line.split()[:2])
            x = np.fromfile(os.path.join(dump, f"case-{k}.in.f32"), np.float32).reshape(n, hidden)
            y = np.fromfile(os.path.join(dump, f"case-{k}.out.f32"), np.float32).reshape(n, hidden)
            out.append((k, x, y))
    return out


def feed(x, length, rng):
    n, h = x.shape
    hid = rng.standard_normal((1, length, h)).astype(np.float32) * 3
    hid[0, :n] = x
    mask = np.zeros((1, length), np.float32)
    mask[0, :n] = 1
    return {"hidden": hid, "mask": mask}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ascend", help="the Ascend export's directory")
    ap.add_argument("dump", help="dump_encoder's output directory")
    ap.add_argument("--static", help="a static export holding graphs of the cases' lengths")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    hidden, gears, graphs = manifest(a.ascend)
    assert len(graphs) == 1 and gears and graphs[0][0] == gears[-1], "not an Ascend export"
    check_interface(graphs[0][1])
    dyn = ort.InferenceSession(graphs[0][1], providers=["CPUExecutionProvider"])
    static = {}
    if a.static:
        _, _, sg = manifest(a.static)
        static = dict(sg)
    rng = np.random.default_rng(0)
    worst = 0.0
    for k, x, y in cases(a.dump, hidden):
        n = len(x)
        gear = min((g for g in gears if g >= n), default=None)
        if gear is None:
            print(f"case {k} ({n} tokens): longer than every gear, skipped")
            continue
        exact = dyn.run(["last_hidden"], feed(x, n, rng))[0][0]
        padded = dyn.run(["last_hidden"], feed(x, gear, rng))[0][0, :n]
        d_exact = float(np.abs(exact - y).max())
        d_pad = float(np.abs(padded - y).max())
        line = (f"case {k}: {n} tokens: vs dbrt CPU at {n}: {d_exact:.2g}, "
                f"padded to gear {gear}: {d_pad:.2g}")
        worst = max(worst, d_exact, d_pad)
        if n in static:
            s = ort.InferenceSession(static[n], providers=["CPUExecutionProvider"])
            ref = s.run(["last_hidden"], feed(x, n, rng))[0][0]
            d_static = float(np.abs(exact - ref).max())
            line += f"; vs the static graph of {n}: {d_static:.2g}"
            worst = max(worst, d_static)
        print(line)
    print(f"max |diff| = {worst:.3g} (tolerance {a.tol:g})")
    sys.exit(0 if worst <= a.tol else 1)


if __name__ == "__main__":
    main()
