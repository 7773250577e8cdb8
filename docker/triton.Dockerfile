# syntax=docker/dockerfile:1.7
# Triton Inference Server with what our models need on top of the official image.
# The model repository is NOT baked in: it is mounted at /models (compose bind mount / k8s volume).
# Build:  docker build -f docker/triton.Dockerfile -t model-serving/triton:24.10 .
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3
FROM ${TRITON_IMAGE}

# Python-backend steps (the MiniLM tokenizer) run in the image's system Python.
COPY docker/triton-requirements.txt /tmp/triton-requirements.txt
RUN python3 -m pip install --no-cache-dir --requirement /tmp/triton-requirements.txt \
 && rm /tmp/triton-requirements.txt

# The official image ships the unprivileged user triton-server (uid 1000, gid 1000).
USER 1000:1000
WORKDIR /tmp
# 8000 HTTP, 8001 gRPC, 8002 Prometheus metrics
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=6 \
  CMD ["curl", "-fsS", "http://127.0.0.1:8000/v2/health/ready"]
ENTRYPOINT ["tritonserver"]
CMD ["--model-repository=/models", "--strict-readiness=true", "--exit-on-error=true", \
     "--allow-metrics=true", "--metrics-port=8002"]
