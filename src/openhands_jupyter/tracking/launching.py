"""The launch queue: start requests sent within the concurrency limit and the budget, starts
whose answer was lost looked for before sending again, and start tasks followed until their
conversation exists."""

from __future__ import annotations

import asyncio
import dataclasses
import posixpath
import time

from ..api import status as st
from ..api.backend import Backend, StartRequest, request_gate
from ..api.errors import (
    APIConnectionError,
    ConcurrencyLimitError,
    InvalidResponseError,
    OpenHandsError,
    RateLimitError,
    ServerError,
)
from ..api.models import StartTask
from .commands import SEND, Args, Under
from .core import BUSY, CONVERSATION_FAULTS, TrackerCore
from .state import Tracked

#: where the notebook's data and files go, inside the agent's project
UPLOAD_FOLDER = "notebook_data"

#: the start phase of a start whose request is on its way (``start(background=True)``)
SENDING = "SENDING_REQUEST"
#: the start phases before the conversation's sandbox runs
SANDBOX_PHASES = frozenset({"WORKING", "WAITING_FOR_SANDBOX"})
#: why a start waits in the queue
FULL = "Waiting for a free slot (max_concurrent reached)."
SANDBOX_WAIT = (
    "Waiting for the sandbox of the start before it: this server makes one at a time "
    "(sandbox_starts)."
)
MAX_START_ATTEMPTS = 4


