#!/usr/bin/env python3
"""Checks graphs written by `dbrt-convert export-onnx` against dbrt's CPU encoder stage.

A dev tool (needs numpy, onnx, onnxruntime; `qnn` also onnxruntime-qnn, x86_64 Linux): it
documents which ops the graphs use and what Qualcomm's HTP emulator makes of them. The Rust
tests through the runtime's backends are the project's proof; this is how the graphs were made
right.

    # dbrt's side: post-embedding hidden states and the CPU encoder's output per case
    cargo run --release -p dbrt-convert --example dump_encoder -- \\
        MODEL.dbrt DUMP rows:tests/fixtures/real/rte_dev.goldens.jsonl:20 random:300:7
    # every graph in onnxruntime's CPU provider, every case that fits, padded and masked
    check_export.py ort ARTIFACTS DUMP            # fails above --tol (1e-4)
    # every graph on QNN's HTP backend with CPU fallback disabled: compile time per bucket,
    # then max |diff| vs dbrt's CPU f32 at --bucket (64) over --cases (4) cases
    check_export.py qnn ARTIFACTS DUMP

Padded rows of the input are filled with noise, not zeros, so that a graph that does not mask
them is caught.

Measured with onnxruntime 1.32 and onnxruntime-qnn 2.7 (HTP emulator, soc_model 60, htp_arch 75,
fp16), the real model (aegis-nli-xsmall, f32 .dbrt) exported at 64,128,256,512:
- ops (each bucket): MatMul 120, Add 145, Mul 37, Sub 1, Div 12, Erf 12 (all in the GELU
  pattern), Softmax 12, Transpose 48, Reshape 49, LayerNormalization 24, GatherElements 24.
- onnxruntime CPU: max |diff| 2e-5 over 27 cases at every bucket (26..512 tokens, padded);
  all 1,277 goldens pairs (smallest bucket, `--smallest --save`, then dump_encoder's head mode):
  max |dlogit| 1.2e-5 from logits_fp32, argmax 1,277/1,277.
- HTP: every bucket accepted with CPU fallback disabled; session creation 2.9 / 2.2 / 3.9 /
  8.4 s (64 / 128 / 256 / 512). Bucket 64 over 40 real pairs: hidden states max |diff| 0.38,
  mean ~0.013 (fp16); through the CPU head, max |dlogit| 0.065, argmax 40/40.
- `--precision f16` graphs: half the size, 0.021 from CPU f32 in onnxruntime, accepted by HTP.
- The tiny fixtures' variants (v3-style, separate-pos-proj, v2-absolute-pos; and v3-style with
  gelu_new, relu, tanh, or no relative attention): 1e-6 in onnxruntime, all accepted by HTP.
"""
import argparse
import collections
import os
import sys
import time
import zlib

import numpy as np
import onnx
import onnxruntime as ort


def manifest(art):
    """The manifest's graphs as (bucket, path), each file's length and CRC-32 checked."""
    graphs, hidden = [], None
    with open(os.path.join(art, "manifest.txt")) as f:
        for line in f:
            p = line.split()
            if p and p[0] == "hidden_size":
                hidden = int(p[1])
            if p and p[0] == "graph":
                bucket, name, length, crc = int(p[1]), p[2], int(p[3]), int(p[4], 16)
                path = os.path.join(art, name)
                data = open(path, "rb").read()
                assert len(data) == length, f"{name}: {len(data)} bytes, manifest says {length}"
                assert zlib.crc32(data) == crc, f"{name}: CRC differs from the manifest"
                graphs.append((bucket, path))
    return hidden, graphs


def cases(dump, hidden):
    out = []
    with open(os.path.join(dump, "cases.txt")) as f:
        for line in f:
            k, n = map(int, line.split()[:2])
            x = np.fromfile(os.path.join(dump, f"case-{k}.in.f32"), np.float32).reshape(n, hidden)
            y = np.fromfile(os.path.join(dump, f"case-{k}.out.f32"), np.float32).reshape(n, hidden)
            out.append((k, x, y))
    return out


