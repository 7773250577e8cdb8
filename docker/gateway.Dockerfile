# syntax=docker/dockerfile:1.7
# Gateway image: the HTTP gateway (FastAPI, `python -m gateway`, port 8080) and its native KServe v2
# gRPC front end (`gateway-grpc`, Go, gRPC 8081 + metrics/probes 8082), both in front of Triton with
# one shared Redis prediction cache. One image, two processes: compose runs two services from it, k8s
# two containers of the gateway pod (the gRPC one with command ["gateway-grpc"]).
# Build from the repository root:  docker build -f docker/gateway.Dockerfile -t model-serving/gateway .
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Only what the package needs; .dockerignore keeps models, tests and secrets out.
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY conversion ./conversion
# Base dependencies only (no torch/onnx: they are in the `conversion` extra).
RUN pip install --no-compile ./

# gateway-grpc: built by gateway-grpc/build.sh (the script `make gateway-grpc` runs) with Debian
# bookworm's Go toolchain and Go libraries, in GOPATH mode: nothing is downloaded but these packages.
# The pins are bookworm's versions; build.sh finds them installed and installs nothing itself.
# CGO_ENABLED=0: a fully static binary (no gcc/libc6-dev in this stage, pure-Go DNS resolver).
FROM ${PYTHON_IMAGE} AS gateway-grpc
ENV CGO_ENABLED=0
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      golang-go=2:1.19~1 \
      protobuf-compiler=3.21.12-3+deb12u1 \
      golang-google-grpc-dev=1.33.3-2 \
      golang-google-protobuf-dev=1.28.1-3 \
      golang-github-golang-protobuf-1-5-dev=1.5.2-3 \
      golang-github-gomodule-redigo-dev=1:1.8.3-1 \
      golang-golang-x-crypto-dev=1:0.4.0-1 \
      golang-github-prometheus-client-golang-dev=1.14.0-3 \
 && rm -rf /var/lib/apt/lists/*
# protos.py reads the KServe v2 descriptors from tritonclient: the venv of the build stage has it.
COPY --from=build /opt/venv /opt/venv
WORKDIR /src
COPY gateway-grpc ./gateway-grpc
RUN bash gateway-grpc/build.sh /opt/venv/bin/python /out/gateway-grpc

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="model-serving gateway" \
      org.opencontainers.image.description="HTTP gateway (python -m gateway) and native gRPC front end (gateway-grpc) with a Redis prediction cache in front of Triton"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_GRPC_PORT=8081 \
    GATEWAY_GRPC_METRICS_PORT=8082
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --no-create-home --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
COPY --from=gateway-grpc /out/gateway-grpc /usr/local/bin/gateway-grpc
# GATEWAY_<NAME>_FILE -> GATEWAY_<NAME> (secrets as files: compose's init, Docker/Kubernetes secrets)
COPY docker/env-from-files.sh /usr/local/bin/env-from-files
USER 10001:10001
WORKDIR /tmp
# 8080 HTTP (python -m gateway); 8081 gRPC and 8082 /metrics, /healthz, /readyz (gateway-grpc)
EXPOSE 8080 8081 8082
# The slim image has no curl: probe /healthz with the standard library. This is the HTTP gateway's
# check (the default entrypoint); a gateway-grpc container overrides it (compose: GET :8082/readyz).
# gateway-grpc runs as `env-from-files gateway-grpc` (compose) or `gateway-grpc` (without _FILE settings).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_PORT','8080'), timeout=2).status == 200 else 1)"]
ENTRYPOINT ["env-from-files", "python", "-m", "gateway"]
