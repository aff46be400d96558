"""The tracker against the simulator over real HTTP, on sped-up time."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings

import pytest

from openhands_jupyter import AsyncOpenHands, OpenHands
from openhands_jupyter.sim import Faults, Simulator
from openhands_jupyter.tracking import ManualClock

from .conftest import SPEED, SimClient, fast_config
from .waiting import eventually, holds, run_for, until


def max_in_window(stamps: list[float], window: float) -> int:
    """The largest number of requests inside any sliding window of ``window`` seconds."""
    stamps = sorted(stamps)
    best = 0
    j = 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


SCENARIOS = {
    "finish": "finished",
    "error": "error",
    "stuck": "stuck",
    "waiting": "waiting",
    "start_error": "error",
    "idle": "idle",
    "paused": "paused",
}


@pytest.mark.parametrize("n", [7, 30])
def test_many_conversations_reach_their_true_status_within_budget(n: int) -> None:
    budget = 60
    with (
        Simulator(speed=SPEED) as sim,
        OpenHands(
            None, sim.url, tracker_config=fast_config(budget_per_minute=budget), progress=False
        ) as oh,
    ):
        names = list(SCENARIOS)
        convs = [oh.start(f"task {i} [sim:{names[i % len(names)]}]") for i in range(n)]
        deadline = time.monotonic() + 60
        for conv in convs:
            conv.wait(timeout=max(0.1, deadline - time.monotonic()))
        for i, conv in enumerate(convs):
            assert conv.status == SCENARIOS[names[i % len(names)]], (i, conv, conv.detail)
        stamps = [r.at for r in sim.stats.log]
        window = 60.0 / SPEED
        assert max_in_window(stamps, window) <= budget
        assert max_in_window(stamps, 1.0 / SPEED) <= 10
        # batching: one status request covers every conversation
        assert sim.counts["v1.conversations"] < 15 * n


def test_requests_stop_when_nothing_needs_polling(sim_client: SimClient) -> None:
    clock = ManualClock()
    sim, oh = sim_client(clock=clock)
    conv = oh.start("quick")
    until(clock, lambda: conv.status == "finished" and conv.result, 300)
    after = len(sim.stats.log)

    # the end may be confirmed with the app server once more; then 20 s go by without a
    # request
    def quiet_for_twenty_seconds() -> bool:
        before = sim.stats.total
        run_for(clock, 20)
        return sim.stats.total == before

    until(clock, quiet_for_twenty_seconds, 200)
    late = [r.route for r in sim.stats.log[after:]]
    assert len(late) <= 2, late
    assert conv.status == "finished"


def test_budget_holds_for_99_running_conversations() -> None:
    with (
        Simulator(speed=SPEED, scenario="long") as sim,
        OpenHands(
            None,
            sim.url,
            tracker_config=fast_config(budget_per_minute=60, sandbox_starts=None),
            progress=False,
        ) as oh,
    ):
        convs = oh.start_many([f"long task {i}" for i in range(99)])
        for conv in convs[:5]:
            conv.subscribe(lambda s: None)  # visible: event tails too
        # for 80 sim-seconds: never more than 60 requests in a minute
        holds(
            lambda: max_in_window([r.at for r in sim.stats.log], 60.0 / SPEED) <= 60,
            4.0,
            0.2,
        )
        statuses = {c.status for c in convs}
        assert statuses <= {"starting", "running", "finished"}
        assert "running" in statuses


def test_429_retry_after_is_respected_and_shown(sim_client: SimClient) -> None:
    faults = Faults(rate_limit_rate=0.0, retry_after=0.5, seed=1)
    sim, oh = sim_client(faults=faults)
    conv = oh.start("rate limited")
    snaps = []
    conv.subscribe(snaps.append)
    eventually(lambda: snaps)
    refused_from = time.time()
    sim.faults.rate_limit_rate = 1.0
    eventually(lambda: conv.last_error, 5)
    assert conv.last_error is not None and "Rate limited" in conv.last_error
    # when it will try again: after the refusals began
    assert any(s.retry_at and s.retry_at > refused_from for s in snaps)
    holds(lambda: conv.last_error is not None, 1.0, what="the error shows while refused")
    sim.faults.rate_limit_rate = 0.0
    conv.wait(timeout=20)
    assert conv.status == "finished"
    assert sim.stats.early_after_429 == 0
    assert conv.last_error is None


def test_server_errors_back_off_and_recover(sim_client: SimClient) -> None:
    clock = ManualClock()
    sim, oh = sim_client(clock=clock)
    conv = oh.start("flaky")
    sim.faults.error_rate = 1.0
    run_for(clock, 20)
    during = sim.stats.total
    assert during < 20, "backoff, not a hot loop"
    assert conv.last_error is not None and "Retrying" in conv.last_error
    sim.faults.error_rate = 0.0
    until(clock, lambda: conv.status == "finished" and conv._tracked.settled, 600)
    assert conv.last_error is None


def test_queued_launches_start_in_order_when_slots_free(sim_client: SimClient) -> None:
    # the server's limit of 2 (its 429s) alone: no start waits for another's sandbox
    sim, oh = sim_client(max_concurrent=2, config=fast_config(sandbox_starts=None))
    convs = oh.start_many([f"job {i}" for i in range(5)])
    assert [c.status for c in convs[:2]] == ["starting", "starting"]
    assert [c.status for c in convs[2:]] == ["queued"] * 3
    assert "limit of 2" in (convs[2].detail or "")
    for conv in convs:
        conv.wait(timeout=60)
    assert [c.status for c in convs] == ["finished"] * 5
    order = [c.start_task_id for c in convs]
    created = sorted(sim.world.tasks.values(), key=lambda t: t.created)
    assert [t.id for t in created] == order
    assert all(v == 1 for v in sim.stats.starts_seen.values()), "no start sent twice"


def test_max_concurrent_queues_without_asking_the_server() -> None:
    with (
        Simulator(speed=SPEED) as sim,
        OpenHands(
            None, sim.url, tracker_config=fast_config(max_concurrent=1), progress=False
        ) as oh,
    ):
        a, b, c = oh.start_many(["a", "b", "c"])
        assert (a.status, b.status, c.status) == ("starting", "queued", "queued")
        assert c.cancel() is True
        assert c.status == "error" and "cancelled" in (c.detail or "")
        b.wait(timeout=30)
        assert a.status == "finished" and b.status == "finished"
        assert sim.counts["v1.start"] == 2


def test_commands_from_another_thread(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    conv = oh.start("work [sim:idle]")
    conv.wait(timeout=20)
    errors: list[BaseException] = []

    def other() -> None:
        try:
            conv.send("carry on")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    assert not errors
    conv.wait(timeout=20)
    assert conv.status == "finished"
    assert sim.counts["v1.send_message"] == 1


def test_close_leaves_no_thread_or_task_behind() -> None:
    before = {t.name for t in threading.enumerate()}
    gc.collect()  # what earlier tests left goes now, not inside the check below
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Simulator(speed=SPEED) as sim:
            oh = OpenHands(None, sim.url, tracker_config=fast_config(), progress=False)
            conv = oh.start("x")
            eventually(lambda: conv.id)
            oh.close()
            oh.close()
            # a widget still on screen may ask after it: nothing is done, nothing raised
            conv.watch_changes()
            oh.tracker.wake()
        gc.collect()

    def left() -> set[str]:
        after = {t.name for t in threading.enumerate()}
        return {n for n in after - before if n.startswith("openhands")}

    eventually(lambda: not left(), 5)


async def test_async_client_on_the_running_loop_and_clean_shutdown() -> None:
    with Simulator(speed=SPEED) as sim:
        oh = AsyncOpenHands(None, sim.url, tracker_config=fast_config(), progress=False)
        conv = await oh.start("async work")
        assert oh.tracker.loop is asyncio.get_running_loop()
        await conv.wait_async(timeout=20)
        assert conv.status == "finished"
        other = await oh.start("slow [sim:long]")
        with pytest.raises(asyncio.TimeoutError):
            await other.wait_async(timeout=0.2)
        await oh.aclose()
        tasks = [t for t in asyncio.all_tasks() if t.get_name() == "openhands-tracker"]
        assert all(t.done() for t in tasks)


def test_wait_timeout_raises_timeout_error(sim_client: SimClient) -> None:
    _sim, oh = sim_client(scenario="long")
    conv = oh.start("long")
    with pytest.raises(TimeoutError, match="still"):
        conv.wait(timeout=0.3)
    assert conv.tracked


def test_text_progress_in_scripts(
    capsys: pytest.CaptureFixture[str], sim_client: SimClient
) -> None:
    _sim, oh = sim_client(progress=True)
    conv = oh.start("Print my progress")
    conv.wait(timeout=20)
    out: list[str] = []

    def printed() -> str:
        out.append(capsys.readouterr().out)
        return "".join(out)

    # the last lines are printed from the tracker's thread: until the end and the answer
    eventually(lambda: ": finished" in (text := printed()) and "answer:" in text, 5)
    lines = "".join(out).splitlines()
    said = [line.split(": ", 1)[-1] for line in lines]
    statuses = [s for s in said if not s.startswith(("answer:", "conversation id"))]
    assert any(s.startswith("starting") for s in statuses)
    # each status as the tracker saw it ("running" may fall between two reads of a short
    # run), the end last
    assert statuses[-1] == "finished", statuses
    assert all(s.startswith(("starting", "running")) for s in statuses[:-1]), statuses
    assert all(line.startswith("[openhands] Print my progress: ") for line in lines)
    # one id per conversation: the server's, said once, never the start task's
    assert [s for s in said if s.startswith("conversation id")] == [f"conversation id {conv.id}"]
    assert conv.start_task_id and conv.start_task_id not in "".join(lines)
    assert len(lines) < 12


def test_wait_returns_when_the_final_fetch_brings_nothing_new(sim_client: SimClient) -> None:
    # With no event lag a visible conversation has its finish event before the status says
    # finished: the final fetch then finds nothing new, and wait() must still return.
    _sim, oh = sim_client(batch_size=1)
    for _ in range(3):
        conv = oh.start("no lag")
        conv.subscribe(lambda s: None)
        conv.wait(timeout=15)
        assert conv.status == "finished" and conv.result == "Done: no lag"
        conv.send("again")
        conv.wait(timeout=15)
        assert conv.result == "Done: again"


def test_start_many_from_a_dataframe(sim_client: SimClient) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {"task": ["Fix A", "Fix B"], "repository": ["octo/a", None], "branch": ["dev", None]}
    )
    _sim, oh = sim_client()
    a, b = oh.start_many(frame)
    assert (a.repository, a.branch, b.repository) == ("octo/a", "dev", None)
    a.wait(timeout=20)
    b.wait(timeout=20)
    assert (a.result, b.result) == ("Done: Fix A", "Done: Fix B")


def test_the_loop_never_spins(sim_client: SimClient) -> None:
    """Watched from its first moment to its end (a start task has no events to read yet): the
    loop turns a few times a second at most, never thousands."""
    _sim, oh = sim_client(speed=4.0, config=fast_config(time_scale=0.25))
    started = time.monotonic()
    conv = oh.start("Watched from the start")
    conv.subscribe(lambda s: None, visible=True)
    conv.wait(timeout=60)
    elapsed = time.monotonic() - started
    assert conv.status == "finished"
    assert oh.tracker.turns / elapsed < 40, (oh.tracker.turns, elapsed)
