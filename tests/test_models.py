"""Lenient parsing: ids, timestamps, status mapping, events and the final answer."""

from __future__ import annotations

from datetime import timezone

import pytest

from openhands_jupyter.api import InputError
from openhands_jupyter.api.events import event_from_v0, event_from_v1
from openhands_jupyter.api.ids import epoch_ms, normalize_id, parse_time
from openhands_jupyter.api.models import ConversationInfo, Event, StartTask
from openhands_jupyter.api.status import v0_status, v1_status
from openhands_jupyter.tracking.state import Tracked


def test_ids_are_normalised_to_lowercase_hex() -> None:
    assert (
        normalize_id("D831F3E9-9055-4404-9CE9-1C64FDA0EF71") == "d831f3e9905544049ce91c64fda0ef71"
    )
    assert (
        normalize_id("task-cbe5366a03e841069ca04ae4eb0ba002") == "cbe5366a03e841069ca04ae4eb0ba002"
    )
    with pytest.raises(InputError, match="Not a conversation id"):
        normalize_id("not-an-id")


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29T03:32:57.514062Z",
        "2026-11-29T03:32:57.514062",
        "2026-11-29T03:32:57.514062+00:00",
        "2026-11-29T03:32:57.5140621234",
        "2026-11-29T03:32:57.5Z",
    ],
)
def test_timestamps_with_a_zone_are_utc_and_without_stay_naive(text: str) -> None:
    moment = parse_time(text)
    assert moment is not None
    # a naive stamp is some server's local clock: kept as it is, never turned into an instant
    naive = not text.endswith("Z") and "+" not in text
    assert moment.tzinfo == (None if naive else timezone.utc)
    assert (moment.hour, moment.minute, moment.second) == (3, 32, 57)
    assert (epoch_ms(moment) is None) == (moment.tzinfo is None)


@pytest.mark.parametrize(
    ("sandbox", "execution", "has_run", "expected"),
    [
        ("STARTING", None, False, "starting"),
        ("RUNNING", None, False, "starting"),
        ("RUNNING", "idle", False, "running"),
        ("RUNNING", "idle", True, "idle"),
        ("RUNNING", "running", False, "running"),
        ("RUNNING", "waiting_for_confirmation", True, "waiting"),
        ("RUNNING", "finished", True, "finished"),
        ("RUNNING", "error", True, "error"),
        ("RUNNING", "stuck", True, "stuck"),
        ("RUNNING", "deleting", True, "archived"),
        ("RUNNING", "paused", True, "paused"),
        ("PAUSED", None, True, "paused"),
        ("ERROR", None, True, "error"),
        ("MISSING", None, True, "archived"),
        ("RUNNING", "brand_new_state", True, "brand_new_state"),
        ("HIBERNATING", None, True, "hibernating"),
    ],
)
def test_v1_status_vocabulary(
    sandbox: str, execution: str | None, has_run: bool, expected: str
) -> None:
    assert v1_status(sandbox, execution, has_run) == expected


@pytest.mark.parametrize(
    ("status", "agent", "expected"),
    [
        ("STARTING", None, "starting"),
        ("RUNNING", "loading", "starting"),
        ("RUNNING", "running", "running"),
        ("RUNNING", "rate_limited", "running"),
        ("RUNNING", "awaiting_user_input", "idle"),
        ("RUNNING", "stopped", "idle"),
        ("RUNNING", "awaiting_user_confirmation", "waiting"),
        ("RUNNING", "paused", "paused"),
        ("RUNNING", "finished", "finished"),
        ("RUNNING", "error", "error"),
        ("RUNNING", "rejected", "error"),
        ("STOPPED", "running", "paused"),
        ("ERROR", None, "error"),
        ("ARCHIVED", None, "archived"),
    ],
)
def test_v0_status_vocabulary(status: str, agent: str | None, expected: str) -> None:
    assert v0_status(status, agent) == expected


