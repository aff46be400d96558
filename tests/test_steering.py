"""Steering through the one command path, on the simulator: Stop takes effect at once, a
command shows as under way until the server confirms it, nothing from before a command reverts
it, and approvals are bound to the actions that were shown."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from openhands_jupyter import ConflictError, InputError
from openhands_jupyter.sim import finish_message
from openhands_jupyter.sim.scenarios import LONG_COMMAND
from openhands_jupyter.tracking import Snapshot
from openhands_jupyter.ui.widget import ConversationWidget

from .conftest import SimClient, fast_config
from .waiting import eventually, holds

ROOT = Path(__file__).resolve().parent.parent


def _running_long_command(sim_client: SimClient, **options: object):  # type: ignore[no-untyped-def]
    sim, oh = sim_client(**options)
    conv = oh.start("Sleep a while [sim:longcmd]")
    snaps: list[Snapshot] = []
    conv.subscribe(snaps.append)
    eventually(lambda: any(e.text == LONG_COMMAND for e in conv.feed), 30)
    return sim, oh, conv, snaps


def test_stop_during_a_long_command_takes_effect_at_once(sim_client: SimClient) -> None:
    sim, _oh, conv, snaps = _running_long_command(sim_client)
    began = time.monotonic()
    conv.stop()
    # the server has it at once (it is not waiting for the two-minute command to end)
    assert time.monotonic() - began < 2
    world = sim.world.conversations[conv.id]  # type: ignore[index]
    assert world.execution_status == "paused"
    conv.wait(timeout=10)
    assert conv.status == "paused"
    # the command was cut short: its output never comes, the agent says why
    holds(lambda: not [e for e in conv.feed if e.type == "output"], 0.5)
    assert [e.text for e in conv.feed if e.type == "error"] == [
        "Tool call interrupted before completion. The conversation was paused."
    ]
    # under way until the server confirmed it; never shown as paused before that
    shown = [(s.status, s.doing) for s in snaps]
    assert ("running", "stopping…") in shown
    assert shown.index(("running", "stopping…")) < shown.index(("paused", None))
    assert sim.stats.agent_counts["agent.interrupt"] == 1
    assert sim.stats.agent_counts["agent.pause"] == 0
    conv.resume()
    conv.wait(timeout=30)
    assert conv.status == "finished" and conv.result == finish_message("Sleep a while")


def test_an_agent_server_without_interrupt_gets_pause(sim_client: SimClient) -> None:
    # its /pause answers once the step under way ends: until then the card says stopping…
    sim, oh, conv, _snaps = _running_long_command(sim_client, interrupt=False)
    widget = ConversationWidget(conv)
    future = oh.tracker.submit(conv.stop_async())
    eventually(lambda: widget.state["doing"] == "stopping…", 5)
    assert widget.state["status"] == "running"
    assert [b["enabled"] for b in widget.state["buttons"] if b["place"] == "bar"] == [False, False]
    future.result(timeout=30)
    conv.wait(timeout=30)
    assert conv.status == "paused" and widget.state["doing"] == ""
    assert sim.stats.agent_counts["agent.pause"] == 1
    # the command ended before the pause took effect: its output came
    eventually(lambda: [e.text for e in conv.feed if e.type == "output"] == ["slept-120"], 10)
    widget.close()


@pytest.mark.parametrize("push_delay", [0.0, 3.0])
def test_approve_then_wait_returns_at_the_next_stop_point(
    sim_client: SimClient, push_delay: float
) -> None:
    # push_delay: the socket brings each state late, so a "waiting" pushed before the
    # approval arrives after it; it must not end the wait nor bring the old action back
    _sim, oh = sim_client(push_delay=push_delay)
    for i in range(5):
        conv = oh.start(f"Careful {i}", confirm=True)
        seen: list[tuple[str, tuple[str, ...]]] = []
        conv.subscribe(lambda s, seen=seen: seen.append((s.status, tuple(a.id for a in s.pending))))
        conv.wait(timeout=30)
        approved: dict[str, int] = {}  # action id -> how many snapshots had been seen then
        while conv.status == "waiting":
            [action] = conv.pending
            assert action.id not in approved, "an action approved before is shown again"
            conv.approve()
            conv.wait(timeout=30)
            approved[action.id] = len(seen)
            assert action.id not in [a.id for a in conv.pending]
        assert conv.status == "finished", (conv.status, seen)
        assert conv.result == finish_message(f"Careful {i}")
        assert len(approved) == 2  # the command and the edit
        # once its approval is confirmed, an action is never shown as waiting again
        for action_id, since in approved.items():
            assert not [ids for status, ids in seen[since:] if action_id in ids], seen


def test_an_approval_is_for_the_actions_that_were_shown(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    conv = oh.start("Two steps", confirm=True)
    conv.wait(timeout=30)
    [first] = conv.pending
    shown = [first.id]
    # another client (or a second click) answers first: the agent goes on to its next action
    other = oh.get(conv.id)  # type: ignore[arg-type]
    other.approve(ids=shown)
    eventually(lambda: conv.pending and conv.pending[0].id != first.id, 30)
    responds = sim.stats.agent_counts["agent.respond"]
    with pytest.raises(ConflictError, match="what waits for approval changed") as info:
        conv.approve(ids=shown)
    assert "file_editor: str_replace src/app/api.py" in str(info.value)
    assert "\n" not in str(info.value)
    assert sim.stats.agent_counts["agent.respond"] == responds  # nothing was approved
    assert conv.status == "waiting" and conv.pending[0].text.startswith("str_replace")


def test_a_double_click_approves_once(sim_client: SimClient) -> None:
    sim, oh = sim_client(push_delay=2.0)
    conv = oh.start("Once", confirm=True)
    conv.wait(timeout=30)
    ids = [a.id for a in conv.pending]

    async def twice() -> None:
        await asyncio.gather(conv.approve_async(ids), conv.approve_async(ids))

    oh.tracker.submit(twice()).result(timeout=30)
    assert sim.stats.agent_counts["agent.respond"] == 1


def test_stop_while_an_action_waits_says_how_to_stop_it(sim_client: SimClient) -> None:
    # as the OpenHands web UI: no Stop while an action waits (the agent server ignores it);
    # the status stays the truth
    sim, oh = sim_client()
    conv = oh.start("Clean up [sim:waiting]", confirm=True)
    conv.wait(timeout=30)
    pending = conv.pending
    with pytest.raises(ConflictError, match=r"waits for your approval: reject\(\)") as info:
        conv.stop()
    assert "\n" not in str(info.value)
    assert sim.stats.agent_counts["agent.interrupt"] == 0
    holds(lambda: conv.refresh().status == "waiting" and conv.pending == pending, 1, 0.1)
    widget = ConversationWidget(conv)
    assert [b["enabled"] for b in widget.state["buttons"] if b["command"] == "stop"] == [False]
    conv.reject("not now")
    conv.wait(timeout=30)
    assert conv.status == "idle"
    widget.close()


def test_the_widget_answers_for_what_it_drew(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Drawn", confirm=True)
    conv.wait(timeout=30)
    widget = ConversationWidget(conv)
    drawn = [a["id"] for a in widget.state["pending"]]
    click = {"content": {"data": {"method": "custom", "content": {}}}, "buffers": []}

    def press(content: dict[str, object]) -> None:
        click["content"]["data"]["content"] = content  # type: ignore[index]
        widget._handle_msg(click)

    press({"action": "approve", "ids": ["not-what-it-drew"]})
    eventually(lambda: widget.action_error, 10)
    assert "what waits for approval changed" in widget.action_error
    press({"action": "approve", "ids": drawn})
    eventually(lambda: conv.pending and conv.pending[0].id not in drawn, 30)
    assert widget.action_error == ""
    widget.close()


def test_a_long_reason_is_refused_before_anything_is_sent(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    conv = oh.start("Reasons", confirm=True)
    conv.wait(timeout=30)
    with pytest.raises(InputError, match="at most 2,000"):
        conv.reject("x" * 2001)
    assert sim.stats.agent_counts["agent.respond"] == 0


def test_a_poll_from_before_a_command_never_reverts_it(sim_client: SimClient) -> None:
    # live feed off: the status comes from polls alone, and one asked before the stop
    # answers after it
    sim, oh = sim_client(config=fast_config(live_events=False))
    conv = oh.start("Sleep a while [sim:longcmd]")
    eventually(lambda: conv.status == "running" and conv.info is not None, 30)
    eventually(lambda: sim.world.conversations[conv.id].steps, 30)  # type: ignore[index]
    snaps: list[Snapshot] = []
    conv.subscribe(snaps.append)
    sim.faults.stale = 0.5  # every app-server answer tells the state of half a second ago
    conv.stop()
    conv.wait(timeout=30)
    statuses = [s.status for s in snaps]
    first = statuses.index("paused")
    assert "running" not in statuses[first:], statuses


def test_stop_is_named_once_in_the_source() -> None:
    # one command table: the command's name is written there, and nowhere else in the code
    # or the widget (which draws the buttons the table lists)
    found = []
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "js").glob("*.js")]:
        if "/sim/" in str(path):
            continue  # the simulator is the server's side
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"""["']stop["']""", line):
                found.append(f"{path.relative_to(ROOT)}:{number}")
    assert found and all(
        place.startswith("src/openhands_jupyter/tracking/commands.py:") for place in found
    ), found


def test_an_approval_the_server_drops_is_sent_again(sim_client: SimClient) -> None:
    # a real agent server acknowledges an approval that comes while the run that stopped for
    # it is still winding down, and drops it: with no sign of it, it is sent again
    sim, oh = sim_client(approval_settle=2.0)
    conv = oh.start("Right away", confirm=True)
    conv.wait(timeout=30)
    conv.approve()
    conv.wait(timeout=30)
    assert conv.status == "waiting" and conv.pending[0].text.startswith("str_replace")
    assert sim.stats.agent_counts["agent.respond"] >= 2
    approvals = sim.stats.agent_counts["agent.respond"]
    conv.approve()
    conv.wait(timeout=30)
    assert conv.status == "finished" and conv.result == finish_message("Right away")
    assert sim.stats.agent_counts["agent.respond"] >= approvals + 1


def test_each_steering_call_has_a_blocking_twin_with_its_arguments_and_help() -> None:
    import inspect

    from openhands_jupyter.handles.conversation import Conversation

    for name in ("command", "send", "approve", "reject", "stop", "resume", "pause_sandbox"):
        sync, aio = getattr(Conversation, name), getattr(Conversation, f"{name}_async")
        assert inspect.signature(sync).parameters == inspect.signature(aio).parameters, name
        assert sync.__doc__ and sync.__doc__ == aio.__doc__, name
        assert sync.__name__ == name
