"""Lenient models parsed from server JSON: start tasks, conversations and normalised events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import status as st
from .ids import lenient_id, parse_time
from .secrets import Secret, as_secret

_SECRET_KEYS = frozenset({"session_api_key", "secrets", "api_key", "llm_api_key"})


def scrub(value: Any) -> Any:
    """A deep copy of a JSON value with every secret-bearing key masked."""
    if isinstance(value, dict):
        return {k: ("***" if k in _SECRET_KEYS and v else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


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
    cost: float | None = None
    pr_numbers: tuple[int, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_v1(cls, data: dict[str, Any], has_run: bool = False) -> ConversationInfo:
        metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
        cost = metrics.get("accumulated_cost") if metrics else None
        prs = data.get("pr_number") or []
        created = parse_time(data.get("created_at"))
        if not has_run and created is not None:
            has_run = (datetime.now(timezone.utc) - created).total_seconds() > 300
        return cls(
            id=lenient_id(data.get("id")) or "",
            status=st.v1_status(data.get("sandbox_status"), data.get("execution_status"), has_run),
            title=_str(data.get("title")),
            repository=_str(data.get("selected_repository")),
            branch=_str(data.get("selected_branch")),
            sandbox_id=_str(data.get("sandbox_id")),
            sandbox_status=_str(data.get("sandbox_status")),
            execution_status=_str(data.get("execution_status")),
            conversation_url=_str(data.get("conversation_url")),
            session_api_key=as_secret(_str(data.get("session_api_key"))),
            created_at=created,
            updated_at=parse_time(data.get("updated_at")),
            cost=float(cost) if isinstance(cost, (int, float)) else None,
            pr_numbers=tuple(int(p) for p in prs if isinstance(p, int)),
            raw=scrub(data),
        )

    @classmethod
    def from_v0(cls, data: dict[str, Any], agent_state: str | None) -> ConversationInfo:
        cost = data.get("accumulated_cost")
        prs = data.get("pr_number") or []
        return cls(
            id=lenient_id(data.get("conversation_id")) or "",
            status=st.v0_status(data.get("status"), agent_state),
            title=_str(data.get("title")),
            repository=_str(data.get("selected_repository")),
            branch=_str(data.get("selected_branch")),
            sandbox_status=_str(data.get("status")),
            execution_status=agent_state,
            conversation_url=_str(data.get("url")),
            session_api_key=as_secret(_str(data.get("session_api_key"))),
            created_at=parse_time(data.get("created_at")),
            updated_at=parse_time(data.get("last_updated_at")),
            cost=float(cost) if isinstance(cost, (int, float)) else None,
            pr_numbers=tuple(int(p) for p in prs if isinstance(p, int)),
            raw=scrub(data),
        )


@dataclass(frozen=True)
class Event:
    """One agent event in a form both API generations share.

    ``type`` is one of ``message``, ``command``, ``output``, ``edit``, ``finish``, ``state``,
    ``error``, ``action`` or ``other``; ``text`` is plain text for display.
    """

    id: str
    type: str
    source: str
    text: str
    timestamp: datetime | None = None
    exit_code: int | None = None
    kind: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A small JSON-safe form for widgets."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "text": self.text[:4000],
            "exit_code": self.exit_code,
            "time": self.timestamp.isoformat() if self.timestamp else None,
        }


def _parts_text(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    return "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("text"))


def event_from_v1(data: dict[str, Any]) -> Event | None:
    """Normalise a V1 event; ``None`` for kinds that are not worth showing."""
    kind = str(data.get("kind") or "")
    source = str(data.get("source") or "")
    base = {
        "id": str(data.get("id") or ""),
        "source": source,
        "timestamp": parse_time(data.get("timestamp")),
        "kind": kind,
        "raw": scrub(data),
    }
    if kind == "MessageEvent":
        message = data.get("llm_message") or {}
        text = _parts_text(message.get("content"))
        return Event(type="message", text=text, **base)
    if kind == "ActionEvent":
        action = data.get("action") or {}
        akind = str(action.get("kind") or "")
        tool = str(data.get("tool_name") or "")
        if tool == "finish" or akind == "FinishAction":
            return Event(type="finish", text=str(action.get("message") or ""), **base)
        if akind.startswith(("FileEditor", "StrReplace")) or action.get("path"):
            verb = str(action.get("command") or "edit")
            return Event(type="edit", text=f"{verb} {action.get('path', '')}".strip(), **base)
        if akind in ("TerminalAction", "ExecuteBashAction", "CmdRunAction") or "command" in action:
            return Event(type="command", text=str(action.get("command") or ""), **base)
        summary = data.get("summary") or _parts_text(data.get("thought")) or tool or akind
        return Event(type="action", text=str(summary), **base)
    if kind == "ObservationEvent":
        obs = data.get("observation") or {}
        okind = str(obs.get("kind") or "")
        if data.get("tool_name") == "finish" or okind == "FinishObservation":
            return None
        code = obs.get("exit_code")
        error = bool(obs.get("is_error"))
        return Event(
            type="error" if error and code is None else "output",
            text=_parts_text(obs.get("content")),
            exit_code=code if isinstance(code, int) else None,
            **base,
        )
    if kind == "ConversationStateUpdateEvent":
        if data.get("key") != "execution_status":
            return None
        return Event(type="state", text=str(data.get("value") or ""), **base)
    if kind == "AgentErrorEvent":
        return Event(type="error", text=str(data.get("error") or ""), **base)
    if kind in ("ConversationErrorEvent", "ServerErrorEvent"):
        text = str(data.get("detail") or data.get("code") or kind)
        return Event(type="error", text=text, **base)
    if kind in ("PauseEvent", "InterruptEvent"):
        return Event(type="state", text="paused" if kind == "PauseEvent" else "interrupted", **base)
    return None


def event_from_v0(data: dict[str, Any]) -> Event | None:
    """Normalise a V0 event; ``None`` for kinds that are not worth showing."""
    base = {
        "id": str(data.get("id", "")),
        "source": str(data.get("source") or ""),
        "timestamp": parse_time(data.get("timestamp")),
        "raw": scrub(data),
    }
    args = data.get("args") or {}
    extras = data.get("extras") or {}
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
        if action in ("edit", "write"):
            return Event(type="edit", text=f"{action} {args.get('path', '')}", kind=kind, **base)
        if action in ("system", "change_agent_state", "recall"):
            return None
        return Event(type="action", text=str(data.get("message") or action), kind=kind, **base)
    if observation:
        kind = f"observation:{observation}"
        if observation == "agent_state_changed":
            return Event(type="state", text=str(extras.get("agent_state") or ""), kind=kind, **base)
        if observation == "run":
            code = extras.get("exit_code")
            return Event(
                type="output",
                text=str(data.get("content") or ""),
                exit_code=code if isinstance(code, int) else None,
                kind=kind,
                **base,
            )
        if observation == "error":
            return Event(type="error", text=str(data.get("content") or ""), kind=kind, **base)
        return None
    return None


def final_answer(events: list[Event]) -> str | None:
    """The last finish message, else the last agent message (the SDK's rule)."""
    for event in reversed(events):
        if event.type == "finish" and event.text:
            return event.text
    for event in reversed(events):
        if event.type == "message" and event.source == "agent" and event.text:
            return event.text
    return None
