"""Where the widget's ESM and CSS live: inside the wheel (``static/``) or the source tree's ``js/``."""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).resolve().parent.parent / "static"
_SOURCE = Path(__file__).resolve().parents[3] / "js"


def asset(name: str) -> Path:
    """The path of a front-end file; raises at import time if it is missing."""
    for folder in (_PACKAGED, _SOURCE):
        path = folder / name
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"openhands-jupyter is missing its front-end file {name!r}; reinstall it."
    )
