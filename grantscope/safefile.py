"""Writing the files grantscope creates as root: new, private, complete, never through a link.

``dump capture -o``, ``report --save-console`` and the TUI's page saves run as root in
directories other users may write to (``/tmp``).  So a file is written to a temporary file
created with ``O_EXCL | O_NOFOLLOW`` and mode 0600 in the target's directory, flushed, and
then linked to its name with ``link()``, which fails when the name exists (file or symlink)
and never follows a link: no existing file is replaced, no symlink is followed, and a reader
never sees half a file.

:func:`replace_file` is for files meant to be rewritten (``metrics --output`` for
node_exporter's textfile collector): the same private temporary file, then ``rename()`` over
the name, which replaces a file or a symlink itself and never writes through the link.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets

from grantscope.errors import GrantscopeError, UsageError

__all__ = ["check_new_file", "replace_file", "write_new_file"]

MODE = 0o600


def _refusal(path: str, what: str, why: str) -> UsageError:
    return UsageError(f"{what}: {path} {why}",
                      "grantscope creates a new file (mode 0600) and never overwrites one or "
                      "follows a symlink: choose a new name.")


def check_new_file(path: str, what: str = "output") -> None:
    """UsageError (exit 2) now, before any work, if ``path`` exists or its directory does not."""
    if os.path.lexists(path):
        kind = "is a symlink" if os.path.islink(path) else "already exists"
        raise _refusal(path, what, f"{kind}; refusing to write through or over it")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{what}: directory {parent} does not exist", "Create it first.")


def write_new_file(path: str, data: bytes, what: str = "output") -> None:
    """Create ``path`` holding ``data`` (mode 0600), atomically; refuse an existing name."""
    check_new_file(path, what)
    parent = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(parent, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temp, flags, MODE)
    except OSError as err:
        raise GrantscopeError(f"cannot write {path}: {err.strerror}",
                              "Check the directory's permissions and free space.") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, MODE)  # in case the umask took bits away from the owner
        try:
            os.link(temp, path, follow_symlinks=False)  # fails with EEXIST, never replaces
        except OSError as err:
            if err.errno == errno.EEXIST:
                raise _refusal(path, what, "appeared meanwhile; refusing to replace it") \
                    from None
            if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # A filesystem without hard links: rename, after checking the name again.
            check_new_file(path, what)
            os.rename(temp, path)
    except OSError as err:
        raise GrantscopeError(f"cannot write {path}: {err.strerror}",
                              "Check the directory's permissions and free space.") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def replace_file(path: str, data: bytes, what: str = "output", mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically, replacing what is there (a reader sees the old
    file or the new one, never half of one); ``mode`` is set before the rename."""
    if os.path.isdir(path) and not os.path.islink(path):
        raise UsageError(f"{what}: {path} is a directory", "Give a file name.")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{what}: directory {parent} does not exist", "Create it first.")
    temp = os.path.join(parent, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temp, flags, MODE)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, mode)
            os.rename(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    except OSError as err:
        raise GrantscopeError(f"cannot write {path}: {err.strerror}",
                              "Check the directory's permissions and free space.") from None
