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


def events_from_v1(raw: Any, conversation_id: str | None) -> tuple[list[Event], list[str]]:
    """The events of a list from an agent server that belong to this conversation, and why
    each other item was left out."""
    events: list[Event] = []
    dropped: list[str] = []
    for item in raw if isinstance(raw, list) else []:
        why = foreign(item, conversation_id)
        if why is None:
            event = event_from_v1(item)
            if event is not None:
                events.append(event)
        else:
            dropped.append(why)
    return events, dropped


def events_of(
    raw: Any, conversation_id: str | None, on_drop: Callable[[str], None] | None = None
) -> list[Event]:
    """:func:`events_from_v1`, telling ``on_drop`` why each item left out was."""
    events, dropped = events_from_v1(raw, conversation_id)
    if on_drop is not None:
        for why in dropped:
            on_drop(why)
    return events


def foreign(frame: Any, conversation_id: str | None) -> str | None:
    """Why an event from an agent server does not belong in this conversation's feed (not an
    object, no kind, or another conversation's), else ``None``."""
    if not isinstance(frame, dict):
        return "not an event"
    kind = frame.get("kind")
    if not isinstance(kind, str) or not kind:
        return "no kind"
    mine = (conversation_id or "").replace("-", "").lower()
    named = [frame.get("conversation_id")]
    if kind == "ConversationStateUpdateEvent" and frame.get("key") == "full_state":
        value = frame.get("value")
        named.append(value.get("id") if isinstance(value, dict) else None)
    for other in named:
        if other is None:
            continue
        if not isinstance(other, str) or (mine and other.replace("-", "").lower() != mine):
            return "another conversation's"
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _field_str(data: dict[str, Any], name: str) -> str | None:
    """A text field of a record: absent or null is ``None``; any other type makes the record
    unreadable, naming the field."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnreadableRecordError(name, _str(data.get("id")) or _str(data.get("conversation_id")))
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
        raise UnreadableRecordError(name, _str(data.get("id")) or _str(data.get("conversation_id")))
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
            detail=_str(data.get("detail")),
            app_conversation_id=lenient_id(data.get("app_conversation_id")),
            sandbox_id=_str(data.get("sandbox_id")),
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


#: event types that are bookkeeping, not activity: kept out of feeds and ``events()`` (a
#: ``risk`` event is a security analyzer's verdict, shown beside the actions it rates)
HIDDEN_TYPES = frozenset({"stats", "ack", "risk"})

#: what the user can do about an error, by its ``classification`` (agent servers since 1.58)
_USER_ACTIONS = {
    "settings": "check the LLM settings on the server (model, API key, quota)",
    "retry": "this may pass: send a follow-up or Resume to try again",
}


def _what_to_do(data: dict[str, Any], text: str) -> str:
    """An error's text with what the server says the user can do about it."""
    classification = _dict(data.get("classification"))
    action = _USER_ACTIONS.get(str(classification.get("user_action") or ""))
    if not action:
        return text
    if classification.get("kind") == "auth" and action is _USER_ACTIONS["settings"]:
        action = "check the LLM API key in the server's settings"
    return f"{text} (What to do: {action}.)"


def risks_of(event: Event) -> dict[str, str]:
    """The risk a security analyzer gave each action, by action id (a ``risk`` event)."""
    if event.type != "risk":
        return {}
    risks = _dict(event.raw.get("risks"))
    return {str(k): str(v).upper() for k, v in risks.items() if isinstance(v, str)}


