"""The pipeline's own threads. Made through `worker_thread`, which marks their names, so the command's exit
(`cli.console_main`) and the tests find those still running whichever stage or helper started them."""
from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable

PREFIX = "depthcam-"
# The niceness of the live run's background work (the async network, the face finder): low enough priority that
# the display path keeps the camera's rate, not so low that outside load starves it (beside two busy processes,
# nice 10 showed depth 21-24 frames old, nice 5 8-9 frames for 1-3 fps fewer shown; idle, the two the same;
# bench/RESULTS.md).
BACKGROUND_NICENESS = 5


def worker_thread(name: str, target: Callable[..., Any], *args: Any) -> threading.Thread:
    """A daemon thread, not yet started, named PREFIX + name (a daemon: a stuck native call cannot hold
    the process open after the run has ended)."""
    return threading.Thread(target=target, args=args, name=PREFIX + name, daemon=True)


def live_workers() -> list[threading.Thread]:
    """The worker threads still alive (in any run of this process)."""
    return [thread for thread in threading.enumerate() if thread.is_alive() and thread.name.startswith(PREFIX)]


def lower_priority(niceness: int = BACKGROUND_NICENESS) -> None:
    """Called on a worker's own thread: on Linux a thread has its own nice value, so the worker then gets only the
    CPU the display path leaves over. Elsewhere (one nice value a process) and where refused, nothing changes."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        except OSError:
            pass
