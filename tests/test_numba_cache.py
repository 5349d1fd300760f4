"""Numba's disk cache keyed on all of the kernels' sources (kernels/numba_cache.py): a kernel that calls another
module's jitted function, or reads its constant, is recompiled when only that module changes, not loaded stale."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parents[1] / "kernels"

CALLEE = """
import kernels.numba_cache  # noqa: F401
from numba import njit

SCALE = {scale}


@njit(cache=True)
def scaled(x):
    return x * SCALE
"""
CALLER = """
import kernels.numba_cache  # noqa: F401
from numba import njit

from kernels.callee import scaled


@njit(cache=True)
def twice_scaled(x):
    return 2.0 * scaled(x)
"""
RUN = ("from numba.core.registry import CPUDispatcher\n"
       "from kernels.caller import twice_scaled\n"
       "print(twice_scaled(1.0), sum(twice_scaled.stats.cache_misses.values()))\n")


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of the kernels package (its own files, so its digest is this test's) with a caller and a callee."""
    copy = tmp_path / "src" / "kernels"
    copy.mkdir(parents=True)
    for name in ("__init__.py", "backend.py", "numba_cache.py"):
        shutil.copy(KERNELS / name, copy / name)
    (copy / "callee.py").write_text(CALLEE.format(scale=3.0))
    (copy / "caller.py").write_text(CALLER)
    return copy


def run(package: Path, cache: Path) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(package.parent), "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=300,
                          cwd=package.parent)
    assert done.returncode == 0, done.stderr
    value, misses = done.stdout.split()
    return float(value), int(misses)


def test_a_change_in_a_called_module_recompiles_its_caller(package, tmp_path):
    cache = tmp_path / "cache"
    assert run(package, cache) == (6.0, 1)  # compiled, and cached
    assert run(package, cache) == (6.0, 0)  # loaded from the cache
    (package / "callee.py").write_text(CALLEE.format(scale=5.0))
    # Numba's own stamp (the caller's file alone) loaded the caller as compiled against the old callee: 6.0
    assert run(package, cache) == (10.0, 1)


def test_a_file_rewritten_unchanged_recompiles_nothing(package, tmp_path):
    cache = tmp_path / "cache"
    run(package, cache)
    text = (package / "callee.py").read_text()
    (package / "callee.py").unlink()
    (package / "callee.py").write_text(text)  # a checkout or an install that writes it again: a new mtime
    assert run(package, cache) == (6.0, 0)


def test_files_outside_the_package_keep_numba_s_own_locators():
    from numba.core import caching

    import kernels.numba_cache as numba_cache

    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
    stamped = [cls for cls in impl._locator_classes if cls.__name__.startswith("PackageStamped")]
    assert len(stamped) == 3 and impl._locator_classes[:3] == stamped  # installed once, first
    assert all(cls.from_function(test_files_outside_the_package_keep_numba_s_own_locators, __file__) is None
               for cls in stamped)
    in_tree = stamped[1].from_function(numba_cache.install, str(numba_cache.PACKAGE_DIR / "dof_cpu_common.py"))
    assert in_tree.get_source_stamp() == numba_cache.package_stamp()  # a package file's stamp: the whole package's
