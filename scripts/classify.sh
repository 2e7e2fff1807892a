#!/usr/bin/env bash
# The main job on a fresh machine: fetch and convert the default model if needed, then classify
# a premise / hypothesis pair.  Usage: scripts/classify.sh "premise" "hypothesis" [--json]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=$root/models/aegis-nli-xsmall.dbrt
"$root/scripts/fetch-model.sh" "$model"
premise=${1:-"A soccer game with multiple males playing."}
hypothesis=${2:-"Some men are playing a sport."}
shift $(( $# < 2 ? $# : 2 ))
exec cargo run --quiet --release -p dbrt-cli -- classify --model "$model" --premise "$premise" --hypothesis "$hypothesis" "$@"
