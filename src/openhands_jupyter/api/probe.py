"""Choosing the API generation: as configured, or probed once per server (Cloud is V1)."""

from __future__ import annotations

from urllib.parse import urlsplit

from .agent import AgentClient
from .backend import Backend
from .errors import (
    AuthenticationError,
    InvalidResponseError,
    NotFoundError,
    OpenHandsError,
    UnsupportedError,
    absent_route,
)
from .transport import Transport
from .v0 import V0Backend
from .v1 import V1Backend

CLOUD_HOSTS = ("all-hands.dev",)


def is_cloud(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    return any(host == h or host.endswith("." + h) for h in CLOUD_HOSTS)


def backend_for(version: str, transport: Transport, agent: AgentClient | None = None) -> Backend:
    return V0Backend(transport, agent) if version == "v0" else V1Backend(transport, agent)


async def probe_version(transport: Transport) -> str:
    """The generation this server's own web UI uses for new conversations.

    V1 where the server has it, unless its settings say ``v1_enabled: false`` (what the web
    UI of a 1.x server reads, ``GET /api/settings``, before it starts a conversation); V0
    where only the legacy API answers (a server run with V1 switched off)."""
    if is_cloud(transport.base_url):
        return "v1"
    try:
        await transport.request("GET", "/api/v1/app-conversations/count", retries=1)
    except AuthenticationError:
        raise
    except (NotFoundError, InvalidResponseError, UnsupportedError, OpenHandsError) as exc:
        if not (_absent(exc) or isinstance(exc, InvalidResponseError)):
            raise
    else:
        return "v0" if await _v1_switched_off(transport) else "v1"
    try:
        await transport.request("GET", "/api/conversations", params={"limit": 1}, retries=1)
        return "v0"
    except (NotFoundError, InvalidResponseError, UnsupportedError) as exc:
        if isinstance(exc, NotFoundError) and not _absent(exc):
            raise
        raise InvalidResponseError(
            f"{transport.base_url} answers neither the V1 nor the V0 OpenHands API: "
            "is the base URL right?"
        ) from None


def _absent(exc: OpenHandsError) -> bool:
    return absent_route(exc) or isinstance(exc, NotFoundError)


async def _v1_switched_off(transport: Transport) -> bool:
    """Whether the server's settings tell its web UI to start V0 conversations."""
    try:
        settings = await transport.request("GET", "/api/settings", retries=1)
    except OpenHandsError:
        return False  # no legacy settings (a V1-only server), or none stored yet
    return isinstance(settings, dict) and settings.get("v1_enabled") is False
