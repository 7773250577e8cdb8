#!/bin/sh
# `tritonserver` of the stand-in image: the bundled server with the same arguments, serving the given
# --model-repository through its python-backend twins (localstack/tritonserver.py).
exec python3 -m localstack serve-triton "$@"
