"""What the agent changed, kept fresh for the widgets that show it: read again when the events
show an edit (at most once every ``GAP`` seconds) and once after the run ends."""

from __future__ import annotations

import asyncio
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
#: files whose lines are counted at most (in path order): a workspace with more changed files
#: lists them all, counts these, and says so
MAX_COUNTED = 200
#: diffs read at the same time
CONCURRENCY = 4
#: files the events showed edited, kept (the newest) to say what git does not show
EDITED_KEPT = 20
#: the diffs kept for the widget to show at once, in characters of text at most
DIFF_CACHE = 8 * 1024 * 1024


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
    #: the diffs read last, newest last, bounded by ``DIFF_CACHE`` characters
    diffs: dict[str, FileDiff] = field(default_factory=dict)
    #: lines added and removed, by path (kept when a diff leaves the cache)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: ``MAX_COUNTED`` was reached: how many files are listed in all
    capped: int = 0
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
    #: the files the events showed the agent editing (the newest ``EDITED_KEPT``)
    edited: dict[str, None] = field(default_factory=dict)

    def note_events(self, events: list[Event]) -> bool:
        """Take new events; ``True`` when one of them is an edit."""
        edited = False
        for event in events:
            path = edited_path(event)
            if path is not None:
                self.dirty.add(path)
                self.edited.pop(path, None)
                self.edited[path] = None
                while len(self.edited) > EDITED_KEPT:
                    del self.edited[next(iter(self.edited))]
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

    def keep(self, path: str, diff: FileDiff) -> None:
        """Remember a diff read (and its counts), within ``DIFF_CACHE``."""
        self.counts[path] = diff.counts
        self.diffs.pop(path, None)
        self.diffs[path] = diff
        size = sum(_size(d) for d in self.diffs.values())
        while size > DIFF_CACHE and len(self.diffs) > 1:
            oldest = next(iter(self.diffs))
            size -= _size(self.diffs.pop(oldest))


def _size(diff: FileDiff) -> int:
    return len(diff.original or "") + len(diff.modified or "")


def _named(path: str, dirty: set[str]) -> bool:
    """Whether an edit named this file: the agent names it as it likes (absolute, or from
    another directory), the server relative to the project."""
    return any(d == path or d.endswith("/" + path) for d in dirty)


async def read(
    backend: Backend,
    info: ConversationInfo,
    changes: ChangeSet,
    diffs: int = DIFFS_PER_REFRESH,
    counted: int = MAX_COUNTED,
) -> None:
    """Read the changed files (one request, all of them) and, up to ``diffs`` at a time
    (``CONCURRENCY`` at once), the diffs of those among the first ``counted`` that may have
    moved; the others keep no line counts (``capped`` says how many files there are)."""
    if changes.root is None:
        changes.requests += 1
        changes.root = await backend.workspace_root(info)
    root = changes.root
    changes.requests += 1
    files = await backend.changes(info, root)
    before = {f.path: f for f in changes.files}
    wanted: list[str] = []
    later: set[str] = set()
    for i, change in enumerate(files):
        old = before.get(change.path)
        again = (
            changes.all_dirty
            or _named(change.path, changes.dirty)
            or old is None
            or old.status != change.status
            or change.path not in changes.counts
        )
        if not again or i >= counted:
            continue
        if len(wanted) < diffs:
            wanted.append(change.path)
        else:
            later.add(change.path)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(path: str) -> None:
        async with gate:
            changes.requests += 1
            changes.keep(path, await backend.file_diff(info, root, path))

    await asyncio.gather(*(one(path) for path in wanted))
    out: list[FileChange] = []
    for change in files:
        count = changes.counts.get(change.path)
        if count is not None:
            change = FileChange(change.path, change.status, count[0], count[1])
        out.append(change)
    keep = {f.path for f in out}
    changes.diffs = {p: d for p, d in changes.diffs.items() if p in keep}
    changes.counts = {p: c for p, c in changes.counts.items() if p in keep}
    changes.capped = len(out) if len(out) > counted else 0
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
