"""The agent server behind a V1 conversation: its REST routes, reached with the conversation's
own ``session_api_key`` (a secret, sent only in the ``X-Session-API-Key`` header)."""

from __future__ import annotations

import posixpath
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from .errors import (
    AuthenticationError,
    InvalidResponseError,
    NotFoundError,
    OpenHandsError,
    RateLimitError,
    RunCapacityError,
    UnsupportedError,
    absent_route,
)
from .events import events_of, oldest_first
from .models import Event
from .secrets import Secret, SecretHeaders
from .transport import Transport
from .validate import is_loopback

EVENT_PAGE = 100


#: what a key sent in a header may hold: visible ASCII, nothing a header cannot carry
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def agent_base_url(
    conversation_url: str | None, app_base_url: str, *, allow_insecure: bool = False
) -> str | None:
    """The agent server's base URL: ``conversation_url`` without ``/api/conversations/{id}``
    (``None`` when it is not one this client sends a key to: see :func:`agent_problem`)."""
    base, _why = locate_agent(conversation_url, app_base_url, allow_insecure=allow_insecure)
    return base


def locate_agent(
    conversation_url: str | None, app_base_url: str, *, allow_insecure: bool = False
) -> tuple[str | None, str | None]:
    """The agent server's base URL, or why the conversation's key will not be sent there.

    A relative ``conversation_url`` lives on the app server's host (as the web UI reads it).
    Only http and https are taken (the socket's ws or wss follows from it), and against an
    https app server only https, unless the agent server is on this machine or insecure
    transport was allowed: a session key never travels in the clear to another host."""
    if not conversation_url:
        return None, "the server gave no agent-server address"
    url = conversation_url.strip()
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        url = urljoin(app_base_url.rstrip("/") + "/", url.lstrip("/"))
        scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        return None, f"its agent-server address is not http or https ({scheme or 'none'})"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        return None, "its agent-server address has no host"
    app_secure = urlsplit(app_base_url).scheme.lower() == "https"
    if scheme == "http" and not is_loopback(host) and (app_secure or not allow_insecure):
        return None, (
            f"its agent server {host} is plain http: the session key would travel "
            "unencrypted (allow_insecure=True allows it)"
        )
    path = parts.path
    marker = path.rfind("/api/conversations/")
    if marker < 0:
        return None, "its agent-server address is not a conversation's"
    base = urlunsplit((scheme, parts.netloc, path[:marker], "", "")).rstrip("/")
    return base, None


def key_problem(key: Secret | None) -> str | None:
    """Why a session key from the server cannot be sent (never what it holds)."""
    if key is None or _HEADER_SAFE.fullmatch(key.get()):
        return None
    return "the server handed out a session key with characters a header cannot carry"


@dataclass(frozen=True)
class AgentEndpoint:
    """Where one conversation's agent server is, and the key it wants (masked in repr)."""

    base_url: str
    conversation_id: str
    key: Secret | None = field(default=None, repr=False)

    @property
    def dashed_id(self) -> str:
        return str(uuid.UUID(self.conversation_id))

    @property
    def socket_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = f"{parts.path.rstrip('/')}/sockets/events/{self.dashed_id}"
        return urlunsplit((scheme, parts.netloc, path, "", ""))

    def headers(self) -> dict[str, str]:
        return SecretHeaders({"X-Session-API-Key": self.key.get()} if self.key is not None else {})


def _agent_error(exc: OpenHandsError, endpoint: AgentEndpoint) -> OpenHandsError:
    """The agent server's refusals, said of this conversation."""
    if isinstance(exc, RateLimitError) and not isinstance(exc, RunCapacityError):
        return RunCapacityError(
            "The agent server has no room to run another conversation now (its run capacity "
            "is full); what was sent is kept, and the run starts once there is room.",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, AuthenticationError):
        return AuthenticationError(
            "The agent server refused this conversation's session key (it may have been "
            "replaced: the next status poll brings the new one)."
        )
    if isinstance(exc, NotFoundError):
        return NotFoundError(
            f"The agent server does not know conversation {endpoint.conversation_id}."
        )
    return exc


