"""``Simulator``: the OpenHands-compatible server on a free 127.0.0.1 port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from .agent import build_agent_app
from .app import SimConfig, build_app
from .faults import Faults, Stats
from .records import Now
from .world import World


class _Served:
    """One uvicorn server on a 127.0.0.1 socket, in a daemon thread."""

    def __init__(self, app: Any, port: int, name: str) -> None:
        # IPPROTO_TCP: asyncio turns Nagle off only on sockets that name it, and with Nagle on
        # every response waits ~40 ms for a delayed ACK (uvicorn writes headers and body apart)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        sock.listen(128)
        sock.setblocking(False)
        self.socket = sock
        config = uvicorn.Config(
            app,
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=1,
            access_log=False,
            ws_ping_interval=None,
        )
        server = uvicorn.Server(config)
        setattr(server, "install_signal_handlers", lambda: None)  # noqa: B010
        self.server = server
        self.thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("The simulator did not start.")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


#: the agent-server versions the simulator can be
AGENT_VERSIONS = ("1.34", "1.58")


class Simulator:
    """Serve the simulated OpenHands API over real HTTP: the app server, and an agent server
    on a second port (``agent_url``) with the event socket.

    ``speed`` divides every scripted duration (a sandbox takes ~8.5 s at speed 1). ``clock``
    (anything with ``now()``, such as the tracker's ``ManualClock``) replaces the real clock:
    a test that shares it with the tracker moves both by hand. ``api`` is
    ``"v1"``, ``"v0"`` or ``"both"``. ``api_key`` makes it require ``Authorization: Bearer``;
    ``session_api_key`` makes it require ``X-Session-API-Key``. ``rate_limit`` enforces the Cloud
    limits (10/s, 100/min, scaled by ``speed``); ``max_concurrent`` answers
    CONCURRENCY_LIMIT_REACHED past that many active conversations. Events reach the app
    server's store in webhook batches of ``batch_size`` events or after ``flush_delay``
    (sim-)seconds, as on a real server (5 / 30 s by default). ``grouping="ADD_TO_ANY"`` puts
    every new conversation into a running sandbox. ``frontend`` serves the web UI's page on
    unknown paths (405 for non-GET), else FastAPI's 404. ``absent`` names routes this server
    lacks (a 1.6 server's V1 has no ``v1.send_message`` and no ``v1.delete``).
    ``socket_frame_auth=False`` serves an agent server that reads the session key from the
    event socket's header only (1.6's), refusing a socket without it before accepting.
    ``idle_before_run`` (sim-seconds) reports ``idle`` that long after the start, before the
    first run, as a V1 server may. ``timestamp_filter_fails`` models 1.6's V1 event store,
    whose ``timestamp__gte`` search answers 500 once the conversation has events.
    ``agent_version`` is the agent server's: ``"1.34"`` (as 1.11.0 pins) or ``"1.58"`` (events
    with ``parent_id``, a security analyzer's verdict on each action, errors that say what the
    user can do, 404 for a pause of an unknown conversation, and a run capacity: the next
    ``world.runs_refused`` runs get 429). ``store_refuses`` is an app server whose store
    refuses the agent server's events (1.11.0 in front of a 1.58 agent server): it has none.
    ``port_clash`` is a self-hosted server's process sandbox (1.11.0): sandboxes made at the
    same moment get the same port, and a start whose sandbox began while another was being
    made ends in ERROR (its agent server refuses the other's key: 401).
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
        batch_size: int = 5,
        flush_delay: float = 30.0,
        step: float = 1.5,
        faults: Faults | None = None,
        grouping: str = "NO_GROUPING",
        frontend: bool = True,
        local_offset_hours: float = 0.0,
        title_delay: float = 3.0,
        absent: frozenset[str] | set[str] = frozenset(),
        v1_enabled: bool = True,
        socket_frame_auth: bool = True,
        timestamp_filter_fails: bool = False,
        idle_before_run: float = 0.0,
        push_delay: float = 0.0,
        interrupt: bool = True,
        approval_settle: float = 0.5,
        condenser_cost: float = 0.0,
        agent_version: str = "1.34",
        store_refuses: bool = False,
        port_clash: bool = False,
        clock: Now | None = None,
    ) -> None:
        self.port = port
        self.agent_port = 0
        self.world = World(
            clock=clock,
            speed=speed,
            batch_size=batch_size,
            flush_delay=flush_delay,
            step=step,
            default_scenario=scenario,
            session_key=conversation_session_key,
            grouping=grouping,
            local_offset_hours=local_offset_hours,
            title_delay=title_delay,
            idle_before_run=idle_before_run,
            approval_settle=approval_settle,
            condenser_cost=condenser_cost,
        )
        if agent_version not in AGENT_VERSIONS:
            raise ValueError(f"agent_version is one of {', '.join(AGENT_VERSIONS)}")
        self.world.agent_version = agent_version
        self.world.store_refuses = store_refuses
        self.world.port_clash = port_clash
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
            frontend=frontend,
            absent=frozenset(absent),
            v1_enabled=v1_enabled,
            timestamp_filter_fails=timestamp_filter_fails,
        )
        self.socket_frame_auth = socket_frame_auth
        self.push_delay = push_delay
        self.interrupt = interrupt
        self._app: _Served | None = None
        self._agent: _Served | None = None

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

    @property
    def agent_url(self) -> str:
        return f"http://127.0.0.1:{self.agent_port}"

    def start(self) -> Simulator:
        if self._app is not None:
            return self
        self._app = _Served(build_app(self.config), self.port, "openhands-sim")
        self.port = self._app.port
        self.start_agent_server()
        return self

    def start_agent_server(self) -> None:
        """Serve the agent server (again, on the same port after :meth:`stop_agent_server`)."""
        if self._agent is not None:
            return
        stats = self.config.stats

        def count(route: str) -> None:
            with stats.lock:
                stats.agent_counts[route] += 1

        self._agent = _Served(
            build_agent_app(
                self.world,
                count,
                frame_auth=self.socket_frame_auth,
                push_delay=self.push_delay,
                interrupt=self.interrupt,
            ),
            self.agent_port,
            "openhands-agent",
        )
        self.agent_port = self._agent.port
        self.world.agent_url = self.agent_url

    def stop_agent_server(self) -> None:
        """Stop the agent server: connections to it are refused (as behind a network policy)."""
        agent, self._agent = self._agent, None
        if agent is not None:
            agent.stop()

    def stop(self) -> None:
        """Stop serving; connections are refused until :meth:`start` is called again."""
        self.stop_agent_server()
        app, self._app = self._app, None
        if app is not None:
            app.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
