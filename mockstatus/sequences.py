"""Named retry sequences: the n-th request to a name gets the n-th code."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any


class SequenceConflict(Exception):
    pass


@dataclasses.dataclass(slots=True)
class Sequence:
    codes: tuple[int, ...]
    spec: str
    calls: int = 0
    last_step: int | None = None
    cycle: bool = False  # the last request's ?cycle=, so the snapshot can say what comes next

    def step_for(self, call: int, cycle: bool) -> int:
        """The 1-based step that the ``call``-th request (0-based) gets."""
        if call < len(self.codes):
            return call + 1
        return call % len(self.codes) + 1 if cycle else len(self.codes)


class Sequences:
    """Named retry sequences: the n-th request to a name gets the n-th code.

    Each step is taken without an ``await`` between reading and advancing the
    counter, so concurrent requests on one event loop get distinct steps.
    """

    def __init__(self, max_names: int) -> None:
        self.max_names = max_names
        self._items: collections.OrderedDict[str, Sequence] = collections.OrderedDict()

    def step(self, name: str, codes: tuple[int, ...], spec: str, cycle: bool) -> tuple[int, int]:
        """Advance ``name`` and return (code, step); steps count from 1 like the n-th request."""
        sequence = self._items.get(name)
        if sequence is None:
            sequence = self._items[name] = Sequence(codes, spec)
            while len(self._items) > self.max_names:
                self._items.popitem(last=False)  # evict the oldest name
        elif sequence.codes != codes:
            raise SequenceConflict(
                f"sequence {name!r} is already running {sequence.spec!r}, not {spec!r}; "
                f"reset it with DELETE /__mockstatus/sequences/{name} or use another name"
            )
        step = sequence.step_for(sequence.calls, cycle)
        sequence.calls += 1
        sequence.last_step = step
        sequence.cycle = cycle
        return codes[step - 1], step

    def reset(self, name: str | None = None) -> bool:
        if name is None:
            self._items.clear()
            return True
        return self._items.pop(name, None) is not None

    def snapshot(self) -> dict[str, Any]:
        snapshot = {}
        for name, seq in self._items.items():
            next_step = seq.step_for(seq.calls, seq.cycle)
            snapshot[name] = {
                "spec": seq.spec,
                "codes": list(seq.codes),
                "steps": len(seq.codes),
                "calls": seq.calls,
                "last_step": seq.last_step,
                "last_code": seq.codes[seq.last_step - 1] if seq.last_step else None,
                # What the next request gets if it asks with the same ?cycle= as the last one.
                "next_step": next_step,
                "next_code": seq.codes[next_step - 1],
            }
        return snapshot
