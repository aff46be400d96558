"""Every user setting once: type, default, limits, environment variable and help. The magic's
``%config`` traits, pyproject.toml, the environment and the tracker's config all derive from it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from traitlets import Bool, Float, Int, TraitError, TraitType, Unicode
from traitlets.config import Configurable

from .api.errors import InputError
from .constants import CLOUD_URL


def _limit_error(name: str, tags: Mapping[str, Any], value: Any) -> str | None:
    """Why ``value`` is outside the limits in a setting's tags, or ``None``."""
    if value is None:
        return None
    if "above" in tags and not value > tags["above"]:
        return f"{name} must be greater than {tags['above']:g}, got {value!r}"
    least, most = tags.get("least"), tags.get("most")
    if least is not None and most is not None and not least <= value <= most:
        return f"{name} must be between {least} and {most}, got {value!r}"
    if least is not None and value < least:
        return f"{name} must be at least {least}, got {value!r}"
    return None


def _limited(base: type[TraitType[Any, Any]]) -> Any:
    """``base`` (a number trait) held to the limits in its tags."""

    class Limited(base):  # type: ignore[valid-type,misc]
        def validate(self, obj: Any, value: Any) -> Any:
            value = super().validate(obj, value)
            error = _limit_error(self.name or "", self.metadata, value)
            if error:
                raise TraitError(error)
            return value

    Limited.__name__ = Limited.__qualname__ = f"Limited{base.__name__}"
    return Limited


LimitedFloat = _limited(Float)
LimitedInt = _limited(Int)


class Settings(Configurable):
    """The settings, each a trait that is ``None`` until set with ``%config``. Tags:
    ``default`` (in force when nothing sets it), ``env`` (an environment variable that sets
    it), ``pyproject`` (the ``[tool.openhands-jupyter]`` table may set it) and the limits
    ``above``, ``least`` and ``most``."""

    base_url = Unicode(
        None,
        allow_none=True,
        help="OpenHands server (else OPENHANDS_BASE_URL, pyproject.toml, then the Cloud).",
    ).tag(config=True, default=CLOUD_URL, env="OPENHANDS_BASE_URL", pyproject=True)
    api_version = Unicode(None, allow_none=True, help="v1, v0 or auto.").tag(
        config=True, default="auto", env="OPENHANDS_API_VERSION", pyproject=True
    )
    poll_interval = LimitedFloat(
        None, allow_none=True, help="Seconds between polls of a running conversation (default 5)."
    ).tag(config=True, default=5.0, pyproject=True, above=0)
    budget_per_minute = LimitedInt(
        None,
        allow_none=True,
        help="Requests per minute the tracker may spend (default 60, at most 600).",
    ).tag(config=True, default=60, pyproject=True, least=1, most=600)
    max_concurrent = LimitedInt(
        None,
        allow_none=True,
        help="Conversations to run at once before queueing (default: the server decides).",
    ).tag(config=True, default=None, pyproject=True, least=1)
    sandbox_starts = LimitedInt(
        None,
        allow_none=True,
        help="Starts that may wait for a new sandbox at once on a self-hosted server (default "
        "1: its process sandbox gives sandboxes made together one port; OpenHands Cloud: any).",
    ).tag(config=True, default=1, pyproject=True, least=1)
    default_repository = Unicode(
        None, allow_none=True, help="Repository used when --repo is not given."
    ).tag(config=True, default=None, pyproject=True)
    default_branch = Unicode(
        None, allow_none=True, help="Branch used when --branch is not given."
    ).tag(config=True, default=None, pyproject=True)
    max_cost = LimitedFloat(
        None,
        allow_none=True,
        help="Stop each conversation started here once it has cost this many dollars.",
    ).tag(config=True, default=None, pyproject=True, above=0)
    notify = Bool(
        None,
        allow_none=True,
        help="When a conversation ends or waits for you while its notebook's tab is hidden: a "
        "browser notification (the browser asks once) and a mark in the tab's title.",
    ).tag(config=True, default=False, env="OPENHANDS_NOTIFY", pyproject=True)
    time_scale = LimitedFloat(
        1.0, help="Multiply every tracker interval (for simulators and tests)."
    ).tag(config=True, above=0)


