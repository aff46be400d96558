"""The wheel carries the widget's JS and CSS, and the widgets import from the installed wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_front_end_and_imports_from_it(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = list(tmp_path.glob("openhands_jupyter-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for asset in ("widget.js", "widget.css"):
        assert f"openhands_jupyter/static/{asset}" in names
    assert "openhands_jupyter/py.typed" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import openhands_jupyter, openhands_jupyter.ui.widget as w, openhands_jupyter.ui.panel as p;"
        "print(openhands_jupyter.__file__); print(str(w.ConversationWidget._esm)[:80]);"
        "print(str(p.Panel._esm)[:60])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith(str(site))
    assert "OpenHands widgets" in lines[1]
    assert lines[2] == lines[1][:60]
