"""Against a real OpenHands 1.6.0, the last release with the legacy V0 API beside V1: "auto"
picks what that server's web UI uses, and both generations work end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openhands_jupyter import ConflictError, NotFoundError, OpenHands
from openhands_jupyter.tracking import Snapshot, TrackerConfig

from .support.real.fake_llm import COMMAND, finish_message
from .support.real.fixtures import serve
from .support.real.launcher import RealServer
from .waiting import eventually

pytestmark = [pytest.mark.real, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def server16() -> Iterator[RealServer]:
    yield from serve("server16")


@pytest.fixture(scope="module")
def server16_v0() -> Iterator[RealServer]:
    yield from serve("server16_v0")


def _client(server: RealServer) -> OpenHands:
    return OpenHands(base_url=server.url, progress=False)


def test_v1_on_a_1_6_server(server16: RealServer) -> None:
    with _client(server16) as oh:
        conv = oh.start("Greet from V1 [llm:command] [llm:slow=3]")
        assert oh.generation == "v1"  # what 1.6's web UI starts (its settings: v1_enabled)
        seen: list[Snapshot] = []
        unsubscribe = conv.subscribe(seen.append)
        conv.wait(timeout=300)
        unsubscribe()
        # 1.6's agent server takes the session key in the socket's header only: still live
        assert "live" in {s.activity for s in seen}
        assert conv.status == "finished", (conv.status, conv.detail)
        assert conv.result == finish_message("Greet from V1")
        events = conv.events()
        assert [e.text for e in events if e.type == "command"] == [COMMAND]
        assert [e.exit_code for e in events if e.type == "output"] == [0]
        # 1.6's V1 has no send-message: the follow-up goes to the agent server
        conv.send("Again from V1")
        conv.wait(timeout=120)
        assert conv.result == finish_message("Again from V1")
        # from the app server's event store only: 1.6's timestamp filter fails there (a 500),
        # so its events are read newest first
        with OpenHands(
            base_url=server16.url, progress=False, tracker_config=TrackerConfig(live_events=False)
        ) as store_only:
            same = store_only.get(conv.id)  # type: ignore[arg-type]
            same.send("Once more from V1")
            same.wait(timeout=180)
            assert same._tracked.result == finish_message("Once more from V1")
            assert same._tracked.last_error is None
        # nor a V1 delete: the legacy route deletes it
        conv.delete()
        with pytest.raises(NotFoundError):
            oh.get(conv.id)  # type: ignore[arg-type]


def test_v0_on_a_1_6_server_with_v1_off(server16_v0: RealServer) -> None:
    with _client(server16_v0) as oh:
        conv = oh.start("Greet from V0 [llm:command]")
        assert oh.generation == "v0"
        conv.wait(timeout=300)
        assert conv.status == "finished", (conv.status, conv.detail)
        assert conv.result == finish_message("Greet from V0")
        events = conv.events()
        assert COMMAND in [e.text for e in events if e.type == "command"]
        # 1.6 writes the exit code into the observation's metadata
        assert [e.exit_code for e in events if e.type == "output"] == [0]
        conv.send("Again from V0")
        conv.wait(timeout=120)
        assert conv.result == finish_message("Again from V0")


def test_v0_long_run_keeps_its_state(server16_v0: RealServer) -> None:
    with _client(server16_v0) as oh:
        conv = oh.start("Many steps [llm:many=14] [llm:slow=0.6]")
        # wait until the run has produced more events than one status read looks at
        try:
            eventually(lambda: len([e for e in conv.events() if e.type == "output"]) >= 11, 500, 1)
        except AssertionError:
            shown = [(e.type, e.text[:60]) for e in conv.events()][-8:]
            raise AssertionError(
                f"{conv.status}, its last events {shown}; the server's log ends:\n"
                + server16_v0.log_tail(60)
            ) from None
        # agent_state_changed only came at the start: it is still known as running
        assert conv.refresh().status == "running"
        conv.wait(timeout=120)
        assert conv.status == "finished"
        assert conv.result == finish_message("Many steps")
        # a finished agent has nothing to stop; stopping its runtime is pausing its sandbox
        with pytest.raises(ConflictError, match="there is no running agent to stop"):
            conv.stop()
        assert conv.pause_sandbox() == [conv.id]
        assert conv.refresh().status == "paused"
        conv.delete()
