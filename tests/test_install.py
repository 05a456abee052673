#!/usr/bin/python3
"""The installed library: make install, pkg-config, SONAME, exported symbols,
the ctypes bindings' struct layouts.

Prints one PASS/FAIL/SKIP line per test. Usage: test_install.py [NAME_SUBSTRING ...]
"""
import json
import os

from harness import BUILD, ROOT, Suite
from fixtures import LIB, gpt2_learned, run
import tinyllm as tl

SUITE = Suite("install")
test = SUITE.test
TMP = SUITE.tmp


@test
def install_and_build_example_against_it():
    prefix = os.path.join(TMP, "prefix")
    r = run(["make", "-s", "install", f"PREFIX={prefix}", f"BUILD={BUILD}"], cwd=ROOT)
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "tinyllm"], env=env)
    assert flags.returncode == 0, flags.stderr
    exe = os.path.join(TMP, "example")
    src = os.path.join(ROOT, "tests", "example", "example.c")
    extra = os.environ.get("TINYLLM_EXAMPLE_CFLAGS", "").split()
    r = run(["cc", "-std=c11", "-Wall", "-Wextra", *extra, "-o", exe, src, *flags.stdout.split()], env=env)
    assert r.returncode == 0, r.stderr
    # runs without LD_LIBRARY_PATH: the .pc's rpath finds the installed library by its SONAME
    clean_env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    r = run([exe, gpt2_learned(), "Hello"], env=clean_env)
    assert r.returncode == 0 and r.stdout.startswith("Hello"), (r.stdout, r.stderr)
    lib = os.path.join(prefix, "lib")
    assert os.readlink(os.path.join(lib, "libtinyllm.so")) == "libtinyllm.so.0", os.listdir(lib)
    soname = run(["readelf", "-d", os.path.join(lib, "libtinyllm.so")])
    assert "Library soname: [libtinyllm.so.0]" in soname.stdout, soname.stdout


@test
def python_bindings_match_the_header_layout():
    """Every struct the ctypes bindings mirror has the C compiler's size and
    field offsets (build/tests/struct_layout), so a header change that the
    bindings miss fails here instead of corrupting memory."""
    r = run([os.path.join(BUILD, "tests", "struct_layout")])
    assert r.returncode == 0, r.stderr
    layout = json.loads(r.stdout)
    mirrors = {"tinyllm_error": tl.Error, "tinyllm_model_params": tl.ModelParams,
               "tinyllm_context_params": tl.ContextParams, "tinyllm_model_info": tl.ModelInfo,
               "tinyllm_detok": tl.Detok, "tinyllm_tap": tl.Tap, "tinyllm_sampler_params": tl.SamplerParams,
               "tinyllm_tensor_info": tl.TensorInfo}
    for name, cls in mirrors.items():
        c = layout[name]
        assert tl.C.sizeof(cls) == c["size"], (name, tl.C.sizeof(cls), c["size"])
        py_fields = [f[0] for f in cls._fields_]
        assert py_fields == list(c["fields"]), (name, py_fields, list(c["fields"]))
        for field, offset in c["fields"].items():
            assert getattr(cls, field).offset == offset, (name, field, getattr(cls, field).offset, offset)


@test
def shared_library_exports_the_api_only():
    """nm -D lists tinyllm_* symbols only (no internals, no C++ template
    instances); the version is the header's."""
    r = run(["nm", "-D", "--defined-only", os.path.join(BUILD, "libtinyllm.so")])
    assert r.returncode == 0, r.stderr
    names = [ln.split()[-1] for ln in r.stdout.splitlines() if ln.strip()]
    assert names and all(n.startswith("tinyllm_") for n in names), [n for n in names if not n.startswith("tinyllm_")]
    with open(os.path.join(ROOT, "include", "tinyllm.h")) as f:
        header = f.read()
    import re
    declared = set(re.findall(r"TINYLLM_API [^;]*?\b(tinyllm_\w+)\(", header))
    assert declared == set(names), (declared ^ set(names))
    LIB.tinyllm_version.restype = tl.C.c_char_p
    parts = [re.search(rf"#define TINYLLM_VERSION_{p} (\d+)", header).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    assert LIB.tinyllm_version().decode() == ".".join(parts)


if __name__ == "__main__":
    SUITE.main()
