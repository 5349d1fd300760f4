"""A synthetic portrait scene with exact ground-truth disparity, for tests and benchmarks.

A textured, shaded head-and-shoulders subject moves in front of a textured room (a back wall and
a floor receding towards it). Every frame carries its true disparity (larger = nearer, in [0, 1]).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

WALL_DISPARITY = 0.12
FLOOR_NEAR_DISPARITY = 0.45
SUBJECT_DISPARITY = 0.85
SUBJECT_RELIEF = 0.08  # the face bulges towards the camera by this much disparity


@dataclass(frozen=True)
class SyntheticScene:
    width: int = 640
    height: int = 480
    seed: int = 0

    def __post_init__(self) -> None:
        if self.width < 32 or self.height < 32:
            raise ValueError(f"synthetic size {self.width}x{self.height} is too small (at least 32x32)")


class SyntheticPortrait:
    """Renders frame `t` of the scene: image (BGR uint8) and ground-truth disparity (float32)."""

    def __init__(self, scene: SyntheticScene) -> None:
        self.scene = scene
        w, h = scene.width, scene.height
        rng = np.random.default_rng(scene.seed)
        self._horizon = int(h * 0.62)
        self._background, self._background_disparity = self._room(w, h, rng)
        self._skin = self._texture(rng, (h, w), base=(120, 150, 205), amplitude=18, scale=0.02 * max(w, h))
        self._cloth = self._texture(rng, (h, w), base=(120, 60, 40), amplitude=40, scale=0.01 * max(w, h))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self._yy, self._xx = yy, xx

    @staticmethod
    def _texture(rng: np.random.Generator, shape: tuple[int, int], base: tuple[int, int, int],
                 amplitude: float, scale: float) -> np.ndarray:
        # Band-limited noise: a few octaves of blurred white noise, so the guide has real texture.
        h, w = shape
        noise = np.zeros((h, w), np.float32)
        for octave in range(3):
            sigma = max(scale / (2 ** octave), 0.8)
            layer = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigma)
            noise += layer / (layer.std() + 1e-6) / (octave + 1)
        noise /= noise.std() + 1e-6
        channels = [np.clip(b + amplitude * noise * (0.8 + 0.2 * i), 0, 255) for i, b in enumerate(base)]
        return np.stack(channels, axis=-1).astype(np.float32)

    def _room(self, w: int, h: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        wall = self._texture(rng, (h, w), base=(170, 185, 190), amplitude=14, scale=0.03 * max(w, h))
        # Wall panels: vertical stripes give the filter strong edges that are NOT depth edges.
        panel = ((xx // max(w // 8, 1)) % 2 == 0)[..., None]
        wall = np.where(panel, wall * 0.92, wall)
        floor = self._texture(rng, (h, w), base=(60, 90, 125), amplitude=25, scale=0.01 * max(w, h))
        # Floor boards converge towards a vanishing point: a perspective cue for monocular networks.
        t = np.clip((yy - self._horizon) / max(h - self._horizon, 1), 0, 1)
        vanishing_x = w / 2
        board_coord = (xx - vanishing_x) / np.maximum(t, 0.05)
        boards = (np.floor(board_coord / (w / 10)) % 2 == 0)[..., None]
        floor = np.where(boards, floor * 0.85, floor) * (0.7 + 0.3 * t[..., None])
        is_floor = (yy >= self._horizon)[..., None]
        image = np.where(is_floor, floor, wall)
        disparity = np.where(yy >= self._horizon,
                             WALL_DISPARITY + (FLOOR_NEAR_DISPARITY - WALL_DISPARITY) * t,
                             WALL_DISPARITY).astype(np.float32)
        # Soft ambient occlusion near the corner, as in a real room.
        image *= (0.85 + 0.15 * np.clip(np.abs(yy - self._horizon) / (0.1 * h), 0, 1))[..., None]
        return image, disparity

    def subject_pose(self, t: int) -> tuple[float, float, float]:
        """Centre x, centre y of the head, and scale, at frame t (a slow sway and a gentle zoom)."""
        w, h = self.scene.width, self.scene.height
        cx = w * (0.5 + 0.18 * math.sin(2 * math.pi * t / 120))
        cy = h * (0.42 + 0.02 * math.sin(2 * math.pi * t / 90))
        scale = 1.0 + 0.08 * math.sin(2 * math.pi * t / 150)
        return cx, cy, scale

    def render(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        w, h = self.scene.width, self.scene.height
        cx, cy, scale = self.subject_pose(t)
        rx, ry = 0.11 * w * scale, 0.17 * h * scale
        sx, sy = 0.28 * w * scale, cy + 0.9 * ry
        # Work inside the subject's bounding box only: the room behind it is precomputed.
        x0, x1 = max(int(cx - sx) - 1, 0), min(int(cx + sx) + 2, w)
        y0 = max(int(cy - ry) - 1, 0)
        image = self._background.copy()
        disparity = self._background_disparity.copy()
        if x1 <= x0 or y0 >= h:
            return np.clip(image, 0, 255).astype(np.uint8), disparity
        xx, yy = self._xx[y0:, x0:x1], self._yy[y0:, x0:x1]
        head_u, head_v = (xx - cx) / rx, (yy - cy) / ry
        head_r2 = head_u ** 2 + head_v ** 2
        head = head_r2 <= 1.0
        # Shoulders: a wide rounded block below the head, down to the bottom of the frame.
        body_u = (xx - cx) / sx
        body_v = (yy - sy) / (0.35 * h)
        body = (yy >= sy) & (body_u ** 2 + np.clip(1 - body_v, 0, None) ** 2 * 0.5 <= 1.0)
        subject = head | body
        # Lambertian shading of an ellipsoid lit from the upper left: the shape cue a network uses.
        nz = np.sqrt(np.clip(1.0 - head_r2, 0.0, 1.0))
        light = (-0.4, -0.5, 0.77)
        shade_head = np.clip(0.35 + 0.75 * (light[0] * head_u + light[1] * head_v + light[2] * nz), 0.25, 1.2)
        body_nz = np.sqrt(np.clip(1.0 - body_u ** 2, 0.0, 1.0))
        shade_body = np.clip(0.45 + 0.6 * (light[0] * body_u + light[2] * body_nz), 0.3, 1.1)
        box = (slice(y0, h), slice(x0, x1))
        region = image[box]
        region[:] = np.where(head[..., None], self._skin[box] * shade_head[..., None], region)
        region[:] = np.where((body & ~head)[..., None], self._cloth[box] * shade_body[..., None], region)
        subject_disparity = np.where(head, SUBJECT_DISPARITY + SUBJECT_RELIEF * nz,
                                     SUBJECT_DISPARITY + 0.5 * SUBJECT_RELIEF * body_nz)
        disparity[box] = np.where(subject, subject_disparity, disparity[box])
        return np.clip(image, 0, 255).astype(np.uint8), disparity.astype(np.float32, copy=False)
