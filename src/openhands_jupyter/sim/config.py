"""What a simulator serves and how: its API version, keys, limits, faults and counters."""

from __future__ import annotations

from dataclasses import dataclass, field

from .faults import Faults, Stats
from .world import World


@dataclass
class SimConfig:
    world: World
    api: str = "v1"
    api_key: str | None = None
    session_api_key: str | None = None
    rate_limit: bool = False
    scale_rate_limit: bool = True
    per_second: int = 10
    per_minute: int = 100
    max_concurrent: int | None = None
    events_path: str = "new"
    frontend: bool = True
    """Serve the web UI: unknown GETs get its HTML page (200), other methods 405."""
    v1_enabled: bool = True
    """What the legacy settings (``GET /api/settings``) say to a 1.x web UI."""
    timestamp_filter_fails: bool = False
    """1.6's V1 event store: a search with ``timestamp__gte`` answers 500 once it has events."""
    absent: frozenset[str] = frozenset()
    """Routes (by their counting name, e.g. ``v1.send_message``) this server does not have."""
    faults: Faults = field(default_factory=Faults)
    stats: Stats = field(default_factory=Stats)
