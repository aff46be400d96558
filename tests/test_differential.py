"""The simulator held to the real server: the same questions to both (tests/support/real/survey.py),
compared by status code, JSON key sets and event kinds."""

from __future__ import annotations

from typing import Any

import pytest

from openhands_jupyter.sim import Simulator

from .support.real.fixtures import APP_KEY
from .support.real.launcher import RealServer
from .support.real.survey import Survey

pytestmark = [pytest.mark.real, pytest.mark.timeout(900)]


def _ask(url: str, task: str, busy_task: str) -> dict[str, Any]:
    survey = Survey(url, {"X-Session-API-Key": APP_KEY})
    try:
        return survey.run(task, busy_task)
    finally:
        survey.close()


def test_the_simulator_answers_as_the_real_server_does(agent_server: RealServer) -> None:
    real = _ask(
        agent_server.url, "Answer the survey [llm:command]", "Keep at it [llm:many=30] [llm:slow=1]"
    )
    # as the real server runs here: its own key, no web UI, one shared sandbox; a newer agent
    # server than the app pins, whose events the app's store refuses
    newer = agent_server.agent_server is not None
    with Simulator(
        speed=5,
        session_api_key=APP_KEY,
        frontend=False,
        grouping="ADD_TO_ANY",
        agent_version="1.58" if newer else "1.34",
        store_refuses=newer,
    ) as sim:
        simulated = _ask(sim.url, "Answer the survey", "Keep at it [sim:long]")
    kinds_real = real.pop("agent event kinds")
    kinds_sim = simulated.pop("agent event kinds")
    differences = {
        name: {"real": answer, "simulator": simulated.get(name)}
        for name, answer in real.items()
        if simulated.get(name) != answer
    }
    assert differences == {}
    # every kind of event the real agent wrote, the simulator writes, with the same fields
    missing = {kind: keys for kind, keys in kinds_real.items() if kinds_sim.get(kind) != keys}
    assert missing == {}, {k: (v, kinds_sim.get(k)) for k, v in missing.items()}
    assert len(real) >= 40  # every route the client uses, and the error answers
