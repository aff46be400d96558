"""The tracker's schedule on a manual clock: cadence, budget and a server's Retry-After,
measured in tracker time with no real waiting."""

from __future__ import annotations

import asyncio

from openhands_jupyter.sim import Faults
from openhands_jupyter.tracking import ManualClock, RequestBudget

from .conftest import SimClient, fast_config
from .waiting import eventually, run_for, tick


def test_the_budget_holds_the_sixth_request_for_a_minute() -> None:
    clock = ManualClock()
    budget = RequestBudget(per_minute=5, clock=clock)
    taken: list[float] = []

    async def go() -> None:
        async def take() -> None:
            done = await budget.acquire()
            taken.append(clock.now())
            done()

        tasks = [asyncio.ensure_future(take()) for _ in range(7)]
        for _ in range(50):
            await asyncio.sleep(0)
        assert len(taken) == 5  # the sixth and seventh wait for the window to move
        clock.advance(30)
        for _ in range(50):
            await asyncio.sleep(0)
        assert len(taken) == 5
        clock.advance(31)
        await asyncio.gather(*tasks)

    asyncio.run(go())
    assert taken[:5] == [1000.0] * 5 and taken[5:] == [1061.0, 1061.0]


def _settle(clock: ManualClock) -> None:
    """Let the tracker's loop do what is due now, until it sleeps again."""
    eventually(lambda: clock.sleepers > 0, 10)


def test_a_running_conversation_is_asked_about_once_per_poll_interval(
    sim_client: SimClient,
) -> None:
    clock = ManualClock()
    config = fast_config(time_scale=1.0, clock=clock, live_events=False, poll_interval=5.0)
    sim, oh = sim_client(config=config, scenario="long")
    conv = oh.start("Keep going")

    def step(_: float) -> None:
        tick(clock)

    # the simulator starts it in its own (sped-up, real) time; the tracker looks every tick
    eventually(lambda: conv.status == "running", 20, step=step)
    _settle(clock)
    before = oh.tracker.requests
    run_for(clock, 60)
    spent = oh.tracker.requests - before
    # one status poll per 5 s (12 a minute), plus the events reads of an unwatched run
    assert 12 <= spent <= 24, spent
    assert sim.stats.total >= spent


def test_a_long_retry_after_is_waited_out_in_full(sim_client: SimClient) -> None:
    clock = ManualClock()
    faults = Faults(rate_limit_rate=1.0, retry_after=45.0)
    config = fast_config(time_scale=1.0, clock=clock, poll_interval=5.0)
    sim, oh = sim_client(config=config, faults=faults)
    conv = oh.start_many(["Waits its turn"])[0]
    _settle(clock)
    eventually(lambda: sim.stats.faults_injected["429"] >= 1, 10)
    seen = sim.stats.total
    run_for(clock, 44)
    assert sim.stats.total == seen  # nothing sent while the server said to wait
    # it waits in the launch queue and says why and until when
    assert conv.status == "queued" and "Rate limited" in (conv.detail or "")
    assert "try again after" in (conv.detail or "")
    faults.rate_limit_rate = 0.0
    run_for(clock, 5)
    assert sim.stats.total > seen  # and asked again once it was over


def test_a_blocking_call_never_hangs_on_a_long_retry_after(sim_client: SimClient) -> None:
    import time

    import pytest

    from openhands_jupyter.api.errors import RateLimitError

    faults = Faults(rate_limit_rate=1.0, retry_after=3600.0)
    _sim, oh = sim_client(faults=faults)
    started = time.monotonic()
    with pytest.raises(RateLimitError, match=r"wait 3600 s: try again after \d\d:\d\d:\d\d"):
        oh.list()
    assert time.monotonic() - started < 5
