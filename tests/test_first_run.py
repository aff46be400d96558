"""A newcomer's first steps: arguments are checked before a key is asked for, the key prompt
never blocks a script, terminal IPython gets text, unfilled ``{names}`` are named, one id per
conversation, and what each status allows comes from one table."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from openhands_jupyter import OpenHands
from openhands_jupyter.api import status as st
from openhands_jupyter.sim import Simulator

from .conftest import SPEED
from .test_magic import Shell, shell  # noqa: F401  (the fixture)
from .waiting import eventually


@pytest.fixture
def cloud_without_key(monkeypatch: pytest.MonkeyPatch) -> Shell:
    monkeypatch.delenv("OPENHANDS_API_KEY", raising=False)
    monkeypatch.delenv("OPENHANDS_BASE_URL", raising=False)
    sh = Shell()
    sh.magics.base_url = None
    sh.magics._client = None

    def no_prompt(prompt: str = "") -> str:
        raise AssertionError("asked for a key")

    monkeypatch.setattr("getpass.getpass", no_prompt)
    return sh


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("--repo notarepo Fix it", "not of the form owner/repo"),
        ("--branch 'a b' Fix it", "not a valid git branch name"),
        ("--attach not-an-id!", "id"),
        ("--stop ../../etc", "id"),
        ("--api-version v9 Fix it", "Unknown api_version"),
        ("   ", "task is empty"),
    ],
)
def test_arguments_are_checked_before_the_key(
    cloud_without_key: Shell, capsys: pytest.CaptureFixture[str], line: str, said: str
) -> None:
    sh = cloud_without_key
    assert sh.line(line) is None
    captured = capsys.readouterr()
    assert said in captured.err and captured.err.count("\n") == 1
    assert "OPENHANDS_API_KEY" not in captured.out  # not asked for a key
    assert sh.magics._client is None  # nothing was built, so nothing was sent
    sh.magics.api_version = None


def test_the_key_prompt_never_waits_on_a_silent_pipe() -> None:
    """Terminal IPython fed by a script: stdin is a pipe that stays open and sends nothing."""
    script = textwrap.dedent(
        """
        import os
        os.environ.pop("OPENHANDS_API_KEY", None); os.environ.pop("OPENHANDS_BASE_URL", None)
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "openhands_jupyter")
        print("returned:", ip.run_line_magic("openhands", "Fix the tests"))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,  # open, never written to
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the magic waited for a key on a pipe")
        out = proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert "OPENHANDS_API_KEY" in out and "returned: None" in out
    assert "OpenHands API key (Enter to skip)" not in out


