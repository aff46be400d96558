"""The simulator answers as OpenHands does: shapes, limits, auth and faults."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from openhands_jupyter.sim import Faults, Simulator, finish_message

from .conftest import API_KEY, SimClient
from .waiting import eventually


def _start(client: httpx.Client, task: str = "hello") -> httpx.Response:
    return client.post(
        "/api/v1/app-conversations",
        json={"initial_message": {"content": [{"type": "text", "text": task}]}},
    )


def test_start_task_progresses_to_ready_and_batch_get_returns_nulls() -> None:
    with Simulator(speed=20) as sim, httpx.Client(base_url=sim.url) as c:
        sim.world.null_period = 60.0  # 3 s of real time: wide enough to look at
        task = _start(c).json()
        assert task["status"] == "WORKING" and task["app_conversation_id"] is None
        assert task["created_at"].endswith("Z")
        phases = set()

        def ready() -> dict[str, Any] | None:
            [t, missing] = c.get(
                "/api/v1/app-conversations/start-tasks", params={"ids": [task["id"], "0" * 32]}
            ).json()
            phases.add(t["status"])
            assert missing is None
            return t if t["status"] == "READY" else None

        t = eventually(ready, 10, 0.01)
        assert {"WAITING_FOR_SANDBOX", "READY"} <= phases
        cid = t["app_conversation_id"]
        [conv, none] = c.get("/api/v1/app-conversations", params={"ids": [cid, "1" * 32]}).json()
        assert none is None and conv["sandbox_status"] == "RUNNING"
        assert conv["execution_status"] is None  # the ~60 s gap after a start
        r = c.get("/api/v1/app-conversations", params={"ids": ["a" * 32] * 100})
        assert r.status_code == 400 and "Maximum is 99" in r.json()["detail"]
        r = c.get("/api/v1/app-conversations", params={"ids": ["nope"]})
        assert r.status_code == 400 and "Invalid UUID" in r.json()["detail"]
        assert c.get("/api/v1/app-conversations/count").json() == 1


def test_auth_shapes() -> None:
    with Simulator(api_key=API_KEY) as sim, httpx.Client(base_url=sim.url) as c:
        assert c.get("/api/v1/app-conversations/count").json() == {"error": "NoCredentialsError"}
        r = c.get("/api/v1/app-conversations/count", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json() == {"error": "BearerTokenError"}
        ok = c.get(
            "/api/v1/app-conversations/count", headers={"Authorization": f"Bearer {API_KEY}"}
        )
        assert ok.json() == 0
    with Simulator(session_api_key="sk-self") as sim, httpx.Client(base_url=sim.url) as c:
        r = c.get("/api/v1/app-conversations/count")
        assert r.status_code == 401 and r.json() == {"detail": "Unauthorized"}
        assert (
            c.get(
                "/api/v1/app-conversations/count", headers={"X-Session-API-Key": "sk-self"}
            ).json()
            == 0
        )


def test_unknown_paths_as_a_real_server_answers_them() -> None:
    # with the web UI mounted (the Cloud, the default self-hosted server): a GET gets its page,
    # anything else 405
    with Simulator() as sim, httpx.Client(base_url=sim.url) as c:
        r = c.get("/api/does/not/exist")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert c.get("/api/conversations").status_code == 200  # V0 on a V1-only server
        assert c.post("/api/does/not/exist", json={}).status_code == 405
        assert c.delete("/api/conversations/" + "0" * 32).status_code == 405
    # without it (SERVE_FRONTEND=false): FastAPI's bare 404
    with Simulator(frontend=False) as sim, httpx.Client(base_url=sim.url) as c:
        for r in (c.get("/api/does/not/exist"), c.post("/api/v1/nope", json={})):
            assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


def test_rate_limit_with_headers() -> None:
    with (
        Simulator(rate_limit=True, scale_rate_limit=False) as sim,
        httpx.Client(base_url=sim.url) as c,
    ):
        codes = [c.get("/api/v1/app-conversations/count") for _ in range(25)]
        limited = [r for r in codes if r.status_code == 429]
        assert limited, "11th request within a second must be refused"
        r = limited[0]
        assert float(r.headers["Retry-After"]) <= 1.0
        assert r.headers["X-RateLimit-Remaining"] == "0" and "X-RateLimit-Reset" in r.headers


def test_concurrency_limit_body() -> None:
    with Simulator(max_concurrent=1) as sim, httpx.Client(base_url=sim.url) as c:
        assert _start(c).status_code == 200
        r = _start(c)
        assert r.status_code == 429
        detail = r.json()["detail"]
        assert detail["error"] == "CONCURRENCY_LIMIT_REACHED" and detail["limit"] == 1


def test_stream_start_is_one_json_array() -> None:
    with Simulator(speed=50) as sim, httpx.Client(base_url=sim.url) as c:
        r = c.post(
            "/api/v1/app-conversations/stream-start",
            json={"initial_message": {"content": [{"type": "text", "text": "x"}]}},
        )
        items = r.json()
        assert items[0]["status"] == "WORKING" and items[-1]["status"] == "READY"
        assert r.text.startswith("[\n") and r.text.endswith("}]")


@pytest.mark.parametrize("kind", ["error_rate", "html_rate", "malformed_rate", "drop_rate"])
def test_fault_injection(kind: str) -> None:
    with Simulator(faults=Faults(**{kind: 1.0})) as sim, httpx.Client(base_url=sim.url) as c:
        try:
            r = c.get("/api/v1/app-conversations/count")
        except httpx.HTTPError:
            assert kind == "drop_rate"
        else:
            if kind == "error_rate":
                assert r.status_code >= 500
            elif kind == "html_rate":
                assert r.headers["content-type"].startswith("text/html")
            else:
                with pytest.raises(ValueError):
                    r.json()
        assert sum(sim.stats.faults_injected.values()) == 1
        assert sim.counts["v1.count"] == 1


def test_one_route_table_per_version_serves_and_names_requests() -> None:
    from openhands_jupyter.sim.config import SimConfig
    from openhands_jupyter.sim.routes import V0_ROUTES, V1_ROUTES, route_name
    from openhands_jupyter.sim.v0_api import v0_handlers
    from openhands_jupyter.sim.v1_api import v1_handlers
    from openhands_jupyter.sim.world import World

    cfg = SimConfig(world=World())
    assert {s.name for s in V1_ROUTES} == set(v1_handlers(cfg))
    assert {s.name for s in V0_ROUTES} == set(v0_handlers(cfg))
    cid = "0" * 32
    assert route_name("POST", "/api/v1/app-conversations") == "v1.start"
    assert route_name("GET", "/api/v1/app-conversations") == "v1.conversations"
    assert route_name("DELETE", f"/api/v1/app-conversations/{cid}") == "v1.delete"
    assert route_name("PATCH", f"/api/v1/app-conversations/{cid}/") == "v1.patch"
    assert route_name("GET", "/api/v1/app-conversations/count") == "v1.count"
    assert route_name("POST", f"/api/conversations/{cid}/stop") == "v0.stop"
    assert route_name("GET", f"/api/conversations/{cid}") == "v0.conversation"
    assert route_name("GET", "/api/nothing/here") == "other"


def test_a_request_sent_while_told_to_wait_counts_as_early() -> None:
    """``stats.early_after_429`` catches a client that ignores ``Retry-After``."""
    with Simulator(api_key=API_KEY) as sim:
        sim.faults.rate_limit_rate = 1.0
        sim.faults.retry_after = 2.0
        headers = {"Authorization": f"Bearer {API_KEY}"}
        url = f"{sim.url}/api/v1/app-conversations/count"
        assert httpx.get(url, headers=headers).status_code == 429
        time.sleep(0.3)  # the client had the 429 (IN_FLIGHT ago) and did not wait
        assert httpx.get(url, headers=headers).status_code == 429
        assert sim.stats.early_after_429 == 1


def test_a_follow_up_that_asks_for_long_work_keeps_the_agent_at_it(sim_client: SimClient) -> None:
    # the newest request sets the work, as the real server's model takes it: a follow-up
    # marked [sim:long] runs long, a plain one looks once and finishes
    _sim, oh = sim_client()
    conv = oh.start("Short one")
    conv.wait(timeout=20)
    conv.send("Now the long haul [sim:long]")
    eventually(lambda: sum(e.type == "command" for e in conv.events()) > 20, 30)
    assert conv.refresh().status == "running"
    conv.stop()
    plain = oh.start("Short two")
    plain.wait(timeout=20)
    plain.send("One more look")
    said = finish_message("One more look")
    eventually(lambda: any(e.text == said for e in plain.events()), 20)
    eventually(lambda: plain.refresh().status == "finished", 10)
