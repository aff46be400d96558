"""Fan-out: ``oh.map(template, rows)`` starts one conversation per row through the launch queue
and gives them back as one set: a live table, a DataFrame, Stop all."""

from __future__ import annotations

import pandas as pd
import pytest

from openhands_jupyter import InputError, OpenHands
from openhands_jupyter.handles.fanout import ConversationSet
from openhands_jupyter.sim import Simulator, finish_message
from openhands_jupyter.ui.fanout import fanout_table

from .conftest import SPEED, SimClient, fast_config
from .test_tracker import max_in_window
from .waiting import eventually, holds

ROWS = pd.DataFrame({"module": ["api", "cli", "db"], "owner": ["ana", "bo", "cy"]})


def test_one_conversation_per_row_and_the_set_as_a_table(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    other = oh.start("Not part of it")
    convs = oh.map("Review the {module} module for {owner}", ROWS)
    assert isinstance(convs, ConversationSet) and len(convs) == 3
    assert [c.task for c in convs] == [
        "Review the api module for ana",
        "Review the cli module for bo",
        "Review the db module for cy",
    ]
    table = fanout_table(convs)
    for conv in convs:
        conv.wait(timeout=30)
    # the table has these three only, each with its answer
    answers = {finish_message(c.task) for c in convs}
    rows = eventually(lambda: table.rows if {r["answer"] for r in table.rows} == answers else None)
    assert table.fanout and {r["task"] for r in rows} == {c.task for c in convs}
    frame = convs.to_dataframe()
    assert list(frame.columns) == ["id", "task", "status", "cost", "prs", "changed_files", "answer"]
    assert list(frame["status"]) == ["finished"] * 3 and frame["cost"].notna().all()
    assert other not in convs
    table.close()


def test_stop_all_stops_those_at_work(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    convs = oh.map("Keep going on {n} [sim:long]", [{"n": 1}, {"n": 2}])
    eventually(lambda: all(c.status == "running" for c in convs), 30)
    assert convs.stop_all() == 2
    eventually(lambda: all(c.status == "paused" for c in convs), 30)
    assert convs.stop_all() == 0  # nothing at work any more


def test_the_tables_stop_all_stops_its_rows_only(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    other = oh.start("Not part of it [sim:long]")
    convs = oh.map("Keep going on {n} [sim:long]", [{"n": 1}, {"n": 2}])
    table = fanout_table(convs)
    eventually(lambda: all(c.status == "running" for c in [*convs, other]), 30)
    table._handle_custom(table, {"action": "stop_all"}, [])  # the table's Stop all button
    eventually(lambda: all(c.status == "paused" for c in convs), 30)
    assert other.status == "running"
    eventually(lambda: not table.busy and not table.message, 10)
    other.stop()
    table.close()


def test_a_template_no_row_can_fill_is_said_before_anything_is_sent(
    sim_client: SimClient,
) -> None:
    sim, oh = sim_client()
    for template, rows, message in [
        ("Fix {module} for {team}", ROWS, r"Row 0 has no team for the template"),
        ("Fix {module", ROWS, "The template cannot be filled"),
        ("", ROWS, "needs a task template"),
        ("Fix {x}", [], "got no rows"),
        ("Fix {x}", ["a"], "Row 0 is str"),
    ]:
        with pytest.raises(InputError, match=message):
            oh.map(template, rows)
    assert sum(sim.counts.values()) == 0


def test_two_hundred_rows_stay_within_the_request_budget() -> None:
    rows = [{"i": i} for i in range(200)]
    with (
        Simulator(speed=SPEED, scenario="long") as sim,
        OpenHands(
            None, sim.url, tracker_config=fast_config(budget_per_minute=60), progress=False
        ) as oh,
    ):
        convs = oh.map("Long task {i}", rows)
        assert len(convs) == 200
        # 80 sim-seconds: never more than 60 requests in a minute, and the starts go on (the
        # server sees them when they arrive: a minute less 0.1 s of delivery on a busy machine)
        holds(
            lambda: max_in_window([r.at for r in sim.stats.log], 60.0 / SPEED - 0.1) <= 60,
            4.0,
            0.2,
        )
        assert {c.status for c in convs} <= {"queued", "starting", "running", "finished"}
        assert any(c.status != "queued" for c in convs)


def test_data_given_to_map_goes_with_every_row(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    convs = oh.map("Look at {i}", [{"i": 1}, {"i": 2}], data={"cfg": {"a": 1}})
    for conv in convs:
        conv.wait(timeout=30)
        assert (
            "notebook_data/cfg.json: `cfg` as JSON (dict)" in sim.world.conversations[conv.id].task
        )
    assert sim.stats.agent_counts["agent.upload"] == 2
