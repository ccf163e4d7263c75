"""Error replies written by the connection layer, before any request object exists."""

from __future__ import annotations

from .heads import SERVER, http_date, raw_head


def plain_reply(
    status: int,
    reason: str,
    text: str,
    extra: tuple[tuple[str, str], ...] = (),
    *,
    nosniff: bool = False,
    head_only: bool = False,
) -> bytes:
    """A whole closing reply with a text body naming what went wrong (only its head for HEAD)."""
    body = f"{status} {reason}: {text}\n".encode("utf-8", "backslashreplace")
    headers = [
        ("Server", SERVER),
        ("Date", http_date()),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *extra,
    ]
    if nosniff:
        # The text quotes the bytes it refused: never let a browser sniff it as HTML.
        headers.append(("X-Content-Type-Options", "nosniff"))
    headers.append(("Connection", "close"))
    return raw_head(status, reason, headers) + (b"" if head_only else body)
