"""Secrets never leave Python: run the quickstart in JupyterLab with widget state saving on,
force auth and server errors, save, and search every artefact for the known key values."""

from __future__ import annotations

import json
import time
from pathlib import Path

from openhands_jupyter.sim import Simulator

from .pristine import quickstart
from .support.browser import (
    ARTIFACTS,
    BROWSER_MARKS,
    JupyterServer,
    chromium_page,
    open_notebook,
    run_cells,
)

pytestmark = BROWSER_MARKS

API_KEY = "oh-live-KNOWNKEY-5f2b9c7e1d"
SESSION_KEY = "sess-KNOWNSESSION-8a41c0ffee"

DEBUG_CELL = (
    "import logging, os\n"
    "logging.basicConfig(level=logging.DEBUG, filename='debug.log', force=True,\n"
    "                    format='%(name)s %(levelname)s %(message)s')\n"
    "os.environ['OPENHANDS_API_KEY'] == os.environ['OPENHANDS_API_KEY']  # the key is set"
)
ERROR_CELLS = [
    "busy = %openhands Keep working for a while [sim:long]",
    # a server error while tracking: the widget shows it, then the tracker recovers
    "from openhands_jupyter.ui.magic import shared_client\n"
    "client = shared_client()\n"
    "print(repr(client), repr(client.aio.transport), repr(conv), repr(conv.info))\n"
    "print(conv.raw)\n"
    "try:\n"
    "    conv.refresh()\n"
    "except Exception as exc:\n"
    "    print('refresh failed:', type(exc).__name__, exc, repr(exc))",
    # the key is rotated on the server: every call now fails authentication
    "from openhands_jupyter import OpenHands\n"
    "try:\n"
    "    OpenHands().list()\n"
    "except Exception as exc:\n"
    "    print('auth failed:', type(exc).__name__, exc, repr(exc))",
    "%openhands --attach 0123456789abcdef0123456789abcdef",
    "OpenHands().get(conv.id)",  # uncaught: a full traceback in the output
]


def _notebook(path: Path) -> None:
    nb = quickstart()
    cells = nb["cells"]
    code = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": []}
    cells.insert(0, {**code, "id": "debug", "source": DEBUG_CELL})
    cells.extend({**code, "id": f"err{i}", "source": src} for i, src in enumerate(ERROR_CELLS))
    path.write_text(json.dumps(nb))


def test_no_secret_reaches_any_artefact(tmp_path: Path) -> None:
    with Simulator(speed=8, api_key=API_KEY, conversation_session_key=SESSION_KEY) as sim:
        server = JupyterServer(
            "lab",
            tmp_path,
            {"OPENHANDS_API_KEY": API_KEY, "OPENHANDS_BASE_URL": sim.url},
            settings={"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}},
            extra=["--ServerApp.log_level=DEBUG"],
        )
        try:
            nb_path = server.nb_dir / "quickstart.ipynb"
            _notebook(nb_path)
            n_cells = len(json.loads(nb_path.read_text())["cells"])
            code_cells = [
                i
                for i, c in enumerate(json.loads(nb_path.read_text())["cells"])
                if c["cell_type"] == "code"
            ]
            with chromium_page(1000) as page:
                open_notebook(page, server, "quickstart.ipynb")
                main_cells = [i for i in code_cells if i < n_cells - len(ERROR_CELLS)]
                run_cells(page, main_cells, timeout=240000)
                run_cells(page, [n_cells - 5])
                page.wait_for_timeout(1500)
                sim.faults.error_rate = 1.0
                run_cells(page, [n_cells - 4])
                page.wait_for_function(
                    "() => [...document.querySelectorAll('.ohj-retry')].some(e => e.style.display !== 'none' && e.textContent.includes('Retrying'))",
                    timeout=20000,
                )
                page.screenshot(path=str(ARTIFACTS / "secrets-retrying.png"), full_page=False)
                sim.faults.error_rate = 0.0
                sim.config.api_key = "rotated-key-value"
                run_cells(page, list(range(n_cells - 3, n_cells)))
                time.sleep(1.0)
                page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
                page.wait_for_function(
                    "() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
                    timeout=20000,
                )
        finally:
            server.stop()

        saved = nb_path.read_text()
        nb = json.loads(saved)
        state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json")
        assert state and state["state"], "widget state was saved"
        outputs = json.dumps([c.get("outputs", []) for c in nb["cells"]])
        assert "auth failed: AuthenticationError" in outputs
        assert "refresh failed: ServerError" in outputs
        assert ("AuthenticationError" in outputs and "Traceback" in outputs) or "evalue" in outputs
        assert "Simulated server error" in json.dumps(state) or "Retrying" in json.dumps(state)
        # the saved widget says how the conversation ended, as text
        conv_cell = next(c for c in nb["cells"] if "conv = %openhands" in "".join(c["source"]))
        texts = [o["data"]["text/plain"] for o in conv_cell["outputs"] if "data" in o]
        assert any("finished" in "".join(t) for t in texts), texts
        debug_log = (server.nb_dir / "debug.log").read_text()
        assert "httpx" in debug_log or "openhands_jupyter" in debug_log
        server_log = (tmp_path / "lab.log").read_text()
        for name, text in [
            ("notebook", saved),
            ("debug log", debug_log),
            ("server log", server_log),
        ]:
            assert API_KEY not in text, f"API key found in the {name}"
            assert SESSION_KEY not in text, f"session key found in the {name}"
