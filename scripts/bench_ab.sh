#!/usr/bin/env bash
# Two builds of the CLI against each other, in one run:
#   scripts/bench_ab.sh NAME_A CLI_A NAME_B CLI_B
# (`make bench-portable`: native vs portable; before/after a change: build
# the old commit elsewhere and pass both CLIs). Both bench the same models,
# alternating model by model and swapping which goes first each round, so a
# slow moment of the host hits both; the table gives each build's median over
# the rounds of its median tok/s, and the ratio B / A.
# Environment: MODELS (bench.sh presets; *-f16 = F16 with --keep-f16),
# ROUNDS=4, REPS=3, THREADS=1,2.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 NAME_A CLI_A NAME_B CLI_B" >&2; exit 2; }
NAME_A=$1 CLI_A=$(realpath "$2") NAME_B=$3 CLI_B=$(realpath "$4")
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
ROUNDS=${ROUNDS:-4}
REPS=${REPS:-3}
THREADS=${THREADS:-1,2}
MODELS=${MODELS:-llama-15m llama-42m llama-42m-f16}
out=build/bench
mkdir -p "$out"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')" >&2
for name in $MODELS; do
  model=$out/$name.gguf preset=${name%-f16}
  [ -f "$model" ] || "$PY" tools/make_synthetic.py "$model" --preset "$preset" $([ "$preset" != "$name" ] && echo --dtype f16)
done
files=()
for round in $(seq "$ROUNDS"); do
  order="A B"
  [ $((round % 2)) -eq 0 ] && order="B A"
  for name in $MODELS; do
    for which in $order; do
      extra=()
      [ "${name%-f16}" != "$name" ] && extra=(--keep-f16)
      cli=$CLI_A
      [ "$which" = B ] && cli=$CLI_B
      f=$out/ab-$which-$name-$round.json
      "$cli" bench -m "$out/$name.gguf" -p 128,512 -n 128 -t "$THREADS" -r "$REPS" -o json "${extra[@]}" > "$f"
      files+=("$f")
    done
  done
done
"$PY" - "$NAME_A" "$NAME_B" "${files[@]}" <<'PYEOF'
import json, os, sys
from collections import defaultdict
name_a, name_b = sys.argv[1:3]
runs = defaultdict(list)
for f in sys.argv[3:]:
    base = os.path.basename(f)[len("ab-"):-len(".json")]  # ab-A-llama-15m-1
    build = name_a if base[0] == "A" else name_b
    name = base[2:].rsplit("-", 1)[0]
    d = json.load(open(f))
    for r in d["results"]:
        key = (name, r["threads"], f'{r["test"]}{r["n_tokens"]}' if r["test"] in ("pp", "tg") else r["test"], d["kernels"])
        runs[key + (build,)].append(r["tok_s"])
best = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}  # median over the rounds
print(f"| model | threads | test | kernels | {name_a} tok/s | {name_b} tok/s | {name_b} / {name_a} |")
print("|---|---:|---|---|---:|---:|---:|")
ratios = []
for key in sorted({k[:-1] for k in best}):
    a, b = best[key + (name_a,)], best[key + (name_b,)]
    ratios.append(b / a)
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {a:.1f} | {b:.1f} | {b / a:.3f} |")
print(f"\n{name_b} / {name_a}: min {min(ratios):.3f}, median {sorted(ratios)[len(ratios) // 2]:.3f}, max {max(ratios):.3f}")
PYEOF
