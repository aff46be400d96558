"""Real OpenHands servers for the tests that use them (marker ``real``). Each one the selected
tests need is started early, one after another in a thread of its own, while the first tests
run; its fixture waits for it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import pytest

from openhands_jupyter import OpenHands

from .launcher import NEW_AGENT_VERSION, V0_VERSION, RealServer, RealServerError

#: the app server's own key (``SESSION_API_KEY``): every /api/v1 call must carry it
APP_KEY = "real-app-key-0f9e8d7c6b5a"


def _warm(server: RealServer) -> RealServer:
    """Its sandbox up before the first test: whichever test runs first, alone or in the
    suite, meets the server as the others do (1.11.0 answers 401 to a second start that
    races the creation of the first sandbox)."""
    try:
        with OpenHands(base_url=server.url, session_api_key=APP_KEY, progress=False) as oh:
            first = oh.start("Warm up")
            first.wait(timeout=240)
            if first.status != "finished":
                raise RealServerError(
                    f"its first conversation ended {first.status}: {first.detail}"
                )
    except BaseException:
        server.stop()
        raise
    return server


def _main() -> RealServer:
    """OpenHands 1.11.0 with the SDK's default webhook batching (5 events / 30 s), the
    process sandbox, conversations sharing a sandbox (``ADD_TO_ANY``), a scripted fake LLM."""
    return _warm(RealServer(session_api_key=APP_KEY).start())


def _new_agent() -> RealServer:
    """1.11.0's app server with the newest agent server (1.58.2) in its sandboxes, as
    OpenHands Cloud runs newer agent servers than the one the app pins. The app server's
    event store refuses that agent server's events (422: its 1.34 models), so only the
    agent server's own routes and socket have every event."""
    return _warm(RealServer(session_api_key=APP_KEY, agent_server=NEW_AGENT_VERSION).start())


def _v16() -> RealServer:
    """1.6.0 as installed: V1 on (its web UI starts V1 conversations). Its agent server hands
    events to the app server's store within a second (the default waits up to 30 s; the
    1.11.0 tests keep it): what is read from the store is read as it would be."""
    return RealServer(V0_VERSION, v1=True, batching=(5, 1.0)).start()


def _v16_legacy() -> RealServer:
    """1.6.0 run with V1 switched off (``ENABLE_V1=0``): only the legacy API."""
    return RealServer(V0_VERSION, v1=False).start()


#: the servers by fixture name
SERVERS: dict[str, Callable[[], RealServer]] = {
    "real_server": _main,
    "server158": _new_agent,
    "server16": _v16,
    "server16_v0": _v16_legacy,
}
_early: dict[str, Future[RealServer]] = {}
#: the servers the selected tests use, to start in the background once the first is needed
#: (in a worker of a parallel run, which learns only then that the real tests are its own)
later: list[str] = []


def start_early(names: list[str]) -> None:
    """Start the servers ``names`` (in that order) in a background thread."""
    todo = [(name, _early.setdefault(name, Future())) for name in names if name not in _early]

    def run() -> None:
        for name, future in todo:
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(SERVERS[name]())
            except BaseException as exc:  # handed to the fixture that waits for it
                future.set_exception(exc)

    threading.Thread(target=run, name="real-servers", daemon=True).start()


def stop_early() -> None:
    """Stop every server started early that no fixture took (a run cut short)."""
    for future in _early.values():
        if future.cancel():
            continue
        try:
            future.result(timeout=600).stop()
        except BaseException:
            pass
    _early.clear()


def serve(name: str) -> Iterator[RealServer]:
    """The server ``name`` for a fixture: the one started early, else started now. One that
    cannot be installed or started fails the tests that need it: never a skip."""
    if later:
        # the first server asked for here: this one first, the rest meanwhile
        start_early([name, *[other for other in later if other != name]])
        later.clear()
    future = _early.pop(name, None)
    try:
        server = future.result(timeout=900) if future is not None else SERVERS[name]()
    except RealServerError as exc:
        pytest.fail(f"A real OpenHands server did not start ({name}): {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_server() -> Iterator[RealServer]:
    """The session's OpenHands 1.11.0 (see :func:`_main`)."""
    yield from serve("real_server")


@pytest.fixture(scope="session")
def server158() -> Iterator[RealServer]:
    """The session's 1.11.0 with agent server 1.58.2 (see :func:`_new_agent`)."""
    yield from serve("server158")


#: the agent servers the agent-server tests run against, by test id
AGENT_SERVERS = {"agent1.34": "real_server", f"agent{NEW_AGENT_VERSION[:4]}": "server158"}


@pytest.fixture(params=list(AGENT_SERVERS))
def agent_server(request: pytest.FixtureRequest) -> RealServer:
    """Each agent server in turn: the one 1.11.0 pins (1.34.0) and the newest (1.58.2)."""
    server: RealServer = request.getfixturevalue(AGENT_SERVERS[request.param])
    return server


@pytest.fixture
def agent_oh(agent_server: RealServer) -> Iterator[OpenHands]:
    """A client of each agent server's app server in turn, closed after the test."""
    client = OpenHands(base_url=agent_server.url, session_api_key=APP_KEY, progress=False)
    yield client
    client.close()


@pytest.fixture(name="oh")
def real_client(real_server: RealServer) -> Iterator[OpenHands]:
    """A client of the session's real server, closed after the test."""
    client = OpenHands(base_url=real_server.url, session_api_key=APP_KEY, progress=False)
    yield client
    client.close()
