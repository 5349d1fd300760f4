"""Checks that an output path can be written, made before any work so a run never fails at its end."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from stream.errors import UserError


def ensure_writable(path: Path, what: str = "output") -> Path:
    """Create `path`'s folder and check the file can be created or replaced there, without touching an
    existing file (an earlier output survives a run that fails before its first frame). Raises
    UserError naming the problem: a folder where the file should be, a read-only place, a parent that
    is a file, a name too long. A link is followed to where it points (a dangling one failed mid-run)."""
    path = Path(path).expanduser()
    try:
        return _ensure_writable(Path(os.path.realpath(path)) if path.is_symlink() else path, what)
    except OSError as exc:  # a name longer than the file system takes (ENAMETOOLONG), a loop of links
        raise UserError(f"cannot write {what} {path}: {exc.strerror or exc}; choose another name") from None


def _ensure_writable(path: Path, what: str) -> Path:
    if path.is_dir():
        raise UserError(f"cannot write {what} {path}: it is a folder; give a file name")
    blocking = next((parent for parent in path.parents if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise UserError(f"cannot write {what} {path}: {blocking} is a file, not a folder; choose another place")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write {what} {path}: cannot create its folder ({exc.strerror or exc}); "
                        f"choose another place") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"cannot write {what} {path}: the file is read-only; choose another name")
    try:  # a real probe: os.access says yes to root, and on some file systems that refuse writes
        fd, probe = tempfile.mkstemp(prefix=".depthcam-probe-", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write {what} {path}: its folder is not writable ({exc.strerror or exc}); "
                        f"choose another place") from None
    os.close(fd)
    os.unlink(probe)
    return path


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when two paths name one file (the second may not exist yet)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write(partial)` beside `path`, then renamed over it: a failure (a full disk) leaves the file that was
    there, not half of one. An OSError names `path`, not the partial file."""
    partial = path.with_name(f".{path.name}.part")
    try:
        write(partial)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
