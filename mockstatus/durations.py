"""Durations: the syntax shared by delays, body delays, drips and config, and waiting one out.

Accepted: ``250ms``, ``2s``, ``1.5s``, ``1m``, a bare number of seconds (``1.5``),
and for delays a uniform range ``1s-3s``.  Every parser raises ``ValueError``
with a message that names the bad value and the allowed form, which callers put
verbatim into a 400 body or a one-line config error.  ``sleep_at_least`` waits
a duration out and never returns early.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time

# Plain ASCII digits only: ``float()`` would accept "1_0", "inf", "nan" and
# non-ASCII digits, none of which a user means as a duration.
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(ms|s|m|h)?", re.ASCII)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

DURATION_FORM = "a duration such as 250ms, 2s, 1.5s, 1m or a number of seconds"


def parse_duration(text: str, *, what: str = "duration") -> float:
    """Return seconds for one duration; raise ValueError naming ``text`` otherwise."""
    value = text.strip() if isinstance(text, str) else text
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"bad {what} {text!r}: expected {DURATION_FORM}, not negative")
        return float(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"bad {what} {text!r}: expected {DURATION_FORM}")
    match = _DURATION.fullmatch(value)
    if match is None:
        hint = ", not negative" if value.startswith("-") else ""
        raise ValueError(f"bad {what} {text!r}: expected {DURATION_FORM}{hint}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class DelaySpec:
    """A fixed delay or a uniform range, validated against a ceiling."""

    __slots__ = ("low", "high")

    def __init__(self, low: float, high: float) -> None:
        self.low = low
        self.high = high

    def pick(self, rng: random.Random | None = None) -> float:
        if self.low == self.high:
            return self.low
        return (rng or random).uniform(self.low, self.high)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"DelaySpec({self.low}, {self.high})"


def parse_delay(text: str, *, max_delay: float, what: str = "delay") -> DelaySpec:
    """Parse ``2s`` or ``1s-3s``; reject anything above ``max_delay``."""
    if isinstance(text, str) and "-" in text.strip()[1:]:
        low_text, _, high_text = text.strip().partition("-")
        if low_text and high_text:
            low = parse_duration(low_text, what=what)
            high = parse_duration(high_text, what=what)
            if low > high:
                raise ValueError(f"bad {what} {text!r}: range start is above its end")
        else:
            raise ValueError(f"bad {what} {text!r}: expected {DURATION_FORM} or a range like 1s-3s")
    else:
        low = high = parse_duration(text, what=what)
    if high > max_delay:
        raise ValueError(
            f"bad {what} {text!r}: above the maximum of {format_seconds(max_delay)} (raise it with --max-delay)"
        )
    return DelaySpec(low, high)


def format_seconds(seconds: float) -> str:
    """``1.5`` -> ``1.5s``; used in messages so limits read the way they are typed."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:g}s"


async def sleep_at_least(seconds: float, since: float | None = None) -> None:
    """``asyncio.sleep``, but never shorter by the monotonic clock; counted from ``since`` if given.

    uvloop keeps loop time in whole milliseconds and rounds each timer, so a
    timer can fire up to a millisecond early; a client timing the reply would
    then see less than it asked for, so an early wake-up sleeps again until the
    deadline.  ``asyncio.sleep`` is inlined (a future and a timer): a held
    request keeps its frames for the whole delay, and one frame less adds up
    over thousands of held requests (benchmarks/held_connections.py).
    """
    loop = asyncio.get_running_loop()
    now = time.monotonic()
    deadline = (now if since is None else min(since, now)) + seconds
    seconds = deadline - now
    while seconds > 0:
        future = loop.create_future()
        timer = loop.call_later(seconds, _wake, future)
        try:
            await future
        finally:
            timer.cancel()  # cancelled (client gone, shutdown): the timer goes at once
        seconds = deadline - time.monotonic()
        if seconds > 0:
            seconds = max(seconds, 0.001)


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
