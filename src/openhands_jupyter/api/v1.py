"""The V1 backend (``/api/v1/...``): OpenHands Cloud and self-hosted servers from 1.7 on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from . import status as st
from .agent import AgentEndpoint
from .backend import Backend, EventCursor, StartRequest
from .errors import (
    ConflictError,
    InvalidResponseError,
    OpenHandsError,
    UnsupportedError,
)
from .ids import lenient_id
from .models import ConversationInfo, Event, StartTask
from .v1_events import V1EventStore
from .v1_workspace import V1Workspace
from .workspace import FileChange, FileDiff

BATCH = 99
#: how long a resume keeps asking while the agent finishes the step it was stopped in
RESUME_PATIENCE = 30.0
P = "/api/v1/app-conversations"


def _chunks(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def start_body(request: StartRequest) -> dict[str, Any]:
    """The start request. In confirmation mode it carries no message: the task goes to the
    agent server once the policy is set there (the app server takes the policy only from the
    user's settings, and the agent runs its first message at once)."""
    body: dict[str, Any] = {"trigger": "openhands_api"}
    if not request.deferred:
        body["initial_message"] = {
            "role": "user",
            "content": [{"type": "text", "text": request.task}],
            "run": True,
        }
    if request.repository:
        body["selected_repository"] = request.repository
    if request.branch:
        body["selected_branch"] = request.branch
    if request.git_provider:
        body["git_provider"] = request.git_provider
    if request.title:
        body["title"] = request.title
    body.update(request.extra)
    return body


class V1Backend(Backend):
    version = "v1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store = V1EventStore(self.call)
        self.files = V1Workspace(self.call, self.agent)

    async def start(self, request: StartRequest) -> StartTask:
        data = await self.call("POST", P, json_body=start_body(request), idempotent=False)
        return StartTask.from_json(_expect(data, dict, "start"))

    async def stream_start(self, request: StartRequest) -> AsyncIterator[StartTask]:
        async for item in self.transport.stream_json_array(
            "POST", f"{P}/stream-start", json_body=start_body(request)
        ):
            if isinstance(item, dict):
                yield StartTask.from_json(item)

    async def find_start_task(
        self, request: StartRequest, since: float, exclude: set[str]
    ) -> StartTask | None:
        data = _expect(
            await self.call(
                "GET", f"{P}/start-tasks/search", params={"limit": 100}, what="start-task search"
            ),
            dict,
            "start-tasks search",
        )
        for item in data.get("items", []):
            if not isinstance(item, dict):
                continue
            task = StartTask.from_json(item)
            echo = item.get("request") or {}
            parts = (echo.get("initial_message") or {}).get("content") or []
            text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
            recent = task.created_at is None or task.created_at.timestamp() >= since - 120
            if (
                task.id not in exclude
                and recent
                and text == request.task
                and echo.get("selected_repository") == request.repository
            ):
                return task
        return None

    async def start_tasks(self, ids: list[str]) -> list[StartTask | None]:
        out: list[StartTask | None] = []
        for chunk in _chunks(ids, 100):
            data = await self.call("GET", f"{P}/start-tasks", params={"ids": chunk})
            out.extend(
                StartTask.from_json(d) if isinstance(d, dict) else None
                for d in _expect(data, list, "start-tasks")
            )
        return out

    async def conversations(
        self, ids: list[str], has_run: frozenset[str] = frozenset()
    ) -> list[ConversationInfo | None]:
        out: list[ConversationInfo | None] = []
        for chunk in _chunks(ids, BATCH):
            data = await self.call("GET", P, params={"ids": chunk})
            items = _expect(data, list, "conversations")
            for cid, item in zip(chunk, items):
                out.append(
                    ConversationInfo.read(
                        cid, ConversationInfo.from_v1, item, has_run=cid in has_run
                    )
                    if isinstance(item, dict)
                    else None
                )
        return out

    async def search(self, limit: int = 20) -> list[ConversationInfo]:
        items = await self.paged(f"{P}/search", limit, "items")
        return [
            ConversationInfo.read(
                lenient_id(i.get("id")), ConversationInfo.from_v1, i, has_run=True
            )
            for i in items
            if isinstance(i, dict)
        ]

    async def count(self) -> int:
        return int(await self.call("GET", f"{P}/count", what="a conversation count"))

    async def events(
        self, info: ConversationInfo, cursor: EventCursor, max_pages: int = 5
    ) -> list[Event]:
        return await self.store.forward(info.id, cursor, max_pages)

    async def events_tail(
        self,
        info: ConversationInfo,
        cursor: EventCursor,
        limit: int = 100,
        on_cut: Callable[[str], None] | None = None,
    ) -> list[Event]:
        return await self.store.tail(info.id, cursor, limit, on_cut)

    async def send(self, info: ConversationInfo, text: str) -> None:
        body = {"role": "user", "content": [{"type": "text", "text": text}], "run": True}
        try:
            await self.call(
                "POST",
                f"{P}/{info.id}/send-message",
                json_body=body,
                idempotent=False,
                what="send-message",
            )
            return
        except UnsupportedError:
            pass  # servers before April 2026 (1.6): the agent server takes the message
        endpoint = self.endpoint(info)
        if endpoint is None:
            raise ConflictError(
                f"Conversation {info.id} is {info.status}: its agent is not running. Resume it "
                "first."
            )
        await self.agent.send_message(endpoint, text)

    async def stop(self, info: ConversationInfo) -> None:
        """Stop this conversation's agent on its agent server, at once (``/interrupt``; the web
        UI's Stop sends ``/pause``, which waits for the step under way to end); the sandbox
        and every other conversation in it keep running."""
        if (info.sandbox_status or "").upper() == "PAUSED":
            return
        endpoint = self.endpoint(info)
        if endpoint is None or info.status in st.FINAL:
            raise ConflictError(
                f"Conversation {info.id} is {info.status}: there is no running agent to stop."
            )
        await self.agent.interrupt(endpoint)

    async def resume(self, info: ConversationInfo) -> None:
        """Run a stopped agent again, or resume its paused sandbox. Right after a stop the
        agent server answers 409 until the step under way has ended: ask again meanwhile."""
        if (info.sandbox_status or "").upper() == "PAUSED":
            await self._sandbox(info, "resume")
            return
        endpoint = self.endpoint(info)
        if endpoint is None:
            raise ConflictError(f"Conversation {info.id} is {info.status}: nothing to resume.")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESUME_PATIENCE
        delay = 0.25
        while True:
            try:
                await self.agent.run(endpoint)
                return
            except ConflictError:
                if info.execution_status != "paused":
                    return  # it is running already
                if loop.time() + delay > deadline:
                    raise ConflictError(
                        "The agent is still finishing the step it was on when it was stopped; "
                        "resume it again in a moment."
                    ) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _sandbox(self, info: ConversationInfo, action: str) -> None:
        if not info.sandbox_id:
            raise ConflictError(f"Conversation {info.id} has no sandbox to {action}.")
        await self.call(
            "POST",
            f"/api/v1/sandboxes/{info.sandbox_id}/{action}",
            idempotent=True,
            what=f"sandbox {action}",
        )

    async def in_sandbox(self, sandbox_id: str) -> list[str]:
        """Ids of the conversations that share this sandbox."""
        try:
            items = await self.paged(f"{P}/search?sandbox_id__eq={sandbox_id}", 1000, "items")
        except OpenHandsError:
            items = await self.paged(f"{P}/search", 1000, "items")
        return [
            str(ConversationInfo.from_v1(i).id) for i in items if i.get("sandbox_id") == sandbox_id
        ]

    async def pause_sandbox(self, info: ConversationInfo) -> list[str]:
        if not info.sandbox_id:
            raise ConflictError(f"Conversation {info.id} has no sandbox to pause.")
        affected = await self.in_sandbox(info.sandbox_id)
        await self._sandbox(info, "pause")
        return affected or [info.id]

    async def set_title(self, info: ConversationInfo, title: str) -> None:
        """The app server's title, and the agent server's (which the server's own title step
        copies over whatever is stored)."""
        endpoint = self.endpoint(info)
        if endpoint is not None:
            try:
                await self.agent.set_title(endpoint, title)
            except OpenHandsError:
                pass
        await self.call(
            "PATCH",
            f"{P}/{info.id}",
            json_body={"title": title},
            idempotent=True,
            what="renaming a conversation",
        )

    def _agent(self, info: ConversationInfo, what: str) -> AgentEndpoint:
        endpoint = self.endpoint(info)
        if endpoint is None:
            raise ConflictError(
                f"Conversation {info.id} is {info.status}: its agent server is not up to {what}."
            )
        return endpoint

    async def start_confirmed(
        self, info: ConversationInfo, task: str, confirm: bool = True
    ) -> None:
        endpoint = self._agent(info, "take the task")
        if confirm:
            await self.agent.set_confirmation(endpoint, True)
        await self.agent.send_message(endpoint, task)

    async def agent_home(self, info: ConversationInfo) -> str:
        return await self.agent.home(self._agent(info, "take files"))

    async def upload(self, info: ConversationInfo, path: str, data: bytes) -> None:
        await self.agent.upload(self._agent(info, "take files"), path, data)

    async def respond(self, info: ConversationInfo, accept: bool, reason: str) -> None:
        await self.agent.respond(self._agent(info, "answer"), accept, reason)

    async def workspace_root(self, info: ConversationInfo) -> str:
        return await self.files.root(info, self.endpoint(info))

    async def changes(self, info: ConversationInfo, root: str) -> list[FileChange]:
        return await self.files.changes(info, self.endpoint(info), root)

    async def file_diff(self, info: ConversationInfo, root: str, path: str) -> FileDiff:
        return await self.files.diff(info, self.endpoint(info), root, path)

    async def read_file(self, info: ConversationInfo, root: str, path: str) -> bytes:
        return await self.files.read_file(info, self.endpoint(info), root, path)

    async def delete(self, conversation_id: str) -> None:
        try:
            await self.call("DELETE", f"{P}/{conversation_id}", what="V1 delete")
        except UnsupportedError:
            # 1.6 servers: V1 has no delete; the legacy route deletes it
            await self.call(
                "DELETE", f"/api/conversations/{conversation_id}", what="deleting conversations"
            )

    async def download(self, conversation_id: str) -> bytes:
        data = await self.call(
            "GET", f"{P}/{conversation_id}/download", expect_json=False, what="conversation export"
        )
        return bytes(data)


def _expect(data: Any, kind: type, what: str) -> Any:
    if not isinstance(data, kind):
        raise InvalidResponseError(f"Unexpected {what} response: {type(data).__name__}")
    return data
