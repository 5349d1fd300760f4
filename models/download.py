"""Downloads into the model cache: atomic (a partial download never takes the real name) and checked
against a sha256."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

CHUNK = 1 << 20


class ModelError(RuntimeError):
    """A model file is missing, corrupt, or not what it claims to be. The message says the fix."""


def cache_dir() -> Path:
    """The model cache: $DEPTHCAM_MODELS, else ~/.cache/depthcam."""
    override = os.environ.get("DEPTHCAM_MODELS")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "depthcam"


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


def download(url: str, destination: Path, sha256: str, *, progress: bool = True, timeout_s: float = 60.0) -> Path:
    """Fetch `url` to `destination`, verify its sha256, and only then move it into place."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, partial_name = tempfile.mkstemp(prefix=destination.name + ".", suffix=".part", dir=destination.parent)
    except OSError as exc:
        raise ModelError(f"cannot write into the model cache {destination.parent}: {exc.strerror or exc} "
                         f"(set DEPTHCAM_MODELS to a writable folder)") from None
    partial = Path(partial_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout_s)  # noqa: S310 (https addresses from the registry)
            except (urllib.error.URLError, OSError) as exc:
                raise ModelError(f"cannot download {destination.name} from {url}: {exc} "
                                 f"(check the network, or place the file in {destination.parent} by hand)") from exc
            with response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=f"downloading {destination.name}", disable=not progress, leave=False) as bar:
                    while block := response.read(CHUNK):
                        out.write(block)
                        bar.update(len(block))
        verify_sha256(partial, sha256, name=f"{destination.name} downloaded from {url}",
                      fix="nothing was kept; try again")
        shutil.move(str(partial), destination)
        return destination
    finally:
        partial.unlink(missing_ok=True)
