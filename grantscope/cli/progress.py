"""Progress of long work (``bundle export``, ``xs ls -r``, ``report``): Rich, on stderr, only on
a terminal.

When standard output and standard error are both terminals (a person is watching) a Rich
progress bar (or a spinner, when the amount of work is not known ahead) is drawn on stderr
and removed when the work is done; :meth:`Progress.note` prints a line that stays above it.
When either is redirected (``| head``, ``> file``, a script, CI), or with ``--json``, nothing
at all is drawn and :meth:`Progress.note` prints nothing: the output is exactly what it is
without a terminal.  One module, so every command shows its progress the same way.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

__all__ = ["Progress", "on_terminal"]


def on_terminal() -> bool:
    """True when standard output and standard error are both terminals."""
    try:
        return sys.stdout.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


class Progress:
    """A progress display for one piece of long work (see the module doc).

    ``total`` is the number of steps (None: a spinner with the elapsed time); ``enabled``
    defaults to :func:`on_terminal`.  Use as a context manager; :meth:`update` names the
    current step and how many are done.
    """

    def __init__(self, title: str, total: int | None = None, *,
                 enabled: bool | None = None) -> None:
        self.title = title
        self.total = total
        self.enabled = on_terminal() if enabled is None else enabled
        self._rich: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
            if self.total is not None:
                columns += [BarColumn(), MofNCompleteColumn()]
            columns.append(TimeElapsedColumn())
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(*columns, console=Console(file=sys.stderr),
                                      transient=True)
            self._rich.start()
            self._task = self._rich.add_task(self.title, total=self.total)
        return self

    def update(self, step: str = "", *, completed: int | None = None) -> None:
        """Show ``step`` beside the title, with ``completed`` steps done (when known)."""
        if self._rich is None:
            return
        description = f"{self.title}: {step}" if step else self.title
        self._rich.update(self._task, description=description, completed=completed)

    def note(self, line: str) -> None:
        """A line printed above the progress (kept when it goes); nothing when disabled."""
        if self._rich is not None:
            self._rich.console.print(line, markup=False, highlight=False)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
