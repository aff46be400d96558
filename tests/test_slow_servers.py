"""Servers that hold a call: one that trickles a byte at a time, one that never answers. Every
request has an overall deadline; nothing blocks for minutes without a word."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from openhands_jupyter import OpenHands
from openhands_jupyter.api.errors import APIConnectionError
from openhands_jupyter.api.models import ConversationInfo
from openhands_jupyter.handles.conversation import Conversation
from openhands_jupyter.tracking import Tracked

from .conftest import SimClient, fast_config
from .waiting import eventually


class Trickler:
    """A TCP server on 127.0.0.1 that answers every request with headers, then one body byte
    every ``every`` seconds (``every=None``: accepts and never answers)."""

    def __init__(self, every: float | None) -> None:
        self.every = every
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            if self.every is None:
                while not self.closed:
                    time.sleep(0.1)
                return
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: 100000\r\n\r\n["
            )
            while not self.closed:
                time.sleep(self.every)
                conn.sendall(b" ")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.closed = True
        self.sock.close()


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    server = Trickler(every=0.2)  # each byte well inside any read timeout
    yield server
    server.close()


def test_a_trickling_server_cannot_hold_a_call(trickler: Trickler) -> None:
    oh = OpenHands(
        None, trickler.url, api_version="v1", progress=False, deadline=2.0, max_retries=0
    )
    started = time.monotonic()
    with pytest.raises(APIConnectionError, match=r"took more than 2 s to answer GET"):
        oh.list()
    assert time.monotonic() - started < 6
    oh.close()


def test_the_tracker_says_what_a_trickling_server_does(trickler: Trickler) -> None:
    oh = OpenHands(
        None,
        trickler.url,
        api_version="v1",
        progress=False,
        deadline=1.0,
        max_retries=0,
        tracker_config=fast_config(time_scale=0.05),
    )
    # a conversation being followed: its status reads hit the deadline and it says so
    tracked = Tracked(
        conversation_id="ab" * 16,
        info=ConversationInfo(id="ab" * 16, status="running"),
        status="running",
        seen=True,
    )
    handle = Conversation(oh.aio, tracked).track()
    eventually(lambda: handle.last_error, 15)
    assert "took more than 1 s to answer" in (handle.last_error or "")
    oh.close()


def test_the_magic_returns_at_once_from_a_server_that_never_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from .test_magic import Shell

    silent = Trickler(every=None)
    monkeypatch.delenv("OPENHANDS_API_KEY", raising=False)
    monkeypatch.setenv("OPENHANDS_BASE_URL", silent.url)
    sh = Shell()
    sh.magics._client = None
    try:
        started = time.monotonic()
        conv = sh.line("Fix the tests")
        # it did not wait for the server, whose answer would take the read timeout (minutes);
        # how fast it returns is bench/ui.py's to measure
        assert time.monotonic() - started < 10
        assert conv.status == "starting"
        eventually(lambda: silent.connections >= 1, 10)
        assert conv.widget.state["phase_line"] == "Starting: sending request"
    finally:
        if sh.magics._client is not None:
            sh.magics._client.close()
            sh.magics._client = None
        silent.close()


def test_a_refused_background_start_shows_as_its_error(sim_client: SimClient) -> None:
    _sim, oh = sim_client(api_key="the-right-key", key="a-wrong-key")
    conv = oh.start("Refused", background=True)
    eventually(lambda: conv.status == "error", 20)
    assert "Not authorised" in (conv.detail or "")


def test_a_redirect_is_named_with_where_it_goes() -> None:
    import httpx

    from openhands_jupyter.api.errors import InvalidResponseError

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "https://login.example.com/sso?next=x"})

    oh = OpenHands(
        None,
        "https://openhands.example.com",
        api_version="v1",
        progress=False,
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(InvalidResponseError) as caught:
        oh.start("Anything")
    message = str(caught.value)
    assert "redirected POST /api/v1/app-conversations to https://login.example.com/sso" in message
    assert "next=x" not in message and "content type" not in message
    oh.close()
