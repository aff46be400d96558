"""The magic in an in-process IPython shell: parsing, configuration, errors and the widget."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from openhands_jupyter.sim import Simulator, finish_message
from openhands_jupyter.ui.magic import OpenHandsMagics
from openhands_jupyter.ui.parsing import fill_fields, split_line
from openhands_jupyter.ui.widget import ConversationWidget

from .conftest import SESSION_KEY, SPEED
from .waiting import eventually


@pytest.fixture(scope="module")
def parser() -> Any:
    return OpenHandsMagics.openhands.parser


HARD_TASKS = [
    "Fix the $PATH handling and `echo $HOME`",
    "Use \"double\" and 'single' quotes",
    "Rename --verbose to --debug in cli.py",
    'Set config = {"a": {1, 2}} and {name}',
    "Übersetze die Fehlermeldung 🚀 — 日本語も",
    "a -- b",
]


@pytest.mark.parametrize("task", HARD_TASKS)
def test_task_text_survives_unchanged(parser: Any, task: str) -> None:
    args, rest = split_line(f"-r octo/app -b dev {task}", parser)
    assert rest == task
    assert (args.repo, args.branch) == ("octo/app", "dev")


def test_every_option(parser: Any) -> None:
    args, rest = split_line(
        '--repo=octo/app --title "My title" --wait --timeout 30 --api-version v0 Do it', parser
    )
    assert (args.repo, args.title, args.wait, args.timeout, args.api_version) == (
        "octo/app",
        "My title",
        True,
        30.0,
        "v0",
    )
    assert rest == "Do it"
    assert split_line("--list", parser)[0].list == 20
    assert split_line("--list 5", parser)[0].list == 5
    assert split_line("--attach abc", parser)[0].attach == "abc"
    assert split_line("--stop abc", parser)[0].stop_id == "abc"
    assert split_line("--panel", parser)[0].panel is True
    assert split_line("--config", parser)[0].config is True
    assert split_line("-- -v is broken", parser)[1] == "-v is broken"
    assert split_line("   plain task  ", parser)[1] == "plain task"


@pytest.mark.parametrize("line", ["--bogus x", "-x task", "--repo", "--timeout soon task"])
def test_bad_options_are_usage_errors(parser: Any, line: str) -> None:
    with pytest.raises(UsageError):
        split_line(line, parser)


def test_fill_fields() -> None:
    ns = {"module_name": "loader.py", "cfg": type("C", (), {"name": "prod"})()}
    text = "Refactor {module_name} for {cfg.name}; keep {unknown} and {{literal}} and {cfg.nope}"
    assert fill_fields(text, ns) == (
        "Refactor loader.py for prod; keep {unknown} and {literal} and {cfg.nope}",
        ["{unknown}", "{cfg.nope}"],
    )


class Shell:
    """An in-process IPython shell with the extension loaded."""

    def __init__(self) -> None:
        self.ip = InteractiveShell.instance()
        self.ip.run_line_magic("load_ext", "openhands_jupyter")
        self.magics: OpenHandsMagics = self.ip.magics_manager.registry["OpenHandsMagics"]

    def line(self, text: str) -> Any:
        return self.ip.run_line_magic("openhands", text)

    def cell(self, line: str, body: str) -> Any:
        return self.ip.run_cell_magic("openhands", line, body)


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Shell, Simulator]]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENHANDS_API_KEY", raising=False)
    with Simulator(speed=SPEED, conversation_session_key=SESSION_KEY) as sim:
        monkeypatch.setenv("OPENHANDS_BASE_URL", sim.url)
        sh = Shell()
        sh.magics._client = None
        sh.magics.time_scale = 1.0 / SPEED
        yield sh, sim
        if sh.magics._client is not None:
            sh.magics._client.close()
            sh.magics._client = None
        for name in (
            "base_url",
            "api_version",
            "poll_interval",
            "budget_per_minute",
            "max_concurrent",
            "sandbox_starts",
            "default_repository",
            "default_branch",
            "max_cost",
            "notify",
        ):
            setattr(sh.magics, name, None)


def test_line_magic_starts_and_returns_the_handle(shell: tuple[Shell, Simulator]) -> None:
    sh, sim = shell
    started = time.monotonic()
    conv = sh.line("-r https://github.com/octo/app.git Fix the failing test")
    assert time.monotonic() - started < 1.0
    assert conv.status in ("starting", "running")
    assert conv.repository == "octo/app"
    assert isinstance(conv.widget, ConversationWidget)
    conv.wait(timeout=20)
    assert conv.result == finish_message("Fix the failing test")
    assert sim.counts["v1.start"] == 1


def test_cell_magic_fills_names(shell: tuple[Shell, Simulator]) -> None:
    sh, _sim = shell
    sh.ip.user_ns["module_name"] = "loader"
    conv = sh.cell("--repo octo/app --branch dev", "Refactor {module_name} and keep {other}.\n")
    assert conv.task == "Refactor loader and keep {other}.\n"
    assert conv.branch == "dev"


def test_expected_failures_print_one_line(
    shell: tuple[Shell, Simulator], capsys: pytest.CaptureFixture[str]
) -> None:
    sh, sim = shell
    assert sh.line("-r not-a-repo Do it") is None
    assert sh.line("   ") is None
    assert sh.line("--attach 0123456789abcdef0123456789abcdef") is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3
    assert "owner/repo" in err[0] and "task is empty" in err[1] and "not found" in err[2]
    assert all(line.startswith("openhands: ") for line in err)
    assert "Traceback" not in "".join(err)
    assert sim.counts["v1.start"] == 0


def test_management_forms(
    shell: tuple[Shell, Simulator], capsys: pytest.CaptureFixture[str]
) -> None:
    sh, sim = shell
    conv = sh.line("Look around [sim:idle]")
    conv.wait(timeout=20)
    assert sh.line("--list 5") is None
    assert sh.line(f"--attach {conv.id}").id == conv.id
    sh.line(f"--stop {conv.id}")
    assert f"Stopping {conv.id}: the server has the request." in capsys.readouterr().out
    # Stop stops this agent on its agent server; the sandbox is not paused
    assert sim.stats.agent_counts["agent.interrupt"] == 1 and sim.counts["v1.pause"] == 0
    sh.line("--panel")
    sh.line("--config")
    out = capsys.readouterr().out
    assert "api_key" in out and "not set" in out and sim.url in out


def test_help_documents_the_grammar() -> None:
    doc = OpenHandsMagics.openhands.__doc__ or ""
    for needle in (
        "%%openhands",
        "--repo",
        "--branch",
        "--wait",
        "--list",
        "--attach",
        "--stop",
        "--panel",
        "--config",
        "{name}",
        "--",
    ):
        assert needle in doc


def test_config_precedence(
    shell: tuple[Shell, Simulator], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sh, sim = shell
    (tmp_path / "pyproject.toml").write_text(
        '[tool.openhands-jupyter]\npoll_interval = 2.5\ndefault_repository = "octo/app"\n'
        'base_url = "http://127.0.0.1:9"\napi_key = "never-read"\nbogus = 1\n'
        "budget_per_minute = 0\n"  # outside its limits: left out, with a warning
    )
    values = sh.magics.effective()
    assert values["poll_interval"] == (2.5, str(tmp_path / "pyproject.toml"))
    assert values["default_repository"][0] == "octo/app"
    assert values["base_url"] == (sim.url, "OPENHANDS_BASE_URL")  # environment beats the file
    assert values["budget_per_minute"] == (60, "default")
    sh.ip.run_line_magic("config", "OpenHandsMagics.poll_interval = 7")
    assert sh.magics.effective()["poll_interval"] == (7.0, "%config")
    assert sh.magics.client().tracker.config.poll_interval == 7.0
    conv = sh.line("Uses the default repository")
    assert conv.repository == "octo/app"
    with pytest.raises(Exception, match="greater than 0"):
        sh.magics.poll_interval = -1
    with pytest.raises(Exception, match="between 1 and 600"):
        sh.magics.budget_per_minute = 0


def test_no_key_on_cloud_says_how(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENHANDS_API_KEY", raising=False)
    monkeypatch.delenv("OPENHANDS_BASE_URL", raising=False)
    sh = Shell()
    sh.magics.base_url = None
    sh.magics._client = None
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "")
    assert sh.line("Fix it") is None
    out = capsys.readouterr().out
    assert "OPENHANDS_API_KEY" in out
    sh.magics.client().close()
    sh.magics._client = None


def _custom(widget: Any, content: dict[str, Any]) -> None:
    widget._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def test_widget_state_and_actions_without_a_kernel(shell: tuple[Shell, Simulator]) -> None:
    sh, sim = shell
    conv = sh.line("Widget check [sim:idle]")
    widget = conv.widget
    conv.wait(timeout=20)
    eventually(lambda: widget.state["status"] == "idle", 5)
    state = widget.get_state()
    assert state["state"]["status"] == "idle"
    assert state["state"]["url"].startswith(sim.url)
    assert "Widget check" in state["state"]["task"]
    assert "feed" not in state  # the feed goes as messages of what is new, not synced whole
    eventually(lambda: any(e["type"] == "message" for e in widget.feed), 5)
    assert SESSION_KEY not in repr(state)
    bundle = widget._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "idle" in data["text/plain"] and "idle" in data["text/html"]

    _custom(widget, {"action": "send", "text": "please continue"})
    assert widget.busy == "send"
    eventually(lambda: not widget.busy, 10)
    assert widget.busy == "" and widget.action_error == ""
    assert sim.counts["v1.send_message"] == 1
    conv.wait(timeout=20)
    eventually(lambda: any(e["type"] == "command" for e in widget.feed), 5)

    # a finished agent has nothing to stop: the widget says so, in one line
    _custom(widget, {"action": "stop"})
    eventually(lambda: widget.action_error, 10)
    assert "no running agent to stop" in widget.action_error and widget.busy == ""
    assert widget.state["status"] == "finished"
    _custom(widget, {"action": "no-such-action"})
    assert widget.busy == ""


def test_confirm_and_cost_cap_from_the_magic_and_its_settings(
    shell: tuple[Shell, Simulator], tmp_path: Path
) -> None:
    sh, sim = shell
    conv = sh.line("--confirm --max-cost 2.5 Fix the failing test")
    assert conv._tracked.request.confirm and conv._tracked.request.max_cost == 2.5
    (tmp_path / "pyproject.toml").write_text("[tool.openhands-jupyter]\nmax_cost = 1.25\n")
    assert sh.magics.effective()["max_cost"] == (1.25, str(tmp_path / "pyproject.toml"))
    assert sh.line("Capped by the file")._tracked.request.max_cost == 1.25
    sh.ip.run_line_magic("config", "OpenHandsMagics.max_cost = 0.5")
    assert sh.line("Capped by %config")._tracked.request.max_cost == 0.5
    with pytest.raises(Exception, match="greater than 0"):
        sh.magics.max_cost = -1
    starts = sim.counts["v1.start"]
    assert sh.line("--max-cost lots Fix it") is None  # one line on stderr, nothing sent
    assert sim.counts["v1.start"] == starts


def test_with_sends_variables_and_files_first(
    shell: tuple[Shell, Simulator], capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    sh, sim = shell
    Path("notes.txt").write_text("remember the units\n")
    sh.ip.user_ns["scores"] = pd.DataFrame({"score": [1, 2, 3]})
    conv = sh.cell("--with scores,notes.txt", "Plot the scores")
    conv.wait(timeout=30)
    task = sim.world.conversations[conv.id].task
    assert task.startswith("Plot the scores\n\nFrom the notebook, in the workspace")
    assert "notebook_data/scores.parquet: the DataFrame `scores` as Parquet, 3 rows" in task
    assert "notebook_data/notes.txt: the file notes.txt (19 bytes)" in task
    # a name that is neither a variable nor a file: said in one line, nothing sent
    before = sum(sim.counts.values())
    assert sh.cell("--with nothing_here", "Never sent") is None
    err = capsys.readouterr().err
    assert "--with nothing_here: no variable or file by that name here." in err
    assert sum(sim.counts.values()) == before


def test_notify_is_off_until_set_and_reaches_the_widget(
    shell: tuple[Shell, Simulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    from openhands_jupyter.settings import effective, flag

    sh, _sim = shell
    assert effective({})["notify"] == (False, "default")
    monkeypatch.setenv("OPENHANDS_NOTIFY", "yes")
    assert effective({})["notify"] == (True, "OPENHANDS_NOTIFY")
    monkeypatch.setenv("OPENHANDS_NOTIFY", "off")
    assert effective({})["notify"] == (False, "OPENHANDS_NOTIFY")
    with pytest.raises(ValueError, match="not a yes or no"):
        flag("maybe")
    sh.ip.run_line_magic("config", "OpenHandsMagics.notify = True")
    conv = sh.line("Tell me")
    assert conv.widget.notify is True
