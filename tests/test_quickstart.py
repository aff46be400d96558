"""The quickstart notebook runs top to bottom offline, in a real kernel."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from openhands_jupyter.cli import lab_command, pristine_notebook
from openhands_jupyter.sim import finish_message

from .pristine import quickstart, quickstart_text
from .support.browser import chromium_page, free_port

pytestmark = pytest.mark.kernel


def test_quickstart_runs_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENHANDS_API_KEY", "OPENHANDS_BASE_URL", "OPENHANDS_SESSION_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    nb = nbformat.reads(quickstart_text(), as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                pytest.fail(f"cell failed: {out['ename']}: {out['evalue']}")
            text.append(out.get("text", "") + str(out.get("data", {}).get("text/plain", "")))
    joined = "\n".join(text)
    assert "using the bundled OpenHands simulator" in joined
    task = "Write a Python function that reverses a string, with a pytest test"
    assert f"status: finished\nanswer: {finish_message(task)}" in joined
    assert f"finished - {finish_message('Also add a type-annotated version')}" in joined
    assert "command  pytest -q tests/test_api.py" in joined
    assert "updated  src/app/api.py  +2 -1" in joined
    assert "+    return fetch_cached(request)  # edit 1" in joined
    assert "cost: $0.0" in joined and "'prompt': " in joined
    # the first action is shown, and how to answer it, before anything approves it
    assert "waiting for you: [LOW risk] terminal: pytest -q tests/test_api.py" in joined
    assert joined.index("waiting for you:") < joined.index("approving:")
    assert "approving: [LOW risk] terminal: pytest -q tests/test_api.py" in joined
    assert "approving: [LOW risk] file_editor: str_replace src/app/api.py" in joined
    assert f"finished - {finish_message('Clean up the build directory')}" in joined
    assert "This conversation:" in joined
    # data in, a result out: the agent got the DataFrame, and its table came back as one
    assert re.search(r"name\s+score\s*\n0\s+alpha\s+1\s*\n1\s+beta\s+2", joined), joined
    shown = [
        str(out.get("data", {}).get("text/markdown", ""))
        for cell in nb.cells
        for out in cell.get("outputs", [])
    ]
    assert any("# Findings" in s and "&lt;img" in s for s in shown)
    assert os.environ.get("OPENHANDS_BASE_URL") is None


def test_the_committed_notebook_carries_no_outputs() -> None:
    nb = quickstart()
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    for cell in code:
        assert cell["outputs"] == [], cell["source"]
        assert cell["execution_count"] is None, cell["source"]
    assert "widgets" not in nb["metadata"]  # no saved widget state either


@pytest.mark.parametrize("root", [True, False])
def test_jupyterlab_is_told_to_allow_root_only_for_root(root: bool, tmp_path: Path) -> None:
    command = lab_command(tmp_path, ["--port", "9"], root=root, browser=False)
    assert ("--allow-root" in command) is root
    assert f"--ServerApp.root_dir={tmp_path}" in command
    assert "--LabApp.default_url=/lab/tree/quickstart.ipynb" in command
    assert command[-2:] == ["--port", "9"]


def _start_quickstart(folder: Path, cwd: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENHANDS_")}
    env.update(JUPYTER_RUNTIME_DIR=str(cwd / "rt"), JUPYTER_CONFIG_DIR=str(cwd / "cfg"))
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "openhands-jupyter"),
            "quickstart",
            "--no-browser",
            "--dir",
            str(folder),
            "--ip",
            "127.0.0.1",
            "--port",
            str(free_port()),
            *extra,
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 90
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"(http://127\.0\.0\.1:\d+/\S+)", line)
        if found:
            return proc, found.group(1)
    proc.kill()
    raise AssertionError("the quickstart printed no URL:\n" + "".join(lines)[-3000:])


def _stop(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest.mark.browser
def test_the_quickstart_command_lands_in_the_notebook(tmp_path: Path) -> None:
    """As written in README (this machine runs it as root): the printed URL opens the notebook,
    and a second run keeps the user's autosaved copy."""
    folder = tmp_path / "qs"
    proc, url = _start_quickstart(folder, tmp_path, "--LabApp.expose_app_in_browser=True")
    try:
        assert "/lab/tree/quickstart.ipynb?token=" in url
        assert (folder / "quickstart.ipynb").read_text() == pristine_notebook().read_text()
        with chromium_page() as page:
            page.goto(url)
            page.wait_for_function(
                "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                " return !!w && !!w.context && w.context.path === 'quickstart.ipynb'; }",
                timeout=60000,
            )
    finally:
        _stop(proc)
    used = folder / "quickstart.ipynb"
    nb = json.loads(used.read_text())
    nb["cells"].append(
        {
            "cell_type": "code",
            "execution_count": 1,
            "id": "mine",
            "metadata": {},
            "outputs": [],
            "source": "print('my work')",
        }
    )
    used.write_text(json.dumps(nb))
    mark = used.read_text()
    proc, url = _start_quickstart(folder, tmp_path)
    _stop(proc)
    assert used.read_text() == mark
