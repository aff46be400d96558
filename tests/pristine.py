"""The quickstart notebook as committed: tests never run a working copy someone has used."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from openhands_jupyter.cli import pristine_notebook

ROOT = Path(__file__).resolve().parent.parent
RELATIVE = "notebooks/quickstart.ipynb"


def quickstart_text() -> str:
    """The committed notebook (``git show HEAD:…``) in a checkout, else the shipped file."""
    if (ROOT / ".git").exists():
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"HEAD:{RELATIVE}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode == 0:
            return shown.stdout
    return pristine_notebook().read_text()


def quickstart() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(quickstart_text())
    return data
