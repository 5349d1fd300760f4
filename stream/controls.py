"""What the live preview window's mouse and keys change while a run goes on."""
from __future__ import annotations

from dataclasses import dataclass

from kernels.dof import MAX_BLUR_LIMIT
from stream.config import RenderConfig
from stream.focus import FocusController

BLUR_STEP = 2.0  # px at the reference height per key press: fine enough to judge, quick to sweep
KEYS_HELP = "click: focus there · a: auto focus · + / -: more / less blur · q or Esc: quit"


@dataclass
class LiveControls:
    """Clicks and key presses from the window (the sink's thread), applied to the focus and the render
    settings the render stage reads each frame (a float assignment: no lock needed)."""

    focus: FocusController
    render: RenderConfig
    frame_height: int

    def click(self, x: int, y: int) -> None:
        self.focus.set_point(x, y)

    def key(self, code: int) -> None:
        actions = {"a": self.focus.clear_point, "+": self.more_blur, "=": self.more_blur, "-": self.less_blur}
        action = actions.get(chr(code)) if 0 <= code < 128 else None
        if action is not None:
            action()

    def more_blur(self) -> None:
        self.set_blur(self.render.blur + BLUR_STEP)

    def less_blur(self) -> None:
        self.set_blur(self.render.blur - BLUR_STEP)

    def set_blur(self, blur: float) -> None:
        """Clamped to what the renderer takes at this frame height."""
        largest = MAX_BLUR_LIMIT * self.render.reference_height / self.frame_height
        self.render.blur = min(max(blur, 0.0), largest)
