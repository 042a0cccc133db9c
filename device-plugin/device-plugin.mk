# gem-device-plugin (kubelet device-plugin API v1beta1 over gRPC) and its tests. Included by the
# top-level Makefile, which defines BUILD, CXX, ALL_CXXFLAGS, SANFLAGS, GTEST_LIBS, COMMON_A and obj.
#   make device-plugin        $(BUILD)/bin/gem-device-plugin (also part of `make all`)
#   make device-plugin-test   the plugin against a fake kubelet over Unix sockets (part of `make test`)
# The C++ of the API is generated at build time from third_party/kubelet-deviceplugin/api.proto with
# Debian's protoc and grpc_cpp_plugin (protobuf-compiler-grpc; libraries libgrpc++-dev, libprotobuf-dev).

PROTOC ?= protoc
GRPC_CPP_PLUGIN ?= $(shell command -v grpc_cpp_plugin 2>/dev/null || echo /usr/bin/grpc_cpp_plugin)
GRPC_CFLAGS := $(shell pkg-config --cflags grpc++ protobuf 2>/dev/null)
GRPC_LIBS := $(shell pkg-config --libs grpc++ protobuf 2>/dev/null || echo -lgrpc++ -lgrpc -lgpr -lprotobuf)

DP_PROTO := third_party/kubelet-deviceplugin/api.proto
DP_GEN := $(BUILD)/gen/deviceplugin
DP_GEN_SRCS := $(DP_GEN)/api.pb.cc $(DP_GEN)/api.grpc.pb.cc
DP_GEN_OBJS := $(patsubst $(BUILD)/gen/%.cc,$(BUILD)/obj/gen/%.o,$(DP_GEN_SRCS))
DP_LIB_SRCS := $(filter-out device-plugin/main.cpp,$(wildcard device-plugin/*.cpp))
DP_TEST_SRCS := $(wildcard tests/device-plugin/*.cpp)
# gem-schd's NVML probe (dlopen of libnvidia-ml.so.1), shared rather than copied.
DP_NVML_OBJ := $(call obj,scheduler/nvml_probe.cpp)

DP_BIN := $(BUILD)/bin/gem-device-plugin
DP_A := $(BUILD)/obj/libgemdp.a
DP_TEST_BIN := $(BUILD)/tests/device-plugin-tests

# One protoc run writes all four files; the grouped target (GNU make 4.3) says so.
$(DP_GEN)/api.pb.cc $(DP_GEN)/api.pb.h $(DP_GEN)/api.grpc.pb.cc $(DP_GEN)/api.grpc.pb.h &: $(DP_PROTO)
	@mkdir -p $(DP_GEN)
	$(PROTOC) -I$(dir $(DP_PROTO)) --cpp_out=$(DP_GEN) --grpc_out=$(DP_GEN) \
	  --plugin=protoc-gen-grpc=$(GRPC_CPP_PLUGIN) $(DP_PROTO)

# Generated code: not ours to warn about.
$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.cc
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 $(CXXFLAGS) $(SANFLAGS) -fPIC -w $(GRPC_CFLAGS) -I$(BUILD)/gen -c $< -o $@

DP_OBJS := $(call obj,$(DP_LIB_SRCS) device-plugin/main.cpp $(DP_TEST_SRCS))
$(DP_OBJS): ALL_CXXFLAGS += -I$(BUILD)/gen -Idevice-plugin $(GRPC_CFLAGS)
$(DP_OBJS): | $(DP_GEN)/api.pb.h $(DP_GEN)/api.grpc.pb.h

$(DP_A): $(DP_GEN_OBJS) $(call obj,$(DP_LIB_SRCS)) $(DP_NVML_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^
$(DP_BIN): $(call obj,device-plugin/main.cpp) $(DP_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(GRPC_LIBS) $(LDLIBS)
$(DP_TEST_BIN): $(call obj,$(DP_TEST_SRCS)) $(DP_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CXX) $(SANFLAGS) -o $@ $^ $(GTEST_LIBS) $(GRPC_LIBS) $(LDLIBS)

.PHONY: device-plugin device-plugin-test
device-plugin: $(DP_BIN)
all: $(DP_BIN)

# The NVML test uses the stand-in libnvidia-ml.so.1 (GEM_BUILD/fake-cuda).
device-plugin-test: $(DP_TEST_BIN) $(FAKE_NVML)
	GEM_BUILD=$(abspath $(BUILD)) $(DP_TEST_BIN)

TEST_SUITES += device-plugin-test
TEST_BUILD_EXTRA += $(DP_TEST_BIN)
