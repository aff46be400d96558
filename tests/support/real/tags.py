"""The tag of a test run, in the names of the folders its real servers and fake LLM make, so
that the run's leftover check counts its own folders only (another run, or a benchmark, on the
same machine makes folders of its own)."""

from __future__ import annotations

import os
import uuid

#: where the run's tag is kept: set by the first process that imports this (a test session's
#: controller), inherited by the processes it starts (its workers)
RUN_ENV = "OHJ_TEST_RUN"
RUN = os.environ.setdefault(RUN_ENV, uuid.uuid4().hex[:8])


def run_tag() -> str:
    """This run's tag."""
    return RUN