def test_conversation_parsing_ignores_unknown_fields_and_hides_the_session_key() -> None:
    raw = {
        "id": "D831F3E9-9055-4404-9CE9-1C64FDA0EF71",
        "sandbox_status": "RUNNING",
        "execution_status": "finished",
        "session_api_key": "sess-abcdefgh",
        "brand_new": {"x": 1},
        "metrics": {"accumulated_cost": 0.25},
        "pr_number": [7],
        "created_at": "2026-11-29T03:33:07Z",
        "title": "Fix it",
        "selected_repository": "octo/app",
    }
    info = ConversationInfo.from_v1(raw)
    assert info.id == "d831f3e9905544049ce91c64fda0ef71"
    assert info.status == "finished" and info.cost == 0.25 and info.pr_numbers == (7,)
    assert info.raw["session_api_key"] == "***"
    assert "sess-abcdefgh" not in repr(info)
    assert info.session_api_key is not None and info.session_api_key.get() == "sess-abcdefgh"


def test_start_task_keeps_unknown_status_and_detail() -> None:
    task = StartTask.from_json({"id": "cbe5366a03e841069ca04ae4eb0ba002", "status": "WARMING_UP"})
    assert task.status == "WARMING_UP" and not task.ready and not task.failed
    err = StartTask.from_json({"id": "e61dc684", "status": "ERROR", "detail": "500: boom"})
    assert err.failed and err.detail == "500: boom"


def test_v1_events_and__answer() -> None:
    raw = [
        {
            "id": "1",
            "kind": "MessageEvent",
            "source": "agent",
            "llm_message": {"role": "assistant", "content": [{"type": "text", "text": "Looking"}]},
        },
        {
            "id": "2",
            "kind": "ActionEvent",
            "source": "agent",
            "tool_name": "terminal",
            "action": {"kind": "TerminalAction", "command": "ls"},
        },
        {
            "id": "3",
            "kind": "ObservationEvent",
            "source": "environment",
            "tool_name": "terminal",
            "observation": {
                "kind": "TerminalObservation",
                "content": [{"type": "text", "text": "a"}],
                "exit_code": 0,
                "is_error": False,
            },
        },
        {
            "id": "4",
            "kind": "ActionEvent",
            "source": "agent",
            "tool_name": "file_editor",
            "action": {"kind": "FileEditorAction", "command": "create", "path": "x.py"},
        },
        {"id": "5", "kind": "SystemPromptEvent", "source": "agent"},
        {
            "id": "6",
            "kind": "ActionEvent",
            "source": "agent",
            "tool_name": "finish",
            "action": {"kind": "FinishAction", "message": "All done"},
        },
        {
            "id": "7",
            "kind": "ConversationStateUpdateEvent",
            "key": "execution_status",
            "value": "finished",
        },
        {"id": "8", "kind": "SomethingNew"},
    ]
    events = [e for e in (event_from_v1(r) for r in raw) if e is not None]
    assert [e.type for e in events] == ["message", "command", "output", "edit", "finish", "state"]
    assert events[2].exit_code == 0 and events[3].text == "create x.py"
    assert _answer(events) == "All done"
    assert _answer(events[:1]) == "Looking"


def test_v0_events_and__answer() -> None:
    raw = [
        {
            "id": 5,
            "source": "environment",
            "observation": "agent_state_changed",
            "extras": {"agent_state": "running"},
        },
        {"id": 6, "source": "agent", "action": "run", "args": {"command": "make"}},
        {"id": 7, "source": "agent", "message": "All done!", "action": "finish", "args": {}},
    ]
    events = [e for e in (event_from_v0(r) for r in raw) if e is not None]
    assert [e.type for e in events] == ["state", "command", "finish"]
    assert _answer(events) == "All done!"


def _answer(events: list[Event]) -> str | None:
    """The answer a conversation that ended with these events shows."""
    tracked = Tracked(conversation_id="c1", status="finished")
    tracked.add_events(events)
    return tracked.result
