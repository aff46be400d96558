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
    """Ask the server which generation it speaks: V1's count, else V0's list."""
    if is_cloud(transport.base_url):
        return "v1"
    try:
        await transport.request("GET", "/api/v1/app-conversations/count", retries=1)
        return "v1"
    except AuthenticationError:
        raise
    except (NotFoundError, InvalidResponseError, UnsupportedError):
        pass
    try:
        await transport.request("GET", "/api/conversations", params={"limit": 1}, retries=1)
        return "v0"
    except (NotFoundError, InvalidResponseError, UnsupportedError):
        raise InvalidResponseError(
            f"{transport.base_url} answers neither the V1 nor the V0 OpenHands API: "
            "is the base URL right?"
        ) from None
    except OpenHandsError:
        raise
