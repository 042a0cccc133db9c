# gem-webhook (Kubernetes mutating admission webhook) and its tests. Included by the top-level
# Makefile, which defines BUILD, CXX, ALL_CXXFLAGS, SANFLAGS, PYTHON and GTEST_LIBS.
#   make webhook          $(BUILD)/bin/gem-webhook
#   make webhook-test     unit tests (GoogleTest) + server tests over TLS + manifest checks (Python)
#   make webhook-bench    admissions/s and p99 over loopback TLS (not part of `make test`)
#   make k8s-e2e          the webhook and the manifests against a real kube-apiserver v1.20.2, and
#                         kube-scheduler placing pods by the device plugin's resources; both built
#                         once into ~/.cache/gem-k8s (not part of `make test`; a step of .ci/run)

# HTTPLIB_CFLAGS and HTTPLIB_LIBS (Debian's split cpp-httplib) come from the top-level Makefile.

WEBHOOK_LIB_SRCS := webhook/admission.cpp webhook/base64.cpp webhook/mutate.cpp webhook/patch.cpp webhook/placement.cpp \
  webhook/resource_name.cpp webhook/settings.cpp webhook/sidecar.cpp webhook/access_log.cpp webhook/mps.cpp
WEBHOOK_SRV_SRCS := webhook/server.cpp webhook/tls_reload.cpp webhook/main.cpp
WEBHOOK_UNIT_SRCS := $(wildcard tests/webhook/unit/*.cpp)
WEBHOOK_BENCH_SRCS := $(wildcard bench/webhook/*.cpp)

WEBHOOK_BIN := $(BUILD)/bin/gem-webhook
WEBHOOK_A := $(BUILD)/obj/libgemwebhook.a
WEBHOOK_UNIT_BIN := $(BUILD)/tests/webhook-unit-tests
WEBHOOK_BENCH_BIN := $(BUILD)/bench/webhook-bench

WEBHOOK_CXXFLAGS := $(ALL_CXXFLAGS) -Iwebhook $(HTTPLIB_CFLAGS)

$(BUILD)/obj/webhook/%.o: webhook/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(WEBHOOK_CXXFLAGS) -c $< -o $@
$(BUILD)/obj/tests/webhook/%.o: tests/webhook/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(WEBHOOK_CXXFLAGS) -c $< -o $@
$(BUILD)/obj/bench/webhook/%.o: bench/webhook/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(WEBHOOK_CXXFLAGS) -c $< -o $@

$(WEBHOOK_A): $(call obj,$(WEBHOOK_LIB_SRCS))
	@mkdir -p $(dir $@)
	ar rcs $@ $^
# libgemcommon.a: gem::Flags, and resource-config.txt's value parsers and admission rule
# (include/gem/config.h), which settings.cpp checks the annotations with.
$(WEBHOOK_BIN): $(call obj,$(WEBHOOK_SRV_SRCS)) $(WEBHOOK_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(HTTPLIB_LIBS)
$(WEBHOOK_UNIT_BIN): $(call obj,$(WEBHOOK_UNIT_SRCS)) $(WEBHOOK_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(GTEST_LIBS) -lpthread
$(WEBHOOK_BENCH_BIN): $(call obj,$(WEBHOOK_BENCH_SRCS))
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(HTTPLIB_LIBS)

.PHONY: webhook webhook-test webhook-unit-test webhook-server-test webhook-manifest-test webhook-bench k8s-e2e
webhook: $(WEBHOOK_BIN)

webhook-unit-test: $(WEBHOOK_UNIT_BIN)
	$(WEBHOOK_UNIT_BIN)

webhook-server-test: $(WEBHOOK_BIN)
	GEM_WEBHOOK_BIN=$(abspath $(WEBHOOK_BIN)) $(PYTHON) -m unittest discover -s tests/webhook -p 'test_server*.py' -v

# gem-device-plugin: its --help, against the DaemonSet's flags (spelt out: device-plugin.mk, which
# defines DP_BIN, is read after this file, and prerequisites are expanded as they are read).
webhook-manifest-test: $(WEBHOOK_BIN) $(BUILD)/bin/gem-device-plugin
	GEM_WEBHOOK_BIN=$(abspath $(WEBHOOK_BIN)) GEM_DEVICE_PLUGIN_BIN=$(abspath $(BUILD)/bin/gem-device-plugin) $(PYTHON) -m unittest discover -s tests/webhook -p 'test_manifests*.py' -v

webhook-test: webhook-unit-test webhook-server-test webhook-manifest-test

TEST_SUITES += webhook-test
TEST_BUILD_EXTRA += $(WEBHOOK_BIN) $(WEBHOOK_UNIT_BIN)

# docs/kubernetes-tests.md, "End-to-end test". The first run builds kube-apiserver (about 8 minutes on 2 cores).
k8s-e2e: $(WEBHOOK_BIN)
	GEM_WEBHOOK_BIN=$(abspath $(WEBHOOK_BIN)) PYTHON=$(PYTHON) tests/webhook/e2e/run.sh

# One core for the server (taskset), the client on another; see docs/kubernetes.md.
webhook-bench: $(WEBHOOK_BIN) $(WEBHOOK_BENCH_BIN)
	GEM_WEBHOOK_BIN=$(abspath $(WEBHOOK_BIN)) GEM_WEBHOOK_BENCH=$(abspath $(WEBHOOK_BENCH_BIN)) \
	  $(PYTHON) bench/webhook/run-bench.py
