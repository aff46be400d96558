"""What the agent changed in its workspace: changed files, their diffs, and where the project is."""

from __future__ import annotations

import difflib
import posixpath
from dataclasses import dataclass
from typing import Any

from .errors import InvalidResponseError
from .text import visible

DEFAULT_ROOT = "/workspace/project"
STATUSES = {"ADDED": "added", "UPDATED": "updated", "DELETED": "deleted", "MOVED": "moved"}


@dataclass(frozen=True)
class FileChange:
    """One changed file: ``path`` relative to the project, ``status`` added/updated/deleted/
    moved, and its added and removed line counts (``None`` until its diff has been read)."""

    path: str
    status: str
    added: int | None = None
    removed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "added": self.added,
            "removed": self.removed,
        }


@dataclass(frozen=True)
class FileDiff:
    """A file before and after (``None`` where it did not exist), and their unified diff."""

    path: str
    original: str | None
    modified: str | None

    @property
    def unified(self) -> str:
        before = (self.original or "").splitlines(keepends=True)
        after = (self.modified or "").splitlines(keepends=True)
        lines = difflib.unified_diff(
            before,
            after,
            fromfile="/dev/null" if self.original is None else f"a/{self.path}",
            tofile="/dev/null" if self.modified is None else f"b/{self.path}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    @property
    def counts(self) -> tuple[int, int]:
        """Lines added and removed."""
        added = removed = 0
        for line in self.unified.splitlines()[2:]:
            if line.startswith("+"):
                added += 1
            elif line.startswith("-"):
                removed += 1
        return added, removed

    def __str__(self) -> str:
        """The unified diff for a terminal: control characters in the texts are shown, not
        acted on (``unified`` holds it as it is)."""
        return visible(self.unified)

    def __repr__(self) -> str:
        added, removed = self.counts
        return f"FileDiff({self.path!r}, +{added} -{removed})"


def project_root(working_dir: str | None, repository: str | None) -> str:
    """The git repository the agent works in: the server's working directory, or the cloned
    repository inside it (``{working_dir}/{repo name}``), as OpenHands lays it out."""
    root = (working_dir or DEFAULT_ROOT).rstrip("/") or "/"
    if repository and not working_dir:
        root = posixpath.join(root, repository.rstrip("/").rsplit("/", 1)[-1])
    return root


def changes_from(data: Any) -> list[FileChange]:
    """The server's ``[{"status": "ADDED", "path": ...}]``, sorted by path."""
    if not isinstance(data, list):
        raise InvalidResponseError(f"Unexpected git changes response: {type(data).__name__}")
    out = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            continue
        status = STATUSES.get(str(item.get("status") or "").upper(), "updated")
        out.append(FileChange(path=item["path"], status=status))
    return sorted(out, key=lambda c: c.path)


def diff_from(path: str, data: Any) -> FileDiff:
    """The server's ``{"original": str | null, "modified": str | null}``."""
    if not isinstance(data, dict):
        raise InvalidResponseError(f"Unexpected git diff response: {type(data).__name__}")
    original, modified = data.get("original"), data.get("modified")
    return FileDiff(
        path=path,
        original=original if isinstance(original, str) else None,
        modified=modified if isinstance(modified, str) else None,
    )


def absolute(root: str, path: str) -> str:
    """``path`` inside the project (an absolute path is kept as it is)."""
    return path if path.startswith("/") else posixpath.join(root, path)
