#!/usr/bin/env bash
# Tests the cross-built aarch64 wheel where no aarch64 machine is: an aarch64 CPython 3.11
# (Debian 12's arm64 packages, unpacked, not installed) runs under qemu-aarch64-static -cpu max
# with the wheel and numpy's aarch64 wheel (from PyPI) unzipped beside it; it imports dbrt, opens
# the real int8 model (DBRT_MODEL) and classifies the DBRT_QEMU_ROWS (8) shortest real pairs of
# tests/fixtures/real/rte_dev.goldens.jsonl. Checked against the host's CLI (`dbrt eval`) on
# the same pairs, bit for bit: the scalar tier's logits (the same code on both machines) and
# the best tier's probabilities (numpy out; every tier computes the scalar tier's bits).
#   bindings/python/tests/qemu_import.sh WHEEL aarch64-unknown-linux-gnu
# (bindings/python/build.sh --target aarch64-unknown-linux-gnu builds the wheel and runs this.)
# Needs: qemu-aarch64-static and the aarch64 C library in /usr/aarch64-linux-gnu (Debian's
# qemu-user-static and libc6-dev-arm64-cross, which .ci/run installs); apt-get and dpkg-deb, to
# download and unpack the arm64 packages with an apt state of its own (the machine's dpkg and apt
# setup are not changed, no root needed); python3 with pip; target/release/dbrt; the int8 model
# (scripts/fetch-model.sh). Downloads are kept in .cache/python-aarch64.
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
[ $# = 2 ] || { echo "usage: qemu_import.sh WHEEL TARGET (--help)" >&2; exit 2; }
wheel=$(realpath "$1") target=$2
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
[ "$target" = aarch64-unknown-linux-gnu ] ||
  { echo "qemu_import.sh: only aarch64-unknown-linux-gnu is tested under qemu, not $target" >&2; exit 2; }
case $wheel in
  *-cp39-abi3-manylinux_*_aarch64.whl) ;;
  *) echo "qemu_import.sh: $wheel is not an aarch64 abi3 wheel" >&2; exit 1 ;;
esac
model=${DBRT_MODEL:-$root/models/aegis-nli-xsmall-int8.dbrt}
cli=$root/target/release/dbrt
rows=${DBRT_QEMU_ROWS:-8}

