"""Live activity benchmark: the simulator with realistic event batching beside a real
OpenHands 1.11.0 server, each with the live feed on (events from the agent server's socket)
and off (events from the app server's store, as before).

Run: ``.venv/bin/python -m bench.live [--quick]``. Prints a table and writes
``bench/results/live.json``. Measured on this machine, in real seconds:

- command ran -> shown: from the moment the agent got its terminal command (the simulator's
  script; the fake LLM's answer on the real server) to the moment a watching subscriber (what
  the widget's feed is built from) received it;
- finished -> answer shown: from the agent's finish to the answer in that subscriber;
- app-server requests per minute with N watched, running conversations (N = 1, 10, 50),
  counted by the client (every request the tracker sends to the app server);
- open sockets while watching, and after every conversation has ended.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from openhands_jupyter import AsyncOpenHands
from openhands_jupyter.sim import SCRIPT_COMMAND, Simulator
from openhands_jupyter.tracking import Snapshot, TrackerConfig
from tests.support.real.fake_llm import COMMAND
from tests.support.real.launcher import RealServer

ROOT = Path(__file__).resolve().parent.parent

OUT = ROOT / "bench" / "results"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


class Server:
    """What the benchmark needs to know of either server."""

    name = ""
    url = ""
    command = ""
    #: start one conversation at a time: a real 1.11 server that puts concurrent starts into
    #: one shared sandbox (ADD_TO_ANY) fails some of them with a 401 from its agent server
    one_at_a_time = False

    async def start_one(self, oh: AsyncOpenHands, task: str, watch: Any = None) -> Any:
        """Start a task, watched from the moment it starts (``watch``: its subscriber); on a
        server that takes one start at a time, return once it has its conversation."""
        conv = await oh.start(task)
        conv.subscribe(watch or (lambda snap: None), visible=True)
        deadline = time.monotonic() + 300
        while self.one_at_a_time and conv.id is None and conv.status != "error":
            if time.monotonic() > deadline:
                log(self.name, f"{task!r} has no conversation after 300 s: {conv.status}")
                break
            await asyncio.sleep(0.2)
        return conv

    async def start_all(self, oh: AsyncOpenHands, tasks: list[str], watch: Any = None) -> list[Any]:
        """Start the tasks one by one (``watch(i)`` makes the i-th one's subscriber)."""
        convs = []
        for i, task in enumerate(tasks):
            conv = await self.start_one(oh, task, watch(i) if watch else None)
            convs.append(conv)
            if self.one_at_a_time and conv.status == "error":
                # a real server that cannot take more (each failed start costs it ~2 min):
                # measure with what runs
                log(self.name, f"start {i} failed ({conv.detail}); no more starts")
                break
        return convs

    def task(self, i: int, kind: str) -> str:
        raise NotImplementedError

    def ran_at(self, task: str, conv_id: str) -> float | None:
        raise NotImplementedError

    def finished_at(self, task: str, conv_id: str) -> float | None:
        raise NotImplementedError


class Sim(Server):
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.name = "simulator (batching 5 events / 30 s)"
        self.url = sim.url
        self.command = SCRIPT_COMMAND

    def task(self, i: int, kind: str) -> str:
        return f"Bench {kind} {i}" + (" [sim:long]" if kind.startswith("busy") else "")

    def ran_at(self, task: str, conv_id: str) -> float | None:
        conv = self.sim.world.conversations[conv_id]
        return next((e.moment for e in conv.events if e.type == "command"), None)

    def finished_at(self, task: str, conv_id: str) -> float | None:
        return next(
            (t for t, c, s in self.sim.world.changes if c == conv_id and s == "finished"), None
        )


class Real(Server):
    def __init__(self, server: RealServer) -> None:
        self.server = server
        self.name = "real OpenHands 1.11.0 (SDK default batching)"
        self.url = server.url
        self.command = COMMAND
        self.one_at_a_time = True

    def task(self, i: int, kind: str) -> str:
        if kind.startswith("busy"):
            return f"Bench busy {i} [llm:many=40] [llm:slow=2]"
        return f"Bench {kind} {i} [llm:command] [llm:slow=2]"

    def _call(self, task: str, tool: str) -> float | None:
        assert self.server.llm is not None
        return next(
            (t for t, text, name in self.server.llm.calls if text == task and name == tool), None
        )

    def ran_at(self, task: str, conv_id: str) -> float | None:
        return self._call(task, "terminal")

    def finished_at(self, task: str, conv_id: str) -> float | None:
        return self._call(task, "finish")


async def latency(server: Server, live: bool, runs: int) -> dict[str, Any]:
    """Start ``runs`` conversations at once, each watched; when did the command and the answer
    reach the watcher?"""
    config = TrackerConfig(live_events=live)
    oh = AsyncOpenHands(None, server.url, tracker_config=config, progress=False)
    tasks = [server.task(i, f"latency-{'live' if live else 'store'}") for i in range(runs)]
    command_seen: dict[int, float] = {}
    answer_seen: dict[int, float] = {}
    sockets_while = 0

    def watch(i: int) -> Any:
        def on(snap: Snapshot) -> None:
            now = time.monotonic()
            if i not in command_seen and any(
                e.type == "command" and e.text == server.command for e in snap.new_events
            ):
                command_seen[i] = now
            if i not in answer_seen and snap.status == "finished" and snap.result:
                answer_seen[i] = now

        return on

    convs = await server.start_all(oh, tasks, watch)
    for conv in convs:
        await conv.wait_async(timeout=600)
        sockets_while = max(sockets_while, oh.tracker.open_sockets)
    await asyncio.sleep(1.0)
    sockets_after = oh.tracker.open_sockets
    shown, answered = [], []
    for i, (task, conv) in enumerate(zip(tasks, convs)):
        ran = server.ran_at(task, conv.id or "")
        done = server.finished_at(task, conv.id or "")
        if ran is not None and i in command_seen:
            shown.append(command_seen[i] - ran)
        if done is not None and i in answer_seen:
            answered.append(answer_seen[i] - done)
    await oh.aclose()
    return {
        "runs": runs,
        "command_shown_p50": pct(shown, 0.5),
        "command_shown_p95": pct(shown, 0.95),
        "answer_shown_p50": pct(answered, 0.5),
        "answer_shown_p95": pct(answered, 0.95),
        "samples": len(shown),
        "sockets_after_end": sockets_after,
    }


async def request_rate(server: Server, n: int, seconds: float) -> dict[str, Any]:
    """N watched conversations that keep running: app-server requests per minute over
    ``seconds`` once all are running, and the sockets open meanwhile."""
    oh = AsyncOpenHands(None, server.url, progress=False)
    convs = await server.start_all(oh, [server.task(i, f"busy-{n}") for i in range(n)])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not all(
        c.status in ("running", "error", "finished", "paused") for c in convs
    ):
        await asyncio.sleep(0.5)
    running = sum(c.status == "running" for c in convs)
    log(server.name, f"N={n}: {running} running; counting for {seconds:g} s")
    before = oh.tracker.requests
    await asyncio.sleep(seconds)
    spent = oh.tracker.requests - before
    sockets = oh.tracker.open_sockets
    log(server.name, f"N={n}: counted; deleting")
    for conv in convs:
        try:
            await conv.delete_async()
        except Exception:
            pass
    await oh.aclose()
    return {"n": n, "running": running, "req_per_min": spent * 60 / seconds, "sockets": sockets}


async def bench(server: Server, runs: int, ns: list[int], seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"name": server.name}
    for live in (True, False) if runs else ():
        out["live" if live else "store"] = await latency(server, live, runs)
        log(server.name, "live" if live else "store", out["live" if live else "store"])
    out["rates"] = []
    for n in ns:
        out["rates"].append(await request_rate(server, n, seconds))
        log(server.name, "rate", out["rates"][-1])
    return out


def log(*parts: Any) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def row(label: str, r: dict[str, Any]) -> str:
    return (
        f"| {label} | {r['command_shown_p50']:.2f} s | {r['command_shown_p95']:.2f} s "
        f"| {r['answer_shown_p50']:.2f} s | {r['answer_shown_p95']:.2f} s "
        f"| {r['sockets_after_end']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs, N = 1 and 10 only")
    parser.add_argument("--only", choices=["sim", "real"], help="one server only")
    parser.add_argument("--ns", type=int, nargs="*", help="the N to measure request rates at")
    parser.add_argument("--no-latency", action="store_true", help="request rates only")
    args = parser.parse_args()
    runs = 0 if args.no_latency else 4 if args.quick else 8
    ns = args.ns if args.ns is not None else [1, 10] if args.quick else [1, 10, 50]
    seconds = 30.0 if args.quick else 60.0
    results = []
    if args.only != "real":
        with Simulator(grouping="ADD_TO_ANY") as sim:
            results.append(asyncio.run(bench(Sim(sim), runs, ns, seconds)))
    if args.only != "sim":
        with RealServer() as real:
            results.append(asyncio.run(bench(Real(real), runs, ns, seconds)))
    print("\ncommand ran -> shown in a watcher, finished -> answer shown (real seconds)\n")
    print(
        "| server, events from | command p50 | command p95 | answer p50 | answer p95 | sockets after |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        if "live" in r:
            print(row(f"{r['name']}, agent-server socket (live)", r["live"]))
            print(row(f"{r['name']}, app-server store (before)", r["store"]))
    print("\napp-server requests per minute, N watched running conversations\n")
    print("| server | N | running | req/min | open sockets |")
    print("|---|---|---|---|---|")
    for r in results:
        for rate in r["rates"]:
            print(
                f"| {r['name']} | {rate['n']} | {rate['running']} | "
                f"{rate['req_per_min']:.1f} | {rate['sockets']} |"
            )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "live.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
