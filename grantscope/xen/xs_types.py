"""The values the XenStore client returns and the error it raises.

Kept apart from the client so the walk, the CLI and the model can share them without
importing the connection code.  :mod:`grantscope.xen.xenstore` re-exports all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grantscope._compat import slotted_dataclass
from grantscope.errors import GrantscopeError
from grantscope.xen.xs_wire import explain_errno

PERM_LETTERS = "rwbn"
"""``r`` read, ``w`` write, ``b`` both, ``n`` none (xs_wire.h / xs_strings_to_perms)."""


@slotted_dataclass(frozen=True)
class Perms:
    """A node's permissions, as GET_PERMS returns them.

    The first wire entry names the ``owner`` (who can always read and write) and its letter
    is the ``default`` for every domain not listed; ``acl`` holds the other entries as
    ``(domid, letter)``.  ``str()`` gives the wire form joined by spaces: ``"n0 r1"``.
    """

    owner: int
    default: str
    acl: tuple[tuple[int, str], ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str | bytes]) -> Perms:
        """Perms from wire strings (``["n0", "r1"]``); ValueError names a malformed entry."""
        parsed: list[tuple[int, str]] = []
        for raw in entries:
            text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
            if len(text) < 2 or text[0] not in PERM_LETTERS or not text[1:].isdigit():
                raise ValueError(
                    f"bad XenStore permission {text!r}: expected a letter r/w/b/n and a domid"
                )
            parsed.append((int(text[1:]), text[0]))
        if not parsed:
            raise ValueError("empty XenStore permission list")
        (owner, default), *rest = parsed
        return cls(owner, default, tuple(rest))

    @classmethod
    def from_string(cls, text: str) -> Perms:
        """Perms from ``"n0 r1"`` or xenstore-ls's ``"n0,r1"`` form."""
        return cls.parse(text.replace(",", " ").split())

    def entries(self) -> list[str]:
        """The wire strings, owner first."""
        return [f"{self.default}{self.owner}", *(f"{letter}{d}" for d, letter in self.acl)]

    def allows(self, domid: int, access: str) -> bool:
        """Whether ``domid`` may ``access`` (``"r"`` or ``"w"``) this node (privilege aside)."""
        if domid == self.owner:
            return True
        letter = next((lt for d, lt in self.acl if d == domid), self.default)
        return letter == "b" or letter == access

    def __str__(self) -> str:
        return " ".join(self.entries())


@slotted_dataclass(frozen=True)
class XsNode:
    """One node of a walk: its path, raw value (None if unreadable) and perms (if asked)."""

    path: str
    value: bytes | None
    perms: Perms | None = None


class XenStoreError(GrantscopeError):
    """A XenStore request failed: xenstored's errno name, the op and the path, in words."""

    def __init__(
        self,
        message: str,
        explanation: str = "",
        *,
        errno_name: str,
        op: str,
        path: str | None = None,
        exit_code: int | None = None,
    ):
        super().__init__(message, explanation or explain_errno(errno_name), exit_code=exit_code)
        self.errno_name = errno_name
        self.op = op
        self.path = path

    @classmethod
    def from_reply(cls, errno_name: str, op: str, path: str | None) -> XenStoreError:
        """The error for an ERROR reply carrying ``errno_name`` to ``op`` on ``path``."""
        where = f" {path}" if path is not None else ""
        return cls(f"XenStore {op}{where}: {errno_name}", errno_name=errno_name, op=op, path=path)

    @classmethod
    def too_big_without_parts(cls, path: str) -> XenStoreError:
        """E2BIG for a directory whose list exceeds one message on a daemon without
        DIRECTORY_PART (it answered ENOSYS): libxenstore gives E2BIG there too."""
        return cls(
            f"XenStore DIRECTORY {path}: E2BIG",
            "The directory's list of children is larger than one XenStore message (4096 "
            "bytes) and this XenStore daemon does not implement DIRECTORY_PART (oxenstored "
            "answers it with ENOSYS), so it cannot be listed over this connection. In dom0, "
            "oxenstored answers the whole list over its socket (/run/xenstored/socket, the "
            "default); from a domU it cannot be listed.",
            errno_name="E2BIG", op="DIRECTORY", path=path)

    def to_json(self) -> dict[str, Any]:
        """The base JSON plus ``errno_name``, ``op`` and ``path``."""
        data = super().to_json()
        data.update({"errno_name": self.errno_name, "op": self.op, "path": self.path})
        return data
