"""Pull request numbers become links where the repository's host is known."""

from __future__ import annotations

from openhands_jupyter.ui.links import pr_links
from openhands_jupyter.ui.widget import ConversationWidget

from .conftest import SimClient
from .waiting import eventually


def test_each_known_host_gets_its_own_address() -> None:
    assert pr_links((42, 7), "octo/app", "github") == [
        {"number": 42, "url": "https://github.com/octo/app/pull/42"},
        {"number": 7, "url": "https://github.com/octo/app/pull/7"},
    ]
    assert pr_links((3,), "group/sub/app", "gitlab") == [
        {"number": 3, "url": "https://gitlab.com/group/sub/app/-/merge_requests/3"}
    ]
    assert pr_links((9,), "team/app", "BitBucket") == [
        {"number": 9, "url": "https://bitbucket.org/team/app/pull-requests/9"}
    ]


def test_an_unknown_host_or_no_repository_leaves_the_number_as_text() -> None:
    assert pr_links((5,), "octo/app", "forgejo") == [{"number": 5, "url": ""}]
    assert pr_links((5,), None, "github") == [{"number": 5, "url": ""}]
    assert pr_links((), "octo/app", "github") == []


def test_the_widget_links_the_pull_request_the_server_reports(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Fix it", repository="https://github.com/octo/app").wait(timeout=30)
    widget = ConversationWidget(conv)
    conv.refresh()  # the status may have come from the socket, ahead of the record
    prs = eventually(lambda: widget.state["prs"])
    assert prs == [{"number": 42, "url": "https://github.com/octo/app/pull/42"}]
    widget.close()
