"""The error types every layer raises, so the CLI and the TUI can explain failures in words.

No layer lets a raw OSError or a traceback reach the user: failures become a
:class:`GrantscopeError` (or a subclass) that carries a one-line message, an
explanation with likely causes, and the exit status the CLI should use.
"""

from __future__ import annotations

from typing import Any


class GrantscopeError(Exception):
    """A failure that can be shown to the user as is.

    ``message`` is one line naming the problem; ``explanation`` says why it
    probably happened and what to do.  ``exit_code`` is what the CLI returns.
    """

    exit_code: int = 1

    def __init__(self, message: str, explanation: str = "", *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.explanation = explanation
        if exit_code is not None:
            self.exit_code = exit_code

    def to_json(self) -> dict[str, Any]:
        """The error as a JSON-ready object (``error`` member of ``--json`` output)."""
        return {"message": self.message, "explanation": self.explanation}

    def __str__(self) -> str:
        return self.message if not self.explanation else f"{self.message}\n{self.explanation}"


class UsageError(GrantscopeError):
    """Bad input from the user: a malformed argument, an unknown name, a bad value."""

    exit_code = 2


class NoXenError(GrantscopeError):
    """The command needs Xen and this machine is not a Xen host (or the devices are absent)."""

    exit_code = 2
