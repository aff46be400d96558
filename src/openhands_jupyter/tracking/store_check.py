"""Whether the app server's event store holds what the agent server showed: compared once a
conversation has ended (the store gets events in batches, up to 30 s late), and said on its
card while the store is behind (an app server that refuses a newer agent server's events)."""

from __future__ import annotations

import math

from ..api.backend import Backend, EventCursor
from ..api.errors import OpenHandsError
from ..api.ids import later, parse_time
from .config import TrackerConfig
from .state import Tracked

#: seconds (scaled) after the end before the store is compared, and between comparisons
SETTLE = 45.0
AGAIN = 120.0
#: comparisons at most, while it stays behind; and in one tick of the loop, for all
CHECKS = 3
PER_TICK = 5


def schedule(tracked: Tracked, now: float, config: TrackerConfig) -> None:
    """Compare the store once the conversation has settled."""
    tracked.store_due = now + config.s(SETTLE)
    tracked.store_checks = CHECKS


def behind_note(store: str | None, agent: str | None) -> str | None:
    """What the card says when the store's newest event (``store``) is older than the newest
    one the agent server showed (``agent``), both on the server's clock; else ``None``."""
    newest, kept = parse_time(agent), parse_time(store)
    if newest is None or (kept is not None and not later(newest, kept)):
        return None
    has = f"events up to {kept.strftime('%H:%M:%S')}" if kept else "none of its events"
    return (
        f"The server's event store is behind its agent server: it has {has}, the agent's go "
        f"on to {newest.strftime('%H:%M:%S')}. What is shown here came from the agent server; "
        "the server's own history of this conversation lacks the rest."
    )


async def compare(backend: Backend, tracked: Tracked, now: float, config: TrackerConfig) -> None:
    """One comparison of the store's newest event with the newest one seen."""
    tracked.store_checks -= 1
    tracked.store_due = now + config.s(AGAIN) if tracked.store_checks > 0 else math.inf
    if tracked.info is None:
        return
    cursor = EventCursor()
    try:
        await backend.events_tail(tracked.info, cursor, limit=1)
    except OpenHandsError:
        return  # asked again at the next comparison
    tracked.store_note = behind_note(cursor.last_timestamp, tracked.server_time)
    if tracked.store_note is None:
        tracked.store_due = math.inf
