"""What users and agent servers ask of a simulated conversation: approve or reject, send,
pause, interrupt, run, resume and delete (a mixin of the simulator's :class:`World`)."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import scenarios as sc
from .records import SimConversation

#: what a real agent server says of a tool call an interrupt cut short
INTERRUPTED = "Tool call interrupted before completion. The conversation was paused."


class Commands:
    """The commands; the clock, advancing and events are the :class:`World`'s."""

    lock: threading.RLock
    step: float
    approval_settle: float
    title_delay: float
    default_scenario: str
    changes: list[tuple[float, str, str]]

    if TYPE_CHECKING:

        def now(self) -> float: ...
        def scaled(self, sim_seconds: float) -> float: ...
        def in_sandbox(self, sandbox_id: str) -> list[SimConversation]: ...
        def _advance_conv(self, conv: SimConversation, now: float) -> None: ...
        def _emit(
            self,
            conv: SimConversation,
            type_: str,
            text: str,
            source: str,
            exit_code: int | None,
            at: float,
            value: Any = None,
        ) -> None: ...

    # -- confirmation -------------------------------------------------------------------------
    def _hold(self, conv: SimConversation, at: float) -> None:
        """The action just emitted waits for the user: what comes after it is held."""
        held, prev = [], at
        for due, step in conv.steps:
            held.append((max(0.0, due - prev), step))
            prev = max(prev, due)
        conv.steps.clear()
        conv.held = held
        conv.waiting_since = at
        conv.execution_status = "waiting_for_confirmation"
        self.changes.append((at, conv.id, conv.execution_status))
        self._emit(conv, "state", conv.execution_status, "environment", None, at)

    def respond(self, conv: SimConversation, accept: bool, reason: str) -> bool:
        """The agent server's ``respond_to_confirmation``: run the pending action (and the rest
        of the run), or reject it (the agent stops: idle). ``False``: nothing is pending."""
        with self.lock:
            now = self.now()
            self._advance_conv(conv, now)
            if conv.execution_status != "waiting_for_confirmation":
                return False
            if accept and now - conv.waiting_since < self.scaled(self.approval_settle):
                # as a real agent server: the run that stopped for this approval is still
                # winding down, so its new run is "already running": acknowledged, dropped
                return True
            held = conv.held
            conv.held = None
            edit, conv.held_edit = conv.held_edit, None
            conv.updated = datetime.now(timezone.utc)
            if accept and edit is not None:
                conv.tree.edit(edit)
            if not accept:
                self._emit(conv, "reject", reason, "user", None, now)
                conv.execution_status = "idle"
                self.changes.append((now, conv.id, "idle"))
                self._emit(conv, "state", "idle", "environment", None, now)
                return True
            if held is None:  # the scripted "waiting" scenario
                held = [
                    (
                        self.scaled(self.step * 0.5),
                        sc.Step(0.0, "event", "output", "removed build/", "environment", 0),
                    ),
                    *[
                        (self.scaled(st.delay), st)
                        for st in sc.finish_steps(sc.finish_message(conv.task), self.step)
                    ],
                ]
            conv.execution_status = "running"
            self.changes.append((now, conv.id, "running"))
            self._emit(conv, "state", "running", "environment", None, now)
            at = now
            for delay, step in held:
                at += delay
                conv.steps.append((at, step))
            return True

    # -- commands -----------------------------------------------------------------------------
    def send(self, conv: SimConversation, text: str, run: bool = True) -> None:
        """A user message; with ``run=False`` it is saved and its run waits for the agent
        server's next ``run`` (1.58 when its run capacity is full)."""
        with self.lock:
            now = self.now()
            if not conv.task:
                # the first message of a conversation started without one: it is the task
                conv.task = text
                conv.title_due = now + self.scaled(self.title_delay)
                conv.scenario = sc.scenario_of(text, self.default_scenario)
                steps = [
                    sc.Step(0.0, "event", "message", text, "user"),
                    *sc.run_steps(conv.scenario, text, self.step),
                ]
            elif conv.execution_status == "waiting_for_confirmation":
                steps = [
                    sc.Step(0.0, "event", "message", text, "user"),
                    sc.Step(0.0, "exec", text="running"),
                    sc.Step(self.step * 0.5, "event", "output", "removed build/", "environment", 0),
                    *sc.finish_steps(sc.finish_message(conv.task), self.step),
                ]
            else:
                steps = sc.follow_up_steps(text, self.step)
            conv.held = None
            conv.steps.clear()
            if not run:
                conv.agent_paused = [(self.scaled(step.delay), step) for step in steps[1:]]
                steps = steps[:1]
            at = now
            for step in steps:
                at += self.scaled(step.delay)
                conv.steps.append((at, step))
            self._advance_conv(conv, now)

    def pause(self, conv: SimConversation, at: float | None = None) -> None:
        with self.lock:
            now = self.now() if at is None else at
            if conv.sandbox_status == "PAUSED":
                return
            conv.frozen = []
            prev = now
            for due, step in conv.steps:
                conv.frozen.append((max(0.0, due - prev), step))
                prev = max(prev, due)
            conv.steps.clear()
            conv.resume_exec = conv.execution_status or "idle"
            conv.sandbox_status = "PAUSED"
            conv.execution_status = None
            conv.updated = datetime.now(timezone.utc)

    def pause_sandbox(self, sandbox_id: str) -> list[SimConversation]:
        """Pause a sandbox: every conversation in it stops."""
        with self.lock:
            convs = self.in_sandbox(sandbox_id)
            for conv in convs:
                self.pause(conv)
            return convs

    def resume_sandbox(self, sandbox_id: str) -> list[SimConversation]:
        with self.lock:
            convs = self.in_sandbox(sandbox_id)
            for conv in convs:
                self.resume(conv)
            return convs

    def step_ends_in(self, conv: SimConversation) -> float:
        """Seconds until the step under way ends (a running agent's next event), the wait of
        the agent server's ``pause``."""
        with self.lock:
            now = self.now()
            self._advance_conv(conv, now)
            if conv.execution_status != "running" or not conv.steps:
                return 0.0
            return max(0.0, conv.steps[0][0] - now)

    def _freeze(self, conv: SimConversation, now: float) -> None:
        frozen = []
        prev = now
        for due, step in conv.steps:
            frozen.append((max(0.0, due - prev), step))
            prev = max(prev, due)
        conv.steps.clear()
        conv.agent_paused = frozen

    def agent_pause(self, conv: SimConversation) -> bool:
        """The agent server's ``pause``, once the step under way has ended (its route waits
        for that first): this conversation's agent only; the sandbox runs on."""
        with self.lock:
            now = self.now()
            self._advance_conv(conv, now)
            if conv.sandbox_status != "RUNNING" or conv.execution_status not in (
                "running",
                "idle",
                None,
            ):
                return False  # as the SDK: only a running or idle agent pauses
            self._freeze(conv, now)
            conv.execution_status = "paused"
            conv.updated = datetime.now(timezone.utc)
            self._emit(conv, "pause", "paused", "user", None, now)
            self._emit(conv, "state", "paused", "environment", None, now)
            return True

    def agent_interrupt(self, conv: SimConversation) -> None:
        """The agent server's ``interrupt``: the step under way is cancelled at once (a command
        is killed: its output never comes) and the agent is paused. While an action waits
        for approval it does nothing, as on a real agent server."""
        with self.lock:
            now = self.now()
            self._advance_conv(conv, now)
            if conv.sandbox_status != "RUNNING" or conv.execution_status in (
                "waiting_for_confirmation",
                "paused",
            ):
                return
            cut = bool(conv.steps) and conv.steps[0][1].type == "output"
            if cut:
                conv.steps.popleft()  # the command under way: killed, no output
                self._emit(conv, "agent_error", INTERRUPTED, "agent", None, now)
            self._freeze(conv, now)
            conv.execution_status = "paused"
            conv.updated = datetime.now(timezone.utc)
            self.changes.append((now, conv.id, "paused"))
            self._emit(conv, "state", "paused", "environment", None, now)
            self._emit(conv, "interrupt", "interrupted", "user", None, now)

    def agent_run(self, conv: SimConversation) -> str:
        """The agent server's ``run``: ``"ran"``, ``"running"`` (already) or ``"idle"``."""
        with self.lock:
            now = self.now()
            self._advance_conv(conv, now)
            if conv.execution_status == "running":
                return "running"
            if conv.agent_paused is None or conv.execution_status not in (
                "paused",
                "idle",
                "finished",
            ):
                return "idle"
            conv.execution_status = "running"
            conv.updated = datetime.now(timezone.utc)
            self._emit(conv, "state", "running", "environment", None, now)
            at = now
            for delay, step in conv.agent_paused:
                at += delay
                conv.steps.append((at, step))
            conv.agent_paused = None
            return "ran"

    def resume(self, conv: SimConversation) -> None:
        with self.lock:
            if conv.sandbox_status != "PAUSED":
                return
            conv.sandbox_status = "STARTING"
            conv.ready_at = self.now() + self.scaled(1.0)
            conv.updated = datetime.now(timezone.utc)

    def delete(self, conv: SimConversation) -> None:
        with self.lock:
            conv.deleted = True
            conv.sandbox_status = "MISSING"
            conv.execution_status = None
            conv.steps.clear()
