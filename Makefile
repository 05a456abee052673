SHELL := /bin/bash
# tinyllm — build, run, test.  `make run` and `make test` are the whole set-up:
# missing Debian packages are installed by scripts/setup.sh on first use.
# No built-in implicit rules: their "%: %.o" would try to remake the
# included dependency files (build/obj/*.d) through the kernel-set rule.
MAKEFLAGS += --no-builtin-rules
.SUFFIXES:
# the dependency files included below define rules: `make` alone builds `all`
.DEFAULT_GOAL := all

CC      ?= cc
CXX     ?= c++
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
# PORTABLE=1: a build that runs on any x86-64-v2 CPU (2009 on) and still
# uses AVX2 / AVX-512 kernels where the CPU has them (chosen at run time);
# it builds into build-portable/. The default is tuned for this machine.
ifeq ($(PORTABLE),1)
BUILD   ?= build-portable
OPT     ?= -O2 -march=x86-64-v2 -mtune=generic
else
BUILD   ?= build
OPT     ?= -O2 -march=native
endif
SHARED  ?= ../shared

WARN     = -Wall -Wextra
# the version lives in include/tinyllm.h only
VERSION_PART = $(shell sed -n 's/^\#define TINYLLM_VERSION_$(1) \([0-9]*\)$$/\1/p' include/tinyllm.h)
VERSION := $(call VERSION_PART,MAJOR).$(call VERSION_PART,MINOR).$(call VERSION_PART,PATCH)
SOMAJOR := $(call VERSION_PART,MAJOR)
# the library exports tinyllm_* only (TINYLLM_API, scripts/libtinyllm.map)
LIB_VIS  = -fvisibility=hidden
# pkg-config runs when a recipe runs (recursive '='), i.e. after `deps`
DEPS_CFLAGS = $(shell pkg-config --cflags openblas sentencepiece libpcre2-8)
DEPS_LIBS   = $(shell pkg-config --libs openblas libpcre2-8) $(shell pkg-config --libs-only-L sentencepiece) -lsentencepiece -lstdc++ -lm -lpthread
# the CLI alone draws pictures (Cairo, which writes PNG through libpng)
CLI_CFLAGS = $(shell pkg-config --cflags cairo libedit)
CLI_LIBS   = $(shell pkg-config --libs cairo libedit)
CFLAGS_ALL   = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fPIC -Iinclude -Isrc $(DEPS_CFLAGS) $(CFLAGS)
CXXFLAGS_ALL = -std=c++17 $(OPT) $(WARN) -fPIC -Iinclude -Isrc $(DEPS_CFLAGS) $(CXXFLAGS)

