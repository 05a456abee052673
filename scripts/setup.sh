#!/usr/bin/env bash
# Installs tinyllm's Debian dependencies that are missing, and nothing else.
# Usage: scripts/setup.sh [--test|--train|--dev]
#   --test adds PyTorch (the converter tests write real torch.save checkpoints);
#   --train adds PyTorch, matplotlib, R's janeaustenr; --dev adds the test set,
#   clang, libFuzzer, valgrind
set -euo pipefail

want=(build-essential pkg-config libopenblas-dev libsentencepiece-dev sentencepiece
      python3 python3-numpy python3-sentencepiece libpng-dev libcairo2-dev libedit-dev fonts-dejavu-core)
case "${1:-}" in
  --train) want+=(python3-torch python3-matplotlib r-cran-janeaustenr r-base-core) ;;
  --test) want+=(python3-torch) ;;
  --dev) want+=(python3-torch clang libclang-rt-14-dev valgrind) ;;  # the suite, sanitizers, fuzzing, memcheck
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
