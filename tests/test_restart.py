"""After a kernel restart, attaching by id resumes live tracking in a new widget."""

from __future__ import annotations

import pytest

from openhands_jupyter.sim import Simulator

from .support.kernel import Kernel

pytestmark = pytest.mark.kernel
SPEED = 5.0
SETUP = f"%load_ext openhands_jupyter\n%config OpenHandsMagics.time_scale = {1 / SPEED}"


def _texts(k: Kernel, kinds: tuple[str, ...]) -> list[str]:
    return [
        m["content"]["data"].get("text/plain", "")
        for m in k.iopub
        if m["msg_type"] in kinds and "data" in m["content"]
    ]


def test_reattach_after_kernel_restart() -> None:
    with Simulator(speed=SPEED) as sim:
        k = Kernel({"OPENHANDS_BASE_URL": sim.url})
        try:
            assert k.run(SETUP)["error"] is None
            started = k.run("conv = %openhands Remember me")
            assert started["error"] is None and started["stderr"] == "", started
            # the wait gives up well before the cell does, so a stuck run says where it stood
            waited = k.run("conv.wait(timeout=45); print(conv.id)", timeout=90)
            if waited["error"] is not None:
                k.dump_threads()
            assert waited["error"] is None, (
                waited["error"],
                k.run("print(repr(conv), conv.snapshot())")["stdout"],
                dict(sim.counts),
            )
            cid = waited["stdout"].strip()
            assert len(cid) == 32
            k.watch(1.0)
            # the output's text fallback was refreshed when it ended: a saved notebook says so
            updated = _texts(k, ("update_display_data",))
            assert any(cid in t and "finished" in t for t in updated), updated

            k.restart()
            assert k.run(SETUP)["error"] is None
            out = k.run(f"again = %openhands --attach {cid}")
            assert out["error"] is None and out["stderr"] == ""
            assert any(cid in d.get("text/plain", "") for d in out["data"])
            listed = k.run(
                "from openhands_jupyter import OpenHands\n"
                "oh = OpenHands()\n"
                f"print(oh.get('{cid}').status, '{cid}' in [c.id for c in oh.list()])"
            )
            assert listed["stdout"].strip() == "finished True"
            # live tracking in the new widget: a follow-up runs and the widget follows it
            sent = sim.counts["v1.send_message"]
            k.run("again.send('after the restart')")
            assert sim.counts["v1.send_message"] == sent + 1
            k.watch(5.0)
            statuses = [
                s["state"]["status"]
                for _c, s, _p in k.comm_states()
                if isinstance(s.get("state"), dict) and "status" in s["state"]
            ]
            assert "running" in statuses and statuses[-1] == "finished", statuses
            out = k.run("print(again.result)")
            assert out["stdout"].strip() == "Done: after the restart"
        finally:
            k.close()
