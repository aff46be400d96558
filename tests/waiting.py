"""How tests wait: for something to become true, with a deadline, in real time or on a
manual clock that the simulator and the tracker share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from openhands_jupyter.tracking import ManualClock

T = TypeVar("T")


def eventually(
    check: Callable[[], T],
    timeout: float = 20.0,
    every: float = 0.02,
    step: Callable[[float], object] | None = None,
) -> T:
    """Return ``check()``'s first true value; fail after ``timeout`` seconds. Between checks
    it sleeps ``every`` seconds, or calls ``step(every)`` (say, to pump a kernel's messages)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:g} s")
        (step or time.sleep)(every)
    return value


def holds(
    check: Callable[[], object],
    seconds: float,
    every: float = 0.02,
    what: str = "",
) -> None:
    """Fail as soon as ``check()`` is false during the next ``seconds`` seconds (say, that
    nothing more is sent, or a status stays as it is, for a while)."""
    began = time.monotonic()
    while True:
        if not check():
            late = time.monotonic() - began
            raise AssertionError(f"no longer true after {late:.2f} s: {what}".rstrip(": "))
        if time.monotonic() - began >= seconds:
            return
        time.sleep(every)


def tick(clock: ManualClock, seconds: float = 1.0) -> None:
    """Move a shared manual clock on, and let what woke (the tracker's loop, its feeds) do what
    is due until it sleeps again (a woken task that ends is given a moment, then left)."""
    before = clock.sleepers
    clock.advance(seconds)
    deadline = time.monotonic() + 2.0
    while clock.sleepers < max(1, before) and time.monotonic() < deadline:
        time.sleep(0.005)


def run_for(clock: ManualClock, seconds: float, step: float = 1.0) -> None:
    """``seconds`` of the shared clock, a ``tick`` at a time."""
    for _ in range(round(seconds / step)):
        tick(clock, step)


def until(clock: ManualClock, check: Callable[[], T], limit: float, step: float = 1.0) -> T:
    """``check()``'s first true value as the shared clock moves on a ``step`` at a time; fail
    after ``limit`` seconds of that clock."""
    moved = 0.0
    while not (value := check()):
        if moved >= limit:
            raise AssertionError(f"not true within {limit:g} s of the shared clock")
        tick(clock, step)
        moved += step
    return value
