"""A real kernel (jupyter_client, no browser): the tracker runs on the kernel's loop."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from openhands_jupyter.sim import Simulator

from .conftest import SESSION_KEY
from .support.kernel import Kernel
from .waiting import eventually

pytestmark = pytest.mark.kernel
SPEED = 5.0


@pytest.fixture
def kernel_sim() -> Iterator[tuple[Kernel, Simulator]]:
    with Simulator(speed=SPEED, conversation_session_key=SESSION_KEY) as sim:
        k = Kernel({"OPENHANDS_BASE_URL": sim.url})
        try:
            out = k.run(
                f"%load_ext openhands_jupyter\n%config OpenHandsMagics.time_scale = {1 / SPEED}"
            )
            assert out["error"] is None, out
            yield k, sim
        finally:
            k.close()


def _statuses(k: Kernel) -> list[str]:
    seen: list[str] = []
    for _comm, state, _parent in k.comm_states():
        status = (
            state.get("state", {}).get("status") if isinstance(state.get("state"), dict) else None
        )
        if status and (not seen or seen[-1] != status):
            seen.append(status)
    return seen


def test_magic_returns_at_once_and_updates_arrive_with_no_cell_running(
    kernel_sim: tuple[Kernel, Simulator],
) -> None:
    k, _sim = kernel_sim
    out = k.run("conv = %openhands -r octo/app Fix the failing test")
    assert out["error"] is None and out["stderr"] == ""
    assert any("application/vnd.jupyter.widget-view+json" in d for d in out["data"])
    assert any("starting" in d.get("text/plain", "") for d in out["data"])
    k.watch(6.0)  # no cell runs meanwhile
    seen = _statuses(k)
    assert seen[:1] == ["starting"] and "running" in seen and seen[-1] == "finished", seen
    result = k.run("print(conv.status, '|', conv.result)")
    assert result["stdout"].strip() == "finished | Done: Fix the failing test"
    assert SESSION_KEY not in repr(k.iopub)


def test_click_reaches_python_and_interrupting_wait_keeps_tracking(
    kernel_sim: tuple[Kernel, Simulator],
) -> None:
    k, sim = kernel_sim
    k.run("conv = %openhands Work a long time [sim:long]")
    eventually(lambda: "running" in _statuses(k), 20, 0.2, step=k.watch)
    comm_id = next(c for c, s, _ in k.comm_states() if "feed" in s or "state" in s)
    msg_id = k.kc.execute("conv.wait()")
    k.watch(1.0)  # the wait is under way
    k.interrupt()
    deadline = time.monotonic() + 15
    error = None
    while time.monotonic() < deadline:
        msg = k._drain(0.1)
        if msg and msg["parent_header"].get("msg_id") == msg_id:
            if msg["msg_type"] == "error":
                error = msg["content"]["ename"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
    assert error == "KeyboardInterrupt"
    # tracking goes on after the interrupted wait: the next status poll (one every 5
    # sim-seconds while it runs) and the live feed still reach the widget
    before, shown = sim.stats.total, len(k.comm_states())
    eventually(lambda: sim.stats.total > before, 10, 0.2, step=k.watch)
    eventually(lambda: len(k.comm_states()) > shown, 10, 0.2, step=k.watch)
    # a click (custom message) reaches Python with no cell running
    k.send_custom(comm_id, {"action": "stop"})
    eventually(lambda: sim.stats.agent_counts["agent.interrupt"], 10, 0.2, step=k.watch)
    # Stop stops this conversation's agent on its agent server, not the sandbox
    assert sim.stats.agent_counts["agent.interrupt"] == 1 and sim.counts["v1.pause"] == 0
    k.watch(2.0)
    assert "paused" in _statuses(k)
    out = k.run("print(conv.status)")
    assert out["stdout"].strip() == "paused"
    assert "Task was destroyed" not in repr(k.iopub)
    assert "never retrieved" not in repr(k.iopub)


def test_blocking_wait_keeps_widgets_live(kernel_sim: tuple[Kernel, Simulator]) -> None:
    k, _sim = kernel_sim
    out = k.run("conv = %openhands --wait Quick one\nprint('done', conv.status)", timeout=60)
    assert out["error"] is None, out
    assert "done finished" in out["stdout"]
    seen = _statuses(k)
    assert "running" in seen and "finished" in seen, seen


REENTER_IN_A_BUSY_TURN = """
import asyncio
from openhands_jupyter.api.loops import reenter

loop = asyncio.new_event_loop()
ran = []


def cell():  # a cell that waits (conv.wait()): the first to make the loop re-entrant
    reenter(loop, asyncio.sleep(0.01))
    ran.append("cell")


loop.call_soon(cell)
for n in range(3):  # ready in the same turn (widget messages, say)
    loop.call_soon(ran.append, str(n))
loop.call_later(0.2, loop.stop)
loop.run_forever()
print(sorted(ran))
"""


def test_the_first_wait_in_a_busy_turn_of_the_kernels_loop_keeps_the_loop_alive() -> None:
    """The first blocking wait in a kernel makes its loop re-entrant from inside one of its
    turns, while other callbacks are ready in that turn. Running them in the wait must not
    leave that turn popping an empty queue (the kernel's loop died: "The kernel appears to
    have died"). In a fresh interpreter: the loop is not yet re-entrant there."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", REENTER_IN_A_BUSY_TURN],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['0', '1', '2', 'cell']"