# The hot kernels (src/kernels_isa.c, src/dots_isa.c) are compiled once per instruction set,
# each with its own -march placed after OPT (the last -march wins), and one
# is picked at run time (src/kernels.c). Other CPUs get the scalar set only.
ifneq ($(filter x86_64%,$(shell $(CC) -dumpmachine)),)
KERNEL_ISAS = scalar avx2 avx512 avx512vnni avx512bf16
else
KERNEL_ISAS = scalar
CFLAGS += -DTINYLLM_SCALAR_ONLY
endif
ISA_FLAGS_avx2   = -march=x86-64-v3
ISA_FLAGS_avx512 = -march=x86-64-v4
ISA_FLAGS_avx512vnni = -march=x86-64-v4 -mavx512vnni
ISA_FLAGS_avx512bf16 = -march=x86-64-v4 -mavx512vnni -mavx512bf16
# the vector files (src/*_isa.c, written against src/isa.h), compiled once per
# vector set; the scalar set is the plain C of src/kernels_generic.c
ISA_SRC = kernels_isa dots_isa
VECTOR_ISAS = $(filter-out scalar,$(KERNEL_ISAS))
LIB_C   = $(filter-out $(ISA_SRC:%=src/%.c),$(wildcard src/*.c))
LIB_CXX = $(wildcard src/*.cpp)
ISA_OBJ = $(foreach f,$(ISA_SRC),$(VECTOR_ISAS:%=$(BUILD)/obj/$(f)-%.o))
LIB_OBJ = $(LIB_C:src/%.c=$(BUILD)/obj/%.o) $(LIB_CXX:src/%.cpp=$(BUILD)/obj/%.o) $(ISA_OBJ)
CLI_C   = $(wildcard tools/tinyllm/*.c)
# the explorer's page (HTML, CSS, JS) compiled into the CLI as strings
EXPLORE_ASSETS = tools/tinyllm/explore/page.html tools/tinyllm/explore/explore.css tools/tinyllm/explore/explore.js
CLI_OBJ = $(CLI_C:tools/tinyllm/%.c=$(BUILD)/obj/cli/%.o) $(BUILD)/obj/gen/explore_assets.o
TEST_C  = $(wildcard tests/unit/*.c)
TEST_OBJ = $(TEST_C:tests/unit/%.c=$(BUILD)/obj/test/%.o)
HEADERS = $(wildcard include/*.h src/*.h tools/tinyllm/*.h tests/unit/*.h)
# each object's header dependencies, written by the compiler (-MMD -MP)
DEPFLAGS = -MMD -MP
-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/*/*.d $(BUILD)/faults/*.d $(BUILD)/faults/*/*.d \
                    build-fuzz/obj/*.d build-fuzz/obj/*/*.d)

.SECONDARY:
.PHONY: bench-portable mutations all deps run test install uninstall clean golden help bench test-asan test-valgrind fuzz dev-deps
all: $(BUILD)/tinyllm $(BUILD)/libtinyllm.a $(BUILD)/libtinyllm.so

help:
	@echo "make run      build, then generate text from the default model"
	@echo "make test     build and run every test"
	@echo "make install  PREFIX=... installs the library, header, pkg-config file, CLI and Python module"

# Installs missing Debian packages (no-op when all are present).
deps: $(BUILD)/.deps
$(BUILD)/.deps: scripts/setup.sh
	@mkdir -p $(BUILD)
	@scripts/setup.sh
	@touch $@

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) $(LIB_VIS) -c $< -o $@

$(BUILD)/obj/%.o: src/%.cpp | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_ALL) $(DEPFLAGS) $(LIB_VIS) -c $< -o $@

# The vector files' loops start on a cache line: the hot integer GEMM's speed
# then no longer depends on where the rest of the build places it (an
# unrelated change elsewhere moved Q4_0 prefill by 3%).
ISA_ALIGN ?= -falign-loops=64

$(BUILD)/obj/kernels_isa-%.o: src/kernels_isa.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) $(LIB_VIS) $(ISA_FLAGS_$*) $(ISA_ALIGN) -DKERNEL_ISA=$* -c $< -o $@

$(BUILD)/obj/dots_isa-%.o: src/dots_isa.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) $(LIB_VIS) $(ISA_FLAGS_$*) $(ISA_ALIGN) -DKERNEL_ISA=$* -c $< -o $@

$(BUILD)/obj/cli/%.o: tools/tinyllm/%.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) $(CLI_CFLAGS) -c $< -o $@

$(BUILD)/gen/explore_assets.c: $(EXPLORE_ASSETS) scripts/embed_text.sh
	@mkdir -p $(dir $@)
	scripts/embed_text.sh $@ explore_page_html=tools/tinyllm/explore/page.html \
	    explore_css=tools/tinyllm/explore/explore.css explore_js=tools/tinyllm/explore/explore.js
$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/test/%.o: tests/unit/%.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -c $< -o $@

$(BUILD)/libtinyllm.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# libtinyllm.so.MAJOR.MINOR.PATCH with SONAME libtinyllm.so.MAJOR, and the
# usual symlinks (libtinyllm.so for linking, .so.MAJOR for running)
$(BUILD)/libtinyllm.so.$(VERSION): $(LIB_OBJ) scripts/libtinyllm.map
	$(CC) -shared -Wl,-soname,libtinyllm.so.$(SOMAJOR) -Wl,--version-script=scripts/libtinyllm.map -o $@ \
	    $(LIB_OBJ) $(DEPS_LIBS) $(LDFLAGS)
