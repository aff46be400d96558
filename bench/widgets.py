"""Widget benchmark: bytes the browser gets per feed update (the whole feed synced, as before,
beside the new events only), and app-server requests per minute with N idle widgets on
screen and after they are cleared, with the time a new conversation then takes to finish.

Run: ``.venv/bin/python -m bench.widgets [--n 50] [--speed 10]``. Against the simulator (its
clock sped up; figures are per simulated minute). To measure another checkout's package (an
earlier commit's, say) with this script, put its ``src`` first: ``PYTHONPATH=../old/src``. Prints the figures and writes
``bench/results/widgets.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import openhands_jupyter
from openhands_jupyter import OpenHands
from openhands_jupyter.sim import Simulator
from openhands_jupyter.tracking import TrackerConfig
from openhands_jupyter.ui.widget import FEED_LIMIT, ConversationWidget

OUT = Path(__file__).resolve().parent / "results"


def _record(widget: ConversationWidget) -> list[int]:
    """Sizes (JSON bytes) of every comm message the widget sends from now on."""
    sizes: list[int] = []
    comm = widget.comm
    original = comm.send

    def send(data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        sizes.append(len(json.dumps(data, default=str)))
        original(data=data, metadata=metadata, buffers=buffers)

    comm.send = send
    return sizes


def _view(widget: ConversationWidget, shown: bool, view_id: str) -> None:
    content = {"view": "shown" if shown else "gone", "id": view_id}
    widget._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def feed_bytes(speed: float, output_size: int) -> dict[str, Any]:
    """A long run's widget with a full feed of large outputs: bytes per update."""
    cfg = TrackerConfig(time_scale=1 / speed)
    with (
        Simulator(speed=speed) as sim,
        OpenHands(None, sim.url, tracker_config=cfg, progress=False) as oh,
    ):
        conv = oh.start("Long run [sim:long]")
        widget = ConversationWidget(conv)
        # the feed full of large outputs, as after 200 steps printing a lot
        full = [
            {
                "id": f"big-{i}",
                "type": "output",
                "source": "environment",
                "text": "x" * output_size,
                "exit_code": 0,
                "timed_out": False,
                "time": None,
            }
            for i in range(FEED_LIMIT)
        ]
        synced = "feed" in widget.trait_names()  # an earlier version synced the whole list
        if synced:
            widget.feed = full
        else:
            widget._feed = full
        sizes = _record(widget)
        before: list[int] = []
        deadline = time.monotonic() + 60
        while len(before) < 30 and time.monotonic() < deadline:
            n = len(sizes)
            time.sleep(0.05)
            if len(sizes) > n:
                # what the whole-feed trait sync sent for the same update (ipywidgets' update
                # message carrying the feed list)
                state = {"method": "update", "state": {"feed": widget.feed}, "buffer_paths": []}
                before.append(len(json.dumps(state, default=str)))
        if synced:
            before = [n for n in sizes if n > 10_000]  # the real whole-feed messages
        after = list(sizes)
        widget.close()
        conv.stop()
    return {
        "output_size": output_size,
        "feed_items": FEED_LIMIT,
        "updates": len(before),
        "before_bytes_median": statistics.median(before),
        "after_bytes_median": statistics.median(after),
        "after_bytes_max": max(after),
        "ratio": statistics.median(before) / statistics.median(after),
    }


def idle_widgets(n: int, speed: float, live: bool) -> dict[str, Any]:
    """N idle conversations with widgets on screen, then cleared: requests per minute, and a
    new conversation's time to finish in each state (simulated seconds)."""
    cfg = TrackerConfig(time_scale=1 / speed, live_events=live)
    with (
        Simulator(speed=speed) as sim,
        OpenHands(None, sim.url, tracker_config=cfg, progress=False) as oh,
    ):
        convs = oh.start_many([f"Idle {i} [sim:idle]" for i in range(n)])
        widgets = [ConversationWidget(c) for c in convs]
        for i, w in enumerate(widgets):
            _view(w, True, f"v{i}")
        for conv in convs:
            conv.wait(timeout=600)
        time.sleep(30 / speed)  # settle: starts and final reads are over

        def per_minute() -> float:
            start = time.monotonic()
            before = len(sim.stats.log)
            time.sleep(60 / speed)
            return (len(sim.stats.log) - before) * 60 / ((time.monotonic() - start) * speed)

        def new_one(label: str) -> float:
            """Seconds (simulated) until a new conversation's widget shows it finished."""
            started = time.monotonic()
            conv = oh.start(f"New while {label}")
            widget = ConversationWidget(conv)
            _view(widget, True, f"new-{label}")
            while widget.state.get("status") != "finished" and time.monotonic() - started < 600:
                time.sleep(0.02)
            took = (time.monotonic() - started) * speed
            conv.wait(timeout=600)
            widget.close()
            return took

        shown = per_minute()
        shown_new = new_one("shown")
        for i, w in enumerate(widgets):
            _view(w, False, f"v{i}")
        time.sleep(5 / speed)
        cleared = per_minute()
        cleared_new = new_one("cleared")
        for w in widgets:
            w.close()
    return {
        "n": n,
        "live": live,
        "req_per_min_shown": round(shown, 1),
        "req_per_min_cleared": round(cleared, 1),
        "new_to_finished_s_shown": round(shown_new, 1),
        "new_to_finished_s_cleared": round(cleared_new, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--out", default="widgets.json")
    args = parser.parse_args()
    results: dict[str, Any] = {"feed": [], "idle": []}
    for size in (200, 4000):
        r = feed_bytes(args.speed, size)
        results["feed"].append(r)
        print(
            f"feed of {r['feed_items']} outputs of {size} chars: bytes per update "
            f"{r['before_bytes_median']:,.0f} (whole feed synced, before) vs "
            f"{r['after_bytes_median']:,.0f} (new events only; max {r['after_bytes_max']:,}) "
            f"= {r['ratio']:,.0f}x less, over {r['updates']} updates"
        )
    for live in (True, False):
        r = idle_widgets(args.n, args.speed, live)
        results["idle"].append(r)
        mode = "live feed" if live else "event store only"
        print(
            f"{args.n} idle widgets ({mode}): {r['req_per_min_shown']} req/min on screen, "
            f"{r['req_per_min_cleared']} after Clear All Outputs; a new conversation finished "
            f"in {r['new_to_finished_s_shown']} s vs {r['new_to_finished_s_cleared']} s"
        )
    OUT.mkdir(exist_ok=True)
    results["src"] = str(Path(openhands_jupyter.__file__).resolve().parent.parent)
    (OUT / args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
