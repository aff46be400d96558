"""End to end in JupyterLab 4 and Notebook 7 (headless Chromium) against the simulator."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from openhands_jupyter.sim import (
    EDITED_FILE,
    SCRIPT_COMMAND,
    SCRIPT_OUTPUT,
    Simulator,
    finish_message,
)
from openhands_jupyter.sim.scenarios import PLAN_TITLES

from .support.browser import (
    ARTIFACTS,
    BROWSER_MARKS,
    JupyterServer,
    click_settled,
    launch_browser,
    notify_stub,
    open_notebook,
    run_cells,
    write_notebook,
)

pytestmark = BROWSER_MARKS
SPEED = 4.0

CELLS = [
    "%load_ext openhands_jupyter\n"
    f"%config OpenHandsMagics.time_scale = {1 / SPEED}\n"
    "%config OpenHandsMagics.poll_interval = 2",
    "conv = %openhands -r octo/app Fix the failing test in tests/test_api.py",
    "conv2 = %openhands Write the changelog [sim:idle]",
    "%openhands --panel",
    "%openhands --list 5",
    "conv3 = %openhands Keep going for a while [sim:long]",
    "print('watched:', sum(t.watched for t in conv.tracker.entries.values()))",
]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(speed=SPEED) as server:
        yield server


@pytest.fixture(scope="module")
def playwright_browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        yield browser
        browser.close()


@pytest.fixture(params=["lab", "notebook"], scope="module")
def server(
    request: Any, sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServer]:
    root = tmp_path_factory.mktemp(request.param)
    srv = JupyterServer(request.param, root, {"OPENHANDS_BASE_URL": sim.url})
    yield srv
    srv.stop()


def _pill_sequence(page: Any, card: Any, until: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = card.locator(".ohj-pill").first.text_content() or ""
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        if text == until:
            break
        page.wait_for_timeout(40)
    return seen


def _watched(page: Any) -> int:
    """How many conversations the kernel's tracker counts as watched (the last cell says)."""
    cell = f"window.jupyterapp.shell.currentWidget.content.widgets[{len(CELLS) - 1}]"
    before = page.evaluate(f"() => {cell}.model.executionCount")
    run_cells(page, [len(CELLS) - 1])
    page.wait_for_function(
        f"""(n) => {{
          const c = {cell};
          const out = c.node.querySelector('.jp-OutputArea-output');
          return c.model.executionCount !== n && out && out.textContent.includes('watched:');
        }}""",
        arg=before,
        timeout=15000,
    )
    text = page.evaluate(f"() => {cell}.node.querySelector('.jp-OutputArea-output').textContent")
    return int(text.split("watched:")[1].split()[0])


def _page(server: JupyterServer, browser: Any, name: str, cells: list[str]) -> tuple[Any, str]:
    """A new browser page, and the name of a new notebook of ``cells`` to open in it."""
    ARTIFACTS.mkdir(exist_ok=True)
    name = f"{name}_{server.app}.ipynb"
    write_notebook(server.nb_dir / name, cells)
    return browser.new_page(viewport={"width": 1280, "height": 900}), name


@contextlib.contextmanager
def _notebook(
    server: JupyterServer, browser: Any, name: str, cells: list[str], timeout: float = 30000
) -> Iterator[Any]:
    """A page with a new notebook of ``cells`` open and every cell run; closed after."""
    page, name = _page(server, browser, name, cells)
    try:
        open_notebook(page, server, name)
        run_cells(page, list(range(len(cells))), timeout=timeout)
        yield page
    finally:
        page.close()


