"""The simulator's HTTP routes (V1 and V0) as a Starlette ASGI app."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import render
from .faults import Faults, Gate, Stats
from .world import SimConversation, World


@dataclass
class SimConfig:
    world: World
    api: str = "v1"
    api_key: str | None = None
    session_api_key: str | None = None
    rate_limit: bool = False
    scale_rate_limit: bool = True
    per_second: int = 10
    per_minute: int = 100
    max_concurrent: int | None = None
    events_path: str = "new"
    frontend: bool = True
    """Serve the web UI: unknown GETs get its HTML page (200), other methods 405."""
    v1_enabled: bool = True
    """What the legacy settings (``GET /api/settings``) say to a 1.x web UI."""
    absent: frozenset[str] = frozenset()
    """Routes (by their counting name, e.g. ``v1.send_message``) this server does not have."""
    faults: Faults = field(default_factory=Faults)
    stats: Stats = field(default_factory=Stats)


def _err(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _dashed(cid: str) -> str:
    try:
        return str(uuid.UUID(cid))
    except ValueError:
        return cid


def build_app(cfg: SimConfig) -> Gate:
    world = cfg.world

    def v1_enabled() -> bool:
        return cfg.api in ("v1", "both")

    def v0_enabled() -> bool:
        return cfg.api in ("v0", "both")

    async def html(request: Request) -> Response:
        """A path no route serves: the web UI's page for a GET when the UI is mounted, 405 for
        other methods; FastAPI's bare 404 without the UI."""
        if not cfg.frontend:
            return _err(404, "Not Found")
        if request.method != "GET":
            return JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
        return HTMLResponse(
            "<!doctype html><html><head><title>OpenHands</title></head>"
            "<body><div id='root'></div></body></html>"
        )

    def guard_v1(fn: Any) -> Any:
        async def inner(request: Request) -> Response:
            if not v1_enabled():
                return await html(request)
            world.advance()
            result: Response = await fn(request)
            return result

        return inner

    def guard_v0(fn: Any) -> Any:
        async def inner(request: Request) -> Response:
            if not v0_enabled():
                return await html(request)
            world.advance()
            result: Response = await fn(request)
            return result

        return inner

    async def _start_body(request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return None, _err(
                422, [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]
            )
        if not isinstance(body, dict):
            return None, _err(
                422, [{"loc": ["body"], "msg": "Input should be an object", "type": "dict_type"}]
            )
        if cfg.max_concurrent is not None and world.active_count() >= cfg.max_concurrent:
            n = cfg.max_concurrent
            return None, JSONResponse(
                {
                    "detail": {
                        "error": "CONCURRENCY_LIMIT_REACHED",
                        "message": f"You have reached your limit of {n} concurrent conversations. "
                        "Please close an existing conversation to start a new one.",
                        "limit": n,
                        "current": world.active_count(),
                    }
                },
                status_code=429,
            )
        return body, None

    def _create_v1(body: dict[str, Any]) -> Any:
        message = body.get("initial_message") or {}
        parts = message.get("content") or []
        task = "\n".join(p.get("text", "") for p in parts if isinstance(p, dict))
        cfg.stats.starts_seen[task] += 1
        echo = {**body, "initial_message": {**message, "run": False}}
        return world.create(
            task,
            body.get("selected_repository"),
            body.get("selected_branch"),
            body.get("title"),
            echo,
        )

    async def v1_start(request: Request) -> Response:
        body, error = await _start_body(request)
        if error is not None or body is None:
            return error or _err(422, "bad body")
        task = _create_v1(body)
        return JSONResponse(world.task_json(task, zone=True))

    async def v1_stream_start(request: Request) -> Response:
        body, error = await _start_body(request)
        if error is not None or body is None:
            return error or _err(422, "bad body")
        task = _create_v1(body)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"[\n"
            last = None
            first = True
            while True:
                world.advance()
                snap = world.task_json(task)
                if snap["status"] != last:
                    yield (b"" if first else b",\n") + json.dumps(
                        snap, separators=(",", ":")
                    ).encode()
                    first = False
                    last = snap["status"]
                if snap["status"] in ("READY", "ERROR"):
                    break
                await asyncio.sleep(min(0.25, world.scaled(0.5)))
            yield b"]"

        return StreamingResponse(chunks(), media_type="application/json")

    async def v1_start_tasks(request: Request) -> Response:
        ids = request.query_params.getlist("ids")
        if len(ids) > 100:
            return _err(400, f"Cannot request more than 100 start tasks at once, got {len(ids)}")
        out = []
        for raw in ids:
            key = raw.replace("-", "").lower()
            task = world.tasks.get(key)
            out.append(world.task_json(task) if task else None)
        return JSONResponse(out)

    async def v1_start_tasks_search(request: Request) -> Response:
        limit = int(request.query_params.get("limit", "100"))
        offset = int(request.query_params.get("page_id") or 0)
        items = sorted(world.tasks.values(), key=lambda t: t.created, reverse=True)
        page = items[offset : offset + limit]
        nxt = str(offset + limit) if offset + limit < len(items) else None
        return JSONResponse({"items": [world.task_json(t) for t in page], "next_page_id": nxt})

    async def v1_conversations(request: Request) -> Response:
        ids = request.query_params.getlist("ids")
        if len(ids) >= 100:
            return _err(400, "Too many ids requested. Maximum is 99.")
        bad = [i for i in ids if len(i.replace("-", "")) != 32]
        if bad:
            return _err(400, f"Invalid UUID format for ids: {bad}")
        out = []
        for raw in ids:
            conv = world.find(raw)
            out.append(world.conversation_json(conv) if conv and conv.visible_v1 else None)
        return JSONResponse(out)

    def _visible() -> list[SimConversation]:
        return [
            world.conversations[i]
            for i in reversed(world.order)
            if not world.conversations[i].deleted and world.conversations[i].visible_v1
        ]

    async def v1_search(request: Request) -> Response:
        limit = int(request.query_params.get("limit", "100"))
        if not 1 <= limit <= 100:
            return _err(
                422, [{"loc": ["query", "limit"], "msg": "Input should be between 1 and 100"}]
            )
        offset = int(request.query_params.get("page_id") or 0)
        items = _visible()
        page = items[offset : offset + limit]
        nxt = str(offset + limit) if offset + limit < len(items) else None
        return JSONResponse(
            {"items": [world.conversation_json(c) for c in page], "next_page_id": nxt}
        )

    async def v1_count(request: Request) -> Response:
        return JSONResponse(len(_visible()))

    def _events_response(conv: SimConversation, request: Request) -> Response:
        q = request.query_params
        limit = int(q.get("limit", "100"))
        items = [
            e
            for ev in world.visible_events(conv)
            for e in render.v1_events(conv, ev, world.local_time(ev))
        ]
        gte = q.get("timestamp__gte")
        if gte:
            items = [e for e in items if e["timestamp"] >= gte]
        if q.get("kind__eq"):
            items = [e for e in items if e["kind"] == q.get("kind__eq")]
        if q.get("sort_order") == "TIMESTAMP_DESC":
            items.reverse()
        offset = int(q.get("page_id") or 0)
        page = items[offset : offset + limit]
        nxt = str(offset + limit) if offset + limit < len(items) else None
        return JSONResponse({"items": page, "next_page_id": nxt})

    def _stored(cid: str) -> SimConversation | None:
        """The event store keeps a conversation's events after it is deleted."""
        try:
            return world.conversations.get(uuid.UUID(cid).hex)
        except ValueError:
            return None

    async def v1_events(request: Request) -> Response:
        if cfg.events_path == "old":
            return _err(404, "Not Found")
        conv = _stored(request.path_params["cid"])
        if conv is None:
            return JSONResponse({"items": [], "next_page_id": None})
        return _events_response(conv, request)

    async def v1_events_old(request: Request) -> Response:
        if cfg.events_path != "old":
            return _err(404, "Not Found")
        conv = _stored(request.query_params.get("conversation_id__eq", ""))
        if conv is None:
            return JSONResponse({"items": [], "next_page_id": None})
        return _events_response(conv, request)

    async def v1_send(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return _err(404, f"Conversation {_dashed(request.path_params['cid'])} not found")
        if conv.sandbox_status == "MISSING":
            return _err(410, "Conversation sandbox is MISSING (archived).")
        if conv.sandbox_status in ("PAUSED", "STARTING"):
            return _err(
                409,
                f"Sandbox is {conv.sandbox_status}. Use POST /api/v1/sandboxes/"
                f"{conv.sandbox_id}/resume to resume it first.",
            )
        if conv.sandbox_status == "ERROR":
            return _err(503, "Sandbox is in ERROR state; no agent server URL.")
        body = await request.json()
        text = "\n".join(p.get("text", "") for p in body.get("content", []) if isinstance(p, dict))
        world.send(conv, text)
        return JSONResponse(
            {"success": True, "sandbox_status": conv.sandbox_status, "message": None}
        )

    def _by_sandbox(sid: str) -> SimConversation | None:
        return next(
            (c for c in world.conversations.values() if c.sandbox_id == sid and not c.deleted), None
        )

    async def v1_pause(request: Request) -> Response:
        if not world.pause_sandbox(request.path_params["sid"]):
            return _err(404, "Sandbox not found")
        return JSONResponse({"success": True})

    async def v1_resume(request: Request) -> Response:
        if not world.resume_sandbox(request.path_params["sid"]):
            return _err(404, "Sandbox not found")
        return JSONResponse({"success": True})

    async def v1_patch(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return _err(404, "Conversation not found")
        body = await request.json()
        if isinstance(body, dict) and isinstance(body.get("title"), str):
            conv.title = body["title"]
        return JSONResponse(world.conversation_json(conv))

    async def v1_sandboxes(request: Request) -> Response:
        out = []
        for sid in request.query_params.getlist("id"):
            conv = _by_sandbox(sid)
            out.append(
                None
                if conv is None
                else {
                    "id": sid,
                    "created_by_user_id": None,
                    "sandbox_spec_id": "sim",
                    "status": conv.sandbox_status,
                    "session_api_key": conv.session_api_key,
                    "exposed_urls": [{"name": "AGENT_SERVER", "url": world.agent_url, "port": 0}]
                    if conv.sandbox_status == "RUNNING"
                    else None,
                    "created_at": conv.created.isoformat(),
                }
            )
        return JSONResponse(out)

    async def v1_delete(request: Request) -> Response:
        cid = request.path_params["cid"]
        if len(cid.replace("-", "")) != 32:
            return _err(400, "Invalid conversation ID format")
        conv = world.find(cid)
        if conv is None:
            return _err(404, "Conversation not found")
        world.delete(conv)
        return JSONResponse({"success": True})

    async def v1_download(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return _err(404, "Conversation not found")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            meta = {
                k: v for k, v in world.conversation_json(conv).items() if k != "session_api_key"
            }
            zf.writestr("meta.json", json.dumps(meta))
            for ev in world.visible_events(conv):
                for i, item in enumerate(render.v1_events(conv, ev, world.local_time(ev))):
                    zf.writestr(f"event_{ev.seq:05d}_{i}.json", json.dumps(item))
        return Response(buf.getvalue(), media_type="application/zip")

    async def v1_me(request: Request) -> Response:
        return JSONResponse({"id": "sim-user", "email": "sim@example.invalid"})

    # -- V0 -----------------------------------------------------------------------------------
    async def v0_create(request: Request) -> Response:
        body, error = await _start_body(request)
        if error is not None or body is None:
            return error or _err(422, "bad body")
        allowed = {
            "initial_user_msg",
            "repository",
            "git_provider",
            "selected_branch",
            "conversation_instructions",
            "image_urls",
            "replay_json",
        }
        unknown = set(body) - allowed
        if unknown:
            return _err(
                422,
                [
                    {
                        "loc": ["body", k],
                        "msg": "Extra inputs are not permitted",
                        "type": "extra_forbidden",
                    }
                    for k in sorted(unknown)
                ],
            )
        task_text = str(body.get("initial_user_msg") or "")
        cfg.stats.starts_seen[task_text] += 1
        task = world.create(
            task_text, body.get("repository"), body.get("selected_branch"), None, body
        )
        return JSONResponse(
            {
                "status": "ok",
                "conversation_id": task.conversation.id,
                "message": None,
                "conversation_status": "STARTING",
            }
        )

    async def v0_get(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        return JSONResponse(None if conv is None else render.v0_conversation(conv))

    async def v0_list(request: Request) -> Response:
        limit = int(request.query_params.get("limit", "20"))
        offset = int(request.query_params.get("page_id") or 0)
        items = [
            world.conversations[i]
            for i in reversed(world.order)
            if not world.conversations[i].deleted
        ]
        page = items[offset : offset + limit]
        nxt = str(offset + limit) if offset + limit < len(items) else None
        return JSONResponse(
            {"results": [render.v0_conversation(c) for c in page], "next_page_id": nxt}
        )

    async def v0_events(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return _err(404, "Conversation not found")
        q = request.query_params
        limit = int(q.get("limit", "20"))
        if not 0 <= limit <= 100:
            return _err(400, "Invalid limit")
        start = int(q.get("start_id", "0"))
        rendered = (
            render.v0_event(e, world.local_time(e)) for e in world.visible_events(conv, lag=False)
        )
        end = int(q["end_id"]) if q.get("end_id") else None
        items = [
            e
            for e in rendered
            if e is not None and e["id"] >= start and (end is None or e["id"] <= end)
        ]
        if q.get("reverse", "false").lower() == "true":
            items.reverse()  # newest first, from end_id down to start_id
        return JSONResponse({"events": items[:limit], "has_more": len(items) > limit})

    async def v0_message(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return _err(404, "Conversation not found")
        if conv.sandbox_status != "RUNNING":
            return JSONResponse(
                {"success": False, "message": "Conversation is not running"}, status_code=409
            )
        body = await request.json()
        world.send(conv, str(body.get("message") or ""))
        return JSONResponse({"success": True})

    async def v0_stop(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return JSONResponse(
                {"status": "error", "conversation_id": request.path_params["cid"]}, status_code=404
            )
        was = conv.sandbox_status == "RUNNING"
        world.pause(conv)
        return JSONResponse(
            {
                "status": "ok",
                "conversation_id": conv.id,
                "message": "Conversation stopped successfully"
                if was
                else "Conversation was not running",
                "conversation_status": "STOPPED",
            }
        )

    async def v0_start(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return JSONResponse(
                {"status": "error", "conversation_id": request.path_params["cid"]}, status_code=404
            )
        world.resume(conv)
        return JSONResponse(
            {
                "status": "ok",
                "conversation_id": conv.id,
                "message": None,
                "conversation_status": "STARTING",
            }
        )

    async def v0_delete(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return JSONResponse(False)
        world.delete(conv)
        return JSONResponse(True)

    async def v0_settings(request: Request) -> Response:
        """The legacy settings a 1.x web UI reads: ``v1_enabled`` decides which API it uses."""
        return JSONResponse(
            {"llm_model": "sim/fake", "llm_api_key_set": True, "v1_enabled": cfg.v1_enabled}
        )

    async def alive(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    v1, v0 = guard_v1, guard_v0
    P = "/api/v1/app-conversations"
    routes = [
        Route("/alive", alive),
        Route("/health", alive),
        Route(f"{P}/stream-start", v1(v1_stream_start), methods=["POST"]),
        Route(f"{P}/start-tasks/search", v1(v1_start_tasks_search)),
        Route(f"{P}/start-tasks", v1(v1_start_tasks)),
        Route(f"{P}/search", v1(v1_search)),
        Route(f"{P}/count", v1(v1_count)),
        Route(f"{P}/{{cid}}/send-message", v1(v1_send), methods=["POST"]),
        Route(f"{P}/{{cid}}/download", v1(v1_download)),
        Route(f"{P}/{{cid}}", v1(v1_delete), methods=["DELETE"]),
        Route(f"{P}/{{cid}}", v1(v1_patch), methods=["PATCH"]),
        Route(P, v1(v1_start), methods=["POST"]),
        Route(P, v1(v1_conversations)),
        Route("/api/v1/conversation/{cid}/events/search", v1(v1_events)),
        Route("/api/v1/events/search", v1(v1_events_old)),
        Route("/api/v1/sandboxes/{sid}/pause", v1(v1_pause), methods=["POST"]),
        Route("/api/v1/sandboxes/{sid}/resume", v1(v1_resume), methods=["POST"]),
        Route("/api/v1/sandboxes", v1(v1_sandboxes)),
        Route("/api/v1/users/me", v1(v1_me)),
        Route("/api/settings", v0(v0_settings)),
        Route("/api/conversations", v0(v0_create), methods=["POST"]),
        Route("/api/conversations", v0(v0_list)),
        Route("/api/conversations/{cid}/events", v0(v0_events)),
        Route("/api/conversations/{cid}/message", v0(v0_message), methods=["POST"]),
        Route("/api/conversations/{cid}/stop", v0(v0_stop), methods=["POST"]),
        Route("/api/conversations/{cid}/start", v0(v0_start), methods=["POST"]),
        Route("/api/conversations/{cid}", v0(v0_delete), methods=["DELETE"]),
        Route("/api/conversations/{cid}", v0(v0_get)),
        Route("/{path:path}", html, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
    ]
    return Gate(Starlette(routes=routes), cfg)
