#!/usr/bin/env bash
# Builds the Python package's abi3 wheel with maturin, installs it into a fresh virtual
# environment, and runs its tests (pytest, bindings/python/tests) against the real int8 model,
# the CLI and the C library (run scripts/fetch-model.sh first).
#   bindings/python/build.sh [-- PYTEST-ARGS] wheel + tests (what scripts/test.sh runs), with
#                                            Ray Data for the bulk-scoring example's tests
#   bindings/python/build.sh --no-ray        wheel + tests, without installing Ray (its tests skip)
#   bindings/python/build.sh --wheel-only    the wheel alone, into target/python/wheels
#   bindings/python/build.sh --target aarch64-unknown-linux-gnu
#                                            the aarch64 wheel (cross-built) and, under
#                                            qemu-aarch64-static, its import and a
#                                            classification (tests/qemu_import.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
here=bindings/python
out=$root/target/python
target=""
wheel_only=0
ray=1
while [ $# -gt 0 ]; do
  case $1 in
    --wheel-only) wheel_only=1 ;;
    --no-ray) ray=0 ;;
    --target) target=$2; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# The tools, pinned, in a virtual environment of their own (pip's cache makes later runs fast).
maturin_version=1.16.0
tools=$out/tools
if [ "$("$tools/bin/maturin" --version 2>/dev/null)" != "maturin $maturin_version" ]; then
  rm -rf "$tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check "maturin==$maturin_version"
fi

wheels=$out/wheels${target:+-$target}
rm -rf "$wheels"
cargo build --quiet --release -p dbrt-cli -p dbrt-ffi
"$tools/bin/maturin" build --quiet --release --manifest-path "$here/Cargo.toml" -o "$wheels" \
  ${target:+--target "$target"} >&2
wheel=$(ls "$wheels"/dbrt-*.whl)
case $wheel in
  *-cp39-abi3-*) ;;
  *) echo "build.sh: $wheel is not an abi3 (cp39-abi3) wheel" >&2; exit 1 ;;
esac
echo "build.sh: built $wheel" >&2
[ "$wheel_only" = 1 ] && exit 0
if [ -n "$target" ]; then
  exec "$here/tests/qemu_import.sh" "$wheel" "$target"
fi

# A fresh environment: the wheel and what its tests need, nothing from the source tree.
venv=$out/venv
rm -rf "$venv"
python3 -m venv "$venv"
extra=()
[ "$ray" = 1 ] && extra+=("ray[data]==2.60.0")   # takes 25 s and 630 MB
"$venv/bin/pip" install --quiet --disable-pip-version-check "$wheel" numpy==2.2.6 pytest==8.4.2 \
  ${extra[@]+"${extra[@]}"}
DBRT_MODEL=${DBRT_MODEL:-$root/models/aegis-nli-xsmall-int8.dbrt} \
DBRT_F32_MODEL=${DBRT_F32_MODEL:-$root/models/aegis-nli-xsmall.dbrt} \
DBRT_CLI=$root/target/release/dbrt DBRT_C_LIBRARY=$root/target/release/libdbrt.so \
DBRT_FIXTURES=$root/tests/fixtures DBRT_RAY_EXAMPLE=$root/examples/python/ray_score.py \
DBRT_REQUIRE_RAY=$ray \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$here/tests" "$here/tests" "$@"
