"""Locust's command line (`python run_locust.py ARGS` = `locust ARGS`), ending the process as
soon as Locust has written its summary, reports and CSV files.

Why not plain `locust`: in `make compose-test` on a freshly booted machine, `compose run ...
locust -t 15s` printed every table Locust writes before its `sys.exit` and was still running
5 minutes later, deaf to SIGTERM; not reproduced since. What held it is not known (the likely
suspect: the gRPC users' threads under gevent, in the interpreter's shutdown). Locust ends its
`main()` with `sys.exit(code)` after
everything is written; this catches that exit, flushes stdout and stderr and leaves with
`os._exit(code)`, skipping the interpreter shutdown. Used by the loadtest image and
`python -m benchmarks loadtest`.
"""

import os
import sys

from locust.main import main


def exit_code(done: SystemExit) -> int:
    """The process exit code `sys.exit(value)` would give: None is 0, an int itself, else 1."""
    if done.code is None:
        return 0
    return done.code if isinstance(done.code, int) else 1


if __name__ == "__main__":
    try:
        main()
        code = 0
    except SystemExit as done:
        code = exit_code(done)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
