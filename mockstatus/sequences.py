"""Named retry sequences: the n-th request to a name gets the n-th code."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Any


class SequenceConflict(Exception):
    pass


def conflict_message(name: str, running: str, spec: str, namespace: str | None = None) -> str:
    """The 409's text, the same from the memory and the Redis store."""
    where = f"?namespace={namespace}" if namespace not in (None, "default") else ""
    return (
        f"sequence {name!r} is already running {running!r}, not {spec!r}; "
        f"reset it with DELETE /__mockstatus/sequences/{name}{where} or use another name"
    )


@dataclasses.dataclass(slots=True)
class Sequence:
    codes: tuple[int, ...]
    spec: str
    calls: int = 0
    last_step: int | None = None
    cycle: bool = False  # the last request's ?cycle=, so the snapshot can say what comes next
    restarted: bool = False  # the name had been evicted and this run began again at step 1

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
        # Least recently used first: a name in use is never the one evicted.
        self._items: collections.OrderedDict[str, Sequence] = collections.OrderedDict()
        # Names evicted lately (as many as are kept), so a request that starts
        # one again can say it restarted rather than silently begin at step 1.
        self._evicted: collections.OrderedDict[str, None] = collections.OrderedDict()

    def step(self, name: str, codes: tuple[int, ...], spec: str, cycle: bool) -> tuple[int, int]:
        """Advance ``name`` and return (code, step); steps count from 1 like the n-th request."""
        sequence = self._items.get(name)
        if sequence is None:
            restarted = self._evicted.pop(name, False) is None
            sequence = self._items[name] = Sequence(codes, spec, restarted=restarted)
            while len(self._items) > self.max_names:
                evicted, _ = self._items.popitem(last=False)  # the least recently used name
                self._evicted[evicted] = None
                if len(self._evicted) > self.max_names:
                    self._evicted.popitem(last=False)
        elif sequence.codes != codes:
            # A namespace's names are kept as "namespace/name" (store.MemoryStore).
            namespace, _, bare = name.rpartition("/")
            raise SequenceConflict(conflict_message(bare, sequence.spec, spec, namespace or None))
        else:
            self._items.move_to_end(name)
        step = sequence.step_for(sequence.calls, cycle)
        sequence.calls += 1
        sequence.last_step = step
        sequence.cycle = cycle
        return codes[step - 1], step

    def restarted(self, name: str) -> bool:
        """Whether the request that just stepped ``name`` began it again after an eviction."""
        sequence = self._items.get(name)
        return sequence is not None and sequence.restarted and sequence.calls == 1

    def reset(self, name: str | None = None) -> bool:
        # A reset is asked for: the next run is a fresh start, not a restart.
        if name is None:
            self._items.clear()
            self._evicted.clear()
            return True
        self._evicted.pop(name, None)
        return self._items.pop(name, None) is not None

    def reset_matching(self, match: Callable[[str], bool]) -> None:
        """Reset every name ``match`` accepts (a namespace's), the evicted ones' memory included."""
        for table in (self._items, self._evicted):
            for name in [name for name in table if match(name)]:
                del table[name]

    def snapshot(self) -> dict[str, Any]:
        snapshot = {}
        for name, seq in self._items.items():
            next_step = seq.step_for(seq.calls, seq.cycle)
            snapshot[name] = {
                # The spec, not a list of every step: a 10,000-step sequence
                # would make the snapshot thousands of times its requests' size.
                "spec": seq.spec,
                "steps": len(seq.codes),
                "calls": seq.calls,
                "last_step": seq.last_step,
                "last_code": seq.codes[seq.last_step - 1] if seq.last_step else None,
                # What the next request gets if it asks with the same ?cycle= as the last one.
                "next_step": next_step,
                "next_code": seq.codes[next_step - 1],
                "restarted": seq.restarted,
            }
        return snapshot
