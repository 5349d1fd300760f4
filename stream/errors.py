"""Errors a user can act on: the CLI prints their message as one line and exits non-zero."""
from __future__ import annotations

import errno


class UserError(Exception):
    """Bad input or configuration. The message names the problem and the fix."""

    exit_code = 2


class StopAfter(Exception):
    """Raised by a stage whose input turned bad part-way through a batch: its frames `done` (the good ones
    before, in order) still go on to the sink, then the run ends with `cause`, as when an input file turns
    unreadable part-way."""

    def __init__(self, done: list, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.done = done
        self.cause = cause


class PipelineError(Exception):
    """A stage failed while running; the pipeline stopped and finalised its outputs."""

    exit_code = 1

    def __init__(self, stage: str, cause: BaseException) -> None:
        self.stage = stage
        self.cause = cause
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:  # the commonest failure of a long run
            where = f" for {cause.filename}" if cause.filename else ""
            super().__init__(f"the disk is full{where}; free some space, or write the output to another disk")
        elif stage == "sink" and isinstance(cause, OSError) and cause.errno == errno.EPIPE and cause.filename:
            # a named pipe (mkfifo out.mkv) whose reader stopped: no disk to check
            super().__init__(f"cannot write {cause.filename}: the program reading it stopped reading (broken pipe); "
                             f"keep it reading until the run ends, or write a file")
        elif stage == "sink" and isinstance(cause, OSError) and cause.filename and cause.strerror:
            # EIO of a USB disk pulled out, EROFS of a file system turned read-only: said as the system says it
            super().__init__(f"cannot write {cause.filename}: {cause.strerror}; check the disk, or write the output "
                             f"to another one")
        else:
            super().__init__(f"stage '{stage}' failed: {cause.__class__.__name__}: {cause}")
