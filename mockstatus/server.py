"""One running server's context: its settings, catalog, precomputed replies,
state store (sequences and journal), rate-limit buckets and their clock, the replies in flight
and the fast-path table."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from .bodies import Replies
from .catalog import Catalog, StatusInfo
from .journal import JOURNAL_BODY_PREVIEW, Journal
from .kinds import kind_of
from .limits import Clock
from .metrics import Delays
from .settings import Settings
from .store import create as create_store

# One line per request with --access-log (runner.py's access loggers), and a
# line for a client that went away during a delay (delivery.py).
access_log = logging.getLogger("mockstatus.access")


class ServerState:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.replies = Replies(catalog)
        # Sequences and the journal: in this process, or in Redis (--state).
        self.store = create_store(
            settings,
            (settings.journal_size, settings.journal_max_bytes),
            {"keep_secrets": settings.journal_secrets == "keep"},
        )
        self.journal: Journal = self.store.journal
        # What rate limits and outages read (the store's, shared with replicas over Redis).
        self.clock: Clock = self.store.clock
        self.preview_size = JOURNAL_BODY_PREVIEW
        # Replies being delivered now (in a delay, a slow body), for the metrics.
        # A shutdown cancels them with every other handler when its grace is over.
        self.held_replies = 0
        # The fast path (handlers.status_handler): codes whose plain request needs
        # nothing but the precomputed reply: a fast kind and no delay from the
        # catalog or --default-delay (the precedence of delivery._pick_delay).
        self.fast_path: dict[str, StatusInfo] = {
            str(info.code): info
            for info in catalog
            if kind_of(info.kind)[0].fast and not (info.delay if info.delay is not None else settings.default_delay)
        }
        # The code in each catalog code's plain route (app.EACH_CATALOG_CODE), by
        # path: a lookup, where a slice would make a string for every request.
        self.plain_codes: dict[str, str] = {f"/status/{info.code}": str(info.code) for info in catalog}
        self.closing = False
        self.delays = Delays()  # the applied delays, for the metrics
        # Client connections open now: the connection layer's count, once the server listens.
        self.open_connections: Callable[[], int] = lambda: 0

    async def reset(self) -> None:
        """Forget per-test state: the journal, every sequence, bucket and outage, the test clock."""
        await self.store.reset()


STATE = web.AppKey("mockstatus", ServerState)
