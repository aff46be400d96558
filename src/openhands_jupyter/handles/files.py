"""A conversation's workspace from its handle: the files the agent changed, their diffs, and
a file's text read into the notebook or saved to disk."""

from __future__ import annotations

import concurrent.futures
import warnings
from collections.abc import Callable, Coroutine
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

from ..api.backend import Backend
from ..api.errors import InputError
from ..api.models import ConversationInfo
from ..api.workspace import FileChange, FileDiff
from ..tracking import Tracked, Tracker
from ..tracking.changes import ChangeSet, read

#: files whose lines ``changes()`` counts at most, by default
MAX_COUNTED = 1000


class ChangesCappedWarning(UserWarning):
    """More files changed than ``changes()`` counted the lines of."""


T = TypeVar("T")


class Host(Protocol):
    """What a handle needs from the client that made it, and nothing more."""

    @property
    def tracker(self) -> Tracker: ...

    async def backend(self) -> Backend: ...

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T: ...

    def web_url(self, tracked: Tracked) -> str | None: ...

    def in_background(
        self,
        coro: Coroutine[Any, Any, T],
        then: Callable[[concurrent.futures.Future[T]], None] | None = None,
    ) -> concurrent.futures.Future[T]: ...

    def later(self, seconds: float, fn: Callable[[], Any]) -> None: ...


def _checked(path: Any) -> str:
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise InputError(f"A file path is a non-empty string, not {path!r}.")
    return path.strip()


class WorkspaceMixin:
    """``changes()``, ``diff()``, ``read_file()`` and ``save_file()`` for :class:`Conversation`."""

    _tracked: Tracked
    _host: Host

    async def _info(self) -> ConversationInfo:  # pragma: no cover - the handle defines it
        raise NotImplementedError

    async def _where(self) -> tuple[Backend, ConversationInfo, str]:
        info = await self._info()
        backend = await self._host.backend()
        root = self._tracked.changes.root or await backend.workspace_root(info)
        return backend, info, root

    async def changes_async(
        self, counts: bool = True, max_counted: int = MAX_COUNTED
    ) -> list[FileChange]:
        """See :meth:`changes`."""
        backend, info, root = await self._where()
        found = ChangeSet(root=root)
        limit = max_counted if counts else 0
        await read(backend, info, found, diffs=limit, counted=limit)
        if counts and found.capped:
            warnings.warn(
                f"{found.capped:,} files changed: lines were counted for the first "
                f"{max_counted:,} (diff(path) reads any other).",
                ChangesCappedWarning,
                stacklevel=3,
            )
        return list(found.files)

    def changes(self, counts: bool = True, max_counted: int = MAX_COUNTED) -> list[FileChange]:
        """The files the agent changed in its project, with their status (added, updated,
        deleted, moved) and the lines added and removed: listed in one request, then their
        diffs read a few at a time for the counts, for the first ``max_counted`` files (a
        ``ChangesCappedWarning`` says when there are more; ``counts=False`` lists only).
        Raises ``ConflictError`` while the sandbox is paused."""
        return self._host.run_sync(self.changes_async(counts, max_counted))

    async def diff_async(self, path: str) -> FileDiff:
        """See :meth:`diff`."""
        path = _checked(path)
        backend, info, root = await self._where()
        return await backend.file_diff(info, root, path)

    def diff(self, path: str) -> FileDiff:
        """One changed file: ``.original`` and ``.modified`` text (``None`` where it did not
        exist) and ``.unified``, the unified diff (also what ``print()`` shows)."""
        path = _checked(path)
        return self._host.run_sync(self.diff_async(path))

    async def _read_bytes(self, path: str) -> bytes:
        backend, info, root = await self._where()
        return await backend.read_file(info, root, path)

    async def read_bytes_async(self, path: str) -> bytes:
        """A file from the agent's workspace, as bytes (see :meth:`read_file`)."""
        return await self._read_bytes(_checked(path))

    async def read_file_async(self, path: str) -> str:
        """See :meth:`read_file`."""
        data = await self._read_bytes(_checked(path))
        return data.decode("utf-8", errors="replace")

    def read_file(self, path: str) -> str:
        """A file's text from the agent's workspace (relative to its project, or absolute).
        Raises ``NotFoundError`` for a file that is not there (while the agent server runs;
        after that, the app server's copy answers ``""``)."""
        path = _checked(path)
        return self._host.run_sync(self.read_file_async(path))

    def watch_changes(self, on: bool = True) -> None:
        """Keep the changed files read (after each edit, and once after the run ends) while
        something shows them; ``on=False`` undoes one earlier call."""
        tracker = self._host.tracker

        def apply() -> None:
            changes = self._tracked.changes
            changes.watchers = max(0, changes.watchers + (1 if on else -1))
            tracker.wake()

        if tracker.closed:
            return
        try:
            tracker.call_soon(apply)
        except RuntimeError:
            pass  # the client closed meanwhile: nothing is read any more

    def cached_diff(self, path: str) -> FileDiff | None:
        """The diff the tracker read last for ``path``, if any (no request)."""
        return self._tracked.changes.diffs.get(path)

    def save_file(self, path: str, dest: str | Path | None = None) -> Path:
        """Save a file from the agent's workspace to ``dest`` (a file, or a directory to put it
        in; default: its name in the current directory); returns where it went."""
        path = _checked(path)
        target = Path(dest) if dest is not None else Path(PurePosixPath(path).name)
        if target.is_dir():
            target = target / PurePosixPath(path).name
        target.write_bytes(self._host.run_sync(self._read_bytes(path)))
        return target
