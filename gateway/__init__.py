"""The gateway: validate -> coalesce identical requests -> content-keyed Redis cache -> Triton gRPC."""
