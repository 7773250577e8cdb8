"""The local stack: redis-server, the real tritonserver from the nvidia-pytriton wheel, the gateway."""