def feed(x, bucket, rng):
    n, h = x.shape
    hid = rng.standard_normal((1, bucket, h)).astype(np.float32) * 3  # noise in the padding
    hid[0, :n] = x
    mask = np.zeros((1, bucket), np.float32)
    mask[0, :n] = 1
    return {"hidden": hid, "mask": mask}


def op_coverage(path):
    graph = onnx.load(path, load_external_data=False).graph
    ops = collections.Counter(n.op_type for n in graph.node)
    return ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))


def qnn_session(path):
    import onnxruntime_qnn as oq
    if not any(d.ep_name == "QNNExecutionProvider" for d in ort.get_ep_devices()):
        ort.register_execution_provider_library("QNNExecutionProvider", oq.get_library_path())
    devs = [d for d in ort.get_ep_devices() if d.ep_name == "QNNExecutionProvider"]
    so = ort.SessionOptions()
    # Session creation fails if any node is not placed on HTP.
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    so.add_provider_for_devices(devs, {"backend_path": oq.get_qnn_htp_path(),
                                       "enable_htp_fp16_precision": "1",
                                       "soc_model": "60", "htp_arch": "75"})
    return ort.InferenceSession(path, sess_options=so)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["ort", "qnn"])
    ap.add_argument("artifacts")
    ap.add_argument("dump")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--bucket", type=int, default=64)
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--smallest", action="store_true",
                    help="ort: run each case in the smallest bucket that holds it only")
    ap.add_argument("--save", action="store_true",
                    help="write each case's graph output (ort: the smallest bucket that holds it; "
                         "qnn: --bucket) as DUMP/case-K.graph.f32, for dump_encoder's head mode")
    a = ap.parse_args()
    hidden, graphs = manifest(a.artifacts)
    data = cases(a.dump, hidden)
    rng = np.random.default_rng(0)
    print(f"ops in {os.path.basename(graphs[0][1])}: {op_coverage(graphs[0][1])}")
    worst, saved = 0.0, set()
    if a.mode == "ort":
        for bucket, path in graphs:
            s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            smaller = max([b for b, _ in graphs if b < bucket], default=0) if a.smallest else 0
            fits = [(k, x, y) for k, x, y in data if smaller < len(x) <= bucket]
            d = 0.0
            for k, x, y in fits:
                out = s.run(["last_hidden"], feed(x, bucket, rng))[0][0, : len(x)]
                d = max(d, float(np.abs(out - y).max()))
                if a.save and k not in saved:
                    out.tofile(os.path.join(a.dump, f"case-{k}.graph.f32"))
                    saved.add(k)
            if fits:
                lens = sorted({len(x) for _, x, _ in fits})
                print(f"bucket {bucket}: {len(fits)} cases (lengths {lens[0]}..{lens[-1]}), "
                      f"max |diff| vs dbrt CPU = {d:.3g}")
            else:
                print(f"bucket {bucket}: no case fits")
            worst = max(worst, d)
        print(f"worst {worst:.3g} (tolerance {a.tol:g})")
        return 0 if worst <= a.tol else 1
    for bucket, path in graphs:
        t0 = time.time()
        s = qnn_session(path)
        print(f"bucket {bucket}: accepted entirely by HTP (CPU fallback disabled), "
              f"session created in {time.time() - t0:.1f} s", flush=True)
        if bucket != a.bucket:
            continue
        fits = [(k, x, y) for k, x, y in data if len(x) <= bucket][: a.cases]
        for k, x, y in fits:
            t0 = time.time()
            out = s.run(["last_hidden"], feed(x, bucket, rng))[0][0, : len(x)]
            d = float(np.abs(out - y).max())
            if a.save:
                out.tofile(os.path.join(a.dump, f"case-{k}.graph.f32"))
            rel = d / float(np.abs(y).max())
            print(f"  case {k} ({len(x)} tokens): max |diff| vs dbrt CPU = {d:.3g} "
                  f"({rel:.2%} of max |y|), mean |diff| {float(np.abs(out - y).mean()):.3g}, "
                  f"run {time.time() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
