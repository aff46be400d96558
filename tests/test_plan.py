"""The agent's plan (its task tracker's list): read from every event that carries it, kept as
the newest says, shown as a checklist and offered as ``conv.plan``."""

from __future__ import annotations

from typing import Any

import pytest

from openhands_jupyter.api.events import event_from_v0, event_from_v1, plan_of
from openhands_jupyter.api.models import PlanItem
from openhands_jupyter.sim.scenarios import PLAN_TITLES
from openhands_jupyter.tracking import Snapshot
from openhands_jupyter.tracking.heard import Heard
from openhands_jupyter.ui.widget import ConversationWidget

from .conftest import SimClient, fast_config
from .support.views import view
from .waiting import eventually

TASKS = [
    {"title": "Read the code", "notes": "start with api.py", "status": "done"},
    {"title": "Fix it", "notes": "", "status": "in_progress"},
    {"title": "Test it", "notes": "", "status": "blocked"},
]
WANTED = (
    PlanItem("Read the code", "done", "start with api.py"),
    PlanItem("Fix it", "in_progress"),
    PlanItem("Test it", "todo"),  # a status the tracker does not have is shown as to do
)


def _v1_action(tasks: Any, command: str = "plan", stamp: str = "2026-12-06T10:00:00") -> Any:
    return event_from_v1(
        {
            "id": f"a-{stamp}",
            "kind": "ActionEvent",
            "source": "agent",
            "timestamp": stamp,
            "tool_name": "task_tracker",
            "action": {"kind": "TaskTrackerAction", "command": command, "task_list": tasks},
        }
    )


def _v1_answer(tasks: Any, stamp: str = "2026-12-06T10:00:01", error: bool = False) -> Any:
    return event_from_v1(
        {
            "id": f"o-{stamp}",
            "kind": "ObservationEvent",
            "source": "environment",
            "timestamp": stamp,
            "tool_name": "task_tracker",
            "action_id": "a",
            "observation": {
                "kind": "TaskTrackerObservation",
                "command": "view",
                "task_list": tasks,
                "is_error": error,
                "content": [],
            },
        }
    )


def test_every_form_of_the_plan_is_read() -> None:
    assert plan_of(_v1_action(TASKS)) == WANTED
    # the tool's answer holds the whole list, after a view too
    assert plan_of(_v1_answer(TASKS)) == WANTED
    v0 = event_from_v0(
        {"id": 7, "source": "agent", "action": "task_tracking", "args": {"task_list": TASKS}}
    )
    assert v0 is not None and plan_of(v0) == WANTED
    # a view carries no list of its own; a failed answer and other events carry none
    assert plan_of(_v1_action(None, command="view")) is None
    assert plan_of(_v1_answer(TASKS, error=True)) is None
    assert plan_of(_v1_action("not a list")) is None
    other = event_from_v1({"id": "m", "kind": "MessageEvent", "source": "agent"})
    assert other is not None and plan_of(other) is None
    # an empty list is a plan with nothing in it, not "no news"
    assert plan_of(_v1_answer([])) == ()


def test_the_newest_plan_wins_whatever_order_the_events_come_in() -> None:
    heard = Heard()
    newer = [{"title": "Fix it", "status": "done"}]
    older = [{"title": "Fix it", "status": "todo"}]
    heard.add_events([_v1_action(newer, stamp="2026-12-06T10:00:05")])
    # a read of the store brings an older list late: the plan stays as the newest says
    heard.add_events([_v1_action(older, stamp="2026-12-06T10:00:01")])
    assert heard.plan == (PlanItem("Fix it", "done"),)
    # a later one is taken
    heard.add_events([_v1_action(older, stamp="2026-12-06T10:00:09")])
    assert heard.plan == (PlanItem("Fix it", "todo"),)


@pytest.mark.parametrize("api", ["v1", "v0"])
def test_the_plan_is_followed_live_and_shown_as_a_checklist(
    sim_client: SimClient, api: str
) -> None:
    # slower than the other tests: each step of the plan lasts 0.3 s
    _sim, oh = sim_client(api=api, speed=5.0, config=fast_config(time_scale=1 / 5.0))
    conv = oh.start("Fix it with a plan [sim:plan]")
    widget = ConversationWidget(conv)
    view(widget)
    plans: list[tuple[str, ...]] = []

    def note(snap: Snapshot) -> None:
        statuses = tuple(t.status for t in snap.plan)
        if statuses and (not plans or plans[-1] != statuses):
            plans.append(statuses)

    conv.subscribe(note)
    conv.wait(timeout=60)
    assert conv.status == "finished"
    assert [t.title for t in conv.plan] == list(PLAN_TITLES)
    assert [t.status for t in conv.plan] == ["done"] * 3
    eventually(lambda: plans and plans[-1] == ("done", "done", "done"))
    # the checklist only ever moves on
    done = [p.count("done") for p in plans]
    assert done == sorted(done), plans
    if api == "v1":
        # the live feed brings each list as it is written: every step is seen, in order
        assert plans == [
            ("in_progress", "todo", "todo"),
            ("done", "in_progress", "todo"),
            ("done", "done", "in_progress"),
            ("done", "done", "done"),
        ]
    shown = eventually(
        lambda: widget.state["plan"] if widget.state["plan"][-1]["status"] == "done" else None
    )
    assert [(t["title"], t["status"]) for t in shown] == [(t, "done") for t in PLAN_TITLES]
    widget.close()


def test_a_conversation_attached_after_its_end_has_its_plan(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    first = oh.start("Plan then finish [sim:plan]")
    first.wait(timeout=60)
    assert first.id
    with type(oh)(None, oh.base_url, progress=False) as other:
        again = other.get(first.id)
        again.events()
        assert [t.status for t in again.plan] == ["done"] * 3
