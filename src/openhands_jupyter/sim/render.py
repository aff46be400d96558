"""How simulated events look on the wire: V1 event objects and V0 action/observation dicts."""

from __future__ import annotations

import json
import uuid
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


def full_state(conv: SimConversation, stamp: str) -> dict[str, Any]:
    """What the agent server pushes the moment a socket subscribes."""
    return {
        "id": str(uuid.uuid4()),
        "timestamp": stamp,
        "source": "environment",
        "kind": "ConversationStateUpdateEvent",
        "key": "full_state",
        "value": {
            "id": str(uuid.UUID(conv.id)),
            "execution_status": conv.execution_status or "idle",
            "max_iterations": 500,
            "stuck_detection": True,
        },
    }


def v1_events(
    conv: SimConversation, event: SimEvent, stamp: str | None = None
) -> list[dict[str, Any]]:
    """One simulated event as one or two V1 events (``stamp``: the agent server's clock)."""
    base = {"id": event.id, "timestamp": stamp or _stamp(event), "source": event.source}
    if event.type == "message":
        role = "user" if event.source == "user" else "assistant"
        return [
            {
                **base,
                "kind": "MessageEvent",
                "llm_message": {"role": role, "content": [{"type": "text", "text": event.text}]},
            }
        ]
    if event.type == "stats":
        return [
            {**base, "kind": "ConversationStateUpdateEvent", "key": "stats", "value": event.value}
        ]
    if event.type == "pause":
        return [{**base, "kind": "PauseEvent"}]
    if event.type == "plan":
        return [
            {
                **base,
                "kind": "ActionEvent",
                "tool_name": "task_tracker",
                "thought": [],
                "summary": "task_tracker: plan",
                "action": {
                    "kind": "TaskTrackerAction",
                    "command": "plan",
                    "task_list": [{"title": t, "status": "todo"} for t in event.text.split(";")],
                },
            }
        ]
    if event.type == "read":
        return [
            {
                **base,
                "kind": "ActionEvent",
                "tool_name": "file_editor",
                "thought": [],
                "summary": f"View {event.text}",
                "action": {"kind": "FileEditorAction", "command": "view", "path": event.text},
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
                    "timeout": event.exit_code == -1,
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


def v0_event(event: SimEvent, stamp: str | None = None) -> dict[str, Any] | None:
    """One simulated event as a V0 event (``None`` for what V0 does not record)."""
    if event.type in ("stats", "pause"):
        return None
    base: dict[str, Any] = {
        "id": event.seq,
        "timestamp": stamp or _stamp(event),
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
    if event.type == "read":
        return {**base, "action": "read", "args": {"path": event.text}}
    if event.type == "plan":
        return {**base, "action": "task_tracking", "args": {"command": "plan"}}
    if event.type == "output":
        return {
            **base,
            "observation": "run",
            "content": event.text,
            # 1.6 puts the exit code in the metadata
            "extras": {
                "command": "",
                "hidden": False,
                "metadata": {"exit_code": event.exit_code, "pid": -1, "prefix": "", "suffix": ""},
            },
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
