"""The V0 backend (``/api/conversations``) for self-hosted OpenHands servers up to 1.6."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urljoin

from .backend import Backend, EventCursor, StartRequest
from .errors import InvalidResponseError, NotFoundError, UnsupportedError
from .events import event_from_v0, oldest_first
from .ids import lenient_id
from .models import ConversationInfo, Event, StartTask
from .secrets import SecretHeaders

P = "/api/conversations"


STATE_PAGES = 5


class V0Backend(Backend):
    version = "v0"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._states: dict[str, tuple[str, int]] = {}

    def _runtime(self, info: ConversationInfo) -> tuple[str, dict[str, str]]:
        """Base URL and headers for calls bound to the conversation's runtime."""
        url = info.conversation_url or f"{P}/{info.id}"
        if not url.startswith(("http://", "https://")):
            url = urljoin(self.transport.base_url + "/", url.lstrip("/"))
        headers = SecretHeaders()
        if info.session_api_key is not None:
            headers["X-Session-API-Key"] = info.session_api_key.get()
        return url.rstrip("/"), headers

    async def start(self, request: StartRequest) -> StartTask:
        if request.confirm:
            raise UnsupportedError(
                "This server does not offer confirmation mode for one conversation (V1 does)."
            )
        if request.uploads:
            raise UnsupportedError("This server does not take files for the agent (V1 does).")
        body: dict[str, Any] = {"initial_user_msg": request.task}
        if request.repository:
            body["repository"] = request.repository
        if request.branch:
            body["selected_branch"] = request.branch
        if request.git_provider:
            body["git_provider"] = request.git_provider
        body.update(request.extra)
        data = await self.call("POST", P, json_body=body, idempotent=False)
        if not isinstance(data, dict) or not data.get("conversation_id"):
            raise InvalidResponseError("The server's create answer has no conversation_id.")
        cid = str(data["conversation_id"])
        return StartTask.from_json({"id": cid, "status": "READY", "app_conversation_id": cid})

    async def stream_start(self, request: StartRequest) -> AsyncIterator[StartTask]:
        yield await self.start(request)

    async def start_tasks(self, ids: list[str]) -> list[StartTask | None]:
        return [
            StartTask.from_json({"id": i, "status": "READY", "app_conversation_id": i}) for i in ids
        ]

    def _note_states(self, cid: str, raws: list[Any]) -> None:
        """Remember the newest ``agent_state_changed`` seen in any read of this conversation:
        V0 emits one only on a transition, so a long run has none among its newest events."""
        for raw in raws:
            if not isinstance(raw, dict) or raw.get("observation") != "agent_state_changed":
                continue
            eid = raw.get("id")
            state = (raw.get("extras") or {}).get("agent_state")
            known = self._states.get(cid)
            if isinstance(eid, int) and state and (known is None or eid > known[1]):
                self._states[cid] = (str(state), eid)

    async def _agent_state(self, info: ConversationInfo) -> tuple[str | None, int | None]:
        """The latest agent state and the id of the event that set it: from the newest events,
        else from what earlier reads saw, else by paging back (once) through the history."""
        url, headers = self._runtime(info)
        end_id: int | None = None
        for page in range(STATE_PAGES):
            params: dict[str, Any] = {"start_id": 0, "limit": 20 if page == 0 else 100}
            params["reverse"] = "true"
            if end_id is not None:
                params["end_id"] = end_id
            data = await self.call("GET", f"{url}/events", params=params, headers=headers)
            raws = data.get("events", []) if isinstance(data, dict) else []
            raws = [r for r in raws if isinstance(r, dict)]
            self._note_states(info.id, raws)
            if any(r.get("observation") == "agent_state_changed" for r in raws):
                break
            if info.id in self._states or not (isinstance(data, dict) and data.get("has_more")):
                break
            ids = [r["id"] for r in raws if isinstance(r.get("id"), int)]
            if not ids:
                break
            end_id = min(ids) - 1
        known = self._states.get(info.id)
        return (known[0], known[1]) if known else (None, None)

    async def conversations(
        self, ids: list[str], has_run: frozenset[str] = frozenset()
    ) -> list[ConversationInfo | None]:
        out: list[ConversationInfo | None] = []
        for cid in ids:
            data = await self.call("GET", f"{P}/{cid}")
            if not isinstance(data, dict):
                out.append(None)
                continue
            info = ConversationInfo.read(cid, ConversationInfo.from_v0, data, None)
            if info.unreadable:
                out.append(info)
                continue
            state, marker = None, None
            if str(data.get("status", "")).upper() == "RUNNING":
                state, marker = await self._agent_state(info)
            out.append(
                ConversationInfo.from_v0(data, state, str(marker) if marker is not None else None)
            )
        return out

    async def search(self, limit: int = 20) -> list[ConversationInfo]:
        items = await self.paged(P, limit, "results")
        return [
            ConversationInfo.read(
                lenient_id(i.get("conversation_id")), ConversationInfo.from_v0, i, None
            )
            for i in items
            if isinstance(i, dict)
        ]

    async def count(self) -> int:
        return len(await self.search(limit=1000))

    async def events(
        self, info: ConversationInfo, cursor: EventCursor, max_pages: int = 5
    ) -> list[Event]:
        url, headers = self._runtime(info)
        out: list[Event] = []
        pages = 0
        while not max_pages or pages < max_pages:
            pages += 1
            data = await self.call(
                "GET",
                f"{url}/events",
                params={"start_id": cursor.next_start_id, "limit": 100, "reverse": "false"},
                headers=headers,
            )
            if not isinstance(data, dict):
                raise InvalidResponseError("Unexpected events response.")
            out.extend(self._take(info, cursor, data.get("events", [])))
            if not data.get("has_more"):
                break
        return out

    async def events_tail(
        self,
        info: ConversationInfo,
        cursor: EventCursor,
        limit: int = 100,
        on_cut: Callable[[str], None] | None = None,
    ) -> list[Event]:
        url, headers = self._runtime(info)
        data = await self.call(
            "GET", f"{url}/events", params={"limit": limit, "reverse": "true"}, headers=headers
        )
        if not isinstance(data, dict):
            raise InvalidResponseError("Unexpected events response.")
        raws = [r for r in data.get("events", []) if isinstance(r, dict)]
        return self._take(info, cursor, oldest_first(raws, data.get("has_more"), on_cut))

    def _take(self, info: ConversationInfo, cursor: EventCursor, raws: list[Any]) -> list[Event]:
        """Events from raw items in order; notes agent states and moves the cursor past them."""
        raws = [r for r in raws if isinstance(r, dict)]
        self._note_states(info.id, raws)
        out: list[Event] = []
        for raw in raws:
            eid = raw.get("id")
            if isinstance(eid, int):
                cursor.next_start_id = max(cursor.next_start_id, eid + 1)
            event = event_from_v0(raw)
            if event is not None:
                out.append(event)
        return out

    async def send(self, info: ConversationInfo, text: str) -> None:
        url, headers = self._runtime(info)
        await self.call(
            "POST", f"{url}/message", json_body={"message": text}, headers=headers, idempotent=False
        )

    async def stop(self, info: ConversationInfo) -> None:
        await self.call("POST", f"{P}/{info.id}/stop", idempotent=True)

    async def pause_sandbox(self, info: ConversationInfo) -> list[str]:
        """A V0 conversation's sandbox is its runtime: stopping it stops only this one."""
        await self.stop(info)
        return [info.id]

    async def resume(self, info: ConversationInfo) -> None:
        await self.call(
            "POST", f"{P}/{info.id}/start", json_body={"providers_set": None}, idempotent=True
        )

    async def delete(self, conversation_id: str) -> None:
        ok = await self.call("DELETE", f"{P}/{conversation_id}")
        if ok is False:
            raise NotFoundError(f"Conversation {conversation_id} not found.")

    async def download(self, conversation_id: str) -> bytes:
        raise NotFoundError("V0 servers offer no conversation download.")
