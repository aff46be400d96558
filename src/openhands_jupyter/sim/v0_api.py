"""The simulator's V0 routes, as old self-hosted servers have them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import render
from .config import SimConfig
from .http import err, start_body
from .routes import Handler


def v0_handlers(cfg: SimConfig) -> dict[str, Handler]:
    """The handlers by route name (see :mod:`.routes`)."""
    world = cfg.world

    async def v0_create(request: Request) -> Response:
        body, error = await start_body(cfg, request)
        if error is not None or body is None:
            return error or err(422, "bad body")
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
            return err(
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
            return err(404, "Conversation not found")
        q = request.query_params
        limit = int(q.get("limit", "20"))
        if not 0 <= limit <= 100:
            return err(400, "Invalid limit")
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
            return err(404, "Conversation not found")
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

    return {
        "v0.create": v0_create,
        "v0.conversation": v0_get,
        "v0.conversations": v0_list,
        "v0.events": v0_events,
        "v0.message": v0_message,
        "v0.stop": v0_stop,
        "v0.start": v0_start,
        "v0.delete": v0_delete,
        "v0.settings": v0_settings,
    }
