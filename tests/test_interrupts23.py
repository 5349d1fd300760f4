"""A second Ctrl-C that lands inside a weakref callback or a finaliser, where Python cannot raise it, printed
"Exception ignored in ... Traceback ... KeyboardInterrupt" (seen once in CI's test_sigint_finalises_a_playable_file)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# An object whose finaliser raises KeyboardInterrupt, as the stop signals' handler does when a second signal comes
# while Python runs a WeakSet's _remove: Python reports it through sys.unraisablehook.
SCRIPT = """
import sys, weakref
sys.path.insert(0, {repo!r})
if {quiet}:
    from stream.interrupts import quiet_unraisable_interrupts
    quiet_unraisable_interrupts()

class Thing:
    pass

def interrupted(_):
    raise KeyboardInterrupt

def failed(_):
    raise ValueError("a real bug")

for callback in {callbacks}:
    thing = Thing()
    ref = weakref.ref(thing, callback)
    del thing
print("went on")
"""


def _run(quiet: bool, callbacks: str) -> subprocess.CompletedProcess:
    script = SCRIPT.format(repo=str(REPO), quiet=quiet, callbacks=callbacks)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_an_interrupt_python_cannot_raise_is_not_printed_as_a_traceback():
    done = _run(True, "[interrupted]")
    assert done.returncode == 0 and done.stdout.strip() == "went on"
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr


def test_python_prints_it_without_the_hook():
    """The case above is real: without the hook Python prints the traceback."""
    done = _run(False, "[interrupted]")
    assert "Traceback" in done.stderr and "KeyboardInterrupt" in done.stderr


def test_any_other_unraisable_error_is_still_reported():
    done = _run(True, "[interrupted, failed]")
    assert "ValueError: a real bug" in done.stderr and "KeyboardInterrupt" not in done.stderr


def test_the_depthcam_command_installs_the_hook(monkeypatch):
    import signal

    import stream.cli as cli

    installed = []
    monkeypatch.setattr(cli, "quiet_unraisable_interrupts", lambda: installed.append(True))
    monkeypatch.setattr(cli, "main", lambda restore_signals: 0)
    monkeypatch.setattr(cli, "live_workers", lambda: [])
    monkeypatch.setattr(cli, "fit_encoding", lambda stream: None)
    monkeypatch.setattr(sys, "stderr", sys.stderr)  # console_main wraps it: put back after the test
    handlers = {signum: signal.getsignal(signum) for signum in cli.STOP_SIGNALS}  # it ignores them before its exit
    try:
        cli.console_main()
    except SystemExit as exit_:
        assert exit_.code == 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert installed == [True]
