"""Host and bundle text made safe to show: the one cleaning function for the CLI and the TUI.

Text that comes from a host or a bundle (hostnames, XenStore paths and values, process names,
domain names, collector errors) may hold terminal escape sequences, newlines that would forge a
line of our own, or characters the terminal cannot encode.  It lives below every layer that
shows text (cli, ui, bundle, host) so each of them can call it without importing another.
"""

from __future__ import annotations

_NAMED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def clean(text: object, *, backslash: bool = True) -> str:
    """``text`` with every control or invisible character shown as an escape, like xenstore-ls.

    ``\\t \\n \\r \\\\`` are backslash-escaped, other characters below 010 as ``\\%03o`` and
    the rest of C0, DEL and C1 as ``\\x%02x`` (xenstore-ls's ``sanitise_value`` rule);
    printable Unicode is kept, and any other character (format characters such as bidi
    overrides, lone surrogates, unassigned code points) is shown as ``\\uXXXX``/``\\UXXXXXXXX``.
    The result is always encodable as UTF-8 and is always one line.  ``backslash=False``
    leaves backslashes alone, for text that was cleaned already (cleaning it is then a no-op).
    """
    if not isinstance(text, str):
        text = str(text)
    if text.isprintable() and (not backslash or "\\" not in text):
        return text  # the common case, kept fast
    out: list[str] = []
    for char in text:
        named = _NAMED.get(char) if backslash or char != "\\" else char
        code = ord(char)
        if named is not None:
            out.append(named)
        elif char.isprintable():
            out.append(char)
        elif code < 0o10:
            out.append(f"\\{code:03o}")
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)
