"""UI benchmark: %load_ext import time, how soon ``%openhands`` gives the cell back, status-change
-to-DOM latency in JupyterLab, and panel render time with 100 conversations.

Run: ``.venv/bin/python -m bench.ui``. Prints the figures and writes ``bench/results/ui.json``.
Needs /usr/bin/chromium.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.browser import (
    JupyterServer,
    chromium_page,
    open_notebook,
    run_cells,
    write_notebook,
)

ROOT = Path(__file__).resolve().parent.parent

OUT = Path(__file__).resolve().parent / "results"
TIMED = "import time as _t\n_t0 = _t.perf_counter()\n{stmt}\nprint(_t.perf_counter() - _t0)"
BASELINE = "import ipywidgets, anywidget, httpx"
LOAD_EXT = "get_ipython().run_line_magic('load_ext', 'openhands_jupyter')"
FIRST_USE = "get_ipython().run_line_magic('load_ext', 'openhands_jupyter')\nimport openhands_jupyter.handles.client, openhands_jupyter.ui.shown, openhands_jupyter.ui.panel"


def import_times(runs: int = 7) -> dict[str, Any]:
    """Each sample in a fresh kernel, where (as in a notebook) IPython and asyncio are loaded."""
    from tests.support.kernel import Kernel

    def measure(stmt: str) -> float:
        k = Kernel()
        try:
            out = k.run(TIMED.format(stmt=stmt))
            return float(out["stdout"].strip().splitlines()[-1])
        finally:
            k.close()

    samples: dict[str, list[float]] = {"baseline": [], "load_ext": [], "first_use": []}
    for _ in range(runs):  # interleaved, so all see the same machine load
        samples["baseline"].append(measure(BASELINE))
        samples["load_ext"].append(measure(LOAD_EXT))
        samples["first_use"].append(measure(FIRST_USE))
    med = {k: statistics.median(v) for k, v in samples.items()}
    return {
        "baseline_s": med["baseline"],
        "load_ext_s": med["load_ext"],
        "first_use_s": med["first_use"],
        "ratio": med["load_ext"] / med["baseline"],
        "first_use_ratio": med["first_use"] / med["baseline"],
    }


LATENCY_CELLS = [
    "%load_ext openhands_jupyter",
    """
import asyncio, time
from openhands_jupyter import OpenHands
from openhands_jupyter.tracking import Snapshot
from openhands_jupyter.ui.widget import ConversationWidget
oh = OpenHands(None, 'http://127.0.0.1:9', progress=False)
conv = oh.aio._handle(__import__('openhands_jupyter').tracking.Tracked(), progress=False)
w = ConversationWidget(conv)
display(w)
sent = []
async def drive():
    await asyncio.sleep(2)
    for i in range(40):
        status = ['running', 'idle', 'waiting', 'finished'][i % 4]
        sent.append((time.time() * 1000, status))
        w._on_snapshot(Snapshot(key=1, status=status, tracking=True))
        await asyncio.sleep(0.3)
task = asyncio.get_running_loop().create_task(drive())
""",
    "print(__import__('json').dumps(sent))",
    """
import time
from openhands_jupyter.ui.panel import Panel
p = Panel(oh)
display(p)
""",
    """
import asyncio, time
await asyncio.sleep(1)  # let the panel's own first update land
rows = [{"key": i, "id": f"{i:032x}", "status": ["running", "finished", "queued", "error"][i % 4],
         "title": f"Task number {i} with a reasonably long title for the table", "task": "t",
         "repository": "octo/app", "branch": "main", "cost": 0.1 * i, "url": "https://example.invalid/c",
         "detail": "", "started_at": time.time() * 1000 - 60000, "ended_at": None, "queue_position": None}
        for i in range(100)]
t_full = time.time() * 1000
p.rows = rows
""",
    """
