#!/usr/bin/env bash
# The C tests of libdbrt, against include/dbrt.h and the static library (one also against the
# shared one), on the real int8 model:
#   classify_pairs  the real NLI fixture pairs; logits must equal the Rust CLI's bit for bit
#   threads         one model, four threads with a session each; identical results
#   misuse          every misuse returns its status
#   lifecycle       everything created and freed, under AddressSanitizer and valgrind
#   log_callback    dbrt's log messages through the host's callback: level, text, threshold,
#                   unset (also under AddressSanitizer)
#   offload         backend options, statuses and a recorded fallback; with onnxruntime
#                   (DBRT_ONNXRUNTIME_LIB) the ort-cpu backend, with its QNN provider
#                   (DBRT_QNN_EP_LIB) the qnn backend on Qualcomm's HTP emulator, on graphs
#                   exported from the real f32 model, a few pairs each, and the ascend
#                   backend on the stand-in AscendCL (DBRT_ASCENDCL_STANDIN) (host only)
# The shared library is installed with scripts/install.sh into a prefix under target/c-tests and
# linked through its dbrt.pc (pkg-config), which checks its SONAME (libdbrt.so.N) on the way.
# With DBRT_C_TARGET=aarch64-unknown-linux-gnu it cross-builds with aarch64-linux-gnu-gcc and
# runs them (and the CLI they are compared with) under qemu-aarch64-static, on fewer pairs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${DBRT_C_TARGET:-}
model=$root/models/aegis-nli-xsmall-int8.dbrt
DBRT_DTYPE=int8 scripts/fetch-model.sh "$model"

if [ -n "$target" ]; then
  cc=${CC_aarch64_unknown_linux_gnu:-aarch64-linux-gnu-gcc}
  run=(qemu-aarch64-static -cpu max -L /usr/aarch64-linux-gnu)
  libdir=$root/target/$target/release
  limit=${DBRT_C_PAIRS:-24}
  sanitize=0
else
  cc=${CC:-cc}
  run=()
  libdir=$root/target/release
  limit=${DBRT_C_PAIRS:-0}
  sanitize=1
fi
out=$root/target/c-tests/${target:-host}
mkdir -p "$out"

cargo build --quiet --release -p dbrt-ffi -p dbrt-cli ${target:+--target "$target"}
cflags=(-std=c11 -D_POSIX_C_SOURCE=200809L -O2 -g -Wall -Wextra -Werror -I include -I tests/c)
libs=(-lpthread -ldl -lm)
for t in classify_pairs threads misuse lifecycle log_callback offload; do
  "$cc" "${cflags[@]}" "tests/c/$t.c" "$libdir/libdbrt.a" "${libs[@]}" -o "$out/$t"
done
# The shared library too: installed, and the threads test linked against libdbrt.so through
# pkg-config; it must load libdbrt.so.N by its SONAME.
prefix=$out/prefix
rm -rf "$prefix"
DBRT_TARGET=$target scripts/install.sh "$prefix" >/dev/null
pc=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs dbrt)
# shellcheck disable=SC2086 # pkg-config's flags are words
"$cc" "${cflags[@]}" tests/c/threads.c $pc "${libs[@]}" -Wl,-rpath,"$prefix/lib" -o "$out/threads_shared"
abi=$(sed -n 's/^#define DBRT_API_VERSION \([0-9][0-9]*\)$/\1/p' include/dbrt.h)
readelf -d "$out/threads_shared" | grep -q "(NEEDED).*\[libdbrt.so.$abi\]" || {
  echo "tests/c/run.sh: threads_shared does not need libdbrt.so.$abi" >&2
  exit 1
}

python3 tests/c/pairs.py "$out/pairs" "$limit" tests/fixtures/real/mnli_dev_matched.goldens.jsonl tests/fixtures/real/rte_dev.goldens.jsonl
"${run[@]}" "$libdir/dbrt" eval --model "$model" --data "$out/pairs.jsonl" --out "$out/cli.jsonl" --retokenize >/dev/null
"${run[@]}" "$out/classify_pairs" "$model" "$out/pairs.tsv" "$out/c_logits.txt" 2
python3 tests/c/compare_logits.py "$out/c_logits.txt" "$out/cli.jsonl"

head -n 48 "$out/pairs.tsv" >"$out/pairs48.tsv"
"${run[@]}" "$out/threads" "$model" "$out/pairs48.tsv"
"${run[@]}" "$out/threads_shared" "$model" "$out/pairs48.tsv"
"${run[@]}" "$out/misuse" "$model"
"${run[@]}" "$out/lifecycle" "$model"
"${run[@]}" "$out/log_callback" "$model"
"${run[@]}" "$out/offload" "$model" "$out/pairs48.tsv"
if [ -z "$target" ]; then
  # The accelerator routes, on the f32 model (what the NPU's numbers are compared with).
  f32=$root/models/aegis-nli-xsmall.dbrt
  artifacts=$root/target/npu/aegis-nli-xsmall-f32
  if [ -n "${DBRT_ONNXRUNTIME_LIB:-}" ]; then
    cargo run --quiet --release -p dbrt-convert -- export-onnx "$f32" -o "$artifacts" --buckets 64,128
    "$out/offload" "$f32" "$out/pairs48.tsv" ort-cpu "$artifacts" 16
    if [ -n "${DBRT_ASCENDCL_STANDIN:-}" ]; then
      # The Ascend route through the C API, on the stand-in AscendCL (tests/ascend).
      ascend=$root/target/npu/aegis-nli-xsmall-f32-ascend
      cargo run --quiet --release -p dbrt-convert -- export-onnx "$f32" -o "$ascend" \
        --target ascend --gears 64,128 >/dev/null
      ATC=$root/tests/ascend/atc-standin "$root/scripts/ascend/compile.sh" "$ascend" \
        --soc_version Ascend310B1 >/dev/null
      DBRT_ASCENDCL_LIB=$DBRT_ASCENDCL_STANDIN "$out/offload" "$f32" "$out/pairs48.tsv" ascend "$ascend" 16
    fi
    if [ -n "${DBRT_QNN_EP_LIB:-}" ]; then
      "$out/offload" "$f32" "$out/pairs48.tsv" qnn "$artifacts" 8
    elif [ "${DBRT_REQUIRE_ONNXRUNTIME:-0}" = 1 ]; then
      echo "tests/c/run.sh: DBRT_REQUIRE_ONNXRUNTIME=1 but DBRT_QNN_EP_LIB is not set" >&2
      exit 1
    fi
  elif [ "${DBRT_REQUIRE_ONNXRUNTIME:-0}" = 1 ]; then
    echo "tests/c/run.sh: DBRT_REQUIRE_ONNXRUNTIME=1 but DBRT_ONNXRUNTIME_LIB is not set" >&2
    exit 1
  else
    echo "tests/c/run.sh: DBRT_ONNXRUNTIME_LIB is not set; the offload test ran without a backend" >&2
  fi
fi

if [ "$sanitize" = 1 ]; then
  for t in misuse lifecycle log_callback; do
    "$cc" "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer "tests/c/$t.c" \
      "$libdir/libdbrt.a" "${libs[@]}" -o "$out/${t}_asan"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1 "$out/${t}_asan" "$model"
  done
  if command -v valgrind >/dev/null; then
    for t in misuse lifecycle; do
      valgrind --quiet --error-exitcode=99 --suppressions=tests/c/valgrind.supp --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        "$out/$t" "$model"
    done
  else
    echo "tests/c/run.sh: valgrind is not installed; the AddressSanitizer runs stand" >&2
  fi
fi
echo "tests/c/run.sh: all C tests passed (${target:-host})"
