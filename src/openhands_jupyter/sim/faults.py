"""Fault injection, auth, rate limits and request counting: the ASGI layer in front of the routes."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .routes import route_name


@dataclass
class Faults:
    """Shares of API requests that go wrong, settable while the simulator runs."""

    error_rate: float = 0.0
    latency: float = 0.0
    stale: float = 0.0
    """Seconds each answer waits after it was made: it tells the state of when it was asked
    (a slow proxy, or a poll that crosses a command)."""
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    html_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)
    scripted: dict[str, deque[str]] = field(default_factory=dict, repr=False)
    """Faults for the next requests to a route (by its counting name), in order."""

    def __post_init__(self) -> None:
        if self.seed is not None:
            self.rng.seed(self.seed)

    def clear(self) -> None:
        self.error_rate = self.latency = self.stale = self.drop_rate = 0.0
        self.malformed_rate = self.html_rate = self.rate_limit_rate = 0.0
        self.scripted.clear()

    def script(self, route: str, *kinds: str) -> None:
        """Answer the next requests to ``route`` (e.g. ``v1.events``) with these faults, one
        each: ``500``, ``404`` (a bare Not Found), ``html`` (a web page), ``malformed``
        (cut-off JSON), ``bad_utf8`` (bytes that are not UTF-8) or ``drop``."""
        unknown = set(kinds) - set(SCRIPTED)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(SCRIPTED)}")
        self.scripted.setdefault(route, deque()).extend(kinds)

    def take(self, route: str) -> str | None:
        """The scripted fault for this request to ``route``, if one is left."""
        queue = self.scripted.get(route)
        return queue.popleft() if queue else None


#: faults, scripted or drawn at random: (status, body, content type); ``drop`` cuts the
#: connection instead
SCRIPTED: dict[str, tuple[int, bytes, bytes]] = {
    "500": (500, b'{"detail": "Internal Server Error"}', b"application/json"),
    "404": (404, b'{"detail": "Not Found"}', b"application/json"),
    "html": (
        200,
        b"<!doctype html><html><body>OpenHands</body></html>",
        b"text/html; charset=utf-8",
    ),
    "malformed": (200, b'{"items": [{"id": ', b"application/json"),
    "bad_utf8": (
        200,
        b'{"items": [], "next_page_id": "' + bytes([0xFF, 0xFE]) + b'"}',
        b"application/json",
    ),
    "drop": (200, b"", b"application/json"),
}


@dataclass
class Record:
    at: float
    method: str
    route: str
    status: int = 0
    identity: str = ""


#: how long after a 429 went out a request from that client may still have been on its way
IN_FLIGHT = 0.1


class Stats:
    """What the simulator saw: per-route counts and a log of every API request."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        """Requests the app server saw, per route."""
        self.agent_counts: Counter[str] = Counter()
        """Requests (and sockets) the agent server saw, per route."""
        self.log: list[Record] = []
        self.faults_injected: Counter[str] = Counter()
        self.early_after_429 = 0
        self.starts_seen: Counter[str] = Counter()
        #: per client: when its last 429 went out, and until when it asked it to wait
        self._blocked_until: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.agent_counts.clear()
            self.log.clear()
            self.faults_injected.clear()
            self.early_after_429 = 0
            self._blocked_until.clear()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Gate:
    """ASGI middleware: counts, injects faults, checks auth and enforces Cloud-style limits."""

    def __init__(self, app: ASGIApp, config: Any) -> None:
        self.app = app
        self.config = config
        self.windows: dict[tuple[str, str], tuple[float, int]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cfg = self.config
        path: str = scope["path"]
        method: str = scope["method"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        identity = headers.get("authorization") or headers.get("x-session-api-key") or "anon"
        if not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        record = Record(cfg.world.now(), method, route_name(method, path), identity=identity[-6:])
        stats: Stats = cfg.stats
        with stats.lock:
            stats.counts[record.route] += 1
            stats.log.append(record)
            waiting = stats._blocked_until.get(identity)
            # a request that reaches the server just after the 429 went out may have been on
            # its way before the client had it (a busy machine is slow to hand it over): early
            # only once the client has had IN_FLIGHT seconds to hold back
            if waiting is not None and waiting[0] + IN_FLIGHT < record.at < waiting[1] - 0.05:
                stats.early_after_429 += 1

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                if cfg.faults.stale:
                    await asyncio.sleep(cfg.faults.stale)
                record.status = message["status"]
                if record.status == 429:
                    for k, v in message.get("headers", []):
                        if k.decode().lower() == "retry-after":
                            with stats.lock:
                                now = cfg.world.now()
                                stats._blocked_until[identity] = (now, now + float(v.decode()))
            await send(message)

        faults: Faults = cfg.faults
        rng = faults.rng
        scripted = faults.take(record.route)
        if scripted is not None:
            stats.faults_injected[scripted] += 1
            if scripted == "drop":
                await _drop(counted_send, send)
            status, body, ctype = SCRIPTED[scripted]
            await _raw(counted_send, status, body, ctype)
            return
        if faults.latency:
            await asyncio.sleep(rng.random() * faults.latency)
        if faults.drop_rate and rng.random() < faults.drop_rate:
            stats.faults_injected["drop"] += 1
            await _drop(counted_send, send)
        if faults.error_rate and rng.random() < faults.error_rate:
            stats.faults_injected["5xx"] += 1
            code = rng.choice([500, 502, 503, 504])
            await _json(counted_send, code, {"detail": f"Simulated server error {code}"})
            return
        if faults.rate_limit_rate and rng.random() < faults.rate_limit_rate:
            stats.faults_injected["429"] += 1
            await _json(
                counted_send,
                429,
                {"error": "Rate limit exceeded: 100 per 1 minute"},
                [
                    ("Retry-After", f"{faults.retry_after:g}"),
                    ("X-RateLimit-Limit", "100"),
                    ("X-RateLimit-Remaining", "0"),
                ],
            )
            return
        if faults.html_rate and rng.random() < faults.html_rate:
            stats.faults_injected["html"] += 1
            await _raw(counted_send, *SCRIPTED["html"])
            return
        if faults.malformed_rate and rng.random() < faults.malformed_rate:
            stats.faults_injected["malformed"] += 1
            await _raw(counted_send, *SCRIPTED["malformed"])
            return
        if cfg.api_key and method != "OPTIONS":
            auth = headers.get("authorization", "")
            if not auth:
                await _json(counted_send, 401, {"error": "NoCredentialsError"})
                return
            if auth != f"Bearer {cfg.api_key}":
                await _json(counted_send, 401, {"error": "BearerTokenError"})
                return
        if cfg.session_api_key and headers.get("x-session-api-key") != cfg.session_api_key:
            await _json(counted_send, 401, {"detail": "Unauthorized"})
            return
        if record.route in cfg.absent:
            # a route this server version does not have: answered like any unknown path
            if not cfg.frontend:
                await _json(counted_send, 404, {"detail": "Not Found"})
            elif method != "GET":
                await _json(counted_send, 405, {"detail": "Method Not Allowed"})
            else:
                await _raw(counted_send, 200, b"<!doctype html><html></html>", b"text/html")
            return
        if cfg.rate_limit:
            blocked = self._rate(identity)
            if blocked is not None:
                await _json(
                    counted_send, 429, {"error": "Rate limit exceeded: 100 per 1 minute"}, blocked
                )
                return
        await self.app(scope, receive, counted_send)

    def _rate(self, identity: str) -> list[tuple[str, str]] | None:
        cfg = self.config
        now = cfg.world.now()
        scale = 1.0 / cfg.world.speed if cfg.scale_rate_limit else 1.0
        for name, window, limit in (
            ("s", 1.0 * scale, cfg.per_second),
            ("m", 60.0 * scale, cfg.per_minute),
        ):
            start = now - (now % window)
            key = (identity, name)
            win_start, count = self.windows.get(key, (start, 0))
            if win_start != start:
                win_start, count = start, 0
            if count >= limit:
                reset = win_start + window - now
                return [
                    ("Retry-After", f"{max(reset, 0.01):.3f}"),
                    ("X-RateLimit-Limit", str(limit)),
                    ("X-RateLimit-Remaining", "0"),
                    ("X-RateLimit-Reset", f"{time.time() + reset:.3f}"),
                ]
            self.windows[key] = (win_start, count + 1)
        return None


async def _drop(counted_send: Any, send: Any) -> None:
    """Start a 200 answer, send a part of it and cut the connection."""
    await counted_send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"items": [', "more_body": True})
    raise ConnectionAbortedError("simulated dropped connection")


async def _raw(
    send: Any, status: int, body: bytes, ctype: bytes, extra: list[tuple[str, str]] | None = None
) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in extra or []]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(
    send: Any, status: int, body: Any, extra: list[tuple[str, str]] | None = None
) -> None:
    import json

    await _raw(send, status, json.dumps(body).encode(), b"application/json", extra)