class Launching(TrackerCore):
    """Starts conversations: the queue, start verification, start tasks and confirmed-mode tasks."""

    def _waits_for(self) -> str | None:
        """Why a new start may not be sent now (``None``: it may)."""
        limit = self.config.max_concurrent
        if limit is not None:
            busy = sum(1 for t in self.entries.values() if t.status in BUSY and t not in self.queue)
            if busy + self._launching >= limit:
                return FULL
        sandboxes = self.config.sandbox_starts
        if sandboxes is not None:
            making = sum(1 for t in self.entries.values() if self._making_sandbox(t))
            if making + self._launching >= sandboxes:
                return SANDBOX_WAIT
        return None

    def _capacity_left(self) -> bool:
        return self._waits_for() is None

    def _making_sandbox(self, tracked: Tracked) -> bool:
        return (
            tracked.status == st.STARTING
            and tracked.conversation_id is None
            and tracked.start_phase in SANDBOX_PHASES
            and tracked not in self.queue
        )

    def _renumber(self) -> None:
        for i, queued in enumerate(self.queue, 1):
            queued.queue_position = i

    async def launch(self, tracked: Tracked) -> None:
        """Send the start request now, or queue it. Runs on any loop. Raises what the server
        refuses outright (bad input, auth); queues on the concurrency or rate limit; after an
        answer that leaves it unknown whether the start happened, checks before sending again."""
        with self._lock:
            # behind others in the queue: waiting for what they wait for
            why = (self.queue[-1].detail or FULL) if self.queue else self._waits_for()
            if why is not None:
                self._enqueue(tracked, reason=why)
                return
            self._launching += 1
        try:
            outcome = await self._attempt(tracked)
        finally:
            with self._lock:
                self._launching -= 1
        if outcome != "queued":
            self.track(tracked)

    async def launch_reporting(self, tracked: Tracked) -> None:
        """:meth:`launch` for a start nobody awaits: a refusal becomes the conversation's error
        (shown where it is shown), never an exception lost in the loop."""
        try:
            await self.launch(tracked)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = (
                str(exc) if isinstance(exc, OpenHandsError) else f"{type(exc).__name__}: {exc}"
            )
            tracked.start_phase = None
            self._set_status(tracked, st.ERROR)
            tracked.detail = message
        else:
            if tracked.start_phase == SENDING:
                tracked.start_phase = None
        self._publish(tracked)

    def _enqueue(self, tracked: Tracked, *, front: bool = False, reason: str | None = None) -> None:
        with self._lock:
            self._set_status(tracked, st.QUEUED)
            tracked.detail = reason or FULL
            if front:
                self.queue.appendleft(tracked)
            else:
                self.queue.append(tracked)
            self._renumber()
            self._held_here(tracked)
            self.entries[tracked.key] = tracked
            tracked.tracking = True
            if self._queue_next_try <= self._now():
                self._queue_next_try = self._now() + self.config.s(self.config.queue_retry_interval)
        self.wake()
        self.call_soon(self._publish, tracked, False)
        self.call_soon(self._entries_changed)

    async def _attempt(self, tracked: Tracked, *, front: bool = False) -> str:
        """One start request: ``"started"``, ``"queued"`` or ``"verify"`` (it may have started:
        the loop looks for it before sending again)."""
        assert tracked.request is not None
        token = request_gate.set(self._gated)
        sent_at = time.time()
        backend: Backend | None = None
        try:
            backend = await self._get_backend()
            tracked.start_attempts += 1
            task = await backend.start(tracked.request)
        except ConcurrencyLimitError as exc:
            self._enqueue(tracked, front=front, reason=str(exc))
            return "queued"
        except RateLimitError as exc:
            wait = exc.retry_after if exc.retry_after is not None else self.config.s(10.0)
            with self._lock:
                self._queue_next_try = self._now() + wait
                self._blocked_until = max(self._blocked_until, self._now() + wait)
            self._enqueue(tracked, front=front, reason=f"{exc}; launching when allowed")
            return "queued"
        except (ServerError, APIConnectionError, InvalidResponseError) as exc:
            if getattr(exc, "not_sent", False) or backend is None or backend.version != "v1":
                raise
            if tracked.start_attempts >= MAX_START_ATTEMPTS:
                self._set_status(tracked, st.ERROR)
                tracked.detail = f"The start failed {tracked.start_attempts} times: {exc}"
                return "started"
            tracked.verify_since = sent_at
            self._set_status(tracked, st.STARTING)
            tracked.last_error = (
                f"Retrying: the start request failed ({exc}); checking whether it was created"
            )
            tracked.next_due = self._now() + self.config.s(self.config.start_interval)
            return "verify"
        finally:
            request_gate.reset(token)
        tracked.verify_since = None
        tracked.last_error = None
        self._apply_start(tracked, task)
        return "started"

    async def _verify_starts(self, now: float) -> None:
        """For starts whose answer was lost: adopt the start task if the server made one, else
        send the request again (it was never received)."""
        pending = [
            t
            for t in self.entries.values()
            if t.verify_since is not None and t.start_task_id is None and t.next_due <= now
        ]
        if not pending:
            return
        backend = await self._get_backend()
        known = {t.start_task_id for t in self.entries.values() if t.start_task_id}
        for tracked in pending:
            assert tracked.request is not None and tracked.verify_since is not None
            found = await backend.find_start_task(tracked.request, tracked.verify_since, known)
            if found is not None:
                tracked.verify_since = None
                tracked.last_error = None
                self._apply_start(tracked, found)
                known.add(found.id)
            else:
                await self._attempt(tracked)
            tracked.next_due = self._now() + self.config.s(self.config.start_interval)
            self._publish(tracked)

    async def _launch_queued(self, now: float) -> None:
        while self.queue:
            with self._lock:
                head = self.queue[0]
                if not self._capacity_left() or now < self._blocked_until:
                    return
                if (
                    self.config.max_concurrent is None
                    and not self._slot_freed
                    and (now < self._queue_next_try)
                ):
                    return
                self._slot_freed = False
                self.queue.popleft()
                self._renumber()
                head.queue_position = None
                self._launching += 1
            try:
                outcome = await self._attempt(head, front=True)
            except APIConnectionError:
                self._enqueue(head, front=True, reason=head.detail)
                raise
            except OpenHandsError as exc:
                self._set_status(head, st.ERROR)
                head.detail = f"Start failed: {exc}"
                self._publish(head)
                continue
            finally:
                with self._lock:
                    self._launching -= 1
            if outcome == "queued":
                return
            head.tracking = True
            head.next_due = max(
                head.next_due, self._now() + self.config.s(self.config.start_interval)
            )
            self._publish(head)

    async def _poll_start_tasks(self, starting: list[Tracked], now: float) -> None:
        backend = await self._get_backend()
        ids = [t.start_task_id for t in starting if t.start_task_id]
        tasks = await backend.start_tasks(ids)
        cfg = self.config
        for tracked, task in zip(starting, tasks):
            if task is None:
                tracked.misses += 1
                if tracked.misses >= 3:
                    self._set_status(tracked, st.ERROR)
                    tracked.detail = "The server does not know this start task."
            else:
                tracked.misses = 0
                self._apply_start(tracked, task)
            # someone watching wants to see the agent's first steps, or a queued start waits
            # for this one's sandbox: keep asking every start_interval (one request covers
            # every start task); else slow down
            waited_on = bool(self.queue) and self._making_sandbox(tracked)
            growth = 1.0 if tracked.watched or waited_on else cfg.start_growth
            tracked.start_delay = min(tracked.start_delay * growth, cfg.s(cfg.start_max_interval))
            tracked.next_due = now + (tracked.start_delay if tracked.conversation_id is None else 0)
            self._publish(tracked)
        ready = [t for t in starting if t.conversation_id]
        if ready:
            await self._poll_conversations(ready)

    def _apply_start(self, tracked: Tracked, task: StartTask) -> None:
        tracked.start_task_id = tracked.start_task_id or task.id
        if tracked.start_phase in SANDBOX_PHASES and task.status not in SANDBOX_PHASES:
            self._slot_freed = True  # its sandbox runs: the next start may make one
        tracked.start_phase = task.status
        if task.failed:
            self._set_status(tracked, st.ERROR)
            tracked.detail = task.detail or "The conversation failed to start."
        else:
            tracked.detail = None  # (what it waited for in the queue is over)
            if task.ready and task.app_conversation_id:
                tracked.conversation_id = task.app_conversation_id
                tracked.start_phase = None
            self._set_status(tracked, st.STARTING)
        tracked.web_url = self._web_url(tracked)

    async def _send_uploads(self, backend: Backend, tracked: Tracked, request: StartRequest) -> str:
        """Send the request's files into the workspace's upload folder; return the task, saying
        where each one is and what it is."""
        if not request.uploads:
            return request.task
        info = tracked.info
        assert info is not None
        root = await backend.workspace_root(info)
        if not root.startswith("/"):
            # a project with no absolute path (a local process sandbox's is relative to the
            # agent server's own folder, which it does not say): a folder in its home
            root = posixpath.join(await backend.agent_home(info), f"openhands-{info.id[:12]}")
        folder = posixpath.join(root, UPLOAD_FOLDER)
        lines = []
        for upload in request.uploads:
            path = posixpath.join(folder, upload.name)
            await backend.upload(info, path, upload.data)
            lines.append(f"- {path}: {upload.about}")
        return (
            f"{request.task}\n\nFrom the notebook, in the workspace (read them from there):\n"
            + "\n".join(lines)
        )

    async def _deliver_tasks(self, backend: Backend, waiting: list[Tracked]) -> None:
        """Conversations started in confirmation mode get their task once the agent server is
        up: first its policy (every action waits for the user), then the task, so that no
        action can run before the policy is in place."""
        for tracked in waiting:
            info = tracked.info
            request = tracked.request
            if info is None or request is None or (info.sandbox_status or "") != "RUNNING":
                continue
            try:
                task = await self._send_uploads(backend, tracked, request)
                # the task is a message like any other: what comes after the server shows it
                # is its answer (the socket can bring it before the request returns)
                tracked.expect_echo(task)
                await backend.start_confirmed(info, task, confirm=request.confirm)
            except CONVERSATION_FAULTS as exc:
                tracked.expect_echo(None)
                tracked.last_error = f"Retrying: the task could not be sent yet ({exc})"
                self._publish(tracked)
                continue
            tracked.delivered = True
            if request.uploads:
                # sent: the bytes are let go (what they were stays, for the task's text)
                gone = tuple(dataclasses.replace(u, data=b"") for u in request.uploads)
                tracked.request = dataclasses.replace(request, uploads=gone)
            if tracked.last_error and tracked.last_error.startswith("Retrying: the task"):
                tracked.last_error = None
            tracked.command = Under(SEND, tracked.status, self._now(), Args(request.task))
            tracked.command.answered = True
            tracked.command_at = tracked.command.since
            tracked.next_due = tracked.events_due = self._now() + self.config.s(0.5)
            self._sync_live(tracked)
            self._publish(tracked)
