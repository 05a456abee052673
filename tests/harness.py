"""What the Python test suites share: paths, the sanitizer environment, the
test registry and the runner that prints one PASS/FAIL/SKIP line per test
(tests/run.sh counts them)."""
import os
import shutil
import sys
import tempfile
import traceback

# Under `make test-asan` this process preloads the sanitizer runtime without
# leak checks; the programs it starts get their own options and no preload.
if "TINYLLM_CHILD_ASAN_OPTIONS" in os.environ:
    os.environ["ASAN_OPTIONS"] = os.environ["TINYLLM_CHILD_ASAN_OPTIONS"]
    os.environ.pop("LD_PRELOAD", None)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "python"))  # the tinyllm module: the suite uses the bindings users get

BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(ROOT, "build")))
SHARED = os.path.abspath(os.environ.get("SHARED", os.path.join(ROOT, "..", "shared")))
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
TINYLLM = os.path.join(BUILD, "tinyllm")
STORIES = os.path.join(SHARED, "models", "stories260K")
SP512 = os.path.join(ROOT, "tests", "data", "austen512.model")
TINY_SIN = os.path.join(ROOT, "tests", "models", "austen-tiny-sin.gguf")


class Skip(Exception):
    """Raised by a test whose inputs are absent (e.g. ../shared)."""


class Suite:
    def __init__(self, prefix):
        self.prefix = prefix
        self.tests = []
        self.tmp = tempfile.mkdtemp(prefix=f"tinyllm-{prefix}-")

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def main(self):
        only = sys.argv[1:]
        for fn in self.tests:
            name = f"{self.prefix}.{fn.__name__}"
            if only and not any(o in name for o in only):
                continue
            try:
                fn()
                print(f"PASS {name}", flush=True)
            except Skip as e:
                print(f"SKIP {name}: {e}", flush=True)
            except Exception as e:  # noqa: BLE001 - a test failure of any kind
                tb = traceback.extract_tb(e.__traceback__)[-1]
                msg = str(e).replace("\n", " | ")[:400]
                print(f"FAIL {name}: {type(e).__name__} at line {tb.lineno}: {msg}", flush=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
