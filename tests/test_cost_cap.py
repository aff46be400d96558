"""Cost and tokens per conversation, and the cost cap (max_cost) that stops the agent."""

from __future__ import annotations

import math

import pytest

from openhands_jupyter.api.errors import InputError
from openhands_jupyter.ui.widget import ConversationWidget

from .conftest import SimClient
from .waiting import eventually


def test_the_cap_stops_the_agent_once_and_says_why(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    conv = oh.start("Keep going [sim:long]", max_cost=0.05)
    widget = ConversationWidget(conv)
    eventually(lambda: conv.status == "paused", timeout=30)
    assert conv.cost is not None and conv.cost > 0.05
    assert sim.stats.agent_counts["agent.interrupt"] == 1
    why = widget.state["detail"]
    assert why.startswith("Stopped by its cost cap: $") and "past max_cost $0.05" in why
    assert widget.state["max_cost"] == 0.05
    assert conv.snapshot().stopped_why == why
    # resumed by the user: it goes on past the cap, and the note goes away
    conv.resume()
    eventually(lambda: conv.status == "running" and not widget.state["detail"], timeout=30)
    eventually(lambda: (conv.cost or 0) > 0.1, timeout=30)
    assert sim.stats.agent_counts["agent.interrupt"] == 1
    conv.stop()
    widget.close()


def test_the_cap_while_an_action_waits_rejects_it_and_the_card_says_so(
    sim_client: SimClient,
) -> None:
    # the cap is passed while an action waits for approval: the agent server would ignore a
    # stop, so the action is rejected (the agent stops, idle), through the same command path
    sim, oh = sim_client()
    conv = oh.start("Clean up", confirm=True, max_cost=0.01)
    widget = ConversationWidget(conv)
    eventually(lambda: conv.status == "idle", timeout=30)
    assert sim.stats.agent_counts["agent.respond"] == 1
    assert sim.stats.agent_counts["agent.interrupt"] == 0
    assert widget.state["status"] == "idle" and widget.state["pending"] == []
    why = widget.state["detail"]
    assert why.startswith("Stopped by its cost cap: $0.0123 spent, past max_cost $0.01.")
    assert why.endswith("Send a follow-up to go on without the cap.")
    rejected = [e for e in conv.feed if e.type == "rejected"]
    assert [e.text for e in rejected] == [
        "The cost cap was reached: $0.0123 spent, past max_cost $0.01."
    ]
    # no pause or resume marks: it was never paused
    assert not [e for e in widget.feed if e["type"] == "state" and e["source"] == "client"]
    # a follow-up runs it again: the cap's line goes
    conv.send("Go on anyway")
    eventually(lambda: conv.status in ("running", "waiting") and not widget.state["detail"], 30)
    widget.close()


def test_a_tiny_cap_is_said_with_its_digits(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Keep going [sim:long]", max_cost=0.0005)
    eventually(lambda: conv.status == "paused", timeout=30)
    why = conv.snapshot().stopped_why or ""
    assert "past max_cost $0.0005" in why and "$0.00 " not in why, why


def test_cost_and_tokens_are_on_the_handle(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Fix it").wait(timeout=30)
    assert conv.cost is not None and conv.cost > 0
    assert conv.tokens["prompt"] and conv.tokens["completion"]


@pytest.mark.parametrize("bad", [0, -1, "lots", math.inf, math.nan, True, [1]])
def test_a_bad_cap_fails_before_any_request(sim_client: SimClient, bad: object) -> None:
    sim, oh = sim_client()
    with pytest.raises(InputError, match="max_cost"):
        oh.start("Fix it", max_cost=bad)
    assert sim.counts["v1.start"] == 0


def test_the_newer_of_the_two_figures_counts() -> None:
    """The app server's metrics come in batches, behind the stats the agent server sends: the
    cap must see the newer figure, whichever source has it."""
    from openhands_jupyter.api.models import ConversationInfo, Usage
    from openhands_jupyter.tracking import Tracked

    tracked = Tracked()
    tracked.info = ConversationInfo(id="a" * 32, status="running", usage=Usage(0.004, 1200, 34))
    assert tracked.usage == Usage(0.004, 1200, 34)
    tracked.stats_usage = Usage(0.02, 6000, 170)
    assert tracked.usage == Usage(0.02, 6000, 170)
    tracked.info = ConversationInfo(id="a" * 32, status="running", usage=Usage(0.03, 7200, 204))
    assert tracked.usage == Usage(0.03, 7200, 204)
    tracked.info = ConversationInfo(id="a" * 32, status="running", usage=Usage(0.0, 0, 0))
    assert tracked.usage == Usage(0.02, 6000, 170)  # zero metrics: the stats carry it
