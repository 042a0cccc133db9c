# libFuzzer targets (docs/fuzzing.md). Included by the top-level Makefile, which defines WARN.
# Built by clang (libFuzzer ships with it: Debian's libclang-rt-14-dev) with AddressSanitizer and
# UndefinedBehaviorSanitizer into build-fuzz/, apart from build/ and build-san/.
#   make fuzz                  build-fuzz/fuzz-{frame,config,admission,policy,memory,http}
#   make fuzz-ci               each target FUZZ_TIME (60) seconds from its seed corpus; fails on a crash
#   make fuzz-ci-policy        one of them
#   make fuzz-clean

FUZZ_BUILD := build-fuzz
FUZZ_CXX ?= clang++-14
FUZZ_TIME ?= 60
FUZZ_TARGETS := frame config admission policy memory http
# -fno-sanitize-recover: every UBSan finding aborts, so libFuzzer records it as a crash.
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CXXFLAGS := -std=c++17 -O1 -g $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP \
  -Iinclude -Ischeduler -Ipod-manager -Iwebhook
# Environment for fuzz-ci runs (empty: every property is checked).
FUZZ_CI_ENV :=

FUZZ_SRCS_frame := tests/fuzz/fuzz_frame.cpp common/protocol.cpp
FUZZ_SRCS_config := tests/fuzz/fuzz_config.cpp common/config.cpp common/config_values.cpp common/config_index.cpp common/protocol.cpp
# The webhook's library as webhook/webhook.mk lists it (included before this file), so a new source
# file there cannot leave this target unlinked.
FUZZ_SRCS_admission := tests/fuzz/fuzz_admission.cpp $(WEBHOOK_LIB_SRCS) common/config.cpp common/config_values.cpp \
  common/config_index.cpp common/protocol.cpp
# The /metrics endpoint's request parser (the daemons parse HTTP requests themselves, issue 21).
FUZZ_SRCS_http := tests/fuzz/fuzz_http.cpp metrics/http_request.cpp
FUZZ_SRCS_policy := tests/fuzz/fuzz_policy.cpp scheduler/policy.cpp scheduler/policy_accounting.cpp pod-manager/token_share.cpp common/protocol.cpp
FUZZ_SRCS_memory := tests/fuzz/fuzz_memory.cpp pod-manager/mem_sessions.cpp pod-manager/mem_budget.cpp \
  scheduler/gpu_residency.cpp common/protocol.cpp

fuzz_obj = $(patsubst %.cpp,$(FUZZ_BUILD)/obj/%.o,$(1))
FUZZ_BINS := $(addprefix $(FUZZ_BUILD)/fuzz-,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-ci fuzz-clean $(addprefix fuzz-ci-,$(FUZZ_TARGETS))
fuzz: $(FUZZ_BINS)

$(FUZZ_BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -c $< -o $@

define fuzz_link
$(FUZZ_BUILD)/fuzz-$(1): $(call fuzz_obj,$(FUZZ_SRCS_$(1)))
	$$(FUZZ_CXX) $$(FUZZ_SAN) -fsanitize=fuzzer -o $$@ $$^
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_link,$(t))))

# The seeds are read-only input; what the run finds goes to build-fuzz/corpus/<target>, crashes to
# build-fuzz/artifacts/<target>/.
fuzz-ci: $(addprefix fuzz-ci-,$(FUZZ_TARGETS))
define fuzz_ci
fuzz-ci-$(1): $(FUZZ_BUILD)/fuzz-$(1)
	@mkdir -p $(FUZZ_BUILD)/corpus/$(1) $(FUZZ_BUILD)/artifacts/$(1)
	$$(FUZZ_CI_ENV) $$< -max_total_time=$$(FUZZ_TIME) -timeout=30 -print_final_stats=1 \
	  $(addprefix -dict=,$(wildcard tests/fuzz/dict/$(1).dict)) \
	  -artifact_prefix=$(FUZZ_BUILD)/artifacts/$(1)/ $(FUZZ_BUILD)/corpus/$(1) tests/fuzz/corpus/$(1)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_ci,$(t))))

fuzz-clean:
	rm -rf $(FUZZ_BUILD)
clean: fuzz-clean

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
