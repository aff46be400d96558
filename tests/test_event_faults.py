"""One bad answer to an events read: retried and shown for that conversation only, never taken
for a server without an events API (only a definite "no such route" on both paths is), and
never a wait for ever. Also 1.6's event store, whose timestamp filter fails."""

from __future__ import annotations

from typing import Any

import pytest

from openhands_jupyter import OpenHands
from openhands_jupyter.sim import SCRIPT_COMMAND, Simulator, finish_message
from openhands_jupyter.tracking import ManualClock, Snapshot

from .conftest import SPEED, SimClient, fast_config
from .waiting import eventually, run_for, until

#: events from the app server's store only (no agent-server socket): the path these faults hit
STORE_ONLY = fast_config(live_events=False)
FAULTS = ["500", "malformed", "bad_utf8", "html", "drop"]


@pytest.mark.parametrize("api", ["v1", "v0"])
@pytest.mark.parametrize("fault", FAULTS)
def test_a_bad_events_answer_is_retried_and_shown(
    sim_client: SimClient, api: str, fault: str
) -> None:
    sim, oh = sim_client(api=api, config=STORE_ONLY)
    route = f"{api}.events"
    sim.faults.script(route, fault, fault)  # the first two reads of its events go wrong
    conv = oh.start("Fix the flaky test")
    seen: list[Snapshot] = []
    unsubscribe = conv.subscribe(seen.append)
    try:
        conv.wait(timeout=60)
    finally:
        unsubscribe()
    assert sim.stats.faults_injected[fault] == 2
    assert conv.result == finish_message("Fix the flaky test")
    assert SCRIPT_COMMAND in [e.text for s in seen for e in s.new_events if e.type == "command"]
    assert conv._tracked.events_supported  # not taken for a server without events
    if fault != "drop":  # a lost connection pauses every request: the tracker says so
        assert any((s.last_error or "").startswith("Retrying: ") for s in seen), fault
    assert seen[-1].last_error is None  # and the line goes once a read works


def test_one_conversations_failing_events_never_hold_up_the_others(sim_client: SimClient) -> None:
    clock = ManualClock()
    config = fast_config(time_scale=1.0, clock=clock, live_events=False)
    sim, oh = sim_client(config=config, clock=clock)
    sim.faults.script("v1.events", *["500"] * 200)  # every events read fails, for good
    convs = [oh.start(f"Task {i}") for i in range(3)]
    for conv in convs:
        # the status still comes (it never waits on the events) and it settles: after its
        # few tries for the answer, it says the answer could not be read
        until(clock, lambda c=conv: c._tracked.settled and c.status != "starting", 600)
        assert conv.status == "finished", conv.status
        tracked = conv._tracked
        assert tracked.result is None
        assert (tracked.last_error or "").startswith("The answer could not be read: HTTP 500")
    failed = sim.stats.faults_injected["500"]
    assert failed >= 3  # at least one try each
    # no hot loop: each conversation backs off on its own, and stops once it gave up
    snapshot = sim.counts["v1.events"]
    run_for(clock, 30)
    assert sim.counts["v1.events"] == snapshot


@pytest.mark.parametrize("frontend", [False, True])
def test_only_a_definite_no_route_on_both_paths_means_no_events_api(frontend: bool) -> None:
    absent = {"v1.events", "v1.events_old"}
    with (
        Simulator(speed=SPEED, frontend=frontend, absent=absent) as sim,
        OpenHands(None, sim.url, tracker_config=STORE_ONLY, progress=False) as oh,
    ):
        conv = oh.start("No events here")
        conv.wait(timeout=60)
        if not frontend:
            # FastAPI's bare 404 on both paths: this server has no events search
            assert not conv._tracked.events_supported
            assert conv._tracked.last_error is None
        else:
            # a web page on both: could be a proxy in trouble, so it is retried and shown
            assert conv._tracked.events_supported
            eventually(lambda: "instead of JSON" in (conv._tracked.last_error or ""))


