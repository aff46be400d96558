"""The simulator's routes: one table per API version. The app serves them and the gate counts
(and can withhold) requests by the same names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path

Handler = Callable[[Request], Awaitable[Response]]


class RouteSpec(NamedTuple):
    name: str
    method: str
    path: str


P = "/api/v1/app-conversations"
V1_ROUTES = (
    RouteSpec("v1.stream_start", "POST", f"{P}/stream-start"),
    RouteSpec("v1.start_tasks_search", "GET", f"{P}/start-tasks/search"),
    RouteSpec("v1.start_tasks", "GET", f"{P}/start-tasks"),
    RouteSpec("v1.search", "GET", f"{P}/search"),
    RouteSpec("v1.count", "GET", f"{P}/count"),
    RouteSpec("v1.send_message", "POST", f"{P}/{{cid}}/send-message"),
    RouteSpec("v1.download", "GET", f"{P}/{{cid}}/download"),
    RouteSpec("v1.git_changes", "GET", f"{P}/{{cid}}/git/changes"),
    RouteSpec("v1.git_diff", "GET", f"{P}/{{cid}}/git/diff"),
    RouteSpec("v1.file", "GET", f"{P}/{{cid}}/file"),
    RouteSpec("v1.delete", "DELETE", f"{P}/{{cid}}"),
    RouteSpec("v1.patch", "PATCH", f"{P}/{{cid}}"),
    RouteSpec("v1.start", "POST", P),
    RouteSpec("v1.conversations", "GET", P),
    RouteSpec("v1.events", "GET", "/api/v1/conversation/{cid}/events/search"),
    RouteSpec("v1.events_old", "GET", "/api/v1/events/search"),
    RouteSpec("v1.pause", "POST", "/api/v1/sandboxes/{sid}/pause"),
    RouteSpec("v1.resume", "POST", "/api/v1/sandboxes/{sid}/resume"),
    RouteSpec("v1.sandboxes", "GET", "/api/v1/sandboxes"),
    RouteSpec("v1.me", "GET", "/api/v1/users/me"),
)
V0_ROUTES = (
    RouteSpec("v0.settings", "GET", "/api/settings"),
    RouteSpec("v0.create", "POST", "/api/conversations"),
    RouteSpec("v0.conversations", "GET", "/api/conversations"),
    RouteSpec("v0.events", "GET", "/api/conversations/{cid}/events"),
    RouteSpec("v0.message", "POST", "/api/conversations/{cid}/message"),
    RouteSpec("v0.stop", "POST", "/api/conversations/{cid}/stop"),
    RouteSpec("v0.start", "POST", "/api/conversations/{cid}/start"),
    RouteSpec("v0.delete", "DELETE", "/api/conversations/{cid}"),
    RouteSpec("v0.conversation", "GET", "/api/conversations/{cid}"),
)
_COMPILED = [(compile_path(spec.path.rstrip("/"))[0], spec) for spec in (*V1_ROUTES, *V0_ROUTES)]


def route_name(method: str, path: str) -> str:
    """The name of the route a request is for, or ``other``."""
    method = "GET" if method == "HEAD" else method
    path = path.rstrip("/") or "/"
    for pattern, spec in _COMPILED:
        if spec.method == method and pattern.match(path):
            return spec.name
    return "other"
