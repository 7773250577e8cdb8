"""loadtests/run_locust.py: Locust's command line that leaves once its reports are written, even
when a thread would hold the interpreter's shutdown (as gRPC's did in the loadtest image)."""

import subprocess
import textwrap

import pytest

from tests.conftest import REPO_ROOT, run_make

VENV_PYTHON = REPO_ROOT / ".venv-loadtest" / "bin" / "python"
# a user that does nothing and a thread that never ends: the interpreter's shutdown waits for it
HELD = textwrap.dedent(
    """
    import threading, time
    from locust import User, constant, task

    threading.Thread(target=lambda: time.sleep(3600), daemon=False).start()

    class Idle(User):
        wait_time = constant(0.1)

        @task
        def nothing(self):
            pass
    """
)


@pytest.fixture(scope="module")
def loadtest_python():
    """.venv-loadtest's interpreter (`make loadtest` creates it; so does this fixture)."""
    done = run_make(".venv-loadtest/.installed", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return VENV_PYTHON


def locust(python, *program: str, locustfile) -> list[str]:
    return [str(python), *program, "-f", str(locustfile), "--headless", "-u", "1", "-t", "1s"]


def through_wrapper(python, locustfile) -> subprocess.CompletedProcess[str]:
    """A 1-second headless run of `locustfile` through loadtests/run_locust.py."""
    wrapper = str(REPO_ROOT / "loadtests" / "run_locust.py")
    return subprocess.run(
        locust(python, wrapper, locustfile=locustfile), capture_output=True, text=True, timeout=120
    )


def test_locust_leaves_once_its_summary_is_written_though_a_thread_holds_the_shutdown(
    loadtest_python, tmp_path
):
    locustfile = tmp_path / "held.py"
    locustfile.write_text(HELD)
    done = through_wrapper(loadtest_python, locustfile)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Aggregated" in done.stderr  # the summary table was written first


def test_plain_locust_would_stay_until_that_thread_ends(loadtest_python, tmp_path):
    """What the wrapper is for: without it the same run outlives its summary."""
    locustfile = tmp_path / "held.py"
    locustfile.write_text(HELD)
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(
            locust(loadtest_python, "-m", "locust", locustfile=locustfile),
            capture_output=True,
            timeout=30,
        )


def test_the_exit_code_is_the_one_locust_chose(loadtest_python, tmp_path):
    locustfile = tmp_path / "broken.py"
    locustfile.write_text(
        HELD
        + textwrap.dedent(
            """
            from locust import events

            @events.quitting.add_listener
            def objective_broken(environment, **_kwargs):
                environment.process_exit_code = 3
            """
        )
    )
    done = through_wrapper(loadtest_python, locustfile)
    assert done.returncode == 3, done.stderr[-2000:]
