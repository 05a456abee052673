#!/usr/bin/env bash
# One benchmark run on the machine at hand (`make bench`):
#   1. the machine's limits (build/bench_limits: sgemm GFLOP/s, read GB/s),
#      measured before and again after the models (the report takes the
#      higher of the two, so a slow moment of the host cannot inflate ratios),
#   2. `tinyllm bench` on synthetic models at realistic shapes (written to
#      build/bench/ by tools/make_synthetic.py, never committed) and on the
#      small real models,
#   3. one table (scripts/bench_report.py): pp tok/s and % of the compute
#      bound, tg tok/s and % of the bandwidth bound, peak RSS.
# Models named *-f16 are the same shapes stored as F16 and run with
# --keep-f16 (the optional faster decode format).
# Environment: MODELS="llama-15m llama-42m ..." to choose, REPS=5, THREADS=1,2.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
BUILD=${BUILD:-build}
REPS=${REPS:-5}
THREADS=${THREADS:-1,2}
MODELS=${MODELS:-llama-15m llama-42m llama-110m gpt2-small llama-42m-f16 llama-110m-f16}
out=$BUILD/bench
mkdir -p "$out"

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), OpenBLAS $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || echo '?') ($(grep -o 'CORE=[A-Za-z0-9]*' /usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h 2>/dev/null || true) $("$PY" -c 'import ctypes;l=ctypes.CDLL("libopenblas.so.0");l.openblas_get_corename.restype=ctypes.c_char_p;print("core", l.openblas_get_corename().decode())' 2>/dev/null || true))" >&2
"$BUILD/bench_limits" "$(nproc)" > "$out/limits.json"

results=()
for name in $MODELS; do
  model=$out/$name.gguf
  preset=${name%-f16} extra=()
  if [ "$preset" != "$name" ]; then extra=(--keep-f16); fi
  [ -f "$model" ] || "$PY" tools/make_synthetic.py "$model" --preset "$preset" ${extra:+--dtype f16}
  "$BUILD/tinyllm" bench -m "$model" -p 128,512 -n 128 -t "$THREADS" -r "$REPS" -o json "${extra[@]}" > "$out/$name.json"
  results+=("$out/$name.json")
done
for small in "$BUILD/stories260K.gguf" models/austen.gguf models/austen.gguf:f16; do
  file=${small%:f16} extra=() name=$(basename "${small%:f16}" .gguf)
  if [ "$file" != "$small" ]; then extra=(--keep-f16) name=$name-f16; fi
  [ -f "$file" ] || continue
  "$BUILD/tinyllm" bench -m "$file" -p 128 -n 128 -t "$THREADS" -r "$REPS" -o json "${extra[@]}" > "$out/$name.json"
  results+=("$out/$name.json")
done
"$BUILD/bench_limits" "$(nproc)" > "$out/limits-after.json"
"$PY" scripts/bench_report.py "$out/limits.json,$out/limits-after.json" "${results[@]}"
