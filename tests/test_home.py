"""The suite leaves the user's home as it found it: a real server's agents write their git
config and shell history into a home of the server's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhands_jupyter import OpenHands

from . import home
from .support.kernel import Kernel
from .support.real.launcher import RealServer

pytestmark = pytest.mark.timeout(600)


@pytest.mark.real
def test_a_real_servers_agents_write_into_a_home_of_their_own(
    oh: OpenHands, real_server: RealServer
) -> None:
    """While it runs; once it stops (its agents' shells write their history then), the
    session's own check (``home_untouched``) finds the home as it was, and the server's home
    goes with its temporary folder."""
    before, tmp_before = home.fingerprint(), home.litter(servers=False)
    assert real_server.dir is not None
    own = real_server.dir / "home"
    conv = oh.start("Set up git [llm:home]")
    conv.wait(timeout=240)
    assert conv.status == "finished", (conv.status, conv.detail)
    [output] = [e.text for e in conv.events() if e.type == "output"]
    # the agent's shell ran with the server's home, and its global git config is there
    assert f"HOME={own}" in output, output
    assert "name = openhands" in (own / ".gitconfig").read_text()
    assert "safe" in (own / ".gitconfig").read_text()  # the app server's own git set-up
    assert home.changes(before, home.fingerprint()) == []
    # the agents' tools made their temporary folders in the server's own, not the machine's
    assert list((real_server.dir / "tmp").glob("oh_editor_history_*"))
    assert home.litter(servers=False) - tmp_before == set()


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
