"""``/__mockstatus/metrics``: this replica's counters in the Prometheus text format.

Per replica by design: a scraper sums them.  Requests are counted by the
journal as it records them (a dict increment, no prometheus-client call, so
the fast path stays as fast) and delays by delivery; prometheus-client is
imported on the first scrape and renders from a registry of this server's
own, not the process-wide one, since tests run several servers in one process.
"""

from __future__ import annotations

import bisect
import collections
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from .server import ServerState

# Seconds; a delay is at most --max-delay (300s by default).
DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# A label value per method: any token is a method (RFC 9110 §9.1), so others
# count as "other" and a client cannot grow the table without bound.
METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT")
    + ("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK")
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


class Delays:
    """The applied delays, bucketed as they happen (cheap) and rendered as a histogram when scraped."""

    __slots__ = ("counts", "total", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(DELAY_BUCKETS) + 1)
        self.total = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(DELAY_BUCKETS, seconds)] += 1
        self.total += 1
        self.sum += seconds


def render(state: ServerState) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    class Collector:
        def collect(self):
            requests = CounterMetricFamily(
                "mockstatus_requests", "Requests answered, by status code, reply kind, fault and method",
                labels=("code", "kind", "fault", "method"),
            )  # fmt: skip
            gone = 0
            by_labels: collections.Counter = collections.Counter()
            for (code, method, fault), count in list(state.journal.counts.items()):
                kind = fault or ("client-gone" if code == 499 else state.catalog.get(code).kind)
                by_labels[(str(code), kind, fault or "", method)] += count
                if code == 499:
                    gone += count
            for labels, count in sorted(by_labels.items()):
                requests.add_metric(labels, count)
            yield requests
            yield CounterMetricFamily(
                "mockstatus_client_gone", "Requests whose client went away before the reply (logged as 499)", gone
            )
            delays = state.delays
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, DELAY_BUCKETS), "+Inf"), delays.counts):
                cumulative += count
                buckets.append((bound, cumulative))
            yield HistogramMetricFamily(
                "mockstatus_delay_seconds", "Delays applied to replies", buckets=buckets, sum_value=delays.sum
            )
            yield GaugeMetricFamily("mockstatus_open_connections", "Client connections open", state.open_connections())
            yield GaugeMetricFamily(
                "mockstatus_held_replies", "Replies being delivered (in a delay, a slow body)", state.held_replies
            )
            yield CounterMetricFamily(
                "mockstatus_store_errors", "State store commands that failed", getattr(state.store, "errors", 0)
            )
            yield CounterMetricFamily(
                "mockstatus_journal_dropped",
                "Journal entries not written to the state store (its queue was full, or the store failed)",
                getattr(state.journal, "dropped", 0),
            )
            info = GaugeMetricFamily(
                "mockstatus_build_info", "The running version and state store", labels=("version", "store")
            )
            info.add_metric((__version__, state.store.kind), 1)
            yield info

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry)
