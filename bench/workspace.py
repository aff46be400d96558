"""The notebook as the agent's workspace: the simulator beside a real OpenHands 1.11.0 server.

Run: ``.venv/bin/python -m bench.workspace [--only sim|real|map] [--mb 100] [--real-rows 10]``.
Prints a table and writes ``bench/results/workspace.json``. Measured on this machine:

- upload: a DataFrame of about ``--mb`` MB made ready (Parquet) and sent into a running
  conversation's workspace through its agent server, p50 of three;
- plan -> checklist: from the moment the agent writes its plan (the simulator's script; the
  fake LLM handing over its task_tracker call on the real server) to that plan in what a
  widget on screen shows (its tracker snapshot), p50/p95;
- ``oh.map`` over 200 rows: app-server requests in each minute of the tracker's clock, against
  its budget of 60, on the simulator; on the real server (200 real conversations are more than
  this machine runs) over ``--real-rows`` rows: the app-server requests in each minute until
  every row has finished, and how long that took.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from bench.live import Real, Server, Sim, log, pct
from openhands_jupyter import AsyncOpenHands, OpenHands
from openhands_jupyter.handles.uploads import uploads_for
from openhands_jupyter.sim import Simulator
from openhands_jupyter.sim.render import plan_tasks
from openhands_jupyter.tracking import Snapshot, TrackerConfig
from tests.support.real.fake_llm import PLAN, PLAN_START
from tests.support.real.launcher import RealServer

OUT = Path(__file__).resolve().parent / "results"


def frame(mb: int) -> pd.DataFrame:
    """About ``mb`` MB of numbers (as Parquet: random floats do not compress)."""
    rows = mb * 1024 * 1024 // (8 * 4)
    rng = np.random.default_rng(7)
    return pd.DataFrame(rng.random((rows, 4)), columns=["a", "b", "c", "d"])


async def upload(server: Server, mb: int) -> dict[str, Any]:
    oh = AsyncOpenHands(None, server.url, progress=False)
    conv = await server.start_one(oh, server.task(0, "upload"))
    await conv.wait_async(timeout=600)
    data = frame(mb)
    made: list[float] = []
    sent: list[float] = []
    size = 0
    backend = await oh.backend()
    info = await conv._fetch_info()
    # where the client puts uploads: the project, else the agent server's home
    root = await backend.workspace_root(info)
    if not root.startswith("/"):
        root = await backend.agent_home(info) + "/ohj-bench"
    for _ in range(3):
        began = time.perf_counter()
        [ready] = uploads_for({"big": data}, None, limit=10 * mb * 1024 * 1024)
        made.append(time.perf_counter() - began)
        size = len(ready.data)
        began = time.perf_counter()
        await backend.upload(info, f"{root}/big.parquet", ready.data)
        sent.append(time.perf_counter() - began)
    await oh.aclose()
    return {"bytes": size, "make_p50_s": pct(made, 0.5), "send_p50_s": pct(sent, 0.5)}


async def plan_to_shown(server: Server, runs: int) -> dict[str, Any]:
    oh = AsyncOpenHands(None, server.url, progress=False)
    seen: dict[int, dict[tuple[str, ...], float]] = {}
    tasks = [
        f"Bench plan {i} [sim:plan]"
        if isinstance(server, Sim)
        else f"Bench plan {i} [llm:plan] [llm:command] [llm:slow=1]"
        for i in range(runs)
    ]

    def watcher(i: int) -> Any:
        def on(snap: Snapshot) -> None:
            statuses = tuple(t.status for t in snap.plan)
            if statuses:
                seen.setdefault(i, {}).setdefault(statuses, time.monotonic())

        return on

    convs = await server.start_all(oh, tasks, watcher)
    for conv in convs:
        await conv.wait_async(timeout=600)
    await asyncio.sleep(1.0)
    delays = []
    for i, conv in enumerate(convs):
        for statuses, written in written_plans(server, tasks[i], conv.id or ""):
            shown = seen.get(i, {}).get(statuses)
            if shown is not None:
                delays.append(shown - written)
    await oh.aclose()
    return {"runs": runs, "samples": len(delays), "p50": pct(delays, 0.5), "p95": pct(delays, 0.95)}


def written_plans(server: Server, task: str, conv_id: str) -> list[tuple[tuple[str, ...], float]]:
    """Each plan the agent wrote, as its statuses, and when."""
    if isinstance(server, Sim):
        conv = server.sim.world.conversations[conv_id]
        return [
            (tuple(t["status"] for t in plan_tasks(e.text)), e.moment)
            for e in conv.events
            if e.type == "plan"
        ]
    assert isinstance(server, Real) and server.server.llm is not None
    calls = [
        t for t, text, name in server.server.llm.calls if text == task and name == "task_tracker"
    ]
    forms = [PLAN_START, ("done",) * len(PLAN)]
    return list(zip(forms, calls))


def map_rate(rows: int = 200, speed: float = 20.0) -> dict[str, Any]:
    with (
        Simulator(speed=speed, scenario="long") as sim,
        OpenHands(
            None,
            sim.url,
            tracker_config=TrackerConfig(time_scale=1 / speed, budget_per_minute=60),
            progress=False,
        ) as oh,
    ):
        began = time.monotonic()
        convs = oh.map("Long task {i}", [{"i": i} for i in range(rows)])
        minute = 60 / speed
        time.sleep(3 * minute)
        stamps = [r.at - began for r in sim.stats.log]
        per_minute = [
            sum(1 for t in stamps if k * minute <= t < (k + 1) * minute) for k in range(3)
        ]
        started = sum(c.status != "queued" for c in convs)
        oh.tracker.close()
    return {"rows": rows, "requests_per_minute": per_minute, "budget": 60, "not_queued": started}


class Counting(httpx.AsyncHTTPTransport):
    """The client's HTTP transport, noting when each request to ``host`` went."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host
        self.stamps: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.netloc.decode() == self.host:
            self.stamps.append(time.monotonic())
        return await super().handle_async_request(request)


