"""bench/bench_dof.py --compare-rev REV: a revision's whole kernels/ package, renamed, beside the current one. A copy of
dof_cpu.py alone (--compare OLD.py) imports the current dof_cpu_*.py modules since the split, so it compared the
current passes with themselves."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import bench_dof

REPO = Path(__file__).resolve().parents[1]


def test_imports_of_kernels_are_renamed_and_nothing_else():
    source = ("import kernels.numba_cache  # noqa: every kernel's stamp\nfrom kernels.dof import plan\n"
              "    from kernels import dof_cpu\nimport numpy as np\n# see kernels.dof\nx = 'kernels/dof.py'\n")
    assert bench_dof.rename_imports(source, "kernels_abc") == (
        "import kernels_abc.numba_cache  # noqa: every kernel's stamp\nfrom kernels_abc.dof import plan\n"
        "    from kernels_abc import dof_cpu\nimport numpy as np\n# see kernels.dof\nx = 'kernels/dof.py'\n")


@pytest.fixture
def git_checkout():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and this repository's history")


def test_a_revision_s_package_imports_only_itself(git_checkout, tmp_path, monkeypatch):
    monkeypatch.setattr(bench_dof.tempfile, "gettempdir", lambda: str(tmp_path))
    name, root = bench_dof.revision_package("HEAD")
    package = root / name
    assert name.startswith("kernels_") and (package / "dof_cpu.py").is_file() and (package / "__init__.py").is_file()
    for path in package.glob("*.py"):
        for line in path.read_text().splitlines():
            assert not re.match(r"\s*(from|import)\s+kernels\b", line), (path, line)
    # importable by itself, in a process that never imported the current package
    check = (f"import sys; sys.path.insert(0, {str(root)!r}); import {name}.dof as d; "
             f"assert 'kernels' not in sys.modules and d.__name__ == '{name}.dof'")
    subprocess.run([sys.executable, "-c", check], check=True, cwd=tmp_path)


def test_an_unknown_revision_is_one_clear_line(git_checkout):
    with pytest.raises(bench_dof.RevisionError, match="not a revision"):
        bench_dof.revision_package("no-such-revision-here")


def test_the_command_line_refuses_an_unknown_revision(git_checkout, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bench_dof.py", "--compare-rev", "no-such-revision-here"])
    with pytest.raises(SystemExit) as exit_info:
        bench_dof.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "not a revision" in err and "Traceback" not in err
