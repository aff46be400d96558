"""``conv.on(status, callback)``: a user's function, run once each time a conversation reaches
a status, on the client's loop."""

from __future__ import annotations

import logging
import threading

import pytest

from openhands_jupyter import Conversation, InputError

from .conftest import SimClient
from .waiting import eventually, holds


def test_on_finished_is_called_once_with_the_conversation(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Tell me when you are done")
    called: list[tuple[Conversation, str, str]] = []
    threads: set[str] = set()

    def done(c: Conversation) -> None:
        called.append((c, c.status, c.result or ""))
        threads.add(threading.current_thread().name)

    conv.on("finished", done)
    conv.wait(timeout=30)
    eventually(lambda: called)
    holds(lambda: len(called) == 1, 0.5, what="called once")
    [(handle, status, result)] = called
    assert handle == conv and status == "finished" and result.startswith("Done:")
    # on the client's loop, never on the caller's thread
    assert threads == {"openhands-tracker"}


def test_on_waiting_and_on_error_and_ended(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    careful = oh.start("Clean up [sim:waiting]", confirm=True)
    failing = oh.start("Build it [sim:error]")
    seen: list[str] = []
    careful.on("waiting", lambda c: seen.append(f"waiting {len(c.pending)}"))
    failing.on("error", lambda c: seen.append(f"error {c.status}"))
    failing.on("ended", lambda c: seen.append("ended"))
    eventually(lambda: len(seen) == 3, 30)
    assert sorted(seen) == ["ended", "error error", "waiting 1"]


def test_a_status_already_reached_calls_at_once_and_stop_ends_the_calls(
    sim_client: SimClient,
) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Done already")
    conv.wait(timeout=30)
    late: list[str] = []
    conv.on("finished", lambda c: late.append(c.status))
    eventually(lambda: late == ["finished"])
    # a follow-up runs it again: finished again, once more; then the calls are stopped
    again: list[str] = []
    stop = conv.on("running", lambda c: again.append("running"))
    conv.send("One more thing")
    conv.wait(timeout=30)
    eventually(lambda: late == ["finished", "finished"])
    assert again == ["running"]
    stop()
    conv.send("And another")
    conv.wait(timeout=30)
    eventually(lambda: len(late) == 3)
    holds(lambda: again == ["running"], 0.3, what="no call once stopped")


def test_a_failing_callback_is_logged_and_tracking_goes_on(
    sim_client: SimClient, caplog: pytest.LogCaptureFixture
) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Keep going")

    def broken(c: Conversation) -> None:
        raise RuntimeError("the user's mistake")

    conv.on("running", broken)
    conv.wait(timeout=30)
    assert conv.status == "finished"
    failed = eventually(
        lambda: [r for r in caplog.records if "on('running') callback failed" in r.getMessage()]
    )
    assert failed[0].levelno == logging.ERROR and "the user's mistake" in (failed[0].exc_text or "")


def test_what_on_takes_is_checked_before_anything_is_followed(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Checked")
    with pytest.raises(InputError, match=r"on\(\) takes one of .*finished.*; not 'done'"):
        conv.on("done", print)
    with pytest.raises(InputError, match="needs a function"):
        conv.on("finished", "print")  # type: ignore[arg-type]
