"""``%openhands`` / ``%%openhands``: start, attach, list and stop conversations from a cell."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display
from traitlets import Float, Int, TraitError, Unicode, validate

from ..constants import CLOUD_URL
from .parsing import fill_fields, split_line
from .settings import read_defaults

if TYPE_CHECKING:
    from ..api.secrets import Secret
    from ..client import OpenHands
    from ..conversation import Conversation
    from .shown import ShownConversation

# The client, the tracker and the widgets load on first use, so %load_ext stays light.

_MAGICS: OpenHandsMagics | None = None


@magics_class
class OpenHandsMagics(Magics):
    """Settings for ``%openhands``; change them with ``%config OpenHandsMagics.<name> = value``."""

    base_url = Unicode(
        None,
        allow_none=True,
        help="OpenHands server (else OPENHANDS_BASE_URL, pyproject.toml, then the Cloud).",
    ).tag(config=True)
    api_version = Unicode(None, allow_none=True, help="v1, v0 or auto.").tag(config=True)
    poll_interval = Float(
        None, allow_none=True, help="Seconds between polls of a running conversation (default 5)."
    ).tag(config=True)
    budget_per_minute = Int(
        None,
        allow_none=True,
        help="Requests per minute the tracker may spend (default 60, at most 600).",
    ).tag(config=True)
    max_concurrent = Int(
        None,
        allow_none=True,
        help="Conversations to run at once before queueing (default: the server decides).",
    ).tag(config=True)
    default_repository = Unicode(
        None, allow_none=True, help="Repository used when --repo is not given."
    ).tag(config=True)
    default_branch = Unicode(
        None, allow_none=True, help="Branch used when --branch is not given."
    ).tag(config=True)
    time_scale = Float(1.0, help="Multiply every tracker interval (for simulators and tests).").tag(
        config=True
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._client: OpenHands | None = None
        self._typed_key: Secret | None = None
        self.observe(self._settings_changed)

    def _settings_changed(self, change: Any) -> None:
        self._client = None  # the next command builds a client with the new settings

    @validate("poll_interval", "time_scale")
    def _positive(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and not value > 0:
            raise TraitError(f"{proposal['trait'].name} must be greater than 0, got {value!r}")
        return value

    @validate("budget_per_minute")
    def _budget(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and not 1 <= value <= 600:
            raise TraitError(f"budget_per_minute must be between 1 and 600, got {value!r}")
        return value

    @validate("max_concurrent")
    def _concurrency(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and value < 1:
            raise TraitError(f"max_concurrent must be at least 1, got {value!r}")
        return value

    # -- settings -------------------------------------------------------------------------------
    def effective(self) -> dict[str, tuple[Any, str]]:
        """Every setting with where it came from: %config, environment, pyproject.toml, default."""
        file_values, _warnings, path = read_defaults()
        env = os.environ
        env_names = {"base_url": "OPENHANDS_BASE_URL", "api_version": "OPENHANDS_API_VERSION"}
        defaults: dict[str, Any] = {
            "base_url": CLOUD_URL,
            "api_version": "auto",
            "poll_interval": 5.0,
            "budget_per_minute": 60,
            "max_concurrent": None,
            "default_repository": None,
            "default_branch": None,
        }
        out: dict[str, tuple[Any, str]] = {}
        for name, default in defaults.items():
            configured = getattr(self, name)
            if configured is not None:
                out[name] = (configured, "%config")
            elif name in env_names and env.get(env_names[name]):
                out[name] = (env[env_names[name]], env_names[name])
            elif name in file_values:
                out[name] = (file_values[name], str(path))
            else:
                out[name] = (default, "default")
        return out

    def client(self) -> OpenHands:
        from ..client import OpenHands
        from ..tracking import TrackerConfig

        if self._client is None or self._client.tracker.closed:
            values = {k: v for k, (v, _) in self.effective().items()}
            config = TrackerConfig(
                poll_interval=float(values["poll_interval"]),
                budget_per_minute=int(values["budget_per_minute"]),
                max_concurrent=values["max_concurrent"],
                time_scale=self.time_scale,
            )
            self._client = OpenHands(
                self._typed_key,
                values["base_url"],
                api_version=values["api_version"],
                tracker_config=config,
                progress=False,
            )
        return self._client

    def _ensure_key(self) -> bool:
        """On the Cloud without a key: say how to set one and offer to type it (kept in memory)."""
        from ..api.probe import is_cloud
        from ..api.secrets import Secret

        client = self.client()
        if client.aio.has_api_key or not is_cloud(client.base_url):
            return True
        print(
            "No OpenHands API key. Create one at https://app.all-hands.dev (Settings › API "
            "Keys), then set it before starting Jupyter (export OPENHANDS_API_KEY=...) or in "
            "this session with %env OPENHANDS_API_KEY=... (it is never saved in the notebook)."
        )
        try:
            import getpass

            typed = getpass.getpass("OpenHands API key (Enter to skip): ").strip()
        except Exception:
            return False
        if not typed:
            return False
        self._typed_key = Secret(typed)
        self._client = None
        return True

    # -- the magic ------------------------------------------------------------------------------
    @no_var_expand
    @magic_arguments()
    @argument("-r", "--repo", default=None, help="repository, owner/repo or its URL")
    @argument("-b", "--branch", default=None, help="branch to work on")
    @argument("--title", default=None, help="conversation title")
    @argument("--wait", action="store_true", help="block this cell until the agent stops working")
    @argument("--timeout", type=float, default=None, help="with --wait: give up after SECONDS")
    @argument("--api-version", default=None, help="v1, v0 or auto for this client")
    @argument(
        "--list",
        nargs="?",
        const=20,
        type=int,
        default=None,
        metavar="N",
        help="list the N most recent conversations, with attach buttons",
    )
    @argument("--attach", default=None, metavar="ID", help="follow an existing conversation")
    @argument("--stop", default=None, metavar="ID", help="stop (pause) a conversation by id")
    @argument("--panel", action="store_true", help="show every tracked conversation")
    @argument("--config", action="store_true", help="show the settings and where they come from")
    @line_cell_magic
    def openhands(self, line: str = "", cell: str | None = None) -> Any:
        """Start an OpenHands conversation from a cell, or manage conversations.

        Start (the cell returns at once; a live widget shows progress)::

            %openhands Fix the failing test in tests/test_api.py
            %openhands -r octo/app -b dev Add a --verbose flag to the CLI
            conv = %openhands --repo https://github.com/octo/app Update the README
            %openhands --wait --timeout 600 -r octo/app Bump the version   # block until done
            %openhands -- -v is broken: fix it          # '--' ends options; the rest is the task

            %%openhands --repo octo/app --branch dev
            Refactor the loader in {module_name} and add tests.
            (the cell body is the task; {name} is filled from your variables, unknown names stay
            as written, {{ and }} give literal braces)

        The task text after the options is used exactly as typed: quotes, $, braces and unicode
        are kept. Options must come before the task.

        Manage::

            %openhands --list [N]        recent conversations, with attach buttons
            %openhands --attach ID       follow an existing conversation (e.g. after a restart)
            %openhands --stop ID         pause a conversation
            %openhands --panel           one table of every tracked conversation + launch form
            %openhands --config          the settings in force and where they come from

        Settings: ``%config OpenHandsMagics.poll_interval = 10`` (also budget_per_minute,
        max_concurrent, default_repository, default_branch, api_version, base_url), a
        ``[tool.openhands-jupyter]`` table in the nearest pyproject.toml, and the environment
        variables OPENHANDS_API_KEY, OPENHANDS_BASE_URL and OPENHANDS_SESSION_API_KEY.
        """
        from ..api.errors import OpenHandsError

        args, task = split_line(line, self.openhands.parser)
        if cell is not None:
            if task:
                raise UsageError(
                    "%%openhands: put the task in the cell body, options on the first line."
                )
            task = fill_fields(cell, self.shell.user_ns if self.shell else {})
        try:
            return self._dispatch(args, task)
        except (OpenHandsError, TimeoutError) as exc:
            print(f"openhands: {exc}", file=sys.stderr)
            return None

    def _dispatch(self, args: Any, task: str) -> Any:
        modes = [
            m
            for m in ("list", "attach", "stop", "panel", "config")
            if getattr(args, m) not in (None, False)
        ]
        if len(modes) > 1:
            raise UsageError(f"%openhands: use one of --{', --'.join(modes)} at a time.")
        if modes and task:
            raise UsageError(f"%openhands --{modes[0]} takes no task text.")
        if args.api_version:
            self.api_version = args.api_version
        if "config" in modes:
            self._show_config()
            return None
        if not self._ensure_key():
            return None
        client = self.client()
        if "panel" in modes:
            from .panel import Panel

            panel = Panel(client)
            display(panel)
            return None
        if "list" in modes:
            self._show_list(client, int(args.list))
            return None
        if "stop" in modes:
            conv = client.get(args.stop, track=False)
            conv.stop()
            print(f"Stopped {conv.id}.")
            return None
        if "attach" in modes:
            conv = client.get(args.attach)
            return self._show(conv)
        values = self.effective()
        repo = args.repo or values["default_repository"][0]
        branch = args.branch or (values["default_branch"][0] if not args.repo else None)
        if not task.strip():
            from ..api.errors import InputError

            raise InputError(
                "The task is empty: write it after the options "
                "(%openhands Fix the tests) or in the %%openhands cell body."
            )
        conv = client.start(task, repository=repo, branch=branch, title=args.title)
        shown = self._show(conv)
        if args.wait:
            shown.wait(args.timeout)
        return shown

    def _show(self, conv: Conversation) -> ShownConversation:
        from .shown import show

        return show(conv, self.shell)

    def _show_config(self) -> None:
        client = self.client()
        rows = [(name, value, source) for name, (value, source) in self.effective().items()]
        key = "set (hidden)" if client.aio.has_api_key else "not set"
        width = max(len(r[0]) for r in rows)
        print(f"{'api_key'.ljust(width)}  {key}")
        for name, value, source in rows:
            print(f"{name.ljust(width)}  {value!s:<40} ({source})")
        _values, warnings, _path = read_defaults()
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)

    def _show_list(self, client: OpenHands, limit: int) -> None:
        import ipywidgets

        from ..api.errors import OpenHandsError
        from .widget import ConversationWidget

        conversations = client.list(limit=limit)
        if not conversations:
            print("No conversations yet.")
            return
        shown = ipywidgets.VBox()
        rows = []
        for conv in conversations:
            button = ipywidgets.Button(description="Attach", layout=ipywidgets.Layout(width="80px"))
            cid = conv.id or ""

            def attach(_: Any, cid: str = cid) -> None:
                try:
                    again = client.get(cid)
                except OpenHandsError as exc:
                    shown.children = (*shown.children, ipywidgets.Label(f"openhands: {exc}"))
                    return
                shown.children = (*shown.children, ConversationWidget(again))

            button.on_click(attach)
            label = (conv.title or "").replace("\n", " ")[:70]
            text = f"{cid[:8]}  {conv.status:<9} {label}"
            rows.append(ipywidgets.HBox([button, ipywidgets.Label(text)]))
        display(ipywidgets.VBox([*rows, shown]))


def shared_client() -> OpenHands:
    """The client behind ``%openhands`` (built from the current settings)."""
    global _MAGICS
    if _MAGICS is None:
        _MAGICS = OpenHandsMagics()
    return _MAGICS.client()


def load_ipython_extension(ipython: Any) -> None:
    global _MAGICS
    magics = OpenHandsMagics(shell=ipython)
    _MAGICS = magics
    ipython.register_magics(magics)
