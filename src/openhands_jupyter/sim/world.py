"""The simulator's state: start tasks, conversations and their scripted timelines on a scaled clock."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from . import scenarios as sc
from .commands import Commands
from .records import NEVER, Now, SimConversation, SimEvent, SimStartTask

TERMINAL_EXEC = frozenset({"finished", "error", "stuck"})
#: what one agent step costs in the simulator, and the tokens it takes
STEP_COST = 0.0123
STEP_TOKENS = (1200, 34)


def _iso(moment: datetime, zone: bool) -> str:
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds")
    return text + "Z" if zone else text


class World(Commands):
    """Everything the simulated server knows. Thread-safe; advanced lazily on every request.
    The commands (approve, send, pause, interrupt, run...) are in :class:`Commands`."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        batch_size: int = 5,
        flush_delay: float = 30.0,
        step: float = 1.5,
        null_period: float = 2.0,
        default_scenario: str = "finish",
        session_key: str | None = None,
        grouping: str = "NO_GROUPING",
        local_offset_hours: float = 0.0,
        title_delay: float = 3.0,
        idle_before_run: float = 0.0,
        approval_settle: float = 0.5,
        condenser_cost: float = 0.0,
        clock: Now | None = None,
    ) -> None:
        self.speed = speed
        #: where the time comes from: the real monotonic clock, or one a test moves by hand
        #: (shared with the tracker, so that waiting is done in no real time)
        self.clock = clock
        self.condenser_cost = condenser_cost
        self.approval_settle = approval_settle
        self.idle_before_run = idle_before_run
        self.batch_size = max(1, int(batch_size))
        self.flush_delay = flush_delay
        self.grouping = grouping
        self.local_offset = timedelta(hours=local_offset_hours)
        self.title_delay = title_delay
        self.agent_url = "http://127.0.0.1:1"
        #: the agent server's version ("1.34", as 1.11.0 pins, or "1.58"): how its events look
        self.agent_version = "1.34"
        #: the next this many runs an agent server starts are refused for want of capacity
        #: (429; 1.58, whose run capacity is shared by every conversation in the sandbox)
        self.runs_refused = 0
        #: the app server's store refuses the agent server's events (a 1.11 app server in
        #: front of a 1.58 agent server answers its webhooks 422): it keeps none of them
        self.store_refuses = False
        #: sandboxes made at the same moment clash (a process sandbox's one port): see
        #: ``Simulator(port_clash=...)``
        self.port_clash = False
        self.step = step
        self.null_period = null_period
        self.default_scenario = default_scenario
        self.session_key = session_key
        self.tasks: dict[str, SimStartTask] = {}
        self.conversations: dict[str, SimConversation] = {}
        self.order: list[str] = []
        self.changes: list[tuple[float, str, str]] = []
        """(monotonic time, conversation id, new execution_status) of every scripted change."""
        self.lock = threading.RLock()
        self._seq = 0

    # -- clock --------------------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() if self.clock is None else self.clock.now()

    def scaled(self, sim_seconds: float) -> float:
        return sim_seconds / self.speed

    # -- creation -----------------------------------------------------------------------------
    def create(
        self,
        task: str,
        repository: str | None,
        branch: str | None,
        title: str | None,
        request: dict[str, Any],
    ) -> SimStartTask:
        with self.lock:
            now = self.now()
            scenario = sc.scenario_of(task, self.default_scenario)
            phases = [("WORKING", 0.5), ("WAITING_FOR_SANDBOX", 4.0)]
            if repository:
                phases.append(("PREPARING_REPOSITORY", 2.0))
            phases += [("SETTING_UP_SKILLS", 1.0), ("STARTING_CONVERSATION", 1.0)]
            shared = self._shared_sandbox() if self.grouping != "NO_GROUPING" else None
            if shared is not None:
                phases = [("WORKING", 0.2), ("STARTING_CONVERSATION", 0.5)]
            total = sum(d for _, d in phases)
            sandbox_id = (
                shared.sandbox_id
                if shared
                else secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")[:22]
            )
            key = shared.session_api_key if shared else None
            conv = SimConversation(
                id=uuid.uuid4().hex,
                task_id=uuid.uuid4().hex,
                task=task,
                scenario=scenario,
                sandbox_id=sandbox_id,
                repository=repository,
                branch=branch,
                title=title,
                session_api_key=key or self.session_key or "sess-" + secrets.token_hex(16),
                created=datetime.now(timezone.utc),
                ready_at=now + self.scaled(total),
            )
            conv.tree.git = scenario != "nogit"
            if self.port_clash and shared is None:
                conv.clashed = any(self._making_sandbox(t, now) for t in self.tasks.values())
            start = SimStartTask(conv.task_id, conv, phases, request, conv.created)
            self.tasks[start.id] = start
            self.conversations[conv.id] = conv
            self.order.append(conv.id)
            return start

    def _making_sandbox(self, task: SimStartTask, now: float) -> bool:
        """Whether ``task``'s sandbox is being made (its agent server has no port yet)."""
        makes = any(phase == "WAITING_FOR_SANDBOX" for phase, _ in task.phases)
        if not makes or task.status in ("READY", "ERROR") or task.conversation.deleted:
            return False
        self._advance_task(task, now)
        return task.status in ("WORKING", "WAITING_FOR_SANDBOX")

    def _shared_sandbox(self) -> SimConversation | None:
        """A running sandbox a new conversation joins (``ADD_TO_ANY``)."""
        for conv in self.conversations.values():
            if not conv.deleted and conv.sandbox_status == "RUNNING":
                return conv
        return None

    def in_sandbox(self, sandbox_id: str) -> list[SimConversation]:
        return [
            c for c in self.conversations.values() if c.sandbox_id == sandbox_id and not c.deleted
        ]

    # -- advancing ----------------------------------------------------------------------------
    def advance(self) -> None:
        with self.lock:
            now = self.now()
            for task in self.tasks.values():
                if task.status in ("READY", "ERROR"):
                    continue
                self._advance_task(task, now)
            for conv in self.conversations.values():
                if not conv.deleted:
                    self._advance_conv(conv, now)

    def _advance_task(self, task: SimStartTask, now: float) -> None:
        conv = task.conversation
        elapsed = (now - (conv.ready_at - self.scaled(sum(d for _, d in task.phases)))) * self.speed
        for phase, duration in task.phases:
            if elapsed < duration:
                task.status = phase
                return
            elapsed -= duration
        if conv.clashed:
            task.status = "ERROR"
            task.detail = sc.PORT_CLASH_DETAIL.format(agent_url=self.agent_url)
            conv.sandbox_status = "ERROR"
            conv.start_error = True
            return
        if conv.scenario == "start_error":
            task.status = "ERROR"
            task.detail = sc.START_ERROR_DETAIL.format(sandbox_id=conv.sandbox_id)
            conv.sandbox_status = "ERROR"
            conv.start_error = True
            return
        task.status = "READY"
        conv.visible_v1 = True
        conv.sandbox_status = "RUNNING"
        if conv.task:
            # the server names a conversation after its first message, a few seconds in
            conv.title_due = conv.ready_at + self.scaled(self.title_delay)
        conv.exec_ready_at = conv.ready_at + self.scaled(self.null_period)
        at = conv.exec_ready_at
        if self.idle_before_run:
            # as a V1 server may: "idle" for a moment after the start, before the first run
            conv.steps.append((at, sc.Step(0.0, "exec", text="idle")))
            at += self.scaled(self.idle_before_run)
        self._emit(conv, "system", "", "agent", None, conv.ready_at)
        if not conv.task:
            conv.updated = datetime.now(timezone.utc)
            return  # started with no message: idle until the first one
        self._emit(conv, "message", conv.task, "user", None, conv.ready_at)
        self._emit(conv, "user_id", "", "environment", None, conv.ready_at, conv.events[-1].id)
        for step in sc.run_steps(conv.scenario, conv.task, self.step):
            at += self.scaled(step.delay)
            conv.steps.append((at, step))
        conv.updated = datetime.now(timezone.utc)

    def _advance_conv(self, conv: SimConversation, now: float) -> None:
        if now >= conv.title_due:
            # the server's title step: it copies the agent server's title over the stored one
            conv.title_due = NEVER
            conv.title = conv.agent_title or sc.title_of(conv.task)
        self._flush_due(conv, now)
        if (
            conv.sandbox_status == "STARTING"
            and conv.resume_exec is not None
            and now >= conv.ready_at
        ):
            conv.sandbox_status = "RUNNING"
            conv.exec_ready_at = now + self.scaled(self.null_period)
        if conv.sandbox_status != "RUNNING":
            return
        if conv.execution_status is None and now >= conv.exec_ready_at:
            if conv.resume_exec is not None:
                conv.execution_status = conv.resume_exec
                conv.resume_exec = None
                base = now
                for delay, step in conv.frozen:
                    base += delay
                    conv.steps.append((base, step))
                conv.frozen = []
            elif not conv.steps:
                conv.execution_status = "idle"
        while conv.steps and conv.steps[0][0] <= now:
            at, step = conv.steps.popleft()
            if conv.execution_status is None and step.kind != "exec":
                conv.execution_status = "idle"
            self._apply(conv, step, at, now)
            if conv.sandbox_status != "RUNNING":
                return

    def _apply(self, conv: SimConversation, step: sc.Step, at: float, now: float) -> None:
        conv.updated = datetime.now(timezone.utc)
        if step.kind == "exec":
            conv.execution_status = step.text
            self.changes.append((at, conv.id, step.text))
        elif step.kind == "sandbox":
            for other in self.in_sandbox(conv.sandbox_id):
                self.pause(other, at=now)
        else:
            self._emit(conv, step.type, step.text, step.source, step.exit_code, at)
            if conv.confirm and step.source == "agent" and step.type in sc.CONFIRMED:
                self._hold(conv, at)
            if step.source == "agent" and step.type != "message":
                conv.cost = round(conv.cost + STEP_COST, 4)
                conv.condenser_cost = round(conv.condenser_cost + self.condenser_cost, 4)
                conv.tokens = (conv.tokens[0] + STEP_TOKENS[0], conv.tokens[1] + STEP_TOKENS[1])
                self._emit(conv, "stats", "", "environment", None, at, value=self.stats(conv))

    def stats(self, conv: SimConversation) -> dict[str, Any]:
        """A ``stats`` state update's value, as the agent server sends it."""
        metrics = {
            "model_name": "sim/fake",
            "accumulated_cost": conv.cost,
            "max_budget_per_task": None,
            "accumulated_token_usage": {
                "model": "sim/fake",
                "prompt_tokens": conv.tokens[0],
                "completion_tokens": conv.tokens[1],
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "reasoning_tokens": 0,
                "context_window": 0,
                "per_turn_token": sum(STEP_TOKENS),
                "response_id": "",
            },
        }
        usage: dict[str, Any] = {"agent": metrics}
        if self.condenser_cost:
            # a condenser LLM of its own: the server reports its usage beside the agent's
            usage["condenser"] = {
                "model_name": "sim/condenser",
                "accumulated_cost": conv.condenser_cost,
                "max_budget_per_task": None,
                "accumulated_token_usage": {"model": "sim/condenser", "prompt_tokens": 0},
            }
        return {"usage_to_metrics": usage}

    def _emit(
        self,
        conv: SimConversation,
        type_: str,
        text: str,
        source: str,
        exit_code: int | None,
        at: float,
        value: Any = None,
    ) -> None:
        """Record an event: the agent server has it at once; the app server's store gets it
        when the webhook flushes (``batch_size`` events, or ``flush_delay`` after the first
        buffered one: the agent server's timer is not reset by later events)."""
        self._seq += 1
        self._flush_due(conv, at)
        if type_ in ("output", "finish_obs", "reject") and value is None:
            value = conv.last_action_id

        wall = datetime.now(timezone.utc) - timedelta(seconds=max(0.0, self.now() - at))
        if conv.events and wall < conv.events[-1].at:
            # an agent server stamps its events as it makes them, one after another: never
            # earlier than the one before (two clock reads here can disagree by microseconds)
            wall = conv.events[-1].at
        event = SimEvent(
            seq=len(conv.events),
            id=str(uuid.uuid4()),
            type=type_,
            source=source,
            text=text,
            exit_code=exit_code,
            at=wall,
            moment=at,
            value=value,
        )
        conv.events.append(event)
        if type_ == "edit":
            # in confirmation mode the edit is made once approved
            if conv.confirm:
                conv.held_edit = text
            else:
                conv.tree.edit(text)
        if type_ in ("command", "edit", "read", "plan", "finish"):
            conv.last_action_id = event.id
        conv.buffer.append(event)
        if len(conv.buffer) >= self.batch_size:
            self._flush(conv, at)
        elif conv.buffer_since is None:
            conv.buffer_since = at

    def _flush(self, conv: SimConversation, at: float) -> None:
        for event in conv.buffer:
            event.visible_at = at
        conv.buffer = []
        conv.buffer_since = None

    def _flush_due(self, conv: SimConversation, now: float) -> None:
        if conv.buffer_since is not None:
            due = conv.buffer_since + self.scaled(self.flush_delay)
            if now >= due:
                self._flush(conv, due)

    def local_time(self, event: SimEvent) -> str:
        """The event's timestamp as the agent server writes it: its local clock, no zone."""
        return (
            (event.at + self.local_offset).replace(tzinfo=None).isoformat(timespec="microseconds")
        )

    def active_count(self) -> int:
        with self.lock:
            return sum(
                1
                for c in self.conversations.values()
                if not c.deleted
                and not c.start_error
                and c.sandbox_status in ("STARTING", "RUNNING")
                and c.execution_status not in TERMINAL_EXEC
            )

    def find(self, cid: str) -> SimConversation | None:
        try:
            key = uuid.UUID(cid).hex
        except ValueError:
            return None
        conv = self.conversations.get(key)
        return None if conv is None or conv.deleted else conv

    def visible_events(self, conv: SimConversation, lag: bool = True) -> list[SimEvent]:
        """Events the store has: the app server's V1 store gets them in webhook batches; the
        agent server (and V0, which reads the log directly) has them at once."""
        if not lag:
            return list(conv.events)
        if self.store_refuses:
            return []
        now = self.now()
        with self.lock:
            self._flush_due(conv, now)
            return [e for e in conv.events if e.visible_at <= now]

    # -- rendering ----------------------------------------------------------------------------
    def task_json(self, task: SimStartTask, zone: bool = False) -> dict[str, Any]:
        conv = task.conversation
        ready = task.status == "READY"
        return {
            "id": task.id,
            "created_by_user_id": None,
            "status": task.status,
            "detail": task.detail,
            "app_conversation_id": conv.id if ready else None,
            "sandbox_id": conv.sandbox_id if task.status not in ("WORKING",) else None,
            "agent_server_url": self.agent_url if ready else None,
            "request": {
                **task.request,
                "secrets": {k: "***" for k in task.request.get("secrets", {})},
            },
            "created_at": _iso(task.created, zone),
            "updated_at": _iso(conv.updated, False),
        }

    def conversation_json(self, conv: SimConversation) -> dict[str, Any]:
        running = conv.sandbox_status == "RUNNING"
        return {
            "id": conv.id,
            "created_by_user_id": None,
            "sandbox_id": conv.sandbox_id,
            "selected_repository": conv.repository,
            "selected_branch": conv.branch,
            "git_provider": "github" if conv.repository else None,
            "title": conv.title or f"Conversation {conv.id[:5]}",
            "trigger": "openhands_api",
            "pr_number": [42] if conv.execution_status == "finished" and conv.repository else [],
            "llm_model": "sim/fake",
            # as on a real 1.11 server: the app server's metrics stay at zero; the figures are
            # in the agent's ``stats`` events
            "metrics": {
                "model_name": "default",
                "accumulated_cost": 0.0,
                "max_budget_per_task": None,
                "accumulated_token_usage": {
                    "model": "",
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "cache_read_tokens": 0,
                    "cache_write_tokens": 0,
                    "reasoning_tokens": 0,
                    "context_window": 0,
                    "per_turn_token": 0,
                    "response_id": "",
                },
            },
            "parent_conversation_id": None,
            "sub_conversation_ids": [],
            "created_at": _iso(conv.created, True),
            "updated_at": _iso(conv.updated, True),
            "sandbox_status": conv.sandbox_status,
            "execution_status": conv.execution_status if running else None,
            "conversation_url": f"{self.agent_url}/api/conversations/{conv.id}"
            if running
            else None,
            "session_api_key": conv.session_api_key if running else None,
            "agent_kind": "openhands",
            "public": None,
            "tags": {"archiveworkspacepath": f"./{conv.id}"},
            "acp_server": None,
            "launched_agent_profile": None,
            **conv.overrides,
        }
