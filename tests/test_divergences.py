"""Where real OpenHands differs from what the client first assumed, against a simulator made
faithful to it (the same cases run against a real 1.11.0 server in test_real.py and
test_differential.py where that server shows them)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from openhands_jupyter import ConflictError, NotFoundError, OpenHands, UnsupportedError
from openhands_jupyter.api.events import event_from_v1
from openhands_jupyter.sim import Simulator, finish_message
from openhands_jupyter.tracking import Snapshot
from openhands_jupyter.ui.widget import ConversationWidget

from .conftest import SPEED, SimClient, fast_config
from .waiting import eventually, holds


# -- b: routes a server does not have ---------------------------------------------------------
@pytest.mark.parametrize("frontend", [True, False])
def test_a_route_the_server_lacks_is_named(frontend: bool) -> None:
    # a 1.6 server's V1 has no send-message and no delete; with the web UI mounted the answer
    # is 405, without it FastAPI's bare 404: neither is "HTTP 405" or "not found" to the user
    absent = {"v1.send_message", "v1.delete", "v1.download"}
    with (
        Simulator(speed=SPEED, api="both", frontend=frontend, absent=absent) as sim,
        OpenHands(
            None, sim.url, api_version="v1", tracker_config=fast_config(), progress=False
        ) as oh,
    ):
        conv = oh.start("First [sim:idle]")
        conv.wait(timeout=20)
        conv.send("Go on")  # through the agent server instead
        conv.wait(timeout=20)
        assert conv.result == finish_message("Go on")
        assert sim.stats.agent_counts["agent.send"] == 1
        with pytest.raises(UnsupportedError) as info:
            conv.download()
        assert str(info.value) == "This server does not offer conversation export."
        conv.delete()  # through the legacy route that such a server still has
        assert sim.counts["v0.delete"] == 1
        with pytest.raises(NotFoundError):
            oh.get(conv.id)  # type: ignore[arg-type]


# -- the event socket's auth on an older agent server -----------------------------------------
@pytest.mark.parametrize("frame_auth", [True, False])
def test_the_event_socket_authenticates_on_old_and_new_agent_servers(
    sim_client: SimClient, frame_auth: bool
) -> None:
    # 1.11's agent server takes the key in a first frame; 1.6's refuses a socket whose header
    # has no key before accepting it (HTTP 403): either way activity comes live
    sim, oh = sim_client(socket_frame_auth=frame_auth)
    conv = oh.start("Live either way [sim:long]")
    snaps: list[Snapshot] = []
    unsubscribe = conv.subscribe(snaps.append)
    try:
        eventually(lambda: bool(snaps) and snaps[-1].activity == "live")
        eventually(lambda: any(e.type == "command" for s in snaps for e in s.new_events))
    finally:
        unsubscribe()
    sockets = sim.stats.agent_counts["agent.socket"]
    assert sockets == (1 if frame_auth else 2)  # an old one: one refused try, then the header
    # the next socket to that server goes straight to the header
    again = oh.start("Again [sim:long]")
    unsubscribe = again.subscribe(snaps.append)
    try:
        eventually(lambda: snaps[-1].conversation_id == again.id and snaps[-1].activity == "live")
    finally:
        unsubscribe()
    assert sim.stats.agent_counts["agent.socket"] == sockets + 1


# -- c: a supplied title is kept ---------------------------------------------------------------
def test_a_supplied_title_survives_the_servers_title_step(sim_client: SimClient) -> None:
    sim, oh = sim_client(title_delay=3.0)
    kept = oh.start("Title me", title="Mine")
    generated = oh.start("Title me too")
    kept.wait(timeout=20)
    generated.wait(timeout=20)
    # the server names it after its first message
    eventually(lambda: sim.world.conversations[generated.id].title == "Title me too")
    eventually(lambda: sim.world.conversations[kept.id].title == "Mine")
    # the server's title step has run by now: the title stays
    holds(lambda: sim.world.conversations[kept.id].title == "Mine", 0.5)
    assert sim.world.conversations[kept.id].agent_title == "Mine"
    assert kept.title == "Mine"


# -- d: stop is per conversation; pausing a sandbox is its own action --------------------------
def test_stop_touches_one_conversation_and_pausing_the_sandbox_names_all(
    sim_client: SimClient,
) -> None:
    sim, oh = sim_client(grouping="ADD_TO_ANY")
    a = oh.start("Long A [sim:long]")
    eventually(lambda: a.status == "running")
    b = oh.start("Long B [sim:long]")
    eventually(lambda: b.status == "running")
    assert a.info and b.info and a.info.sandbox_id == b.info.sandbox_id
    a.stop()
    eventually(lambda: a.refresh().status == "paused")
    assert b.refresh().status == "running"
    assert sim.counts["v1.pause"] == 0 and sim.stats.agent_counts["agent.interrupt"] == 1
    a.resume()
    eventually(lambda: a.refresh().status == "running")
    assert set(b.pause_sandbox()) == {a.id, b.id}
    eventually(lambda: a.refresh().status == "paused" and b.refresh().status == "paused")


# -- e: cost and tokens ------------------------------------------------------------------------
def test_cost_from_stats_events_when_metrics_say_zero(client: OpenHands) -> None:
    snaps: list[Snapshot] = []
    conv = client.start("Cost something")
    conv.subscribe(snaps.append)
    conv.wait(timeout=20)
    assert conv.info is not None and conv.info.cost == 0.0  # the app server's metrics
    assert conv.cost is not None and conv.cost > 0  # the agent's stats events
    assert conv.tokens["prompt"] and conv.tokens["completion"]
    eventually(lambda: snaps[-1].cost == conv.cost)
    assert snaps[-1].prompt_tokens == conv.tokens["prompt"]


def test_v0_shows_no_cost(sim_v0: Simulator) -> None:
    with OpenHands(
        None, sim_v0.url, api_version="v0", tracker_config=fast_config(), progress=False
    ) as oh:
        conv = oh.start("Free")
        conv.wait(timeout=20)
        assert conv.cost is None and conv.tokens == {"prompt": None, "completion": None}
        assert conv.snapshot().cost is None


# -- f: naive event timestamps are the server's local clock -----------------------------------
def test_naive_event_times_never_become_ages(sim_client: SimClient) -> None:
    _sim, oh = sim_client(local_offset_hours=9.0)
    snaps: list[Snapshot] = []
    conv = oh.start("Far away [sim:long]")
    conv.subscribe(snaps.append)  # watched: the live feed's gap reads use these times
    eventually(lambda: any(e.type == "command" for s in snaps for e in s.new_events))
    oh.tracker.call_soon(lambda: conv._tracked.live and conv._tracked.live.stop())
    eventually(lambda: sum(e.type == "command" for e in conv.feed) > 20)
    feed = conv.feed
    assert all(e.timestamp is not None and e.timestamp.tzinfo is None for e in feed)
    ahead = feed[-1].timestamp - datetime.now(timezone.utc).replace(tzinfo=None)  # type: ignore[operator]
    assert ahead.total_seconds() > 8 * 3600  # the server's clock, as it wrote it
    ids = [e.id for e in feed]
    assert len(ids) == len(set(ids))  # no duplicates across the reconnect
    commands = [int(e.text.split("_")[1].split(".")[0]) for e in feed if "step_" in e.text]
    assert commands == list(range(commands[0], commands[0] + len(commands)))  # no gap
    conv.stop()


# -- g: kinds of actions -----------------------------------------------------------------------
def test_plans_reads_and_timeouts_are_what_they_are() -> None:
    plan = {
        "id": "1",
        "kind": "ActionEvent",
        "source": "agent",
        "tool_name": "task_tracker",
        "action": {"kind": "TaskTrackerAction", "command": "plan", "task_list": [{}, {}]},
    }
    view = {
        "id": "2",
        "kind": "ActionEvent",
        "source": "agent",
        "tool_name": "file_editor",
        "action": {"kind": "FileEditorAction", "command": "view", "path": "/w/a.py"},
    }
    edit = {**view, "id": "3", "action": {**view["action"], "command": "str_replace"}}
    timed_out = {
        "id": "4",
        "kind": "ObservationEvent",
        "source": "environment",
        "tool_name": "terminal",
        "observation": {
            "kind": "TerminalObservation",
            "content": [{"type": "text", "text": "still going"}],
            "exit_code": -1,
            "timeout": False,
            "is_error": False,
        },
    }
    events = [event_from_v1(e) for e in (plan, view, edit, timed_out)]
    assert [(e.type, e.text) for e in events if e] == [
        ("plan", "plan (2 tasks)"),
        ("read", "view /w/a.py"),
        ("edit", "str_replace /w/a.py"),
        ("output", "still going"),
    ]
    assert events[3] is not None and events[3].timed_out and events[3].exit_code == -1
    assert events[3].to_dict()["timed_out"] is True


# -- h: V0 exit codes and the agent state in long runs ----------------------------------------
def test_v0_exit_codes_and_state_in_a_long_run() -> None:
    with (
        Simulator(speed=SPEED, api="v0") as sim,
        OpenHands(
            None, sim.url, api_version="v0", tracker_config=fast_config(), progress=False
        ) as oh,
    ):
        conv = oh.start("Many steps [sim:long]")
        eventually(lambda: len(sim.world.conversations[conv.id].events) > 100, 30)
        # no agent_state_changed among the newest events: the state is still known
        assert conv.refresh().status == "running"
        conv.wait(timeout=60)
        assert conv.status == "finished"
        outputs = [e for e in conv.events() if e.type == "output"]
        assert outputs and all(e.exit_code == 0 for e in outputs)


# -- i: a message to a deleted conversation ---------------------------------------------------
def test_send_to_a_deleted_conversation_is_not_found(client: OpenHands) -> None:
    conv = client.start("Short-lived")
    conv.wait(timeout=20)
    conv.delete()
    with pytest.raises(NotFoundError):
        conv.send("Are you there?")


# -- j: the tracker is the only writer --------------------------------------------------------
def test_refresh_that_sees_the_end_still_brings_the_answer() -> None:
    with (
        Simulator(speed=SPEED) as sim,
        OpenHands(
            None, sim.url, tracker_config=fast_config(poll_interval=600.0), progress=False
        ) as oh,
    ):
        conv = oh.start("Refresh me")
        eventually(lambda: conv.id is not None and conv.info is not None, 30)
        world = sim.world

        def ended() -> bool:
            world.advance()  # the simulator moves on requests; none come from the tracker
            return world.conversations[conv.id].execution_status == "finished"

        eventually(ended)
        # the widget's Refresh button: it sees the end before the tracker's own poll would
        widget = ConversationWidget(conv)
        widget._handle_msg(
            {
                "content": {"data": {"method": "custom", "content": {"action": "refresh"}}},
                "buffers": [],
            }
        )
        eventually(lambda: widget.state["status"] == "finished", 10)
        eventually(lambda: widget.state["result"] == finish_message("Refresh me"), 10)
        widget.close()


# -- k: a follow-up that ends within one poll ---------------------------------------------------
@pytest.mark.parametrize("live", [True, False])
def test_a_follow_up_that_ends_within_one_poll_is_seen_finished(live: bool) -> None:
    poll = 4.0  # sim-seconds; the follow-up's run takes a quarter of one
    with (
        Simulator(speed=SPEED, step=0.1) as sim,
        OpenHands(
            None, sim.url, tracker_config=fast_config(poll_interval=poll), progress=False
        ) as oh,
    ):
        if not live:
            sim.stop_agent_server()  # the status polls alone must tell
        conv = oh.start("First")
        conv.wait(timeout=20)
        seen: list[tuple[float, str]] = []
        conv.subscribe(lambda s: seen.append((time.monotonic(), s.status)), visible=live)
        sent = time.monotonic()
        conv.send("Quick one")
        eventually(lambda: any(t > sent and s == "finished" for t, s in seen))
        took = (min(t for t, s in seen if t > sent and s == "finished") - sent) * SPEED
        # the server's "finished" looks like the state before the follow-up: its own evidence
        # (a newer updated_at, a new state event) decides, not a timer of a few polls
        assert took < poll, took
        conv.wait(timeout=20)
        assert conv.result == finish_message("Quick one")


# -- a: which generation "auto" picks ------------------------------------------------------------
@pytest.mark.parametrize(
    ("api", "v1_enabled", "expected"),
    [("v1", True, "v1"), ("both", True, "v1"), ("both", False, "v0"), ("v0", True, "v0")],
)
def test_auto_picks_what_the_servers_web_ui_uses(
    api: str, v1_enabled: bool, expected: str, sim_client: SimClient
) -> None:
    # a 1.6 server has both; its web UI starts V1 conversations when its settings say
    # v1_enabled; one run with V1 switched off has only the legacy API
    _sim, oh = sim_client(api=api, v1_enabled=v1_enabled)
    conv = oh.start("Which one")
    conv.wait(timeout=20)
    assert oh.aio._version == expected
    assert conv.result == finish_message("Which one")


@pytest.mark.parametrize("interrupt", [True, False])
def test_stop_then_wait_then_resume(sim_client: SimClient, interrupt: bool) -> None:
    # /interrupt cancels the step under way at once; an agent server without it gets /pause,
    # whose answer waits for that step to end. Either way wait() after stop() returns once
    # the server shows the agent paused, and a resume then runs it again at once.
    sim, oh = sim_client(step=8.0, interrupt=interrupt)
    conv = oh.start("Slow steps [sim:long]")
    eventually(lambda: conv.status == "running" and conv.info is not None, 30)
    eventually(lambda: sim.world.conversations[conv.id].execution_status == "running")
    conv.stop()
    assert conv.wait(timeout=30).status == "paused"
    assert sim.world.conversations[conv.id].execution_status == "paused"
    route = "agent.interrupt" if interrupt else "agent.pause"
    assert sim.stats.agent_counts[route] == 1
    with pytest.raises(ConflictError, match="there is no running agent to stop"):
        conv.stop()
    conv.resume()
    assert sim.world.conversations[conv.id].execution_status == "running"
    eventually(lambda: conv.status == "running")


# -- h: "idle" after the start, before the first run -------------------------------------------
@pytest.mark.parametrize("live", [True, False])
def test_wait_never_returns_before_the_agent_has_run(sim_client: SimClient, live: bool) -> None:
    # a V1 server may say "idle" for a moment after the start, before the run begins: that
    # is not the end of a run, whatever the clocks say
    sim, oh = sim_client(idle_before_run=40.0, config=fast_config(live_events=live))
    seen: list[str] = []
    conv = oh.start("Take your time")
    conv.subscribe(lambda s: seen.append(s.status))
    conv.wait(timeout=60)
    assert conv.status == "finished"
    assert conv.result == finish_message("Take your time")
    assert "idle" not in seen, seen
    assert sim.world.changes[0][2] == "idle"  # the server did say idle first