def test_widget_lives_in_the_browser(
    server: JupyterServer, sim: Simulator, playwright_browser: Any
) -> None:
    page, name = _page(server, playwright_browser, "e2e", CELLS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"{e}\n{e.stack}"))
    try:
        open_notebook(page, server, name)
        starts_before = sim.counts["v1.start"]
        run_cells(page, [0, 1])
        card = page.locator(".jp-OutputArea-output .ohj-card").first
        card.wait_for(timeout=15000)
        seen = _pill_sequence(page, card, "finished", timeout=30)
        page.screenshot(path=str(ARTIFACTS / f"{server.app}-finished.png"), full_page=True)
        assert seen[0] == "starting" and "running" in seen and seen[-1] == "finished", seen
        assert sim.counts["v1.start"] == starts_before + 1
        card.locator(".ohj-ev-text", has_text=SCRIPT_COMMAND).first.wait_for(timeout=10000)
        page.wait_for_function(
            "() => (document.querySelector('.ohj-result-text') || {}).textContent"
            " === 'Done: Fix the failing test in tests/test_api.py'",
            timeout=15000,
        )
        link = card.locator("a.ohj-link")
        assert (link.get_attribute("href") or "").startswith(f"{sim.url}/conversations/")
        pull = card.locator("a.ohj-pr-link")
        assert pull.text_content() == "#42"
        assert pull.get_attribute("href") == "https://github.com/octo/app/pull/42"

        # the Changes section lists the edited file with its counts; its diff opens coloured
        row = card.locator(".ohj-change-row", has_text=EDITED_FILE)
        row.wait_for(timeout=15000)
        assert card.locator(".ohj-changes-head").text_content() == "Changes: 1 file"
        assert row.locator(".ohj-change-mark").text_content() == "M"
        assert row.locator(".ohj-change-counts").text_content() == "+2−1"
        row.click()
        added = card.locator(".ohj-d-add", has_text="fetch_cached(request)")
        added.wait_for(timeout=10000)
        assert card.locator(".ohj-d-del").first.text_content() == "-    return None"
        assert card.locator(".ohj-d-file").first.text_content() == f"--- a/{EDITED_FILE}"
        page.screenshot(path=str(ARTIFACTS / f"{server.app}-changes.png"), full_page=True)

        # a finished agent has nothing to stop
        assert card.locator("button[data-action=stop]").is_disabled()

        # a follow-up sent from the widget runs
        sends = sim.counts["v1.send_message"]
        card.locator("input.ohj-input").fill("Also update the README")
        card.locator("button[data-action=send]").click()
        # the widget shows the agent at work again at once, then the new end
        page.wait_for_function(
            "(card) => card.querySelector('.ohj-pill').textContent !== 'finished'",
            arg=card.element_handle(),
            timeout=10000,
        )
        seen = _pill_sequence(page, card, "finished", timeout=30)
        assert seen[-1] == "finished", seen
        assert sim.counts["v1.send_message"] == sends + 1
        card.locator(".ohj-ev-text", has_text="git diff --stat").first.wait_for(timeout=10000)
        # the output is drawn again at the end: the diff opened before stays open
        card.locator(".ohj-d-add", has_text="fetch_cached(request)").wait_for(timeout=10000)
        card.locator(".ohj-change-row", has_text=EDITED_FILE).click()
        page.wait_for_function(
            "(card) => !card.querySelector('.ohj-diff')", arg=card.element_handle(), timeout=5000
        )
        page.wait_for_function(
            "() => [...document.querySelectorAll('.ohj-result-text')].some("
            "e => e.textContent.includes('Also update the README'))",
            timeout=15000,
        )
        page.screenshot(path=str(ARTIFACTS / f"{server.app}-follow-up.png"), full_page=True)

        # The panel lists both conversations
        run_cells(page, [2, 3])
        panel = page.locator(".ohj-panel").first
        panel.wait_for(timeout=15000)
        page.wait_for_function(
            "() => document.querySelectorAll('.ohj-panel tbody tr:not(.ohj-total)').length === 2",
            timeout=15000,
        )
        panel.scroll_into_view_if_needed()
        # a total row adds up cost and tokens
        total = panel.locator("tr.ohj-total")
        total.wait_for(timeout=15000)
        assert total.locator(".ohj-cell-title").text_content() == "2 conversations"
        assert (total.locator(".ohj-cell-cost").text_content() or "").startswith("$")
        # conv2 has no repository: the panel says so, as the widget does
        panel.locator("td.ohj-none", has_text="no repository").first.wait_for(timeout=5000)
        # the whole table fits the notebook's width: no column (the actions) is cut off
        fits = panel.locator(".ohj-table-wrap").evaluate("w => w.scrollWidth <= w.clientWidth")
        assert fits, "the panel's table is wider than the notebook"
        page.screenshot(path=str(ARTIFACTS / f"{server.app}-panel.png"), full_page=True)
        # --list shows recent conversations; Attach adds a live widget below the list
        cards = page.locator(".ohj-card").count()
        run_cells(page, [4])
        attach = page.locator(".jp-OutputArea-output button", has_text="Attach").first
        attach.wait_for(timeout=15000)
        attach.click()
        page.wait_for_function(
            f"() => document.querySelectorAll('.ohj-card').length > {cards}", timeout=15000
        )
        # Stop stops this agent (its sandbox runs on); Resume runs it again
        run_cells(page, [5])
        busy = page.locator(".ohj-card", has_text="Keep going for a while").last
        busy.wait_for(timeout=15000)
        _pill_sequence(page, busy, "running", timeout=30)
        busy.locator(".ohj-ev-text", has_text="python step_").first.wait_for(timeout=15000)
        busy_id = (busy.locator("a.ohj-link").get_attribute("href") or "").rsplit("/", 1)[-1]
        sandbox_pauses = sim.counts["v1.pause"]
        agent_pauses = sim.stats.agent_counts["agent.interrupt"]
        busy.locator("button[data-action=stop]").click()
        _pill_sequence(page, busy, "paused", timeout=15)
        assert busy.locator(".ohj-pill").first.text_content() == "paused"
        assert sim.stats.agent_counts["agent.interrupt"] == agent_pauses + 1
        assert sim.counts["v1.pause"] == sandbox_pauses
        paused = sim.world.conversations[busy_id]
        assert paused.execution_status == "paused" and paused.sandbox_status == "RUNNING"
        busy.locator(".ohj-ev-text", has_text="status: paused").first.wait_for(timeout=10000)
        busy.locator("button[data-action=resume]").click()
        # the feed says when it was resumed; looked for at once, as the agent's new steps soon
        # push the line out of the newest 200 the card keeps
        busy.locator(".ohj-ev-text", has_text="status: resumed").first.wait_for(timeout=15000)
        _pill_sequence(page, busy, "running", timeout=15)
        assert paused.execution_status == "running"
        # untracked: the widget says it no longer follows the conversation
        busy.locator("button[data-action=untrack]").click()
        busy.locator(".ohj-untracked", has_text="No longer followed").wait_for(timeout=10000)
        page.screenshot(path=str(ARTIFACTS / f"{server.app}-resumed.png"), full_page=True)

        # Clear All Outputs: no view of any widget is left, so nothing counts as watched
        assert _watched(page) > 0
        page.evaluate("() => window.jupyterapp.commands.execute('editmenu:clear-all')")
        page.wait_for_function("() => !document.querySelector('.ohj-card')", timeout=10000)
        deadline = time.monotonic() + 15
        while _watched(page) and time.monotonic() < deadline:
            page.wait_for_timeout(300)
        assert _watched(page) == 0

        # Notebook 7 itself reports a settings-schema error at start-up; none may come from
        # the widgets (their modules load from blob: URLs through anywidget)
        ours = [e for e in errors if "blob:" in e or "anywidget" in e or "ohj" in e]
        assert ours == []
    finally:
        page.close()


