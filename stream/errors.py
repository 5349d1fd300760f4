"""Errors a user can act on: the CLI prints their message as one line and exits non-zero."""
from __future__ import annotations


class UserError(Exception):
    """Bad input or configuration. The message names the problem and the fix."""

    exit_code = 2


class PipelineError(Exception):
    """A stage failed while running; the pipeline stopped and finalised its outputs."""

    exit_code = 1

    def __init__(self, stage: str, cause: BaseException) -> None:
        self.stage = stage
        self.cause = cause
        super().__init__(f"stage '{stage}' failed: {cause.__class__.__name__}: {cause}")