$(BUILD)/libtinyllm.so: $(BUILD)/libtinyllm.so.$(VERSION)
	ln -sf libtinyllm.so.$(VERSION) $(BUILD)/libtinyllm.so.$(SOMAJOR)
	ln -sf libtinyllm.so.$(SOMAJOR) $@

$(BUILD)/tinyllm: $(CLI_OBJ) $(BUILD)/libtinyllm.a
	$(CC) -o $@ $(CLI_OBJ) $(BUILD)/libtinyllm.a $(DEPS_LIBS) $(CLI_LIBS) $(LDFLAGS)

$(BUILD)/test_unit: $(TEST_OBJ) $(BUILD)/libtinyllm.a
	$(CC) -o $@ $(TEST_OBJ) $(BUILD)/libtinyllm.a $(DEPS_LIBS) $(LDFLAGS)

# A CLI with deliberate bugs behind TINYLLM_FAULT=... (tests of `verify` only).
FAULT_OBJ = $(LIB_C:src/%.c=$(BUILD)/faults/%.o) $(LIB_CXX:src/%.cpp=$(BUILD)/obj/%.o) $(ISA_OBJ) \
            $(CLI_C:tools/tinyllm/%.c=$(BUILD)/faults/cli/%.o) $(BUILD)/obj/gen/explore_assets.o
$(BUILD)/faults/%.o: src/%.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) $(LIB_VIS) -DTINYLLM_FAULT_INJECTION -c $< -o $@
$(BUILD)/faults/cli/%.o: tools/tinyllm/%.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) $(CLI_CFLAGS) -c $< -o $@
$(BUILD)/faults/tinyllm: $(FAULT_OBJ)
	$(CC) -o $@ $^ $(DEPS_LIBS) $(CLI_LIBS) $(LDFLAGS)

# measures this machine: always built for it
$(BUILD)/bench_limits: tools/bench_limits.c | $(BUILD)/.deps
	$(CC) $(CFLAGS_ALL) -march=native -o $@ $< $(DEPS_LIBS)

bench: $(BUILD)/tinyllm $(BUILD)/bench_limits
	PYTHON=$(PYTHON) BUILD=$(BUILD) SHARED=$(SHARED) scripts/bench.sh

# the portable build against the native one, in one run
bench-portable: build/tinyllm
	$(MAKE) PORTABLE=1 build-portable/tinyllm
	PYTHON=$(PYTHON) scripts/bench_ab.sh native build/tinyllm portable build-portable/tinyllm

$(BUILD)/tests/png_check: tests/tools/png_check.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $$(pkg-config --cflags libpng) -o $@ $< $$(pkg-config --libs libpng) $(LDFLAGS)

$(BUILD)/tests/struct_layout: tests/tools/struct_layout.c include/tinyllm.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $<

$(BUILD)/tests/gguf_dump: tests/tools/gguf_dump.c $(BUILD)/libtinyllm.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libtinyllm.a $(DEPS_LIBS) $(LDFLAGS)

# activation patching through the public C API (tests/test_hooks.py)
$(BUILD)/tests/hook_patch: tests/tools/hook_patch.c $(BUILD)/libtinyllm.a include/tinyllm.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libtinyllm.a $(DEPS_LIBS) $(LDFLAGS)

# --- the default model ------------------------------------------------------
# models/austen.gguf is the project's own model (scripts/train_default_model.sh);
# without it, stories260K from ../shared is converted and used.
ifneq ($(wildcard models/austen.gguf),)
DEFAULT_MODEL  ?= models/austen.gguf
DEFAULT_PROMPT ?= It is a truth universally acknowledged, that
else
DEFAULT_MODEL  ?= $(BUILD)/stories260K.gguf
DEFAULT_PROMPT ?= Once upon a time
endif

run: $(BUILD)/tinyllm $(DEFAULT_MODEL)
	$(BUILD)/tinyllm generate -m $(DEFAULT_MODEL) -p "$(DEFAULT_PROMPT)" -n 200 --temp 0.8 --seed 42

