"""Lenient models parsed from server JSON: start tasks, conversations and normalised events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import status as st
from .errors import InvalidResponseError, UnreadableRecordError
from .ids import lenient_id, parse_time
from .secrets import Secret, as_secret

_SECRET_KEYS = frozenset({"session_api_key", "secrets", "api_key", "llm_api_key"})


#: how deep, and how large, a record from a server may be once read: deeper parts become a
#: mark, longer strings are cut, and past the total every further string is cut short
MAX_DEPTH = 24
MAX_STRING = 64 * 1024
MAX_RECORD = 1024 * 1024
MAX_ITEMS = 2000


class _Budget:
    __slots__ = ("cut", "left")

    def __init__(self) -> None:
        self.left = MAX_RECORD
        self.cut = False


def scrub(value: Any) -> Any:
    """A bounded deep copy of a JSON value with every secret-bearing key masked: at most
    ``MAX_DEPTH`` levels, ``MAX_STRING`` characters a string, ``MAX_ITEMS`` items a list or
    object and about ``MAX_RECORD`` characters in all (a record nested 950 levels deep, or
    15 MB of output, is kept as a bounded copy: never a ``RecursionError``, never the whole)."""
    return _scrub(value, 0, _Budget())


def _scrub(value: Any, depth: int, budget: _Budget) -> Any:
    if isinstance(value, str):
        limit = min(MAX_STRING, max(0, budget.left))
        budget.left -= min(len(value), limit)
        if len(value) > limit:
            budget.cut = True
            return value[:limit] + f"… ({len(value) - limit:,} more characters left out)"
        return value
    if not isinstance(value, (dict, list)):
        return value
    if depth >= MAX_DEPTH:
        budget.cut = True
        return "… (nested too deep)"
    if isinstance(value, dict):
        items = list(value.items())[:MAX_ITEMS]
        budget.cut |= len(value) > MAX_ITEMS
        return {
            k: ("***" if k in _SECRET_KEYS and v else _scrub(v, depth + 1, budget))
            for k, v in items
            if isinstance(k, str)
        }
    budget.cut |= len(value) > MAX_ITEMS
    return [_scrub(v, depth + 1, budget) for v in value[:MAX_ITEMS]]


def nonempty_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _field_str(data: dict[str, Any], name: str) -> str | None:
    """A text field of a record: absent or null is ``None``; any other type makes the record
    unreadable, naming the field."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnreadableRecordError(
            name, nonempty_str(data.get("id")) or nonempty_str(data.get("conversation_id"))
        )
    return value


def _field_ints(data: dict[str, Any], name: str) -> tuple[int, ...]:
    """A list of whole numbers (PR numbers): absent or null is empty; anything else that is not
    a list of numbers makes the record unreadable."""
    value = data.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise UnreadableRecordError(
            name, nonempty_str(data.get("id")) or nonempty_str(data.get("conversation_id"))
        )
    return tuple(value)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Usage:
    """What a conversation's LLM calls cost: dollars and tokens (``None`` where unknown)."""

    cost: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @classmethod
    def from_metrics(cls, metrics: Any) -> Usage | None:
        """From a metrics object (``accumulated_cost``, ``accumulated_token_usage``)."""
        if not isinstance(metrics, dict):
            return None
        tokens = metrics.get("accumulated_token_usage")
        tokens = tokens if isinstance(tokens, dict) else {}
        prompt = _num(tokens.get("prompt_tokens"))
        completion = _num(tokens.get("completion_tokens"))
        return cls(
            cost=_num(metrics.get("accumulated_cost")),
            prompt_tokens=int(prompt) if prompt is not None else None,
            completion_tokens=int(completion) if completion is not None else None,
        )

    @property
    def empty(self) -> bool:
        """Nothing counted yet (a server may report zeros while the run cost money)."""
        return not self.cost and not self.prompt_tokens and not self.completion_tokens


def usage_from_stats(value: Any) -> Usage | None:
    """What every LLM of the conversation used, from a ``stats`` state update: the sum over
    ``usage_to_metrics`` (the agent's, a condenser's, any other the server reports)."""
    if not isinstance(value, dict):
        return None
    per_usage = value.get("usage_to_metrics")
    if not isinstance(per_usage, dict):
        return None
    found = [u for u in (Usage.from_metrics(m) for m in per_usage.values()) if u is not None]
    if not found:
        return None

    def total(values: list[Any]) -> Any:
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    return Usage(
        cost=total([u.cost for u in found]),
        prompt_tokens=total([u.prompt_tokens for u in found]),
        completion_tokens=total([u.completion_tokens for u in found]),
    )


@dataclass(frozen=True)
class StartTask:
    """A V1 start task (or the V0 create answer, which is ready at once)."""

    id: str
    status: str
    detail: str | None = None
    app_conversation_id: str | None = None
    sandbox_id: str | None = None
    created_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ready(self) -> bool:
        return self.status == st.START_PHASES_READY

    @property
    def failed(self) -> bool:
        return self.status == st.START_PHASES_ERROR

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StartTask:
        return cls(
            id=lenient_id(data.get("id")) or "",
            status=str(data.get("status") or "WORKING").upper(),
            detail=nonempty_str(data.get("detail")),
            app_conversation_id=lenient_id(data.get("app_conversation_id")),
            sandbox_id=nonempty_str(data.get("sandbox_id")),
            created_at=parse_time(data.get("created_at")),
            raw=scrub(data),
        )


