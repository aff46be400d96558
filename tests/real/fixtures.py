"""Session-wide real OpenHands servers for the tests that use them (marker ``real``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openhands_jupyter import OpenHands

from .launcher import RealServer, RealServerError

#: the app server's own key (``SESSION_API_KEY``): every /api/v1 call must carry it
APP_KEY = "real-app-key-0f9e8d7c6b5a"


def serve(server: RealServer) -> Iterator[RealServer]:
    """Run ``server`` for a fixture. One that cannot be installed or started fails the tests
    that need it: never a skip."""
    try:
        server.start()
    except RealServerError as exc:
        pytest.fail(f"OpenHands {server.version} did not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_server() -> Iterator[RealServer]:
    """OpenHands 1.11.0 with the SDK's default webhook batching (5 events / 30 s), the process
    sandbox, conversations sharing a sandbox (``ADD_TO_ANY``) and a scripted fake LLM."""
    yield from serve(RealServer(session_api_key=APP_KEY))


@pytest.fixture(name="oh")
def real_client(real_server: RealServer) -> Iterator[OpenHands]:
    """A client of the session's real server, closed after the test."""
    client = OpenHands(base_url=real_server.url, session_api_key=APP_KEY, progress=False)
    yield client
    client.close()
