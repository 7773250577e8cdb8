"""`python -m gateway`: serve the gateway with uvicorn (uvloop + httptools)."""

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError

from gateway.settings import Settings, get_settings

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def shared_metrics_dir(workers: int) -> Iterator[None]:
    """Several workers: one prometheus-client multiprocess directory for all of them, so /metrics
    counts every worker's requests whichever worker answers it (kept if already configured).

    The directory is a fresh temporary one, set in PROMETHEUS_MULTIPROC_DIR for the workers to
    inherit, and removed with the variable on exit.
    """
    if workers <= 1 or os.environ.get(METRICS_DIR):
        yield
        return
    path = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[METRICS_DIR] = path  # the spawned workers inherit it
    try:
        yield
    finally:
        del os.environ[METRICS_DIR]
        shutil.rmtree(path, ignore_errors=True)


def settings_or_exit() -> Settings:
    """The process's settings; SystemExit(2) after naming each malformed variable on stderr."""
    try:
        return get_settings()
    except ValidationError as error:
        for problem in error.errors():
            variable = ".".join(map(str, problem["loc"]))
            print(f"error: {variable}={problem['input']!r}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
    except SettingsError as error:  # a value pydantic-settings could not decode
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def main() -> None:
    """Serve `gateway.app:create_app` on GATEWAY_HOST:GATEWAY_PORT with GATEWAY_WORKERS uvicorn
    worker processes (uvloop, httptools, no access log); returns when uvicorn stops.

    A malformed or out-of-range GATEWAY_* variable stops it before anything listens: one line
    per problem on stderr, `error: <variable>=<value>: <reason>`, and exit status 2, as
    gateway-grpc does.
    """
    settings = settings_or_exit()
    with shared_metrics_dir(settings.workers):
        uvicorn.run(
            "gateway.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
        )


if __name__ == "__main__":
    main()
