"""Steering benchmark: Stop clicked in JupyterLab during a two-minute command -> ``paused`` on
the widget's pill, on the simulator and on a real OpenHands 1.11.0 server side by side; and
from Python, how long ``stop()`` and ``approve()`` take to return and to be confirmed.

Run: ``.venv/bin/python -m bench.steering [--quick] [--only sim|real]``. Prints a table and
writes ``bench/results/steering.json``. Real seconds, measured on this machine:

- click -> paused shown: Playwright clicks the card's Stop button; the clock stops when the
  pill says ``paused`` (polled on every animation frame);
- stop() returns / paused confirmed: ``conv.stop()`` from Python during the command; when
  it returned, and when a subscriber (what the widget is built from) got ``paused``;
- approve() -> next stop point: ``approve()`` then ``wait()`` in confirmation mode, until the
  conversation stops at its next point (here the end).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openhands_jupyter import OpenHands
from openhands_jupyter.sim import Simulator
from openhands_jupyter.sim.scenarios import LONG_COMMAND
from tests.support.real.launcher import RealServer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results"
REAL_LONG = "sleep 120 && echo slept-120"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def log(*parts: Any) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


class Target:
    def __init__(self) -> None:
        self.name = ""
        self.url = ""
        self.env: dict[str, str] = {}
        self.long_task = ""
        self.long_command = ""
        self.approve_task = ""


def sim_target(sim: Simulator) -> Target:
    t = Target()
    t.name = "simulator (speed 1)"
    t.url = sim.url
    t.env = {"OPENHANDS_BASE_URL": sim.url}
    t.long_task = "Sleep a while [sim:longcmd]"
    t.long_command = LONG_COMMAND
    t.approve_task = "Careful [sim:waiting]"
    return t


def real_target(server: RealServer) -> Target:
    t = Target()
    agent = server.agent_server or "1.34.0"
    t.name = f"real OpenHands {server.version} (agent server {agent})"
    t.url = server.url
    t.env = {"OPENHANDS_BASE_URL": server.url}
    t.long_task = "Sleep a while [llm:long=120]"
    t.long_command = REAL_LONG
    t.approve_task = "Greet [llm:command]"
    return t


def clicks(target: Target, runs: int) -> list[float]:
    """Stop clicked in JupyterLab during the long command -> the pill says paused."""
    from tests.support.browser import (
        JupyterServer,
        chromium_page,
        open_notebook,
        run_cells,
        write_notebook,
    )

    cells = ["%load_ext openhands_jupyter", f"conv = %openhands {target.long_task}"]
    out: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        lab = JupyterServer("lab", Path(tmp), target.env)
        try:
            write_notebook(lab.nb_dir / "stop.ipynb", cells)
            with chromium_page() as page:
                open_notebook(page, lab, "stop.ipynb")
                run_cells(page, [0])
                for i in range(runs):
                    run_cells(page, [1])
                    card = page.locator(".jp-OutputArea-output .ohj-card").last
                    card.locator(".ohj-ev-text", has_text=target.long_command).first.wait_for(
                        timeout=300000
                    )
                    page.wait_for_timeout(1000)  # the command is under way
                    button = card.locator("button[data-action=stop]")
                    t0 = time.perf_counter()
                    button.click()
                    page.wait_for_function(
                        "() => { const c = [...document.querySelectorAll('.ohj-card')].pop();"
                        " return c && c.querySelector('.ohj-pill').textContent === 'paused'; }",
                        polling="raf",
                        timeout=120000,
                    )
                    out.append(time.perf_counter() - t0)
                    log(target.name, f"click {i}: {out[-1]:.2f} s")
        finally:
            lab.stop()
    return out


def from_python(target: Target, runs: int) -> dict[str, list[float]]:
    """stop() during the long command, and approve() then wait(), from Python."""
    out: dict[str, list[float]] = {"returned": [], "confirmed": [], "approve": []}
    with OpenHands(base_url=target.url, progress=False) as oh:
        for i in range(runs):
            conv = oh.start(target.long_task)
            paused: list[float] = []
            conv.subscribe(
                lambda s, paused=paused: (
                    paused.append(time.perf_counter())
                    if s.status == "paused" and not paused
                    else None
                )
            )
            deadline = time.monotonic() + 300
            while not any(e.text == target.long_command for e in conv.feed):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no command on {target.name}: {conv.status}")
                time.sleep(0.05)
            time.sleep(1.0)
            t0 = time.perf_counter()
            conv.stop()
            out["returned"].append(time.perf_counter() - t0)
            conv.wait(timeout=120)
            out["confirmed"].append((paused[0] if paused else time.perf_counter()) - t0)
            log(target.name, f"stop {i}: {out['returned'][-1]:.2f} / {out['confirmed'][-1]:.2f} s")
        for i in range(runs):
            conv = oh.start(target.approve_task, confirm=True)
            conv.wait(timeout=300)
            t0 = time.perf_counter()
            conv.approve()
            conv.wait(timeout=300)
            out["approve"].append(time.perf_counter() - t0)
            log(target.name, f"approve {i}: {out['approve'][-1]:.2f} s -> {conv.status}")
    return out


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 0.5), "p95": pct(values, 0.95), "max": max(values), "n": len(values)}


def measure(target: Target, runs: int, browser: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"name": target.name}
    if browser:
        result["click_to_paused"] = summary(clicks(target, runs))
    python = from_python(target, runs)
    result.update({k: summary(v) for k, v in python.items()})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 runs each instead of 20")
    parser.add_argument("--only", choices=["sim", "real"])
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument(
        "--agent-server",
        action="append",
        default=[],
        metavar="VERSION",
        help="also against the real server with this newer agent server (e.g. 1.58.2)",
    )
    args = parser.parse_args()
    runs = 5 if args.quick else 20
    results = []
    if args.only != "real":
        with Simulator(speed=1.0, grouping="ADD_TO_ANY") as sim:
            results.append(measure(sim_target(sim), runs, not args.no_browser))
    if args.only != "sim":
        for agent in [None, *args.agent_server]:
            with RealServer(agent_server=agent) as real:
                results.append(measure(real_target(real), runs, not args.no_browser))
    print("\nreal seconds, p50 / p95 (max), n runs each\n")
    print(
        "| server | Stop clicked -> paused shown | stop() returns | paused confirmed "
        "| approve() -> next stop |"
    )
    print("|---|---|---|---|---|")

    def cell(r: dict[str, Any], key: str) -> str:
        s = r.get(key)
        return f"{s['p50']:.2f} / {s['p95']:.2f} ({s['max']:.2f})" if s else "-"

    for r in results:
        print(
            f"| {r['name']} | {cell(r, 'click_to_paused')} | {cell(r, 'returned')} "
            f"| {cell(r, 'confirmed')} | {cell(r, 'approve')} |"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "steering.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