class AgentClient:
    """REST calls to agent servers. One transport per agent-server URL, outside the app
    server's request budget (these requests never reach the app server)."""

    def __init__(self, transport_options: dict[str, Any] | None = None) -> None:
        self._options = transport_options or {}
        self._transports: dict[str, Transport] = {}
        self._lock = threading.Lock()

    def transport(self, base_url: str) -> Transport:
        with self._lock:
            found = self._transports.get(base_url)
            if found is None:
                found = Transport(base_url, **self._options)
                self._transports[base_url] = found
            return found

    async def aclose(self) -> None:
        with self._lock:
            transports = list(self._transports.values())
        for transport in transports:
            await transport.aclose()

    async def call(
        self,
        endpoint: AgentEndpoint,
        method: str,
        path: str,
        *,
        what: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """One request about this conversation. With ``what``, an answer that says the route
        does not exist on this agent server becomes ``UnsupportedError``."""
        url = f"/api/conversations/{endpoint.dashed_id}{path}"
        try:
            return await self.transport(endpoint.base_url).request(
                method,
                url,
                headers=endpoint.headers(),
                retries=kwargs.pop("retries", 0),
                gated=False,
                **kwargs,
            )
        except OpenHandsError as exc:
            if what and absent_route(exc):
                raise UnsupportedError(
                    f"This agent server does not offer {what}.", status_code=exc.status_code
                ) from None
            raise _agent_error(exc, endpoint) from None

    async def events_page(
        self, endpoint: AgentEndpoint, params: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], str | None]:
        data = await self.call(endpoint, "GET", "/events/search", params=params)
        if not isinstance(data, dict) or not isinstance(data.get("items", []), list):
            raise InvalidResponseError("The agent server's events answer is not a page.")
        items = [i for i in data.get("items", []) if isinstance(i, dict)]
        page = data.get("next_page_id")
        return items, page if isinstance(page, str) and page else None

    async def _raw_since(
        self,
        endpoint: AgentEndpoint,
        since: str | None,
        max_pages: int,
        on_cut: Callable[[str], None] | None = None,
    ) -> list[dict[str, Any]]:
        if since is None:
            items, older = await self.events_page(
                endpoint, {"limit": EVENT_PAGE, "sort_order": "TIMESTAMP_DESC"}
            )
            return oldest_first(items, older, on_cut)
        params: dict[str, Any] = {
            "limit": EVENT_PAGE,
            "sort_order": "TIMESTAMP",
            "timestamp__gte": since,
        }
        out: list[dict[str, Any]] = []
        for _ in range(max_pages):
            items, page = await self.events_page(endpoint, params)
            out.extend(items)
            if not page:
                return out
            params = {**params, "page_id": page}
        # far behind: what matters now is the newest page
        return out + await self._raw_since(endpoint, None, max_pages)

    async def events_since(
        self,
        endpoint: AgentEndpoint,
        since: str | None,
        max_pages: int = 20,
        on_drop: Callable[[str], None] | None = None,
        on_cut: Callable[[str], None] | None = None,
    ) -> list[Event]:
        """This conversation's events with ``timestamp >= since`` (the server's own clock),
        oldest first; the newest page only when ``since`` is ``None``, and then ``on_cut`` is
        given the oldest timestamp read if older events were left out. ``on_drop`` is told why
        each item that is not one of its events was left out."""
        raw = await self._raw_since(endpoint, since, max_pages, on_cut)
        return events_of(raw, endpoint.conversation_id, on_drop)

    async def all_events(
        self, endpoint: AgentEndpoint, on_drop: Callable[[str], None] | None = None
    ) -> list[Event]:
        """Every event of this conversation, oldest first, page by page to the end."""
        params: dict[str, Any] = {"limit": EVENT_PAGE, "sort_order": "TIMESTAMP"}
        out: list[dict[str, Any]] = []
        while True:
            items, page = await self.events_page(endpoint, params)
            out.extend(items)
            if not page:
                break
            params = {**params, "page_id": page}
        return events_of(out, endpoint.conversation_id, on_drop)

    async def execution_status(self, endpoint: AgentEndpoint) -> str | None:
        """The agent's own ``execution_status`` now."""
        data = await self.call(endpoint, "GET", "")
        value = data.get("execution_status") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    async def send_message(self, endpoint: AgentEndpoint, text: str) -> None:
        body = {"role": "user", "content": [{"type": "text", "text": text}], "run": True}
        await self.call(endpoint, "POST", "/events", json_body=body, idempotent=False)

    async def git(self, endpoint: AgentEndpoint, what: str, path: str) -> Any:
        """``/api/git/changes`` or ``/api/git/diff`` of the agent's workspace."""
        try:
            return await self.transport(endpoint.base_url).request(
                "GET",
                f"/api/git/{what}",
                params={"path": path},
                headers=endpoint.headers(),
                retries=0,
                gated=False,
            )
        except AuthenticationError:
            raise AuthenticationError(
                "The agent server refused this conversation's session key."
            ) from None

    async def download(self, endpoint: AgentEndpoint, path: str) -> bytes:
        """A file from the agent's workspace (an absolute path), as bytes."""
        try:
            data = await self.transport(endpoint.base_url).request(
                "GET",
                "/api/file/download",
                params={"path": path},
                headers=endpoint.headers(),
                expect_json=False,
                gated=False,
            )
        except AuthenticationError:
            raise AuthenticationError(
                "The agent server refused this conversation's session key."
            ) from None
        except NotFoundError:
            raise NotFoundError(f"There is no file {path} in the agent's workspace.") from None
        return bytes(data)

    async def home(self, endpoint: AgentEndpoint) -> str:
        """The home folder of the agent server's user."""
        data = await self.transport(endpoint.base_url).request(
            "GET", "/api/file/home", headers=endpoint.headers(), gated=False
        )
        home = data.get("home") if isinstance(data, dict) else None
        if not isinstance(home, str) or not home.startswith("/"):
            raise InvalidResponseError("The agent server did not say where its home is.")
        return home

    async def upload(self, endpoint: AgentEndpoint, path: str, data: bytes) -> None:
        """Write a file into the agent's workspace (``path`` absolute; replaced if there)."""
        await self.transport(endpoint.base_url).request(
            "POST",
            "/api/file/upload",
            params={"path": path},
            files={"file": (posixpath.basename(path), data, "application/octet-stream")},
            headers=endpoint.headers(),
            idempotent=True,
            gated=False,
        )

    async def set_confirmation(self, endpoint: AgentEndpoint, on: bool) -> None:
        """Every action waits for the user (``AlwaysConfirm``), or none does."""
        body = {"policy": {"kind": "AlwaysConfirm" if on else "NeverConfirm"}}
        await self.call(endpoint, "POST", "/confirmation_policy", json_body=body, idempotent=True)

    async def respond(self, endpoint: AgentEndpoint, accept: bool, reason: str) -> None:
        body = {"accept": accept, "reason": reason}
        await self.call(
            endpoint,
            "POST",
            "/events/respond_to_confirmation",
            json_body=body,
            idempotent=False,
        )

    async def interrupt(self, endpoint: AgentEndpoint) -> None:
        """Stop the agent at once, in the middle of a command or an LLM call (``/interrupt``);
        an agent server without that route gets ``/pause``, which waits for the step under
        way to end."""
        try:
            await self.call(
                endpoint, "POST", "/interrupt", json_body={}, idempotent=True, what="interrupt"
            )
        except UnsupportedError:
            await self.call(endpoint, "POST", "/pause", json_body={}, idempotent=True)

    async def run(self, endpoint: AgentEndpoint) -> None:
        await self.call(endpoint, "POST", "/run", json_body={}, idempotent=True)

    async def set_title(self, endpoint: AgentEndpoint, title: str) -> None:
        await self.call(endpoint, "PATCH", "", json_body={"title": title}, idempotent=True)
