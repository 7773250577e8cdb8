# syntax=docker/dockerfile:1.7
# Gateway image: FastAPI + Redis cache in front of Triton.
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

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="model-serving gateway" \
      org.opencontainers.image.description="HTTP/gRPC gateway with a Redis prediction cache in front of Triton"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_GRPC_PORT=8081
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --no-create-home --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 8081
# The slim image has no curl: probe /healthz with the standard library.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_PORT','8080'), timeout=2).status == 200 else 1)"]
ENTRYPOINT ["python", "-m", "gateway"]
