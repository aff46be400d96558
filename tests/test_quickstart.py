"""The quickstart notebook runs top to bottom offline, in a real kernel."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from openhands_jupyter.sim import finish_message

pytestmark = pytest.mark.kernel
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


def test_quickstart_runs_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENHANDS_API_KEY", "OPENHANDS_BASE_URL", "OPENHANDS_SESSION_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
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
    assert "This conversation:" in joined
    assert os.environ.get("OPENHANDS_BASE_URL") is None
