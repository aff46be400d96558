"""Tracker settings: cadence, request budget and concurrency, all scaled by ``time_scale``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api.errors import InputError
from ..settings import check
from .clock import Clock

#: how many starts may wait for a new sandbox at once on a self-hosted server
SANDBOX_STARTS = 1


@dataclass(frozen=True)
class TrackerConfig:
    """How often to ask and how much. Durations are seconds; ``time_scale`` multiplies them all
    (and shrinks the budget's windows), so tests can run on sped-up time."""

    poll_interval: float = 5.0
    start_interval: float = 1.0
    start_growth: float = 1.5
    start_max_interval: float = 10.0
    idle_interval: float = 30.0
    paused_interval: float = 60.0
    queue_retry_interval: float = 30.0
    event_lag_allowance: float = 2.0
    final_fetches: int = 6
    """Reads of the app server's events for the answer after the end (at 2, 7, 17, 37, 67,
    97 s): its store is fed in batches of 5 events or 30 s."""
    max_final_gap: float = 30.0
    budget_per_minute: int = 60
    max_per_second: int = 10
    max_concurrent: int | None = None
    sandbox_starts: int | None = SANDBOX_STARTS
    """How many of this client's starts may wait for a new sandbox at once (``None``: any).
    A self-hosted server's process sandbox gives sandboxes made at the same moment the same
    port, and all but one of those starts fail; the client sets ``None`` for OpenHands Cloud."""
    max_backoff: float = 60.0
    feed_size: int = 200
    live_events: bool = True
    """Read a watched conversation's events live from its agent server; off, they come from
    the app server's event store only (which the agent server fills in batches)."""
    time_scale: float = 1.0
    clock: Clock = field(default_factory=Clock, compare=False, repr=False)
    """Where the tracker reads the time and sleeps (tests pass a :class:`ManualClock`)."""

    def __post_init__(self) -> None:
        # the user's settings are held to their limits (one definition: settings.py)
        for name in (
            "poll_interval",
            "budget_per_minute",
            "max_concurrent",
            "sandbox_starts",
            "time_scale",
        ):
            check(name, getattr(self, name))
        for name in ("start_interval", "start_max_interval", "idle_interval", "paused_interval"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be greater than 0, got {getattr(self, name)!r}.")

    def s(self, seconds: float) -> float:
        """Scale a duration."""
        return seconds * self.time_scale
