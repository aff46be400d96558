"""The simulated agent's git working tree: each scripted edit changes a file, and the tree
answers what ``git/changes`` and ``git/diff`` answer on a real agent server."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import scenarios as sc

WORKING_DIR = "/workspace/project"


def project_dir(repository: str | None) -> str:
    """Where the agent works: the working directory, or the repository cloned into it."""
    return f"{WORKING_DIR}/{repository.rsplit('/', 1)[-1]}" if repository else WORKING_DIR


#: the files as committed (a path not listed did not exist)
COMMITTED = {
    sc.EDITED_FILE: (
        '"""The API handlers."""\n\n\n'
        "def handler(request):\n"
        "    return fetch(request)\n\n\n"
        "def fetch(request):\n"
        "    return None\n"
    ),
}


@dataclass
class SimTree:
    """Files as committed (``None``: not there) and as they are now."""

    original: dict[str, str | None] = field(default_factory=dict)
    current: dict[str, str | None] = field(default_factory=dict)
    edits: int = 0
    #: a git repository; a workspace that is not one has files but no changes to show, as
    #: a real agent server answers for it
    git: bool = True
    #: files the client sent (``/api/file/upload``), by path in the project, as sent
    uploaded: dict[str, bytes] = field(default_factory=dict)

    def _start(self, path: str) -> str | None:
        if path not in self.original:
            self.original[path] = COMMITTED.get(path)
            self.current[path] = self.original[path]
        return self.current[path]

    def edit(self, text: str) -> None:
        """Apply a file-editor action (``"<command> <path>"``, as the scenarios write it)."""
        verb, _, path = text.partition(" ")
        if not path:
            return
        self.edits += 1
        now = self._start(path)
        if verb == "create" and path in sc.RESULTS:
            self.current[path] = sc.RESULTS[path]
        elif verb == "create" or now is None:
            count = sc.CREATED_LINES if path == sc.BIG_FILE else 3
            self.current[path] = "".join(f"line {i + 1} of {path}\n" for i in range(count))
        elif verb == "delete":
            self.current[path] = None
        else:
            lines = now.splitlines(keepends=True)
            if len(lines) > 1:
                # the last line changes and one is added: +2 -1
                lines[-1] = f"    return fetch_cached(request)  # edit {self.edits}\n"
            lines.append(f"# reviewed in edit {self.edits}\n")
            self.current[path] = "".join(lines)

    def changes(self) -> list[dict[str, str]]:
        if not self.git:
            return []
        out = []
        for path in sorted(self.original):
            before, after = self.original[path], self.current[path]
            if before == after:
                continue
            status = "ADDED" if before is None else "DELETED" if after is None else "UPDATED"
            out.append({"status": status, "path": path})
        return out

    def diff(self, path: str) -> dict[str, str | None] | None:
        if path not in self.original:
            return None
        return {"modified": self.current[path], "original": self.original[path]}
