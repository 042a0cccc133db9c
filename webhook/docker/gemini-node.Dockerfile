# gemini-node image: gem-schd (DaemonSet, one per GPU), gem-device-plugin (DaemonSet, the kubelet
# device plugin), gem-pmgr (the per-pod sidecar) and libgemhook.so.1 (copied to the node for shared
# pods). Build from the repository root:
#   docker build -f webhook/docker/gemini-node.Dockerfile -t ghcr.io/gemini-gpu-sharing/gemini-node:0.1.0 .
# Built on Ubuntu 22.04 (glibc 2.35) so the hook loads into user images with glibc >= 2.35's symbol
# versions it uses; the CUDA image only provides headers (the hook never links libcuda).
FROM nvidia/cuda:13.0.0-devel-ubuntu22.04 AS build
# cpp-httplib: the daemons' /metrics endpoint (issue 10); nlohmann-json: gem-schd --stats; gRPC and
# protobuf (with protoc and its gRPC plugin): gem-device-plugin (device-plugin/device-plugin.mk).
RUN apt-get update \
 && apt-get install -y --no-install-recommends make g++ pkg-config \
      libcpp-httplib-dev nlohmann-json3-dev libssl-dev \
      libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY include include
COPY common common
COPY hook hook
COPY scheduler scheduler
COPY pod-manager pod-manager
COPY metrics metrics
COPY device-plugin device-plugin
COPY third_party/kubelet-deviceplugin third_party/kubelet-deviceplugin
# The Makefile includes it (fuzz targets, not built here).
COPY tests/fuzz/fuzz.mk tests/fuzz/fuzz.mk
RUN make BUILD=/out CUDA_PATH=/usr/local/cuda -j"$(nproc)" all

FROM ubuntu:22.04
# bash: the entrypoint, the sidecar's startup probe (exec 3<>/dev/tcp/127.0.0.1/50052) and the
# device plugin's liveness probe. libgrpc++1, libprotobuf23: gem-device-plugin (Ubuntu 22.04's gRPC
# 1.30 and protobuf 3.12, the versions it was built against in the stage above).
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash libcpp-httplib0.10 libssl3 libgrpc++1 libprotobuf23 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/bin/gem-schd /out/bin/gem-pmgr /out/bin/gem-device-plugin /usr/local/bin/
COPY --from=build /out/lib/libgemhook.so.1 /opt/gemini/lib/libgemhook.so.1
COPY webhook/docker/gemini-node-entrypoint.sh /usr/local/bin/gemini-node-entrypoint
RUN chmod 0755 /usr/local/bin/gemini-node-entrypoint
# gem-pmgr is the sidecar's command (set by the webhook); the DaemonSet runs the entrypoint and
# gem-device-plugin.
CMD ["/usr/local/bin/gemini-node-entrypoint"]
