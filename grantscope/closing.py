"""One ``with`` protocol for everything that holds something until ``close()``: devices,
mappings, XenStore connections and watches, hosts, and their simulated stand-ins."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

_C = TypeVar("_C", bound="Closing")


class Closing:
    """Base class: ``with obj:`` gives ``obj`` and calls ``obj.close()`` however the block
    ends.  Subclasses define ``close`` (idempotent: it may run again from a cleanup path)."""

    __slots__ = ()

    def close(self) -> None:
        """Release what the object holds (each subclass says what)."""
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
