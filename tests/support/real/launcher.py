"""Start a real OpenHands server (``openhands-ai`` from the package index) on 127.0.0.1.

The server is installed once into a cached venv (``$OHJ_REAL_CACHE``, default
``~/.cache/openhands-jupyter/real``), keyed by version, with Python 3.12 or 3.13. It runs with
the process sandbox (no Docker), the SDK's default webhook batching unless told otherwise, and
a scripted fake LLM (:mod:`tests.support.real.fake_llm`). Every process it starts carries a tag in its
environment; :meth:`RealServer.stop` stops exactly the tagged processes, by PID.

``agent_server="1.58.2"`` runs a newer agent server than the app pins: it is installed alone
(``openhands-agent-server``, ``-sdk`` and ``-tools`` of that version, pinned together) into a
venv of its own, and the app's process sandbox starts it with that venv's Python
(``OH_SANDBOX_PYTHON_EXECUTABLE``). ``OH_WEB_URL`` and ``WEB_HOST`` stay unset and no MCP
server is configured (1.11.0's models refuse the newer ``MCPServer.enabled``). The app
server's event store then refuses that agent server's events (422: its 1.34 models), and the
agent server retries each webhook batch (3 times, 5 s apart by default), during which the run
that sent it is still winding down: a ``/run`` answers 409 and an approval is acknowledged and
dropped. Here the retries come 1 s apart (``OH_WEBHOOKS_0_RETRY_DELAY``): the wind-down still
happens, for seconds rather than a quarter of a minute.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from .fake_llm import COST_PER_TOKEN, FakeLLM
from .tags import run_tag

V1_VERSION = "1.11.0"
V0_VERSION = "1.6.0"
#: the newest agent server (OpenHands Cloud runs newer ones than the 1.34.0 that 1.11.0 pins)
NEW_AGENT_VERSION = "1.58.2"
TAG = "OHJ_REAL_SERVER_TAG"

_APP_MODULE = '''
"""The OpenHands app with in-memory patches for this machine (no installed file is edited)."""
import importlib

import psutil

# /.dockerenv exists here: the process sandbox would then send its agent servers to
# host.docker.internal, which does not resolve
for name in (
    "openhands.utils.environment",  # 1.6
    "openhands.app_server.utils.environment",  # 1.11
    "openhands.app_server.utils.docker_utils",
):
    try:
        module = importlib.import_module(name)
    except ImportError:
        continue
    if hasattr(module, "is_running_in_docker"):
        module.is_running_in_docker = lambda: False

# the legacy local runtime (1.6) takes its servers' ports from 30000-59999, inside this
# machine's range for outgoing connections: a port it found free can be taken before its
# server binds it (by a kernel or a browser of another test), and the runtime then waits for
# ever for a server that is not there. Ranges of their own, below that range, instead.
try:
    import tenacity

    local_runtime = importlib.import_module("openhands.runtime.impl.local.local_runtime")
except ImportError:
    pass
else:
    # its server waits up to 120 s to come alive: on a busy two-core machine a fresh
    # server's start-up takes longer than that, and the conversation then never starts
    runtime = local_runtime.LocalRuntime
    runtime._wait_until_alive = runtime._wait_until_alive.retry_with(
        stop=tenacity.stop_after_delay(400)
    )
    local_runtime.EXECUTION_SERVER_PORT_RANGE = (10000, 12999)
    local_runtime.VSCODE_PORT_RANGE = (13000, 15999)
    local_runtime.APP_PORT_RANGE_1 = (16000, 17999)
    local_runtime.APP_PORT_RANGE_2 = (18000, 19999)

from openhands.app_server.sandbox import process_sandbox_service as pss
from openhands.app_server.sandbox.sandbox_models import SandboxStatus


def _process_status(self, process_info):
    """Any live process that is not a zombie and not stopped is running (idle servers sleep)."""
    try:
        process = psutil.Process(process_info.pid)
        if not process.is_running():
            return SandboxStatus.MISSING
        status = process.status()
        if status == psutil.STATUS_ZOMBIE:
            return SandboxStatus.MISSING
        if status == psutil.STATUS_STOPPED:
            return SandboxStatus.PAUSED
        return SandboxStatus.RUNNING
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return SandboxStatus.MISSING


pss.ProcessSandboxService._get_process_status = _process_status

# an agent server is given 30 s to come up: on a busy two-core machine its start-up (imports,
# tools) takes longer, and the sandbox is then deleted ("Agent Server Failed to start
# properly"). Five minutes instead.
_server_ready = pss.ProcessSandboxService._wait_for_server_ready


async def _wait_for_server_ready(self, port, timeout=30):
    return await _server_ready(self, port, timeout=max(timeout, 300))


pss.ProcessSandboxService._wait_for_server_ready = _wait_for_server_ready

try:
    from openhands.app_server.app import app  # 1.7 and later: the V1 app server
except ImportError:
    from openhands.server.listen import app  # 1.6: the legacy server, with V1 beside it
'''

_AGENT_MODULE = '''
"""The agent server, bound to loopback, its browser's downloads folder in its TMPDIR."""
import pathlib
import runpy
import sys
import tempfile


