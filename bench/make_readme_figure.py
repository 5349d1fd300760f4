"""Makes the README's picture: a real photo (scikit-image's astronaut), its portrait render and the
refined disparity, side by side, through the real pipeline with the default preset.

Usage: DEPTHCAM_MODELS=../shared/models python bench/make_readme_figure.py [docs/astronaut_portrait.jpg]
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
from skimage import data

from stream.app import build
from stream.config import load_config
from stream.sinks import NullSink, compose


class KeepLast(NullSink):
    frame = None

    def write(self, frame) -> None:
        super().write(frame)
        self.frame = frame


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "astronaut.png"
        cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
        sink = KeepLast()
        build(load_config("default", {"output.progress": False}), str(photo), None, sink=sink).pipeline.run()
    picture = compose(sink.frame, side_by_side=True)
    picture = cv2.resize(picture, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB), focus {sink.frame.focus:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/astronaut_portrait.jpg"))
