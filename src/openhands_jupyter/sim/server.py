"""``Simulator``: the OpenHands-compatible server on a free 127.0.0.1 port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from .app import SimConfig, build_app
from .faults import Faults, Stats
from .world import World


class Simulator:
    """Serve the simulated OpenHands API over real HTTP.

    ``speed`` divides every scripted duration (a sandbox takes ~8.5 s at speed 1). ``api`` is
    ``"v1"``, ``"v0"`` or ``"both"``. ``api_key`` makes it require ``Authorization: Bearer``;
    ``session_api_key`` makes it require ``X-Session-API-Key``. ``rate_limit`` enforces the Cloud
    limits (10/s, 100/min, scaled by ``speed``); ``max_concurrent`` answers
    CONCURRENCY_LIMIT_REACHED past that many active conversations.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        speed: float = 1.0,
        api: str = "v1",
        api_key: str | None = None,
        session_api_key: str | None = None,
        conversation_session_key: str | None = None,
        rate_limit: bool = False,
        scale_rate_limit: bool = True,
        per_minute: int = 100,
        per_second: int = 10,
        max_concurrent: int | None = None,
        events_path: str = "new",
        scenario: str = "finish",
        event_lag: float = 1.0,
        step: float = 1.5,
        faults: Faults | None = None,
    ) -> None:
        self.port = port
        self.world = World(
            speed=speed,
            event_lag=event_lag,
            step=step,
            default_scenario=scenario,
            session_key=conversation_session_key,
        )
        self.config = SimConfig(
            world=self.world,
            api=api,
            api_key=api_key,
            session_api_key=session_api_key,
            rate_limit=rate_limit,
            scale_rate_limit=scale_rate_limit,
            per_minute=per_minute,
            per_second=per_second,
            max_concurrent=max_concurrent,
            events_path=events_path,
            faults=faults or Faults(),
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        return f"Simulator(url={self.url!r}, api={self.config.api!r}, speed={self.world.speed})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stats(self) -> Stats:
        return self.config.stats

    @property
    def faults(self) -> Faults:
        return self.config.faults

    @property
    def counts(self) -> Any:
        return self.config.stats.counts

    def start(self) -> Simulator:
        if self._server is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        config = uvicorn.Config(
            build_app(self.config),
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=1,
            access_log=False,
        )
        server = uvicorn.Server(config)
        setattr(server, "install_signal_handlers", lambda: None)  # noqa: B010
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="openhands-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("The simulator did not start.")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving; connections are refused until :meth:`start` is called again."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
            server.force_exit = True
        if thread is not None:
            thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
