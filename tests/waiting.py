"""One way for tests to wait for something to become true, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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
