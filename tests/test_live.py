"""The live feed from the agent server, against the simulator (which batches its app server's
event store as a real server does): who gets a socket, gaps and duplicates across reconnects,
the fallback, status at once, and the session key kept out of every log."""

from __future__ import annotations

import logging
import time

import pytest

from openhands_jupyter import OpenHands
from openhands_jupyter.sim import SCRIPT_COMMAND, Simulator, finish_message
from openhands_jupyter.tracking import Snapshot

from .conftest import SESSION_KEY, SPEED, SimClient, fast_config
from .waiting import eventually, holds


def _commands(snaps: list[Snapshot]) -> list[str]:
    return [e.text for s in snaps for e in s.new_events if e.type == "command"]


def test_watching_opens_a_socket_and_leaving_or_ending_closes_it(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    busy = oh.start("Busy [sim:long]")
    quiet = oh.start("Nobody looks [sim:long]")
    eventually(lambda: busy.status == "running" and quiet.status == "running")
    assert oh.tracker.open_sockets == 0  # started, but nobody watches
    snaps: list[Snapshot] = []
    unsubscribe = busy.subscribe(snaps.append)  # a widget on screen
    eventually(lambda: bool(snaps) and snaps[-1].activity == "live")
    assert oh.tracker.open_sockets == 1 and sim.stats.agent_counts["agent.socket"] == 1
    unsubscribe()
    eventually(lambda: oh.tracker.open_sockets == 0)
    done = oh.start("Short one")
    done.wait(timeout=20)  # wait() watches too, until the answer is read
    assert done.result == finish_message("Short one")
    eventually(lambda: oh.tracker.open_sockets == 0)
    assert sim.stats.agent_counts["agent.socket"] == 2


def test_status_shows_at_once_and_the_next_poll_confirms_it() -> None:
    poll = 60.0  # sim-seconds: far longer than the run
    with (
        Simulator(speed=SPEED) as sim,
        OpenHands(
            None, sim.url, tracker_config=fast_config(poll_interval=poll), progress=False
        ) as oh,
    ):
        conv = oh.start("Quick and watched")
        conv.subscribe(lambda snap: None, visible=True)  # on screen from the start
        # a loaded machine may bring the socket only once the short run is over
        eventually(lambda: conv.status in ("running", "finished"), 30)
        started = time.monotonic()
        conv.wait(timeout=30)
        assert conv.status == "finished"
        assert (time.monotonic() - started) * SPEED < poll / 2  # the socket, not a poll
        assert conv.result == finish_message("Quick and watched")
        polls = sim.counts["v1.conversations"]
        eventually(lambda: sim.counts["v1.conversations"] > polls, 10)  # the confirmation
        eventually(lambda: not conv._tracked.unconfirmed)
        assert conv.refresh().status == "finished"


def test_reconnects_leave_no_gap_and_no_duplicate(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    conv = oh.start("Long haul [sim:long]")
    snaps: list[Snapshot] = []
    conv.subscribe(snaps.append)
    eventually(lambda: len(_commands(snaps)) > 20, 30)
    sim.stop_agent_server()  # the socket drops; reconnects fail for a while
    eventually(lambda: bool(snaps) and snaps[-1].activity == "delayed", 20)
    assert snaps[-1].activity_note
    holds(lambda: snaps[-1].activity == "delayed", 0.5, what="delayed while the server is down")
    sim.start_agent_server()  # same port: the feed comes back and reads the gap
    eventually(lambda: bool(snaps) and snaps[-1].activity == "live", 30)
    eventually(lambda: len(_commands(snaps)) > 120, 30)
    ids = [e.id for s in snaps for e in s.new_events]
    assert len(ids) == len(set(ids))  # nothing twice
    steps = _steps(snaps)
    assert steps == list(range(steps[0], steps[0] + len(steps)))  # nothing missing, in order


def _steps(snaps: list[Snapshot]) -> list[int]:
    return [int(c.split("_")[1].split(".")[0]) for c in _commands(snaps) if "step_" in c]


def test_a_late_first_read_starts_the_feed_and_nothing_older_lands_after_it(
    sim_client: SimClient,
) -> None:
    # attached late (or read late on a busy machine): the first read takes only the newest
    # page; the gap read of a reconnect goes back a little on the server's clock, and what it
    # finds from before the feed's start must not land at its end, out of order
    sim, oh = sim_client()
    conv = oh.start("Long haul [sim:long]")
    eventually(lambda: conv.id is not None)
    world_conv = sim.world.conversations[conv.id]
    eventually(lambda: len(world_conv.events) > 160, 30)  # more than a page, nobody watching
    snaps: list[Snapshot] = []
    conv.subscribe(snaps.append)
    eventually(lambda: bool(snaps) and snaps[-1].activity == "live")
    first = eventually(lambda: _steps(snaps))[0]  # the first read may come after the socket
    assert first > 0  # the newest page, not the whole history
    sim.stop_agent_server()
    eventually(lambda: snaps[-1].activity == "delayed", 20)
    sim.start_agent_server()
    eventually(lambda: snaps[-1].activity == "live", 30)
    eventually(lambda: len(_steps(snaps)) > 100, 30)
    steps = _steps(snaps)
    assert steps == list(range(first, first + len(steps)))
    assert conv._tracked.earlier > 0  # the gap read did reach back before the start
    conv.stop()


def test_without_an_agent_server_activity_comes_delayed_and_says_so(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    sim.stop_agent_server()  # a network policy, say
    snaps: list[Snapshot] = []
    conv = oh.start("Behind a wall")
    conv.subscribe(snaps.append)
    conv.wait(timeout=60)
    assert conv.result == finish_message("Behind a wall")  # from the batched store
    assert "delayed" in [s.activity for s in snaps]
    assert SCRIPT_COMMAND in _commands(snaps)
    assert oh.tracker.open_sockets == 0


def test_the_session_key_stays_out_of_every_log(
    caplog: pytest.LogCaptureFixture, sim_client: SimClient
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the socket library's frames included
    sim, oh = sim_client(conversation_session_key=SESSION_KEY)
    conv = oh.start("Keep it secret")
    conv.subscribe(lambda s: None)
    conv.wait(timeout=30)
    assert sim.stats.agent_counts["agent.socket"] >= 1
    assert conv.info is not None and conv.info.session_api_key is not None
    assert SESSION_KEY not in repr(conv.info) and SESSION_KEY not in repr(oh.tracker)
    oh.close()  # closing the sockets logs too
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "auth" in text or "sockets/events" in text  # the socket's traffic was logged
    assert SESSION_KEY not in text


def test_follow_yields_each_event_and_ends_with_the_run(client: OpenHands) -> None:
    conv = client.start("Follow me")
    events = list(conv.follow(timeout=30))
    kinds = [e.type for e in events]
    assert "command" in kinds and kinds.count("finish") == 1
    assert [e.text for e in events if e.type == "finish"] == [finish_message("Follow me")]
    assert len({e.id for e in events}) == len(events)
    assert conv.status == "finished" and client.tracker.open_sockets == 0


async def test_follow_async_on_the_running_loop(sim: Simulator) -> None:
    from openhands_jupyter import AsyncOpenHands

    from .conftest import API_KEY

    async with AsyncOpenHands(API_KEY, sim.url, tracker_config=fast_config(), progress=False) as oh:
        conv = await oh.start("Follow me too")
        texts = [e.text async for e in conv.follow_async() if e.type == "command"]
        assert SCRIPT_COMMAND in texts
        assert conv.status == "finished"


def test_refresh_gives_the_servers_word_after_a_live_feed_spoke(sim_client: SimClient) -> None:
    # the live feed said "finished" during wait(); the web UI then sends a follow-up: a
    # refresh() asked after the feed spoke shows it running, not the feed's old word
    sim, oh = sim_client()
    conv = oh.start("Short one")
    conv.wait(timeout=20)
    assert conv._tracked.live_status_at > float("-inf")  # the socket did report a status
    sim.world.send(sim.world.conversations[conv.id], "From the web UI [sim:long]")
    assert conv.refresh().status == "running"
