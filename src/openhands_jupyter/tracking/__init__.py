"""The one polling loop per client, its cadence, request budget and launch queue."""

from .budget import RequestBudget
from .clock import Clock, ManualClock
from .config import TrackerConfig
from .loops import BackgroundLoop
from .snapshot import Snapshot
from .state import Tracked
from .tracker import Tracker

__all__ = [
    "BackgroundLoop",
    "Clock",
    "ManualClock",
    "RequestBudget",
    "Snapshot",
    "Tracked",
    "Tracker",
    "TrackerConfig",
]
