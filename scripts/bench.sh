#!/usr/bin/env bash
# One benchmark run on the machine at hand (`make bench`):
#   1. the machine's limits (build/bench_limits: sgemm GFLOP/s, read GB/s),
#      measured before and again after the models (the report takes the
#      higher of the two, so a slow moment of the host cannot inflate ratios),
#   2. `tinyllm bench` on synthetic models at realistic shapes (written to
#      build/bench/ by tools/make_synthetic.py, never committed) and on the
#      small real models,
#   3. one table (scripts/bench_report.py): pp tok/s and % of the compute
#      bound, tg tok/s and % of the bandwidth bound, peak RSS,
#   4. the byte-level BPE tokenizer's load time and encoding speed
#      (scripts/bench_tokenizer.py).
# Models named NAME-format in lower case (NAME-f16, NAME-q8_0, NAME-q4_0,
# any format `tinyllm quantize` writes) are NAME's F32 file converted by it
# (weights are used as stored: every format is a row); NAME-PRESET in upper
# case (NAME-Q4_K_M, NAME-Q3_K_S, NAME-Q2_K, ...: any of llama.cpp's presets)
# are written by ../shared/peers/llama.cpp/llama-quantize, as users get them
# (rows skipped when the peer is absent).
# When ../shared/peers/llama.cpp/llama-bench is there, it benchmarks the same
# files in the same run and the table gets a "vs llama.cpp" ratio per row.
# Each engine runs ROUNDS times per file, alternating with the other, and the
# table takes each one's best round: this host's read bandwidth moves by a
# third within minutes (34 to 59 GB/s on 2 threads in one session), so one
# back-to-back pair can compare a quiet moment with a busy one.
# Environment: MODELS="llama-15m llama-42m ..." to choose, REPS=3, ROUNDS=2,
# THREADS=1,2.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}
REPS=${REPS:-3}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-1,2}
MODELS=${MODELS:-llama-15m llama-42m llama-110m gpt2-small llama-42m-f16 llama-110m-f16 llama-42m-q8_0 llama-110m-q8_0 llama-42m-q4_0 llama-110m-q4_0 gpt2-small-q8_0 llama-42m-Q4_K_M llama-110m-Q4_K_M llama-42m-Q5_K_M llama-110m-Q5_K_M llama-42m-Q6_K llama-110m-Q6_K llama-1.1b-q4_0 llama-1.1b-Q4_K_M llama-1.1b-q8_0}
PEER=$SHARED/peers/llama.cpp/llama-bench
QUANTIZER=$SHARED/peers/llama.cpp/llama-quantize
out=$BUILD/bench
mkdir -p "$out"

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), OpenBLAS $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || echo '?') ($(grep -o 'CORE=[A-Za-z0-9]*' /usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h 2>/dev/null || true) $("$PY" -c 'import ctypes;l=ctypes.CDLL("libopenblas.so.0");l.openblas_get_corename.restype=ctypes.c_char_p;print("core", l.openblas_get_corename().decode())' 2>/dev/null || true))" >&2
"$BUILD/bench_limits" "$(nproc)" > "$out/limits.json"

results=()
for name in $MODELS; do
  model=$out/$name.gguf
  base=$name # a synthetic shape, or SHAPE-FORMAT: any tinyllm quantize format or llama-quantize preset
  for shape in gpt2-small llama-1.1b llama-110m llama-15m llama-42m; do
    case $name in "$shape"-*) base=$shape ;; esac
  done
  preset=${name#"$base"-}
  if [ ! -f "$model" ]; then
    [ -f "$out/$base.gguf" ] || "$PY" tools/make_synthetic.py "$out/$base.gguf" --preset "$base"
    if [ "$base" = "$name" ]; then
      :
    elif [ "${preset,,}" != "$preset" ]; then # upper case: a llama-quantize preset
      if [ ! -x "$QUANTIZER" ]; then echo "bench: $name skipped ($QUANTIZER is absent)" >&2; continue; fi
      LD_PRELOAD="$(dirname "$QUANTIZER")/libggml-load-all.so" LD_LIBRARY_PATH="$(dirname "$QUANTIZER")" \
        "$QUANTIZER" "$out/$base.gguf" "$model" "$preset" > /dev/null
    else
      "$BUILD/tinyllm" quantize "$out/$base.gguf" "$model" "$preset" >&2
    fi
  fi
  rounds=()
  for round in $(seq "$ROUNDS"); do
    "$BUILD/tinyllm" bench -m "$model" -p 128,512 -n 128 -t "$THREADS" -r "$REPS" -o json > "$out/$name.r$round.json"
    if [ -x "$PEER" ]; then
      "$PEER" -m "$model" -p 128,512 -n 128 -t "$THREADS" -r "$REPS" -o json 2>/dev/null \
        > "$out/$name.r$round.llama.json" || rm -f "$out/$name.r$round.llama.json"
    fi
    rounds+=("$out/$name.r$round.json")
  done
  results+=("$(IFS=,; echo "${rounds[*]}")")
done
for small in "$BUILD/stories260K.gguf" models/austen.gguf; do
  name=$(basename "$small" .gguf)
  [ -f "$small" ] || continue
  "$BUILD/tinyllm" bench -m "$small" -p 128 -n 128 -t "$THREADS" -r "$REPS" -o json > "$out/$name.json"
  results+=("$out/$name.json")
done
"$BUILD/bench_limits" "$(nproc)" > "$out/limits-after.json"
"$PY" scripts/bench_report.py "$out/limits.json,$out/limits-after.json" "${results[@]}"
"$PY" scripts/bench_tokenizer.py "$BUILD" "$out"
