"""What the suite must leave as it found it in the user's home: git config, shell history, and
the folders that tools, kernels and agent servers create there."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .support.real.tags import RUN

#: files compared by content
FILES = (".gitconfig", ".config/git/config", ".bash_history", ".python_history")
#: folders compared by what is in them
TREES = (".openhands", ".ipython", ".jupyter", ".local/share/jupyter")
#: folders compared by their names only (other programs may write inside them meanwhile)
ROOTS = (".config", ".local/share")


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        return f"unreadable ({type(exc).__name__})"


def fingerprint(home: Path | None = None) -> dict[str, str]:
    """A picture of what the suite may not change: ``{path: what it holds}``."""
    home = home or Path.home()
    out: dict[str, str] = {}
    for name in FILES:
        path = home / name
        if path.is_file():
            out[name] = _digest(path)
    for name in TREES:
        root = home / name
        if not root.is_dir():
            continue
        out[name + "/"] = "folder"
        for path in sorted(root.rglob("*")):
            rel = f"{name}/{path.relative_to(root)}"
            out[rel] = _digest(path) if path.is_file() else "folder"
    for name in ROOTS:
        root = home / name
        if root.is_dir():
            for child in sorted(root.iterdir()):
                out.setdefault(f"{name}/{child.name}", "present")
    return out


#: what the agents' tools leave in the temporary folder when nothing says where (the file
#: editor's history, the browser's downloads), and this run's real servers' own folders
LITTER = (
    "oh_editor_history_",
    "browser-use-downloads-",
    f"ohj-real-{RUN}-",
    f"ohj-fake-llm-{RUN}-",
)


def litter(servers: bool = True) -> set[str]:
    """The temporary folder's entries that the suite's servers (unless ``servers`` is off:
    those that start meanwhile make theirs) and their agents make."""
    try:
        names = os.listdir(tempfile.gettempdir())
    except OSError:
        return set()
    kinds = LITTER if servers else tuple(k for k in LITTER if not k.startswith("ohj-real-"))
    return {name for name in names if name.startswith(kinds)}


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What differs, one line each: ``+ new``, ``- gone``, ``~ changed``."""
    lines = [f"+ ~/{k}" for k in sorted(after.keys() - before.keys())]
    lines += [f"- ~/{k}" for k in sorted(before.keys() - after.keys())]
    lines += [f"~ ~/{k}" for k in sorted(before.keys() & after.keys()) if before[k] != after[k]]
    return lines


#: environment variable -> the private folder it points to
PRIVATE = {
    "IPYTHONDIR": "ipython",
    "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
    "JUPYTER_CONFIG_DIR": "jupyter-config",
    "JUPYTER_DATA_DIR": "jupyter-data",
    "MPLCONFIGDIR": "matplotlib",
}


class PrivateDirs:
    """Private IPython and Jupyter folders for everything the suite starts (kernels, the
    in-process shell), unless the caller chose their own; removed when the process ends
    (after the in-process shell has written its history there)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ohj-test-dirs-"))
        self.set: list[str] = []
        for var, sub in PRIVATE.items():
            if not os.environ.get(var):
                os.environ[var] = str(self.root / sub)
                self.set.append(var)
        # registered first, so it runs last: the shell's own exit handler writes in there
        atexit.register(shutil.rmtree, self.root, True)
