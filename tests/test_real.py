"""Against a real OpenHands 1.11.0 server on loopback (tests/support/real/launcher.py): the public API
with the SDK's default event batching, where the app server's event store lags the agent."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import pytest

from openhands_jupyter import AuthenticationError, Conversation, NotFoundError, OpenHands
from openhands_jupyter.handles.results import shown
from openhands_jupyter.tracking import Snapshot
from openhands_jupyter.ui.fanout import fanout_table
from openhands_jupyter.ui.widget import ConversationWidget

from .support.real.fake_llm import (
    COMMAND,
    COMMAND_OUTPUT,
    EDITED_PATH,
    NOTES_PATH,
    PLAN,
    REPORT_PATH,
    TITLE,
    finish_message,
)
from .support.real.fixtures import APP_KEY
from .support.real.launcher import RealServer
from .support.views import view
from .waiting import eventually, holds

pytestmark = [pytest.mark.real, pytest.mark.timeout(600)]


def test_start_to_finished_with_the_agents_answer(oh: OpenHands) -> None:
    task = "Say hello"
    conv = oh.start(task)
    conv.wait(timeout=180)
    assert conv.status == "finished", (conv.status, conv.detail)
    assert conv.result == finish_message(task)
    assert conv.id is not None and len(conv.id) == 32
    # the fake LLM reported usage; the app server's metrics stay at zero, the stats carry it
    assert conv.tokens["prompt"] and conv.tokens["prompt"] > 0
    assert conv.tokens["completion"] and conv.tokens["completion"] > 0


def test_command_and_exit_code_while_the_agent_still_works(agent_oh: OpenHands) -> None:
    # the command and its output are on screen while the agent is still working
    conv, snaps = _watched_until(agent_oh, "Show the greeting [llm:command] [llm:slow=4]", "output")
    assert conv.status == "running"
    feed = [e for s in snaps for e in s.new_events]
    assert [e.text for e in feed if e.type == "command"] == [COMMAND]
    [output] = [e for e in feed if e.type == "output"]
    assert output.exit_code == 0 and output.text.strip() == COMMAND_OUTPUT
    assert [s.activity for s in snaps if any(e.type == "output" for e in s.new_events)] == ["live"]
    conv.wait(timeout=120)
    events = conv.events()
    assert [e.text for e in events if e.type == "command"] == [COMMAND]
    assert [e.exit_code for e in events if e.type == "output"] == [0]
    assert conv.result == finish_message("Show the greeting")


def test_follow_up_runs_again(agent_oh: OpenHands) -> None:
    oh = agent_oh
    conv = oh.start("First part")
    conv.wait(timeout=180)
    assert conv.result == finish_message("First part")
    conv.send("Second part")
    conv.wait(timeout=120)
    assert conv.status == "finished"
    assert conv.result == finish_message("Second part")


def test_stop_and_resume_touch_only_that_conversation(oh: OpenHands) -> None:
    a = oh.start("Keep busy A [llm:command] [llm:slow=3]")
    b = oh.start("Keep busy B [llm:command] [llm:slow=3]")
    eventually(lambda: a.status == "running" and b.status == "running", 180)
    assert a.info and b.info and a.info.sandbox_id == b.info.sandbox_id  # one sandbox
    a.stop()
    eventually(lambda: a.refresh().status == "paused", 60)
    b.refresh()
    assert b.status in ("running", "finished"), b.status
    assert b.info is not None and b.info.sandbox_status == "RUNNING"
    b.wait(timeout=120)
    assert b.status == "finished" and b.result == finish_message("Keep busy B")
    assert a.refresh().status == "paused"
    a.resume()
    a.wait(timeout=120)
    assert a.status == "finished" and a.result == finish_message("Keep busy A")


def test_a_supplied_title_is_kept(oh: OpenHands, real_server: RealServer) -> None:
    conv = oh.start("Name this one", title="My own title")
    conv.wait(timeout=180)
    # the server's title step runs once the first events reach it (batched), then polls the
    # agent server for 3 s: the server keeps the title all that time
    eventually(lambda: _server_title(real_server, conv.id) == "My own title", 40, 1.0)
    holds(lambda: _server_title(real_server, conv.id) == "My own title", 8, 1.0)
    assert conv.title == "My own title"


def test_without_a_title_the_server_generates_one(
    oh: OpenHands,
    real_server: RealServer,
) -> None:
    conv = oh.start("No title given")
    conv.wait(timeout=180)
    eventually(lambda: _server_title(real_server, conv.id) == TITLE, 60, 1.0)
    eventually(lambda: conv.refresh().title == TITLE, 10)


def _server_title(server: RealServer, cid: str | None) -> str | None:
    r = httpx.get(
        f"{server.url}/api/v1/app-conversations", params={"ids": cid}, headers=server.headers()
    )
    [info] = r.json()
    return info["title"] if info else None


def test_list_reattach_and_delete(oh: OpenHands, real_server: RealServer) -> None:
    conv = oh.start("Something to find")
    conv.wait(timeout=180)
    assert conv.id in [c.id for c in oh.list(limit=50)]
    with OpenHands(base_url=real_server.url, session_api_key=APP_KEY, progress=False) as other:
        again = other.get(conv.id)  # type: ignore[arg-type]
        assert again.status == "finished"
        assert again.result == finish_message("Something to find")
    conv.delete()
    with pytest.raises(NotFoundError):
        oh.get(conv.id)  # type: ignore[arg-type]
    eventually(lambda: conv.status == "archived", 30)


def test_a_wrong_session_key_is_an_authentication_error(
    real_server: RealServer,
) -> None:
    with OpenHands(base_url=real_server.url, session_api_key="wrong", progress=False) as bad:
        with pytest.raises(AuthenticationError) as info:
            bad.list()
        assert "wrong" not in str(info.value) and "\n" not in str(info.value)
    with (
        OpenHands(base_url=real_server.url, progress=False) as none,
        pytest.raises(AuthenticationError),
    ):
        none.start("No key given")


def test_event_kinds_plans_reads_and_edits(oh: OpenHands) -> None:
    conv = oh.start("Sort out the kinds [llm:plan] [llm:edit] [llm:view]")
    widget = ConversationWidget(conv)
    view(widget)  # on screen, however long the run takes
    conv.wait(timeout=180)
    # its workspace is no git repository: git lists nothing, and the card says which file
    # the agent edited instead of "No files changed yet"
    changes = eventually(lambda: widget.state["changes"]["note"] and widget.state["changes"], 30)
    assert changes["files"] == [] and EDITED_PATH in changes["note"], changes
    widget.close()
    events = conv.events()
    kinds = [(e.type, e.text.split(" ")[0]) for e in events if e.source == "agent"]
    # a task_tracker plan is not a shell command, and a file_editor view is not an edit
    assert ("plan", "plan") in kinds
    # the plan as the agent last wrote it: both tasks done
    assert [(t.title, t.status) for t in conv.plan] == [(t, "done") for t in PLAN]
    assert ("edit", "create") in kinds and ("read", "view") in kinds
    assert not any(e.type == "command" for e in events)
    assert not any(e.type == "error" for e in events), [e.text for e in events]


def test_results_load_and_show_from_the_real_workspace(oh: OpenHands) -> None:
    conv = oh.start("Report the scores [llm:report]")
    conv.wait(timeout=180)
    assert conv.status == "finished", (conv.status, conv.detail)
    table = conv.load(REPORT_PATH)
    assert table.to_dict("list") == {"name": ["alpha", "beta"], "score": [1, 2]}
    notes = shown(NOTES_PATH, conv.load(NOTES_PATH).encode())
    assert "# Findings" in notes.data and "&lt;img" in notes.data and "<img" not in notes.data


def test_data_goes_into_the_real_workspace_before_the_task(oh: OpenHands, tmp_path: Path) -> None:
    scores = pd.DataFrame({"name": ["alpha", "beta"], "score": [1.5, 2.0]})
    (tmp_path / "units.txt").write_text("scores are in points\n")
    conv = oh.start("Look at the scores", data={"scores": scores}, files=[tmp_path / "units.txt"])
    conv.wait(timeout=180)
    assert conv.status == "finished", (conv.status, conv.detail)
    # the agent got the task with where each thing is, as its first message
    [first] = [e.text for e in conv.events() if e.type == "message" and e.source == "user"]
    lines = first.splitlines()
    assert lines[0] == "Look at the scores"
    [table] = [ln[2:].split(":")[0] for ln in lines if "scores.parquet" in ln]
    [units] = [ln[2:].split(":")[0] for ln in lines if "units.txt" in ln]
    # and the files are there, as they were sent
    pd.testing.assert_frame_equal(conv.load(table), scores)
    assert conv.read_file(units) == "scores are in points\n"


def test_map_runs_one_conversation_per_row(oh: OpenHands) -> None:
    rows = pd.DataFrame({"name": ["ana", "bo", "cy"]})
    convs = oh.map("Say hello to {name}", rows)
    table = fanout_table(convs)
    for conv in convs:
        conv.wait(timeout=300)
    frame = convs.to_dataframe()
    assert list(frame["status"]) == ["finished"] * 3, [(c.status, c.detail) for c in convs]
    assert list(frame["answer"]) == [finish_message(f"Say hello to {n}") for n in rows["name"]]
    assert len(set(frame["id"])) == 3
    # the table shows each row's answer
    eventually(lambda: sorted(r["answer"] for r in table.rows) == sorted(frame["answer"]), 60)
    table.close()


def test_a_fanout_on_a_fresh_server_makes_one_sandbox_at_a_time() -> None:
    # no sandbox runs yet: rows started together would each make one, on one port (9 of 10
    # failed with a 401 before starts waited for each other's sandbox)
    with (
        RealServer(session_api_key=APP_KEY) as server,
        OpenHands(base_url=server.url, session_api_key=APP_KEY, progress=False) as fresh,
    ):
        convs = fresh.map("Say hello to {n}", [{"n": n} for n in range(4)])
        for conv in convs:
            conv.wait(timeout=300)
        assert [c.status for c in convs] == ["finished"] * 4, [c.detail for c in convs]
        assert [c.result for c in convs] == [finish_message(f"Say hello to {n}") for n in range(4)]


def test_resume_right_after_stop(oh: OpenHands) -> None:
    conv = oh.start("Pause and go [llm:many=4] [llm:slow=2]")
    seen: list[Snapshot] = []
    conv.subscribe(seen.append)
    eventually(lambda: any(e.type == "command" for s in seen for e in s.new_events), 180)
    conv.stop()
    conv.resume()  # the agent server refuses a run until the step under way has ended
    conv.wait(timeout=180)
    assert conv.status == "finished"
    assert conv.result == finish_message("Pause and go")


def test_a_dropped_socket_reconnects_and_reads_the_gap(agent_oh: OpenHands) -> None:
    conv, snaps = _watched_until(agent_oh, "Count on [llm:many=8] [llm:slow=1]", "command")
    tracker = conv.tracker
    [feed] = tracker.live_feeds()
    eventually(lambda: feed.socket is not None, 30)
    # the connection drops while the agent goes on: what it does meanwhile comes by the gap
    # read of the next connect
    sock = feed.socket
    assert sock is not None
    tracker.submit(sock.close()).result(timeout=10)
    conv.wait(timeout=180)
    assert conv.status == "finished", (conv.status, conv.detail)
    assert feed.connects >= 2, feed.connects
    shown = [e.text for s in snaps for e in s.new_events if e.type == "command"]
    assert shown == [f"echo step-{i}" for i in range(8)]  # each once, none missing
    outputs = [e.text.strip() for s in snaps for e in s.new_events if e.type == "output"]
    assert outputs == [f"step-{i}" for i in range(8)]


def _watched_until(oh: OpenHands, task: str, kind: str) -> tuple[Conversation, list[Snapshot]]:
    """Start ``task`` with a widget on screen (the live feed), and return once an event of
    ``kind`` has come: the conversation and every snapshot it got."""
    conv = oh.start(task)
    snaps: list[Snapshot] = []
    conv.subscribe(snaps.append, visible=True)
    eventually(lambda: any(e.type == kind for s in snaps for e in s.new_events), 180)
    return conv, snaps
