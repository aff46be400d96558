"""What the agent changed: changed files and diffs from a handle, and the widget's Changes
section kept fresh by the tracker (after edits and once after the end, only while shown)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openhands_jupyter.api.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    UnsupportedError,
)
from openhands_jupyter.api.models import ConversationInfo, Event
from openhands_jupyter.api.workspace import FileChange, FileDiff
from openhands_jupyter.sim import EDITED_FILE, HOSTILE
from openhands_jupyter.tracking import ManualClock
from openhands_jupyter.tracking.changes import DIFFS_PER_REFRESH, ChangeSet, read
from openhands_jupyter.ui.changes import DIFF_SHOWN
from openhands_jupyter.ui.widget import ConversationWidget

from .conftest import SimClient
from .support.views import view
from .test_widget_views import Sent
from .waiting import eventually, holds, run_for, until

APP_ROUTES = ("v1.git_changes", "v1.git_diff")
AGENT_ROUTES = ("agent.git_changes", "agent.git_diff")


def _reads(sim: object) -> int:
    """Reads of changes and diffs, from the app server and the agent servers."""
    app, agent = sim.counts, sim.stats.agent_counts  # type: ignore[attr-defined]
    return sum(app[r] for r in APP_ROUTES) + sum(agent[r] for r in AGENT_ROUTES)


def test_changes_diff_and_files_from_a_handle(sim_client: SimClient, tmp_path: Path) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Fix the failing test", repository="octo/app").wait(timeout=30)
    [change] = conv.changes()
    assert (change.path, change.status, change.added, change.removed) == (
        EDITED_FILE,
        "updated",
        2,
        1,
    )
    diff = conv.diff(EDITED_FILE)
    assert diff.original is not None and "return None" in diff.original
    assert diff.modified is not None and "fetch_cached(request)" in diff.modified
    lines = diff.unified.splitlines()
    assert lines[:2] == [f"--- a/{EDITED_FILE}", f"+++ b/{EDITED_FILE}"]
    assert "-    return None" in lines and str(diff) == diff.unified
    assert repr(diff) == f"FileDiff({EDITED_FILE!r}, +2 -1)"
    assert conv.read_file(EDITED_FILE) == diff.modified
    with pytest.raises(NotFoundError, match=r"There is no file /workspace/project/app/nope\.txt"):
        conv.read_file("nope.txt")
    saved = conv.download(EDITED_FILE, tmp_path)
    assert saved == tmp_path / "api.py" and saved.read_text() == diff.modified
    assert conv.save_file(EDITED_FILE, tmp_path / "copy.py").read_text() == diff.modified


def test_a_new_file_and_hostile_names_come_back_literally(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Show me [sim:hostile]").wait(timeout=30)
    [change] = conv.changes()
    hostile_path = HOSTILE["edit"].partition(" ")[2]
    assert (change.path, change.status, change.added, change.removed) == (
        hostile_path,
        "added",
        3,
        0,
    )
    diff = conv.diff(hostile_path)
    assert diff.original is None
    assert diff.unified.splitlines()[:2] == ["--- /dev/null", f"+++ b/{hostile_path}"]


def test_bad_paths_fail_before_any_request(sim_client: SimClient) -> None:
    sim, oh = sim_client()
    conv = oh.start("Fix it").wait(timeout=30)
    before = _reads(sim) + sim.counts["v1.file"]
    for bad in ("", "   ", "a\x00b", None, 3):
        with pytest.raises(InputError, match="non-empty string"):
            conv.diff(bad)  # type: ignore[arg-type]
        with pytest.raises(InputError):
            conv.read_file(bad)  # type: ignore[arg-type]
    assert _reads(sim) + sim.counts["v1.file"] == before


def test_paused_sandbox_says_why_and_v0_says_not_offered(
    sim_client: SimClient,
) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Fix it").wait(timeout=30)
    conv.pause_sandbox()
    with pytest.raises(ConflictError, match="is paused: its files can be read only while"):
        conv.changes()
    _sim0, oh0 = sim_client(api="v0")
    old = oh0.start("Fix it").wait(timeout=30)
    with pytest.raises(UnsupportedError, match="does not offer reading a conversation's"):
        old.changes()


def test_the_widget_reads_changes_after_edits_and_once_after_the_end(
    sim_client: SimClient,
) -> None:
    clock = ManualClock()
    sim, oh = sim_client(clock=clock)
    conv = oh.start("Fix the failing test [sim:bigdiff]")
    widget = ConversationWidget(conv)
    sent = Sent(widget)
    state = until(
        clock,
        lambda: (
            conv.status == "finished"
            and (c := widget.state["changes"])["count"] == 2
            and all(f["added"] is not None for f in c["files"])
            and c
        ),
        600,
    )
    assert [(f["path"], f["status"]) for f in state["files"]] == [
        ("data/generated.csv", "added"),
        (EDITED_FILE, "updated"),
    ]
    assert state["files"][0]["added"] == 5000 and state["error"] == ""
    # a few reads, not one per status poll: each edit, and the end
    run_for(clock, 20)
    reads = _reads(sim)
    agent = sim.stats.agent_counts
    assert 0 < agent["agent.git_changes"] <= 5, dict(agent)
    # the agent server is up: not one of them cost an app-server request
    assert sum(sim.counts[r] for r in APP_ROUTES) == 0
    run_for(clock, 20)
    assert _reads(sim) == reads, "nothing new happened: nothing read again"

    # the browser asks for a diff: the first DIFF_SHOWN lines, then all of them
    widget._handle_custom(widget, {"diff": "data/generated.csv"}, [])
    got = eventually(lambda: [m for m in sent.messages if m.get("diff_of")])
    first = got[-1]
    assert first["total"] == 5003 and len(first["lines"]) == DIFF_SHOWN
    assert first["lines"][3] == "+line 1 of data/generated.csv"
    widget._handle_custom(widget, {"diff": "data/generated.csv", "all": True}, [])
    whole = eventually(lambda: [m for m in sent.messages if m.get("all")])[-1]
    assert len(whole["lines"]) == 5003
    # a file it does not know: an error line, not a traceback
    widget._handle_custom(widget, {"diff": "nope.txt"}, [])
    missing = eventually(lambda: [m for m in sent.messages if m.get("diff_of") == "nope.txt"])[-1]
    assert missing["lines"] == [] and missing["error"]
    widget.close()


def test_changes_cost_nothing_while_no_widget_shows_them(sim_client: SimClient) -> None:
    clock = ManualClock()
    sim, oh = sim_client(clock=clock)
    conv = oh.start("Fix the failing test")
    conv.subscribe(lambda s: None, visible=True)  # watched, but nothing shows changes
    until(clock, lambda: conv.status == "finished" and conv._tracked.settled, 600)
    run_for(clock, 10)
    assert _reads(sim) == 0
    assert conv.snapshot().changes == ()


def test_the_widget_says_why_while_paused_and_reads_again_after_resume(
    sim_client: SimClient,
) -> None:
    sim, oh = sim_client()
    conv = oh.start("Keep going [sim:long]")
    widget = ConversationWidget(conv)
    eventually(lambda: conv.status == "running")
    conv.pause_sandbox()
    eventually(lambda: conv.status == "paused")
    # the edit that comes after resuming is read; meanwhile the widget says why it can't
    conv.tracker.call_soon(conv._tracked.changes.everything_stale)
    state = eventually(lambda: widget.state["changes"]["error"] and widget.state["changes"])
    assert "paused" in state["error"] and "Resume it first" in state["error"]
    reads = _reads(sim)
    holds(lambda: _reads(sim) == reads, 0.5, what="no retries while paused")
    conv.resume()
    eventually(lambda: conv.status == "running")
    eventually(lambda: widget.state["changes"]["read"] and not widget.state["changes"]["error"])
    widget.close()


class Files:
    """The two calls read() makes of a backend (each path updated), counting the diffs."""

    def __init__(self, *paths: str) -> None:
        self.paths = paths
        self.diffs: list[str] = []
        self.text = "a\n"

    async def changes(self, info: object, root: str) -> list[FileChange]:
        return [FileChange(p, "updated") for p in self.paths]

    async def file_diff(self, info: object, root: str, path: str) -> FileDiff:
        self.diffs.append(path)
        return FileDiff(path, "a\n", self.text)


INFO = ConversationInfo(id="c" * 32, status="running")


def test_an_edit_named_by_an_absolute_path_reads_that_diff_again() -> None:
    backend = Files("src/x.py", "y.py")
    found = ChangeSet(root="./c")
    asyncio.run(read(backend, INFO, found))  # type: ignore[arg-type]
    assert backend.diffs == ["src/x.py", "y.py"]
    backend.text = "a\nb\n"
    found.note_events(
        [Event(id="e1", type="edit", source="agent", text="str_replace /w/c/src/x.py")]
    )
    asyncio.run(read(backend, INFO, found))  # type: ignore[arg-type]
    assert backend.diffs == ["src/x.py", "y.py", "src/x.py"]  # only the edited file again
    assert found.files[0] == FileChange("src/x.py", "updated", 1, 0)


def test_more_changed_files_than_one_read_takes_are_all_read_without_another_edit() -> None:
    paths = [f"f{i:02}.py" for i in range(2 * DIFFS_PER_REFRESH + 5)]
    backend = Files(*paths)
    backend.text = "a\nb\n"
    found = ChangeSet(root="./c", watchers=1)
    rounds = 0
    while found.wanted(float("inf")):
        asyncio.run(read(backend, INFO, found))  # type: ignore[arg-type]
        rounds += 1
        assert rounds < 10
    assert rounds == 3 and sorted(backend.diffs) == paths  # each file once
    assert [(f.path, f.added, f.removed) for f in found.files] == [(p, 1, 0) for p in paths]
    assert not found.wanted(float("inf")), "all read: nothing more until the next edit"


def test_a_workspace_that_is_not_a_git_repository_says_so(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Edit without git [sim:nogit]")
    widget = ConversationWidget(conv)
    view(widget)
    conv.wait(timeout=30)
    # git lists nothing, yet the agent edited a file: the section says why, and which file
    state = eventually(lambda: widget.state["changes"]["note"] and widget.state["changes"])
    assert state["read"] and state["files"] == [] and state["error"] == ""
    assert EDITED_FILE in state["note"] and "not a git repository" in state["note"]
    # a repository with the same edit lists it, and has nothing to say
    listed = oh.start("Edit with git")
    seen = ConversationWidget(listed)
    view(seen)
    listed.wait(timeout=30)
    state = eventually(lambda: seen.state["changes"]["files"] and seen.state["changes"])
    assert [f["path"] for f in state["files"]] == [EDITED_FILE] and state["note"] == ""
    widget.close()
    seen.close()
