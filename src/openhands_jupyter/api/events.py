"""Agent events read from server JSON, V1 and V0, into one :class:`Event` form; which items
of a list belong to a conversation; the newest page of a newest-first read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .ids import parse_time
from .models import PLAN_STATUSES, Event, PlanItem, nonempty_str, scrub, usage_from_stats


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


def plan_of(event: Event) -> tuple[PlanItem, ...] | None:
    """The agent's whole task list as an event carries it (the task tracker's ``plan``, or
    its answer, which holds the list after any command); ``None`` when it carries none."""
    raw = event.raw or {}
    if raw.get("kind") == "ObservationEvent":
        obs = _dict(raw.get("observation"))
        tracker = raw.get("tool_name") == "task_tracker" or str(obs.get("kind", "")).startswith(
            "TaskTracker"
        )
        if not tracker or obs.get("is_error"):
            return None
        tasks = obs.get("task_list")
    elif event.type == "plan":
        # V1 keeps the tool's arguments in ``action``, V0 in ``args``
        action = _dict(raw.get("action")) or _dict(raw.get("args"))
        if str(action.get("command") or "plan") != "plan":
            return None
        tasks = action.get("task_list")
    else:
        return None
    if not isinstance(tasks, list):
        return None
    items = []
    for task in tasks:
        task = _dict(task)
        status = str(task.get("status") or "todo")
        items.append(
            PlanItem(
                title=str(task.get("title") or ""),
                status=status if status in PLAN_STATUSES else "todo",
                notes=str(task.get("notes") or ""),
            )
        )
    return tuple(items)


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
    kind = nonempty_str(data.get("kind")) or ""
    source = nonempty_str(data.get("source")) or ""
    base: dict[str, Any] = {
        "id": nonempty_str(data.get("id")) or "",
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


def oldest_first(
    newest_first: list[dict[str, Any]], more: object, on_cut: Callable[[str], None] | None
) -> list[dict[str, Any]]:
    """A newest-first page turned oldest first. When ``more`` says older items were left
    out, ``on_cut`` is given the oldest timestamp the page holds (where a feed read from it
    begins)."""
    stamp = newest_first[-1].get("timestamp") if newest_first else None
    if more and on_cut is not None and isinstance(stamp, str):
        on_cut(stamp)
    return list(reversed(newest_first))
