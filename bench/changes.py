"""The Changes section: the simulator beside a real OpenHands 1.11.0 server, in one run.

Run: ``.venv/bin/python -m bench.changes [--quick] [--only sim|real] [--no-browser]``.
Prints a table and writes ``bench/results/changes.json``. Measured on this machine:

- edit -> shown: from the moment the agent got its file edit (the simulator's script; the fake
  LLM's answer on the real server) to the moment the file, with its line counts, is in what a
  widget on screen shows (its tracker snapshot), p50/p95;
- app-server requests per minute with 10 watched, editing conversations, with the Changes
  section and without it (the same run otherwise), counted by the client and by the server,
  and the reads of changes and diffs the agent servers answered meanwhile;
- the browser: JupyterLab in headless Chromium, a 5,003-line diff (the simulator's ``bigdiff``):
  click -> the first 400 lines drawn, "Show all" -> every line drawn, and opening it again (the
  lines are in the page already: drawing only), p50 of several.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.live import Server, log, pct
from openhands_jupyter import AsyncOpenHands
from openhands_jupyter.sim import EDITED_FILE, Simulator
from openhands_jupyter.tracking import Snapshot
from tests.support.real.launcher import RealServer

ROOT = Path(__file__).resolve().parent.parent

OUT = ROOT / "bench" / "results"
APP_KEY = "bench-app-key-5a4b3c2d1e"


class Target(Server):
    """A server to measure, and where its agent's edits are recorded."""

    key: str | None = None
    path = ""

    def edited_at(self, task: str, conv_id: str) -> float | None:
        raise NotImplementedError

    def app_requests(self) -> int | None:
        return None


class Sim(Target):
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.name = "simulator (speed 1)"
        self.url = sim.url
        self.path = EDITED_FILE

    def task(self, i: int, kind: str) -> str:
        return f"Bench {kind} {i}" + (" [sim:edits]" if kind == "busy" else "")

    def edited_at(self, task: str, conv_id: str) -> float | None:
        conv = self.sim.world.conversations[conv_id]
        return next((e.moment for e in conv.events if e.type == "edit"), None)

    def app_requests(self) -> int | None:
        return int(sum(self.sim.counts.values()))


class Real(Target):
    def __init__(self, server: RealServer) -> None:
        self.server = server
        self.name = "real OpenHands 1.11.0"
        self.url = server.url
        self.key = APP_KEY
        self.path = "added.txt"
        self.one_at_a_time = True

    def task(self, i: int, kind: str) -> str:
        if kind == "busy":
            return f"Bench busy {i} [llm:git] [llm:edits=40] [llm:slow=2]"
        return f"Bench {kind} {i} [llm:git] [llm:slow=1]"

    def edited_at(self, task: str, conv_id: str) -> float | None:
        assert self.server.llm is not None
        calls = [t for t, text, name in self.server.llm.calls if text == task]
        names = [name for t, text, name in self.server.llm.calls if text == task]
        # the second file_editor call creates added.txt
        edits = [t for t, name in zip(calls, names) if name == "file_editor"]
        return edits[1] if len(edits) > 1 else None


async def edit_to_shown(target: Target, runs: int) -> dict[str, Any]:
    oh = AsyncOpenHands(None, target.url, session_api_key=target.key, progress=False)
    shown: dict[int, float] = {}
    convs = []
    tasks = [target.task(i, "edit") for i in range(runs)]
    for i, task in enumerate(tasks):

        def on(snap: Snapshot, i: int = i) -> None:
            for change in snap.changes:
                if change.path == target.path and change.added is not None:
                    shown.setdefault(i, time.monotonic())

        conv = await target.start_one(oh, task, on)  # watched, as by a widget on screen
        conv.watch_changes(True)
        convs.append(conv)
    for conv in convs:
        await conv.wait_async(timeout=600)
    await asyncio.sleep(2.0)
    delays = []
    for i, (task, conv) in enumerate(zip(tasks, convs)):
        edited = target.edited_at(task, conv.id or "")
        if edited is not None and i in shown:
            delays.append(shown[i] - edited)
    await oh.aclose()
    return {"runs": runs, "samples": len(delays), "p50": pct(delays, 0.5), "p95": pct(delays, 0.95)}


