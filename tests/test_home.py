"""The suite leaves the user's home as it found it: a real server's agents write their git
config and shell history into a home of the server's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhands_jupyter import OpenHands

from . import home
from .kernel import Kernel
from .real.launcher import RealServer

pytestmark = pytest.mark.timeout(600)


@pytest.mark.real
def test_a_real_servers_agents_write_into_a_home_of_their_own() -> None:
    before = home.fingerprint()
    server = RealServer().start()
    try:
        assert server.dir is not None
        own = server.dir / "home"
        with OpenHands(base_url=server.url, progress=False) as oh:
            conv = oh.start("Set up git [llm:home]")
            conv.wait(timeout=240)
            assert conv.status == "finished", (conv.status, conv.detail)
            [output] = [e.text for e in conv.events() if e.type == "output"]
        # the agent's shell ran with the server's home, and its global git config is there
        assert f"HOME={own}" in output, output
        assert "name = openhands" in (own / ".gitconfig").read_text()
        assert "safe" in (own / ".gitconfig").read_text()  # the app server's own git set-up
        during = home.fingerprint()
    finally:
        server.stop()  # the agents' shells end here, and would write their history now
    assert home.changes(before, during) == []
    assert home.changes(before, home.fingerprint()) == []
    assert not own.exists(), "the server's home goes with it"


@pytest.mark.kernel
def test_a_kernel_the_suite_starts_keeps_its_files_out_of_home() -> None:
    before = home.fingerprint()
    kernel = Kernel()
    try:
        out = kernel.run("import IPython; print(IPython.paths.get_ipython_dir())")
        assert not out["stdout"].strip().startswith(str(Path.home())), out
    finally:
        kernel.close()
    assert home.changes(before, home.fingerprint()) == []
