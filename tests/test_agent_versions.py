"""The newest agent server (1.58) as the simulator plays it: a security analyzer rates each
action, errors say what the user can do, a full run capacity answers 429 and keeps what was
sent, and an app server whose store refuses its events is said to be behind."""

from __future__ import annotations

from openhands_jupyter.api.actions import PendingAction
from openhands_jupyter.api.events import event_from_v1
from openhands_jupyter.sim import EDITED_FILE, SCRIPT_OUTPUT, finish_message
from openhands_jupyter.sim.server import AGENT_VERSIONS
from openhands_jupyter.tracking import Snapshot
from openhands_jupyter.ui.widget import ConversationWidget

from .conftest import SPEED, SimClient
from .waiting import eventually


def test_the_analyzers_risk_is_shown_beside_the_action_and_nowhere_else(
    sim_client: SimClient,
) -> None:
    sim, oh = sim_client(agent_version="1.58")
    conv = oh.start("Fix the failing test", confirm=True)
    widget = ConversationWidget(conv)
    conv.wait(timeout=30)
    assert conv.status == "waiting"
    [action] = conv.pending
    assert (action.kind, action.risk) == ("command", "LOW")
    assert widget.state["pending"][0]["risk"] == "LOW"
    # the verdicts came (one per action), and none is a row of its own
    assert sim.world.agent_version == "1.58"
    shown = [(e.type, e.text) for e in conv.events()] + [(e.type, e.text) for e in conv.feed]
    assert not [t for t in shown if t[0] in ("risk", "other") or not t[1].strip()], shown
    widget.close()


def test_the_higher_of_the_agents_and_the_analyzers_risk_stands() -> None:
    raw = {
        "id": "a1",
        "kind": "ActionEvent",
        "source": "agent",
        "tool_name": "terminal",
        "security_risk": "LOW",
        "action": {"kind": "TerminalAction", "command": "rm -rf build"},
    }
    event = event_from_v1(raw)
    assert event is not None
    assert PendingAction.from_event(event, "HIGH").risk == "HIGH"
    assert PendingAction.from_event(event, "UNKNOWN").risk == "LOW"
    assert PendingAction.from_event(event).risk == "LOW"
    unrated = event_from_v1({**raw, "security_risk": None})
    assert unrated is not None and PendingAction.from_event(unrated, "MEDIUM").risk == "MEDIUM"


def test_an_error_says_what_the_user_can_do(sim_client: SimClient) -> None:
    _sim, oh = sim_client(agent_version="1.58")
    conv = oh.start("Break it [sim:error]").wait(timeout=30)
    assert conv.status == "error"
    [error] = [e for e in conv.events() if e.type == "error"]
    assert error.text.endswith(
        "(What to do: this may pass: send a follow-up or Resume to try again.)"
    )
    _sim, old = sim_client()
    conv = old.start("Break it [sim:error]").wait(timeout=30)
    assert [e for e in conv.events() if e.type == "error" and "What to do" not in e.text]


def test_a_full_run_capacity_keeps_the_approval_and_runs_it_once_there_is_room(
    sim_client: SimClient,
) -> None:
    sim, oh = sim_client(agent_version="1.58")
    conv = oh.start("Fix the failing test", confirm=True).wait(timeout=30)
    [action] = conv.pending
    sim.world.runs_refused = 2  # the next two runs find no room
    notes: list[str | None] = []
    conv.subscribe(lambda s: notes.append(s.command_note))
    conv.approve()
    eventually(
        lambda: conv.status == "waiting" and conv.pending and conv.pending[0].id != action.id, 60
    )
    assert sim.world.runs_refused == 0
    assert [e.text for e in conv.events() if e.type == "output"] == [SCRIPT_OUTPUT]
    assert any(n and n.startswith("The agent server has no room to run it now") for n in notes)
    assert conv.snapshot().command_note is None


def test_a_message_refused_a_run_is_kept_and_run_never_sent_again(sim_client: SimClient) -> None:
    # a server whose app has no send-message route: the message goes to the agent server
    sim, oh = sim_client(agent_version="1.58", absent={"v1.send_message"})
    conv = oh.start("Fix the failing test").wait(timeout=30)
    assert conv.status == "finished"
    sim.world.runs_refused = 2
    seen: list[Snapshot] = []
    conv.subscribe(seen.append)
    conv.send("Also update the docs")
    eventually(
        lambda: conv.status == "finished" and conv.result == finish_message("Also update the docs"),
        60,
    )
    assert sim.stats.agent_counts["agent.send"] == 1
    assert sim.stats.agent_counts["agent.run"] >= 2
    said = [e.text for e in conv.events() if e.type == "message" and e.source == "user"]
    assert said.count("Also update the docs") == 1
    assert any((s.command_note or "").startswith("The agent server has no room") for s in seen)


def test_a_store_that_refuses_the_agent_servers_events_is_said_to_be_behind(
    sim_client: SimClient,
) -> None:
    _sim, oh = sim_client(agent_version="1.58", store_refuses=True)
    conv = oh.start("Fix the failing test")
    widget = ConversationWidget(conv)
    conv.wait(timeout=30)
    # the agent server had everything: the answer is there
    assert conv.result == finish_message("Fix the failing test")
    note = eventually(lambda: widget.state["store_note"], 45 * 3 / SPEED + 10)
    assert note.startswith("The server's event store is behind its agent server: it has none")
    widget.close()

    sim, fine = sim_client(agent_version="1.58")
    other = fine.start("Fix the failing test")
    shown = ConversationWidget(other)
    other.wait(timeout=30)
    read = sim.counts["v1.events"]
    eventually(lambda: sim.counts["v1.events"] > read, 45 / SPEED + 10)  # compared: caught up
    assert shown.state["store_note"] == ""
    shown.close()


def test_a_deleted_files_diff_says_it_is_gone_on_either_agent_server(
    sim_client: SimClient,
) -> None:
    for version in AGENT_VERSIONS:
        _sim, oh = sim_client(agent_version=version)
        conv = oh.start("Remove it [sim:delete]").wait(timeout=30)
        assert [(c.path, c.status) for c in conv.changes()] == [(EDITED_FILE, "deleted")]
        diff = conv.diff(EDITED_FILE)
        # 1.58 sends an empty text for a deleted file: it is shown as gone, not as emptied
        assert diff.modified is None and diff.original, version
        assert "+++ /dev/null" in diff.unified.splitlines()