# stories260K converted from ../shared by the project's own converter
$(BUILD)/stories260K.gguf: tools/convert_llama2c.py tools/gguf_writer.py | $(BUILD)/.deps
	$(PYTHON) tools/convert_llama2c.py $(SHARED)/models/stories260K/stories260K.bin \
	    $(SHARED)/models/stories260K/tok512.model $@

# --- tests ------------------------------------------------------------------
test: $(BUILD)/tinyllm $(BUILD)/test_unit $(BUILD)/libtinyllm.so $(BUILD)/tests/gguf_dump $(BUILD)/tests/png_check \
      $(BUILD)/tests/struct_layout $(BUILD)/tests/hook_patch $(BUILD)/faults/tinyllm
	@scripts/setup.sh --test
	@PYTHON=$(PYTHON) SHARED=$(SHARED) BUILD=$(BUILD) tests/run.sh

# One-line bugs applied one at a time to a copy of the tree; each must turn
# `make test` red (tests/mutations.py). Slow: run after changing tolerances.
mutations:
	SHARED=$(SHARED) $(PYTHON) tests/mutations.py

# Goldens come from the numpy reference only. Regenerating is deliberate:
# run it after changing the reference or a test model, and review the diff.
golden: $(BUILD)/stories260K.gguf
	PYTHON=$(PYTHON) BUILD=$(BUILD) scripts/make_golden.sh

# --- sanitizers, valgrind, fuzzing ------------------------------------------
dev-deps:
	@scripts/setup.sh --dev

SAN = -fsanitize=address,undefined -fno-sanitize-recover=all
# The whole suite with AddressSanitizer + UndefinedBehaviorSanitizer (leak
# checking included for every C program; the Python test process preloads
# the runtime and leaves leak checking to the programs it starts).
test-asan: dev-deps
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer $(SAN)" LDFLAGS="$(SAN)" \
	    build-asan/tinyllm build-asan/test_unit build-asan/libtinyllm.so build-asan/tests/gguf_dump build-asan/tests/png_check \
	    build-asan/tests/struct_layout build-asan/tests/hook_patch build-asan/faults/tinyllm
	ASAN_OPTIONS=detect_leaks=0 TINYLLM_CHILD_ASAN_OPTIONS=detect_leaks=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 UBSAN_OPTIONS=print_stacktrace=1 \
	TINYLLM_EXAMPLE_CFLAGS="$(SAN)" LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	PYTHON=$(PYTHON) SHARED=$(SHARED) BUILD=build-asan tests/run.sh

# End-to-end generate and verify under valgrind memcheck: zero errors and
# zero definitely-lost bytes. AVX2 code only (valgrind has no AVX-512).
VG = valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite -q
test-valgrind: dev-deps
	$(MAKE) BUILD=build-valgrind OPT="-O1 -g -march=x86-64-v3" build-valgrind/tinyllm
	TINYLLM_ISA=avx2 OPENBLAS_CORETYPE=Haswell VG="$(VG)" BUILD=build-valgrind SHARED=$(SHARED) PYTHON=$(PYTHON) tests/valgrind.sh

# libFuzzer targets (clang): the model loader and the tokenizer wrapper.
# FUZZ_SECONDS per target; crashes land in build-fuzz/ as crash-*; copy them
# into tests/fuzz/corpus/ as regression seeds.
FUZZ_SECONDS ?= 60
FUZZ_CC  = clang
FUZZ_CXX = clang++
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -Iinclude -Isrc $(DEPS_CFLAGS)
FUZZ_LIB_OBJ = $(LIB_C:src/%.c=build-fuzz/obj/%.o) $(LIB_CXX:src/%.cpp=build-fuzz/obj/%.o) \
               $(foreach f,$(ISA_SRC),$(VECTOR_ISAS:%=build-fuzz/obj/$(f)-%.o))
