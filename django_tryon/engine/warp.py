"""Thin-plate-spline warping: move an RGBA cut-out so its key points land on target points."""

from __future__ import annotations

import cv2
import numpy as np

GRID_STEP = 4  # the spline is evaluated every GRID_STEP pixels, then interpolated


def _kernel(r2: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r2 > 0, r2 * np.log(r2), 0.0)


class ThinPlateSpline:
    """A 2-D thin-plate spline through control points (``source`` → ``target``), with smoothing."""

    def __init__(self, source: np.ndarray, target: np.ndarray, smoothing: float = 0.02) -> None:
        source = np.asarray(source, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64)
        self.offset = source.mean(axis=0)
        self.scale = float(np.abs(source - self.offset).max()) or 1.0
        self.control = (source - self.offset) / self.scale
        n = len(self.control)
        diff = self.control[:, None, :] - self.control[None, :, :]
        k = _kernel((diff**2).sum(-1)) + smoothing * np.eye(n)
        p = np.hstack([np.ones((n, 1)), self.control])
        a = np.zeros((n + 3, n + 3))
        a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
        b = np.zeros((n + 3, 2))
        b[:n] = target
        self.coefficients = np.linalg.lstsq(a, b, rcond=None)[0]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        pts = (np.asarray(points, dtype=np.float64) - self.offset) / self.scale
        diff = pts[:, None, :] - self.control[None, :, :]
        n = len(self.control)
        return (
            _kernel((diff**2).sum(-1)) @ self.coefficients[:n]
            + np.hstack([np.ones((len(pts), 1)), pts]) @ self.coefficients[n:]
        )


def warp_rgba(
    rgba: np.ndarray,
    source: np.ndarray,
    target: np.ndarray,
    out_shape: tuple[int, int],
    margin: float = 0.35,
    smoothing: float = 0.02,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Warp ``rgba`` so that ``source`` points (in ``rgba``) land on ``target`` points (in the output).

    Returns the warped patch and its box ``(x0, y0, x1, y1)`` in the output; pixels outside the box are
    untouched by definition. The inverse map (output → garment) is what the spline models.
    """
    h, w = out_shape
    lo, hi = target.min(axis=0), target.max(axis=0)
    pad = (hi - lo) * margin + 8
    x0, y0 = np.floor(np.maximum(lo - pad, 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(hi + pad, [w, h])).astype(int)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((0, 0, 4), np.uint8), (0, 0, 0, 0)
    inverse = ThinPlateSpline(target, source, smoothing=smoothing)
    gx = np.arange(x0, x1 + GRID_STEP, GRID_STEP, dtype=np.float64)
    gy = np.arange(y0, y1 + GRID_STEP, GRID_STEP, dtype=np.float64)
    grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    mapped = inverse(grid).reshape(len(gy), len(gx), 2).astype(np.float32)
    full = cv2.resize(
        mapped, ((len(gx) - 1) * GRID_STEP + 1, (len(gy) - 1) * GRID_STEP + 1), interpolation=cv2.INTER_LINEAR
    )
    full = full[: y1 - y0, : x1 - x0]
    patch = cv2.remap(
        rgba,
        full[..., 0],
        full[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    return patch, (int(x0), int(y0), int(x1), int(y1))
