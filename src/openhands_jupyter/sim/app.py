"""The simulator's app server as a Starlette ASGI app: the V1 and V0 route tables, each behind a
switch for the API versions it serves, and the web UI's answer for any other path."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .config import SimConfig
from .faults import Gate
from .http import err
from .routes import V0_ROUTES, V1_ROUTES, Handler
from .v0_api import v0_handlers
from .v1_api import v1_handlers

__all__ = ["SimConfig", "build_app"]


def build_app(cfg: SimConfig) -> Gate:
    world = cfg.world

    async def html(request: Request) -> Response:
        """A path no route serves: the web UI's page for a GET when the UI is mounted, 405 for
        other methods; FastAPI's bare 404 without the UI."""
        if not cfg.frontend:
            return err(404, "Not Found")
        if request.method != "GET":
            return JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
        return HTMLResponse(
            "<!doctype html><html><head><title>OpenHands</title></head>"
            "<body><div id='root'></div></body></html>"
        )

    def guard(versions: tuple[str, ...], fn: Handler) -> Handler:
        """Serve ``fn`` when the simulator speaks one of these API versions, else answer as a
        server without the route does."""

        async def inner(request: Request) -> Response:
            if cfg.api not in versions:
                return await html(request)
            world.advance()
            return await fn(request)

        return inner

    async def alive(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    handlers = {**v1_handlers(cfg), **v0_handlers(cfg)}
    routes = [Route("/alive", alive), Route("/health", alive)]
    for table, versions in ((V1_ROUTES, ("v1", "both")), (V0_ROUTES, ("v0", "both"))):
        routes.extend(
            Route(spec.path, guard(versions, handlers[spec.name]), methods=[spec.method])
            for spec in table
        )
    routes.append(Route("/{path:path}", html, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]))
    return Gate(Starlette(routes=routes), cfg)
