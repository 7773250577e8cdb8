"""`python -m conversion`: the conversion command line."""

from __future__ import annotations

from pathlib import Path

import typer

from conversion.demo import build_missing

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


@app.command()
def demo(
    repository: Path = typer.Option(Path("model_repository"), help="Model repository to write."),
    force: bool = typer.Option(False, help="Rebuild models that are already present."),
) -> None:
    """Build the demo models that are missing from the repository."""
    build_missing(repository, force=force)


@app.callback()
def main() -> None:
    """Convert models and write them into a Triton model repository."""


if __name__ == "__main__":
    app()
