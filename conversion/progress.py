"""One rich progress bar per conversion step; a failing step becomes a one-line StepError."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


class StepError(RuntimeError):
    """A conversion step failed; `str()` names the step and the cause (no stack trace needed)."""

    def __init__(self, step: str, cause: str) -> None:
        super().__init__(f"step '{step}' failed: {cause}")
        self.step = step
        self.cause = cause


def describe(error: BaseException) -> str:
    """The cause in one line: the exception type and its first message line.

    A foreign library's line is cut at 300 characters; this package's own messages are kept whole.
    """
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 300 and not type(error).__module__.startswith("conversion"):
        first = first[:300] + "..."
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


class Steps:
    """`with steps.step("export", total=3) as advance:` shows a bar and names failures."""

    def __init__(self, label: str, console: Console | None = None) -> None:
        self.label = label
        self.console = console or Console(stderr=True)
        if not self.console.is_terminal and self.console.width < 150:
            self.console.width = 150  # logs and CI: one readable line per step
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=self.console,
        )
        self.skipped: dict[str, str] = {}

    def __enter__(self) -> Steps:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    @contextmanager
    def step(self, name: str, total: int = 1) -> Iterator[Callable[..., None]]:
        """A progress bar for one step; yields `advance(amount=1, note=None)`. Any exception leaves as StepError naming the step."""
        task = self.progress.add_task(f"{self.label}: {name}", total=max(total, 1), note="")

        def advance(amount: int = 1, note: str | None = None) -> None:
            self.progress.advance(task, amount)
            if note is not None:
                self.progress.update(task, note=note)

        try:
            yield advance
        except StepError:
            self.progress.update(task, note="[red]failed")
            raise
        except Exception as error:  # every cause becomes one line naming the step
            self.progress.update(task, note="[red]failed")
            raise StepError(name, describe(error)) from error
        self.progress.update(task, completed=max(total, 1))

    def skip(self, name: str, reason: str) -> None:
        """Record and show a step that did not run, with the reason."""
        self.skipped[name] = reason
        self.progress.add_task(
            f"{self.label}: {name}", total=1, completed=1, note=f"[yellow]skipped: {escape(reason)}"
        )
