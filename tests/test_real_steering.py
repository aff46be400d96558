"""Steering a real OpenHands 1.11.0 agent (its agent server 1.34.0): Stop in the middle of a
two-minute command, approvals bound to what was shown, and wait() after a command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from openhands_jupyter import ConflictError, OpenHands
from openhands_jupyter.tracking import Snapshot

from .support.real.fake_llm import finish_message
from .support.real.fixtures import APP_KEY
from .support.real.launcher import RealServer, tagged_pids
from .waiting import eventually, holds

pytestmark = [pytest.mark.real, pytest.mark.timeout(900)]

LONG = "sleep 120 && echo slept-120"


def _sleepers(server: RealServer) -> list[int]:
    """The server's processes running the two-minute command."""
    found = []
    for pid in tagged_pids(server.tag):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if cmdline.strip() == b"sleep 120":
            found.append(pid)
    return found


def test_stop_in_the_middle_of_a_long_command(
    agent_oh: OpenHands, agent_server: RealServer
) -> None:
    oh, real_server = agent_oh, agent_server
    conv = oh.start("Sleep a long time [llm:long=120]")
    snaps: list[Snapshot] = []
    conv.subscribe(snaps.append)  # a widget on screen: the live feed
    eventually(lambda: any(e.text == LONG for e in conv.feed), 240)
    # a conversation sharing its sandbox, at work meanwhile
    other = oh.start("Keep working [llm:many=3] [llm:slow=2]")
    eventually(lambda: other.status == "running", 240)
    assert conv.info and other.info and conv.info.sandbox_id == other.info.sandbox_id
    eventually(lambda: _sleepers(real_server), 30)
    began = time.monotonic()
    conv.stop()
    took = time.monotonic() - began
    assert took < 2, f"stop() took {took:.2f} s"
    eventually(lambda: conv.status == "paused", 5)
    shown = time.monotonic() - began
    assert shown < 5, shown
    # the command was killed: no process runs it, and its output never comes
    eventually(lambda: not _sleepers(real_server), 5)
    holds(lambda: not [e for e in conv.feed if e.type == "output"], 3, what="no output")
    # under way, then paused: never paused before the server said so
    seen = [(s.status, s.doing) for s in snaps]
    assert ("running", "stopping…") in seen
    # the other conversation in the same sandbox went on, and finished
    other.wait(timeout=240)
    assert other.status == "finished" and other.result == finish_message("Keep working")
    assert conv.refresh().status == "paused"
    conv.resume()
    conv.wait(timeout=240)
    assert conv.status == "finished", (conv.status, conv.detail)
    assert conv.result == finish_message("Sleep a long time")


def _wait(conv: Any, server: RealServer, seconds: float) -> None:
    """``conv.wait``; a wait that times out says where the start stood, here and on the
    server."""
    try:
        conv.wait(timeout=seconds)
    except TimeoutError as exc:
        snap = conv.snapshot()
        task = None
        if snap.start_task_id:
            task = httpx.get(
                f"{server.url}/api/v1/app-conversations/start-tasks",
                params={"ids": snap.start_task_id},
                headers={"X-Session-API-Key": APP_KEY},
                timeout=10,
            ).text
        raise AssertionError(f"{exc}\n{snap}\nstart task on the server: {task}") from exc


def test_approve_then_wait_twenty_times(oh: OpenHands, real_server: RealServer) -> None:
    def start(i: int) -> Any:
        return oh.start(f"Greet number {i} [llm:command]", confirm=True)

    # On a busy machine the real server can stall for minutes creating a conversation while
    # it creates another or runs a command in the same sandbox (its start task stays at
    # STARTING_CONVERSATION with the agent server's answer outstanding: seen twice, for the
    # 2nd and the 12th start). So the next conversation is created, and waits for approval,
    # before this one is approved; the approval and the wait right after it are what is tested.
    upcoming = start(0)
    _wait(upcoming, real_server, 240)
    for i in range(20):
        conv = upcoming
        assert conv.status == "waiting" and len(conv.pending) == 1, (i, conv.status, conv.detail)
        if i + 1 < 20:
            upcoming = start(i + 1)
            _wait(upcoming, real_server, 240)
        conv.approve()
        _wait(conv, real_server, 240)
        assert conv.status == "finished", (i, conv.status, conv.pending)
        assert conv.result == finish_message(f"Greet number {i}"), i


def test_an_approval_is_refused_when_what_waits_has_changed(
    oh: OpenHands, real_server: RealServer
) -> None:
    conv = oh.start("Two steps [llm:many=2]", confirm=True)
    conv.wait(timeout=240)
    [first] = conv.pending
    shown = [first.id]
    assert first.text == "echo step-0"
    # another client answers it first: the agent runs it and asks about the next one
    with OpenHands(base_url=real_server.url, session_api_key=APP_KEY, progress=False) as two:
        elsewhere = two.get(conv.id)  # type: ignore[arg-type]
        elsewhere.wait(timeout=60)
        elsewhere.approve(ids=shown)
        eventually(lambda: elsewhere.pending and elsewhere.pending[0].id != first.id, 120)
    # this client sees the new action too; what it was shown is the first one
    eventually(lambda: conv.pending and conv.pending[0].id != first.id, 60)
    with pytest.raises(ConflictError, match="what waits for approval changed") as info:
        conv.approve(ids=shown)
    assert "echo step-1" in str(info.value)
    # nothing was approved: the second command has not run
    holds(lambda: [e.text.strip() for e in conv.feed if e.type == "output"] == ["step-0"], 2)
    events = conv.events()
    assert [e.text.strip() for e in events if e.type == "output"] == ["step-0"]
    assert conv.status == "waiting" and [a.text for a in conv.pending] == ["echo step-1"]
    conv.reject("enough")
    conv.wait(timeout=120)
    assert conv.status == "idle"


def test_stop_while_an_action_waits(oh: OpenHands) -> None:
    conv = oh.start("Wait for me [llm:command]", confirm=True)
    conv.wait(timeout=240)
    pending = conv.pending
    assert pending
    with pytest.raises(ConflictError, match=r"waits for your approval: reject\(\)"):
        conv.stop()
    # within a second the status tells the truth: still waiting, the same action
    holds(lambda: conv.refresh().status == "waiting" and conv.pending == pending, 1, 0.2)
    conv.reject("stop here")
    conv.wait(timeout=120)
    assert conv.status == "idle"
    assert not [e for e in conv.events() if e.type == "output"]
