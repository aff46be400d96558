"""Faults, outages and a soak: tracking holds and recovers by itself (simulator, sped-up time)."""

from __future__ import annotations

import ctypes
import gc
import logging
import time

import pytest

from openhands_jupyter import OpenHands
from openhands_jupyter.sim import Faults, Simulator
from openhands_jupyter.tracking import Snapshot

from .conftest import fast_config
from .test_tracker import SCENARIOS, max_in_window
from .waiting import eventually, holds

SPEED = 40.0  # faster than the rest: these runs are long


def _config(speed: float = SPEED, **overrides: object):  # type: ignore[no-untyped-def]
    return fast_config(time_scale=1.0 / speed, **overrides)


def _held() -> int:
    """This process's resident memory once freed memory went back to the system (tracing
    every allocation would make the soak three times slower)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def _collect(convs: list) -> list[Snapshot]:  # type: ignore[type-arg]
    snaps: list[Snapshot] = []
    for conv in convs:
        conv.subscribe(snaps.append, visible=False)
    return snaps


@pytest.mark.slow
def test_twenty_conversations_under_every_fault(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    speed = 2 * SPEED  # about 13 sim-minutes of budget-bound work
    faults = Faults(
        error_rate=0.3,
        latency=10.0 / speed,
        drop_rate=0.05,
        malformed_rate=0.05,
        html_rate=0.05,
        rate_limit_rate=0.05,
        retry_after=20.0 / speed,
        seed=11,
    )
    budget = 60
    with (
        Simulator(speed=speed, max_concurrent=8, faults=faults) as sim,
        OpenHands(
            None,
            sim.url,
            api_version="v1",
            progress=False,
            tracker_config=_config(speed, budget_per_minute=budget),
        ) as oh,
    ):
        names = list(SCENARIOS)
        tasks = [f"faulty {i} [sim:{names[i % len(names)]}]" for i in range(20)]
        convs = oh.start_many(tasks)
        snaps = _collect(convs)
        deadline = time.monotonic() + 150
        for conv in convs:
            conv.wait(timeout=max(0.1, deadline - time.monotonic()))
        for i, conv in enumerate(convs):
            assert conv.status == SCENARIOS[names[i % len(names)]], (i, conv, conv.detail)
        injected = dict(sim.stats.faults_injected)
        assert injected.get("5xx", 0) > 10 and injected.get("429", 0) > 0
        retrying = [s for s in snaps if s.last_error and s.last_error.startswith("Retrying")]
        assert retrying, "faults must show as retrying"
        assert all(
            s.retry_at is not None or "checking whether" in (s.last_error or "") for s in retrying
        )
        assert any("Simulated server error" in (s.last_error or "") for s in retrying)
        assert sim.stats.early_after_429 == 0
        stamps = [r.at for r in sim.stats.log]
        assert max_in_window(stamps, 60.0 / speed) <= budget
        assert max(sim.stats.starts_seen.values()) == 1, "no start is sent twice"
        assert sorted(sim.stats.starts_seen) == sorted(tasks)
        assert sim.counts["v1.start"] >= 20  # some starts were refused (429) and sent again
    problems = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        or "never retrieved" in r.getMessage()
        or "destroyed" in r.getMessage()
    ]
    assert problems == []


@pytest.mark.slow
def test_server_gone_for_two_minutes_then_back() -> None:
    with (
        Simulator(speed=SPEED) as sim,
        OpenHands(None, sim.url, api_version="v1", progress=False, tracker_config=_config()) as oh,
    ):
        convs = [oh.start(f"survive outage {i} [sim:long]") for i in range(3)]
        snaps = _collect(convs)
        eventually(lambda: all(c.status == "running" for c in convs), 30)
        sim.stop()
        # two minutes of the tracker's clock: the conversations keep their status meanwhile
        holds(lambda: all(c.status == "running" for c in convs), 120.0 / SPEED, 0.1)
        down = [s for s in snaps if s.last_error and "Cannot connect" in s.last_error]
        assert down and all(s.retry_at for s in down)
        sim.start()
        for conv in convs:
            conv.wait(timeout=60)
        assert [c.status for c in convs] == ["finished"] * 3
        assert [c.last_error for c in convs] == [None] * 3


@pytest.mark.slow
def test_soak_thousand_conversations_bounded_memory() -> None:
    feed_size = 50
    with (
        Simulator(speed=SPEED) as sim,
        OpenHands(
            None,
            sim.url,
            api_version="v1",
            progress=False,
            # a thousand at once (no start waits for another's sandbox)
            tracker_config=_config(budget_per_minute=600, feed_size=feed_size, sandbox_starts=None),
        ) as oh,
    ):
        base = _held()
        tasks = [f"soak {i}" for i in range(990)] + [f"soak long {i} [sim:long]" for i in range(10)]
        convs = oh.start_many(tasks)
        delivered: dict[int, list[str]] = {}

        def count(snap: Snapshot) -> None:
            delivered.setdefault(snap.key, []).extend(e.id for e in snap.new_events)

        for conv in convs:
            conv.subscribe(count, visible=True)
        deadline = time.monotonic() + 400
        for conv in convs:
            conv.wait(timeout=max(0.1, deadline - time.monotonic()))
        assert all(c.status == "finished" for c in convs)
        # every event of a short run reaches its subscriber once; a long run that was under
        # way when the subscriber came delivers the feed's tail, then everything after it
        for conv in convs:
            ids = delivered[conv.snapshot().key]
            assert len(ids) == len(set(ids))
            shown = [
                e
                for e in sim.world.conversations[conv.id].events
                if e.type not in ("stats", "system", "user_id")
            ]
            if len(shown) < feed_size:
                assert len(ids) == len(shown)
            else:
                # its last events may come on the socket just after the status said finished
                eventually(lambda: shown[-1].id in ids, 20)  # noqa: B023
                assert len(ids) >= feed_size
            assert conv.result and conv.result.startswith("Done")
        assert sum(len(v) for v in delivered.values()) >= 7_900
        assert max(len(c.feed) for c in convs) == feed_size
        current = _held()
        stamps = [r.at for r in sim.stats.log]
        assert max_in_window(stamps, 60.0 / SPEED) <= 600
    grown = (current - base) / 1e6
    assert grown < 150, f"{grown:.0f} MB kept for 1000 conversations"