def _parts_text(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    return "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("text"))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _code(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _v1_action(data: dict[str, Any], base: dict[str, Any]) -> Event:
    action = _dict(data.get("action"))
    akind = str(action.get("kind") or "")
    tool = str(data.get("tool_name") or "")
    command = str(action.get("command") or "")
    if tool == "finish" or akind == "FinishAction":
        return Event(type="finish", text=str(action.get("message") or ""), **base)
    if tool == "task_tracker" or akind.startswith("TaskTracker"):
        tasks = action.get("task_list")
        count = f" ({len(tasks)} tasks)" if isinstance(tasks, list) and tasks else ""
        return Event(type="plan", text=f"{command or 'plan'}{count}", **base)
    if (
        akind.startswith(("FileEditor", "StrReplace"))
        or tool == "file_editor"
        or action.get("path")
    ):
        path = str(action.get("path") or "")
        if command == "view":
            return Event(type="read", text=f"view {path}".strip(), **base)
        return Event(type="edit", text=f"{command or 'edit'} {path}".strip(), **base)
    if akind in ("TerminalAction", "ExecuteBashAction", "CmdRunAction") or tool in (
        "terminal",
        "execute_bash",
    ):
        return Event(type="command", text=command, **base)
    summary = data.get("summary") or _parts_text(data.get("thought")) or tool or akind
    return Event(type="action", text=str(summary), **base)


def event_from_v1(data: dict[str, Any]) -> Event | None:
    """Normalise a V1 event (app server or agent server); ``None`` for kinds not worth showing.
    It is read from a bounded copy (see :func:`scrub`)."""
    if not isinstance(data, dict):
        return None
    data = scrub(data)
    kind = _str(data.get("kind")) or ""
    source = _str(data.get("source")) or ""
    base: dict[str, Any] = {
        "id": _str(data.get("id")) or "",
        "source": source,
        "timestamp": parse_time(data.get("timestamp")),
        "kind": kind,
        "raw": data,
    }
    if kind == "MessageEvent":
        message = _dict(data.get("llm_message"))
        return Event(type="message", text=_parts_text(message.get("content")), **base)
    if kind == "ActionEvent":
        return _v1_action(data, base)
    if kind == "ObservationEvent":
        obs = _dict(data.get("observation"))
        okind = str(obs.get("kind") or "")
        # these answer an action but are not worth showing: kept (hidden) to match it
        if data.get("tool_name") in ("finish", "task_tracker") or okind in (
            "FinishObservation",
            "TaskTrackerObservation",
        ):
            return Event(type="ack", text="", **base)
        if data.get("tool_name") == "file_editor" and not obs.get("is_error"):
            return Event(type="ack", text="", **base)  # the edit is shown, not its echo
        code = _code(obs.get("exit_code"))
        error = bool(obs.get("is_error"))
        return Event(
            type="error" if error and code is None else "output",
            text=_parts_text(obs.get("content")),
            exit_code=code,
            timed_out=code == -1 or obs.get("timeout") is True,
            **base,
        )
    if kind == "ConversationStateUpdateEvent":
        key = data.get("key")
        if key == "execution_status":
            return Event(type="state", text=str(data.get("value") or ""), **base)
        if key == "stats":
            return Event(type="stats", text="", usage=usage_from_stats(data.get("value")), **base)
        if key == "full_state":
            state = _dict(data.get("value")).get("execution_status")
            if isinstance(state, str) and state:
                return Event(type="state", text=state, **{**base, "kind": "full_state"})
        return None
    if kind == "UserRejectObservation":
        reason = str(data.get("rejection_reason") or "rejected")
        return Event(type="rejected", text=reason, **base)
    if kind == "AgentErrorEvent":
        return Event(type="error", text=_what_to_do(data, str(data.get("error") or "")), **base)
    if kind in ("ConversationErrorEvent", "ServerErrorEvent"):
        text = str(data.get("detail") or data.get("code") or kind)
        return Event(type="error", text=_what_to_do(data, text), **base)
    if kind == "SecurityAnalysisEvent":
        return Event(type="risk", text=str(data.get("analyzer") or ""), **base)
    if kind in ("PauseEvent", "InterruptEvent"):
        return Event(type="state", text="paused" if kind == "PauseEvent" else "interrupted", **base)
    return None


def event_from_v0(data: dict[str, Any]) -> Event | None:
    """Normalise a V0 event; ``None`` for kinds that are not worth showing."""
    base: dict[str, Any] = {
        "id": str(data.get("id", "")),
        "source": str(data.get("source") or ""),
        "timestamp": parse_time(data.get("timestamp")),
        "raw": scrub(data),
    }
    args = _dict(data.get("args"))
    extras = _dict(data.get("extras"))
    action = data.get("action")
    observation = data.get("observation")
    if action:
        kind = f"action:{action}"
        if action == "finish":
            text = args.get("final_thought") or data.get("message") or ""
            return Event(type="finish", text=str(text), kind=kind, **base)
        if action == "message":
            text = args.get("content") or data.get("message") or ""
            return Event(type="message", text=str(text), kind=kind, **base)
        if action == "run":
            return Event(type="command", text=str(args.get("command") or ""), kind=kind, **base)
        if action == "read":
            return Event(type="read", text=f"view {args.get('path', '')}", kind=kind, **base)
        if action in ("edit", "write"):
            if args.get("command") == "view":
                return Event(type="read", text=f"view {args.get('path', '')}", kind=kind, **base)
            return Event(type="edit", text=f"{action} {args.get('path', '')}", kind=kind, **base)
        if action == "task_tracking":
            return Event(type="plan", text=str(args.get("command") or "plan"), kind=kind, **base)
        if action in ("system", "change_agent_state", "recall"):
            return None
        return Event(type="action", text=str(data.get("message") or action), kind=kind, **base)
    if observation:
        kind = f"observation:{observation}"
        if observation == "agent_state_changed":
            return Event(type="state", text=str(extras.get("agent_state") or ""), kind=kind, **base)
        if observation == "run":
            metadata = _dict(extras.get("metadata"))
            code = _code(metadata.get("exit_code"))
            if code is None:
                code = _code(extras.get("exit_code"))
            return Event(
                type="output",
                text=str(data.get("content") or ""),
                exit_code=code,
                timed_out=code == -1,
                kind=kind,
                **base,
            )
        if observation == "error":
            return Event(type="error", text=str(data.get("content") or ""), kind=kind, **base)
        return None
    return None
