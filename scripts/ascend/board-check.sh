#!/usr/bin/env bash
# On an Ascend board with CANN installed: exports the encoder for ATC (if not done), compiles
# it for the board's SoC (if not done), runs the real fixture pairs through dbrt with the
# encoder on the NPU (backend ascend, no CPU fallback) and on the CPU, and prints their
# agreement and the latency per gear. See --help.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

usage() {
    cat <<'EOF'
usage: scripts/ascend/board-check.sh --soc_version V [options]

  --soc_version V      the board's SoC: Ascend310B1 (Atlas 200I DK A2, Orange Pi AIpro),
                       Ascend310P3 (Atlas 300I Pro/Duo); `npu-smi info` shows the chip
  --model FILE         the .dbrt model (default models/aegis-nli-xsmall.dbrt, the f32 model the
                       fixtures' logits_fp32 come from)
  --dir DIR            the Ascend export (default artifacts/ascend-<model name>); exported
                       when DIR has no Ascend manifest, compiled when it has no offline model
                       for V
  --gears LIST         gears for a new export (default 64,128,256,512)
  --precision P        f32 or f16 weights in a new export (default f32)
  --precision_mode M   atc's --precision_mode for a new compile
  --ascendcl-lib PATH  libascendcl.so to load (default: $DBRT_ASCENDCL_LIB, else the loader's
                       search path, which CANN's set_env.sh sets)
  --data FILE          a goldens JSONL to run (repeatable; default tests/fixtures/real/*.goldens.jsonl)
  --out DIR            where outputs go (default target/ascend-board-check)
  --iters N            timed runs per gear in the latency table (default 50)
  --dry-run            print every command, run none
  -h, --help

Steps: dbrt-convert export-onnx MODEL -o DIR --target ascend; scripts/ascend/compile.sh DIR
--soc_version V; per data file `dbrt eval` with --backend ascend --artifacts DIR --fallback never
and with --backend cpu; then per gear `dbrt bench --seq G --threads 1` on each backend. Prints
argmax agreement and max |dlogit| of ascend against cpu (and eval's own lines against
logits_fp32), and p50/p90 latency per gear.

Needs: CANN (source its set_env.sh first: atc and libascendcl.so), python3, and dbrt and
dbrt-convert (on PATH, or DBRT / DBRT_CONVERT, or built in this repository's target/release).
EOF
}

die() {
    echo "board-check.sh: $*" >&2
    exit 2
}

# A tool: $2 if set, else $1 on PATH, else this repository's build.
tool() {
    if [ -n "$2" ]; then
        echo "$2"
    elif command -v "$1" >/dev/null 2>&1; then
        echo "$1"
    else
        echo "$repo/target/release/$1"
    fi
}

soc="" model="$repo/models/aegis-nli-xsmall.dbrt" dir="" gears="64,128,256,512" precision=f32
precision_mode="" lib="" out="$repo/target/ascend-board-check" iters=50 dry_run=0
data=()
value() { [ $# -ge 2 ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --soc_version | --soc-version) value "$@"; soc="$2"; shift 2 ;;
        --model) value "$@"; model="$2"; shift 2 ;;
        --dir) value "$@"; dir="$2"; shift 2 ;;
        --gears) value "$@"; gears="$2"; shift 2 ;;
        --precision) value "$@"; precision="$2"; shift 2 ;;
        --precision_mode | --precision-mode) value "$@"; precision_mode="$2"; shift 2 ;;
        --ascendcl-lib) value "$@"; lib="$2"; shift 2 ;;
        --data) value "$@"; data+=("$2"); shift 2 ;;
        --out) value "$@"; out="$2"; shift 2 ;;
        --iters) value "$@"; iters="$2"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ -n "$soc" ] || die "no --soc_version (e.g. Ascend310B1 or Ascend310P3; npu-smi info shows the chip)"
[[ "$soc" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "--soc_version '$soc': letters, digits, '.', '-', '_'"
[[ "$gears" =~ ^[0-9]+(,[0-9]+)+$ ]] || die "--gears '$gears': two or more lengths, comma separated"
[[ "$precision" =~ ^(f32|f16)$ ]] || die "--precision '$precision': f32 or f16"
[[ "$iters" =~ ^[1-9][0-9]*$ ]] || die "--iters '$iters': a positive number"
if [ -z "$dir" ]; then
    name="$(basename "$model")"
    dir="$repo/artifacts/ascend-${name%.dbrt}"
fi
if [ ${#data[@]} -eq 0 ]; then
    for f in "$repo"/tests/fixtures/real/*.goldens.jsonl; do
        [ -e "$f" ] && data+=("$f")
    done
fi
[ ${#data[@]} -gt 0 ] || die "no --data and no tests/fixtures/real/*.goldens.jsonl"
[ -z "$lib" ] || export DBRT_ASCENDCL_LIB="$lib"

dbrt="$(tool dbrt "${DBRT:-}")"
convert="$(tool dbrt-convert "${DBRT_CONVERT:-}")"
compile="$repo/scripts/ascend/compile.sh"

# Runs a command, or (--dry-run) prints it as a shell reads it back.
run() {
    if [ "$dry_run" = 1 ]; then
        local out="" w
        for w in "$@"; do
            if [[ "$w" =~ ^[A-Za-z0-9_./=,:+@%-]+$ ]]; then out+="$w "; else out+="'${w//\'/\'\\\'\'}' "; fi
        done
        echo "${out% }"
    else
        "$@"
    fi
}

if [ "$dry_run" = 0 ]; then
    [ -f "$model" ] || die "$model: not found (scripts/fetch-model.sh, or --model)"
    for t in "$dbrt" "$convert"; do
        [ -x "$t" ] || command -v "$t" >/dev/null 2>&1 || die "'$t' not found: cargo build --release, or set DBRT / DBRT_CONVERT"
    done
    command -v python3 >/dev/null 2>&1 || die "python3 not found (it compares the outputs)"
    mkdir -p "$out"
fi

manifest="$dir/manifest.txt"
echo "== 1. export ($dir)"
if [ -f "$manifest" ] && grep -qx 'target ascend' "$manifest"; then
    echo "an Ascend export is there: $(grep '^gears' "$manifest")"
else
    run "$convert" export-onnx "$model" -o "$dir" --target ascend --gears "$gears" --precision "$precision"
fi

echo "== 2. compile for $soc"
if [ -f "$manifest" ] && grep -Eq "^om [^ ]+ [0-9]+ [0-9a-f]{8} $soc\$" "$manifest"; then
    echo "compiled already: $(grep '^om ' "$manifest")"
else
    mode=()
    [ -z "$precision_mode" ] || mode=(--precision_mode "$precision_mode")
    run "$compile" "$dir" --soc_version "$soc" ${mode[@]+"${mode[@]}"}
fi

echo "== 3. the fixture pairs on the NPU and on the CPU"
for f in "${data[@]}"; do
    name="$(basename "$f" .goldens.jsonl)"
    for backend in ascend cpu; do
        echo "-- $name, backend $backend"
        offload=(--backend "$backend")
        [ "$backend" = cpu ] || offload+=(--artifacts "$dir" --fallback never)
        run "$dbrt" eval --model "$model" --data "$f" --out "$out/$name.$backend.jsonl" "${offload[@]}"
    done
    if [ "$dry_run" = 0 ]; then
        python3 - "$out/$name.ascend.jsonl" "$out/$name.cpu.jsonl" <<'EOF'
import json, sys
npu = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
assert len(npu) == len(cpu), f"{len(npu)} rows on ascend, {len(cpu)} on cpu"
argmax = lambda v: max(range(len(v)), key=v.__getitem__)
agree = sum(argmax(a["logits"]) == argmax(c["logits"]) for a, c in zip(npu, cpu))
worst = max(abs(x - y) for a, c in zip(npu, cpu) for x, y in zip(a["logits"], c["logits"]))
ran = sorted({str(a.get("backend")) for a in npu})
print(f"ascend vs cpu on {len(cpu)} rows: argmax agreement {agree}/{len(cpu)} "
      f"({100 * agree / max(len(cpu), 1):.2f}%), max |dlogit| {worst:.3e}; encoder ran on {ran}")
EOF
    fi
done

echo "== 4. latency per gear (one session, one thread, $iters runs each)"
seqs="$(grep '^gears' "$manifest" 2>/dev/null | cut -d' ' -f2- | tr ' ' ',' || true)"
seqs="${seqs:-$gears}"
for backend in ascend cpu; do
    offload=(--backend "$backend")
    [ "$backend" = cpu ] || offload+=(--artifacts "$dir" --fallback never)
    run "$dbrt" bench --model "$model" --seq "$seqs" --threads 1 --batch 1 --iters "$iters" "${offload[@]}"
done
