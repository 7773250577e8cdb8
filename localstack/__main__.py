"""`python -m localstack up|down|status`: the local stack in the background; `serve-triton`: the
bundled tritonserver in the foreground, as a container's `tritonserver`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from localstack.errors import StackError
from localstack.stack import SUPERVISOR, LocalStack, StackPorts
from localstack.tritonserver import TritonInstallation, derive_local_repository

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()

RunDir = typer.Option(Path(".run"), help="Logs, pid files and the derived Triton repository.")
Repository = typer.Option(Path("model_repository"), help="The canonical model repository.")
FreePorts = typer.Option(
    False,
    help="Listen on ports the kernel reports free (the table shows them), e.g. beside a stack.",
)


@app.command()
def up(
    run_dir: Path = RunDir, model_repository: Path = Repository, free_ports: bool = FreePorts
) -> None:
    """Start redis-server, tritonserver and the gateway under a supervisor that restarts whichever
    dies; return once all are ready."""
    stack = LocalStack(run_dir, model_repository, StackPorts.free() if free_ports else StackPorts())
    try:
        with console.status("starting redis, triton and the gateway"):
            stack.start()
    except StackError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    _print_urls(stack)
    console.print(f"logs: {stack.run_dir / 'logs'}   stop with: {stop_command(run_dir)}")


def stop_command(run_dir: Path) -> str:
    """What stops the stack in `run_dir`: `make down` for make's own `.run`, else the CLI."""
    if run_dir == Path(".run"):
        return "make down"
    return f"python -m localstack down --run-dir {run_dir}"


@app.command()
def down(run_dir: Path = RunDir) -> None:
    """Stop exactly the processes that `up` started: the supervisor and every component."""
    stopped = LocalStack(run_dir, Path(".")).stop()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(run_dir: Path = RunDir) -> None:
    """Show each component: state, pid, restarts by the supervisor, how its last run ended."""
    stack = LocalStack(run_dir, Path("."))
    supervisor = stack.processes.pid(SUPERVISOR)
    table = Table("part", "state", "pid", "restarts", "last exit")
    for name, state in stack.component_states().items():
        pid = state.pid if supervisor else stack.processes.pid(name)
        shown = state.state if supervisor or not pid else "running, unsupervised"
        table.add_row(name, shown, str(pid or "-"), str(state.restarts), state.last_exit or "-")
    console.print(table)
    console.print(
        f"supervisor: running, pid {supervisor}" if supervisor else "supervisor: not running"
    )


@app.command(
    "serve-triton",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def serve_triton(ctx: typer.Context) -> None:
    """Run the bundled tritonserver in the foreground with tritonserver's own arguments, serving the
    given --model-repository through its python-backend twins (derived under the temp folder):
    the stand-in for the official image's `tritonserver` where that image cannot be pulled."""
    args = list(ctx.args)
    flags = [i for i, arg in enumerate(args) if arg.split("=")[0] == "--model-repository"]
    if len(flags) != 1:
        console.print("[red]error:[/red] give exactly one --model-repository")
        raise typer.Exit(2)
    i = flags[0]
    source = args[i].partition("=")[2] or (args.pop(i + 1) if i + 1 < len(args) else "")
    run_dir = Path(tempfile.gettempdir()) / "triton"
    try:
        triton = TritonInstallation.locate()
        derive_local_repository(Path(source), run_dir / "repository")
    except StackError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    args[i] = f"--model-repository={run_dir / 'repository'}"
    backends = triton.backend_directory(run_dir)
    command = [str(triton.binary), *args, f"--backend-directory={backends}"]
    os.execve(command[0], command, triton.environment())


def _print_urls(stack: LocalStack) -> None:
    table = Table("part", "address", title="local stack ready")
    for name, url in stack.urls.items():
        table.add_row(name, url)
    console.print(table)


if __name__ == "__main__":
    app()
