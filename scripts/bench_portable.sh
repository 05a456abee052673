#!/usr/bin/env bash
# The portable build against the native one, in one run (`make bench-portable`):
# both CLIs bench the same models, alternating model by model and swapping
# which build goes first each round, so that a slow moment of the host hits
# both; the table gives each build's median over the rounds of its median
# tok/s, and the ratio portable / native.
# Environment: MODELS (bench.sh presets; *-f16 = F16 with --keep-f16),
# ROUNDS=4, REPS=3, THREADS=1,2.
set -euo pipefail
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
  order="build build-portable"
  [ $((round % 2)) -eq 0 ] && order="build-portable build"
  for name in $MODELS; do
    for build in $order; do
      extra=()
      [ "${name%-f16}" != "$name" ] && extra=(--keep-f16)
      f=$out/portable-$build-$name-$round.json
      "$build/tinyllm" bench -m "$out/$name.gguf" -p 128,512 -n 128 -t "$THREADS" -r "$REPS" -o json "${extra[@]}" > "$f"
      files+=("$f")
    done
  done
done
"$PY" - "${files[@]}" <<'PYEOF'
import json, os, sys
from collections import defaultdict
runs = defaultdict(list)
for f in sys.argv[1:]:
    base = os.path.basename(f)[len("portable-"):-len(".json")]
    build = "portable" if base.startswith("build-portable") else "native"
    name = base.split("-", 2 if build == "portable" else 1)[-1].rsplit("-", 1)[0]
    d = json.load(open(f))
    for r in d["results"]:
        key = (name, r["threads"], f'{r["test"]}{r["n_tokens"]}' if r["test"] in ("pp", "tg") else r["test"], d["kernels"])
        runs[key + (build,)].append(r["tok_s"])
best = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}  # median over the rounds
print("| model | threads | test | kernels | native tok/s | portable tok/s | portable / native |")
print("|---|---:|---|---|---:|---:|---:|")
ratios = []
for key in sorted({k[:-1] for k in best}):
    n, p = best[key + ("native",)], best[key + ("portable",)]
    ratios.append(p / n)
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {n:.1f} | {p:.1f} | {p / n:.3f} |")
print(f"\nportable / native: min {min(ratios):.3f}, median {sorted(ratios)[len(ratios) // 2]:.3f}, max {max(ratios):.3f}")
PYEOF
