"""Shared fixtures: a simulator on a free 127.0.0.1 port and fast tracker settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openhands_jupyter import OpenHands
from openhands_jupyter.sim import Simulator
from openhands_jupyter.tracking import TrackerConfig

SPEED = 20.0
API_KEY = "oh-test-KEY-1234567890abcdef"
SESSION_KEY = "sess-SECRET-abcdef0123456789"


def fast_config(**overrides: object) -> TrackerConfig:
    """Tracker settings on the simulator's sped-up clock."""
    values: dict[str, object] = {"time_scale": 1.0 / SPEED, "budget_per_minute": 60}
    values.update(overrides)
    return TrackerConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(speed=SPEED, api_key=API_KEY, conversation_session_key=SESSION_KEY) as server:
        yield server


@pytest.fixture
def sim_v0() -> Iterator[Simulator]:
    with Simulator(speed=SPEED, api="v0", conversation_session_key=SESSION_KEY) as server:
        yield server


@pytest.fixture
def client(sim: Simulator) -> Iterator[OpenHands]:
    oh = OpenHands(API_KEY, sim.url, tracker_config=fast_config(), progress=False)
    yield oh
    oh.close()


# the real OpenHands server, started once for every test that asks for it
from .real.fixtures import real_server  # noqa: E402, F401
