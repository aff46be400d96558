"""How simulated events look on the wire: V1 event objects and V0 action/observation dicts."""

from __future__ import annotations

import json
from typing import Any

from .world import SimConversation, SimEvent

_V0_STATE = {
    "running": "running",
    "finished": "finished",
    "error": "error",
    "stuck": "error",
    "idle": "awaiting_user_input",
    "paused": "paused",
    "waiting_for_confirmation": "awaiting_user_confirmation",
}


def _stamp(event: SimEvent) -> str:
    return event.at.replace(tzinfo=None).isoformat(timespec="microseconds")


def v1_events(conv: SimConversation, event: SimEvent) -> list[dict[str, Any]]:
    """One simulated event as one or two V1 events."""
    base = {"id": event.id, "timestamp": _stamp(event), "source": event.source}
    if event.type == "message":
        role = "user" if event.source == "user" else "assistant"
        return [
            {
                **base,
                "kind": "MessageEvent",
                "llm_message": {"role": role, "content": [{"type": "text", "text": event.text}]},
            }
        ]
    if event.type == "command":
        return [
            {
                **base,
                "kind": "ActionEvent",
                "tool_name": "terminal",
                "thought": [],
                "summary": f"Run {event.text}",
                "action": {"kind": "TerminalAction", "command": event.text, "is_input": False},
            }
        ]
    if event.type == "output":
        return [
            {
                **base,
                "kind": "ObservationEvent",
                "tool_name": "terminal",
                "action_id": None,
                "observation": {
                    "kind": "TerminalObservation",
                    "is_error": bool(event.exit_code),
                    "exit_code": event.exit_code,
                    "content": [{"type": "text", "text": event.text}],
                },
            }
        ]
    if event.type == "edit":
        verb, _, path = event.text.partition(" ")
        return [
            {
                **base,
                "kind": "ActionEvent",
                "tool_name": "file_editor",
                "thought": [],
                "summary": f"Edit {path}",
                "action": {"kind": "FileEditorAction", "command": verb, "path": path},
            }
        ]
    if event.type == "finish":
        summary = "finish: " + json.dumps({"message": event.text})
        return [
            {
                **base,
                "kind": "ActionEvent",
                "tool_name": "finish",
                "thought": [],
                "action": {"kind": "FinishAction", "message": event.text},
                "summary": summary,
                "security_risk": "UNKNOWN",
            },
            {
                **base,
                "id": event.id[:-4] + "f1n1",
                "kind": "ObservationEvent",
                "tool_name": "finish",
                "action_id": event.id,
                "observation": {
                    "kind": "FinishObservation",
                    "is_error": False,
                    "content": [{"type": "text", "text": event.text}],
                },
            },
        ]
    if event.type == "state":
        return [
            {
                **base,
                "kind": "ConversationStateUpdateEvent",
                "key": "execution_status",
                "value": event.text,
            }
        ]
    if event.type == "error":
        return [
            {**base, "kind": "ConversationErrorEvent", "code": "AgentError", "detail": event.text}
        ]
    return []


def v0_event(event: SimEvent) -> dict[str, Any]:
    """One simulated event as a V0 event."""
    base: dict[str, Any] = {
        "id": event.seq,
        "timestamp": _stamp(event),
        "source": event.source,
        "message": event.text,
        "cause": None,
    }
    if event.type == "message":
        return {
            **base,
            "action": "message",
            "args": {"content": event.text, "wait_for_response": False},
        }
    if event.type == "command":
        return {**base, "action": "run", "args": {"command": event.text}}
    if event.type == "output":
        return {
            **base,
            "observation": "run",
            "content": event.text,
            "extras": {"command": "", "exit_code": event.exit_code},
        }
    if event.type == "edit":
        _, _, path = event.text.partition(" ")
        return {**base, "action": "edit", "args": {"path": path}}
    if event.type == "finish":
        return {**base, "action": "finish", "args": {"final_thought": event.text, "outputs": {}}}
    if event.type == "state":
        state = _V0_STATE.get(event.text, event.text)
        return {
            **base,
            "message": "",
            "observation": "agent_state_changed",
            "content": "",
            "extras": {"agent_state": state, "reason": ""},
        }
    return {**base, "observation": "error", "content": event.text, "extras": {}}


def v0_conversation(conv: SimConversation) -> dict[str, Any]:
    status = {
        "STARTING": "STARTING",
        "RUNNING": "RUNNING",
        "PAUSED": "STOPPED",
        "ERROR": "ERROR",
        "MISSING": "ARCHIVED",
    }.get(conv.sandbox_status, "RUNNING")
    runtime = "STATUS$READY" if status == "RUNNING" else "STATUS$STARTING_RUNTIME"
    return {
        "conversation_id": conv.id,
        "title": conv.title or f"Conversation {conv.id[:5]}",
        "last_updated_at": conv.updated.replace(tzinfo=None).isoformat(),
        "status": status,
        "runtime_status": runtime,
        "selected_repository": conv.repository,
        "selected_branch": conv.branch,
        "git_provider": "github" if conv.repository else None,
        "trigger": "gui",
        "num_connections": 0,
        "url": f"/api/conversations/{conv.id}",
        "session_api_key": conv.session_api_key if status == "RUNNING" else None,
        "created_at": conv.created.replace(tzinfo=None).isoformat(),
        "pr_number": [],
        "conversation_version": "V0",
    }