APPROVAL_CELLS = [
    "%load_ext openhands_jupyter\n"
    f"%config OpenHandsMagics.time_scale = {1 / SPEED}\n"
    "%config OpenHandsMagics.poll_interval = 2",
    "careful = %openhands --confirm --max-cost 5 Tidy the API module",
]


def test_approve_and_reject_from_the_widget(
    server: JupyterServer, sim: Simulator, playwright_browser: Any
) -> None:
    page, name = _page(server, playwright_browser, "approvals", APPROVAL_CELLS)
    try:
        open_notebook(page, server, name)
        run_cells(page, [0, 1])
        card = page.locator(".jp-OutputArea-output .ohj-card").first
        box = card.locator(".ohj-approval")
        box.locator(".ohj-pending-text", has_text=SCRIPT_COMMAND).wait_for(timeout=30000)
        assert card.locator(".ohj-pill").text_content() == "waiting"
        # the feed says it in the pill's words, not the server's
        card.locator(".ohj-ev-text", has_text="status: waiting for your approval").first.wait_for(
            timeout=10000
        )
        assert box.locator(".ohj-risk").text_content() == "LOW risk"
        assert box.locator(".ohj-pending-tool").text_content() == "terminal"
        assert "(cap $5.00)" in (card.locator(".ohj-cost").text_content() or "")
        page.screenshot(path=str(ARTIFACTS / f"{server.app}-approval.png"), full_page=True)
        # Approve: the command runs and the agent goes on to its next action (an edit)
        responds = sim.stats.agent_counts["agent.respond"]
        box.locator("button[data-action=approve]").click()
        box.locator(".ohj-pending-text", has_text=f"str_replace {EDITED_FILE}").wait_for(
            timeout=30000
        )
        card.locator(".ohj-ev-text", has_text=SCRIPT_OUTPUT).first.wait_for(timeout=10000)
        # Reject with a reason: the agent stops, the feed says why, the box goes away
        box.locator("input.ohj-reason").fill("leave api.py alone")
        box.locator("button[data-action=reject]").click()
        _pill_sequence(page, card, "idle", timeout=30)
        card.locator(".ohj-ev-text", has_text="rejected: leave api.py alone").wait_for(
            timeout=10000
        )
        assert box.is_hidden()
        assert sim.stats.agent_counts["agent.respond"] == responds + 2
        page.screenshot(path=str(ARTIFACTS / f"{server.app}-rejected.png"), full_page=True)
    finally:
        page.close()