build-fuzz/obj/kernels_isa-%.o: src/kernels_isa.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(FUZZ_FLAGS) $(DEPFLAGS) $(ISA_FLAGS_$*) -DKERNEL_ISA=$* -c $< -o $@
build-fuzz/obj/dots_isa-%.o: src/dots_isa.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(FUZZ_FLAGS) $(DEPFLAGS) $(ISA_FLAGS_$*) -DKERNEL_ISA=$* -c $< -o $@
build-fuzz/obj/%.o: src/%.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(FUZZ_FLAGS) $(DEPFLAGS) -c $< -o $@
build-fuzz/obj/%.o: src/%.cpp | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) -std=c++17 $(FUZZ_FLAGS) $(DEPFLAGS) -c $< -o $@
# the golden reader is the CLI's (tools/tinyllm/golden.c)
FUZZ_CLI_OBJ = build-fuzz/obj/cli/golden.o build-fuzz/obj/cli/common.o
build-fuzz/obj/cli/%.o: tools/tinyllm/%.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(FUZZ_FLAGS) $(DEPFLAGS) -Itools/tinyllm -c $< -o $@
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJ) $(FUZZ_CLI_OBJ)
	$(FUZZ_CXX) -x c -std=c11 -D_GNU_SOURCE $(FUZZ_FLAGS) -Itools/tinyllm -c $< -o $@.o
	$(FUZZ_CXX) -fsanitize=fuzzer,address,undefined -o $@ $@.o $(FUZZ_LIB_OBJ) $(FUZZ_CLI_OBJ) $(DEPS_LIBS)
# byte-level: the loader and the tokenizer; structure-aware: one field of a
# generated valid model at a time (fields); the golden reader; the sampler.
# A crash, a leak or a hang (-timeout) fails the run.
FUZZ_TARGETS = gguf tokenizer fields golden sampler
fuzz: dev-deps $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus-$$t; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/crash-$$t- build-fuzz/corpus-$$t tests/fuzz/corpus/$$t 2>&1 \
	    | grep -E "^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|INFO: seed)" ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# --- install ----------------------------------------------------------------
# Programs built with `pkg-config --cflags --libs tinyllm` run without
# LD_LIBRARY_PATH: the .pc carries an rpath to $(PREFIX)/lib, and for a
# system-wide install (no DESTDIR, as root) ldconfig refreshes the cache.
# `make install PORTABLE=1` installs the build that runs on any x86-64-v2 CPU.
# The Python module goes where Debian's python3 looks for PREFIX's packages
# (/usr/local/lib/python3.X/dist-packages); another PREFIX needs PYTHONPATH
# set to that directory. _install.py records where the library is.
PYVER = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PYDIR ?= $(PREFIX)/lib/python$(PYVER)/dist-packages
install: $(BUILD)/libtinyllm.a $(BUILD)/libtinyllm.so $(BUILD)/tinyllm
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(BUILD)/libtinyllm.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libtinyllm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libtinyllm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libtinyllm.so.$(SOMAJOR)
	ln -sf libtinyllm.so.$(SOMAJOR) $(DESTDIR)$(PREFIX)/lib/libtinyllm.so
	install -m 644 include/tinyllm.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(BUILD)/tinyllm $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' scripts/tinyllm.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tinyllm.pc
	install -d $(DESTDIR)$(PYDIR)/tinyllm
	install -m 644 python/tinyllm/__init__.py $(DESTDIR)$(PYDIR)/tinyllm/
	echo 'LIBDIR = "$(PREFIX)/lib"  # written by make install' > $(DESTDIR)$(PYDIR)/tinyllm/_install.py
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libtinyllm.a $(DESTDIR)$(PREFIX)/lib/libtinyllm.so* \
	      $(DESTDIR)$(PREFIX)/include/tinyllm.h $(DESTDIR)$(PREFIX)/bin/tinyllm \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/tinyllm.pc
	rm -rf $(DESTDIR)$(PYDIR)/tinyllm

# every build tree (the default, portable, generic, sanitizer, valgrind and fuzzing ones)
clean:
	rm -rf $(BUILD) build build-portable build-generic build-asan build-valgrind build-fuzz
