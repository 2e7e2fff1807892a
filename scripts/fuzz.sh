#!/usr/bin/env bash
# Builds the fuzz targets of fuzz/ (libFuzzer through the libfuzzer-sys crate, coverage
# instrumentation by rustc's sanitizer-coverage pass: the stable toolchain is enough), then runs
# each target for a bounded time starting from the committed corpus (tests/corpus/). Any crash,
# panic, timeout or runaway allocation fails the run and prints where the reproducer is.
#
#   scripts/fuzz.sh                 # every target, DBRT_FUZZ_SECONDS (default 20) each
#   scripts/fuzz.sh open_model c_api
#   scripts/fuzz.sh --build-only
#
# Environment: DBRT_FUZZ_SECONDS, DBRT_FUZZ_SEED (fixed -seed; default: random),
# DBRT_FUZZ_RSS_MB (default 2048), DBRT_FUZZ_MALLOC_MB (largest single allocation, default 1024),
# DBRT_FUZZ_ARGS (more libFuzzer flags). Findings go to target/fuzz-findings/<target>/.
# See fuzz/README.md for turning a finding into a corpus entry.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

all=(open_model open_bytes tokenizer c_api convert_config convert_safetensors convert_tokenizer
  convert_spm convert_pickle convert_onnx manifest)
build_only=0
targets=()
for a in "$@"; do
  case "$a" in
    --build-only) build_only=1 ;;
    *) targets+=("$a") ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

host=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR="$root/target/fuzz"
# What cargo fuzz passes, less the sanitizer (AddressSanitizer needs nightly; the code under
# test is safe Rust except the kernels, which the main test suite runs under ASan through C).
# --target keeps these flags off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
start=$(date +%s)
cargo build --release --locked --manifest-path fuzz/Cargo.toml --target "$host" \
  $(printf -- '--bin %s ' "${targets[@]}")
echo "fuzz: targets built in $(($(date +%s) - start)) s"
[ "$build_only" = 0 ] || exit 0

bin="$CARGO_TARGET_DIR/$host/release"
seconds=${DBRT_FUZZ_SECONDS:-20}
work="$root/target/fuzz-corpus"
findings="$root/target/fuzz-findings"
corpus="$root/tests/corpus"

# Seeds per target, from the committed corpus (libFuzzer takes directories).
seeds() {
  local t=$1 d="$work/seeds-$1"
  rm -rf "$d"
  mkdir -p "$d"
  case "$t" in
    open_bytes) cp "$corpus"/model/* "$d"/ 2>/dev/null || true ;;
    tokenizer) cp "$corpus"/text/* "$d"/ 2>/dev/null || true ;;
    convert_config | convert_safetensors | convert_tokenizer)
      local f
      f=$(case "$t" in convert_config) echo config.json ;; convert_safetensors) echo model.safetensors ;;
        *) echo tokenizer.json ;; esac)
      # The valid file first: a seed that crashes is dropped, and the others are findings.
      case "$t" in
        convert_config) cp tests/fixtures/tiny/v3-style/config.json "$d/valid" ;;
        convert_safetensors) cp tests/fixtures/tiny/v3-style/model.safetensors "$d/valid" ;;
        *) cp "$corpus/tiny-tokenizer.json" "$d/valid" ;;
      esac
      for e in "$corpus"/convert/*/; do
        [ -f "$e$f" ] && cp "$e$f" "$d/$(basename "$e")"
      done
      ;;
  esac
  # Findings and seeds kept for this target in the target's own input format.
  [ -d "$corpus/fuzz/$t" ] && cp "$corpus/fuzz/$t"/* "$d"/ 2>/dev/null || true
  echo "$d"
}

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "$findings/$t"
  s=$(seeds "$t")
  max_len=4096
  case "$t" in convert_safetensors | convert_pickle | open_bytes | convert_tokenizer) max_len=1100000 ;; esac
  log="$findings/$t/log.txt"
  echo "fuzz: $t for ${seconds} s"
  set +e
  # -malloc_limit_mb is read by the targets' allocator (fuzz/src/lib.rs), libFuzzer's own needs
  # a sanitizer. -timeout: one input taking longer is a hang.
  "$bin/$t" "$work/$t" "$s" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb="${DBRT_FUZZ_RSS_MB:-2048}" -malloc_limit_mb="${DBRT_FUZZ_MALLOC_MB:-1024}" \
    -max_len="$max_len" -artifact_prefix="$findings/$t/" -print_final_stats=1 \
    ${DBRT_FUZZ_SEED:+-seed=$DBRT_FUZZ_SEED} ${DBRT_FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  set -e
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" |
    sed "s/^/fuzz: $t /" || true
  if [ "$rc" != 0 ]; then
    echo "fuzz: $t FAILED (exit $rc); what happened (all of it in $log):" >&2
    grep -E -A2 'panicked at|memory allocation of|overflowed its stack|ERROR: libFuzzer|Test unit written' \
      "$log" | grep -v '^stack backtrace' | head -20 >&2 || true
    ls "$findings/$t"/crash-* "$findings/$t"/leak-* "$findings/$t"/timeout-* "$findings/$t"/oom-* \
      2>/dev/null | sed 's/^/fuzz: reproducer: /' >&2 || true
    failed+=("$t")
  fi
done
rm -rf /dev/shm/dbrt-fuzz-* 2>/dev/null || true
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]} (reproduce: $bin/<target> <file>; see fuzz/README.md)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no finding"
