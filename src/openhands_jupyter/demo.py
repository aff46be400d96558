"""``python -m openhands_jupyter.demo``: drive one conversation to its end, printing each change.

With ``OPENHANDS_API_KEY`` set it talks to OpenHands (``OPENHANDS_BASE_URL`` or the Cloud);
without it, it starts the bundled simulator on 127.0.0.1 and needs no network.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def _server(speed: float) -> Iterator[str | None]:
    if os.environ.get("OPENHANDS_API_KEY") or os.environ.get("OPENHANDS_BASE_URL"):
        yield None
        return
    from .sim import Simulator

    with Simulator(speed=speed) as sim:
        print(
            f"No OPENHANDS_API_KEY set: using the bundled simulator at {sim.url}. "
            "Its activity is scripted: no agent or model runs, whatever the task."
        )
        yield sim.url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openhands-jupyter demo", description=__doc__)
    parser.add_argument("task", nargs="?", default="Fix the failing test in tests/test_api.py")
    parser.add_argument("--repo", default=None)
    parser.add_argument("--speed", type=float, default=4.0, help="simulator speed-up")
    args = parser.parse_args(argv)
    from .client import OpenHands
    from .tracking import TrackerConfig

    with _server(args.speed) as url:
        scale = 1.0 / args.speed if url else 1.0
        with OpenHands(base_url=url, tracker_config=TrackerConfig(time_scale=scale)) as oh:
            conv = oh.start(args.task, repository=args.repo)
            conv.wait()
            print(f"conversation id: {conv.id}")
            print(f"final status: {conv.status}")
            print(f"result: {conv.result}")
            print(f"open: {conv.url}")
            return 0 if conv.status in ("finished", "idle") else 1


if __name__ == "__main__":
    raise SystemExit(main())
