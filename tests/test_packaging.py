"""The wheel carries the widget's JS and CSS, and the widgets import from the installed wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_front_end_and_imports_from_it(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = list(tmp_path.glob("openhands_jupyter-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for asset in ("widget.js", "widget.css"):
        assert f"openhands_jupyter/static/{asset}" in names
    assert "openhands_jupyter/py.typed" in names
    assert "openhands_jupyter/notebooks/quickstart.ipynb" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import openhands_jupyter, openhands_jupyter.ui.widget as w, openhands_jupyter.ui.panel as p;"
        "print(openhands_jupyter.__file__); print(str(w.ConversationWidget._esm)[:80]);"
        "print(str(p.Panel._esm)[:60]);"
        "import openhands_jupyter.cli as c; print(c.pristine_notebook())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith(str(site))
    assert "OpenHands widgets" in lines[1]
    assert lines[2] == lines[1][:60]
    assert lines[3].startswith(str(site))  # the notebook comes from the wheel too


PACKAGE = ROOT / "src" / "openhands_jupyter"
#: each layer imports only those below it (modules of one layer may import each other, without
#: circles); ``sim`` stands beside them: it uses ``api`` only, and only entry points start it
LAYERS = {
    "constants": 0,
    "settings": 0,
    "api": 0,
    "tracking": 1,
    "handles": 2,
    "ui": 3,
    "demo": 4,
    "cli": 4,
    "sim": 5,
}


def _imports() -> dict[str, set[str]]:
    """Every module's imports of the package's own modules, at any depth (functions and
    TYPE_CHECKING blocks too), as dotted names under ``openhands_jupyter``."""
    import ast

    graph: dict[str, set[str]] = {}
    modules = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in PACKAGE.rglob("*.py")
    }
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        package = (
            name.rsplit(".", 1)[0] if not name.endswith("__init__") else name[: -len(".__init__")]
        )
        name = name.removesuffix(".__init__")
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    module = ".".join([*base, *(node.module.split(".") if node.module else [])])
                else:
                    module = node.module or ""
                for alias in node.names:
                    full = f"{module}.{alias.name}"
                    targets.add(full if full in modules else module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_circles() -> None:
    graph = _imports()
    seen: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node, [node])


def test_layers_import_only_what_is_below() -> None:
    def layer(module: str) -> str:
        return module.split(".")[1] if "." in module else "__init__"

    wrong = []
    for module, targets in _imports().items():
        here = layer(module)
        for target in targets:
            there = layer(target)
            if here == "__init__" or there == here:
                continue
            if here == "sim":
                ok = there in ("api", "constants")
            elif there == "sim":
                ok = here in ("demo", "cli")
            else:
                ok = there != "__init__" and LAYERS[there] <= LAYERS[here]
            if not ok:
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def test_the_ui_uses_only_the_handles_and_snapshots() -> None:
    # the widgets reach a conversation through the client and conversation handles: what they
    # draw comes from a Snapshot, what they do from the handles
    import ast

    allowed = {"Snapshot"}
    wrong = []
    for path in (PACKAGE / "ui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and "tracking" in (node.module or ""):
                wrong += [f"{path.name}: {a.name}" for a in node.names if a.name not in allowed]
            if isinstance(node, ast.Attribute) and node.attr in ("tracker", "_tracked", "_host"):
                wrong.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert not wrong, wrong