# What this machine must have; said all at once, with where it comes from.
cross=/usr/aarch64-linux-gnu/lib
missing=()
command -v qemu-aarch64-static >/dev/null || missing+=("qemu-aarch64-static (Debian package qemu-user-static)")
[ -e "$cross/ld-linux-aarch64.so.1" ] || missing+=("$cross (Debian package libc6-dev-arm64-cross)")
for tool in apt-get dpkg-deb python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -x "$cli" ] || missing+=("$cli (cargo build --release -p dbrt-cli)")
[ -f "$model" ] || missing+=("$model (DBRT_DTYPE=int8 scripts/fetch-model.sh $model)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "qemu_import.sh: missing (.ci/run installs the Debian packages):" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi

# Debian 12's CPython 3.11 for arm64 and what its interpreter and the modules used here link
# (the C library itself comes from the cross C library above). apt-get download resolves no
# dependencies: the list is complete for `import numpy, dbrt, json`.
cache=$root/.cache/python-aarch64
debs=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libexpat1 zlib1g libffi8)
numpy=2.2.6
if [ ! -f "$cache/debs/complete" ]; then
  # A private apt state whose only architecture is arm64, over the machine's own sources list.
  apt_dir=$(mktemp -d)
  trap 'rm -rf "$apt_dir"' EXIT
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$cache/debs"
  : >"$apt_dir/status"
  apt_opts=(-q -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
    -o "Dir::Cache=$apt_dir/cache" -o APT::Architecture=arm64 -o APT::Architectures::=arm64
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  if ! apt-get "${apt_opts[@]}" update >"$apt_dir/log" 2>&1 ||
    ! (cd "$cache/debs" && apt-get "${apt_opts[@]}" download "${debs[@]/%/:arm64}") >>"$apt_dir/log" 2>&1; then
    cat "$apt_dir/log" >&2
    echo "qemu_import.sh: could not download Debian's arm64 packages ${debs[*]}" >&2
    exit 1
  fi
  printf '%s\n' "${debs[@]}" >"$cache/debs/complete"
fi
if ! ls "$cache"/numpy-$numpy-cp311-*aarch64*.whl >/dev/null 2>&1; then
  python3 -m pip download -q --disable-pip-version-check --only-binary=:all: --no-deps \
    --platform manylinux_2_17_aarch64 --python-version 3.11 "numpy==$numpy" -d "$cache" >&2
fi

# The sysroot qemu's -L points at: the unpacked packages, with the cross C library where
# Debian's dynamic loader looks (/lib/aarch64-linux-gnu). The site directory: the two wheels
# unzipped (a wheel is a zip; nothing in these two needs an installer).
work=$root/target/python/$target
rm -rf "$work"
sysroot=$work/sysroot site=$work/site
mkdir -p "$sysroot/lib/aarch64-linux-gnu" "$site"
for deb in "$cache"/debs/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
for lib in "$cross"/*.so*; do ln -sfn "$lib" "$sysroot/lib/aarch64-linux-gnu/"; done
ln -sfn aarch64-linux-gnu/ld-linux-aarch64.so.1 "$sysroot/lib/ld-linux-aarch64.so.1"
python3 -m zipfile -e "$cache"/numpy-$numpy-cp311-*aarch64*.whl "$site"
python3 -m zipfile -e "$wheel" "$site"

# The pairs, text only (eval would run a row's own input_ids): the shortest of the real RTE
# pairs, as emulation is slow (~0.07 s of CPU per token for the scalar tier). Then the host's
# results on them: the scalar tier and the best tier this CPU runs.
python3 - "$root/tests/fixtures/real/rte_dev.goldens.jsonl" "$rows" >"$work/pairs.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
for r in sorted(rows, key=lambda r: (len(r["input_ids"]), r["id"]))[: int(sys.argv[2])]:
    print(json.dumps({"id": r["id"], "premise": r["premise"], "hypothesis": r["hypothesis"]}))
PY
DBRT_FORCE_ISA=scalar "$cli" eval --model "$model" --data "$work/pairs.jsonl" \
  --out "$work/host-scalar.jsonl" >"$work/host-scalar.log" 2>&1
env -u DBRT_FORCE_ISA "$cli" eval --model "$model" --data "$work/pairs.jsonl" \
  --out "$work/host-best.jsonl" >"$work/host-best.log" 2>&1

start=$SECONDS
qemu-aarch64-static -cpu max -L "$sysroot" "$sysroot/usr/bin/python3.11" -I - \
  "$site" "$model" "$work/host-scalar.jsonl" "$work/host-best.jsonl" <<'PY'
import json, os, platform, sys
site, model_path, host_scalar, host_best = sys.argv[1:5]
sys.path.insert(0, site)
import numpy as np
import dbrt

def fail(what):
    sys.exit(f"qemu_import.sh: {what}")

def bits(a):
    return np.asarray(a, dtype=np.float32).tobytes()

def differing(got, want):  # "pair 3 (id 140): [...] here, [...] on the host", for each
    return "; ".join(f"pair {i} (id {r['id']}): {g.tolist()} here, {w.tolist()} on the host"
                     for i, (g, w, r) in enumerate(zip(got, want, scalar_rows))
                     if bits(g) != bits(w))

if platform.machine() != "aarch64" or not dbrt._dbrt.__file__.startswith(site):
    fail(f"not the aarch64 wheel: {platform.machine()}, {dbrt._dbrt.__file__}")
model = dbrt.Model(model_path)
labels = model.labels
scalar_rows = [json.loads(line) for line in open(host_scalar)]
best_rows = [json.loads(line) for line in open(host_best)]
pairs = [(r["premise"], r["hypothesis"]) for r in scalar_rows]

# The scalar tier is the same code on both machines: the host's logits, bit for bit.
got = model.session(isa="scalar").classify_batch(pairs, logits=True)
want = np.array([r["logits"] for r in scalar_rows], dtype=np.float32)
if got.dtype != np.float32 or got.shape != want.shape or bits(got) != bits(want):
    fail(f"scalar logits differ: {differing(got, want)}")

# The best tier here (qemu's -cpu max: neon-i8mm) against the host's best tier, bit for bit:
# every tier computes the scalar tier's bits (README: integer sums are exact, every float step
# runs in one order, fused multiply-adds where every tier has one), so the probabilities (and
# the softmax that makes them) are the host's too.
best = model.session()
if best.isa != dbrt.available_isas()[-1]:
    fail(f"the default session runs {best.isa}, not the best of {dbrt.available_isas()}")
expected = os.environ.get("DBRT_EXPECT_ISA_AARCH64", "")  # as .ci/run sets it for the Rust tests
absent = [isa for isa in expected.split(",") if isa and isa not in dbrt.available_isas()]
if absent:
    fail(f"tiers {absent} (DBRT_EXPECT_ISA_AARCH64) are not among {dbrt.available_isas()}")
got = best.classify_batch(pairs)
want = np.array([[r["probabilities"][l] for l in labels] for r in best_rows], dtype=np.float32)
if got.dtype != np.float32 or got.shape != want.shape or bits(got) != bits(want):
    fail(f"{best.isa} probabilities differ: {differing(got, want)}")
# The dict API on one pair: the same numbers.
one = best.classify(*pairs[0])
if bits([one[l] for l in labels]) != bits(got[0]):
    fail(f"classify gave {one}, classify_batch {got[0].tolist()}")
print(f"qemu_import.sh: ok: Python {platform.python_version()} {platform.machine()}, "
      f"numpy {np.__version__}, dbrt {dbrt.__version__}, {model.weight_type} model; "
      f"{len(pairs)} real pairs: scalar logits and {best.isa} probabilities bit-identical "
      f"to the host's (tiers here: {', '.join(dbrt.available_isas())})")
PY
echo "qemu_import.sh: the emulated run took $((SECONDS - start)) s" >&2
