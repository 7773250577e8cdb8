"""`python -m gateway` refuses a bad GATEWAY_* variable before anything listens, in one line per
problem, as gateway-grpc does (exit status 2)."""

import os
import subprocess
import sys


def test_a_bad_variable_stops_the_gateway_with_one_line_naming_it():
    env = {**os.environ, "GATEWAY_MODEL_INFO_TTL_S": "-1", "GATEWAY_PORT": "1"}

    done = subprocess.run(
        [sys.executable, "-m", "gateway"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: GATEWAY_MODEL_INFO_TTL_S='-1': Input should be greater than or equal to 0"
    ]
