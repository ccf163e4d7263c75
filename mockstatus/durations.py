"""Durations: the syntax shared by delays, body delays, drips and config, and waiting one out.

Accepted: ``250ms``, ``2s``, ``1.5s``, ``1m``, a bare number of seconds (``1.5``),
and for delays a uniform range ``1s-3s`` or a distribution (``normal:1s,200ms``,
``lognormal:500ms,0.5``, ``exp:300ms``, each with an optional ``,max=DURATION``).  Every parser raises ``ValueError``
with a message that names the bad value and the allowed form, which callers put
verbatim into a 400 body or a one-line config error.  ``sleep_at_least`` waits
a duration out and never returns early.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import math
import random
import re
import time
import weakref

# Plain ASCII digits only: ``float()`` would accept "1_0", "inf", "nan" and
# non-ASCII digits, none of which a user means as a duration.
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(ms|s|m|h)?", re.ASCII)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

DURATION_FORM = "a duration such as 250ms, 2s, 1.5s, 1m or a number of seconds"

# Timer and done callbacks that read no context variable run in this one empty
# context: without it, each call_later and add_done_callback copies the
# caller's context, which a held request would keep for its whole delay.
NO_CONTEXT = contextvars.Context()


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
    """A fixed delay, a uniform range or a distribution, validated against a ceiling.

    ``low`` and ``high`` bound every pick (a distribution's ``high`` is its cap),
    so ``low == high`` means a fixed delay that needs no generator.
    """

    __slots__ = ("low", "high", "dist", "a", "b")

    def __init__(self, low: float, high: float, dist: str = "uniform", a: float = 0.0, b: float = 0.0) -> None:
        self.low = low
        self.high = high
        self.dist = dist
        self.a = a  # normal: mean; lognormal: median; exp: mean
        self.b = b  # normal: standard deviation; lognormal: sigma

    def pick(self, rng: random.Random | None = None) -> float:
        if self.low == self.high:
            return self.low
        rng = rng or random  # type: ignore[assignment]
        if self.dist == "uniform":
            return rng.uniform(self.low, self.high)
        if self.dist == "normal":
            seconds = rng.gauss(self.a, self.b)
        elif self.dist == "lognormal":
            # WireMock's lognormal delay: median and sigma of the underlying normal.
            seconds = rng.lognormvariate(math.log(self.a), self.b)
        else:
            seconds = rng.expovariate(1.0 / self.a)
        # A tail is cut at the cap and a normal's negative side at zero: a delay
        # cannot be negative, and none may pass --max-delay.
        return min(max(seconds, 0.0), self.high)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"DelaySpec({self.low}, {self.high}, {self.dist!r}, {self.a}, {self.b})"


DISTRIBUTIONS = ("uniform", "normal", "lognormal", "exp")
DELAY_FORM = (
    f"{DURATION_FORM}, a range like 1s-3s, or a distribution: uniform:1s-3s, normal:MEAN,SD, "
    "lognormal:MEDIAN,SIGMA or exp:MEAN, each with an optional ,max=DURATION"
)
_SIGMA = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,6})?|\.[0-9]{1,6}", re.ASCII)


def _above_max(what: str, text: str, max_delay: float) -> ValueError:
    return ValueError(
        f"bad {what} {text!r}: above the maximum of {format_seconds(max_delay)} (raise it with --max-delay)"
    )


def _parse_distribution(text: str, *, max_delay: float, what: str) -> DelaySpec:
    name, _, rest = text.partition(":")
    if name not in DISTRIBUTIONS:
        raise ValueError(f"bad {what} {text!r}: unknown distribution {name!r}; expected {DELAY_FORM}")
    items = rest.split(",")
    cap = max_delay
    if len(items) > 1 and items[-1].startswith("max="):
        cap = parse_duration(items.pop()[4:], what=f"{what} max")
        if cap > max_delay:
            raise _above_max(what, text, max_delay)
    if name == "uniform":
        if len(items) != 1 or "-" not in items[0][1:]:
            raise ValueError(f"bad {what} {text!r}: expected uniform:LOW-HIGH such as uniform:1s-3s")
        try:
            spec = parse_delay(items[0], max_delay=max_delay, what=what)
        except ValueError as exc:
            raise ValueError(str(exc).replace(repr(items[0]), repr(text), 1)) from None
        return DelaySpec(spec.low, min(spec.high, cap))
    wanted = {"normal": 2, "lognormal": 2, "exp": 1}[name]
    forms = {"normal": "normal:MEAN,SD such as normal:1s,200ms", "lognormal": "lognormal:MEDIAN,SIGMA such as "
             "lognormal:500ms,0.5", "exp": "exp:MEAN such as exp:300ms"}  # fmt: skip
    if len(items) != wanted or not all(items):
        raise ValueError(f"bad {what} {text!r}: expected {forms[name]}, optionally with ,max=DURATION")
    try:
        center = parse_duration(items[0], what=what)
        if name == "normal":
            spread = parse_duration(items[1], what=what)
        elif name == "lognormal":
            if not _SIGMA.fullmatch(items[1]):
                raise ValueError
            spread = float(items[1])
        else:
            spread = 0.0
    except ValueError:
        hint = " (not negative)" if any(item.startswith("-") for item in items) else ""
        raise ValueError(f"bad {what} {text!r}: expected {forms[name]}{hint}, optionally with ,max=DURATION") from None
    if name != "normal" and center <= 0:
        raise ValueError(f"bad {what} {text!r}: the {'median' if name == 'lognormal' else 'mean'} must be above 0")
    if center > max_delay:
        raise _above_max(what, text, max_delay)
    return DelaySpec(0.0, cap, name, center, spread)


def parse_delay(text: str, *, max_delay: float, what: str = "delay") -> DelaySpec:
    """Parse ``2s``, ``1s-3s`` or a distribution (``normal:1s,200ms``); reject anything above ``max_delay``."""
    if isinstance(text, str) and ":" in text:
        return _parse_distribution(text.strip(), max_delay=max_delay, what=what)
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
        raise _above_max(what, text, max_delay)
    return DelaySpec(low, high)


def format_seconds(seconds: float) -> str:
    """``1.5`` -> ``1.5s``; used in messages so limits read the way they are typed."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:g}s"


def deadline_after(seconds: float, since: float | None = None) -> float:
    """``seconds`` after ``since`` (``time.monotonic()``; never later than now), or after now."""
    now = time.monotonic()
    return (now if since is None else min(since, now)) + seconds


async def sleep_at_least(seconds: float, since: float | None = None) -> None:
    """``asyncio.sleep``, but never shorter by the monotonic clock; counted from ``since`` if given."""
    await wake_at(deadline_after(seconds, since))


def wake_at(deadline: float) -> asyncio.Future:
    """A future done at ``deadline`` (``time.monotonic()``), never before it.

    Awaited directly by a held reply (delivery), it costs no coroutine frame.
    """
    loop = asyncio.get_running_loop()
    wheel = _WHEELS.get(loop)
    if wheel is None:
        wheel = _WHEELS[loop] = Wheel(loop)
    return wheel.until(deadline)


class _Wake(asyncio.Future):
    """A delay's future; cancelling it (the client left, a shutdown) takes it off its wheel."""

    __slots__ = ("wheel", "slot")

    def cancel(self, msg=None) -> bool:
        if not self.done():  # one answered at once (its deadline past) was never on the wheel
            self.wheel.forget(self)
        return super().cancel(msg)


class Wheel:
    """Delays on one loop timer: a heap of the milliseconds in which some delay ends.

    A delay joins the slot of the first whole millisecond of the monotonic
    clock at or after its deadline; one loop timer waits for the earliest
    slot.  A held request then costs a future, where ``asyncio.sleep`` costs
    a future, a loop timer and a coroutine frame.  uvloop keeps its clock in
    whole milliseconds and rounds each timer, so the timer can fire up to a
    millisecond early: the wheel then waits again, and a client timing the
    reply never sees less than it asked for.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.members: dict[int, list[_Wake]] = {}  # by slot (whole milliseconds)
        # Slots in time order; a slot emptied by cancelled delays stays until
        # it comes up, or until they outnumber the live ones (then rebuilt).
        self.due: list[int] = []
        self.timer: asyncio.TimerHandle | None = None
        self.armed_for = 0  # the slot the timer waits for (with a timer)

    def until(self, deadline: float) -> asyncio.Future:
        wake = _Wake(loop=self.loop)
        if deadline <= time.monotonic():
            wake.set_result(None)
            return wake
        slot = math.ceil(deadline * 1000)
        wake.wheel, wake.slot = self, slot
        members = self.members.get(slot)
        if members is None:
            members = self.members[slot] = []
            heapq.heappush(self.due, slot)
            if self.timer is None or slot < self.armed_for:
                self._arm(slot)
        members.append(wake)
        return wake

    def forget(self, wake: _Wake) -> None:
        members = self.members.get(wake.slot)
        if members is None or wake not in members:
            return
        members.remove(wake)
        if members:
            return
        del self.members[wake.slot]
        if not self.members:  # nothing left to wait for: the timer goes at once
            self.due.clear()
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
        elif len(self.due) > 2 * len(self.members) + 64:
            self.due = sorted(self.members)  # a sorted list is a heap

    def _arm(self, slot: int) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.armed_for = slot
        wait = max(slot / 1000 - time.monotonic(), 0.0)
        self.timer = self.loop.call_later(wait, self._fire, context=NO_CONTEXT)

    def _fire(self) -> None:
        self.timer = None
        now = time.monotonic() * 1000
        due, members = self.due, self.members
        while due and due[0] <= now:
            for wake in members.pop(heapq.heappop(due), ()):
                if not wake.done():
                    wake.set_result(None)
        while due and due[0] not in members:
            heapq.heappop(due)
        if due:
            if due[0] - now < 1:  # fired early: wait the rest, at the loop's resolution
                self.armed_for = due[0]
                self.timer = self.loop.call_later(0.001, self._fire, context=NO_CONTEXT)
            else:
                self._arm(due[0])


_WHEELS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Wheel] = weakref.WeakKeyDictionary()
