"""Numba's disk cache for this package's kernels, keyed on all their sources at once.

Numba checks a cached kernel only against the file it is defined in, yet the machine code it caches holds the code
of every jitted function it calls and the values of the globals it reads, from other modules too
(`dof_cpu_composite._composite` inlines `dof_cpu_common`'s helpers and constants, `dof.py`'s FOCUS_RADIUS...). An
edit to one of those, or an update that changes only them, left the callers running the old code from the cache:
wrong renders, no error. Here the stamp of every kernel of this package is a hash of all the package's `.py` files,
so a change to any recompiles them all (once; a checkout that rewrites files unchanged recompiles nothing).

`install()` runs when this module is first imported, which each module that defines cached kernels does before its
first one (not `kernels/__init__.py`: importing `kernels` loads no Numba): the locator is chosen as the decorator
runs. Numba's own locators stay in charge of where the files go (NUMBA_CACHE_DIR, the package's
__pycache__, a user-wide folder); only their stamp changes, for this package's files alone.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
_installed = False


@functools.lru_cache(maxsize=1)
def package_stamp() -> tuple[str, str]:
    """A digest of every `.py` file of this package, by name and content (~0.3 MB: read once a process)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return "depthcam-kernels", digest.hexdigest()


def _in_package(py_file: str) -> bool:
    try:
        return Path(py_file).resolve().parent == PACKAGE_DIR
    except OSError:
        return False


def _stamped(locator: type) -> type:
    """`locator` as Numba has it, for this package's files only, stamped with package_stamp()."""

    class PackageStamped(locator):  # type: ignore[misc, valid-type]
        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            return super().from_function(py_func, py_file) if _in_package(py_file) else None

        def get_source_stamp(self) -> Any:
            return package_stamp()

    PackageStamped.__name__ = PackageStamped.__qualname__ = f"PackageStamped{locator.__name__}"
    return PackageStamped


def install() -> None:
    """Put the stamped locators before Numba's own. Where Numba's internals are not as expected (another version),
    nothing changes: its per-file caching goes on as before."""
    global _installed
    if _installed:
        return
    try:
        from numba.core import caching
    except ImportError:
        return
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    # Numba 0.68 names them without the underscore; the older releases the project allows, with it
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
    found = [getattr(caching, name, None) or getattr(caching, f"_{name}", None) for name in names]
    if impl is None or not isinstance(getattr(impl, "_locator_classes", None), list) or None in found:
        return
    impl._locator_classes[:0] = [_stamped(locator) for locator in found]
    _installed = True


install()  # on import: each module that defines cached kernels imports this one first
