"""Tracking benchmark: requests/min and staleness of the tracker versus naive per-conversation
pollers, at N running conversations, and the tracker's CPU use at N = 50.

Run: ``.venv/bin/python -m bench.tracking [--quick]``. Prints a table and writes
``bench/results/tracking.json``. Time is sped up (the simulator and the tracker share one scale),
so every figure is given in simulated seconds and minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from openhands_jupyter import AsyncOpenHands
from openhands_jupyter.sim import Simulator
from openhands_jupyter.tracking import TrackerConfig

SPEED = 10.0
POLL = 5.0
STEP = 5.0  # sim-seconds between agent actions: a follow-up run lasts 12.5 s
OUT = Path(__file__).resolve().parent / "results"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def staleness(sim: Simulator, seen: list[tuple[float, str, str]]) -> list[float]:
    """Seconds (simulated) from each scripted change to 'finished' until a poller saw it."""
    changes = [(t, cid) for t, cid, status in sim.world.changes if status == "finished"]
    out = []
    for t_seen, cid, status in seen:
        if status != "finished":
            continue
        before = [t for t, c in changes if c == cid and t <= t_seen]
        if before:
            out.append((t_seen - max(before)) * SPEED)
    return out


async def follow_up_loop(send: Any, stop: asyncio.Event, finished: asyncio.Event) -> None:
    """The 'user': whenever the conversation finishes, ask for more, so it runs again."""
    while not stop.is_set():
        await finished.wait()
        finished.clear()
        if stop.is_set():
            return
        await send()


def raw_send(client: httpx.AsyncClient, cid: str) -> Any:
    async def send() -> None:
        await client.post(
            f"/api/v1/app-conversations/{cid}/send-message",
            json={"role": "user", "content": [{"type": "text", "text": "more"}]},
        )

    return send


async def run_tracker(n: int, minutes: float) -> dict[str, Any]:
    with Simulator(speed=SPEED, step=STEP) as sim:
        config = TrackerConfig(poll_interval=POLL, time_scale=1 / SPEED)
        oh = AsyncOpenHands(None, sim.url, tracker_config=config, progress=False, api_version="v1")
        convs = await oh.start_many([f"bench task {i}" for i in range(n)])
        for conv in convs:
            await conv.wait_async(timeout=120)
        seen: list[tuple[float, str, str]] = []
        stop = asyncio.Event()
        flags = {c.id: asyncio.Event() for c in convs}

        def on_snapshot(snap: Any) -> None:
            if snap.conversation_id in flags and snap.status == "finished":
                seen.append((time.monotonic(), snap.conversation_id, "finished"))
                flags[snap.conversation_id].set()

        for conv in convs:
            conv.subscribe(on_snapshot, visible=False)
            flags[conv.id].set()
        users = [
            asyncio.create_task(follow_up_loop(lambda c=c: c.send_async("more"), stop, flags[c.id]))
            for c in convs
        ]
        await asyncio.sleep(1.0)
        before = oh.tracker.requests
        started = time.monotonic()
        seen.clear()
        await asyncio.sleep(minutes * 60 / SPEED)
        elapsed_min = (time.monotonic() - started) * SPEED / 60
        requests = oh.tracker.requests - before
        stop.set()
        for flag in flags.values():
            flag.set()
        await asyncio.gather(*users, return_exceptions=True)
        stale = staleness(sim, seen)
        await oh.aclose()
    return {
        "who": "tracker",
        "n": n,
        "requests_per_min": requests / elapsed_min,
        "staleness_p50": pct(stale, 0.5),
        "staleness_p95": pct(stale, 0.95),
        "samples": len(stale),
    }


async def run_naive(n: int, minutes: float, interval: float) -> dict[str, Any]:
    with Simulator(speed=SPEED, step=STEP) as sim:
        client = httpx.AsyncClient(base_url=sim.url)
        ids = []
        for i in range(n):
            r = await client.post(
                "/api/v1/app-conversations",
                json={"initial_message": {"content": [{"type": "text", "text": f"naive {i}"}]}},
            )
            ids.append(r.json()["id"])
        conv_ids: list[str] = []
        while len(conv_ids) < n:
            tasks = (
                await client.get("/api/v1/app-conversations/start-tasks", params={"ids": ids})
            ).json()
            conv_ids = [t["app_conversation_id"] for t in tasks if t["status"] == "READY"]
            await asyncio.sleep(0.2)
        seen: list[tuple[float, str, str]] = []
        stop = asyncio.Event()
        flags = {cid: asyncio.Event() for cid in conv_ids}
        counter = {"requests": 0}

        async def poll(cid: str) -> None:
            last = None
            while not stop.is_set():
                data = (await client.get("/api/v1/app-conversations", params={"ids": [cid]})).json()
                counter["requests"] += 1
                status = data[0]["execution_status"] if data and data[0] else None
                if status == "finished" and last != "finished":
                    seen.append((time.monotonic(), cid, "finished"))
                    flags[cid].set()
                last = status
                await asyncio.sleep(interval / SPEED)

        pollers = [asyncio.create_task(poll(cid)) for cid in conv_ids]
        users = [
            asyncio.create_task(follow_up_loop(raw_send(client, cid), stop, flags[cid]))
            for cid in conv_ids
        ]
        await asyncio.sleep(1.0)
        before = counter["requests"]
        started = time.monotonic()
        seen.clear()
        await asyncio.sleep(minutes * 60 / SPEED)
        elapsed_min = (time.monotonic() - started) * SPEED / 60
        requests = counter["requests"] - before
        stop.set()
        for flag in flags.values():
            flag.set()
        await asyncio.gather(*pollers, *users, return_exceptions=True)
        await client.aclose()
        stale = staleness(sim, seen)
    return {
        "who": f"naive {interval:g}s",
        "n": n,
        "requests_per_min": requests / elapsed_min,
        "staleness_p50": pct(stale, 0.5),
        "staleness_p95": pct(stale, 0.95),
        "samples": len(stale),
    }


CPU_CHILD = """
import asyncio, sys, time
from openhands_jupyter import AsyncOpenHands
from openhands_jupyter.tracking import TrackerConfig
async def main(url, n, seconds):
    oh = AsyncOpenHands(None, url, tracker_config=TrackerConfig(), progress=False, api_version="v1")
    convs = await oh.start_many([f"cpu {i} [sim:long]" for i in range(n)])
    await asyncio.sleep(40)
    cpu0, t0, r0 = time.process_time(), time.monotonic(), oh.tracker.requests
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    running = sum(c.status == "running" for c in convs)
    print(cpu, wall, oh.tracker.requests - r0, running)
    await oh.aclose()
asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


def run_cpu(n: int, seconds: float) -> dict[str, Any]:
    """Real time: the simulator in one process, the tracker alone in another."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "openhands_jupyter.sim", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = sim.stdout.readline() if sim.stdout else ""
        url = line.split(" on ")[1].split()[0]
        out = subprocess.run(
            [sys.executable, "-c", CPU_CHILD, url, str(n), str(seconds)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    finally:
        sim.terminate()
        sim.wait(10)
    cpu, wall, requests, running = float(out[0]), float(out[1]), int(out[2]), int(out[3])
    return {
        "n": n,
        "cpu_seconds_per_minute": cpu / wall * 60,
        "cpu_share_of_one_core": cpu / wall,
        "requests_per_min": requests / wall * 60,
        "running": running,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer N, shorter runs")
    parser.add_argument("--minutes", type=float, default=3.0, help="simulated minutes per run")
    args = parser.parse_args()
    ns = [1, 10] if args.quick else [1, 10, 50, 99]
    minutes = 1.0 if args.quick else args.minutes
    rows = []
    for n in ns:
        rows.append(asyncio.run(run_tracker(n, minutes)))
        for interval in (3.0, 5.0):
            rows.append(asyncio.run(run_naive(n, minutes, interval)))
    print(
        f"\nTracking benchmark: simulator at {SPEED:g}x, poll_interval {POLL:g}s, budget 60/min, "
        f"{minutes:g} simulated minutes per run\n"
    )
    print(
        f"{'N':>3}  {'poller':<10} {'req/min':>8} {'ratio':>6} {'stale p50':>10} {'stale p95':>10} {'samples':>8}"
    )
    for n in ns:
        base = next(r for r in rows if r["n"] == n and r["who"] == "tracker")
        for r in (x for x in rows if x["n"] == n):
            ratio = r["requests_per_min"] / base["requests_per_min"]
            r["ratio_to_tracker"] = ratio
            print(
                f"{n:>3}  {r['who']:<10} {r['requests_per_min']:>8.1f} {ratio:>5.1f}x "
                f"{r['staleness_p50']:>9.2f}s {r['staleness_p95']:>9.2f}s {r['samples']:>8}"
            )
    cpu = run_cpu(10 if args.quick else 50, 30.0 if args.quick else 60.0)
    print(
        f"\nCPU of the tracking process at N={cpu['n']} (real time, {cpu['running']} running): "
        f"{cpu['cpu_seconds_per_minute']:.3f} CPU-s per minute = "
        f"{100 * cpu['cpu_share_of_one_core']:.2f}% of one core, {cpu['requests_per_min']:.1f} req/min"
    )
    targets = {
        "requests_per_min_le_60": all(
            r["requests_per_min"] <= 60 for r in rows if r["who"] == "tracker"
        ),
        "p95_staleness_le_2x_poll": all(
            r["staleness_p95"] <= 2 * POLL for r in rows if r["who"] == "tracker"
        ),
        "cpu_le_1pct": cpu["cpu_share_of_one_core"] <= 0.01,
    }
    print("targets:", ", ".join(f"{k}={'met' if v else 'MISSED'}" for k, v in targets.items()))
    OUT.mkdir(exist_ok=True)
    (OUT / "tracking.json").write_text(
        json.dumps(
            {"rows": rows, "cpu": cpu, "targets": targets, "speed": SPEED, "poll_interval": POLL},
            indent=2,
        )
    )


if __name__ == "__main__":
    os.environ.pop("OPENHANDS_API_KEY", None)
    main()
