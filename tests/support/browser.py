"""JupyterLab / Notebook 7 servers on loopback and headless Chromium, for end-to-end tests."""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
#: ``pytestmark`` for every browser test module.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium"),
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_notebook(path: Path, cells: list[str]) -> None:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


class JupyterServer:
    """``jupyter lab`` or ``jupyter notebook`` on a free 127.0.0.1 port with private dirs."""

    def __init__(
        self,
        app: str,
        root: Path,
        env: dict[str, str],
        settings: dict[str, dict[str, Any]] | None = None,
        extra: list[str] | None = None,
    ) -> None:
        self.app = app
        self.root = root
        self.port = free_port()
        self.token = secrets.token_hex(16)
        cfg = root / "cfg"
        for sub in ("cfg", "rt", "ipy", "nb"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.nb_dir = root / "nb"
        for plugin, values in (settings or {}).items():
            package, _, name = plugin.partition(":")
            target = cfg / "lab" / "user-settings" / package / f"{name}.jupyterlab-settings"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        full = {
            **os.environ,
            **env,
            "JUPYTER_CONFIG_DIR": str(cfg),
            "JUPYTER_RUNTIME_DIR": str(root / "rt"),
            "IPYTHONDIR": str(root / "ipy"),
            # the server's notebook signatures and cookie secret
            "JUPYTER_DATA_DIR": str(root / "data"),
        }
        bindir = Path(sys.executable).parent
        subprocess.run(
            [
                str(bindir / "jupyter"),
                "labextension",
                "disable",
                "@jupyterlab/apputils-extension:announcements",
            ],
            env=full,
            capture_output=True,
            check=False,
        )
        self.log = open(root / f"{app}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(bindir / "jupyter"),
                app,
                "--no-browser",
                "--allow-root",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.nb_dir}",
                "--LabApp.expose_app_in_browser=True",
                "--JupyterNotebookApp.expose_app_in_browser=True",
                *(extra or []),
            ],
            env=full,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"{self.base}/api/status?token={self.token}", timeout=1
                ):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"jupyter {app} did not start: {(root / f'{app}.log').read_text()[-2000:]}"
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        if self.app == "lab":
            return f"{self.base}/lab/tree/{name}?token={self.token}&reset"
        return f"{self.base}/notebooks/{name}?token={self.token}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


KERNEL_READY = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected';
}"""


def open_notebook(page: Any, server: JupyterServer, name: str) -> None:
    page.goto(server.url(name))
    page.wait_for_function(KERNEL_READY, timeout=60000)


_RUN_CELL = """async (i) => {
  const app = window.jupyterapp;
  const nb = app.shell.currentWidget.content;
  nb.deselectAll();
  nb.activeCellIndex = i;
  await app.commands.execute('notebook:run-cell');
}"""

#: the cell has run (its count is shown), or the kernel died meanwhile (JupyterLab says so)
_FINISHED = """(i) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[i];
  const p = cell.model.executionCount;
  if (p !== null && p !== undefined) return 'finished';
  const died = [...document.querySelectorAll('.jp-Dialog')].some(
    d => d.innerText.includes('appears to have died'));
  return died ? 'died' : false;
}"""

#: what the page shows of a cell and of the notebook, said when a cell does not finish
_STATE = """(i) => {
  const w = window.jupyterapp.shell.currentWidget;
  const nb = w.content;
  const cell = nb.widgets[i];
  const k = w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  const dialogs = [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText);
  return {
    source: cell.model.sharedModel.getSource(),
    shown: cell.node.innerText,
    active: nb.activeCellIndex,
    selected: nb.widgets.map((c, n) => nb.isSelectedOrActive(c) ? n : -1).filter(n => n >= 0),
    counts: nb.widgets.map(c => c.model.executionCount ?? null),
    kernel: k ? `${k.status}/${k.connectionStatus}` : 'none',
    pending: !!(w.sessionContext && w.sessionContext.pendingInput),
    dialogs,
  };
}"""


def run_cells(page: Any, indices: list[int], timeout: float = 30000) -> None:
    """Run the given cells (in order) through the app's own commands; fail at once, saying
    so, if the kernel dies."""
    for index in indices:
        page.evaluate(_RUN_CELL, index)
        try:
            outcome = page.wait_for_function(_FINISHED, arg=index, timeout=timeout).json_value()
        except Exception as exc:
            outcome, error = "unfinished", exc
        else:
            error = None
        if outcome != "finished":
            # which cell did not finish, what it had printed by then, and the notebook's state
            state = page.evaluate(_STATE, index)
            shown = state.pop("shown")
            said = (
                "the kernel died"
                if outcome == "died"
                else f"it did not finish within {timeout / 1000:g} s"
            )
            raise AssertionError(
                f"cell {index}: {said}: {state.pop('source')[:200]!r}; "
                f"it shows: {shown[-1500:]!r}; {state}"
            ) from error


def click_settled(page: Any, target: Any, timeout: float = 30000) -> None:
    """Click ``target`` as a person does: scrolled into view, then clicked once the page has
    drawn the scroll. (Headless Chromium routes a click made in the same frame as the scroll
    by the layout from before it: with a sandboxed frame on the page the click can land in
    the frame, and the button never hears it.)"""
    target.scroll_into_view_if_needed(timeout=timeout)
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    target.click(timeout=timeout)


_browser_home: Path | None = None


def browser_env() -> dict[str, str]:
    """Chromium's environment: a home of its own (its crash reports and settings would go to
    the user's ``~/.config/chromium``), removed when this process ends."""
    global _browser_home
    if _browser_home is None:
        _browser_home = Path(tempfile.mkdtemp(prefix="ohj-chromium-"))
        atexit.register(shutil.rmtree, _browser_home, True)
    return {
        **os.environ,
        "HOME": str(_browser_home),
        "XDG_CONFIG_HOME": str(_browser_home / ".config"),
        "XDG_CACHE_HOME": str(_browser_home / ".cache"),
    }


def launch_browser(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, env=browser_env()
    )


@contextmanager
def chromium_page(height: int = 900) -> Iterator[Any]:
    """A page 1280 pixels wide in headless Chromium; the browser closes afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": height})
        finally:
            browser.close()


def notify_stub(permission: str = "default") -> str:
    """A page script (``page.add_init_script``) that makes the tab hidden until
    ``window.__hidden`` is set false, and records the notifications shown in
    ``window.__notes`` (``[title, body]`` each); the browser's permission starts as
    ``permission``, and asking grants it."""
    return f"""
window.__notes = [];
window.__hidden = true;
Object.defineProperty(document, "hidden", {{ get: () => window.__hidden, configurable: true }});
window.Notification = class {{
  constructor(title, options) {{ window.__notes.push([title, (options || {{}}).body]); }}
  static requestPermission() {{
    window.Notification.permission = "granted";
    return Promise.resolve("granted");
  }}
}};
window.Notification.permission = {permission!r};
"""
