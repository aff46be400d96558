"""A V1 conversation's workspace: changed files, diffs and file text, from its agent server
while that is up (no app-server request), else through the app server (which asks the agent
server for us, and answers 409 while the sandbox is paused)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .agent import AgentClient, AgentEndpoint
from .errors import (
    BadRequestError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    OpenHandsError,
)
from .models import ConversationInfo
from .workspace import FileChange, FileDiff, absolute, changes_from, diff_from, project_root

P = "/api/v1/app-conversations"

Call = Callable[..., Awaitable[Any]]


class V1Workspace:
    """Reads one server's conversations' workspaces; remembers each one's project root."""

    def __init__(self, call: Call, agent: AgentClient) -> None:
        self._call = call
        self._agent = agent
        self._roots: dict[str, str] = {}

    async def root(self, info: ConversationInfo, endpoint: AgentEndpoint | None) -> str:
        """The project's directory: the agent server's working directory when it can be
        asked, else where OpenHands puts it (``/workspace/project``, or the repository in it)."""
        known = self._roots.get(info.id)
        if known is not None:
            return known
        working_dir = None
        if endpoint is not None:
            try:
                data = await self._agent.call(endpoint, "GET", "")
            except OpenHandsError:
                data = None
            workspace = data.get("workspace") if isinstance(data, dict) else None
            if isinstance(workspace, dict) and isinstance(workspace.get("working_dir"), str):
                working_dir = workspace["working_dir"]
        root = project_root(working_dir, info.repository)
        if working_dir is not None:
            self._roots[info.id] = root
        return root

    async def _get(self, info: ConversationInfo, route: str, params: dict[str, str]) -> Any:
        try:
            return await self._call(
                "GET", f"{P}/{info.id}/{route}", params=params, what="reading a workspace"
            )
        except ConflictError:
            raise ConflictError(
                f"Conversation {info.id} is paused: its files can be read only while its "
                "sandbox runs. Resume it first.",
                status_code=409,
            ) from None

    async def _git(
        self, info: ConversationInfo, endpoint: AgentEndpoint | None, what: str, path: str
    ) -> Any:
        if endpoint is not None:
            try:
                return await self._agent.git(endpoint, what, path)
            except BadRequestError:
                raise  # the agent server's own answer (not a repository, a bad path)
            except OpenHandsError:
                pass  # not reachable from here: the app server asks it
        return await self._get(info, f"git/{what}", {"path": path})

    async def changes(
        self, info: ConversationInfo, endpoint: AgentEndpoint | None, root: str
    ) -> list[FileChange]:
        return changes_from(await self._git(info, endpoint, "changes", root))

    async def diff(
        self, info: ConversationInfo, endpoint: AgentEndpoint | None, root: str, path: str
    ) -> FileDiff:
        where = absolute(root, path)
        diff = diff_from(path, await self._git(info, endpoint, "diff", where))
        if diff.modified == "" and diff.original and endpoint is not None and where.startswith("/"):
            # 1.58 answers a deleted file's diff with an empty text: a file emptied is there
            try:
                await self._agent.download(endpoint, where)
            except NotFoundError:
                return FileDiff(path=path, original=diff.original, modified=None)
            except OpenHandsError:
                pass
        return diff

    async def read_file(
        self, info: ConversationInfo, endpoint: AgentEndpoint | None, root: str, path: str
    ) -> bytes:
        """From the agent server while it is up (a missing file is an error there); else the
        app server's copy, which answers "" for a file it cannot read. An agent server whose
        working directory is relative to its own (a process sandbox) cannot send a file by
        that path: its git view of the file stands in (the text, without a final newline)."""
        where = absolute(root, path)
        if endpoint is not None and where.startswith("/"):
            return await self._agent.download(endpoint, where)
        if endpoint is not None:
            try:
                diff = diff_from(path, await self._git(info, endpoint, "diff", where))
            except BadRequestError as exc:
                raise NotFoundError(
                    f"There is no file {where} in the agent's workspace ({exc.server_message})."
                ) from None
            if diff.modified is None:
                raise NotFoundError(f"There is no file {where} in the agent's workspace.")
            return diff.modified.encode("utf-8")
        data = await self._get(info, "file", {"file_path": where})
        if not isinstance(data, str):
            raise InvalidResponseError(f"Unexpected file response: {type(data).__name__}")
        return data.encode("utf-8")