def map_rate_real(server: RealServer, rows: int) -> dict[str, Any]:
    counting = Counting(httpx.URL(server.url).netloc.decode())
    with OpenHands(None, server.url, transport=counting, progress=False) as oh:
        began = time.monotonic()
        convs = oh.map("Say hello to {i}", [{"i": i} for i in range(rows)])
        for conv in convs:
            conv.wait(timeout=600)
        took = time.monotonic() - began
        finished = sum(c.status == "finished" for c in convs)
        oh.tracker.close()
    stamps = [t - began for t in counting.stamps if t - began < took]
    per_minute = [
        sum(1 for t in stamps if k * 60 <= t < (k + 1) * 60) for k in range(int(took // 60) + 1)
    ]
    return {
        "rows": rows,
        "finished": finished,
        "seconds": round(took, 1),
        "requests_per_minute": per_minute,
        "budget": 60,
    }


async def measure(server: Server, mb: int, runs: int) -> dict[str, Any]:
    out = {"upload": await upload(server, mb), "plan": await plan_to_shown(server, runs)}
    log(server.name, json.dumps(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["sim", "real", "map"])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--real-rows", type=int, default=10)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    results: dict[str, Any] = {}
    if args.only not in ("real", "map"):
        with Simulator(speed=1.0) as sim:
            results["simulator"] = asyncio.run(measure(Sim(sim), args.mb, args.runs))
        results["map_200_rows"] = map_rate()
    if args.only != "sim":
        with RealServer() as real:
            if args.only != "map":
                results["real"] = asyncio.run(measure(Real(real), args.mb, min(args.runs, 3)))
            results["map_real"] = map_rate_real(real, args.real_rows)
    print(f"{'':28} {'simulator':>22} {'real 1.11.0':>22}")
    sim_r, real_r = results.get("simulator"), results.get("real")

    def cell(r: dict[str, Any] | None, key: str, field: str, fmt: str) -> str:
        return format(r[key][field], fmt) if r else "-"

    for label, key, field, fmt in [
        ("upload: bytes", "upload", "bytes", ",d"),
        ("upload: make ready p50 s", "upload", "make_p50_s", ".2f"),
        ("upload: send p50 s", "upload", "send_p50_s", ".2f"),
        ("plan -> shown p50 s", "plan", "p50", ".3f"),
        ("plan -> shown p95 s", "plan", "p95", ".3f"),
    ]:
        print(f"{label:28} {cell(sim_r, key, field, fmt):>22} {cell(real_r, key, field, fmt):>22}")
    if "map_200_rows" in results:
        m = results["map_200_rows"]
        print(
            f"oh.map over {m['rows']} rows: {m['requests_per_minute']} requests in each of the "
            f"first 3 minutes (budget {m['budget']}); {m['not_queued']} started by then"
        )
    if "map_real" in results:
        m = results["map_real"]
        print(
            f"oh.map over {m['rows']} rows on the real server: {m['finished']} finished in "
            f"{m['seconds']:g} s; {m['requests_per_minute']} app-server requests in each minute "
            f"(budget {m['budget']})"
        )
    (OUT / "workspace.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
