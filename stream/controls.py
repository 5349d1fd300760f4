"""What the live preview window's mouse and keys change while a run goes on."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from kernels.dof import MAX_BLUR_LIMIT
from stream.config import RenderConfig
from stream.console import notify
from stream.focus import FocusController

BLUR_STEP = 2.0  # px at the reference lines (the shorter side) per key press: fine enough to judge, quick to sweep
MAX_CONFIG_BLUR = 256.0  # render.blur's own limit (stream.config): a key sets no look that --blur refuses
KEYS_HELP = ("click: focus there · a: auto focus · + / -: more / less blur · p: save a picture · s: side by "
             "side, i: rate and latency (window only) · q or Esc: quit")


@dataclass
class LiveControls:
    """Clicks and key presses from the window (the sink's thread), applied to the focus and the render
    settings the render stage reads each frame (a float assignment: no lock needed)."""

    focus: FocusController
    render: RenderConfig
    frame_side: int  # the input frame's shorter side, which the blur scales with (stream.stages.blur_side)
    notify: Callable[[str], None] = field(default=notify)  # the window shows no numbers: each change says what it set
    shown_scale: float = 1.0  # the window's pictures against the input's (a large photo is shown at most 1280 wide)

    def click(self, x: int, y: int) -> None:
        self.focus.set_point(x, y)
        # said in the input's pixels, as --focus-point and render.focus_point take them: the line can be reused
        own_x, own_y = int((x + 0.5) / self.shown_scale), int((y + 0.5) / self.shown_scale)
        self.notify(f"focus on the point {own_x},{own_y} (a: back to auto focus)")

    def key(self, code: int) -> None:
        """An ASCII key code; letters in either case (Caps Lock on)."""
        actions = {"a": self.auto_focus, "+": self.more_blur, "=": self.more_blur, "-": self.less_blur}
        action = actions.get(chr(code).lower()) if 0 <= code < 128 else None
        if action is not None:
            action()

    def auto_focus(self) -> None:
        self.focus.auto()
        self.notify("auto focus (a face, else the nearest subject, not the floor)")

    def more_blur(self) -> None:
        self.set_blur(self.render.blur + BLUR_STEP)

    def less_blur(self) -> None:
        self.set_blur(self.render.blur - BLUR_STEP)

    def set_blur(self, blur: float) -> None:
        """Clamped to what the configuration and the renderer take at this frame size."""
        largest = min(MAX_CONFIG_BLUR, MAX_BLUR_LIMIT * self.render.reference_height / self.frame_side)
        self.render.blur = min(max(blur, 0.0), largest)
        limit = ": the most" if self.render.blur == largest else ": off" if self.render.blur == 0 else ""
        self.notify(f"blur {self.render.blur:g} px at {self.render.reference_height} lines "
                    f"(as --blur counts it){limit}")
