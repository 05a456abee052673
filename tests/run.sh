#!/usr/bin/env bash
# The test runner behind `make test`: runs every suite, prints each result
# line, and ends with "N passed, N failed, N skipped". Exit 1 on any failure.
# FAIL_FAST=1 stops after the first suite with a failure (the mutation check:
# one failure is enough to call a mutation caught).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
export BUILD PYTHON SHARED=${SHARED:-../shared}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

suite() { # name, command...
  local name=$1; shift
  echo "== $name"
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "FAIL suite.$name: exited with status $rc" | tee -a "$log"
  fi
  if [ "${FAIL_FAST:-0}" = 1 ] && grep -q '^FAIL ' "$log"; then
    summary
  fi
}

summary() { # prints the totals and exits with the verdict
  local passed failed skipped
  passed=$(grep -c '^PASS ' "$log")
  failed=$(grep -c '^FAIL ' "$log")
  skipped=$(grep -c '^SKIP ' "$log")
  echo
  grep '^FAIL ' "$log" | sed 's/^/  /'
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
  exit
}

suite unit "$BUILD/test_unit" tests/models/austen-tiny-sin.gguf
for name in gguf tokenizer bpe numerics formats threads cli install verify convert python hooks concepts; do
  suite "$name" "$PYTHON" "tests/test_$name.py" "$@"
done
suite errors "$PYTHON" tests/test_errors.py
suite step "$PYTHON" tests/test_step.py
suite explore "$PYTHON" tests/test_explore.py
suite hostile "$PYTHON" tests/test_hostile.py
suite writers "$PYTHON" tests/test_writers.py
suite experiments "$PYTHON" tests/test_experiments.py
for extra in tests/suites/*.sh; do
  [ -e "$extra" ] || continue
  suite "$(basename "$extra" .sh)" bash "$extra"
done

summary
