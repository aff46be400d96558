"""What the agent changed, kept fresh for the widgets that show it: read again when the events
show an edit (at most once every ``GAP`` seconds) and once after the run ends."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..api.backend import Backend
from ..api.errors import ConflictError, OpenHandsError, UnsupportedError
from ..api.models import ConversationInfo, Event
from ..api.workspace import FileChange, FileDiff

#: seconds between two reads of one conversation's changes (edits come in bursts)
GAP = 1.0
#: diffs read in one refresh at most (the rest are read in the next ones, ``GAP`` apart)
DIFFS_PER_REFRESH = 20


def edited_path(event: Event) -> str | None:
    """The file an edit event names (``"<command> <path>"``), else ``None``."""
    if event.type != "edit":
        return None
    _, _, path = event.text.partition(" ")
    return path or None


@dataclass
class ChangeSet:
    """One conversation's changed files, their diffs, and when to read them again."""

    files: tuple[FileChange, ...] = ()
    diffs: dict[str, FileDiff] = field(default_factory=dict)
    root: str | None = None
    read: bool = False
    """Read at least once."""
    error: str | None = None
    watchers: int = 0
    stale: bool = True
    """The events showed an edit (or the run ended) since the last read."""
    dirty: set[str] = field(default_factory=set)
    """Files named by edits since the last read: their diffs are read again."""
    all_dirty: bool = True
    due: float = 0.0
    failures: int = 0
    version: int = 0
    #: requests these reads sent (the list, each diff, finding the project once)
    requests: int = 0

    def note_events(self, events: list[Event]) -> bool:
        """Take new events; ``True`` when one of them is an edit."""
        edited = False
        for event in events:
            path = edited_path(event)
            if path is not None:
                self.dirty.add(path)
                edited = True
        if edited:
            self.stale = True
        return edited

    def everything_stale(self) -> None:
        """The run ended (or resumed): read every file's diff again."""
        self.stale = self.all_dirty = True

    def wanted(self, now: float) -> bool:
        return self.watchers > 0 and self.stale and self.due <= now

    def next_due(self) -> float:
        return self.due if self.watchers > 0 and self.stale else math.inf

    def to_list(self) -> list[dict[str, object]]:
        return [f.to_dict() for f in self.files]


def _named(path: str, dirty: set[str]) -> bool:
    """Whether an edit named this file: the agent names it as it likes (absolute, or from
    another directory), the server relative to the project."""
    return any(d == path or d.endswith("/" + path) for d in dirty)


async def read(
    backend: Backend, info: ConversationInfo, changes: ChangeSet, diffs: int = DIFFS_PER_REFRESH
) -> None:
    """Read the changed files and, up to ``diffs`` of them, the diffs that may have moved."""
    if changes.root is None:
        changes.requests += 1
        changes.root = await backend.workspace_root(info)
    changes.requests += 1
    files = await backend.changes(info, changes.root)
    before = {f.path: f for f in changes.files}
    out: list[FileChange] = []
    later: set[str] = set()
    reads = 0
    for change in files:
        old = before.get(change.path)
        again = (
            changes.all_dirty
            or _named(change.path, changes.dirty)
            or old is None
            or old.status != change.status
            or change.path not in changes.diffs
        )
        if again and reads < diffs:
            reads += 1
            changes.requests += 1
            changes.diffs[change.path] = await backend.file_diff(info, changes.root, change.path)
        elif again:
            later.add(change.path)
        diff = changes.diffs.get(change.path)
        if diff is not None:
            added, removed = diff.counts
            change = FileChange(change.path, change.status, added, removed)
        out.append(change)
    keep = {f.path for f in out}
    changes.diffs = {p: d for p, d in changes.diffs.items() if p in keep}
    changes.files = tuple(out)
    changes.read = True
    changes.error = None
    changes.failures = 0
    changes.all_dirty = False
    changes.dirty = later
    changes.stale = bool(later)
    changes.version += 1


async def refresh(backend: Backend, info: ConversationInfo, changes: ChangeSet) -> None:
    """:func:`read`, for the tracker: a paused sandbox (409) or a server without the route
    ends the reading until something new happens, and says why; other errors are raised for
    the caller's backoff."""
    try:
        await read(backend, info, changes)
    except (ConflictError, UnsupportedError) as exc:
        changes.error = str(exc)
        changes.stale = False
        changes.version += 1


def failed(changes: ChangeSet, exc: OpenHandsError, again_at: float) -> None:
    changes.failures += 1
    changes.error = f"Retrying: {exc}"
    changes.version += 1
    changes.due = again_at


__all__ = ["ChangeSet", "edited_path", "failed", "read", "refresh"]
