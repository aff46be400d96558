"""One record the client cannot read marks only that conversation; the others go on, and the
public calls say which field in one line."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from openhands_jupyter.api.errors import InvalidResponseError, UnreadableWarning
from openhands_jupyter.api.models import ConversationInfo

from .conftest import SimClient
from .waiting import eventually

#: wrong types in the fields a status read uses (status fields, PR list, times, ids, texts)
MALFORMED: list[tuple[str, Any]] = [
    ("pr_number", 7),
    ("pr_number", ["7"]),
    ("pr_number", {"n": 7}),
    ("execution_status", 3),
    ("execution_status", ["running"]),
    ("sandbox_status", {"s": "RUNNING"}),
    ("updated_at", 1700000000),
    ("title", ["a", "b"]),
    ("session_api_key", 12345),
    ("conversation_url", False),
]


@pytest.mark.parametrize(("field", "value"), MALFORMED)
def test_a_malformed_record_marks_only_its_conversation(
    sim_client: SimClient, field: str, value: Any
) -> None:
    sim, oh = sim_client(scenario="long")
    bad = oh.start("This one gets a bad record")
    good = oh.start("This one is fine")
    eventually(lambda: bad.status == "running" and good.status == "running")
    assert bad.id is not None
    sim.world.conversations[bad.id].overrides = {field: value}
    eventually(lambda: bool(bad.last_error))
    assert bad.last_error == (
        f"The server sent something this client can't read: {field} (conversation {bad.id})."
    )
    # the other conversation goes on: the tracker keeps reading it, with no error
    before = sim.counts["v1.conversations"]
    eventually(lambda: sim.counts["v1.conversations"] >= before + 2)
    assert good.last_error is None and good.status == "running"
    # get() says it in one line; list() leaves it out and says why
    with pytest.raises(InvalidResponseError, match=f"can't read: {field}"):
        oh.get(bad.id)
    with pytest.warns(UnreadableWarning, match=f"1 of 2 conversations left out: .*{field}"):
        listed = oh.list()
    assert [c.id for c in listed] == [good.id]
    # once the server sends a readable record again, the mark goes
    sim.world.conversations[bad.id].overrides = {}
    eventually(lambda: bad.last_error is None)
    assert oh.get(bad.id).status == "running"


def test_v0_reads_each_record_on_its_own(sim_client: SimClient) -> None:
    sim, oh = sim_client(api="v0", scenario="long")
    bad = oh.start("V0 with a bad record")
    good = oh.start("V0 fine")
    eventually(lambda: bad.status == "running" and good.status == "running")
    assert bad.id is not None
    sim.world.conversations[bad.id].overrides = {"status": 5}
    eventually(lambda: bool(bad.last_error))
    assert "can't read: status" in (bad.last_error or "")
    assert good.last_error is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnreadableWarning):
            oh.list()


def test_the_magic_lists_what_it_can_and_names_the_rest(
    sim_client: SimClient, capsys: pytest.CaptureFixture[str]
) -> None:
    from .test_magic import Shell

    sim, oh = sim_client(scenario="idle")
    first = oh.start("Readable")
    second = oh.start("Unreadable")
    first.wait(timeout=20)
    second.wait(timeout=20)
    assert second.id is not None
    sim.world.conversations[second.id].overrides = {"pr_number": "12"}
    sh = Shell()
    sh.magics._client = oh
    capsys.readouterr()
    sh.line("--list 5")
    captured = capsys.readouterr()
    assert first.id is not None and first.id in captured.out
    assert second.id not in captured.out
    assert captured.err.strip() == (
        "openhands: 1 of 2 conversations left out: The server sent something this client "
        f"can't read: pr_number (conversation {second.id})."
    )
    sh.magics._client = None


def test_reading_never_raises_a_type_error() -> None:
    for field, value in MALFORMED:
        info = ConversationInfo.read("c1", ConversationInfo.from_v1, {"id": "c1", field: value})
        assert info.unreadable and field in info.unreadable


LONE = "half a pair: \ud83d, and a low one: \udc00"


def test_text_the_comm_cannot_carry_is_cleaned_at_the_boundary(
    sim_client: SimClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lone surrogate (valid in JSON, not in UTF-8) reaches the browser as U+FFFD and the
    update is not lost."""
    import dataclasses

    from jupyter_client.session import json_packer

    from openhands_jupyter.api.models import Event
    from openhands_jupyter.handles.progress import ProgressPrinter
    from openhands_jupyter.ui.panel import Panel
    from openhands_jupyter.ui.widget import ConversationWidget

    _sim, oh = sim_client()
    conv = oh.start("Plain task")
    conv.wait(timeout=20)
    widget = ConversationWidget(conv)
    panel = Panel(oh)
    event = Event(id="bad-1", type="message", source="agent", text=LONE)
    snap = dataclasses.replace(conv.snapshot(), title=LONE, result=LONE, new_events=(event,))
    widget._on_snapshot(snap)
    panel._on_snapshot(conv, snap)
    panel._flush()
    for state in (widget.get_state(), panel.get_state()):
        json_packer(state)  # what the kernel sends: raises on a lone surrogate
    [shown] = [e for e in widget.feed if e["id"] == "bad-1"]
    assert shown["text"] == "half a pair: \ufffd, and a low one: \ufffd"
    ProgressPrinter(LONE)(snap)
    assert "\ufffd" in capsys.readouterr().out
    widget.close()
    panel.close()


def test_attaching_to_a_finished_conversation_shows_its_end(sim_client: SimClient) -> None:
    from openhands_jupyter.ui.widget import ConversationWidget

    sim, oh = sim_client()
    done = oh.start("Finished before anyone looked")
    done.wait(timeout=20)
    assert done.id is not None
    done.untrack()
    time_ended = done.updated_at
    sim_events_reads = sim.counts["v1.events"]
    other = oh.get(done.id)  # a kernel restart, say
    widget = ConversationWidget(other)
    eventually(lambda: any(e["type"] == "finish" for e in widget.feed), 20)
    assert widget.state["result"] == done.result
    # elapsed: from its start to its end on the server, not to the moment of attaching
    assert time_ended is not None and widget.state["ended_at"] is not None
    assert abs(widget.state["ended_at"] - time_ended.timestamp() * 1000) < 1000
    assert sim.counts["v1.events"] - sim_events_reads <= 6  # a few tail reads at most
    widget.close()


def test_a_server_clock_ahead_never_blanks_the_elapsed_time(sim_client: SimClient) -> None:
    import time

    from openhands_jupyter.ui.widget import ConversationWidget

    sim, oh = sim_client(scenario="long")
    conv = oh.start("Clock ahead")
    eventually(lambda: conv.status == "running")
    assert conv.id is not None
    sim.world.conversations[conv.id].overrides = {"created_at": "2099-01-01T00:00:00+00:00"}
    eventually(lambda: conv.created_at is not None and conv.created_at.year == 2099)
    widget = ConversationWidget(conv)
    eventually(lambda: widget.state["started_at"] is not None)
    assert widget.state["started_at"] <= time.time() * 1000
    widget.close()
