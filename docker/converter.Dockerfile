# syntax=docker/dockerfile:1.7
# One-shot converter: builds the TensorRT plans ON THE TARGET GPU into the shared model repository
# (plans are specific to the GPU model and the TensorRT version, so they are built where they run).
# TensorRT 24.10 matches Triton 24.10 (TensorRT 10.5), so the plans load in the Triton image.
# Build:  docker build -f docker/converter.Dockerfile -t model-serving/converter:24.10 .
ARG TENSORRT_IMAGE=nvcr.io/nvidia/tensorrt:24.10-py3
FROM ${TENSORRT_IMAGE}

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY conversion ./conversion
RUN python3 -m pip install --no-cache-dir "./[conversion]"

# Runs as an unprivileged user; compose/k8s pass the uid that owns the model repository.
RUN groupadd --system --gid 10002 converter \
 && useradd --system --uid 10002 --gid converter --no-create-home --shell /usr/sbin/nologin converter
USER 10002:10002
WORKDIR /tmp
ENTRYPOINT ["python3", "-m", "conversion"]
CMD ["tensorrt", "--repository", "/models"]