async def request_rate(target: Target, n: int, seconds: float, changes: bool) -> dict[str, Any]:
    oh = AsyncOpenHands(None, target.url, session_api_key=target.key, progress=False)
    convs = []
    for i in range(n):
        conv = await target.start_one(oh, target.task(i, "busy"))
        if changes:
            conv.watch_changes(True)
        convs.append(conv)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not all(
        c.status in ("running", "error", "finished", "paused") for c in convs
    ):
        await asyncio.sleep(0.5)
    running = sum(c.status == "running" for c in convs)
    before, server_before = oh.tracker.requests, target.app_requests()
    reads_before = sum(c._tracked.changes.requests for c in convs)
    await asyncio.sleep(seconds)
    spent = oh.tracker.requests - before
    server_after = target.app_requests()
    change_reads = sum(c._tracked.changes.requests for c in convs) - reads_before
    reads = sum(len(c._tracked.changes.files) > 0 for c in convs)
    for conv in convs:
        try:
            await conv.delete_async()
        except Exception as exc:
            log(target.name, f"delete failed: {exc}")
    await oh.aclose()
    per_min = 60.0 / seconds
    return {
        "n": n,
        "running": running,
        "changes": changes,
        "req_per_min": round(spent * per_min, 1),
        "server_req_per_min": round((server_after - server_before) * per_min, 1)
        if server_before is not None and server_after is not None
        else None,
        "with_files_shown": reads,
        "change_reads_per_min": round(change_reads * per_min, 1),
    }


def settled(page: Any) -> None:
    """The newest card has ended, its output was redrawn for the end, and its changes read."""
    page.locator(".ohj-card .ohj-pill", has_text="finished").last.wait_for(timeout=60000)
    page.locator(".ohj-change-row .ohj-d-add-n", has_text="+5000").last.wait_for(timeout=60000)
    page.wait_for_timeout(1500)


def browser(runs: int) -> dict[str, Any]:
    """The 5,003-line diff in JupyterLab: click -> first lines, Show all, reopen (draw only)."""
    from tests.support.browser import (
        JupyterServer,
        chromium_page,
        open_notebook,
        run_cells,
        write_notebook,
    )

    cells = [
        "%load_ext openhands_jupyter\n%config OpenHandsMagics.time_scale = 0.25",
        "conv = %openhands Make the data file [sim:bigdiff]",
    ]
    out: dict[str, list[float]] = {"first": [], "all": [], "reopen": []}
    with Simulator(speed=4.0) as sim, tempfile.TemporaryDirectory() as tmp:
        srv = JupyterServer("lab", Path(tmp), {"OPENHANDS_BASE_URL": sim.url})
        try:
            write_notebook(srv.nb_dir / "bench.ipynb", cells)
            with chromium_page() as page:
                open_notebook(page, srv, "bench.ipynb")
                run_cells(page, [0, 1])
                row = page.locator(".ohj-change-row", has_text="data/generated.csv")
                settled(page)
                count = "document.querySelectorAll('.ohj-diff .ohj-d').length"
                for _ in range(runs):
                    t0 = time.perf_counter()
                    row.click()
                    page.wait_for_function(f"() => {count} >= 400", polling="raf")
                    out["first"].append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    page.locator(".ohj-diff-all").click()
                    page.wait_for_function(f"() => {count} === 5003", polling="raf")
                    out["all"].append(time.perf_counter() - t0)
                    row.click()  # close
                    page.wait_for_function(f"() => {count} === 0", polling="raf")
                    t0 = time.perf_counter()
                    row.click()  # reopen: the lines are in the page
                    page.wait_for_function(f"() => {count} === 5003", polling="raf")
                    out["reopen"].append(time.perf_counter() - t0)
                    row.click()
                    page.wait_for_function(f"() => {count} === 0", polling="raf")
                    # a new conversation: the next round asks for its diff again
                    run_cells(page, [1])
                    row = page.locator(".ohj-change-row", has_text="data/generated.csv").last
                    settled(page)
        finally:
            srv.stop()
    return {
        k: {"p50": pct(v, 0.5), "max": max(v) if v else None, "n": len(v)} for k, v in out.items()
    }


