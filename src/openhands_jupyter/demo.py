"""``openhands-jupyter demo``: drive one conversation to its end in the terminal, printing each
status change (against the bundled simulator when no server is configured)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

DESCRIPTION = """\
Drive one conversation to its end, printing each status change.
With OPENHANDS_API_KEY or OPENHANDS_BASE_URL set (or --base-url) it talks to that OpenHands
server (the Cloud by default); otherwise it starts the bundled simulator on 127.0.0.1 and needs
no network (its activity is scripted: the same steps whatever the task)."""


@contextlib.contextmanager
def _server(base_url: str | None, speed: float) -> Iterator[str | None]:
    if base_url or os.environ.get("OPENHANDS_API_KEY") or os.environ.get("OPENHANDS_BASE_URL"):
        yield base_url
        return
    from .sim import Simulator

    with Simulator(speed=speed) as sim:
        print(
            f"No OPENHANDS_API_KEY set: using the bundled simulator at {sim.url}. "
            "Its activity is scripted: no agent or model runs, whatever the task."
        )
        yield sim.url


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openhands-jupyter demo",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "task",
        nargs="?",
        default="Fix the failing test in tests/test_api.py",
        help="what the agent should do (default: %(default)s)",
    )
    parser.add_argument("--repo", default=None, help="the repository, owner/repo")
    parser.add_argument("--branch", default=None, help="the branch (needs --repo)")
    parser.add_argument(
        "--base-url", default=None, help="the OpenHands server (default: OPENHANDS_BASE_URL)"
    )
    parser.add_argument(
        "--allow-insecure",
        action="store_true",
        help="allow a plain-http server that is not on this machine (keys travel unencrypted)",
    )
    parser.add_argument(
        "--speed", type=float, default=4.0, help="the simulator's speed-up (default: 4)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .api.errors import InputError, OpenHandsError
    from .handles.blocking import OpenHands
    from .handles.client import AsyncOpenHands
    from .tracking import TrackerConfig

    if not args.speed > 0:
        print("openhands-jupyter demo: --speed must be more than 0.", file=sys.stderr)
        return 2
    try:
        # the arguments are checked before anything starts
        AsyncOpenHands.build_request(args.task, args.repo, args.branch)
        with _server(args.base_url, args.speed) as url:
            simulated = url is not None and args.base_url is None
            scale = 1.0 / args.speed if simulated else 1.0
            with OpenHands(
                base_url=url,
                allow_insecure=args.allow_insecure,
                tracker_config=TrackerConfig(time_scale=scale),
            ) as oh:
                conv = oh.start(args.task, repository=args.repo, branch=args.branch)
                conv.wait()
                print(f"conversation id: {conv.id}")
                print(f"final status: {conv.status}")
                print(f"result: {conv.result}")
                print(f"open: {conv.url}")
                return 0 if conv.status in ("finished", "idle") else 1
    except InputError as exc:
        message = str(exc).replace("pass allow_insecure=True", "pass --allow-insecure")
        print(f"openhands-jupyter demo: {message}", file=sys.stderr)
        return 2
    except OpenHandsError as exc:
        print(f"openhands-jupyter demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("openhands-jupyter demo: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
