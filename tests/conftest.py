"""Shared fixtures: a simulator on a free 127.0.0.1 port and fast tracker settings."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from openhands_jupyter import OpenHands
from openhands_jupyter.sim import Simulator
from openhands_jupyter.tracking import TrackerConfig

from . import home
from .home import PrivateDirs

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


SimClient = Callable[..., tuple[Simulator, OpenHands]]


@pytest.fixture
def sim_client() -> Iterator[SimClient]:
    """``sim_client(**simulator_options)`` starts a simulator (at ``SPEED`` unless told) and a
    client on it with fast tracker settings (``config=``, ``key=``, ``progress=`` to change
    them); both close after the test. With ``clock=`` (a ``ManualClock``) the simulator and
    the tracker share it, unscaled: the test moves time (``waiting.run_for``, ``until``)."""
    with ExitStack() as stack:

        def make(
            *,
            key: str | None = None,
            config: TrackerConfig | None = None,
            progress: bool = False,
            **options: Any,
        ) -> tuple[Simulator, OpenHands]:
            clock = options.get("clock")
            options.setdefault("speed", SPEED if clock is None else 1.0)
            if config is None:
                config = (
                    fast_config() if clock is None else fast_config(time_scale=1.0, clock=clock)
                )
            server = stack.enter_context(Simulator(**options))
            oh = OpenHands(key, server.url, tracker_config=config, progress=progress)
            stack.enter_context(oh)
            return server, oh

        yield make


@pytest.fixture
def client(sim: Simulator) -> Iterator[OpenHands]:
    oh = OpenHands(API_KEY, sim.url, tracker_config=fast_config(), progress=False)
    yield oh
    oh.close()


# the real OpenHands server, started once for every test that asks for it
from .support.real.fixtures import (  # noqa: E402, F401
    agent_oh,
    agent_server,
    real_client,
    real_server,
    server158,
)


def pytest_configure(config: pytest.Config) -> None:
    """Kernels and shells the suite starts keep their files in private folders."""
    PrivateDirs()


def _parallel_worker(config: pytest.Config) -> bool:
    """This process is one of the workers of a parallel run (``-n``), not its controller."""
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not _parallel_worker(session.config):
        session.config.stash[_HOME] = (home.fingerprint(), home.litter())


def _left_behind(session: pytest.Session) -> list[str]:
    """What the run left: in the user's home (git config, shell history, IPython or
    agent-server folders written there by anything the tests started), and the servers'
    and their agents' folders in the temporary folder. Checked once every worker is done."""
    if _HOME not in session.config.stash:
        return []
    before, tmp_before = session.config.stash[_HOME]
    changed = home.changes(before, home.fingerprint())
    problems = ["The test run changed the user's home:", *changed[:40]] if changed else []
    left = sorted(home.litter() - tmp_before)
    if left:
        problems.append(
            f"The test run left {len(left)} folders in {tempfile.gettempdir()}: "
            + ", ".join(left[:10])
        )
    return problems


_HOME = pytest.StashKey[tuple[dict[str, str], set[str]]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """When real-server tests are selected: install the real OpenHands servers before any
    test runs (the first install takes minutes, longer than one test's timeout), then start
    the servers those tests use, in the background, while the first tests run. A failed
    install or start fails those tests loudly (never a skip)."""
    items = session.items
    if not any(item.get_closest_marker("real") for item in items):
        return
    from concurrent.futures import ThreadPoolExecutor

    from .support.real.fixtures import AGENT_SERVERS, SERVERS, later, start_early
    from .support.real.launcher import (
        NEW_AGENT_VERSION,
        V0_VERSION,
        V1_VERSION,
        RealServerError,
        ensure_installed,
    )

    def servers(item: pytest.Item) -> list[str]:
        names = list(getattr(item, "fixturenames", ()))
        if "agent_server" in names:
            callspec = getattr(item, "callspec", None)
            param = callspec.params.get("agent_server") if callspec else None
            names += [AGENT_SERVERS[param]] if param else list(AGENT_SERVERS.values())
        return names

    wanted = [
        name
        for name in dict.fromkeys(name for item in items for name in servers(item))
        if name in SERVERS
    ]
    versions = [V1_VERSION]
    if "server158" in wanted:
        versions.append(f"agent-server-{NEW_AGENT_VERSION}")
    if any(name.startswith("server16") for name in wanted):
        versions.append(V0_VERSION)
    with ThreadPoolExecutor(len(versions)) as pool:
        for future in [pool.submit(ensure_installed, v, sys.stderr) for v in versions]:
            try:
                future.result()
            except RealServerError:
                pass  # remembered: the tests that need that server fail with it
    if _parallel_worker(session.config):
        later[:] = wanted  # started when this worker first needs one (if it ever does)
    else:
        start_early(wanted)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In a parallel run (``-n 2``) the real-server tests go to one worker together: the
    servers start once, in that worker, while the other runs the rest."""
    for item in items:
        if item.get_closest_marker("real"):
            item.add_marker(pytest.mark.xdist_group("real"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    from .support.real.fixtures import stop_early

    stop_early()
    fake_llm = sys.modules.get(f"{__package__}.support.real.fake_llm")
    if fake_llm is not None:
        fake_llm.remove_files()
    problems = _left_behind(session)
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write("\n")
        for line in problems:
            if reporter is not None:
                reporter.write_line(line, red=True)
            else:
                print(line, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
