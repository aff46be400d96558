"""Small pieces the simulator's V1 and V0 routes share: error bodies, ids, start bodies."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .config import SimConfig


def err(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def dashed(cid: str) -> str:
    try:
        return str(uuid.UUID(cid))
    except ValueError:
        return cid


async def start_body(
    cfg: SimConfig, request: Request
) -> tuple[dict[str, Any] | None, Response | None]:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return None, err(
            422, [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]
        )
    if not isinstance(body, dict):
        return None, err(
            422, [{"loc": ["body"], "msg": "Input should be an object", "type": "dict_type"}]
        )
    if cfg.max_concurrent is not None and cfg.world.active_count() >= cfg.max_concurrent:
        n = cfg.max_concurrent
        return None, JSONResponse(
            {
                "detail": {
                    "error": "CONCURRENCY_LIMIT_REACHED",
                    "message": f"You have reached your limit of {n} concurrent conversations. "
                    "Please close an existing conversation to start a new one.",
                    "limit": n,
                    "current": cfg.world.active_count(),
                }
            },
            status_code=429,
        )
    return body, None
