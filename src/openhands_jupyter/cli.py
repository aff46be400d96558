"""``openhands-jupyter``: the command line (``quickstart`` opens the quickstart notebook in
JupyterLab; ``demo`` drives one conversation in the terminal)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

NOTEBOOK = "quickstart.ipynb"
_PACKAGED = Path(__file__).resolve().parent / "notebooks" / NOTEBOOK
_SOURCE = Path(__file__).resolve().parents[2] / "notebooks" / NOTEBOOK


def pristine_notebook() -> Path:
    """The quickstart notebook as shipped (inside the wheel, or the source tree's copy)."""
    for path in (_PACKAGED, _SOURCE):
        if path.is_file():
            return path
    raise FileNotFoundError("openhands-jupyter is missing its quickstart notebook; reinstall it.")


def lab_command(folder: Path, extra: list[str], *, root: bool, browser: bool) -> list[str]:
    """The JupyterLab command line that serves ``folder`` and opens the notebook in it."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={folder}",
        f"--LabApp.default_url=/lab/tree/{NOTEBOOK}",
    ]
    if root:
        # Jupyter refuses to start as root unless told; containers often run as root.
        command.append("--allow-root")
    if not browser:
        command.append("--no-browser")
    return [*command, *extra]


def quickstart(args: argparse.Namespace, extra: list[str]) -> int:
    """Copy the notebook into ``args.dir`` (keeping an existing copy) and open it in JupyterLab."""
    if importlib.util.find_spec("jupyterlab") is None:
        print(
            "openhands-jupyter: JupyterLab is not installed; install it with "
            "pip install 'openhands-jupyter[dev]' (or pip install jupyterlab).",
            file=sys.stderr,
        )
        return 2
    folder = Path(args.dir).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / NOTEBOOK
    if args.fresh or not target.exists():
        shutil.copyfile(pristine_notebook(), target)
        print(f"openhands-jupyter: the quickstart notebook is {target}", flush=True)
    else:
        print(
            f"openhands-jupyter: opening your copy {target} (--fresh starts from a clean one)",
            flush=True,
        )
    if not (os.environ.get("OPENHANDS_API_KEY") or os.environ.get("OPENHANDS_BASE_URL")):
        print(
            "openhands-jupyter: no OPENHANDS_API_KEY: the notebook uses the bundled simulator "
            "(offline).",
            flush=True,
        )
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    command = lab_command(folder, extra, root=root, browser=not args.no_browser)
    os.chdir(folder)
    if os.name == "posix":
        # JupyterLab takes this process over: Ctrl-C and signals reach it directly.
        os.execv(command[0], command)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="openhands-jupyter",
        description="Drive the OpenHands coding agent from Jupyter.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    quick = commands.add_parser(
        "quickstart",
        help="open the quickstart notebook in JupyterLab",
        description="Copy the quickstart notebook into DIR (an existing copy is kept) and open "
        "it in JupyterLab. Without OPENHANDS_API_KEY it runs offline against the bundled "
        "simulator. Options JupyterLab knows (e.g. --port 8889, --ip 0.0.0.0) are passed on.",
    )
    quick.add_argument(
        "--dir",
        default="openhands-quickstart",
        help="where the notebook goes (default: %(default)s)",
    )
    quick.add_argument("--fresh", action="store_true", help="replace an existing copy")
    quick.add_argument("--no-browser", action="store_true", help="only print the URL")
    commands.add_parser(
        "demo",
        help="drive one conversation in the terminal",
        add_help=False,
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        from .demo import main as demo

        return demo(argv[1:])
    args, extra = parser.parse_known_args(argv)
    return quickstart(args, extra)


if __name__ == "__main__":
    raise SystemExit(main())
