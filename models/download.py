"""Downloads into the model cache: resumable, atomic (a partial download never takes the real name)
and checked against a sha256."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

from stream.console import ProgressBar

CHUNK = 1 << 20
DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # a full disk, a quota reached


class ModelError(RuntimeError):
    """A model file is missing, corrupt, or not what it claims to be. The message says the fix."""


def cache_dir() -> Path:
    """The model cache: $DEPTHCAM_MODELS, else $XDG_CACHE_HOME/depthcam (the XDG rule: an absolute path only),
    else ~/.cache/depthcam on every system (as PyTorch Hub's and Hugging Face's caches)."""
    override = os.environ.get("DEPTHCAM_MODELS")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return Path(xdg) / "depthcam" if xdg and os.path.isabs(xdg) else Path.home() / ".cache" / "depthcam"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, *, name: str | None = None,
                  fix: str = "delete it and fetch again") -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ModelError(f"checksum mismatch for {name or path.name}: expected sha256 {expected}, got {actual} "
                         f"(the file is corrupt or not the published one; {fix})")


# Whether this process downloaded a model: it is online, so a default run's optional model (the person mask's, for
# refine.person_mask: auto) may be fetched too; otherwise auto does not go to the network (a blocked one held each
# default run up to the download's time-out, silently).
DOWNLOADED = False


def download(url: str, destination: Path, sha256: str, *, progress: bool = True, timeout_s: float = 60.0,
             otherwise: str = "") -> Path:
    """Fetch `url` to `destination`, verify its sha256, and only then move it into place.

    The bytes go to `destination.part` first. A download that breaks off keeps them, and the next call
    asks the server for the rest (an HTTP Range request) instead of starting a 472 MB archive over;
    a server that ignores the range sends the whole file again. A checksum mismatch deletes them.
    `otherwise`: another way to the model, added to the message where the server cannot be reached."""
    partial = destination.with_name(destination.name + ".part")
    with cache_lock(destination):  # two first runs at once: the second waits, then finds the file in place
        if destination.is_file():
            verify_sha256(destination, sha256)
            return destination
        return _download_locked(url, destination, partial, sha256, progress, timeout_s, otherwise)


@contextlib.contextmanager
def cache_lock(destination: Path) -> Iterator[None]:
    """Hold the cache's lock on `destination` (a hidden `.NAME.lock` beside it), made with its folder: one
    process at a time writes that file, the others wait and then find it in place."""
    if destination.parent.exists() and not destination.parent.is_dir():
        raise ModelError(f"the model cache {destination.parent} is a file, not a folder "
                         f"(set DEPTHCAM_MODELS to a folder)")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        lock = open(destination.with_name(f".{destination.name}.lock"), "a+b")  # noqa: SIM115 (held below)
    except OSError as exc:
        raise ModelError(f"cannot write into the model cache {destination.parent}: {exc.strerror or exc} "
                         f"(set DEPTHCAM_MODELS to a writable folder)") from None
    with lock, _held(lock):
        yield


@contextlib.contextmanager
def _held(lock) -> Iterator[None]:
    """An exclusive lock on the open file `lock`: flock on POSIX (let go when the file closes), a one-byte region
    lock on Windows, which must be let go before the file closes."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is not None:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield
        return
    import msvcrt

    lock.seek(0)  # regions count from the file's position; the lock file stays empty, a region past its end is fine
    while True:
        try:
            msvcrt.locking(lock.fileno(), msvcrt.LK_LOCK, 1)
            break
        except OSError as exc:  # LK_LOCK gives up after 10 tries a second apart; a conversion takes longer
            if exc.errno != errno.EDEADLOCK:
                raise
    try:
        yield
    finally:
        lock.seek(0)
        msvcrt.locking(lock.fileno(), msvcrt.LK_UNLCK, 1)


def _download_locked(url: str, destination: Path, partial: Path, sha256: str, progress: bool,
                     timeout_s: float, otherwise: str) -> Path:
    fix = f"check the network, or place the file in {destination.parent} by hand{otherwise}"
    offset = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)  # noqa: S310 (addresses from the registry)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:  # 416: nothing left after `offset`: the part is whole, check it
            raise ModelError(f"cannot download {destination.name} from {url}: {exc} ({fix})") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ModelError(f"cannot download {destination.name} from {url}: {exc} ({fix})") from None
    else:
        with response:
            _receive(response, partial, offset, destination.name, progress)
    try:
        verify_sha256(partial, sha256, name=f"{destination.name} downloaded from {url}",
                      fix="nothing was kept; try again")
    except ModelError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(destination)
    global DOWNLOADED
    DOWNLOADED = True
    return destination


def _receive(response, partial: Path, offset: int, name: str, progress: bool) -> None:
    """Write the response body to `partial`: appended where the server sent the asked-for rest (206)."""
    resumed = offset > 0 and getattr(response, "status", None) == 206
    if not resumed:
        offset = 0
    length = int(response.headers.get("Content-Length") or 0)
    received = 0
    try:
        with open(partial, "ab" if resumed else "wb") as out, \
                ProgressBar(total=offset + length or None, initial=offset, unit="B", unit_scale=True,
                            unit_divisor=1024, desc=f"downloading {name}", disable=not progress, leave=False) as bar:
            while block := response.read(CHUNK):
                out.write(block)
                received += len(block)
                bar.update(len(block))
        if length and received < length:  # read(n) gives b"" when the server hangs up early; no exception
            raise http.client.IncompleteRead(b"", length - received)
    except (OSError, http.client.HTTPException) as exc:  # a reset connection, a timeout, a full disk
        have = partial.stat().st_size if partial.is_file() else 0
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:  # again would break off again
            raise ModelError(f"the download of {name} stopped after {have / 1e6:.0f} MB: {exc.strerror} in "
                             f"{partial.parent}; free some space (or set DEPTHCAM_MODELS to a folder on another "
                             f"disk), then run the same command again to resume it") from None
        raise ModelError(f"the download of {name} broke off after {have / 1e6:.0f} MB "
                         f"({exc.__class__.__name__}); run the same command again to resume it") from None
