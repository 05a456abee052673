#!/usr/bin/env bash
# Reproduces the project's own models from Debian packages alone:
#   1. the Austen corpus (scripts/prepare_corpus.py, from r-cran-janeaustenr),
#   2. a tiny sinusoidal-position gpt2 model for tests (a few minutes),
#   3. the default model, models/austen.gguf (about 80 minutes on 2 cores).
# Output lands in build/train/; the last step copies the shipped files.
# Usage: scripts/train_default_model.sh [tiny|default|all]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
what=${1:-all}
scripts/setup.sh --train
[ -f build/corpus/train.txt ] || "$PY" scripts/prepare_corpus.py build/corpus
mkdir -p build/train build/tok

if [ "$what" = tiny ] || [ "$what" = all ]; then
  "$PY" scripts/train_model.py --corpus build/corpus --tokenizer build/tok/austen512 --vocab 512 \
    --dim 64 --layers 2 --heads 4 --ctx 128 --positions sinusoidal --dropout 0.0 \
    --batch 16 --steps 600 --warmup 50 --lr 2e-3 --eval-every 100 --dtype f32 \
    --name tinyllm-austen-tiny-sin --excerpt tests/data/austen_heldout_excerpt.txt \
    --out build/train/austen-tiny-sin
  mkdir -p tests/models
  cp build/train/austen-tiny-sin.gguf tests/models/
  cp build/train/austen-tiny-sin.log.json tests/models/
fi

if [ "$what" = default ] || [ "$what" = all ]; then
  "$PY" scripts/train_model.py --corpus build/corpus --tokenizer build/tok/austen4096 --vocab 4096 \
    --dim 256 --layers 6 --heads 8 --ctx 256 --positions learned --dropout 0.1 \
    --batch 8 --steps 2200 --warmup 200 --lr 1e-3 --eval-every 200 --dtype f16 \
    --name tinyllm-austen --excerpt tests/data/austen_heldout_excerpt.txt \
    --out build/train/austen
  cp build/train/austen.gguf build/train/austen.log.json build/train/austen.loss.png models/
fi
