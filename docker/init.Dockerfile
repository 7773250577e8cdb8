# syntax=docker/dockerfile:1.7
# One-shot `init` of the compose stack: generates the secrets that are not given (API key, Redis and
# Grafana admin passwords) once into the consumers' volumes and prints the API key
# (docker/init_secrets.py, standard library only). The mount points are made here, owned by the
# unprivileged user, so that new named volumes mounted on them are created with that owner.
# Build from the repository root:  docker build -f docker/init.Dockerfile -t model-serving/init .
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10003 init \
 && useradd --system --uid 10003 --gid init --no-create-home --shell /usr/sbin/nologin init \
 && mkdir -p /run/secrets/gateway /run/secrets/redis /run/secrets/grafana /run/secrets/loadtest \
 && chown 10003:10003 /run/secrets/gateway /run/secrets/redis /run/secrets/grafana \
      /run/secrets/loadtest
COPY docker/init_secrets.py /usr/local/lib/model-serving/init_secrets.py
USER 10003:10003
WORKDIR /tmp
ENTRYPOINT ["python", "/usr/local/lib/model-serving/init_secrets.py"]
