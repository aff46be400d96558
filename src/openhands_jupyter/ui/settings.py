"""Non-secret defaults from the nearest pyproject.toml's ``[tool.openhands-jupyter]`` table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ALLOWED = {
    "base_url": str,
    "api_version": str,
    "poll_interval": float,
    "budget_per_minute": int,
    "default_repository": str,
    "default_branch": str,
    "max_concurrent": int,
    "max_cost": float,
}
SECRET_NAMES = ("api_key", "session_api_key", "token", "key")


def find_pyproject(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_defaults(start: Path | None = None) -> tuple[dict[str, Any], list[str], Path | None]:
    """Return (settings, warnings, path). Unknown keys and secrets are ignored with a warning."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

    path = find_pyproject(start)
    if path is None:
        return {}, [], None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return {}, [f"{path}: cannot read it ({exc})"], path
    table = data.get("tool", {}).get("openhands-jupyter", {})
    if not isinstance(table, dict):
        return {}, [], path
    out: dict[str, Any] = {}
    warnings: list[str] = []
    for name, value in table.items():
        if name in SECRET_NAMES or name.endswith("_key"):
            warnings.append(f"{path}: '{name}' ignored: keep secrets in environment variables")
            continue
        kind = ALLOWED.get(name)
        if kind is None:
            warnings.append(f"{path}: unknown setting '{name}' ignored")
            continue
        try:
            out[name] = kind(value)
        except (TypeError, ValueError):
            warnings.append(f"{path}: '{name}' must be {kind.__name__}, got {value!r}")
    return out, warnings, path
