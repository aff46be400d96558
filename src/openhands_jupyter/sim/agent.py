"""The simulated agent server (what ``conversation_url`` points at): its REST routes and the
event WebSocket, authenticated with each sandbox's own session key."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import render
from .records import SimConversation
from .tree import project_dir
from .world import World

AUTH_FAILED = 4001
NOT_FOUND = 4004
PUSH_INTERVAL = 0.02


def _err(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def build_agent_app(
    world: World,
    counts: Callable[[str], None],
    *,
    frame_auth: bool = True,
    push_delay: float = 0.0,
    interrupt: bool = True,
) -> Starlette:
    """``frame_auth=False`` is an agent server from before first-frame auth (1.6): a socket
    that brings no key in its header is refused before it is accepted (HTTP 403).
    ``push_delay`` (sim-seconds) holds each event back on the socket, as a busy server's late
    pushes: a state sent before a command can arrive after the command's answer.
    ``interrupt=False`` is an agent server with no ``/interrupt`` route (only ``/pause``)."""

    def keys() -> set[str]:
        return {
            c.session_api_key
            for c in world.conversations.values()
            if not c.deleted and c.sandbox_status == "RUNNING"
        }

    def conversation(cid: str) -> SimConversation | None:
        conv = world.find(cid)
        if conv is None or conv.sandbox_status != "RUNNING":
            return None
        return conv

    Handler = Callable[[Request, SimConversation], Awaitable[Response]]

    def route(
        name: str, fn: Handler, unknown: tuple[int, str] | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        """``unknown``: what it answers for a conversation it does not know, when that is not
        a 404 (a 1.34 agent server's pause and interrupt say 400)."""

        async def inner(request: Request) -> Response:
            counts(name)
            if request.headers.get("x-session-api-key") not in keys():
                return _err(401, "Unauthorized")
            world.advance()
            conv = conversation(request.path_params["cid"])
            if conv is None:
                status, detail = unknown or (404, f"Conversation not found: {conv_id(request)}")
                return _err(status, detail)
            return await fn(request, conv)

        return inner

    def conv_id(request: Request) -> str:
        return str(request.path_params["cid"])

    #: how 1.34 answers a pause or an interrupt for a conversation it does not know (1.58: 404)
    bad_request = (400, "Bad Request") if world.agent_version == "1.34" else None

    def full() -> Response | None:
        """The 429 of a 1.58 agent server whose run capacity is full, else ``None``."""
        if world.agent_version == "1.34" or world.runs_refused <= 0:
            return None
        world.runs_refused -= 1
        return _err(429, "Conversation run limit reached. Retry the request later.")

    def rendered(conv: SimConversation) -> list[dict[str, Any]]:
        return [
            item
            for ev in world.visible_events(conv, lag=False)
            for item in render.v1_events(conv, ev, world.local_time(ev), world.agent_version)
        ]

    async def events_search(request: Request, conv: SimConversation) -> Response:
        q = request.query_params
        limit = int(q.get("limit", "100"))
        if not 0 < limit <= 100:
            return _err(422, "limit must be between 1 and 100")
        items = rendered(conv)
        gte = q.get("timestamp__gte")
        if gte:
            items = [e for e in items if e["timestamp"] >= gte.replace("+00:00", "")]
        items.sort(key=lambda e: e["timestamp"], reverse=q.get("sort_order") == "TIMESTAMP_DESC")
        offset = int(q.get("page_id") or 0)
        page = items[offset : offset + limit]
        nxt = str(offset + limit) if offset + limit < len(items) else None
        return JSONResponse({"items": page, "next_page_id": nxt})

    async def events_count(request: Request, conv: SimConversation) -> Response:
        return JSONResponse(len(rendered(conv)))

    async def send_message(request: Request, conv: SimConversation) -> Response:
        body = await request.json()
        text = "\n".join(
            str(p.get("text", "")) for p in body.get("content", []) if isinstance(p, dict)
        )
        refused = full() if body.get("run", True) else None
        world.send(conv, text, run=refused is None and bool(body.get("run", True)))
        # a refused run keeps the message: the client runs it later, never sends it again
        return refused or JSONResponse({"success": True})

    async def pause(request: Request, conv: SimConversation) -> Response:
        # as a real agent server: the answer waits for the step under way to end
        wait = world.step_ends_in(conv)
        if wait:
            await asyncio.sleep(wait)
        world.advance()
        world.agent_pause(conv)
        return JSONResponse({"success": True})

    async def interrupt_route(request: Request, conv: SimConversation) -> Response:
        world.agent_interrupt(conv)
        return JSONResponse({"success": True})

    async def run(request: Request, conv: SimConversation) -> Response:
        if conv.execution_status != "running" and (refused := full()) is not None:
            return refused
        if conv.execution_status == "waiting_for_confirmation":
            # a run goes on with the action that waits: an approval, as the SDK takes it
            world.respond(conv, True, "")
            return JSONResponse({"success": True})
        if world.agent_run(conv) == "running":
            return _err(409, "Conversation already running. Wait for completion or pause first.")
        return JSONResponse({"success": True})

    async def respond(request: Request, conv: SimConversation) -> Response:
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("accept"), bool):
            return _err(422, "accept: Field required")
        reason = body.get("reason")
        if body["accept"] and (refused := full()) is not None:
            return refused
        world.respond(conv, body["accept"], str(reason or "User rejected the action"))
        return JSONResponse({"success": True})

    async def policy(request: Request, conv: SimConversation) -> Response:
        body = await request.json()
        kind = body.get("policy", {}).get("kind") if isinstance(body, dict) else None
        if kind not in ("AlwaysConfirm", "NeverConfirm", "ConfirmRisky"):
            return _err(422, "policy: Input tag does not match any of the expected tags")
        conv.confirm = kind != "NeverConfirm"
        return JSONResponse({"success": True})

    async def info(request: Request, conv: SimConversation) -> Response:
        """The agent server's own record of the conversation (the fields 1.34 has, and 1.58's
        beside them)."""
        empty: dict[str, Any] = {}
        newer: dict[str, Any] = {}
        if world.agent_version != "1.34":
            newer = {
                "parent_conversation_id": None,
                "sub_conversation_ids": [],
                "runtime_info": {
                    "runtime_status": "available",
                    "can_resume": True,
                    "runtime_error": None,
                },
                "tool_module_qualnames": {"terminal": "openhands.tools.terminal.definition"},
            }
        return JSONResponse(
            {
                **newer,
                "id": str(uuid.UUID(conv.id)),
                "title": conv.agent_title,
                "execution_status": conv.execution_status or "idle",
                "agent": {"kind": "Agent", "llm": {"model": "sim/fake"}},
                "agent_state": empty,
                "activated_knowledge_skills": [],
                "invoked_skills": [],
                "available_models": [],
                "current_model_id": None,
                "supports_runtime_model_switch": False,
                "blocked_actions": empty,
                "blocked_messages": empty,
                "client_tools": [],
                "confirmation_policy": {
                    "kind": "AlwaysConfirm" if conv.confirm else "NeverConfirm"
                },
                "security_analyzer": (
                    None if world.agent_version == "1.34" else {"kind": "LLMSecurityAnalyzer"}
                ),
                "hook_config": None,
                "created_at": conv.created.isoformat(),
                "updated_at": conv.updated.isoformat(),
                "forked_from_conversation_id": None,
                "forked_from_event_id": None,
                "last_user_message_id": None,
                "leaf_event_id": None,
                "launched_agent_profile": None,
                "max_iterations": 500,
                "stuck_detection": True,
                "metrics": None,
                "stats": {"usage_to_metrics": empty},
                "persistence_dir": f"/workspace/conversations/{conv.id}",
                "secret_registry": {"secret_sources": empty},
                "tags": empty,
                "workspace": {
                    "kind": "LocalWorkspace",
                    "working_dir": project_dir(conv.repository),
                },
            }
        )

    async def patch(request: Request, conv: SimConversation) -> Response:
        body = await request.json()
        if isinstance(body, dict) and isinstance(body.get("title"), str) and body["title"]:
            conv.agent_title = body["title"].strip()
        return JSONResponse({"success": True})

    def workspace(request: Request, name: str) -> tuple[list[tuple[SimConversation, str]], str]:
        """The conversations of the sandbox this key opens whose project holds ``path``, each
        with the path inside it; or why not (401, 400)."""
        counts(name)
        if request.headers.get("x-session-api-key") not in keys():
            return [], "401"
        world.advance()
        path = request.query_params.get("path", "").rstrip("/")
        if not path.startswith("/"):
            return [], "400"
        key = request.headers.get("x-session-api-key")
        out = []
        for conv in world.conversations.values():
            root = project_dir(conv.repository)
            mine = conv.session_api_key == key and not conv.deleted
            inside = path == root or path.startswith(root + "/")
            if mine and inside and conv.sandbox_status == "RUNNING":
                out.append((conv, path[len(root) + 1 :]))
        return out, ""

    def refused(why: str) -> Response:
        return _err(401, "Unauthorized") if why == "401" else _err(400, "Path must be absolute")

    def diff_of(found: list[tuple[SimConversation, str]], there: bool) -> dict[str, Any] | None:
        """The first of these files the tree knows (``there``: that exists now)."""
        for conv, rel in found:
            diff = conv.tree.diff(rel)
            if diff is not None and (diff["modified"] is not None or not there):
                return diff
        return None

    def workspace_diff(
        request: Request, route: str, there: bool, missing: tuple[int, str]
    ) -> dict[str, Any] | Response:
        """The diff of the file a request names, else the response that refuses it."""
        found, why = workspace(request, route)
        if why:
            return refused(why)
        diff = diff_of(found, there)
        return _err(*missing) if diff is None else diff

    async def download(request: Request) -> Response:
        """``/api/file/download``: a file from the workspace of the sandbox this key opens."""
        found, _why = workspace(request, "agent.uploaded")
        for conv, rel in found:
            if rel in conv.tree.uploaded:
                return Response(conv.tree.uploaded[rel], media_type="application/octet-stream")
        diff = workspace_diff(request, "agent.download", True, (404, "File not found"))
        if isinstance(diff, Response):
            return diff
        body = str(diff["modified"]).encode("utf-8")
        return Response(body, media_type="application/octet-stream")

    async def upload(request: Request) -> Response:
        """``/api/file/upload``: a file written into the workspace of the sandbox this key
        opens (the agent server makes its folders)."""
        found, why = workspace(request, "agent.upload")
        if why:
            return refused(why)
        form = await request.form()
        sent = form.get("file")
        if sent is None or isinstance(sent, str):
            return _err(422, "Field required: file")
        data = await sent.read()
        for conv, rel in found:
            conv.tree.uploaded[rel] = data
        return JSONResponse({"success": True})

    async def home(request: Request) -> Response:
        """``/api/file/home``: the agent server user's home."""
        counts("agent.home")
        if request.headers.get("x-session-api-key") not in keys():
            return _err(401, "Unauthorized")
        return JSONResponse({"home": "/root", "favorites": [], "locations": []})

    async def git_changes(request: Request) -> Response:
        found, why = workspace(request, "agent.git_changes")
        if why:
            return refused(why)
        # a path that is not the project is not a repository: no changes
        return JSONResponse([c for conv, rel in found if not rel for c in conv.tree.changes()])

    async def git_diff(request: Request) -> Response:
        missing = (400, "Path is not in the repository or has no changes")
        diff = workspace_diff(request, "agent.git_diff", False, missing)
        if isinstance(diff, Response):
            return diff
        if diff["modified"] is None and world.agent_version != "1.34":
            diff = {**diff, "modified": ""}  # 1.58: a deleted file's text is empty
        return JSONResponse(diff)

    async def alive(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def socket(websocket: WebSocket) -> None:
        counts("agent.socket")
        cid = websocket.path_params["cid"]
        header = websocket.headers.get("x-session-api-key")
        if (header is not None and header not in keys()) or (header is None and not frame_auth):
            await websocket.close(code=AUTH_FAILED, reason="Authentication failed")
            return
        await websocket.accept()
        if header is None:
            try:
                first = json.loads(await asyncio.wait_for(websocket.receive_text(), 10))
            except (asyncio.TimeoutError, ValueError, WebSocketDisconnect):
                await websocket.close(code=AUTH_FAILED, reason="Authentication failed")
                return
            if not isinstance(first, dict) or first.get("session_api_key") not in keys():
                await websocket.close(code=AUTH_FAILED, reason="Authentication failed")
                return
        world.advance()
        conv = conversation(cid)
        if conv is None:
            await websocket.close(code=NOT_FOUND, reason="Conversation not found")
            return
        mode = websocket.query_params.get("resend_mode")
        sent = 0 if mode == "all" else len(conv.events)
        # subscribed: the current state goes out first
        await websocket.send_json(render.full_state(conv, _now_stamp(world)))
        receiver = asyncio.ensure_future(_drain(websocket))
        try:
            while not receiver.done():
                world.advance()
                if conv.deleted or conv.sandbox_status != "RUNNING":
                    await websocket.close(code=1001, reason="Conversation closed")
                    return
                # in order; with a push delay, what is held back holds back what follows
                due = world.now() - world.scaled(push_delay)
                events = []
                for ev in conv.events[sent:]:
                    if ev.moment > due:
                        break
                    events.append(ev)
                sent += len(events)
                for ev in events:
                    for item in render.v1_events(
                        conv, ev, world.local_time(ev), world.agent_version
                    ):
                        await websocket.send_json(item)
                await asyncio.sleep(PUSH_INTERVAL)
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            receiver.cancel()

    P = "/api/conversations/{cid}"
    optional = (
        [
            Route(
                f"{P}/interrupt",
                route("agent.interrupt", interrupt_route, bad_request),
                methods=["POST"],
            )
        ]
        if interrupt
        else []
    )
    return Starlette(
        routes=[
            *optional,
            Route("/alive", alive),
            Route("/health", alive),
            Route("/api/file/download", download),
            Route("/api/file/upload", upload, methods=["POST"]),
            Route("/api/file/home", home),
            Route("/api/git/changes", git_changes),
            Route("/api/git/diff", git_diff),
            Route(f"{P}/events/search", route("agent.events", events_search)),
            Route(f"{P}/events/count", route("agent.events_count", events_count)),
            Route(f"{P}/events", route("agent.send", send_message), methods=["POST"]),
            Route(f"{P}/pause", route("agent.pause", pause, bad_request), methods=["POST"]),
            Route(f"{P}/run", route("agent.run", run), methods=["POST"]),
            Route(
                f"{P}/events/respond_to_confirmation",
                route("agent.respond", respond),
                methods=["POST"],
            ),
            Route(f"{P}/confirmation_policy", route("agent.policy", policy), methods=["POST"]),
            Route(P, route("agent.conversation", info)),
            Route(P, route("agent.patch", patch), methods=["PATCH"]),
            WebSocketRoute("/sockets/events/{cid}", socket),
        ]
    )


async def _drain(websocket: WebSocket) -> None:
    """Read (and drop) what the client sends, so a close from its side is noticed."""
    try:
        while True:
            await websocket.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return


def _now_stamp(world: World) -> str:
    from datetime import datetime, timezone

    return (
        (datetime.now(timezone.utc) + world.local_offset)
        .replace(tzinfo=None)
        .isoformat(timespec="microseconds")
    )
