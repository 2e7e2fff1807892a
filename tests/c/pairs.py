#!/usr/bin/env python3
"""Writes the real NLI fixture pairs as tab-separated lines (for the C and Java tests) and as
JSONL without token ids (for `dbrt eval --retokenize`), both in the same order.
usage: pairs.py OUT_PREFIX LIMIT FIXTURE.jsonl..."""
import json
import sys

prefix, limit, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = []
for path in files:
    for line in open(path, encoding="utf-8"):
        if line.strip():
            r = json.loads(line)
            rows.append((r["premise"], r["hypothesis"]))
rows = rows[:limit] if limit > 0 else rows
with open(prefix + ".tsv", "w", encoding="utf-8", newline="\n") as tsv, open(
    prefix + ".jsonl", "w", encoding="utf-8"
) as jsonl:
    for p, h in rows:
        if any(c in s for s in (p, h) for c in "\t\n\r"):
            sys.exit(f"pairs.py: a tab or newline in {p!r} / {h!r}")
        tsv.write(f"{p}\t{h}\n")
        jsonl.write(json.dumps({"premise": p, "hypothesis": h}) + "\n")
print(f"pairs.py: {len(rows)} pairs", file=sys.stderr)
