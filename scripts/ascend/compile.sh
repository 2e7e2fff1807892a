#!/usr/bin/env bash
# Compiles an Ascend export (dbrt-convert export-onnx MODEL -o DIR --target ascend) into an
# offline model with CANN's ATC, one gear per length the manifest lists, then records it in
# the manifest (dbrt-convert register-om). See --help.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/ascend/compile.sh DIR --soc_version V [--precision_mode M] [--dry-run] [ATC ARGS...]

  DIR                 an Ascend export: DIR/manifest.txt says 'target ascend' and lists the
                      gears, the hidden size and the graph (encoder-ascend.onnx)
  --soc_version V     the board's SoC: Ascend310B1 (Atlas 200I DK A2, Orange Pi AIpro),
                      Ascend310P3 (Atlas 300I Pro/Duo), ... (`npu-smi info` shows it)
  --precision_mode M  passed to atc (e.g. allow_fp32_to_fp16, force_fp32, must_keep_origin_dtype)
  --dry-run           print the commands, run nothing
  ATC ARGS            any other --option=value is passed to atc as it is (e.g. --log=info)

Runs, with the gears of the manifest (e.g. 64 128 256 512) and its hidden size H:
  atc --framework=5 --model=DIR/encoder-ascend.onnx --output=DIR/encoder --input_format=ND \
      --input_shape="hidden:1,-1,H;mask:1,-1" --dynamic_dims="64,64;128,128;256,256;512,512" \
      --soc_version=V
then finds the .om ATC wrote (DIR/encoder.om, or with a suffix such as _linux_aarch64) and
runs `dbrt-convert register-om DIR --om FILE --soc-version V`.

Environment: ATC (default: atc on PATH; CANN's set_env.sh puts it there), DBRT_CONVERT
(default: dbrt-convert on PATH, else this repository's target/release/dbrt-convert).
EOF
}

die() {
    echo "compile.sh: $*" >&2
    exit 2
}

dir="" soc="" precision_mode="" dry_run=0
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --soc_version | --soc-version) [ $# -ge 2 ] || die "$1 needs a value"; soc="$2"; shift 2 ;;
        --soc_version=* | --soc-version=*) soc="${1#*=}"; shift ;;
        --precision_mode | --precision-mode) [ $# -ge 2 ] || die "$1 needs a value"; precision_mode="$2"; shift 2 ;;
        --precision_mode=* | --precision-mode=*) precision_mode="${1#*=}"; shift ;;
        --dry-run) dry_run=1; shift ;;
        --framework* | --model* | --output* | --input_shape* | --input_format* | --dynamic_dims*)
            die "$1: set by this script from the manifest" ;;
        --*=*) extra+=("$1"); shift ;;
        -*) die "unknown option $1 (atc options are passed as --name=value; see --help)" ;;
        *) [ -z "$dir" ] || die "one DIR only (got '$dir' and '$1')"; dir="$1"; shift ;;
    esac
done
[ -n "$dir" ] || { usage >&2; die "no DIR"; }
[ -n "$soc" ] || die "no --soc_version (e.g. Ascend310B1 or Ascend310P3; npu-smi info shows the chip)"
[[ "$soc" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "--soc_version '$soc': letters, digits, '.', '-', '_'"
manifest="$dir/manifest.txt"
[ -f "$manifest" ] || die "$manifest: not found (export first: dbrt-convert export-onnx MODEL -o $dir --target ascend)"

# The manifest's fields this needs.
target="" hidden="" gears="" graph=""
while read -r key rest; do
    case "$key" in
        target) target="$rest" ;;
        hidden_size) hidden="$rest" ;;
        gears) gears="$rest" ;;
        graph) graph="$(echo "$rest" | awk '{print $2}')" ;;
    esac
done <"$manifest"
[ "$target" = ascend ] || die "$manifest: not an Ascend export (no 'target ascend'); export with --target ascend"
[[ "$hidden" =~ ^[0-9]+$ ]] || die "$manifest: no hidden_size"
[ -n "$gears" ] || die "$manifest: no gears"
[ -n "$graph" ] && [ -f "$dir/$graph" ] || die "$manifest: graph '$graph' not found in $dir"

dynamic_dims=""
for g in $gears; do
    dynamic_dims+="${dynamic_dims:+;}$g,$g"
done

atc="${ATC:-atc}"
if [ -n "${DBRT_CONVERT:-}" ]; then
    convert="$DBRT_CONVERT"
elif command -v dbrt-convert >/dev/null 2>&1; then
    convert=dbrt-convert
else
    convert="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release/dbrt-convert"
fi

args=(--framework=5 "--model=$dir/$graph" "--output=$dir/encoder" --input_format=ND
      "--input_shape=hidden:1,-1,$hidden;mask:1,-1" "--dynamic_dims=$dynamic_dims"
      "--soc_version=$soc")
[ -z "$precision_mode" ] || args+=("--precision_mode=$precision_mode")
args+=(${extra[@]+"${extra[@]}"})

# A command as one line a shell reads back: words with shell characters single-quoted.
show() {
    local out="" w
    for w in "$@"; do
        if [[ "$w" =~ ^[A-Za-z0-9_./=,:+@%-]+$ ]]; then out+="$w "; else out+="'${w//\'/\'\\\'\'}' "; fi
    done
    echo "${out% }"
}

if [ "$dry_run" = 1 ]; then
    show "$atc" "${args[@]}"
    show "$convert" register-om "$dir" --om "$dir/encoder.om" --soc-version "$soc"
    exit 0
fi

command -v "$atc" >/dev/null 2>&1 || die "'$atc' not found: source CANN's set_env.sh (e.g. /usr/local/Ascend/ascend-toolkit/set_env.sh) or set ATC"
[ -x "$convert" ] || command -v "$convert" >/dev/null 2>&1 ||
    die "'$convert' not found: build it (cargo build --release -p dbrt-convert) or set DBRT_CONVERT"

# What ATC writes is told apart from older files by a marker made just before it runs.
marker="$(mktemp "$dir/.compile-started.XXXXXX")"
trap 'rm -f "$marker"' EXIT
echo "compile.sh: $(show "$atc" "${args[@]}")" >&2
start=$SECONDS
"$atc" "${args[@]}" || die "atc failed (exit $?); its log says why (add --log=info for more)"
echo "compile.sh: atc took $((SECONDS - start)) s" >&2

mapfile -t made < <(find "$dir" -maxdepth 1 -type f -name 'encoder*.om' -newer "$marker" | sort)
case "${#made[@]}" in
    0) die "atc succeeded but wrote no $dir/encoder*.om" ;;
    1) om="${made[0]}" ;;
    *)
        if [ -f "$dir/encoder.om" ] && printf '%s\n' "${made[@]}" | grep -qx "$dir/encoder.om"; then
            om="$dir/encoder.om"
        else
            die "atc wrote several offline models (${made[*]}); register one: $convert register-om $dir --om FILE --soc-version $soc"
        fi
        ;;
esac
"$convert" register-om "$dir" --om "$om" --soc-version "$soc"
echo "compile.sh: $om registered in $manifest" >&2
