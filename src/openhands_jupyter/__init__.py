"""Drive the OpenHands coding agent from Jupyter: ``%load_ext openhands_jupyter``."""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api.errors import (
        APIConnectionError,
        AuthenticationError,
        ConcurrencyLimitError,
        ConflictError,
        GoneError,
        InputError,
        InvalidResponseError,
        NotFoundError,
        OpenHandsError,
        RateLimitError,
        RunCapacityError,
        ServerError,
        UnsupportedError,
    )
    from .api.models import Event
    from .handles.blocking import OpenHands
    from .handles.client import AsyncOpenHands
    from .handles.conversation import Conversation
    from .handles.files import ChangesCappedWarning
    from .ui.panel import Panel
    from .ui.widget import ConversationWidget

# Names load on first use, so that ``%load_ext`` stays light.
_LAZY = {
    **dict.fromkeys(
        [
            "APIConnectionError",
            "AuthenticationError",
            "ConcurrencyLimitError",
            "ConflictError",
            "GoneError",
            "InputError",
            "InvalidResponseError",
            "NotFoundError",
            "OpenHandsError",
            "RateLimitError",
            "RunCapacityError",
            "ServerError",
            "UnsupportedError",
        ],
        ".api.errors",
    ),
    "Event": ".api.models",
    "AsyncOpenHands": ".handles.client",
    "OpenHands": ".handles.blocking",
    "Conversation": ".handles.conversation",
    "ChangesCappedWarning": ".handles.files",
    "Panel": ".ui.panel",
    "ConversationWidget": ".ui.widget",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'openhands_jupyter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%openhands`` and ``%%openhands`` (``%load_ext openhands_jupyter``)."""
    from .ui.magic import load_ipython_extension as load

    load(ipython)


__all__ = [
    "APIConnectionError",
    "AsyncOpenHands",
    "AuthenticationError",
    "ChangesCappedWarning",
    "ConcurrencyLimitError",
    "ConflictError",
    "Conversation",
    "ConversationWidget",
    "Event",
    "GoneError",
    "InputError",
    "InvalidResponseError",
    "NotFoundError",
    "OpenHands",
    "OpenHandsError",
    "Panel",
    "RateLimitError",
    "RunCapacityError",
    "ServerError",
    "UnsupportedError",
    "__version__",
    "load_ipython_extension",
]


def _show_sets_as_tables() -> None:
    """In IPython, ``oh.map``'s conversations show as their live table (without
    ``%load_ext`` too); nothing is imported for it outside IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    shell.display_formatter.ipython_display_formatter.for_type_by_name(
        "openhands_jupyter.handles.fanout", "ConversationSet", _show_set
    )


def _show_set(conversations: Any) -> None:
    from .ui.fanout import show

    show(conversations)


_show_sets_as_tables()
