"""Transport, models, errors and the V1/V0 backends: everything that speaks HTTP to OpenHands."""

from .backend import Backend, EventCursor, StartRequest
from .errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
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
from .models import ConversationInfo, Event, StartTask
from .secrets import Secret
from .transport import Transport

__all__ = [
    "APIConnectionError",
    "AuthenticationError",
    "Backend",
    "BadRequestError",
    "ConcurrencyLimitError",
    "ConflictError",
    "ConversationInfo",
    "Event",
    "EventCursor",
    "GoneError",
    "InputError",
    "InvalidResponseError",
    "NotFoundError",
    "OpenHandsError",
    "RateLimitError",
    "RunCapacityError",
    "Secret",
    "ServerError",
    "StartRequest",
    "StartTask",
    "Transport",
    "UnsupportedError",
]
