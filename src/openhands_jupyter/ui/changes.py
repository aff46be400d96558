"""The Changes section's data: the changed files for the widget's state, and a file's diff as
the lines the browser draws (cut to the first ``DIFF_SHOWN`` until it asks for all)."""

from __future__ import annotations

from typing import Any

from ..api.text import comm_safe
from ..api.workspace import FileDiff
from ..tracking import Snapshot

#: diff lines sent before the user asks for all of them
DIFF_SHOWN = 400
#: files listed at most (a run that touched more says how many were left out)
FILES_SHOWN = 200


def changes_state(snap: Snapshot) -> dict[str, Any]:
    """What the Changes section shows: files, whether they were read yet, and why not."""
    files = [c.to_dict() for c in snap.changes[:FILES_SHOWN]]
    return {
        "files": files,
        "count": len(snap.changes),
        "counted": snap.changes_counted,
        "read": snap.changes_read,
        "error": snap.changes_error or "",
        "note": not_in_git(snap),
    }


def not_in_git(snap: Snapshot) -> str:
    """What to say when git shows no change although the agent edited files: its workspace is
    not a git repository, or the files are outside it or ignored (``""``: nothing to say)."""
    if not snap.changes_read or snap.changes or snap.changes_error or not snap.edited:
        return ""
    shown = ", ".join(snap.edited[-3:])
    more = len(snap.edited) - 3
    names = shown + (f" and {more} more" if more > 0 else "")
    return (
        f"Git shows no changes, though the agent edited {names}: its workspace is not a git "
        "repository, or these files are outside it or ignored. conv.read_file(path) reads one."
    )


def diff_message(
    path: str, diff: FileDiff | None, everything: bool, seq: Any = None, error: str = ""
) -> Any:
    """The answer to the browser's request ``seq`` for ``path``'s diff."""
    lines = diff.unified.splitlines() if diff is not None else []
    shown = lines if everything else lines[:DIFF_SHOWN]
    return comm_safe(
        {
            "diff_of": path,
            "lines": shown,
            "total": len(lines),
            "error": error,
            "all": everything,
            "seq": seq if isinstance(seq, int) else None,
        }
    )


#: what the Changes section shows of a file inline, by suffix, and the most it reads
VIEWABLE = {
    ".png": ("image", "image/png"),
    ".jpg": ("image", "image/jpeg"),
    ".jpeg": ("image", "image/jpeg"),
    ".gif": ("image", "image/gif"),
    ".webp": ("image", "image/webp"),
    ".svg": ("image", "image/svg+xml"),
    ".html": ("html", "text/html"),
    ".htm": ("html", "text/html"),
    ".md": ("text", "text/markdown"),
    ".markdown": ("text", "text/markdown"),
}
VIEW_LIMIT = 5 * 1024 * 1024


def view_message(path: str, data: bytes | None, error: str = "") -> Any:
    """The answer to the browser's request to show ``path`` inline: an image as base64 (drawn
    in an <img>), an HTML page as text (drawn in a sandboxed frame), Markdown as text."""
    import base64
    from pathlib import PurePosixPath

    kind, mime = VIEWABLE.get(PurePosixPath(path).suffix.lower(), ("text", "text/plain"))
    out: dict[str, Any] = {"file_view": path, "kind": kind, "mime": mime, "error": error}
    if data is not None and not error:
        if len(data) > VIEW_LIMIT:
            out["error"] = (
                f"{path} is over {VIEW_LIMIT // (1024 * 1024)} MB: conv.show(path) shows it."
            )
        elif kind == "image":
            out["data"] = base64.b64encode(data).decode("ascii")
        else:
            out["data"] = data.decode("utf-8", errors="replace")
    return comm_safe(out)
