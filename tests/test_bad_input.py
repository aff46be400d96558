"""Every misuse of the magic and of the Python API: one readable line, zero requests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from openhands_jupyter import InputError, OpenHands
from openhands_jupyter.sim import Simulator

from .conftest import fast_config


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as server:
        yield server


@pytest.fixture
def shell(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.setenv("OPENHANDS_BASE_URL", sim.url)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "openhands_jupyter")
    magics = ip.magics_manager.registry["OpenHandsMagics"]
    magics._client = None
    sim.stats.reset()
    yield ip
    if magics._client is not None:
        magics._client.close()
        magics._client = None
    for name in ("poll_interval", "budget_per_minute", "max_concurrent", "api_version"):
        setattr(magics, name, None)


MAGIC_MISUSE = [
    ("%openhands", "task is empty"),
    ("%openhands    ", "task is empty"),
    ("%openhands -r just-a-name Fix it", "not of the form owner/repo"),
    ("%openhands -r https://github.com/octo Fix it", "not of the form owner/repo"),
    ("%openhands -r octo/app -b 'my branch' Fix it", "not a valid git branch"),
    ("%openhands -b dev Fix it", "needs a repository"),
    ("%openhands --bogus Fix it", "unknown option '--bogus'"),
    ("%openhands -x Fix it", "unknown option '-x'"),
    ("%openhands --repo", "needs a value"),
    ("%openhands --timeout soon --wait Fix it", "invalid float value"),
    ("%openhands --attach 12345", "Not a conversation id"),
    ("%openhands --stop ../../etc", "Not a conversation id"),
    ("%openhands --attach 0123456789abcdef0123456789abcdef --panel", "one of"),
    ("%openhands --list Fix it", "takes no task text"),
    ("%openhands --api-version v9 Fix it", "Unknown api_version"),
    ("%%openhands Fix it\nbody", "put the task in the cell body"),
    ("%%openhands\n   \n", "task is empty"),
    ("%config OpenHandsMagics.poll_interval = -1", "poll_interval must be greater than 0"),
    (
        "%config OpenHandsMagics.budget_per_minute = 0",
        "budget_per_minute must be between 1 and 600",
    ),
    ("%config OpenHandsMagics.max_concurrent = 0", "max_concurrent must be at least 1"),
]


@pytest.mark.parametrize(("cell", "message"), MAGIC_MISUSE)
def test_magic_misuse(
    shell: InteractiveShell,
    sim: Simulator,
    cell: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    shell.run_cell(cell)
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    lines += [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert message in lines[0]
    assert "Traceback" not in lines[0]
    assert sim.stats.total == 0


def _client(sim: Simulator) -> OpenHands:
    return OpenHands(None, sim.url, tracker_config=fast_config(), progress=False)


API_MISUSE: list[tuple[str, Callable[[Simulator], Any], str]] = [
    ("empty task", lambda s: _client(s).start(""), "task is empty"),
    ("blank task", lambda s: _client(s).start(" \t\n"), "task is empty"),
    ("bad repository", lambda s: _client(s).start("x", repository="no slash"), "owner/repo"),
    ("bad branch", lambda s: _client(s).start("x", repository="o/r", branch="a b"), "branch"),
    ("bad id", lambda s: _client(s).get("not-an-id"), "Not a conversation id"),
    ("bad api version", lambda s: OpenHands(None, s.url, api_version="v9"), "Unknown api_version"),
    ("negative interval", lambda s: OpenHands(None, s.url, poll_interval=-5), "poll_interval"),
    ("zero budget", lambda s: OpenHands(None, s.url, budget_per_minute=0), "budget_per_minute"),
    ("zero concurrency", lambda s: OpenHands(None, s.url, max_concurrent=0), "max_concurrent"),
    ("bad list limit", lambda s: _client(s).list(limit=0), "limit"),
    (
        "empty task in a batch",
        lambda s: _client(s).start_many(["ok", {"task": ""}]),
        "task is empty",
    ),
    ("insecure URL", lambda s: OpenHands("k-1234", "http://openhands.example.com"), "plain-http"),
    ("not a URL", lambda s: OpenHands("k-1234", "localhost:3000"), "not an http"),
]


@pytest.mark.parametrize(("name", "call", "message"), API_MISUSE, ids=[m[0] for m in API_MISUSE])
def test_api_misuse(
    sim: Simulator, name: str, call: Callable[[Simulator], Any], message: str
) -> None:
    sim.stats.reset()
    with pytest.raises(InputError) as info:
        call(sim)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert sim.stats.total == 0
