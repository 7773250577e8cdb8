"""The gateway: validate -> content-keyed Redis cache -> coalesce identical misses -> Triton gRPC."""