@dataclass(frozen=True)
class ConversationInfo:
    """One conversation as the server last described it, with the status already mapped."""

    id: str
    status: str
    title: str | None = None
    repository: str | None = None
    branch: str | None = None
    sandbox_id: str | None = None
    sandbox_status: str | None = None
    execution_status: str | None = None
    conversation_url: str | None = None
    session_api_key: Secret | None = field(default=None, repr=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    usage: Usage | None = None
    pr_numbers: tuple[int, ...] = ()
    state_marker: str | None = None
    """Changes whenever the server records a new agent state (V1 ``updated_at``, V0 the id of
    the newest state event): evidence that a run happened, with no clock involved."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    unreadable: str | None = None
    """Why this record could not be read (a field of the wrong type); nothing else in it is
    known. Only this conversation is affected."""

    @classmethod
    def read(
        cls,
        conversation_id: str | None,
        reader: Callable[..., ConversationInfo],
        *args: Any,
        **kwargs: Any,
    ) -> ConversationInfo:
        """``reader(*args, **kwargs)``, or a record that says why it could not be read."""
        try:
            return reader(*args, **kwargs)
        except UnreadableRecordError as exc:
            return cls(id=conversation_id or "", status="unknown", unreadable=str(exc))

    def readable(self) -> ConversationInfo:
        """This record, or the error that says why it could not be read."""
        if self.unreadable:
            raise InvalidResponseError(self.unreadable)
        return self

    @property
    def cost(self) -> float | None:
        return self.usage.cost if self.usage else None

    @classmethod
    def from_v1(cls, data: dict[str, Any], has_run: bool = False) -> ConversationInfo:
        """Read one V1 record; a field of the wrong type raises UnreadableRecordError."""
        sandbox_status = _field_str(data, "sandbox_status")
        execution_status = _field_str(data, "execution_status")
        return cls(
            id=lenient_id(_field_str(data, "id")) or "",
            status=st.v1_status(sandbox_status, execution_status, has_run),
            title=_field_str(data, "title"),
            repository=_field_str(data, "selected_repository"),
            branch=_field_str(data, "selected_branch"),
            sandbox_id=_field_str(data, "sandbox_id"),
            sandbox_status=sandbox_status,
            execution_status=execution_status,
            conversation_url=_field_str(data, "conversation_url"),
            session_api_key=as_secret(_field_str(data, "session_api_key")),
            created_at=parse_time(_field_str(data, "created_at")),
            updated_at=parse_time(_field_str(data, "updated_at")),
            usage=Usage.from_metrics(data.get("metrics")),
            pr_numbers=_field_ints(data, "pr_number"),
            state_marker=_field_str(data, "updated_at"),
            raw=scrub(data),
        )

    @classmethod
    def from_v0(
        cls, data: dict[str, Any], agent_state: str | None, state_marker: str | None = None
    ) -> ConversationInfo:
        """Read one V0 record; a field of the wrong type raises UnreadableRecordError."""
        status = _field_str(data, "status")
        return cls(
            id=lenient_id(_field_str(data, "conversation_id")) or "",
            status=st.v0_status(status, agent_state),
            title=_field_str(data, "title"),
            repository=_field_str(data, "selected_repository"),
            branch=_field_str(data, "selected_branch"),
            sandbox_status=status,
            execution_status=agent_state,
            conversation_url=_field_str(data, "url"),
            session_api_key=as_secret(_field_str(data, "session_api_key")),
            created_at=parse_time(_field_str(data, "created_at")),
            updated_at=parse_time(_field_str(data, "last_updated_at")),
            pr_numbers=_field_ints(data, "pr_number"),
            state_marker=state_marker,
            raw=scrub(data),
        )


@dataclass(frozen=True)
class Event:
    """One agent event in a form both API generations share.

    ``type`` is one of ``message``, ``command``, ``output``, ``edit``, ``read``, ``plan``,
    ``finish``, ``state``, ``error``, ``action``, ``stats`` or ``other``; ``text`` is plain text for
    display. ``timestamp`` is the server's own clock: naive when the server sent no zone, so
    it orders events but says nothing about how long ago they happened.
    """

    id: str
    type: str
    source: str
    text: str
    timestamp: datetime | None = None
    exit_code: int | None = None
    kind: str = ""
    timed_out: bool = False
    usage: Usage | None = field(default=None, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A small JSON-safe form for widgets."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "text": self.text[:4000],
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "time": self.timestamp.isoformat() if self.timestamp else None,
        }


#: the statuses of a task in the agent's plan, in order
PLAN_STATUSES = ("todo", "in_progress", "done")


@dataclass(frozen=True)
class PlanItem:
    """One task of the agent's plan (its task tracker's list): ``status`` is ``todo``,
    ``in_progress`` or ``done``."""

    title: str
    status: str = "todo"
    notes: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"title": self.title, "status": self.status, "notes": self.notes}


#: event types that are bookkeeping, not activity: kept out of feeds and ``events()`` (a
#: ``risk`` event is a security analyzer's verdict, shown beside the actions it rates)
HIDDEN_TYPES = frozenset({"stats", "ack", "risk"})
