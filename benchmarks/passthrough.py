"""The floor under any Python gRPC front: a grpc.aio proxy (uvloop) that forwards the bytes of
every KServe v2 call to Triton and does nothing else: no parsing, no cache, no metrics.

`make bench-gateway` measures it beside the gateway with the same client, so the report shows
how much of a miss's overhead is the Python gRPC hop itself and how much is the gateway's work.

    python -m benchmarks.passthrough --port 9000 --upstream 127.0.0.1:8001
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import uvloop
from tritonclient.grpc import service_pb2

from localstack.processes import wait_until
from localstack.stack import port_in_use

SERVICE = "inference.GRPCInferenceService"


def unary_methods() -> list[str]:
    service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    return [m.name for m in service.methods if not (m.client_streaming or m.server_streaming)]


async def serve(port: int, upstream: str) -> None:
    channel = grpc.aio.insecure_channel(upstream)

    def forward(method: str):
        call = channel.unary_unary(f"/{SERVICE}/{method}")  # no serializers: bytes in, bytes out

        async def handler(request: bytes, context) -> bytes:
            return await call(request)

        return grpc.unary_unary_rpc_method_handler(handler)

    server = grpc.aio.server()
    handlers = {method: forward(method) for method in unary_methods()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


@contextmanager
def running(upstream: str, timeout_s: float = 10.0) -> Iterator[str]:
    """Start the proxy in a subprocess on a free port; yield its address."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "benchmarks.passthrough",
        "--port",
        str(port),
        "--upstream",
        upstream,
    ]
    process = subprocess.Popen(command)
    try:
        wait_until(
            lambda: process.poll() is not None or port_in_use(port), timeout_s, interval_s=0.05
        )
        if process.poll() is not None or not port_in_use(port):
            raise RuntimeError(f"pass-through proxy did not start on port {port}")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.upstream))


if __name__ == "__main__":
    main()
