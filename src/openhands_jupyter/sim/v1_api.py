"""The simulator's V1 app-server routes: start tasks, conversations, events, sandboxes."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from . import render
from .config import SimConfig
from .http import dashed, err, start_body
from .records import SimConversation
from .routes import Handler
from .tree import project_dir


def v1_handlers(cfg: SimConfig) -> dict[str, Handler]:
    """The handlers by route name (see :mod:`.routes`)."""
    world = cfg.world

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
        body, error = await start_body(cfg, request)
        if error is not None or body is None:
            return error or err(422, "bad body")
        task = _create_v1(body)
        return JSONResponse(world.task_json(task, zone=True))

    async def v1_stream_start(request: Request) -> Response:
        body, error = await start_body(cfg, request)
        if error is not None or body is None:
            return error or err(422, "bad body")
        task = _create_v1(body)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"[\n"
            last = None
            first = True
            while True:
                if not first:  # the first item is the task as created, as the server sends it
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
            return err(400, f"Cannot request more than 100 start tasks at once, got {len(ids)}")
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
            return err(400, "Too many ids requested. Maximum is 99.")
        bad = [i for i in ids if len(i.replace("-", "")) != 32]
        if bad:
            return err(400, f"Invalid UUID format for ids: {bad}")
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
            return err(
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
            for e in render.v1_events(conv, ev, world.local_time(ev), world.agent_version)
        ]
        gte = q.get("timestamp__gte")
        if gte and items and cfg.timestamp_filter_fails:
            # 1.6's event store compares each stored timestamp (a string) with the parsed
            # filter: TypeError, a 500, whenever it has an event to compare
            return err(500, "Internal Server Error")
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
            return err(404, "Not Found")
        conv = _stored(request.path_params["cid"])
        if conv is None:
            return JSONResponse({"items": [], "next_page_id": None})
        return _events_response(conv, request)

    async def v1_events_old(request: Request) -> Response:
        if cfg.events_path != "old":
            return err(404, "Not Found")
        conv = _stored(request.query_params.get("conversation_id__eq", ""))
        if conv is None:
            return JSONResponse({"items": [], "next_page_id": None})
        return _events_response(conv, request)

    async def v1_send(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return err(404, f"Conversation {dashed(request.path_params['cid'])} not found")
        if conv.sandbox_status == "MISSING":
            return err(410, "Conversation sandbox is MISSING (archived).")
        if conv.sandbox_status in ("PAUSED", "STARTING"):
            return err(
                409,
                f"Sandbox is {conv.sandbox_status}. Use POST /api/v1/sandboxes/"
                f"{conv.sandbox_id}/resume to resume it first.",
            )
        if conv.sandbox_status == "ERROR":
            return err(503, "Sandbox is in ERROR state; no agent server URL.")
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
            return err(404, "Sandbox not found")
        return JSONResponse({"success": True})

    async def v1_resume(request: Request) -> Response:
        if not world.resume_sandbox(request.path_params["sid"]):
            return err(404, "Sandbox not found")
        return JSONResponse({"success": True})

    async def v1_patch(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return err(404, "Conversation not found")
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
            return err(400, "Invalid conversation ID format")
        conv = world.find(cid)
        if conv is None:
            return err(404, "Conversation not found")
        world.delete(conv)
        return JSONResponse({"success": True})

    async def v1_download(request: Request) -> Response:
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return err(404, "Conversation not found")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            meta = {
                k: v for k, v in world.conversation_json(conv).items() if k != "session_api_key"
            }
            zf.writestr("meta.json", json.dumps(meta))
            for ev in world.visible_events(conv):
                for i, item in enumerate(
                    render.v1_events(conv, ev, world.local_time(ev), world.agent_version)
                ):
                    zf.writestr(f"event_{ev.seq:05d}_{i}.json", json.dumps(item))
        return Response(buf.getvalue(), media_type="application/zip")

    def _workspace(request: Request) -> tuple[SimConversation | None, str, Response | None]:
        """The conversation whose files are asked for, and the path relative to its project;
        409 while its sandbox is not running, as the app server answers."""
        conv = world.find(request.path_params["cid"])
        if conv is None:
            return None, "", err(404, "Conversation not found")
        if conv.sandbox_status != "RUNNING":
            return None, "", err(409, "Sandbox is paused; resume it before reading git state.")
        raw = request.query_params.get("path") or request.query_params.get("file_path") or ""
        root = project_dir(conv.repository) + "/"
        return conv, raw[len(root) :] if raw.startswith(root) else raw, None

    async def v1_git_changes(request: Request) -> Response:
        conv, _, error = _workspace(request)
        if conv is None:
            return error or err(404, "Conversation not found")
        if request.query_params.get("path", "").rstrip("/") != project_dir(conv.repository):
            return JSONResponse([])  # not a git repository: no changes, as the server says
        return JSONResponse(conv.tree.changes())

    async def v1_git_diff(request: Request) -> Response:
        conv, path, error = _workspace(request)
        if conv is None:
            return error or err(404, "Conversation not found")
        found = conv.tree.diff(path)
        if found is None:
            return err(502, "Agent server error: 400")
        return JSONResponse(found)

    async def v1_file(request: Request) -> Response:
        conv, path, error = _workspace(request)
        if conv is None:
            return error or err(404, "Conversation not found")
        found = conv.tree.diff(path)
        return JSONResponse((found or {}).get("modified") or "")

    async def v1_me(request: Request) -> Response:
        return JSONResponse({"id": "sim-user", "email": "sim@example.invalid"})

    return {
        "v1.start": v1_start,
        "v1.stream_start": v1_stream_start,
        "v1.start_tasks": v1_start_tasks,
        "v1.start_tasks_search": v1_start_tasks_search,
        "v1.conversations": v1_conversations,
        "v1.search": v1_search,
        "v1.count": v1_count,
        "v1.events": v1_events,
        "v1.events_old": v1_events_old,
        "v1.send_message": v1_send,
        "v1.pause": v1_pause,
        "v1.resume": v1_resume,
        "v1.patch": v1_patch,
        "v1.sandboxes": v1_sandboxes,
        "v1.delete": v1_delete,
        "v1.download": v1_download,
        "v1.me": v1_me,
        "v1.git_changes": v1_git_changes,
        "v1.git_diff": v1_git_diff,
        "v1.file": v1_file,
    }
