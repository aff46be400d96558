"""V1 and V0 driven end to end against the simulator over real HTTP."""

from __future__ import annotations

import pytest

from openhands_jupyter import ConflictError, NotFoundError, OpenHands
from openhands_jupyter.sim import SCRIPT_COMMAND, SCRIPT_OUTPUT, Simulator, finish_message

from .conftest import API_KEY, SESSION_KEY, SimClient, fast_config
from .waiting import eventually


def _wait_status(conv, wanted: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    eventually(lambda: conv.status == wanted, timeout)


def _drive(oh: OpenHands, sim: Simulator, seen: list[str], v1: bool = True) -> None:
    task = "Fix the failing test in tests/test_api.py"
    conv = oh.start(task, repository="octo/app", branch="main")
    conv.subscribe(lambda s: seen.append(s.status) if not seen or seen[-1] != s.status else None)
    assert conv.status in ("starting", "queued")
    conv.wait(timeout=20)
    assert conv.status == "finished"
    # a short run on a busy machine may go from starting to finished between two reads
    assert seen[0] == "starting" and seen[-1] == "finished", seen
    assert set(seen) <= {"starting", "running", "finished"}, seen
    assert conv.id is not None and len(conv.id) == 32
    assert conv.repository == "octo/app" and conv.branch == "main"
    assert conv.url == f"{sim.url}/conversations/{conv.id}"
    assert conv.result == finish_message(task)
    events = conv.events()
    commands = [e.text for e in events if e.type == "command"]
    outputs = [e.text for e in events if e.type == "output"]
    assert SCRIPT_COMMAND in commands and SCRIPT_OUTPUT in outputs

    conv.send("Also update the README")
    # under way until the server shows the message: never the old status's answer
    assert conv.status == "running" or conv.doing == "sending…"
    assert conv.result is None
    conv.wait(timeout=20)
    assert conv.status == "finished"
    assert conv.result == finish_message("Also update the README")

    # a finished agent has nothing to stop; pausing the whole sandbox (a V0 runtime) is its
    # own action
    with pytest.raises(ConflictError, match="there is no running agent to stop"):
        conv.stop()
    assert conv.pause_sandbox() == [conv.id]
    _wait_status(conv, "paused")
    with pytest.raises(ConflictError) as info:
        conv.send("one more thing")
    assert "\n" not in str(info.value)
    conv.resume()
    _wait_status(conv, "finished", timeout=15)
    conv.send("one more thing")
    conv.wait(timeout=20)
    assert conv.result == finish_message("one more thing")

    conv.delete()
    with pytest.raises(NotFoundError):
        oh.get(conv.id)  # type: ignore[arg-type]
    _wait_status(conv, "archived")


def test_v1_end_to_end(sim: Simulator) -> None:
    seen: list[str] = []
    with OpenHands(API_KEY, sim.url, tracker_config=fast_config(), progress=False) as oh:
        _drive(oh, sim, seen)
        assert sim.counts["v1.start"] == 1
        # two messages: the one to a paused conversation is refused before it is sent
        assert sim.counts["v1.send_message"] == 2
        assert sim.counts["v1.pause"] == 1 and sim.counts["v1.resume"] == 1
        assert sim.counts["v1.delete"] == 1


def test_v0_end_to_end(sim_v0: Simulator) -> None:
    seen: list[str] = []
    with OpenHands(
        None, sim_v0.url, api_version="v0", tracker_config=fast_config(), progress=False
    ) as oh:
        _drive(oh, sim_v0, seen, v1=False)
        assert sim_v0.counts["v0.create"] == 1
        assert sim_v0.counts["v0.message"] == 2
        assert sim_v0.counts["v0.stop"] == 1 and sim_v0.counts["v0.start"] == 1
        assert sim_v0.counts["v0.delete"] == 1
        assert sim_v0.counts.get("v1.start", 0) == 0


def test_auto_version_probes_once(sim_client: SimClient) -> None:
    for api in ("v1", "v0"):
        sim, oh = sim_client(speed=20, api=api)
        conv = oh.start("Say hello [sim:idle]")
        conv.wait(timeout=20)
        assert conv.status == "idle"
        oh.list()
        probes = sim.counts["v1.count"] + sim.counts["v0.conversations"]
        assert probes <= 2 + 1  # one probe (V0: V1 probe then V0 probe) + the list call


def test_get_list_and_events_on_old_path(sim: Simulator) -> None:
    sim.config.events_path = "old"
    sim.stop_agent_server()  # events come from the app server's store only
    with OpenHands(API_KEY, sim.url, tracker_config=fast_config(), progress=False) as oh:
        a = oh.start("first task")
        b = oh.start("second task")
        a.wait(timeout=20)
        b.wait(timeout=20)
        assert a.result == finish_message("first task")
        recent = oh.list(limit=1)
        assert [c.id for c in recent] == [b.id]
        assert {c.id for c in oh.list(limit=10)} == {a.id, b.id}
        assert oh.count() == 2
        again = oh.get(a.id.upper())  # type: ignore[union-attr]
        assert again.id == a.id and again.status == "finished"
        assert sim.counts["v1.events_old"] > 0
        assert sim.counts["v1.events"] == 1  # tried once, then remembered
        assert b.download()[:2] == b"PK"


@pytest.mark.parametrize(
    ("scenario", "status"),
    [
        ("error", "error"),
        ("stuck", "stuck"),
        ("waiting", "waiting"),
        ("idle", "idle"),
        ("start_error", "error"),
        ("paused", "paused"),
    ],
)
def test_scripted_scenarios_reach_their_status(sim: Simulator, scenario: str, status: str) -> None:
    with OpenHands(API_KEY, sim.url, tracker_config=fast_config(), progress=False) as oh:
        conv = oh.start(f"Do it [sim:{scenario}]")
        conv.wait(timeout=20)
        assert conv.status == status
        if scenario == "start_error":
            assert conv.detail is not None and "Sandbox failed to start" in conv.detail
        if scenario == "waiting":
            conv.send("yes, go ahead")
            conv.wait(timeout=20)
            assert conv.status == "finished"


def test_session_key_never_shows(sim: Simulator) -> None:
    with OpenHands(API_KEY, sim.url, tracker_config=fast_config(), progress=False) as oh:
        conv = oh.start("leak check")
        conv.wait(timeout=20)
        texts = [
            repr(oh),
            str(oh),
            repr(conv),
            repr(conv.info),
            repr(conv.raw),
            str(conv.raw),
            repr(conv.snapshot()),
            repr(oh.tracker),
            repr(oh.aio.transport),
        ]
        texts += [repr(e) + repr(e.raw) for e in conv.events()]
        texts += [repr(c) + repr(c.raw) + repr(c.info) for c in oh.list()]
        for text in texts:
            assert SESSION_KEY not in text and API_KEY not in text
        assert conv.info is not None and conv.info.session_api_key is not None
        assert conv.info.session_api_key.get() == SESSION_KEY
