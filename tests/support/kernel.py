"""A real Jupyter kernel driven through jupyter_client, playing the frontend."""

from __future__ import annotations

import os
import queue
import signal
import time
from typing import Any

from jupyter_client.manager import KernelManager


class Kernel:
    """Start a python3 kernel with ``env``; run cells; watch iopub; send widget messages."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.km = KernelManager(kernel_name="python3")
        full = {**os.environ, **(env or {})}
        full.pop(
            "OPENHANDS_API_KEY", None
        ) if env is None or "OPENHANDS_API_KEY" not in env else None
        self.km.start_kernel(env=full)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.iopub: list[dict[str, Any]] = []
        self._arm_dump()

    def restart(self) -> None:
        """Restart the kernel (its variables go) and wait until it answers again."""
        self.km.restart_kernel(now=True)
        self.kc.wait_for_ready(timeout=60)
        self._arm_dump()

    def _arm_dump(self) -> None:
        # a cell that never ends dumps every thread of the kernel to its stderr (which the test
        # run captures), so a failure says where the kernel stood
        self.run(
            "import faulthandler as _fh, signal as _sig\n"
            "_fh.register(_sig.SIGUSR1, all_threads=True)\n"
            "del _fh, _sig"
        )
        self.iopub.clear()

    def _drain(self, timeout: float) -> dict[str, Any] | None:
        try:
            msg = self.kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            return None
        self.iopub.append(msg)
        return msg

    def run(self, code: str, timeout: float = 60) -> dict[str, Any]:
        """Execute a cell; return its outputs: stdout, stderr, error, data (list of bundles)."""
        msg_id = self.kc.execute(code)
        out: dict[str, Any] = {
            "stdout": "",
            "stderr": "",
            "error": None,
            "data": [],
            "msg_id": msg_id,
        }
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self._drain(max(0.01, deadline - time.monotonic()))
            if msg is None:
                break
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind == "error":
                out["error"] = f"{content['ename']}: {content['evalue']}"
            elif kind in ("execute_result", "display_data"):
                out["data"].append(content["data"])
            elif kind == "status" and content["execution_state"] == "idle":
                return out
        replied = self._replied(msg_id)
        if replied is None:
            self.dump_threads()
        raise TimeoutError(
            f"cell did not finish: {code[:80]!r}; "
            + (
                "the kernel never replied (its threads are in the captured stderr)"
                if replied is None
                else f"the kernel replied {replied!r}, but its iopub said nothing more"
            )
        )

    def _replied(self, msg_id: str) -> str | None:
        """The status of the kernel's execute_reply to ``msg_id``, if it came (the shell
        channel, unlike iopub, never drops a message)."""
        while True:
            try:
                msg = self.kc.get_shell_msg(timeout=0.5)
            except queue.Empty:
                return None
            if msg["parent_header"].get("msg_id") == msg_id:
                return str(msg["content"].get("status"))

    def dump_threads(self) -> None:
        """Have the kernel print every thread's stack to its stderr (see ``__init__``)."""
        pid = getattr(self.km.provisioner, "pid", None)
        if pid:
            os.kill(pid, signal.SIGUSR1)
            time.sleep(1.0)

    def watch(self, seconds: float) -> list[dict[str, Any]]:
        """Collect iopub messages for a while without running anything."""
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self._drain(0.05)
            if msg is not None:
                got.append(msg)
        return got

    def comm_states(self) -> list[tuple[str, dict[str, Any], str]]:
        """(comm_id, state delta, parent msg id) of every widget update seen so far."""
        out = []
        for msg in self.iopub:
            if msg["msg_type"] in ("comm_open", "comm_msg"):
                data = msg["content"].get("data", {})
                if "state" in data:
                    out.append(
                        (
                            msg["content"]["comm_id"],
                            data["state"],
                            msg["parent_header"].get("msg_id", ""),
                        )
                    )
        return out

    def feeds(self) -> dict[str, list[dict[str, Any]]]:
        """Each widget's feed as a browser builds it from the messages seen so far (a reset
        replaces it, other messages add their new events)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for msg in self.iopub:
            if msg["msg_type"] != "comm_msg":
                continue
            data = msg["content"].get("data", {})
            content = data.get("content") if data.get("method") == "custom" else None
            if not isinstance(content, dict) or not isinstance(content.get("feed"), list):
                continue
            comm_id = msg["content"]["comm_id"]
            feed = [] if content.get("reset") else out.get(comm_id, [])
            known = {e["id"] for e in feed}
            out[comm_id] = feed + [e for e in content["feed"] if e["id"] not in known]
        return out

    def show_widgets(self, view_id: str = "test-frontend") -> None:
        """Tell every conversation widget that a view of it is on screen, as a frontend's
        render does."""
        for comm_id, state, _parent in self.comm_states():
            if "state" in state and "busy" in state:
                self.send_custom(comm_id, {"view": "shown", "id": view_id})

    def send_custom(self, comm_id: str, content: dict[str, Any]) -> None:
        msg = self.kc.session.msg(
            "comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": content}}
        )
        self.kc.shell_channel.send(msg)

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
