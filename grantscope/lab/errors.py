"""The lab's error type: every failure of building, booting or driving the lab."""

from __future__ import annotations

from grantscope.errors import GrantscopeError


class LabError(GrantscopeError):
    """The lab could not be built, booted or driven; ``explanation`` says what to do."""


class MissingToolsError(LabError):
    """Host tools the lab needs are not installed (exit status 2: fix the machine, then retry)."""

    exit_code = 2