PLAN_CELLS = [APPROVAL_CELLS[0], "planned = %openhands Fix it step by step [sim:plan]"]


def test_the_plan_shows_as_a_checklist(
    server: JupyterServer, sim: Simulator, playwright_browser: Any
) -> None:
    with _notebook(server, playwright_browser, "plan", PLAN_CELLS) as page:
        card = page.locator(".jp-OutputArea-output .ohj-card").first
        plan = card.locator(".ohj-plan")
        # (each step as it comes: test_plan.py; under way on screen: the real JupyterLab test)
        label = f"Plan: {len(PLAN_TITLES)} of {len(PLAN_TITLES)} done"
        plan.locator(".ohj-plan-label", has_text=label).wait_for(timeout=30000)
        titles = plan.locator(".ohj-plan-title").all_text_contents()
        assert titles == list(PLAN_TITLES)
        assert plan.locator(".ohj-plan-item[data-status=done]").count() == len(PLAN_TITLES)
        page.screenshot(path=str(ARTIFACTS / f"{server.app}-plan.png"), full_page=True)


RESULT_CELLS = [
    APPROVAL_CELLS[0],
    "made = %openhands Report the scores [sim:report]\nmade.wait(timeout=60)",
    "made.show('results/chart.svg')",
    "made.show('results/report.html')",
    "made.show('results/notes.md')",
    "made.load('results/scores.csv')",
]


