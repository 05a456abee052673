#!/usr/bin/env bash
# End-to-end generate and verify under valgrind memcheck (make test-valgrind).
# Prints PASS/FAIL lines and the closing count like tests/run.sh.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-valgrind}
SHARED=${SHARED:-../shared}
PYTHON=${PYTHON:-/usr/bin/python3}
VG=${VG:-valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q}
pass=0 fail=0 skip=0
check() { # name, command...
  local name=$1; shift
  if out=$("$@" 2>&1 >/dev/null); then
    echo "PASS valgrind.$name"; pass=$((pass + 1))
  else
    echo "FAIL valgrind.$name: $(printf '%s' "$out" | tail -n 5 | tr '\n' ' ')"; fail=$((fail + 1))
  fi
}
check generate_tiny $VG "$BUILD/tinyllm" generate -m tests/models/austen-tiny-sin.gguf -p "She was" -n 24 --seed 1
check verify_gpt2_learned $VG "$BUILD/tinyllm" verify -m tests/models/gpt2-learned-tiny.gguf --golden tests/golden/gpt2-learned-tiny.tlg -q
check explore_tiny $VG "$BUILD/tinyllm" explore -m tests/models/austen-tiny-sin.gguf -p "She was" -n 8 -o "$BUILD/explore-valgrind.html"
check verify_tiny_sin $VG "$BUILD/tinyllm" verify -m tests/models/austen-tiny-sin.gguf --golden tests/golden/austen-tiny-sin.tlg -q
if [ -f "$SHARED/models/stories260K/stories260K.bin" ]; then
  mkdir -p "$BUILD"
  "$PYTHON" tools/convert_llama2c.py "$SHARED/models/stories260K/stories260K.bin" \
      "$SHARED/models/stories260K/tok512.model" "$BUILD/stories260K.gguf"
  check generate_stories260K $VG "$BUILD/tinyllm" generate -m "$BUILD/stories260K.gguf" -p "Once upon a time" -n 32 --temp 0
  check verify_stories260K $VG "$BUILD/tinyllm" verify -m "$BUILD/stories260K.gguf" --golden tests/golden/stories260K.tlg -q
else
  echo "SKIP valgrind.stories260K: $SHARED/models/stories260K is absent"; skip=$((skip + 1))
fi
if [ -f models/austen.gguf ] && [ -f tests/golden/austen.tlg ]; then
  check verify_default_model $VG "$BUILD/tinyllm" verify -m models/austen.gguf --golden tests/golden/austen.tlg -q
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