rows2 = [dict(r) for r in rows]
rows2[50]["status"] = "paused"
t_update = time.time() * 1000
p.rows = rows2
print(t_full, t_update)
""",
]

OBSERVE = """() => {
  window.__ohj = [];
  const pill = document.querySelector('.ohj-card .ohj-pill');
  new MutationObserver(() => window.__ohj.push([Date.now(), pill.textContent])).observe(
    pill, {childList: true, characterData: true, subtree: true});
}"""

PANEL_OBSERVE = """() => {
  window.__panel = [];
  const watch = () => {
    const body = document.querySelector('.ohj-panel tbody');
    if (!body) return setTimeout(watch, 5);
    new MutationObserver(() => {
      const rows = body.querySelectorAll('tr');
      const paused = body.querySelectorAll('tr[data-status=paused]').length;
      window.__panel.push([Date.now(), rows.length, paused]);
    }).observe(body, {childList: true});
  };
  watch();
}"""


def browser_figures() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = JupyterServer("lab", Path(tmp), {})
        try:
            write_notebook(server.nb_dir / "bench.ipynb", LATENCY_CELLS)
            with chromium_page() as page:
                open_notebook(page, server, "bench.ipynb")
                run_cells(page, [0, 1])
                page.locator(".ohj-card .ohj-pill").first.wait_for(timeout=15000)
                page.evaluate(OBSERVE)
                time.sleep(2 + 40 * 0.3 + 1.5)
                run_cells(page, [2])
                sent_text = page.evaluate(
                    "() => window.jupyterapp.shell.currentWidget.content.widgets[2].model"
                    ".outputs.get(0).toJSON().text"
                )
                sent = json.loads("".join(sent_text))
                seen = page.evaluate("() => window.__ohj")
                latencies = []
                for t_sent, status in sent:
                    hits = [t for t, text in seen if text == status and t >= t_sent - 5]
                    if hits:
                        latencies.append(min(hits) - t_sent)
                run_cells(page, [3])
                page.locator(".ohj-panel").first.wait_for(timeout=15000)
                page.evaluate(PANEL_OBSERVE)
                run_cells(page, [4])
                page.wait_for_function(
                    "() => document.querySelectorAll('.ohj-panel tbody tr').length === 100",
                    timeout=15000,
                )
                run_cells(page, [5])
                page.wait_for_function(
                    "() => document.querySelectorAll('.ohj-panel tr[data-status=paused]').length === 1",
                    timeout=15000,
                )
                out = page.evaluate(
                    "() => window.jupyterapp.shell.currentWidget.content.widgets[5].model"
                    ".outputs.get(0).toJSON().text"
                )
                t_full, t_update = (float(x) for x in "".join(out).split())
                marks = page.evaluate("() => window.__panel")
                full = min(t for t, n, _ in marks if n == 100) - t_full
                update = min(t for t, _n, paused in marks if paused == 1) - t_update
                timing = page.evaluate("""() => {
                  const body = document.querySelector('.ohj-panel tbody');
                  const t0 = performance.now();
                  for (let i = 0; i < 20; i++) { body.style.display = 'none'; body.offsetHeight; body.style.display = ''; body.offsetHeight; }
                  return (performance.now() - t0) / 20;
                }""")
                page.screenshot(path=str(OUT / "panel-100.png"), full_page=False)
        finally:
            server.stop()
    latencies.sort()
    return {
        "dom_latency_ms_p50": statistics.median(latencies),
        "dom_latency_ms_p95": latencies[
            min(len(latencies) - 1, int(0.95 * (len(latencies) - 1) + 0.5))
        ],
        "dom_latency_samples": len(latencies),
        "panel_100_rows_first_render_ms": full,
        "panel_100_rows_one_row_update_ms": update,
        "panel_100_rows_layout_ms": timing,
    }


MAGIC = "conv = %openhands Time me"


def magic_times(runs: int = 7) -> dict[str, Any]:
    """How long the cell with ``%openhands`` takes, the kernel's first (it builds the client)
    and a later one, each against the simulator, whose sandbox takes seconds to start."""
    from openhands_jupyter.sim import Simulator
    from tests.support.kernel import Kernel

    first: list[float] = []
    later: list[float] = []
    with Simulator(speed=1.0) as sim:
        for _ in range(runs):
            k = Kernel({"OPENHANDS_BASE_URL": sim.url})
            try:
                k.run(LOAD_EXT)
                for samples in (first, later):
                    began = time.perf_counter()
                    out = k.run(MAGIC)
                    samples.append(time.perf_counter() - began)
                    assert out["error"] is None, out
            finally:
                k.close()
    return {
        "first_s": statistics.median(first),
        "first_max_s": max(first),
        "later_s": statistics.median(later),
        "later_max_s": max(later),
        "runs": runs,
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    imports = import_times()
    magic = magic_times()
    print(
        f"%openhands gives the cell back in {magic['first_s'] * 1000:.0f} ms the first time "
        f"(max {magic['first_max_s'] * 1000:.0f}), {magic['later_s'] * 1000:.0f} ms later "
        f"(max {magic['later_max_s'] * 1000:.0f}), over {magic['runs']} kernels"
    )
    print(
        f"%load_ext openhands_jupyter: {imports['load_ext_s'] * 1000:.0f} ms vs "
        f"ipywidgets+anywidget+httpx {imports['baseline_s'] * 1000:.0f} ms "
        f"-> ratio {imports['ratio']:.2f}x (target <= 1.2x)"
    )
    figures = browser_figures()
    print(
        f"status change -> DOM: p50 {figures['dom_latency_ms_p50']:.0f} ms, "
        f"p95 {figures['dom_latency_ms_p95']:.0f} ms over {figures['dom_latency_samples']} changes "
        "(target p95 <= 200 ms)"
    )
    print(
        f"panel with 100 conversations: first render {figures['panel_100_rows_first_render_ms']:.0f} ms "
        f"(kernel -> rows on screen), one-row update {figures['panel_100_rows_one_row_update_ms']:.0f} ms, "
        f"layout {figures['panel_100_rows_layout_ms']:.1f} ms"
    )
    (OUT / "ui.json").write_text(
        json.dumps({"imports": imports, "magic": magic, **figures}, indent=2)
    )


if __name__ == "__main__":
    main()
