# syntax=docker/dockerfile:1.7
# One-shot converter: builds the TensorRT plans ON THE TARGET GPU into the shared model repository
# (plans are specific to the GPU model and the TensorRT version, so they are built where they run).
# TensorRT 24.10 matches Triton 24.10 (TensorRT 10.5), so the plans load in the Triton image.
# Build:  docker build -f docker/converter.Dockerfile -t model-serving/converter:24.10 .
ARG TENSORRT_IMAGE=nvcr.io/nvidia/tensorrt:24.10-py3
FROM ${TENSORRT_IMAGE}

# The image's system Python is 3.10 and this project needs >= 3.11: a Python 3.11 venv (installed by
# uv), with TensorRT's own 3.11 bindings at the image's TensorRT version.
ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.8
ARG TENSORRT_PY_VERSION=10.5.0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    UV_NO_CACHE=1 UV_PYTHON_INSTALL_DIR=/opt/python \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN python3 -m pip install --no-cache-dir "uv==${UV_VERSION}" \
 && uv python install "${PYTHON_VERSION}" \
 && uv venv --python "${PYTHON_VERSION}" /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY conversion ./conversion
# the `conversion` extra brings torch (the CUDA check and calibration) and ONNX
RUN uv pip install --python /opt/venv/bin/python "tensorrt-cu12==${TENSORRT_PY_VERSION}" "./[conversion]"

# Runs as an unprivileged user; compose/k8s pass the uid that owns the model repository.
RUN groupadd --system --gid 10002 converter \
 && useradd --system --uid 10002 --gid converter --no-create-home --shell /usr/sbin/nologin converter
USER 10002:10002
WORKDIR /tmp
ENTRYPOINT ["python", "-m", "conversion"]
CMD ["tensorrt", "--repository", "/models"]
