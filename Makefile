# GPU sharing by time-slice tokens: libgemhook.so.1, gem-schd, gem-pmgr.
# Needs the CUDA toolkit's headers only (CUDA_PATH); never a GPU, never links libcuda.
#   make                 build everything into $(BUILD)
#   make test            unit + integration tests against the stand-in libcuda and NVML (no GPU)
#   make test SANITIZE=1 the same under AddressSanitizer + UndefinedBehaviorSanitizer (build-san/)
#   make bench-config    resource-config.txt parse times, 10^4..10^6 clients, before/after issue 6
#   make bench-evenness  gem-schd's policy on a simulated clock: a 0.3/0.7 split per second (issue 19)
#   make bench-alloc     cost of GPU_MEM accounting per 2 MiB alloc+free, with the plain call beside it
#   make soak            bounded soak of the real daemons (SOAK_SECONDS, default 600; docs/hardening.md)
#   make demo            two clients at shares 0.3 / 0.7 (real GPU if present, else the stand-in)
#   make install PREFIX=/opt/gemini   (bin/: daemons, launchers, gemctl and their gemtools/; lib/: the hook)
#   make device-plugin   build/bin/gem-device-plugin, the kubelet device plugin (device-plugin/device-plugin.mk)
#   make fuzz / fuzz-ci    libFuzzer targets / a minute of each from the seeds (tests/fuzz/fuzz.mk)
#   make clean

CUDA_PATH ?= /usr/local/cuda
PREFIX ?= /usr/local
CXX ?= g++
NVCC ?= $(CUDA_PATH)/bin/nvcc
# Debian python3: the tests use Debian packages (python3-jsonpatch, python3-kubernetes).
PYTHON ?= /usr/bin/python3

