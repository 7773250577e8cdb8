"""`python -m localstack up|down|status`: the local stack in the background."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from localstack.errors import StackError
from localstack.stack import LocalStack

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()

RunDir = typer.Option(Path(".run"), help="Logs, pid files and the derived Triton repository.")
Repository = typer.Option(Path("model_repository"), help="The canonical model repository.")


@app.command()
def up(run_dir: Path = RunDir, model_repository: Path = Repository) -> None:
    """Start redis-server, tritonserver and the gateway; return once all are ready."""
    stack = LocalStack(run_dir, model_repository)
    try:
        with console.status("starting redis, triton and the gateway"):
            stack.start()
    except StackError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    _print_urls(stack)
    console.print(f"logs: {stack.run_dir / 'logs'}   stop with: make down")


@app.command()
def down(run_dir: Path = RunDir) -> None:
    """Stop exactly the processes that `up` started."""
    stopped = LocalStack(run_dir, Path(".")).stop()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(run_dir: Path = RunDir) -> None:
    """Show which recorded processes are alive."""
    processes = LocalStack(run_dir, Path(".")).processes
    for name in processes.names():
        pid = processes.pid(name)
        console.print(f"{name}: {'running, pid ' + str(pid) if pid else 'not running'}")


def _print_urls(stack: LocalStack) -> None:
    table = Table("part", "address", title="local stack ready")
    for name, url in stack.urls.items():
        table.add_row(name, url)
    console.print(table)


if __name__ == "__main__":
    app()
