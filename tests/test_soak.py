"""A short soak (benchmarks/soak.py): 5,000 checked requests from 50 connections.

Every catalog code (GET and HEAD, the 1xx, 101, 408, 444 and 600 included),
unlisted codes, small delays, sequences, weighted lists, POST bodies and every
fault, each reply checked; then the server subprocess's open files must be
back at the warm-up baseline, its RSS within the tolerance and not growing in
the second half, and its stderr empty.  The full run (200,000 requests from
200 connections) is ``.venv/bin/python benchmarks/soak.py``; its figures are
in the README (Limits and guarantees).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import soak  # noqa: E402


@pytest.mark.slow
def test_short_soak_every_reply_as_asked_and_the_server_back_to_baseline():
    result = soak.run(requests=5_000, connections=50, seed=3)
    report = soak.report(result)
    assert result.failed == 0 and result.ok == 5_000, report
    assert not result.missing, report  # every catalog code was asked for
    assert set(result.kinds) == {"code", "delay", "sequence", "weighted", "post", "fault"}, report
    assert {f"fault={fault}" for fault in soak.FAULTS} <= set(result.lines), report
    assert result.final["fds"] == result.baseline["fds"], report
    assert result.rss_growth <= soak.RSS_TOLERANCE_KIB, report
    assert result.second_half_growth <= soak.SECOND_HALF_TOLERANCE_KIB, report
    assert result.stderr.strip() == "", report
    assert result.passed, report
