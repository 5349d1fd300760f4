"""README figure: scikit-image's astronaut photo, before and after the depth-of-field renderer.

The disparity is hand-made, not predicted: a person mask (GrabCut seeded with a hand-drawn outline of
the astronaut) at disparity 0.8 in focus, the helmet she holds a little nearer (1.0, slightly blurred
in front of the focus plane), the studio backdrop far (0.15 at the top to 0.25 at the bottom).
Writes docs/dof_before_after.jpg (side by side, < 200 KB). Usage: python bench/make_dof_figure.py
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import skimage.data

import kernels

FOCUS = 0.8
MAX_BLUR_PX = 14.0  # at 512 px tall: the same look as 13 px at 480p


def person_mask(image_bgr: np.ndarray) -> np.ndarray:
    mask = np.full(image_bgr.shape[:2], cv2.GC_BGD, np.uint8)
    outline = np.array([(10, 512), (12, 320), (45, 262), (105, 232), (112, 190), (140, 150), (148, 60), (185, 12),
                        (255, 8), (305, 50), (308, 110), (300, 150), (312, 195), (360, 255), (375, 330), (470, 330),
                        (512, 400), (512, 512)], np.int32)
    cv2.fillPoly(mask, [outline], cv2.GC_PR_FGD)
    mask[115:175, 150:178] = cv2.GC_PR_BGD  # backdrop seen between hair and suit
    mask[115:180, 270:300] = cv2.GC_PR_BGD
    body = np.array([(60, 512), (60, 320), (120, 270), (160, 200), (170, 80), (220, 40), (270, 70), (270, 170),
                     (300, 240), (330, 300), (330, 512)], np.int32)
    helmet = np.array([(300, 512), (320, 400), (380, 360), (450, 370), (500, 430), (505, 512)], np.int32)
    cv2.fillPoly(mask, [body, helmet], cv2.GC_FGD)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(image_bgr, mask, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
    person = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(person)
    person = (labels == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])).astype(np.uint8)
    return cv2.morphologyEx(person, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8)).astype(bool)


def hand_made_disparity(image_bgr: np.ndarray) -> np.ndarray:
    h, w = image_bgr.shape[:2]
    person = person_mask(image_bgr)
    yy, xx = np.mgrid[:h, :w]
    helmet = person & (((xx - 395) / 120.0) ** 2 + ((yy - 450) / 115.0) ** 2 <= 1.0) & (xx > 285)
    disparity = np.repeat(np.linspace(0.15, 0.25, h, dtype=np.float32)[:, None], w, axis=1)
    disparity[person] = FOCUS
    disparity[helmet] = 1.0
    # a refined depth map has soft, edge-aligned transitions, not a hard step
    return cv2.GaussianBlur(disparity, (0, 0), 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs" / "dof_before_after.jpg")
    args = parser.parse_args()
    before = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    disparity = hand_made_disparity(before)
    after = kernels.depth_of_field(before, disparity, FOCUS, MAX_BLUR_PX, highlight_boost=3.0, backend="cpu")
    panels = []
    for label, image in (("before", before), ("after: depthcam depth of field", after)):
        panel = image.copy()
        cv2.putText(panel, label, (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(panel, label, (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
        panels.append(panel)
    figure = np.concatenate([panels[0], np.full((before.shape[0], 8, 3), 255, np.uint8), panels[1]], axis=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for quality in (90, 85, 80, 75, 70, 60):
        ok, data = cv2.imencode(".jpg", figure, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and data.nbytes <= 200_000:
            break
    args.out.write_bytes(data.tobytes())
    print(f"wrote {args.out} ({data.nbytes / 1000:.0f} kB, JPEG quality {quality})")


if __name__ == "__main__":
    main()