def _downloads_in_tmpdir():
    """browser-use makes a downloads folder in /tmp (whatever TMPDIR says) as it is imported,
    and leaves it: made in TMPDIR instead, it goes with the server's folder."""
    try:
        from browser_use.browser import profile
    except Exception:
        return
    prefix = "/tmp/browser-use-downloads-"

    class _Path(type(pathlib.Path())):
        def __new__(cls, *args):
            if args and isinstance(args[0], str) and args[0].startswith(prefix):
                return pathlib.Path(tempfile.gettempdir(), args[0][len("/tmp/"):])
            return pathlib.Path(*args)

    profile.Path = _Path


_downloads_in_tmpdir()
sys.argv = [sys.argv[0], *sys.argv[1:], "--host", "127.0.0.1"]
runpy.run_module("openhands.agent_server", run_name="__main__", alter_sys=True)
'''


class RealServerError(RuntimeError):
    """The real server could not be installed or started."""


def cache_root() -> Path:
    return Path(os.environ.get("OHJ_REAL_CACHE") or Path.home() / ".cache/openhands-jupyter/real")


def find_python() -> str:
    """A Python 3.12 or 3.13 interpreter (every openhands-ai release since 0.10 needs one)."""
    candidates = [shutil.which(n) for n in ("python3.12", "python3.13")]
    home = Path.home() / ".pyenv/versions"
    candidates += sorted(glob.glob(str(home / "3.12*/bin/python")))
    candidates += sorted(glob.glob(str(home / "3.13*/bin/python")))
    candidates += [c for c in ("/usr/bin/python3.12", "/usr/bin/python3.13")]
    for path in candidates:
        if not path or not os.path.exists(path):
            continue
        try:
            out = subprocess.run(
                [path, "-c", "import sys, venv; print(sys.version_info[:2] >= (3, 12))"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.stdout.strip() == "True":
            return path
    raise RealServerError(
        "No Python 3.12 or 3.13 found: openhands-ai needs one (python3.12 on PATH or pyenv)."
    )


#: packages a release needs pinned: an unpinned install of 1.6.0 now pulls a FastAPI that no
#: longer takes its agent server's ``Query(lte=...)``, so that server cannot start
PINS: dict[str, list[str]] = {"1.6.0": ["fastapi==0.141.1"]}


def _pip(venv: Path) -> list[str]:
    return [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]


def _install(venv: Path, packages: list[str], what: str) -> None:
    result = subprocess.run([*_pip(venv), *packages], capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise RealServerError(f"Installing {what} failed:\n{tail}")


_failed: dict[str, RealServerError] = {}


def ensure_installed(version: str, log: Any = None) -> Path:
    """The venv holding ``openhands-ai==version``, installed on first use (cached after). A
    failure is remembered for this process: it is not tried again test after test."""
    if version in _failed:
        raise _failed[version]
    try:
        return _ensure_installed(version, log)
    except (RealServerError, OSError, subprocess.SubprocessError) as exc:
        error = exc if isinstance(exc, RealServerError) else RealServerError(str(exc))
        _failed[version] = error
        raise error from None


def _ensure_installed(version: str, log: Any = None) -> Path:
    if version.startswith("agent-server-"):
        # an agent server alone: the server, its SDK and tools of one version, pinned together
        number = version.removeprefix("agent-server-")
        packages = [f"openhands-{p}=={number}" for p in ("agent-server", "sdk", "tools")]
    else:
        packages = [f"openhands-ai=={version}"]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / (version if version.startswith("agent-server-") else f"openhands-ai-{version}")
    marker = venv / ".installed"
    pins = PINS.get(version, [])
    with open(root / f".lock-{version}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            done = json.loads(marker.read_text() or "{}")
            if done.get("pins", []) != pins:
                _install(venv, pins, f"the pins of openhands-ai=={version}")
                marker.write_text(json.dumps({**done, "pins": pins}))
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        python = find_python()
        started = time.monotonic()
        if log:
            print(f"installing {' '.join(packages)} into {venv} (first run only)", file=log)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        # the pip a fresh venv brings cannot read some of openhands-ai's dependency metadata
        subprocess.run(
            [*_pip(venv), "--upgrade", "pip"], capture_output=True, timeout=600, check=True
        )
        _install(venv, [*packages, *pins], " ".join(packages))
        seconds = time.monotonic() - started
        marker.write_text(json.dumps({"version": version, "pins": pins, "seconds": seconds}))
        return venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tagged_pids(tag: str) -> list[int]:
    """Every process whose environment carries ``tag`` (the server and all it started)."""
    needle = f"{TAG}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return [p for p in found if p != os.getpid()]


def stop_tagged(tag: str, grace: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = tagged_pids(tag)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and tagged_pids(tag):
            time.sleep(0.1)


def own_home(home: Path) -> dict[str, str]:
    """A home of the server's own (it and every agent server and shell it starts inherit it):
    the agents' ``git config --global``, shell history and tool settings land there, never in
    the user's home, and go with the server's folder."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text("")
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        # the agents' terminals keep no history file
        "HISTFILE": "/dev/null",
        "IPYTHONDIR": str(home / ".ipython"),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
        "JUPYTER_RUNTIME_DIR": str(home / ".local/share/jupyter/runtime"),
    }
    return env


class RealServer:
    """A real OpenHands V1 app server on 127.0.0.1 with the process sandbox.

    ``batching`` is ``(events, seconds)`` for the agent server's webhook to the app server;
    ``None`` keeps the SDK's defaults (5 events / 30 s), as real deployments run.
    """

    def __init__(
        self,
        version: str = V1_VERSION,
        *,
        session_api_key: str | None = None,
        batching: tuple[int, float] | None = None,
        grouping: str = "ADD_TO_ANY",
        llm: FakeLLM | None = None,
        v1: bool = True,
        agent_server: str | None = None,
    ) -> None:
        self.version = version
        self.agent_server = agent_server
        self.v1 = v1
        self.legacy = version.startswith("1.6") or version.startswith("0.")
        self.session_api_key = session_api_key
        self.batching = batching
        self.grouping = grouping
        self.llm = llm
        self._own_llm = llm is None
        self.tag = uuid.uuid4().hex
        self.port = 0
        self.dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self) -> dict[str, str]:
        return {"X-Session-API-Key": self.session_api_key} if self.session_api_key else {}

    def log_tail(self, lines: int = 40) -> str:
        if self.dir is None or not (self.dir / "server.log").exists():
            return ""
        text = (self.dir / "server.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float = 120.0) -> RealServer:
        venv = ensure_installed(self.version, log=sys.stderr)
        agent_venv = (
            ensure_installed(f"agent-server-{self.agent_server}", log=sys.stderr)
            if self.agent_server
            else None
        )
        if self.llm is None:
            self.llm = FakeLLM().start()
        self.dir = Path(tempfile.mkdtemp(prefix=f"ohj-real-{run_tag()}-"))
        mods = self.dir / "mods"
        mods.mkdir()
        (mods / "ohj_real_app.py").write_text(textwrap.dedent(_APP_MODULE))
        (mods / "ohj_agent_server.py").write_text(textwrap.dedent(_AGENT_MODULE))
        for name in ("persist", "sandboxes", "files", "workspace", "tmp"):
            (self.dir / name).mkdir()
        self.port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENHANDS_", "OH_", "VIRTUAL_ENV"))
        }
        env.update(
            {
                TAG: self.tag,
                "PYTHONPATH": str(mods),
                "RUNTIME": "process",
                "SERVE_FRONTEND": "false",
                "OH_PERSISTENCE_DIR": str(self.dir / "persist"),
                # the OH_SANDBOX_* settings below reach the process sandbox only with its kind
                "OH_SANDBOX_KIND": "ProcessSandboxServiceInjector",
                "OH_SANDBOX_BASE_WORKING_DIR": str(self.dir / "sandboxes"),
                # below the range of outgoing ports (32768 and up): see the note on the local runtime
                "OH_SANDBOX_BASE_PORT": str(20000 + (os.getpid() * 7 + self.port) % 12000),
                "OH_SANDBOX_AGENT_SERVER_MODULE": "ohj_agent_server",
                "OH_WEBHOOKS_0_BASE_URL": f"{self.url}/api/v1/webhooks",
                # one sandbox for the whole run: 1.11.0 puts at most 20 conversations in one
                # and starts another agent server for the 21st (half a minute), which splits
                # what a test expects to share
                "OH_APP_CONVERSATION_KIND": "LiveStatusAppConversationServiceInjector",
                "OH_APP_CONVERSATION_MAX_NUM_CONVERSATIONS_PER_SANDBOX": "10000",
                "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}",
                **own_home(self.dir / "home"),
                # the agents' tools make temporary folders of their own (the file editor's
                # history, the browser's downloads) and leave them: they go with this folder
                "TMPDIR": str(self.dir / "tmp"),
                # and a tmux server of their own: two legacy servers on one tmux server both
                # make the session "test-session" at start-up, and the second one fails
                "TMUX_TMPDIR": str(self.dir / "tmp"),
            }
        )
        if self.legacy:
            # the legacy server: its own file store, a local runtime, and as root no new user
            env.update(
                {
                    "RUNTIME": "local",
                    "FILE_STORE": "local",
                    "FILE_STORE_PATH": str(self.dir / "files"),
                    "LOCAL_WORKSPACE_BASE": str(self.dir / "workspace"),
                    "USER": "root",
                    "RUNTIME_USERNAME": "root",
                    "RUN_AS_OPENHANDS": "false",
                    "ENABLE_BROWSER": "false",  # no browser here: it would block start-up
                    # the local runtime's Jupyter plugin starts its gateway from here
                    "OPENHANDS_REPO_PATH": str(self.dir / "workspace"),
                    # no VS Code server here: its plugin would wait for one for ever
                    "DISABLE_VSCODE_PLUGIN": "true",
                    "ENABLE_V1": "1" if self.v1 else "0",
                }
            )
        if agent_venv is not None:
            env["OH_SANDBOX_PYTHON_EXECUTABLE"] = str(agent_venv / "bin/python")
            env["OH_WEBHOOKS_0_RETRY_DELAY"] = "1"
        if self.batching is not None:
            env["OH_WEBHOOKS_0_EVENT_BUFFER_SIZE"] = str(self.batching[0])
            env["OH_WEBHOOKS_0_FLUSH_DELAY"] = str(self.batching[1])
        if self.session_api_key:
            env["SESSION_API_KEY"] = self.session_api_key
        log = open(self.dir / "server.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(venv / "bin/python"),
                "-m",
                "uvicorn",
                "ohj_real_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=self.dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            self._wait_alive(timeout)
            self._store_settings()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_alive(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RealServerError(
                    f"OpenHands {self.version} exited with {self.process.returncode}:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/alive", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise RealServerError(
            f"OpenHands {self.version} was not alive after {timeout:.0f} s:\n" + self.log_tail()
        )

    def _store_settings(self) -> None:
        assert self.llm is not None
        if self.legacy:
            body: dict[str, Any] = {
                "llm_model": "openai/fake",
                "llm_base_url": self.llm.url,
                "llm_api_key": "x",
                "sandbox_grouping_strategy": self.grouping,
            }
            r = httpx.post(
                f"{self.url}/api/settings", json=body, headers=self.headers(), timeout=30
            )
            if r.status_code >= 400:
                raise RealServerError(
                    f"Storing LLM settings failed: {r.status_code} {r.text[:300]}"
                )
            return
        body = {
            "agent_settings_diff": {
                "llm": {
                    "model": "openai/fake",
                    "base_url": self.llm.url,
                    "api_key": "x",
                    **COST_PER_TOKEN,
                }
            },
            "sandbox_grouping_strategy": self.grouping,
        }
        r = httpx.post(f"{self.url}/api/v1/settings", json=body, headers=self.headers(), timeout=30)
        if r.status_code >= 400:
            raise RealServerError(f"Storing LLM settings failed: {r.status_code} {r.text[:300]}")

    def stop(self) -> None:
        stop_tagged(self.tag)
        if self.process is not None:
            with contextlib.suppress(Exception):
                self.process.wait(timeout=5)
            self.process = None
        if self._own_llm and self.llm is not None:
            self.llm.stop()
            self.llm = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> RealServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
