#!/usr/bin/env bash
# Regenerates the golden files in tests/golden/ from the independent numpy
# reference (tools/golden.py). Run through `make golden`; review the diff.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
BUILD=${BUILD:-build}
out=tests/golden
mkdir -p "$out"

gold() { # model, prompt, name
  "$PY" tools/golden.py "$1" --prompt "$2" -n 24 --out "$out/$3.tlg"
}

# llama family: stories260K, converted from ../shared by the project's converter
gold "$BUILD/stories260K.gguf" "Once upon a time, there was a little" stories260K
# gpt2 family, learned positions: a small random-weight model (tests/models)
gold tests/models/gpt2-learned-tiny.gguf "It is a truth universally acknowledged" gpt2-learned-tiny
# gpt2 family, sinusoidal positions: the trained Austen test model
gold tests/models/austen-tiny-sin.gguf "She was not a woman of many words, but" austen-tiny-sin
# a Q8_0 model: the tiny sinusoidal model converted by `tinyllm quantize` (the
# test rebuilds it; quantize is deterministic), with tolerances derived for
# its quantized activations (format version 2)
"$BUILD/tinyllm" quantize tests/models/austen-tiny-sin.gguf "$BUILD/austen-tiny-sin-q8_0.gguf" q8_0 >&2
"$PY" tools/golden.py "$BUILD/austen-tiny-sin-q8_0.gguf" --prompt "She was not a woman of many words, but" -n 24 \
    --tolerances --out "$out/austen-tiny-sin-q8_0.tlg"
# the default model
if [ -f models/austen.gguf ]; then
  gold models/austen.gguf "It is a truth universally acknowledged, that" austen
fi
