#!/usr/bin/env bash
# Builds the stand-in AscendCL library (tests/ascend/standin) and prints its path:
#   tests/ascend/build.sh [--target aarch64-unknown-linux-gnu]
#   -> target/ascend-standin/<triple>/libascendcl.so
# The compiler: $CC (host) or aarch64-linux-gnu-gcc ($CC_aarch64_unknown_linux_gnu) for aarch64.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=${2:?--target needs a triple}; shift 2 ;;
    --target=*) target=${1#--target=}; shift ;;
    *) echo "tests/ascend/build.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case "$target" in
  "") triple=$(cc -dumpmachine | sed 's/-linux-gnu$/-unknown-linux-gnu/'); cc=${CC:-cc} ;;
  aarch64-unknown-linux-gnu) triple=$target; cc=${CC_aarch64_unknown_linux_gnu:-aarch64-linux-gnu-gcc} ;;
  *) echo "tests/ascend/build.sh: unsupported target '$target'" >&2; exit 2 ;;
esac
src=$root/tests/ascend/standin
out=$root/target/ascend-standin/$triple
mkdir -p "$out"
"$cc" -std=c11 -O2 -g -Wall -Wextra -Werror -fPIC -shared \
  -I "$src" "$src"/*.c -Wl,-soname,libascendcl.so -Wl,--version-script="$src/exports.map" -Wl,--no-undefined -ldl -lpthread \
  -o "$out/libascendcl.so.tmp"
mv "$out/libascendcl.so.tmp" "$out/libascendcl.so"
echo "$out/libascendcl.so"
