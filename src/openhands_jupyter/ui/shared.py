"""The kernel's one client behind ``%openhands`` and ``Panel()``, and the settings it is built
from: ``%config`` values, then the environment, then pyproject.toml, then the defaults."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..settings import effective

if TYPE_CHECKING:
    from ..api.secrets import Secret
    from ..handles.blocking import OpenHands


class Shared:
    """Holds the one client of the kernel. A settings change reconfigures it (one tracker, one
    budget, the conversations it follows stay); only another server or key builds a new one,
    and the old one is closed, its conversations marked as no longer followed."""

    def __init__(self) -> None:
        self.configured: dict[str, Any] = {}
        self.time_scale = 1.0
        self.typed_key: Secret | None = None
        self.client: OpenHands | None = None
        self._built_for: tuple[Any, ...] | None = None
        self.pinned = False

    def use(self, client: OpenHands | None) -> None:
        """Make ``client`` the kernel's client as it is (``None``: build one from the settings
        at next use)."""
        self.client, self.pinned, self._built_for = client, client is not None, None

    def get(self) -> OpenHands:
        from ..handles.blocking import OpenHands
        from ..handles.client import TrackerConfig

        values = {k: v for k, (v, _) in effective(self.configured).items()}
        # every setting the tracker has a field for goes to it, by name
        fields = {f.name for f in dataclasses.fields(TrackerConfig)}
        config = TrackerConfig(
            **{k: v for k, v in values.items() if k in fields}, time_scale=self.time_scale
        )
        server = (values["base_url"], values["api_version"], self.typed_key)
        client = self.client
        if client is not None and not client.closed:
            if self.pinned:
                return client
            if server == self._built_for:
                client.reconfigure(config)
                return client
            client.untrack_all()  # each widget says it is no longer followed
            client.close()
        self.client = OpenHands(
            self.typed_key,
            values["base_url"],
            api_version=values["api_version"],
            tracker_config=config,
            progress=False,
        )
        self._built_for = server
        self.pinned = False
        return self.client


SHARED = Shared()


def shared_client() -> OpenHands:
    """The client behind ``%openhands`` (built from the current settings)."""
    return SHARED.get()


def setting(name: str) -> Any:
    """A setting's value in force for the magic (``%config``, environment, pyproject.toml or
    default)."""
    return effective(SHARED.configured)[name][0]
