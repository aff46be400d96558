"""Starts wait for each other's sandbox on a self-hosted server, whose process sandbox gives
sandboxes made at the same moment the same port (all but one of those starts then fail);
OpenHands Cloud makes its sandboxes elsewhere, and its starts do not wait."""

from __future__ import annotations

from openhands_jupyter import OpenHands
from openhands_jupyter.constants import CLOUD_URL
from openhands_jupyter.tracking import Snapshot, TrackerConfig
from openhands_jupyter.tracking.launching import SANDBOX_WAIT

from .conftest import SimClient, fast_config
from .waiting import eventually

ROWS = [{"n": n} for n in range(4)]


def test_a_fanout_makes_one_sandbox_at_a_time_and_every_row_starts(
    sim_client: SimClient,
) -> None:
    sim, oh = sim_client(port_clash=True)
    convs = oh.map("Count to {n}", ROWS)
    seen: list[list[Snapshot]] = [[] for _ in convs]
    for conv, snaps in zip(convs, seen, strict=True):
        conv.subscribe(snaps.append)
    for conv in convs:
        conv.wait(timeout=60)
    assert [c.status for c in convs] == ["finished"] * 4, [c.detail for c in convs]
    assert not any(c.clashed for c in sim.world.conversations.values())
    # the first made its sandbox at once; each other waited for one before it, and said so
    assert not any(s.status == "queued" for s in seen[0])
    for snaps in seen[1:]:
        assert any(s.status == "queued" and s.detail == SANDBOX_WAIT for s in snaps), [
            (s.status, s.detail) for s in snaps
        ]
    # each start was sent once the one before it had its sandbox
    tasks = sorted(sim.world.tasks.values(), key=lambda t: t.created)
    assert [t.id for t in tasks] == [c.start_task_id for c in convs]


def test_without_the_wait_the_clashing_starts_fail_as_on_the_real_server(
    sim_client: SimClient,
) -> None:
    _sim, oh = sim_client(port_clash=True, config=fast_config(sandbox_starts=None))
    convs = oh.map("Count to {n}", ROWS)
    eventually(lambda: all(c.status in ("finished", "error") for c in convs), 60)
    failed = [c for c in convs if c.status == "error"]
    assert len(failed) == 3, [c.status for c in convs]
    assert "401 Unauthorized" in (failed[0].detail or "")


def test_cloud_starts_do_not_wait_and_a_chosen_limit_is_kept() -> None:
    key = "sk-test-" + "x" * 24
    with OpenHands(key, CLOUD_URL, progress=False) as cloud:
        assert cloud.tracker.config.sandbox_starts is None
    with OpenHands(key, "http://127.0.0.1:9", progress=False) as own:
        assert own.tracker.config.sandbox_starts == 1
    chosen = TrackerConfig(sandbox_starts=3)
    with OpenHands(key, CLOUD_URL, tracker_config=chosen, progress=False) as cloud:
        assert cloud.tracker.config.sandbox_starts == 3


def test_a_start_that_waited_in_the_queue_keeps_the_settings(sim_client: SimClient) -> None:
    _sim, oh = sim_client(config=fast_config(feed_size=5))
    first, second = oh.start_many(["Count to 1", "Count to 2"])
    for conv in (first, second):
        conv.wait(timeout=60)
    assert second.status == "finished"
    # the one that waited holds no more of the feed than the one that did not
    assert len(first.feed) == len(second.feed) == 5
