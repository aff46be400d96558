"""Keys never show in errors: not in a verbose traceback's frame locals, not in messages, not
from a base URL; a key an HTTP header cannot carry is refused in one line."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

from openhands_jupyter import OpenHands
from openhands_jupyter.api.errors import InputError
from openhands_jupyter.sim import Simulator

from .conftest import API_KEY, SESSION_KEY, SPEED
from .waiting import eventually

ENV_MARK = "ENV-MARKER-VALUE-5e1f"
WRONG = "oh-WRONG-KEY-not-on-server-77aa"


@pytest.mark.parametrize(
    "key",
    [
        "sk-line\nbreak-SECRET",
        "sk-tab\tSECRET",
        "sk-space SECRET",
        "sk-ünï-SECRET",
        "sk-\x00-SECRET",
    ],
)
@pytest.mark.parametrize("how", ["argument", "environment", "session"])
def test_a_key_a_header_cannot_carry_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, key: str, how: str
) -> None:
    monkeypatch.delenv("OPENHANDS_API_KEY", raising=False)
    with pytest.raises(InputError) as caught:
        if how == "argument":
            OpenHands(key, "http://127.0.0.1:9", progress=False)
        elif how == "environment":
            if "\x00" in key:
                pytest.skip("an environment variable cannot hold a NUL")
            monkeypatch.setenv("OPENHANDS_API_KEY", key)
            OpenHands(base_url="http://127.0.0.1:9", progress=False)
        else:
            OpenHands(base_url="http://127.0.0.1:9", session_api_key=key, progress=False)
    message = str(caught.value)
    assert "SECRET" not in message and "\n" not in message
    assert "cannot carry" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:s3cret-PASS@openhands.example.com",
        "https://token-ONLY-USER@openhands.example.com",
        "http://:s3cret-PASS@127.0.0.1:3000",
    ],
)
def test_credentials_in_the_base_url_are_refused_and_not_shown(url: str) -> None:
    with pytest.raises(InputError) as caught:
        OpenHands(API_KEY, url, progress=False)
    assert "PASS" not in str(caught.value) and "ONLY" not in str(caught.value)


def test_urls_are_normalised_for_links() -> None:
    oh = OpenHands(None, "HTTP://LocalHost:3000/base/?x=1#frag", progress=False)
    assert oh.base_url == "http://localhost:3000/base"
    oh.close()
    # 0.0.0.0 is this machine: plain http is fine there
    assert OpenHands(None, "http://0.0.0.0:3000", progress=False).base_url == "http://0.0.0.0:3000"


def test_verbose_tracebacks_hold_no_key_and_no_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OHJ_TEST_ENV_MARK", ENV_MARK)
    ip = InteractiveShell.instance()
    ip.run_line_magic("xmode", "Verbose")
    try:
        with Simulator(speed=SPEED, api_key=API_KEY) as sim:
            # a key the server rejects: the error is raised deep inside the client
            monkeypatch.setenv("OPENHANDS_API_KEY", WRONG)
            monkeypatch.setenv("OPENHANDS_BASE_URL", sim.url)
            ip.run_cell("from openhands_jupyter import OpenHands\nOpenHands(progress=False).list()")
            # a right key, then a server error inside a tracked command
            monkeypatch.setenv("OPENHANDS_API_KEY", API_KEY)
            ip.run_cell("OpenHands(progress=False).get('0' * 32)")
            # a key no header can carry, from the environment
            monkeypatch.setenv("OPENHANDS_API_KEY", WRONG + "\n")
            ip.run_cell("OpenHands(progress=False)")
        with Simulator(speed=SPEED, conversation_session_key=SESSION_KEY) as sim:
            # an agent-server request (its headers carry the session key) fails inside the client
            monkeypatch.delenv("OPENHANDS_API_KEY")
            monkeypatch.setenv("OPENHANDS_BASE_URL", sim.url)
            ip.run_cell("c = OpenHands(progress=False).start('Busy [sim:long]')")
            eventually(lambda: ip.user_ns["c"].status == "running", 30)
            sim.stop_agent_server()
            ip.run_cell("c.stop()")
    finally:
        ip.run_line_magic("xmode", "Context")
    out = capsys.readouterr()
    text = out.out + out.err
    assert "AuthenticationError" in text and "NotFoundError" in text and "InputError" in text
    assert "headers={'X-Session-API-Key': '***'}" in text  # the frame is there, masked
    assert SESSION_KEY not in text
    assert WRONG not in text
    assert API_KEY not in text
    assert ENV_MARK not in text