def test_a_store_whose_timestamp_filter_fails_is_read_newest_first(sim_client: SimClient) -> None:
    # 1.6's V1 event store: a search with timestamp__gte answers 500 once there are events
    sim, oh = sim_client(config=STORE_ONLY, timestamp_filter_fails=True)
    conv = oh.start("Fix the failing test")
    seen: list[Snapshot] = []
    unsubscribe = conv.subscribe(seen.append)
    try:
        conv.wait(timeout=60)
        assert conv.result == finish_message("Fix the failing test")
        conv.send("Also update the README")
        conv.wait(timeout=60)
        assert conv.result == finish_message("Also update the README")
    finally:
        unsubscribe()
    ids = [e.id for s in seen for e in s.new_events]
    assert len(ids) == len(set(ids))  # nothing twice
    shown = {e.id for s in seen for e in s.new_events}
    assert shown == {e.id for e in conv.events()}  # and nothing missing
    # one filtered read failed; every later read went newest first
    assert sum(1 for r in sim.stats.log if r.route == "v1.events" and r.status == 500) == 1


@pytest.mark.parametrize("api", ["v1", "v0"])
def test_a_late_answer_to_the_previous_message_is_not_taken_for_the_new_one(
    sim_client: SimClient, api: str
) -> None:
    # the store gets events in batches: the previous run's finish can arrive after the next
    # message was sent. The answer is what comes after this client's own message.
    sim, live = sim_client(api=api, batch_size=50, flush_delay=40.0)
    first = live.start("First question")
    first.wait(timeout=30)  # seen live, before the store has the end of the run
    with OpenHands(None, sim.url, tracker_config=STORE_ONLY, progress=False) as store_only:
        same = store_only.get(first.id)  # type: ignore[arg-type]
        same.send("Second question")
        same.wait(timeout=60)
        assert same._tracked.result == finish_message("Second question")


def test_nothing_answers_a_sent_message_until_the_server_shows_it() -> None:
    # the order a batched store can bring: the previous run's finish after this client's next
    # message was sent, and before that message shows
    from openhands_jupyter.api.events import event_from_v1
    from openhands_jupyter.tracking.state import Tracked

    def event(eid: str, at: str, kind: str, text: str) -> Any:
        raw: dict[str, Any] = {"id": eid, "timestamp": f"2026-11-29T10:00:{at}", "kind": kind}
        if kind == "MessageEvent":
            raw["source"] = "user"
            raw["llm_message"] = {"role": "user", "content": [{"type": "text", "text": text}]}
        else:
            raw["source"] = "agent"
            raw["tool_name"] = "finish"
            raw["action"] = {"kind": "FinishAction", "message": text}
        return event_from_v1(raw)

    tracked = Tracked(conversation_id="c1", status="finished")
    tracked.add_events([event("u1", "01", "MessageEvent", "First question")])
    tracked.expect_echo("Second  question")  # sent; whitespace may differ in the echo
    tracked.reset_answer()
    tracked.add_events([event("f1", "05", "ActionEvent", "Done: First question")])
    assert tracked.result is None  # an earlier run's answer, not this message's
    tracked.add_events([event("u2", "09", "MessageEvent", "Second question")])
    tracked.add_events([event("f2", "12", "ActionEvent", "Done: Second question")])
    assert tracked.result == "Done: Second question"


@pytest.mark.parametrize("watched", [False, True])
def test_the_end_after_the_answer_reaches_the_feed_a_batch_later(
    sim_client: SimClient, watched: bool
) -> None:
    # the store gets the agent server's events in batches: this one ends with the answer and
    # its figures, and the end of the run comes in the next batch, 20 s later
    sim, oh = sim_client(config=STORE_ONLY, flush_delay=20.0)
    probe = oh.start("Fix the flaky test")
    probe.wait(timeout=60)
    kinds = [e.type for e in sim.world.conversations[probe.id].events]
    sim.world.batch_size = kinds.index("finish") + 2
    conv = oh.start("Fix the flaky test")
    seen: list[Snapshot] = []
    if watched:
        conv.subscribe(seen.append)
    conv.wait(timeout=60)
    assert conv.result == finish_message("Fix the flaky test")
    # the status line the run ended with shows in the feed, once
    ends = lambda: [e for e in conv.feed if e.type == "state" and e.text == "finished"]  # noqa: E731
    eventually(ends, timeout=30)
    assert len(ends()) == 1
    if watched:
        assert [e.text for s in seen for e in s.new_events if e.type == "state"][-1] == "finished"