async def measure(target: Target, runs: int, seconds: float) -> dict[str, Any]:
    log(target.name, f"edit -> shown, {runs} conversations")
    latency = await edit_to_shown(target, runs)
    rates = []
    for changes in (True, False):
        log(target.name, f"requests per minute, 10 watched, changes={'on' if changes else 'off'}")
        rates.append(await request_rate(target, 10, seconds, changes))
    return {"latency": latency, "rates": rates}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["sim", "real", "browser"])
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    runs = 4 if args.quick else 8
    seconds = 30.0 if args.quick else 60.0
    results: dict[str, Any] = {}
    if args.only in (None, "sim"):
        with Simulator(speed=1.0) as sim:
            results["sim"] = asyncio.run(measure(Sim(sim), runs, seconds))
    if args.only in (None, "real"):
        # a server each: one real server here starts about a dozen conversations at most
        def on_real(measure_one: Any) -> Any:
            server = RealServer(session_api_key=APP_KEY).start()
            try:
                return asyncio.run(measure_one(Real(server)))
            finally:
                server.stop()

        log("real OpenHands 1.11.0", "edit -> shown, then requests per minute (a server each)")
        results["real"] = {
            "latency": on_real(lambda t: edit_to_shown(t, max(2, runs // 2))),
            "rates": [
                on_real(lambda t, on=on: request_rate(t, 10, seconds, on)) for on in (True, False)
            ],
        }
    if not args.no_browser and args.only in (None, "browser"):
        results["browser"] = browser(3 if args.quick else 5)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "changes.json").write_text(json.dumps(results, indent=2))
    print("\nedit -> shown in the Changes section (s)\n")
    print(f"{'server':<28} {'p50':>7} {'p95':>7} {'samples':>8}")
    for key in ("sim", "real"):
        if key in results:
            lat = results[key]["latency"]
            print(f"{key:<28} {lat['p50']:>7.2f} {lat['p95']:>7.2f} {lat['samples']:>8}")
    print("\napp-server requests per minute, 10 watched editing conversations\n")
    print(
        f"{'server':<10} {'changes':>8} {'running':>8} {'client':>8} {'server':>8} {'shown':>6}"
        f" {'reads/min (agent server)':>25}"
    )
    for key in ("sim", "real"):
        for r in results.get(key, {}).get("rates", []):
            server_rate = "-" if r["server_req_per_min"] is None else r["server_req_per_min"]
            print(
                f"{key:<10} {'on' if r['changes'] else 'off':>8} {r['running']:>8} "
                f"{r['req_per_min']:>8} {server_rate!s:>8} {r['with_files_shown']:>6}"
                f" {r['change_reads_per_min']:>25}"
            )
        rates = results.get(key, {}).get("rates", [])
        if len(rates) == 2:
            print(
                f"{key:<10} extra for Changes: {rates[0]['req_per_min'] - rates[1]['req_per_min']:+.1f} req/min"
            )
    if "browser" in results:
        print("\n5,003-line diff in JupyterLab (s, p50 / max)\n")
        for name, label in (
            ("first", "click -> first 400 lines"),
            ("all", "Show all -> 5,003 lines"),
            ("reopen", "reopen -> 5,003 lines drawn"),
        ):
            r = results["browser"][name]
            print(f"{label:<30} {r['p50']:.3f} / {r['max']:.3f}")


if __name__ == "__main__":
    main()
