"""An agent server of the tests' own, in front of the simulator's: its REST routes go through
to the simulator's, its event socket misbehaves as ``mode`` says, and it keeps what came to
it. And a bare TCP listener that answers with a canned reply and keeps every byte it got."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import httpx
from websockets.asyncio.client import connect

from openhands_jupyter.sim import Simulator
from openhands_jupyter.sim.server import _Served

#: what the socket does: ``relay`` (as the simulator's), ``quiet`` (the state frame, then
#: nothing, open), ``close`` (the state frame, then a normal close), ``refuse`` (HTTP 403 to
#: the handshake), ``redirect`` (HTTP 302 to ``redirect_to``), ``inject`` (relay, with
#: ``inject`` sent after the state frame on each connect)
MODES = ("relay", "quiet", "close", "refuse", "redirect", "inject")


class HostileAgent:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.mode = "relay"
        self.inject: list[str | bytes] = []
        self.redirect_to = ""
        self.connects = 0
        self.history_reads = 0
        self.received: list[str] = []
        self._served: _Served | None = None

    @property
    def url(self) -> str:
        assert self._served is not None
        return f"http://127.0.0.1:{self._served.port}"

    def start(self) -> HostileAgent:
        self._served = _Served(self.app, 0, "hostile-agent")
        # new and known conversations now name this agent server
        self.sim.world.agent_url = self.url
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()

    def __enter__(self) -> HostileAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def app(self) -> Any:
        """The ASGI app (a plain function: uvicorn takes it as ASGI 3)."""

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                await self._http(scope, receive, send)
            elif scope["type"] == "websocket":
                await self._socket(scope, receive, send)

        return app

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k.lower() != b"host"}
        if scope["path"].endswith("/events/search"):
            self.history_reads += 1
        url = f"{self.sim.agent_url}{scope['path']}"
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode()
        async with httpx.AsyncClient() as client:
            upstream = await client.request(scope["method"], url, content=body, headers=headers)
        await send(
            {
                "type": "http.response.start",
                "status": upstream.status_code,
                "headers": [
                    (k.encode(), v.encode())
                    for k, v in upstream.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")
                ],
            }
        )
        await send({"type": "http.response.body", "body": upstream.content})

    async def _socket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.connects += 1
        await receive()  # websocket.connect
        if self.mode == "refuse":
            await send({"type": "websocket.close", "code": 1008})
            return
        if self.mode == "redirect":
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 302,
                    "headers": [(b"location", self.redirect_to.encode())],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b""})
            return
        await send({"type": "websocket.accept"})
        first = await receive()
        text = first.get("text") or ""
        self.received.append(text)
        upstream_url = self.sim.agent_url.replace("http://", "ws://") + scope["path"]
        if scope.get("query_string"):
            upstream_url += "?" + scope["query_string"].decode()
        async with connect(upstream_url) as upstream:
            await upstream.send(text)
            relayed = 0
            async for frame in upstream:
                if self.mode == "quiet" and relayed >= 1:
                    await asyncio.sleep(3600)
                await send({"type": "websocket.send", "text": frame})
                relayed += 1
                if relayed == 1 and self.mode == "close":
                    await send({"type": "websocket.close", "code": 1000})
                    return
                if relayed == 1 and self.mode == "inject":
                    for item in self.inject:
                        key = "bytes" if isinstance(item, bytes) else "text"
                        await send({"type": "websocket.send", key: item})


class RawListener:
    """A TCP listener on 127.0.0.1 that answers every connection with ``reply`` and keeps the
    bytes it received."""

    def __init__(self, reply: bytes = b"") -> None:
        self.reply = reply
        self.connections = 0
        self.data = b""
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.settimeout(1.0)
            try:
                self.data += conn.recv(65536)
                if self.reply:
                    conn.sendall(self.reply)
            except OSError:
                pass
            finally:
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


def deep(levels: int) -> str:
    """A JSON event nested ``levels`` deep."""
    return '{"kind": "MessageEvent", "id": "deep", "x": ' + "[" * levels + "]" * levels + "}"


def event(kind: str | None, **fields: Any) -> str:
    body = {"id": fields.pop("id", f"ev-{kind}"), "timestamp": "2030-01-01T00:00:00", **fields}
    if kind is not None:
        body["kind"] = kind
    return json.dumps(body)
