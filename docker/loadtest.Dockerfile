# syntax=docker/dockerfile:1.7
# Locust load generator (compose profile `loadtest`): loadtests/locustfile.py with a current Locust and
# tritonclient[grpc] only (loadtests/requirements.txt; tritonclient's `http` extra pins
# geventhttpclient<=2.0.2, which holds Locust at 2.18.4), so both the HTTP and the gRPC users run.
# Build from the repository root:  docker build -f docker/loadtest.Dockerfile -t model-serving/loadtest .
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm
FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH HOME=/tmp
COPY loadtests/requirements.txt /opt/loadtest/requirements.txt
RUN python -m venv /opt/venv \
 && pip install --no-compile --requirement /opt/loadtest/requirements.txt
COPY loadtests/locustfile.py loadtests/run_locust.py /opt/loadtest/
RUN groupadd --system --gid 10004 locust \
 && useradd --system --uid 10004 --gid locust --no-create-home --shell /usr/sbin/nologin locust
USER 10004:10004
WORKDIR /tmp
# the web UI (compose publishes it on 127.0.0.1)
EXPOSE 8089
# `locust` that exits once its reports are written (loadtests/run_locust.py says why)
ENTRYPOINT ["python", "/opt/loadtest/run_locust.py", "-f", "/opt/loadtest/locustfile.py"]
