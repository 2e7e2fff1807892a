#!/usr/bin/env python3
"""Compares the C API's logits (one tab-separated line per pair) with the Rust CLI's
(`dbrt eval` JSONL, key "logits"), as float32: exactly, or within --tolerance.
usage: compare_logits.py C_OUT.txt CLI_OUT.jsonl [--tolerance T]"""
import json
import struct
import sys


def f32(x):
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def main():
    c_path, cli_path = sys.argv[1], sys.argv[2]
    tol = float(sys.argv[sys.argv.index("--tolerance") + 1]) if "--tolerance" in sys.argv else 0.0
    c_rows = [[f32(v) for v in line.split("\t")] for line in open(c_path) if line.strip()]
    cli_rows = [[f32(v) for v in json.loads(line)["logits"]] for line in open(cli_path) if line.strip()]
    if len(c_rows) != len(cli_rows) or not c_rows:
        sys.exit(f"compare_logits: {len(c_rows)} C rows vs {len(cli_rows)} CLI rows")
    worst, differing = 0.0, 0
    for i, (a, b) in enumerate(zip(c_rows, cli_rows)):
        if len(a) != len(b):
            sys.exit(f"compare_logits: row {i}: {len(a)} vs {len(b)} logits")
        d = max(abs(x - y) for x, y in zip(a, b))
        worst = max(worst, d)
        differing += a != b
    print(f"compare_logits: {len(c_rows)} rows, {differing} not bit-identical, max |diff| {worst:.3g}")
    if worst > tol:
        sys.exit(f"compare_logits: max |diff| {worst} exceeds {tol}")


main()
