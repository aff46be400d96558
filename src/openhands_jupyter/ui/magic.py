"""``%openhands`` / ``%%openhands``: start, attach, list and stop conversations from a cell."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

from ..api.errors import InputError, UnreadableWarning
from ..api.ids import normalize_id
from ..api.text import shorten, visible
from ..api.validate import check_api_version, check_branch, check_max_cost, normalize_repository
from ..settings import DEFAULTS, Settings, effective, read_defaults, setting_error
from .parsing import fill_fields, split_line
from .shared import SHARED, shared_client

__all__ = ["OpenHandsMagics", "load_ipython_extension", "shared_client"]

if TYPE_CHECKING:
    from ..handles.blocking import OpenHands
    from ..handles.conversation import Conversation
    from .shown import ShownConversation

# The client, the tracker and the widgets load on first use, so %load_ext stays light.


@magics_class
class OpenHandsMagics(Magics, Settings):
    """``%openhands``, with the settings (:class:`Settings`) as its traits: change them with
    ``%config OpenHandsMagics.<name> = value``."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.observe(self._settings_changed)
        self._settings_changed(None)

    def _settings_changed(self, change: Any) -> None:
        SHARED.configured = {name: getattr(self, name) for name in DEFAULTS}
        SHARED.time_scale = self.time_scale  # the next command applies them to the one client

    @property
    def _client(self) -> OpenHands | None:
        return SHARED.client

    @_client.setter
    def _client(self, client: OpenHands | None) -> None:
        SHARED.use(client)

    # -- settings -------------------------------------------------------------------------------
    def effective(self) -> dict[str, tuple[Any, str]]:
        """Every setting with where it came from: %config, environment, pyproject.toml, default."""
        return effective({name: getattr(self, name) for name in DEFAULTS})

    def client(self) -> OpenHands:
        return SHARED.get()

    def _ensure_key(self) -> bool:
        """On the Cloud without a key: say how to set one and offer to type it (kept in memory)."""
        from ..api.probe import is_cloud
        from ..api.secrets import as_secret
        from ..api.validate import check_key

        client = self.client()
        if client.aio.has_api_key or not is_cloud(client.base_url):
            return True
        print(
            "No OpenHands API key. Create one at https://app.all-hands.dev (Settings › API "
            "Keys), then set it before starting Jupyter (export OPENHANDS_API_KEY=...) or in "
            "this session with %env OPENHANDS_API_KEY=... (it is never saved in the notebook)."
        )
        if not self._can_prompt():
            return False
        try:
            import getpass

            # a Secret from the first moment: no frame holds the typed key as plain text
            typed = as_secret(getpass.getpass("OpenHands API key (Enter to skip): "))
        except (Exception, KeyboardInterrupt):
            return False
        if typed is None:
            return False
        check_key(typed, "API key", "what was typed")
        SHARED.typed_key = typed  # the next use builds the client with it, closing the old
        return True

    def _can_prompt(self) -> bool:
        """Ask for a key only where someone can answer: a frontend that allows input, or a
        terminal. A script's pipe may stay open and never send a line."""
        kernel = getattr(self.shell, "kernel", None)
        if kernel is not None:
            return bool(getattr(kernel, "_allow_stdin", False))
        stdin = sys.stdin
        try:
            return stdin is not None and stdin.isatty()
        except (AttributeError, ValueError):
            return False

    # -- the magic ------------------------------------------------------------------------------
    @no_var_expand
    @magic_arguments()
    @argument("-r", "--repo", default=None, help="repository, owner/repo or its URL")
    @argument("-b", "--branch", default=None, help="branch to work on")
    @argument("--title", default=None, help="conversation title")
    @argument(
        "--with",
        dest="with_",
        default=None,
        metavar="NAMES",
        help="variables and files to send into the workspace first: df,config,data/train.csv",
    )
    @argument("--wait", action="store_true", help="block this cell until the agent stops working")
    @argument("--timeout", type=float, default=None, help="with --wait: give up after SECONDS")
    @argument("--api-version", default=None, help="v1, v0 or auto for this client")
    @argument(
        "--confirm",
        action="store_true",
        help="confirmation mode: each action waits for Approve or Reject",
    )
    @argument(
        "--max-cost",
        default=None,
        metavar="DOLLARS",
        help="stop the agent once it has cost this much",
    )
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
    @argument(
        "--stop", dest="stop_id", default=None, metavar="ID", help="stop a conversation's agent"
    )
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
            task, unfilled = fill_fields(cell, self.shell.user_ns if self.shell else {})
            if unfilled:
                print(
                    f"%%openhands: left {', '.join(unfilled)} as written: no variable by that "
                    "name ({{ and }} give literal braces).",
                    file=sys.stderr,
                )
        try:
            return self._dispatch(args, task)
        except (OpenHandsError, TimeoutError) as exc:
            print(visible(f"openhands: {exc}"), file=sys.stderr)
            return None

    def _dispatch(self, args: Any, task: str) -> Any:
        # the options that manage conversations instead of starting one, by their dest
        modes = [m for m in MODES if getattr(args, m) not in (None, False)]
        if len(modes) > 1:
            named = ", ".join(MODES[m] for m in modes)
            raise UsageError(f"%openhands: use one of {named} at a time.")
        if modes and task:
            raise UsageError(f"%openhands {MODES[modes[0]]} takes no task text.")
        if args.api_version:
            self.api_version = check_api_version(args.api_version)
        if "config" in modes:
            self._show_config()
            return None
        # every argument is checked before anything asks for a key or sends a request
        for ident in (args.attach, args.stop_id):
            if ident is not None:
                normalize_id(ident)
        if not modes:
            values = self.effective()
            repo = args.repo or values["default_repository"][0]
            branch = args.branch or (values["default_branch"][0] if not args.repo else None)
            if not task.strip():
                raise InputError(
                    "The task is empty: write it after the options "
                    "(%openhands Fix the tests) or in the %%openhands cell body."
                )
            normalize_repository(repo)
            check_branch(branch)
            max_cost = check_max_cost(
                args.max_cost if args.max_cost is not None else values["max_cost"][0]
            )
            data, files = self._with(args.with_)
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
        if "stop_id" in modes:
            conv = client.get(args.stop_id, track=False)
            conv.stop()
            print(f"Stopping {conv.id}: the server has the request.")
            return None
        if "attach" in modes:
            conv = client.get(args.attach)
            return self._show(conv)
        # at once, whatever the server does: the widget shows the wait and the outcome
        conv = client.start(
            task,
            repository=repo,
            branch=branch,
            title=args.title,
            background=True,
            confirm=bool(args.confirm),
            max_cost=max_cost,
            data=data,
            files=files,
        )
        shown = self._show(conv)
        if args.wait:
            shown.wait(args.timeout)
        return shown

    def _with(self, names: str | None) -> tuple[dict[str, Any] | None, list[str] | None]:
        """``--with``'s names: the notebook's variables by name, else files or folders."""
        if not names:
            return None, None
        namespace = getattr(self.shell, "user_ns", {}) or {}
        data: dict[str, Any] = {}
        files: list[str] = []
        for name in (n.strip() for n in names.split(",")):
            if not name:
                continue
            if name in namespace:
                data[name] = namespace[name]
            elif Path(name).expanduser().exists():
                files.append(name)
            else:
                raise InputError(f"--with {name}: no variable or file by that name here.")
        return data or None, files or None

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

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnreadableWarning)
            conversations = client.list(limit=limit)
        for warning in caught:
            print(f"openhands: {warning.message}", file=sys.stderr)
        if not conversations:
            print("No conversations yet.")
            return
        if getattr(self.shell, "kernel", None) is None:
            # no widget frontend (terminal IPython): a text table, full ids to --attach
            print(f"{'id':<32}  {'status':<9}  {'updated':<16}  title")
            for conv in conversations:
                info = conv.info
                moment = info.updated_at or info.created_at if info else None
                when = moment.strftime("%Y-%m-%d %H:%M") if moment else ""
                label = shorten(visible(conv.title or ""), 60)
                status = visible(conv.status)
                print(f"{conv.id or '':<32}  {status:<9}  {when:<16}  {label}")
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
            label = shorten(conv.title, 70)
            text = f"{cid[:8]}  {conv.status:<9} {label}"
            rows.append(ipywidgets.HBox([button, ipywidgets.Label(text)]))
        display(ipywidgets.VBox([*rows, shown]))


#: the options that manage conversations (one at a time, no task): dest -> option
MODES = {
    "list": "--list",
    "attach": "--attach",
    "stop_id": "--stop",
    "panel": "--panel",
    "config": "--config",
}


def load_ipython_extension(ipython: Any) -> None:
    from .fanout import register

    register(ipython)  # oh.map's conversations show as their table
    # IPython keeps a %config value even when the setting refused it: drop such values, or
    # every later %load_ext / %reload_ext would fail on them
    section = getattr(ipython, "config", {}).get("OpenHandsMagics") or {}
    for name in list(section):
        try:
            error = setting_error(name, section[name])
        except TypeError:
            error = f"{name} has the wrong type: {section[name]!r}"
        if error:
            print(f"openhands: ignoring %config OpenHandsMagics.{name}: {error}", file=sys.stderr)
            del section[name]
    # each Magics instance joins the shell's configurables: a reload leaves only the new one
    # (else every %config reaches every earlier instance too)
    configurables = getattr(ipython, "configurables", None)
    if isinstance(configurables, list):
        configurables[:] = [
            c for c in configurables if type(c).__name__ != OpenHandsMagics.__name__
        ]
    ipython.register_magics(OpenHandsMagics(shell=ipython))
