"""``python -m openhands_jupyter.sim``: serve the simulator from a shell until Ctrl-C."""

from __future__ import annotations

import argparse
import time

from .server import Simulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m openhands_jupyter.sim", description=__doc__)
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--speed", type=float, default=1.0, help="divide scripted durations")
    parser.add_argument("--api", choices=["v1", "v0", "both"], default="v1")
    parser.add_argument("--scenario", default="finish")
    parser.add_argument("--api-key", default=None, help="require this Bearer key")
    parser.add_argument("--session-api-key", default=None, help="require X-Session-API-Key")
    parser.add_argument("--rate-limit", action="store_true", help="enforce 10/s and 100/min")
    parser.add_argument("--max-concurrent", type=int, default=None)
    args = parser.parse_args(argv)
    sim = Simulator(
        port=args.port,
        speed=args.speed,
        api=args.api,
        scenario=args.scenario,
        api_key=args.api_key,
        session_api_key=args.session_api_key,
        rate_limit=args.rate_limit,
        scale_rate_limit=False,
        max_concurrent=args.max_concurrent,
    )
    with sim:
        print(f"OpenHands simulator ({args.api}) on {sim.url}  (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
