"""The magic in a real kernel and the widget in JupyterLab, against a real OpenHands 1.11.0
server (SDK default event batching): the feed shows the agent's command while it works."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from .support.browser import (
    ARTIFACTS,
    BROWSER_MARKS,
    JupyterServer,
    chromium_page,
    notify_stub,
    open_notebook,
    run_cells,
    write_notebook,
)
from .support.kernel import Kernel
from .support.real.fake_llm import (
    COMMAND,
    NOTES_PATH,
    PLAN,
    REPORT_PATH,
    TITLE,
    finish_message,
)
from .support.real.fixtures import APP_KEY
from .support.real.launcher import RealServer
from .waiting import eventually

pytestmark = [pytest.mark.real, pytest.mark.timeout(600)]


def _env(server: RealServer) -> dict[str, str]:
    return {"OPENHANDS_BASE_URL": server.url, "OPENHANDS_SESSION_API_KEY": APP_KEY}


@pytest.mark.kernel
def test_magic_in_a_real_kernel_shows_the_command_while_the_agent_works(
    real_server: RealServer,
) -> None:
    k = Kernel(_env(real_server))
    try:
        assert k.run("%load_ext openhands_jupyter")["error"] is None
        out = k.run("conv = %openhands Greet the world [llm:command] [llm:slow=4]")
        assert out["error"] is None and out["stderr"] == "", out
        k.watch(0.5)
        k.show_widgets()  # what a frontend's render says: a view is on screen
        feed: list[dict[str, Any]] = []
        statuses: list[str] = []
        shown_while_running = False
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and "finished" not in statuses:
            k.watch(0.5)
            feeds = list(k.feeds().values())
            feed = feeds[0] if feeds else []
            states = [s["state"] for _c, s, _p in k.comm_states() if "status" in s.get("state", {})]
            status = states[-1]["status"] if states else None
            if status and (not statuses or statuses[-1] != status):
                statuses.append(status)
            if status == "running" and any(e["text"] == COMMAND for e in feed):
                shown_while_running = True
        assert statuses[-1] == "finished", statuses
        assert shown_while_running, (statuses, feed)
        assert any(e["type"] == "output" and e["exit_code"] == 0 for e in feed)
        result = k.run("print(conv.status, '|', conv.result)")
        assert result["stdout"].strip() == f"finished | {finish_message('Greet the world')}"
        assert APP_KEY not in repr(k.iopub)
    finally:
        k.close()


@pytest.fixture
def lab(real_server: RealServer, tmp_path: Any) -> Iterator[JupyterServer]:
    srv = JupyterServer("lab", tmp_path, _env(real_server))
    yield srv
    srv.stop()


@pytest.mark.browser
@BROWSER_MARKS[1]
def test_widget_in_jupyterlab_against_the_real_server(lab: JupyterServer) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    write_notebook(
        lab.nb_dir / "real.ipynb",
        [
            "%load_ext openhands_jupyter",
            "conv = %openhands Wave hello [llm:plan] [llm:command] [llm:slow=5]",
        ],
    )
    with chromium_page() as page:
        open_notebook(page, lab, "real.ipynb")
        run_cells(page, [0, 1])
        card = page.locator(".jp-OutputArea-output .ohj-card").first
        card.wait_for(timeout=30000)
        # the command is on screen while the pill still says running
        card.locator(".ohj-ev-text", has_text=COMMAND).first.wait_for(timeout=120000)
        assert card.locator(".ohj-pill").first.text_content() == "running"
        # the plan the agent wrote first, as a checklist: its first task under way
        card.locator(".ohj-plan-item[data-status=in_progress]", has_text=PLAN[0]).wait_for(
            timeout=10000
        )
        # its output (the agent's next step waits 5 s: still running then)
        card.locator(".ohj-exit", has_text="exit 0").first.wait_for(timeout=60000)
        assert card.locator(".ohj-pill").first.text_content() == "running"
        page.screenshot(path=str(ARTIFACTS / "real-lab-running.png"), full_page=True)
        page.wait_for_function(
            "() => (document.querySelector('.ohj-result-text') || {}).textContent"
            f" === {finish_message('Wave hello')!r}",
            timeout=60000,
        )
        # the answer's text may land a moment before the state update that ends the run
        page.wait_for_function(
            "() => (document.querySelector('.ohj-card .ohj-pill') || {}).textContent"
            " === 'finished'",
            timeout=30000,
        )
        # the plan as the agent last wrote it, before finishing: every task done
        card.locator(".ohj-plan-label", has_text=f"Plan: {len(PLAN)} of {len(PLAN)} done").wait_for(
            timeout=10000
        )
        page.screenshot(path=str(ARTIFACTS / "real-lab-finished.png"), full_page=True)


@pytest.mark.browser
@BROWSER_MARKS[1]
def test_approve_then_stop_in_jupyterlab_during_a_long_command(
    lab: JupyterServer, real_server: RealServer
) -> None:
    from .test_real_steering import LONG, _sleepers

    ARTIFACTS.mkdir(exist_ok=True)
    write_notebook(
        lab.nb_dir / "steer.ipynb",
        ["%load_ext openhands_jupyter", "careful = %openhands --confirm Sleep [llm:long=120]"],
    )
    pill = "() => (document.querySelector('.ohj-card .ohj-pill') || {}).textContent === '%s'"
    with chromium_page() as page:
        open_notebook(page, lab, "steer.ipynb")
        run_cells(page, [0, 1])
        card = page.locator(".jp-OutputArea-output .ohj-card").first
        box = card.locator(".ohj-approval")
        box.locator(".ohj-pending-text", has_text=LONG).wait_for(timeout=240000)
        page.screenshot(path=str(ARTIFACTS / "real-lab-approve.png"), full_page=True)
        box.locator("button[data-action=approve]").click()
        # the command runs: two minutes of it, unless stopped
        page.wait_for_function(pill % "running", timeout=30000)
        eventually(lambda: _sleepers(real_server), 30, 0.2)  # the approved command started
        began = time.monotonic()
        card.locator("button[data-action=stop]").click()
        page.wait_for_function(pill % "paused", timeout=5000)
        assert time.monotonic() - began < 5
        eventually(lambda: not _sleepers(real_server), 5, 0.2)  # the command was killed
        page.wait_for_function(
            "() => { const b = document.querySelector('.ohj-card button[data-action=resume]');"
            " return b && !b.disabled; }",
            timeout=10000,
        )
        page.screenshot(path=str(ARTIFACTS / "real-lab-stopped.png"), full_page=True)


@pytest.mark.browser
@BROWSER_MARKS[1]
def test_data_in_results_out_and_a_notification_in_jupyterlab(lab: JupyterServer) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    cells = [
        "%load_ext openhands_jupyter\n%config OpenHandsMagics.notify = True",
        "import pandas as pd\nscores = pd.DataFrame({'name': ['alpha', 'beta'], 'score': [1, 2]})",
        "%%openhands --with scores\nReport the scores [llm:report] [llm:slow=2]",
        "report = _\nreport.wait(timeout=240)\nreport.load(" + repr(REPORT_PATH) + ")",
        "report.show(" + repr(NOTES_PATH) + ")",
        "print([e.text for e in report.events() if e.type == 'message' and e.source == 'user'])",
    ]
    write_notebook(lab.nb_dir / "workspace.ipynb", cells)
    with chromium_page() as page:
        page.add_init_script(notify_stub("granted"))
        open_notebook(page, lab, "workspace.ipynb")
        run_cells(page, list(range(len(cells))), timeout=300000)
        out = page.locator(".jp-OutputArea-output")
        # the agent was told where the DataFrame went, in its first message
        out.locator("text=scores.parquet: the DataFrame `scores` as Parquet").first.wait_for(
            timeout=10000
        )
        # the table it wrote came back as a DataFrame, its notes drawn, their tag as text
        out.locator("table.dataframe td", has_text="beta").wait_for(timeout=10000)
        out.locator("h1", has_text="Findings").wait_for(timeout=10000)
        out.locator("text=<img src=x").first.wait_for(timeout=10000)
        # it finished while the tab was hidden: one notification, and the tab's title marked
        notes = page.evaluate("() => window.__notes")
        assert [n[0] for n in notes] == ["OpenHands: finished"], notes
        assert notes[0][1] in (TITLE, "Report the scores [llm:report] [llm:slow=2]"), notes
        assert page.title().startswith("● ")
        assert page.evaluate("() => window.__ohj_notes") is None
        page.screenshot(path=str(ARTIFACTS / "real-lab-workspace.png"), full_page=True)
