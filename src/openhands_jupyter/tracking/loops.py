"""Where the tracker runs: the running loop of the calling thread (a kernel's), or a private loop
in a daemon thread (scripts, terminal IPython); see :mod:`openhands_jupyter.api.loops`."""

from ..api.loops import BackgroundLoop, reenter, running_loop

__all__ = ["BackgroundLoop", "reenter", "running_loop"]
