"""The agent's work against a real OpenHands 1.11.0 server: changed files and diffs, approvals
in confirmation mode, cost and tokens, and the cost cap."""

from __future__ import annotations

import pytest

from openhands_jupyter import NotFoundError, OpenHands
from openhands_jupyter.ui.widget import ConversationWidget

from .support.real.fake_llm import (
    COMMAND,
    COMMAND_OUTPUT,
    GIT_CHANGES,
    GIT_CHANGES_FROM_HEAD,
    USAGE,
    finish_message,
)
from .support.real.launcher import RealServer
from .support.views import view
from .waiting import eventually

pytestmark = [pytest.mark.real, pytest.mark.timeout(600)]


def test_changed_files_diffs_and_file_text(agent_oh: OpenHands, agent_server: RealServer) -> None:
    oh = agent_oh
    conv = oh.start("Change the notes [llm:git]")
    widget = ConversationWidget(conv)
    view(widget)  # on screen, however long the run takes
    conv.wait(timeout=240)
    assert conv.status == "finished", (conv.status, conv.detail)
    changes = conv.changes()
    # 1.58 compares a repository with no remote with its HEAD, 1.34 with the empty tree
    expected = GIT_CHANGES_FROM_HEAD if agent_server.agent_server else GIT_CHANGES
    assert {c.path: (c.status, c.added, c.removed) for c in changes} == expected, [
        (e.type, e.text[:200]) for e in conv.events()
    ]
    diff = conv.diff("notes.txt")
    # the agent server's diff drops the last line's newline; the file keeps it
    assert diff.modified is not None and diff.modified.splitlines() == ["one", "2", "three"]
    assert "+2" in diff.unified.splitlines() and "+three" in diff.unified.splitlines()
    if agent_server.agent_server:
        assert diff.original is not None and diff.original.splitlines() == ["one", "two"]
        assert "-two" in diff.unified.splitlines()
    # this server's working directory is relative (a process sandbox): its git view stands in
    assert conv.read_file("notes.txt").splitlines() == ["one", "2", "three"]
    with pytest.raises(NotFoundError, match="There is no file"):
        conv.read_file("missing.txt")
    # the widget's Changes section: read after the edits and once after the end
    try:
        state = eventually(
            lambda: (
                (c := widget.state["changes"])["count"] == len(expected)
                and all(f["added"] is not None for f in c["files"])
                and c
            ),
            60,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}: the widget shows {widget.state['changes']}") from None
    assert {f["path"] for f in state["files"]} == set(expected)
    widget.close()


def test_approve_runs_the_action_and_reject_stops_the_agent(agent_oh: OpenHands) -> None:
    oh = agent_oh
    conv = oh.start("Show the greeting [llm:command]", confirm=True)
    eventually(lambda: conv.status == "waiting" and conv.pending, 240)
    [action] = conv.pending
    assert (action.kind, action.tool, action.text, action.risk) == (
        "command",
        "terminal",
        COMMAND,
        "LOW",
    )
    assert not [e for e in conv.events() if e.type == "output"], "it ran before approval"
    conv.approve()
    conv.wait(timeout=120)
    assert conv.status == "finished", (conv.status, conv.pending)
    assert [e.text.strip() for e in conv.events() if e.type == "output"] == [COMMAND_OUTPUT]
    assert conv.result == finish_message("Show the greeting")

    other = oh.start("Show the greeting again [llm:command]", confirm=True)
    eventually(lambda: other.status == "waiting" and other.pending, 240)
    other.reject("not now")
    eventually(lambda: other.status == "idle", 60)
    events = other.events()
    assert [e.text for e in events if e.type == "rejected"] == ["not now"]
    assert not [e for e in events if e.type == "output"]


def test_cost_tokens_and_the_cost_cap(oh: OpenHands) -> None:
    conv = oh.start("Count to thirty [llm:many=30] [llm:slow=1]", max_cost=0.01)
    try:
        eventually(lambda: conv.status == "paused", 240)
    except AssertionError:
        raise AssertionError((conv.status, conv.detail, conv.cost, conv.last_error)) from None
    # the server's figure: the LLM settings charge per token, the stats events carry it
    assert conv.cost is not None and conv.cost > 0.01
    assert conv.tokens["prompt"] and conv.tokens["prompt"] % USAGE["prompt_tokens"] == 0
    why = conv.snapshot().stopped_why or ""
    assert why.startswith("Stopped by its cost cap") and "max_cost $0.01" in why
    steps = len([e for e in conv.events() if e.type == "command"])
    assert steps < 30, "it stopped long before the end"
