"""Fit a result into the provider's frame (576×1024, 720×1280) without inventing anything.

The frame is reached by cropping around the person where the photo allows it; what is still missing
is filled with the photo's own background, estimated from the non-person pixels near the border and
blurred, never by repeating the edge rows (which stretches hair or feet that touch the frame).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Room kept around the person when cropping, as a share of the person's height.
CROP_MARGIN = 0.03


def _span(lo: float, hi: float, length: int, total: int) -> tuple[int, int]:
    """A window of ``length`` pixels within ``0..total`` centred on ``lo..hi`` (clamped to the edges)."""
    start = round((lo + hi) / 2 - length / 2)
    start = min(max(start, 0), total - length)
    return start, start + length


def crop_box(person: np.ndarray, aspect: float) -> tuple[int, int, int, int]:
    """The largest box of the photo, as close to ``aspect`` (width ÷ height) as the person allows.

    Only the axis that is too long is cropped, and never into the person (plus ``CROP_MARGIN``).
    Returns ``(x0, y0, x1, y1)``.
    """
    h, w = person.shape
    ys, xs = np.nonzero(person)
    if len(xs) == 0:
        x_lo, x_hi, y_lo, y_hi = 0, w, 0, h
    else:
        margin = CROP_MARGIN * (ys.max() - ys.min() + 1)
        x_lo, x_hi = max(0, xs.min() - margin), min(w, xs.max() + 1 + margin)
        y_lo, y_hi = max(0, ys.min() - margin), min(h, ys.max() + 1 + margin)
    if w / h > aspect:  # too wide: crop columns, down to the person's width
        width = round(max(h * aspect, x_hi - x_lo))
        x0, x1 = _span(x_lo, x_hi, min(width, w), w)
        return x0, 0, x1, h
    height = round(max(w / aspect, y_hi - y_lo))
    y0, y1 = _span(y_lo, y_hi, min(height, h), h)
    return 0, y0, w, y1


def background_fill(
    rgb: np.ndarray, known: np.ndarray, shape: tuple[int, int], offset: tuple[int, int]
) -> np.ndarray:
    """A smooth canvas of ``shape`` estimated from the ``known`` pixels of ``rgb`` placed at ``offset``.

    Push-pull (a pyramid of normalised averages): each missing pixel takes the blurred colour of the
    nearest known ones, so padding beside a wall stays that wall's colour and padding above a head
    takes the sky around it, not the hair.
    """
    height, width = shape
    top, left = offset
    values = np.zeros((height, width, 3), np.float32)
    weight = np.zeros((height, width), np.float32)
    h, w = rgb.shape[:2]
    values[top : top + h, left : left + w] = rgb * known[..., None]
    weight[top : top + h, left : left + w] = known
    if not weight.any():  # nothing but person: a neutral grey from the photo's median
        return np.broadcast_to(np.median(rgb.reshape(-1, 3), axis=0), (height, width, 3)).astype(np.float32)
    levels: list[tuple[np.ndarray, np.ndarray]] = [(values, weight)]
    while min(levels[-1][1].shape) > 2:
        v, wt = levels[-1]
        levels.append((cv2.pyrDown(v), cv2.pyrDown(wt)))
    v, wt = levels[-1]
    estimate = np.where(wt[..., None] > 1e-6, v / np.maximum(wt, 1e-6)[..., None], 0).astype(np.float32)
    if not (wt > 1e-6).all():
        known_mean = (v.reshape(-1, 3).sum(axis=0) / max(float(wt.sum()), 1e-6)).astype(np.float32)
        estimate[wt <= 1e-6] = known_mean
    for v, wt in reversed(levels[:-1]):
        up = cv2.pyrUp(estimate, dstsize=(wt.shape[1], wt.shape[0]))
        own = v / np.maximum(wt, 1e-6)[..., None]
        trust = np.clip(wt * 4, 0, 1)[..., None]
        estimate = own * trust + up * (1 - trust)
    return estimate


def fit_frame(rgb: np.ndarray, person: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` cropped around the ``person`` mask, scaled into ``size`` (width, height) and padded
    with the blurred background where the crop could not reach the frame's aspect."""
    width, height = size
    x0, y0, x1, y1 = crop_box(person, width / height)
    rgb, person = rgb[y0:y1, x0:x1], person[y0:y1, x0:x1]
    h, w = rgb.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LANCZOS4
    fitted = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
    if (new_w, new_h) == (width, height):
        return fitted
    person_small = cv2.resize(person.astype(np.uint8), (new_w, new_h), interpolation=cv2.INTER_NEAREST) > 0
    # Known background: non-person pixels, kept clear of the person by a band (soft hair edges).
    band = max(3, round(0.01 * max(new_w, new_h)))
    grown = cv2.dilate(person_small.astype(np.uint8), np.ones((2 * band + 1, 2 * band + 1), np.uint8)) > 0
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas = background_fill(
        fitted.astype(np.float32), (~grown).astype(np.float32), (height, width), (top, left)
    )
    canvas = cv2.GaussianBlur(canvas, (0, 0), max(2.0, 0.01 * height))
    canvas[top : top + new_h, left : left + new_w] = fitted
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
