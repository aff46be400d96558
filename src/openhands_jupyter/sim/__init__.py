"""An OpenHands-compatible server (V1 and V0) with scripted lifecycles and fault injection."""

from .faults import Faults, Stats
from .scenarios import EDITED_FILE, HOSTILE, SCRIPT_COMMAND, SCRIPT_OUTPUT, finish_message
from .server import Simulator

__all__ = [
    "EDITED_FILE",
    "HOSTILE",
    "SCRIPT_COMMAND",
    "SCRIPT_OUTPUT",
    "Faults",
    "Simulator",
    "Stats",
    "finish_message",
]
