"""Hostile text from the agent or server is shown literally in the browser; nothing runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openhands_jupyter.sim import HOSTILE, Simulator

from .support.browser import (
    ARTIFACTS,
    BROWSER_MARKS,
    JupyterServer,
    chromium_page,
    open_notebook,
    run_cells,
    write_notebook,
)

pytestmark = BROWSER_MARKS
SPEED = 5.0
TITLE = "<img src=x onerror=window.__xss=9>"

CELLS = [
    f"%load_ext openhands_jupyter\n%config OpenHandsMagics.time_scale = {1 / SPEED}",
    f"conv = %openhands --title '{TITLE}' Do it <b>now</b> [sim:hostile]",
    "conv.wait(timeout=60)\n"
    "import asyncio\n"
    "for _ in range(100):  # the changes are read once more after the end\n"
    "    if not conv._tracked.changes.stale:\n"
    "        break\n"
    "    await asyncio.sleep(0.1)\n"
    "w = conv.widget\n"
    "rules = dict(w.state['rules'], label='<i>weird</i>', style='<b>x</b>')\n"
    "state = dict(w.state, url='javascript:window.__xss=10', status='<i>weird</i>', rules=rules)\n"
    "w.state = state",
    "from openhands_jupyter.ui.panel import Panel\np = Panel()\ndisplay(p)",
    "import asyncio\nawait asyncio.sleep(1)  # let the panel's own update land first\n"
    "p.rows = [dict(r, url='javascript:window.__xss=11', title=r['title'] + '<script>window.__xss=12</script>') for r in p.rows]",
    "asking = %openhands --confirm Ask first [sim:hostile]",
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[JupyterServer, Simulator]]:
    with Simulator(speed=SPEED) as sim:
        srv = JupyterServer("lab", tmp_path, {"OPENHANDS_BASE_URL": sim.url})
        try:
            yield srv, sim
        finally:
            srv.stop()


def test_hostile_content_is_text(server: tuple[JupyterServer, Simulator]) -> None:
    srv, _sim = server
    write_notebook(srv.nb_dir / "hostile.ipynb", CELLS)
    dialogs: list[str] = []
    with chromium_page(1000) as page:

        def on_dialog(d: Any) -> None:
            dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        open_notebook(page, srv, "hostile.ipynb")
        run_cells(page, [0, 1, 2], timeout=90000)  # cell 2 waits for the end
        card = page.locator(".ohj-card").first
        card.locator(".ohj-result-text").wait_for(timeout=20000)
        page.locator(".ohj-card .ohj-pill", has_text="<i>weird</i>").wait_for(timeout=10000)
        card.locator(".ohj-feed-box button").click()  # expand the whole feed
        card.locator(".ohj-feed-box button", has_text="Show less").wait_for(timeout=5000)
        run_cells(page, [3, 4])
        page.wait_for_function(
            "() => [...document.querySelectorAll('.ohj-panel td')].some(td => td.textContent.includes('<script>'))",
            timeout=10000,
        )
        # a hostile file name and diff lines are text
        card.locator(".ohj-change-row").click()
        card.locator(".ohj-d-add").first.wait_for(timeout=10000)
        hostile_path = HOSTILE["edit"].partition(" ")[2]
        assert card.locator(".ohj-change-path").text_content() == hostile_path
        assert card.locator(".ohj-d-add").first.text_content() == f"+line 1 of {hostile_path}"
        # an action waiting for approval is text too
        run_cells(page, [5])
        asking = page.locator(".ohj-card").nth(1)
        asking.locator(".ohj-pending-text").wait_for(timeout=30000)
        assert asking.locator(".ohj-pending-text").text_content() == HOSTILE["command"]
        page.mouse.move(400, 400)
        for box in page.locator(".ohj-ev-text").all():
            box.hover()
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "hostile.png"), full_page=True)
        text = card.text_content() or ""
        for value in (
            HOSTILE["message"],
            HOSTILE["command"],
            HOSTILE["output"],
            HOSTILE["error"],
            HOSTILE["finish"],
            TITLE,
            "<i>weird</i>",
        ):
            assert value in text, value
        assert 'str_replace "><img src=x onerror=window.__xss=4>.py' in text
        assert page.evaluate("() => window.__xss") is None
        assert dialogs == []
        assert page.locator("a[href^='javascript']").count() == 0
        assert page.locator(".ohj-card a.ohj-link").first.is_hidden()
        assert (
            page.locator(
                ".ohj-card img, .ohj-card script, .ohj-card svg, .ohj-panel script"
            ).count()
            == 0
        )
