"""Confirmation mode: a conversation started with confirm=True waits before each action; the
user approves or rejects it from Python, a script's progress lines or the widget."""

from __future__ import annotations

import io

import pytest

from openhands_jupyter.api.errors import ConflictError, InputError, UnsupportedError
from openhands_jupyter.handles.progress import ProgressPrinter
from openhands_jupyter.sim import EDITED_FILE, SCRIPT_COMMAND, SCRIPT_OUTPUT, finish_message
from openhands_jupyter.ui.widget import ConversationWidget

from .conftest import SimClient
from .waiting import eventually


def test_each_action_waits_and_approve_runs_it(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    conv = oh.start("Fix the failing test", confirm=True)
    conv.wait(timeout=30)
    # the policy reached the agent server before the task: nothing ran unasked
    assert sim.stats.agent_counts["agent.policy"] == 1
    assert sim.stats.agent_counts["agent.send"] == 1
    [world_conv] = sim.world.conversations.values()
    assert world_conv.confirm and world_conv.task == "Fix the failing test"
    assert conv.status == "waiting"
    [action] = conv.pending
    assert (action.kind, action.tool, action.text, action.risk) == (
        "command",
        "terminal",
        SCRIPT_COMMAND,
        "LOW",
    )
    assert not [e for e in conv.events() if e.type == "output"], "it ran before approval"
    conv.approve()
    eventually(
        lambda: conv.status == "waiting" and conv.pending and conv.pending[0].id != action.id
    )
    [edit] = conv.pending
    assert (edit.kind, edit.text) == ("edit", f"str_replace {EDITED_FILE}")
    assert [e.text for e in conv.events() if e.type == "output"] == [SCRIPT_OUTPUT]
    assert conv.changes() == [], "the edit waits for approval too"
    conv.approve()
    conv.wait(timeout=30)
    assert conv.status == "finished" and conv.pending == []
    assert [c.path for c in conv.changes()] == [EDITED_FILE]
    assert conv.result == finish_message("Fix the failing test")


def test_reject_stops_the_agent_and_tells_it_why(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Clean up", confirm=True).wait(timeout=30)
    assert conv.status == "waiting"
    conv.reject("  not   on this branch ")
    eventually(lambda: conv.status == "idle")
    events = conv.events()
    assert [e.text for e in events if e.type == "rejected"] == ["not on this branch"]
    assert not [e for e in events if e.type == "output"]
    assert conv.pending == []
    with pytest.raises(ConflictError, match="nothing waits for approval"):
        conv.approve()
    # a follow-up sets it going again
    conv.send("Then just run the tests")
    conv.wait(timeout=30)
    assert conv.status in ("waiting", "finished")


def test_bad_input_and_servers_without_confirmation(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    with pytest.raises(InputError, match="confirm is True or False"):
        oh.start("Fix it", confirm="yes")
    conv = oh.start("Fix it", confirm=True).wait(timeout=30)
    with pytest.raises(InputError, match="A reason is text"):
        conv.reject(3)  # type: ignore[arg-type]
    assert sim.stats.agent_counts["agent.respond"] == 0
    _sim0, oh0 = sim_client(api="v0")
    with pytest.raises(UnsupportedError, match="does not offer confirmation mode"):
        oh0.start("Fix it", confirm=True)


def test_a_script_is_told_what_waits_and_how_to_answer(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    out = io.StringIO()
    conv = oh.start("Fix the failing test", confirm=True)
    conv.subscribe(ProgressPrinter("Fix the failing test", stream=out), visible=False)
    conv.wait(timeout=30)
    eventually(lambda: "approve with" in out.getvalue())
    lines = out.getvalue().splitlines()
    assert (
        f"[openhands] Fix the failing test: waits for approval: [LOW risk] terminal: {SCRIPT_COMMAND}"
        in lines
    )
    assert not any("answer:" in line for line in lines), "a waiting agent has not answered"


def test_the_widget_shows_the_action_and_its_buttons_answer(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Clean up", confirm=True)
    widget = ConversationWidget(conv)
    pending = eventually(lambda: widget.state["pending"])
    assert pending[0]["text"] == SCRIPT_COMMAND and pending[0]["risk"] == "LOW"
    widget._handle_custom(widget, {"action": "approve"}, [])
    eventually(lambda: widget.state["pending"] and widget.state["pending"][0]["kind"] == "edit")
    widget._handle_custom(widget, {"action": "reject", "reason": "keep the file"}, [])
    eventually(lambda: widget.state["status"] == "idle" and not widget.state["pending"])
    assert widget.action_error == ""
    eventually(lambda: any(e["type"] == "rejected" for e in widget.feed))
    assert conv.changes() == [], "a rejected edit is not made"
    widget.close()