def _traits() -> dict[str, TraitType[Any, Any]]:
    """The settings' traits, in the order they are written above (the order shown)."""
    return {name: v for name, v in vars(Settings).items() if isinstance(v, TraitType)}


#: the settings' traits by name
TRAITS = _traits()
#: the settings that can come from %config, the environment or pyproject.toml, and their
#: defaults (time_scale is %config only)
DEFAULTS: dict[str, Any] = {
    name: trait.metadata["default"] for name, trait in TRAITS.items() if "default" in trait.metadata
}
#: setting -> the environment variable that sets it
ENVIRONMENT = {
    name: trait.metadata["env"] for name, trait in TRAITS.items() if "env" in trait.metadata
}


def flag(value: Any) -> bool:
    """A yes or no from the environment (1, true, yes, on / 0, false, no, off) or TOML."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a yes or no: {value!r}")


flag.__name__ = "true or false"


def _kind(trait: TraitType[Any, Any]) -> Callable[[Any], Any]:
    if isinstance(trait, Bool):
        return flag
    return float if isinstance(trait, Float) else int if isinstance(trait, Int) else str


#: how each setting's value is read (from the environment or pyproject.toml)
KINDS: dict[str, Callable[[Any], Any]] = {name: _kind(trait) for name, trait in TRAITS.items()}
#: what pyproject.toml may set
PYPROJECT: dict[str, Callable[[Any], Any]] = {
    name: KINDS[name] for name, trait in TRAITS.items() if trait.metadata.get("pyproject")
}


def setting_error(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be setting ``name`` (its limits), or ``None``."""
    trait = TRAITS.get(name)
    return None if trait is None else _limit_error(name, trait.metadata, value)


def check(name: str, value: Any) -> Any:
    """``value`` if setting ``name`` can take it, else an ``InputError`` that says why."""
    error = setting_error(name, value)
    if error:
        raise InputError(error + ".")
    return value


#: names in pyproject.toml that look like secrets (those belong in environment variables)
SECRET_NAMES = ("api_key", "session_api_key", "token", "key")


def find_pyproject(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_defaults(start: Path | None = None) -> tuple[dict[str, Any], list[str], Path | None]:
    """The nearest pyproject.toml's ``[tool.openhands-jupyter]`` table: (settings, warnings,
    path). Unknown names, secrets and values out of limits are left out, each with a warning."""
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
        kind = PYPROJECT.get(name)
        if kind is None:
            warnings.append(f"{path}: unknown setting '{name}' ignored")
            continue
        try:
            read = kind(value)
        except (TypeError, ValueError):
            warnings.append(f"{path}: '{name}' must be {kind.__name__}, got {value!r}")
            continue
        error = setting_error(name, read)
        if error:
            warnings.append(f"{path}: {error}; ignored")
            continue
        out[name] = read
    return out, warnings, path


def effective(configured: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
    """Every setting with where it came from: %config, environment, pyproject.toml, default."""
    file_values, _warnings, path = read_defaults()
    out: dict[str, tuple[Any, str]] = {}
    for name, default in DEFAULTS.items():
        from_env = from_environment(name)
        if configured.get(name) is not None:
            out[name] = (configured[name], "%config")
        elif from_env is not None:
            out[name] = (KINDS[name](from_env), ENVIRONMENT[name])
        elif name in file_values:
            out[name] = (file_values[name], str(path))
        else:
            out[name] = (default, "default")
    return out


def from_environment(name: str) -> str | None:
    """The environment's value for setting ``name`` (its variable), if set and not empty."""
    env_name = ENVIRONMENT.get(name)
    return (os.environ.get(env_name) or None) if env_name else None