def test_list_in_terminal_ipython_is_a_text_table(
    shell: tuple[Shell, Simulator],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    sh, _sim = shell
    first = sh.line("First task [sim:idle]")
    second = sh.line("Second task [sim:idle]")
    first.wait(timeout=20)
    second.wait(timeout=20)
    capsys.readouterr()
    assert sh.line("--list 5") is None
    out = capsys.readouterr().out
    assert "VBox" not in out and "HBox" not in out
    lines = out.splitlines()
    assert lines[0].split() == ["id", "status", "updated", "title"]
    assert any(line.startswith(first.id) for line in lines)
    assert any(line.startswith(second.id) for line in lines)


def test_unfilled_names_are_named(
    shell: tuple[Shell, Simulator],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    sh, _sim = shell
    sh.ip.user_ns["known"] = "loader.py"
    conv = sh.cell("", "Refactor {known}, {missing} and {known.nope}; keep {{braces}}.")
    assert conv.task == "Refactor loader.py, {missing} and {known.nope}; keep {braces}."
    err = capsys.readouterr().err
    assert "{missing}" in err and "{known.nope}" in err and "{known}" not in err
    assert "{braces}" not in err


def test_the_demo_names_one_id_and_says_its_activity_is_scripted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from openhands_jupyter.demo import main

    monkeypatch.delenv("OPENHANDS_API_KEY", raising=False)
    monkeypatch.delenv("OPENHANDS_BASE_URL", raising=False)
    assert main(["--speed", str(SPEED), "Reverse a string"]) == 0
    out = capsys.readouterr().out
    assert "scripted" in out
    ids = [line.rsplit(" ", 1)[-1] for line in out.splitlines() if "conversation id" in line]
    assert len(ids) == 2 and ids[0] == ids[1] and len(ids[0]) == 32  # the same id, twice
    progress = [line for line in out.splitlines() if line.startswith("[openhands]")]
    assert all(line.startswith("[openhands] Reverse a string: ") for line in progress)


def _states(widget: Any) -> list[str]:
    return [e["text"] for e in widget.feed if e["type"] == "state"]


def test_status_rules_reach_the_widget_and_panel(
    shell: tuple[Shell, Simulator],  # noqa: F811
) -> None:
    sh, _sim = shell
    conv = sh.line("Keep going [sim:long]")
    widget = conv.widget
    eventually(lambda: widget.state["status"] == "running")
    assert widget.state["rules"] == st.rules("running").state()
    assert widget.state["rules"]["stop"] and not widget.state["rules"]["resume"]
    conv.stop()
    eventually(lambda: widget.state["status"] == "paused")
    eventually(lambda: "paused" in _states(widget))
    assert widget.state["rules"]["resume"] and not widget.state["rules"]["stop"]
    conv.resume()
    eventually(lambda: widget.state["status"] == "running")
    eventually(lambda: "resumed" in _states(widget))
    assert _states(widget).index("paused") < _states(widget).index("resumed")
    conv.untrack()
    eventually(lambda: bool(widget.state["untracked_note"]))
    assert "No longer followed" in widget.state["untracked_note"]
    assert conv.id in widget.state["untracked_note"]


def test_a_finished_conversation_cannot_be_stopped() -> None:
    for status in (st.FINISHED, st.ERROR, st.STUCK, st.ARCHIVED):
        assert not st.rules(status).stop and st.rules(status).ended
    assert st.rules("some-new-server-state").state()["style"] == "unknown"
    with (
        Simulator(speed=SPEED) as sim,
        OpenHands(None, sim.url, progress=False) as oh,
    ):
        from openhands_jupyter.ui.widget import ConversationWidget

        conv = oh.start("Finish quickly")
        widget = ConversationWidget(conv)
        conv.wait(timeout=30)
        eventually(lambda: widget.state["status"] == "finished")
        assert widget.state["rules"]["stop"] is False and widget.state["rules"]["send"] is True
        widget.close()


def test_every_status_has_a_style() -> None:
    """Adding a status: its constant, rules and raw mapping in api/status.py, its colour in
    js/widget.css (this test), nothing in the JS."""
    from pathlib import Path

    css = (Path(__file__).resolve().parent.parent / "js" / "widget.css").read_text()
    for name in [*st.RULES, "some-new-server-state"]:
        assert f".ohj-s-{st.rules(name).style}" in css, name
    js = (Path(__file__).resolve().parent.parent / "js" / "widget.js").read_text()
    for name in st.RULES:
        assert f'"{name}"' not in js, f"widget.js decides something about {name!r}"


def test_settings_changes_keep_one_client_and_one_budget(
    shell: tuple[Shell, Simulator],  # noqa: F811
) -> None:
    import threading

    sh, _sim = shell
    threads_before = [t for t in threading.enumerate() if t.name == "openhands-tracker"]
    first = sh.line("Before the changes [sim:long]")
    client = sh.magics.client()
    for value in (7, 9, 11):
        sh.ip.run_line_magic("config", f"OpenHandsMagics.poll_interval = {value}")
        sh.line(f"After poll_interval={value} [sim:long]")
    sh.ip.run_line_magic("config", "OpenHandsMagics.budget_per_minute = 30")
    sh.ip.run_line_magic("reload_ext", "openhands_jupyter")
    sh.magics = sh.ip.magics_manager.registry["OpenHandsMagics"]
    assert sh.magics.client() is client  # reconfigured, not rebuilt
    assert client.tracker.config.poll_interval == 11.0
    assert client.tracker.budget.per_minute == 30
    assert (
        first.id is None
        or first in client.tracked
        or any(c._tracked is first._tracked for c in client.tracked)
    )
    assert len(client.tracked) == 4  # the panel still knows the earlier conversations
    trackers = [t for t in threading.enumerate() if t.name == "openhands-tracker"]
    assert len(trackers) <= len(threads_before) + 1  # one more at most: this client's
    # another server: the old client is closed and its conversations say so
    sh.magics.base_url = "http://127.0.0.1:9"
    other = sh.magics.client()
    assert other is not client and client.tracker.closed
    eventually(lambda: first.widget.state["untracked_note"] != "", 5)
    sh.magics.base_url = None


def test_a_refused_setting_never_breaks_reloading(
    shell: tuple[Shell, Simulator],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    sh, _sim = shell
    sh.ip.run_cell("%config OpenHandsMagics.max_concurrent = 0")  # refused, and said so
    capsys.readouterr()
    sh.ip.run_line_magic("reload_ext", "openhands_jupyter")
    assert "ignoring %config OpenHandsMagics.max_concurrent" in capsys.readouterr().err
    sh.magics = sh.ip.magics_manager.registry["OpenHandsMagics"]
    assert sh.magics.max_concurrent is None


@pytest.mark.parametrize(
    ("args", "said", "code"),
    [
        (["--repo", "not a repo!"], "is not of the form owner/repo", 2),
        (["--base-url", "http://10.1.2.3:3000"], "pass --allow-insecure", 2),
        (["--base-url", "http://127.0.0.1:9"], "Cannot connect to http://127.0.0.1:9", 1),
        (["--speed", "0"], "--speed must be more than 0", 2),
    ],
)
def test_the_demo_says_what_is_wrong_in_one_line(
    args: list[str], said: str, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENHANDS_API_KEY", raising=False)
    monkeypatch.delenv("OPENHANDS_BASE_URL", raising=False)
    out = subprocess.run(
        [sys.executable, "-m", "openhands_jupyter.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == code, out
    assert out.stderr.count("\n") == 1 and said in out.stderr, out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_the_demo_help_is_plain_text() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "openhands_jupyter.cli", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    assert "``" not in out.stdout
    assert "--allow-insecure" in out.stdout and "--base-url" in out.stdout


def test_a_reattached_conversation_has_a_name_in_its_progress_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Simulator(speed=SPEED) as sim:
        with OpenHands(None, sim.url, progress=False) as first:
            cid = first.start("Name me").wait(timeout=30).id
        capsys.readouterr()
        printed: list[str] = []

        def said() -> bool:
            printed.extend(capsys.readouterr().out.splitlines())
            return any("finished" in line for line in printed)

        with OpenHands(None, sim.url, progress=True) as again:
            again.get(cid)  # type: ignore[arg-type]
            eventually(said, 10)
    lines = [ln for ln in printed if ln.startswith("[openhands]")]
    # named by its title (the server's), not left blank
    assert lines and all(ln.startswith("[openhands] Name me: ") for ln in lines), lines


def test_titles_are_cut_at_a_word() -> None:
    from openhands_jupyter.api.text import shorten
    from openhands_jupyter.sim.scenarios import title_of

    task = "Write a Python function that reverses a string, with a pytest test"
    cut = shorten(task, 40)
    assert cut == "Write a Python function that reverses…"
    assert len(cut) <= 40 and not cut.endswith(" a…")
    # the simulator names a conversation after its first message, as the server does
    assert title_of(task) == "Write a Python function that reverses a string…"
    assert title_of("[sim:waiting]") == "Untitled conversation"
    assert "Sim title" not in title_of(task)
