"""Bad input fails with one readable line before any request is sent."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from openhands_jupyter import InputError, OpenHands
from openhands_jupyter.api.validate import check_base_url, normalize_repository
from openhands_jupyter.sim import Simulator

from .conftest import API_KEY, fast_config


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("octo/app", ("octo/app", None)),
        ("https://github.com/octo/app", ("octo/app", "github")),
        ("https://github.com/octo/app.git", ("octo/app", "github")),
        ("git@github.com:octo/app.git", ("octo/app", "github")),
        ("https://gitlab.com/group/sub/app", ("group/sub/app", "gitlab")),
        ("git@gitlab.com:group/app.git", ("group/app", "gitlab")),
        ("https://bitbucket.org/team/app", ("team/app", "bitbucket")),
        ("git@bitbucket.org:team/app.git", ("team/app", "bitbucket")),
        (None, (None, None)),
    ],
)
def test_repository_forms(given: str | None, expected: tuple[str | None, str | None]) -> None:
    assert normalize_repository(given) == expected


BAD = [
    ({"task": ""}, "task is empty"),
    ({"task": "   \n "}, "task is empty"),
    ({"task": "x", "repository": "just-a-name"}, "not of the form owner/repo"),
    ({"task": "x", "repository": "octo/app/extra"}, None),
    ({"task": "x", "repository": "https://github.com/octo"}, "not of the form owner/repo"),
    ({"task": "x", "repository": "octo/app", "branch": "my branch"}, "not a valid git branch"),
    ({"task": "x", "branch": "main"}, "needs a repository"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD)
def test_bad_start_input_sends_nothing(kwargs: dict[str, str], message: str | None) -> None:
    with Simulator(api_key=API_KEY) as sim:
        oh = OpenHands(API_KEY, sim.url, tracker_config=fast_config(), progress=False)
        try:
            if message is None:  # a GitLab-style nested path is accepted
                kwargs = {**kwargs, "repository": "https://gitlab.com/octo/app/extra"}
                conv = oh.start(**kwargs)
                assert conv.repository == "octo/app/extra"
                return
            with pytest.raises(InputError) as info:
                oh.start(**kwargs)
            assert message in str(info.value)
            assert "\n" not in str(info.value)
            assert sim.stats.total == 0
        finally:
            oh.close()


def test_bad_ids_and_versions_send_nothing() -> None:
    with Simulator(api_key=API_KEY) as sim:
        oh = OpenHands(API_KEY, sim.url, progress=False)
        with pytest.raises(InputError, match="Not a conversation id"):
            oh.get("12345")
        with pytest.raises(InputError, match="Not a conversation id"):
            oh.get("../../etc/passwd")
        with pytest.raises(InputError, match="Unknown api_version"):
            OpenHands(API_KEY, sim.url, api_version="v2")
        with pytest.raises(InputError, match="poll_interval must be greater than 0"):
            fast_config(poll_interval=-1)
        # the same limits as %config's (one definition of each setting)
        for budget in (0, 601):
            with pytest.raises(InputError, match="budget_per_minute must be between 1 and 600"):
                fast_config(budget_per_minute=budget)
        assert sim.stats.total == 0
        oh.close()


def test_plain_http_is_refused_unless_loopback_or_allowed() -> None:
    with pytest.raises(InputError, match="Refusing plain-http"):
        check_base_url("http://openhands.example.com")
    with pytest.raises(InputError, match="Refusing plain-http"):
        OpenHands("k-123456", "http://10.1.2.3:3000")
    assert check_base_url("http://openhands.example.com", allow_insecure=True)
    assert check_base_url("http://127.0.0.1:3000") == "http://127.0.0.1:3000"
    assert check_base_url("http://localhost:3000/") == "http://localhost:3000"
    assert check_base_url("http://[::1]:3000")
    with pytest.raises(InputError, match="not an http"):
        check_base_url("ftp://x")


def test_cloud_without_a_key_says_how_to_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENHANDS_API_KEY", raising=False)
    monkeypatch.delenv("OPENHANDS_BASE_URL", raising=False)
    oh = OpenHands(progress=False)
    assert oh.base_url == "https://app.all-hands.dev"
    from openhands_jupyter import AuthenticationError

    with pytest.raises(AuthenticationError, match="OPENHANDS_API_KEY"):
        oh.list()
    oh.close()


def test_each_setting_has_one_set_of_limits_everywhere(tmp_path: Path) -> None:
    """%config, pyproject.toml and the tracker's config refuse the same values of a setting,
    with the same words (each setting is defined once, in ``settings.py``)."""
    from traitlets import TraitError

    from openhands_jupyter import settings
    from openhands_jupyter.tracking import TrackerConfig
    from openhands_jupyter.ui.magic import OpenHandsMagics

    assert set(settings.TRAITS) <= set(OpenHandsMagics.class_traits(config=True))
    tracker_fields = {f.name for f in dataclasses.fields(TrackerConfig)}
    for name, bad in [
        ("poll_interval", 0.0),
        ("budget_per_minute", 601),
        ("max_concurrent", 0),
        ("time_scale", -1.0),
    ]:
        said = settings.setting_error(name, bad)
        assert said and name in said
        with pytest.raises(TraitError, match=said.split(",")[0]):
            setattr(settings.Settings(), name, bad)
        assert name in tracker_fields
        with pytest.raises(InputError, match=said.split(",")[0]):
            TrackerConfig(**{name: bad})  # type: ignore[arg-type]
        if name in settings.PYPROJECT:
            (tmp_path / "pyproject.toml").write_text(f"[tool.openhands-jupyter]\n{name} = {bad}\n")
            values, warnings, _path = settings.read_defaults(tmp_path)
            assert name not in values and said in warnings[0]
