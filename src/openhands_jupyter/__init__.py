"""Drive the OpenHands coding agent from Jupyter: ``%load_ext openhands_jupyter``."""

from __future__ import annotations

from typing import Any

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
    ServerError,
    UnsupportedError,
)
from .api.models import Event
from .client import AsyncOpenHands, OpenHands
from .conversation import Conversation

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%openhands`` and ``%%openhands`` (``%load_ext openhands_jupyter``)."""
    from .ui.magic import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str) -> Any:
    if name == "Panel":
        from .ui.panel import Panel

        return Panel
    if name == "ConversationWidget":
        from .ui.widget import ConversationWidget

        return ConversationWidget
    raise AttributeError(name)


__all__ = [
    "APIConnectionError",
    "AsyncOpenHands",
    "AuthenticationError",
    "ConcurrencyLimitError",
    "ConflictError",
    "Conversation",
    "Event",
    "GoneError",
    "InputError",
    "InvalidResponseError",
    "NotFoundError",
    "OpenHands",
    "OpenHandsError",
    "RateLimitError",
    "ServerError",
    "UnsupportedError",
    "__version__",
    "load_ipython_extension",
]
