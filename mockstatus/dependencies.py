"""The aiohttp releases this package runs on, checked before a server starts.

The range is the one declared in pyproject.toml (read back from the installed
package's metadata, so it is written in one place).  The floor is the oldest
release the public API used here allows with every test passing.
"""

from __future__ import annotations

import importlib.metadata
import re

_BOUND = re.compile(r"(>=|<)\s*([0-9]+(?:\.[0-9]+)*)")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"[0-9]+", text)[:3])


def aiohttp_range() -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(floor, ceiling) from this package's declared requirement on aiohttp, if installed."""
    try:
        requires = importlib.metadata.requires("mockstatus") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for requirement in requires:
        if re.match(r"aiohttp\s*[<>=]", requirement):
            bounds = dict(_BOUND.findall(requirement))
            if ">=" in bounds and "<" in bounds:
                return _version(bounds[">="]), _version(bounds["<"])
    return None


def aiohttp_problem() -> str | None:
    """One line saying why the installed aiohttp cannot serve, or None."""
    declared = aiohttp_range()
    if declared is None:
        return None
    try:
        installed = importlib.metadata.version("aiohttp")
    except importlib.metadata.PackageNotFoundError:
        return "aiohttp is not installed; mockstatus needs it (pip install mockstatus)"
    floor, ceiling = declared
    if not floor <= _version(installed) < ceiling:
        shown = f">={'.'.join(map(str, floor))},<{'.'.join(map(str, ceiling))}"
        return f"aiohttp {installed} is installed; mockstatus {importlib.metadata.version('mockstatus')} needs aiohttp{shown}"
    return None
