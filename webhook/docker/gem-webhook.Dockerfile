# gem-webhook image. Build from the repository root:
#   docker build -f webhook/docker/gem-webhook.Dockerfile -t ghcr.io/gemini-gpu-sharing/gem-webhook:0.1.0 .
FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential make pkg-config \
      libcpp-httplib-dev nlohmann-json3-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY include include
COPY common common
COPY webhook webhook
# The Makefile includes them (targets not built here).
COPY device-plugin/device-plugin.mk device-plugin/device-plugin.mk
COPY tests/fuzz/fuzz.mk tests/fuzz/fuzz.mk
# The webhook needs no CUDA headers; CUDA_PATH only feeds an -I flag.
RUN make BUILD=/out CUDA_PATH=/nonexistent -j"$(nproc)" /out/bin/gem-webhook

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcpp-httplib0.11 libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/bin/gem-webhook /usr/local/bin/gem-webhook
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/gem-webhook"]