ifeq ($(SANITIZE),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT := -O1
else
BUILD ?= build
SANFLAGS :=
OPT := -O2
endif

WARN := -Wall -Wextra -Wno-missing-field-initializers
CXXFLAGS ?= $(OPT) -g
ALL_CXXFLAGS := -std=c++17 $(CXXFLAGS) $(WARN) $(SANFLAGS) -fPIC -MMD -MP -Iinclude -I$(CUDA_PATH)/include
LDLIBS := -lpthread -ldl
# Debian's split cpp-httplib: compile with the flags the library was built with (OpenSSL, zlib, brotli).
# Without pkg-config: the flags of Debian 12's cpp-httplib.pc. Used by the daemons' /metrics
# endpoint (metrics/) and by the webhook.
HTTPLIB_CFLAGS := $(shell pkg-config --cflags cpp-httplib 2>/dev/null || \
  echo -DCPPHTTPLIB_OPENSSL_SUPPORT -DCPPHTTPLIB_ZLIB_SUPPORT -DCPPHTTPLIB_BROTLI_SUPPORT)
HTTPLIB_LIBS := -lcpp-httplib -lssl -lcrypto -lpthread

COMMON_SRCS := $(wildcard common/*.cpp)
HOOK_SRCS := $(wildcard hook/*.cpp)
# Parts of the hook the unit tests link: pure units, capture_state (its driver pointers null) and the
# connection to the pod manager (sockets only).
HOOK_PURE_SRCS := hook/mem_ledger.cpp hook/capture_rule.cpp hook/capture_state.cpp hook/token_machine.cpp \
  hook/pmgr_client.cpp hook/pmgr_conn.cpp hook/settings_parse.cpp hook/lease_sync.cpp \
  hook/managed_ranges.cpp hook/pool_registry.cpp hook/mem_sizing.cpp hook/um_policy.cpp hook/mem_figures.cpp
HOOK_PURE_SRCS += hook/mem_session.cpp
SCHD_SRCS := $(filter-out scheduler/main.cpp,$(wildcard scheduler/*.cpp))
PMGR_SRCS := $(filter-out pod-manager/main.cpp,$(wildcard pod-manager/*.cpp))
# The daemons' HTTP /metrics endpoint (cpp-httplib); never linked into the hook.
METRICS_SRCS := $(wildcard metrics/*.cpp)
UNIT_SRCS := $(wildcard tests/unit/*.cpp)
INTEG_SRCS := $(wildcard tests/integration/*.cpp)
FAKE_LIB_SRCS := $(wildcard tests/fake-cuda/libcuda/*.cpp)
FAKE_APP_SRCS := $(wildcard tests/fake-cuda/app/*.cpp)
FAKE_NVML_SRCS := $(wildcard tests/fake-cuda/libnvml/*.cpp)
FAKE_MEM_APP_SRCS := $(wildcard tests/fake-cuda/memapp/*.cpp)
FAKE_CAPTURE_APP_SRCS := $(wildcard tests/fake-cuda/captureapp/*.cpp)

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))

HOOK_LIB := $(BUILD)/lib/libgemhook.so.1
SCHD_BIN := $(BUILD)/bin/gem-schd
PMGR_BIN := $(BUILD)/bin/gem-pmgr
COMMON_A := $(BUILD)/obj/libgemcommon.a
SCHD_A := $(BUILD)/obj/libgemschd.a
PMGR_A := $(BUILD)/obj/libgempmgr.a
METRICS_A := $(BUILD)/obj/libgemmetrics.a
FAKE_LIB := $(BUILD)/fake-cuda/libcuda.so.1
FAKE_APP := $(BUILD)/fake-cuda/fake-cuda-app
FAKE_NVML := $(BUILD)/fake-cuda/libnvidia-ml.so.1
FAKE_MEM_APP := $(BUILD)/fake-cuda/fake-mem-app
FAKE_CAPTURE_APP := $(BUILD)/fake-cuda/fake-capture-app
# Everything the tests run against instead of a GPU.
FAKE_ALL := $(FAKE_LIB) $(FAKE_APP) $(FAKE_NVML) $(FAKE_MEM_APP) $(FAKE_CAPTURE_APP)
UNIT_BIN := $(BUILD)/tests/unit-tests
INTEG_BIN := $(BUILD)/tests/integration-tests

.PHONY: all test unit-test integration-test tools-test demo install clean bench bench-config bench-evenness bench-alloc soak
all: $(HOOK_LIB) $(SCHD_BIN) $(PMGR_BIN) $(BUILD)/lib/.runtime-libs

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) -c $< -o $@

# The hook: hidden visibility, only the interposed symbols exported (hook/gemhook.map), its own
# static libstdc++ so nothing clashes with the host program's.
$(BUILD)/obj/hook/%.o: hook/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) -fvisibility=hidden -fvisibility-inlines-hidden -c $< -o $@

# CPython ends a thread that takes the GIL while the interpreter finalises with pthread_exit. The
# cache emptier's thread (hook/cache_emptier.h) may be that thread: the forced unwinding must meet
# no frame with a C++ personality routine, which the hook's static libstdc++/libgcc cannot serve to
# the system's unwinder (it aborts). Its two files are built without exceptions: no frame of theirs
# has one.
$(call obj,hook/cache_emptier.cpp hook/torch_cache.cpp): ALL_CXXFLAGS += -fno-exceptions

# gem_build_info's revision (include/gem/build_info.h): only common/build_info.cpp sees it, and a
# stamp rewritten only when the revision changes rebuilds that one file.
GEM_REVISION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(BUILD)/gen/revision: FORCE
	@mkdir -p $(dir $@)
	@echo '$(GEM_REVISION)' | cmp -s - $@ || echo '$(GEM_REVISION)' > $@
$(call obj,common/build_info.cpp): ALL_CXXFLAGS += -DGEM_REVISION='"$(GEM_REVISION)"'
$(call obj,common/build_info.cpp): $(BUILD)/gen/revision
.PHONY: FORCE
FORCE:

$(COMMON_A): $(call obj,$(COMMON_SRCS))
	@mkdir -p $(dir $@)
	ar rcs $@ $^
$(SCHD_A): $(call obj,$(SCHD_SRCS))
	ar rcs $@ $^
$(PMGR_A): $(call obj,$(PMGR_SRCS))
	ar rcs $@ $^
$(BUILD)/obj/metrics/%.o: metrics/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) $(HTTPLIB_CFLAGS) -c $< -o $@
$(METRICS_A): $(call obj,$(METRICS_SRCS))
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(BUILD)/obj/hook/gemhook.map: hook/gemhook.map.in hook/cuda_hooks.def
	@mkdir -p $(dir $@)
	$(CXX) -E -P -x c -Ihook $< -o $@

$(HOOK_LIB): $(call obj,$(HOOK_SRCS)) $(COMMON_A) $(BUILD)/obj/hook/gemhook.map
	@mkdir -p $(dir $@)
	$(CXX) -shared $(SANFLAGS) -o $@ $(call obj,$(HOOK_SRCS)) $(COMMON_A) \
	  -Wl,--version-script=$(BUILD)/obj/hook/gemhook.map -Wl,-soname,libgemhook.so.1 -Wl,--no-undefined \
	  -static-libstdc++ -static-libgcc $(LDLIBS)

# The daemons look in ../lib beside them first (DT_RPATH, so also for cpp-httplib's own
# dependencies): build/bin + build/lib run on a machine without cpp-httplib (the GPU machines).
DAEMON_RPATH := -Wl,--disable-new-dtags,-rpath,'$$ORIGIN/../lib'
$(SCHD_BIN): $(call obj,scheduler/main.cpp) $(SCHD_A) $(METRICS_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(DAEMON_RPATH) $(HTTPLIB_LIBS) $(LDLIBS)
$(PMGR_BIN): $(call obj,pod-manager/main.cpp) $(PMGR_A) $(METRICS_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(DAEMON_RPATH) $(HTTPLIB_LIBS) $(LDLIBS)
# Copies of the libraries the daemons need beyond glibc and libstdc++ (cpp-httplib, OpenSSL, brotli)
# into $(BUILD)/lib, found there through the rpath above.
$(BUILD)/lib/.runtime-libs: $(SCHD_BIN) $(PMGR_BIN)
	@mkdir -p $(dir $@)
	for lib in $$(ldd $(SCHD_BIN) | awk '/libcpp-httplib|libssl|libcrypto|libbrotli/ {print $$3}'); do \
	  [ "$$(realpath $$lib)" = "$$(realpath $(dir $@))/$$(basename $$lib)" ] || cp -L $$lib $(dir $@); \
	done
	touch $@

# Stand-in driver and NVML, and programs that reach them the way the CUDA runtime (and monitoring
# code) do: fake-cuda-app launches kernels, fake-mem-app drives every memory path, fake-capture-app
# captures and replays graphs.
$(FAKE_LIB): $(call obj,$(FAKE_LIB_SRCS))
	@mkdir -p $(dir $@)
	$(CXX) -shared $(SANFLAGS) -o $@ $^ -Wl,-soname,libcuda.so.1 $(LDLIBS)
$(FAKE_NVML): $(call obj,$(FAKE_NVML_SRCS))
	@mkdir -p $(dir $@)
	$(CXX) -shared $(SANFLAGS) -o $@ $^ -Wl,-soname,libnvidia-ml.so.1 $(LDLIBS)
$(FAKE_APP): $(call obj,$(FAKE_APP_SRCS))
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(LDLIBS)
$(FAKE_MEM_APP): $(call obj,$(FAKE_MEM_APP_SRCS))
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(LDLIBS)
$(FAKE_CAPTURE_APP): $(call obj,$(FAKE_CAPTURE_APP_SRCS))
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(LDLIBS)

GTEST_LIBS := -lgtest -lgtest_main
$(UNIT_BIN): $(call obj,$(UNIT_SRCS)) $(call obj,$(HOOK_PURE_SRCS)) $(SCHD_A) $(PMGR_A) $(METRICS_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(GTEST_LIBS) $(HTTPLIB_LIBS) $(LDLIBS)
# The integration tests scrape /metrics with cpp-httplib's client (tests/integration/prom_scrape.cpp).
$(call obj,$(INTEG_SRCS)): ALL_CXXFLAGS += $(HTTPLIB_CFLAGS)
$(INTEG_BIN): $(call obj,$(INTEG_SRCS)) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(GTEST_LIBS) $(HTTPLIB_LIBS) $(LDLIBS)

unit-test: $(UNIT_BIN)
	$(UNIT_BIN)

integration-test: all $(FAKE_ALL) $(INTEG_BIN)
	GEM_BUILD=$(abspath $(BUILD)) SANITIZE=$(SANITIZE) $(INTEG_BIN)

# Under SANITIZE=1 the launchers preload an ASan-built hook into programs that are not: the ASan
# runtime then comes in as the hook's dependency, not first.
tools-test: all $(FAKE_ALL)
	$(if $(filter 1,$(SANITIZE)),ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0) GEM_BUILD=$(abspath $(BUILD)) $(PYTHON) -m unittest discover -s tests/tools -p 'test_*.py' -v

# Test binaries build in parallel; the suites run one after another, since the integration tests
# measure shares of time and must not compete with other suites for the CPU or for ports.
TEST_SUITES := unit-test integration-test tools-test
-include webhook/webhook.mk
include device-plugin/device-plugin.mk
include tests/fuzz/fuzz.mk

test: all $(UNIT_BIN) $(INTEG_BIN) $(FAKE_ALL) $(TEST_BUILD_EXTRA)
	@set -e; for suite in $(TEST_SUITES); do $(MAKE) --no-print-directory $$suite; done

SOAK_SECONDS ?= 600
soak: all $(FAKE_LIB) $(FAKE_APP)
	SOAK_SECONDS=$(SOAK_SECONDS) GEM_BUILD=$(abspath $(BUILD)) $(PYTHON) tests/soak/soak.py

demo: all $(FAKE_LIB) $(FAKE_APP)
	BUILD=$(abspath $(BUILD)) NVCC=$(NVCC) $(PYTHON) demo/run-demo.py

bench: all
	$(MAKE) -C bench BUILD=$(abspath $(BUILD)) NVCC=$(NVCC)

# On a GPU machine fake-mem-app finds the real driver; here, the stand-in (the hook's own cost).
bench-alloc: all $(FAKE_ALL)
	LD_LIBRARY_PATH=$${LD_LIBRARY_PATH:-$(abspath $(BUILD))/fake-cuda} python3 bench/alloc_cost.py --build $(abspath $(BUILD))

bench-config: $(SCHD_A) $(COMMON_A)
	$(MAKE) -C bench config BUILD=$(abspath $(BUILD))

bench-evenness: $(SCHD_A) $(COMMON_A)
	$(MAKE) -C bench evenness BUILD=$(abspath $(BUILD))

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib
	install -m 0755 $(SCHD_BIN) $(PMGR_BIN) $(DP_BIN) tools/launch-backend.py tools/launch-command.py tools/gemctl \
	  $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/bin/gemtools
	install -m 0644 tools/gemtools/*.py $(DESTDIR)$(PREFIX)/bin/gemtools/
	install -m 0755 $(HOOK_LIB) $(DESTDIR)$(PREFIX)/lib/

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