def test_shown_results_draw_and_run_nothing(
    server: JupyterServer, sim: Simulator, playwright_browser: Any
) -> None:
    with _notebook(server, playwright_browser, "results", RESULT_CELLS, timeout=90000) as page:
        out = page.locator(".jp-OutputArea-output")
        chart = out.locator("img[alt='chart.svg']")
        chart.wait_for(timeout=10000)
        assert page.evaluate("(img) => img.naturalWidth", chart.element_handle()) == 120
        frame = out.locator("iframe[title='report.html']")
        frame.wait_for(timeout=10000)
        assert frame.get_attribute("sandbox") == ""
        assert page.frame_locator("iframe[title='report.html']").locator("h1").text_content() == (
            "Scores"
        )
        # the notes' Markdown is drawn; their tag is shown as text
        out.locator("h1", has_text="Findings").wait_for(timeout=10000)
        out.locator("text=<img src=x").first.wait_for(timeout=10000)
        # the table as pandas draws it
        out.locator("table.dataframe td", has_text="beta").wait_for(timeout=10000)
        # the card's Changes section shows such a file inline in one click, the same way
        card = page.locator(".jp-OutputArea-output .ohj-card").first
        for path, drawn in [
            ("results/chart.svg", "img.ohj-file-image"),
            ("results/report.html", "iframe.ohj-file-frame[sandbox='']"),
            ("results/notes.md", "pre.ohj-file-text"),
        ]:
            click_settled(page, card.locator(f"button.ohj-view-file[data-path='{path}']"))
            card.locator(drawn).first.wait_for(timeout=30000)
        assert "<img src=x" in (card.locator("pre.ohj-file-text").text_content() or "")
        page.wait_for_timeout(500)  # any script would have run by now
        ran = page.evaluate(
            "() => [window.__ohj_svg, window.__ohj_report, window.__ohj_notes, window.__xss]"
        )
        assert ran == [None, None, None, None]
        page.screenshot(path=str(ARTIFACTS / f"{server.app}-results.png"), full_page=True)


FANOUT_CELLS = [
    APPROVAL_CELLS[0],
    "from openhands_jupyter import OpenHands\n"
    f"from openhands_jupyter.tracking import TrackerConfig\n"
    f"oh = OpenHands(tracker_config=TrackerConfig(time_scale={1 / SPEED}), progress=False)\n"
    "convs = oh.map('Review the {module} module', [{'module': m} for m in ('api', 'cli', 'db')])\n"
    "convs",
]


def test_a_fanout_shows_as_its_own_table(
    server: JupyterServer, sim: Simulator, playwright_browser: Any
) -> None:
    with _notebook(server, playwright_browser, "fanout", FANOUT_CELLS) as page:
        table = page.locator(".jp-OutputArea-output .ohj-panel").first
        table.locator(".ohj-panel-head", has_text="OpenHands fan-out").wait_for(timeout=30000)
        assert table.locator("button[data-action=stop_all]").is_visible()
        assert table.locator("form.ohj-form").count() == 0
        for module in ("api", "cli", "db"):
            answer = finish_message(f"Review the {module} module")
            table.locator(".ohj-cell-answer", has_text=answer).wait_for(timeout=60000)
        assert table.locator("tr.ohj-row:not(.ohj-total)").count() == 3
        page.screenshot(path=str(ARTIFACTS / f"{server.app}-fanout.png"), full_page=True)


NOTIFY_CELLS = [
    APPROVAL_CELLS[0] + "\n%config OpenHandsMagics.notify = True",
    "done = %openhands Tell me when it is done",
]


def test_a_hidden_tab_is_told_when_a_conversation_ends(
    server: JupyterServer, sim: Simulator, playwright_browser: Any
) -> None:
    page, name = _page(server, playwright_browser, "notify", NOTIFY_CELLS)
    try:
        page.add_init_script(notify_stub("default"))
        open_notebook(page, server, name)
        title = page.title()
        run_cells(page, [0, 1])
        card = page.locator(".jp-OutputArea-output .ohj-card").first
        # the setting is on and the browser has not been asked: one click asks it
        card.locator(".ohj-notify-ask").click(timeout=10000)
        page.wait_for_function("() => Notification.permission === 'granted'", timeout=5000)
        assert card.locator(".ohj-notify-ask").is_hidden()
        # it ends while the tab is hidden: a notification, and a mark in the tab's title
        page.wait_for_function("() => window.__notes.length > 0", timeout=60000)
        notes = page.evaluate("() => window.__notes")
        assert notes == [["OpenHands: finished", "Tell me when it is done"]], notes
        assert page.title().startswith("● ")
        # back on the tab: the mark goes
        page.evaluate(
            "() => { window.__hidden = false;"
            " document.dispatchEvent(new Event('visibilitychange')); }"
        )
        page.wait_for_function("() => !document.title.startsWith('● ')", timeout=5000)
        assert page.title() == title or not page.title().startswith("● ")
    finally:
        page.close()
