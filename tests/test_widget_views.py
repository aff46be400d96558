"""A widget counts as watched only while a view of it is on screen, and the browser gets the
feed as what is new, not the whole feed on every update."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest

from openhands_jupyter.sim import finish_message
from openhands_jupyter.ui import widget as widget_module
from openhands_jupyter.ui.widget import FEED_LIMIT, ConversationWidget

from .conftest import SimClient, fast_config
from .support.views import view
from .waiting import eventually, holds


class Sent:
    """The custom messages a widget sends to the browser, and their size as JSON."""

    def __init__(self, widget: ConversationWidget) -> None:
        self.messages: list[dict[str, Any]] = []
        original = widget.send

        def send(content: dict[str, Any], buffers: Any = None) -> None:
            self.messages.append(content)
            original(content, buffers)

        widget.send = send  # type: ignore[method-assign]

    def events(self) -> list[str]:
        return [e["id"] for m in self.messages if not m.get("reset") for e in m["feed"]]


def test_the_browser_gets_each_event_once_and_a_new_view_the_whole_feed(
    sim_client: SimClient,
) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Fix the failing test")
    widget = ConversationWidget(conv)
    sent = Sent(widget)
    conv.wait(timeout=30)
    eventually(lambda: any(e["type"] == "finish" for e in widget.feed))
    # each event once, in the feed's order: no update carries the feed so far again (an
    # event may still be on its way from the tracker's thread, hence the wait)
    ids = eventually(lambda: (got := sent.events()) == [e["id"] for e in widget.feed] and got)
    assert all(not m.get("reset") for m in sent.messages)
    view(widget, True, "view-1")  # a view appears (a re-run output, a second view)
    last = sent.messages[-1]
    assert last["reset"] and [e["id"] for e in last["feed"]] == ids
    assert last["limit"] == FEED_LIMIT
    assert "feed" not in widget.get_state()
    widget.close()


def test_a_widget_whose_views_are_gone_stops_being_watched(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    conv = oh.start("Long one [sim:long]")
    eventually(lambda: conv.status == "running")
    widget = ConversationWidget(conv)
    tracked = conv._tracked
    eventually(lambda: tracked.visible)  # until a view says otherwise
    view(widget, True, "a")
    view(widget, True, "b")  # two views of one widget (the same output shown twice)
    eventually(lambda: oh.tracker.open_sockets == 1)
    view(widget, False, "a")
    assert tracked.visible  # one view is still on screen
    view(widget, False, "b")  # "Clear All Outputs": the last view is gone
    eventually(lambda: not tracked.watched)
    eventually(lambda: oh.tracker.open_sockets == 0)
    sockets = sim.stats.agent_counts["agent.socket"]
    events_reads = sim.counts["v1.events"]
    # 20 s on the simulator's clock: no events read for what nobody sees
    holds(lambda: sim.counts["v1.events"] == events_reads, 1.0)
    view(widget, True, "c")  # shown again (the output re-rendered)
    eventually(lambda: tracked.watched and oh.tracker.open_sockets == 1)
    eventually(lambda: sim.stats.agent_counts["agent.socket"] == sockets + 1)
    widget.close()
    conv.stop()


def test_a_widget_no_frontend_ever_renders_stops_counting_after_a_while(
    sim_client: SimClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a terminal, a script, a notebook run headless: nothing will ever say a view is there
    monkeypatch.setattr(widget_module, "VIEW_GRACE", 0.5)
    _sim, oh = sim_client()
    conv = oh.start("Nobody looks [sim:long]")
    widget = ConversationWidget(conv)
    eventually(lambda: conv._tracked.visible)
    eventually(lambda: not conv._tracked.visible, 5)
    assert not widget.on_screen
    view(widget, True, "late")  # a view after all
    eventually(lambda: conv._tracked.visible)
    widget.close()
    conv.stop()


def test_idle_widgets_cleared_from_the_screen_cost_no_event_reads(sim_client: SimClient) -> None:
    # events from the app server's store: what every idle widget on screen would read
    sim, oh = sim_client(config=fast_config(live_events=False))
    convs = [oh.start(f"Idle {i} [sim:idle]") for i in range(10)]
    widgets = [ConversationWidget(c) for c in convs]
    for i, w in enumerate(widgets):
        view(w, True, f"v{i}")
    for conv in convs:
        conv.wait(timeout=30)
    time.sleep(0.5)  # the reads the ends asked for are done
    before = sim.counts["v1.events"]
    time.sleep(3.0)  # 60 s on the simulator's clock
    shown = sim.counts["v1.events"] - before
    assert shown > 0
    for i, w in enumerate(widgets):
        view(w, False, f"v{i}")
    eventually(lambda: not any(c._tracked.watched for c in convs))
    cleared = sim.counts["v1.events"]
    holds(lambda: sim.counts["v1.events"] == cleared, 3.0, what="no reads once cleared")
    # idle conversations on screen read their events at the idle pace (every 30 s), not
    # at the running pace (every 5 s): at most 2 or 3 each in this minute
    assert shown <= 3 * len(convs)
    # and a new conversation is not held up by them
    started = time.monotonic()
    new = oh.start("Quick one")
    new.wait(timeout=30)
    assert new.result == finish_message("Quick one")
    assert time.monotonic() - started < 10
    for w in widgets:
        w.close()


def test_one_update_of_a_full_feed_sends_what_is_new(sim_client: SimClient) -> None:
    # 200 large events: the whole feed is ~1 MB of JSON; an update with one new event is not
    _sim, oh = sim_client()
    conv = oh.start("Big outputs [sim:long]")
    widget = ConversationWidget(conv)
    sent = Sent(widget)
    big = {"type": "output", "source": "environment", "exit_code": 0, "timed_out": False}
    widget._feed = [
        {**big, "id": f"old-{i}", "text": "x" * 4000, "time": None} for i in range(FEED_LIMIT)
    ]
    eventually(lambda: len(sent.messages) >= 3, 30)
    sizes = [len(json.dumps(m)) for m in sent.messages]
    assert max(sizes) < 20_000, sizes
    assert len(widget.feed) == FEED_LIMIT  # bounded, the newest kept
    widget.close()
    conv.stop()


def test_the_panels_text_counts_what_it_shows(sim_client: SimClient) -> None:
    from openhands_jupyter.ui.panel import Panel

    _sim, oh = sim_client()
    idle = oh.start("Idle one [sim:idle]")
    careful = oh.start("Clean the build [sim:waiting]", confirm=True)
    for conv in (idle, careful):
        conv.wait(timeout=30)
    assert careful.status == "waiting" and careful.pending
    # what terminal IPython prints for %openhands --panel, at once (before any row has
    # reached a widget), and what a saved notebook shows in place of the table
    panel = Panel(oh)
    bundle = panel._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    lines = data["text/plain"].splitlines()
    assert lines[0] == (
        "OpenHands panel: 2 tracked (1 idle, 1 waiting); 1 waiting for your approval"
    )
    assert lines[1].split()[:2] == [careful.id[:8], "waiting"]  # type: ignore[index]
    assert "[waits for approval: [LOW risk] terminal:" in lines[1]
    assert lines[2].split()[:2] == [idle.id[:8], "idle"]  # type: ignore[index]
    assert "Idle one" in lines[2]  # its title, or its task while the server has given none
    panel.close()


def test_a_panel_closed_before_its_first_rows_never_touches_a_closed_client(
    sim_client: SimClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The panel's first look at the conversations is scheduled on the client's loop: closed
    (or its client closed) before that comes, it never runs, and nothing is logged."""
    from openhands_jupyter.ui.panel import Panel

    _sim, oh = sim_client()
    oh.start("Idle one [sim:idle]").wait(timeout=30)
    tracker = oh.aio.tracker
    looked: list[str] = []
    panels = []
    for close_client in (False, True):
        held = threading.Event()
        tracker.call_soon(held.wait, 5)  # the loop is busy while the panel is made and closed
        panel = Panel(oh)
        panels.append(panel)
        stop = oh.aio.on_tracked_changed(lambda: looked.append("watcher"))
        if close_client:
            threading.Timer(0.3, held.set).start()
            oh.close()  # waits for the loop, which then runs what was scheduled
        else:
            panel.close()
            stop()
            held.set()
        holds(lambda: looked == [], 0.3)
    assert [len(p._subs) for p in panels] == [0, 0]  # no conversation was followed
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == []
