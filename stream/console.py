"""Messages for the user while a run goes on."""
from __future__ import annotations

import sys


def notify(message: str) -> None:
    """One line on stderr; tqdm.write keeps a progress bar on screen intact."""
    from tqdm import tqdm

    tqdm.write(f"depthcam: {message}", file=sys.stderr)
