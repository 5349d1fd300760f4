"""`python -m stream`: the `depthcam` command."""
import sys
from pathlib import Path


def _leave_out_the_current_folder() -> None:
    """`python -m` puts the current folder first on sys.path: an ML project's own models.py or kernels.py there was
    imported in place of depthcam's packages ("'models' is not a package"). Where depthcam itself was not found in
    that folder (a checkout run from its root), the folder is left out; the `depthcam` command never has it."""
    home = Path(__file__).resolve().parent.parent
    if sys.path and Path(sys.path[0] or ".").resolve() != home:
        del sys.path[0]


_leave_out_the_current_folder()

from stream.cli import console_main  # noqa: E402  (after the path is set)

console_main()
