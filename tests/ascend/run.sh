#!/usr/bin/env bash
# Builds the stand-in AscendCL library and its self-test, packs the tiny dynamic graph with the
# fake ATC, and runs the self-test: on the host, or with --target aarch64-unknown-linux-gnu under
# qemu-aarch64-static with the aarch64 onnxruntime ($DBRT_ONNXRUNTIME_LIB_AARCH64, default
# .cache/ort-aarch64/libonnxruntime.so.1.32.0). Needs DBRT_ONNXRUNTIME_LIB on the host
# (eval "$(scripts/npu-env.sh)"). With --valgrind (host only) the self-test runs under valgrind;
# with --sanitize (host only) library and self-test are built with AddressSanitizer and UBSan.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/ascend
target="" valgrind=0 sanitize=0
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=${2:?--target needs a triple}; shift 2 ;;
    --valgrind) valgrind=1; shift ;;
    --sanitize) sanitize=1; shift ;;
    *) echo "tests/ascend/run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
lib=$("$here/build.sh" ${target:+--target "$target"})
out=$(dirname "$lib")
cflags=(-std=c11 -O1 -g -Wall -Wextra -Werror)
if [ "$sanitize" = 1 ]; then
  [ -z "$target" ] || { echo "tests/ascend/run.sh: --sanitize is for the host" >&2; exit 2; }
  cflags+=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  out=$out/sanitize
  mkdir -p "$out"
  src=$here/standin
  "${CC:-cc}" "${cflags[@]}" -fPIC -shared -I "$src" "$src"/*.c -ldl -lpthread -o "$out/libascendcl.so"
fi
if [ -n "$target" ]; then
  cc=${CC_aarch64_unknown_linux_gnu:-aarch64-linux-gnu-gcc}
  # onnxruntime's cpuinfo reads /proc/cpuinfo and crashes on the host's x86 one; qemu looks up
  # absolute paths under its -L prefix first, so a sysroot with an aarch64 one (and one CPU)
  # fixes that (benches/arm-mca.sh does the same).
  sysroot=$root/target/ascend-standin/$target/sysroot
  mkdir -p "$sysroot/proc" "$sysroot/sys/devices/system/cpu"
  ln -sfn /usr/aarch64-linux-gnu/lib "$sysroot/lib"
  printf 'processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 asimddp sha512 asimdfhm dit uscat ilrcpc flagm ssbs sb dcpodp flagm2 frint i8mm bf16\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n' >"$sysroot/proc/cpuinfo"
  for f in possible present online; do echo 0 >"$sysroot/sys/devices/system/cpu/$f"; done
  run=(qemu-aarch64-static -cpu max -L "$sysroot")
  ort=${DBRT_ONNXRUNTIME_LIB_AARCH64:-$root/.cache/ort-aarch64/libonnxruntime.so.1.32.0}
else
  cc=${CC:-cc}
  run=()
  ort=${DBRT_ONNXRUNTIME_LIB:?set DBRT_ONNXRUNTIME_LIB (eval \"\$(scripts/npu-env.sh)\")}
  [ "$valgrind" = 1 ] && run=(valgrind --quiet --error-exitcode=3 --leak-check=full
    --errors-for-leak-kinds=definite --show-leak-kinds=definite --suppressions="$here/valgrind.supp")
fi
"$cc" "${cflags[@]}" -I "$here/standin" -I "$here" \
  "$here"/selftest.c "$here"/selftest_misuse.c "$here"/selftest_inject.c \
  -L"$out" -lascendcl -Wl,-rpath,'$ORIGIN' -lpthread -lm -o "$out/selftest"

# The tiny graph, kept as base64 text (no model file is committed).
base64 -d "$here/tiny-encoder.onnx.b64" >"$out/tiny-encoder.onnx"

# The fake ATC: the tiny graph with three gears; then what ATC refuses is refused, by reason.
atc_args() { # the good arguments, with any NAME=VALUE given replacing its own
  local -A a=([framework]=5 [model]=$out/tiny-encoder.onnx [output]=$out/tiny [input_format]=ND
    [input_shape]="hidden:1,-1,8;mask:1,-1" [dynamic_dims]="4,4;8,8;16,16" [soc_version]=Ascend310B1)
  local kv; for kv in "$@"; do a[${kv%%=*}]=${kv#*=}; done
  for k in "${!a[@]}"; do [ -n "${a[$k]}" ] && printf -- '--%s=%s\n' "$k" "${a[$k]}"; done
}
mapfile -t args < <(atc_args)
"$here/atc-standin" "${args[@]}" >/dev/null
refuses() { # REASON NAME=VALUE...
  local reason=$1; shift
  mapfile -t args < <(atc_args output="$out/refused" "$@")
  if "$here/atc-standin" "${args[@]}" 2>"$out/atc.err" >/dev/null || [ -e "$out/refused.om" ] ||
    ! grep -q -- "$reason" "$out/atc.err"; then
    echo "tests/ascend/run.sh: atc-standin $* was not refused for '$reason':" >&2
    cat "$out/atc.err" >&2
    exit 1
  fi
}
refuses "one per -1" dynamic_dims="4;8,8"
refuses "in \[2, 100\]" dynamic_dims="4,4"
refuses "not what this stand-in takes" framework=3
refuses "needs --input_format=ND" input_format=NCHW
refuses "has no input of this name" input_shape="x:1,-1,8;mask:1,-1"
refuses "has rank 3" input_shape="hidden:1,-1;mask:1,-1" dynamic_dims="4,4;8,8"
refuses "is required" soc_version=
refuses "not an ONNX model" model="$here/atc-standin"

log=$out/selftest.log
rm -f "$log"
DBRT_ONNXRUNTIME_LIB=$ort DBRT_ACL_STANDIN_LOG=$log "${run[@]}" "$out/selftest" "$out/tiny.om"
# The log: calls with their results, violations, injected failures (the last part's, after reset).
for line in '^aclmdlExecute(.*) = 0$' '^VIOLATION aclrtResetDevice' '^INJECTED aclmdlExecute (207001)$'; do
  grep -q "$line" "$log" || { echo "tests/ascend/run.sh: no '$line' in $log" >&2; exit 1; }
done
DBRT_ONNXRUNTIME_LIB=/nonexistent/libonnxruntime.so "${run[@]}" "$out/selftest" "$out/tiny.om" --no-ort
echo "tests/ascend/run.sh: ok (${target:-host})"
