"""The pipeline's own threads. Made through `worker_thread`, which marks their names, so the command's exit
(`cli.console_main`) and the tests find those still running whichever stage or helper started them."""
from __future__ import annotations

import threading
from typing import Any, Callable

PREFIX = "depthcam-"


def worker_thread(name: str, target: Callable[..., Any], *args: Any) -> threading.Thread:
    """A daemon thread, not yet started, named PREFIX + name (a daemon: a stuck native call cannot hold
    the process open after the run has ended)."""
    return threading.Thread(target=target, args=args, name=PREFIX + name, daemon=True)


def live_workers() -> list[threading.Thread]:
    """The worker threads still alive (in any run of this process)."""
    return [thread for thread in threading.enumerate() if thread.is_alive() and thread.name.startswith(PREFIX)]
