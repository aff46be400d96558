"""How simulated events look on the wire: V1 event objects and V0 action/observation dicts."""

from __future__ import annotations

import json
import uuid
from typing import Any

from .records import SimConversation, SimEvent

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


def _tool_call(event: SimEvent, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The fields an agent's tool call carries, as the SDK records them."""
    call_id = "call_" + event.id.replace("-", "")[:12]
    return {
        "thought": [],
        "thinking_blocks": [],
        "tool_name": name,
        "tool_call_id": call_id,
        "tool_call": {
            "id": call_id,
            "name": name,
            "arguments": json.dumps(arguments),
            "origin": "completion",
        },
        "llm_response_id": "chatcmpl-" + event.id.replace("-", "")[:12],
        "security_risk": "LOW" if name != "finish" else "UNKNOWN",
        "summary": f"{name}: {json.dumps(arguments)}",
    }


def _observation(event: SimEvent, name: str) -> dict[str, Any]:
    action_id = event.value if isinstance(event.value, str) else None
    return {
        "tool_name": name,
        "tool_call_id": "call_" + (action_id or event.id).replace("-", "")[:12],
        "action_id": action_id,
        "extended_content": [],
    }


def _last_action(conv: SimConversation, event: SimEvent) -> str | None:
    """The id of the newest action before ``event``."""
    for other in reversed(conv.events[: event.seq]):
        if other.type in ("command", "edit", "read", "plan", "finish"):
            return other.id
    return None


def plan_tasks(text: str) -> list[dict[str, str]]:
    """A scripted plan, ``title=status;title=status`` (no status: todo), as the task
    tracker's list."""
    tasks = []
    for part in text.split(";"):
        title, _, status = part.partition("=")
        tasks.append({"title": title.strip(), "notes": "", "status": status.strip() or "todo"})
    return tasks


def _text(text: str) -> list[dict[str, Any]]:
    return [{"cache_prompt": False, "type": "text", "text": text}]


def v1_events(
    conv: SimConversation, event: SimEvent, stamp: str | None = None, version: str = "1.34"
) -> list[dict[str, Any]]:
    """One simulated event as V1 events (``stamp``: the agent server's clock), with the same
    fields a real agent server of ``version`` writes: 1.34 (as 1.11.0 pins) or 1.58, whose
    events name their parent, whose errors say what the user can do, and whose security
    analyzer rates every action."""
    items = _v1_events(conv, event, stamp)
    if version == "1.34":
        return items
    parent = conv.events[event.seq - 1].id if event.seq > 0 else None
    out = []
    for item in items:
        if item["kind"] != "SystemPromptEvent" and parent:
            item = {**item, "parent_id": parent}
        if item["kind"] == "ConversationErrorEvent":
            item["classification"] = {"kind": "unknown", "retryable": True, "user_action": "retry"}
        out.append(item)
        if item["kind"] == "ActionEvent" and item.get("tool_name") != "finish":
            out.append(_analysis(conv, item))
    return out


def _analysis(conv: SimConversation, action: dict[str, Any]) -> dict[str, Any]:
    """The security analyzer's verdict on one action (1.58)."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_OID, action["id"])),
        "timestamp": action["timestamp"],
        "source": "environment",
        "parent_id": action["id"],
        "analyzer": "LLMSecurityAnalyzer",
        "policy": "AlwaysConfirm" if conv.confirm else "NeverConfirm",
        "risks": {action["id"]: action.get("security_risk") or "UNKNOWN"},
        "details": {},
        "kind": "SecurityAnalysisEvent",
    }


def _v1_events(
    conv: SimConversation, event: SimEvent, stamp: str | None = None
) -> list[dict[str, Any]]:
    base = {"id": event.id, "timestamp": stamp or _stamp(event), "source": event.source}
    state = {**base, "kind": "ConversationStateUpdateEvent"}
    if event.type == "system":
        return [
            {
                **base,
                "kind": "SystemPromptEvent",
                "system_prompt": {
                    "cache_prompt": False,
                    "type": "text",
                    "text": "You are a simulated agent.",
                },
                "tools": [],
                "dynamic_context": None,
            }
        ]
    if event.type == "user_id":
        return [{**state, "key": "last_user_message_id", "value": event.value}]
    if event.type == "message":
        role = "user" if event.source == "user" else "assistant"
        return [
            {
                **base,
                "kind": "MessageEvent",
                "llm_message": {"role": role, "content": _text(event.text), "thinking_blocks": []},
                "activated_skills": [],
                "extended_content": [],
            }
        ]
    if event.type == "stats":
        return [{**state, "key": "stats", "value": event.value}]
    if event.type == "state":
        return [{**state, "key": "execution_status", "value": event.text}]
    if event.type == "pause":
        return [{**base, "kind": "PauseEvent"}]
    if event.type == "interrupt":
        return [{**base, "kind": "InterruptEvent"}]
    if event.type == "agent_error":
        # the command the interrupt cut short: its tool call, answered by this error
        cut = _last_action(conv, event)
        call = "call_" + (cut or event.id).replace("-", "")[:12]
        return [
            {
                **base,
                "kind": "AgentErrorEvent",
                "tool_name": "terminal",
                "tool_call_id": call,
                "error": event.text,
            }
        ]
    if event.type == "plan":
        tasks = plan_tasks(event.text)
        action_event = {
            **base,
            "kind": "ActionEvent",
            **_tool_call(event, "task_tracker", {"command": "plan", "task_list": tasks}),
            "action": {"command": "plan", "task_list": tasks, "kind": "TaskTrackerAction"},
        }
        # the tool's answer at once, with the list as the task tracker keeps it
        answer = {
            **base,
            "id": str(uuid.uuid5(uuid.NAMESPACE_OID, event.id + "/answer")),
            "source": "environment",
            "kind": "ObservationEvent",
            "tool_name": "task_tracker",
            "tool_call_id": action_event["tool_call_id"],
            "action_id": event.id,
            "observation": {
                "content": _text(f"Task list has been updated with {len(tasks)} item(s)."),
                "is_error": False,
                "command": "plan",
                "task_list": tasks,
                "kind": "TaskTrackerObservation",
            },
        }
        return [action_event, answer]
    if event.type in ("read", "edit"):
        verb, _, path = (
            event.text.partition(" ") if event.type == "edit" else ("view", "", event.text)
        )
        args = {"command": verb, "path": path}
        action: dict[str, Any] = {
            "command": verb,
            "path": path,
            "file_text": None,
            "old_str": None,
            "new_str": None,
            "insert_line": None,
            "view_range": None,
            "kind": "FileEditorAction",
        }
        return [
            {
                **base,
                "kind": "ActionEvent",
                **_tool_call(event, "file_editor", args),
                "action": action,
            }
        ]
    if event.type == "command":
        action = {
            "command": event.text,
            "is_input": False,
            "reset": False,
            "kind": "TerminalAction",
        }
        args = {"command": event.text, "security_risk": "LOW"}
        return [
            {**base, "kind": "ActionEvent", **_tool_call(event, "terminal", args), "action": action}
        ]
    if event.type == "output":
        code = event.exit_code
        return [
            {
                **base,
                "kind": "ObservationEvent",
                **_observation(event, "terminal"),
                "observation": {
                    "content": _text(event.text),
                    "is_error": False,
                    "command": "",
                    "exit_code": code,
                    "timeout": code == -1,
                    "metadata": {
                        "exit_code": code,
                        "pid": -1,
                        "username": "sim",
                        "hostname": "sim",
                        "working_dir": "/workspace/project",
                        "py_interpreter_path": None,
                        "prefix": "",
                        "suffix": "",
                    },
                    "full_output_save_dir": None,
                    "kind": "TerminalObservation",
                },
            }
        ]
    if event.type == "finish":
        args = {"message": event.text}
        action = {"message": event.text, "kind": "FinishAction"}
        observation = {
            **base,
            "id": event.id[:-4] + "f1n1",
            "source": "environment",
            "kind": "ObservationEvent",
            **_observation(event, "finish"),
            "action_id": event.id,
            "observation": {
                "content": _text(event.text),
                "is_error": False,
                "kind": "FinishObservation",
            },
        }
        return [
            {**base, "kind": "ActionEvent", **_tool_call(event, "finish", args), "action": action},
            observation,
        ]
    if event.type == "reject":
        return [
            {
                **base,
                "kind": "UserRejectObservation",
                **_observation(event, "terminal"),
                "rejection_reason": event.text,
                "rejection_source": "user",
            }
        ]
    if event.type == "error":
        return [
            {**base, "kind": "ConversationErrorEvent", "code": "AgentError", "detail": event.text}
        ]
    return []


def v0_event(event: SimEvent, stamp: str | None = None) -> dict[str, Any] | None:
    """One simulated event as a V0 event (``None`` for what V0 does not record)."""
    if event.type in ("stats", "pause", "interrupt", "agent_error", "system", "user_id"):
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
        return {
            **base,
            "action": "task_tracking",
            "args": {"command": "plan", "task_list": plan_tasks(event.text)},
        }
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
        **conv.overrides,
    }
