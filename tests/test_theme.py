"""The widgets follow JupyterLab's dark theme (colours come from the theme's variables)."""

from __future__ import annotations

from pathlib import Path

from openhands_jupyter.sim import Simulator

from .support.browser import (
    ARTIFACTS,
    BROWSER_MARKS,
    JupyterServer,
    launch_browser,
    open_notebook,
    run_cells,
    write_notebook,
)

pytestmark = BROWSER_MARKS

LUMA = """([sel, prop]) => {
  const c = getComputedStyle(document.querySelector(sel))[prop].match(/[\\d.]+/g).map(Number);
  return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255;
}"""


def test_dark_theme(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with Simulator(speed=8) as sim:
        server = JupyterServer(
            "lab",
            tmp_path,
            {"OPENHANDS_BASE_URL": sim.url},
            settings={"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}},
        )
        try:
            write_notebook(
                server.nb_dir / "dark.ipynb",
                [
                    "%load_ext openhands_jupyter\n%config OpenHandsMagics.time_scale = 0.125",
                    "conv = %openhands -r octo/app Fix the failing test",
                    "conv.wait(timeout=60)\n%openhands --panel",
                ],
            )
            with sync_playwright() as p:
                browser = launch_browser(p)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                open_notebook(page, server, "dark.ipynb")
                run_cells(page, [0, 1, 2])
                page.locator(".ohj-panel tbody tr").first.wait_for(timeout=20000)
                page.locator(".ohj-card .ohj-result-text").first.wait_for(timeout=20000)
                page.screenshot(path=str(ARTIFACTS / "dark-theme.png"), full_page=True)
                assert page.evaluate(LUMA, [".ohj-card", "backgroundColor"]) < 0.3
                assert page.evaluate(LUMA, [".ohj-card .ohj-title", "color"]) > 0.6
                assert page.evaluate(LUMA, [".ohj-panel", "backgroundColor"]) < 0.3
                assert page.evaluate(LUMA, [".ohj-card .ohj-input", "backgroundColor"]) < 0.4
                browser.close()
        finally:
            server.stop()
