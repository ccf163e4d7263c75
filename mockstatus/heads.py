"""The ``Server`` string every reply carries, and raw HTTP/1.1 heads for the
replies written straight to the socket."""

from __future__ import annotations

import email.utils

from . import __version__

SERVER = f"mockstatus/{__version__}"


def raw_head(status: int, reason: str, headers) -> bytes:
    """A status line and header block."""
    lines = [f"HTTP/1.1 {status} {reason}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1", "replace")


def http_date() -> str:
    return email.utils.formatdate(usegmt=True)
