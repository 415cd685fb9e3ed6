"""Sleeves that hang down beside the torso in a flat-lay: find them and cut them from the torso.

A long-sleeved top or dress is usually photographed with its sleeves lying along its sides. Its
silhouette then looks like a wide box, and warping that box onto the torso shrinks the whole garment
to a patch on the chest. The sleeves show themselves where they end:

* **below the cuffs the silhouette narrows at once** (the cuffs lie beside the hips or the waist and
  the torso or skirt continues, narrower, below them), or
* **the centre opens below the torso's hem** (the sleeves are longer than the torso and hang on, apart).

Either way the row just below the cuffs gives the torso's width and the cuffs' inner edges. The sleeve
is then everything outside the line from the shoulder seam down through the armpit to the cuff's
inner corner, and the torso is what is left. Sleeves spread out to the sides are found by the key-point
code (``garment._keypoints``) and are not handled here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: A drop of the silhouette's width by this share within ``DROP_SPAN`` of the height marks the cuffs.
WIDTH_DROP = 0.18
DROP_SPAN = 0.04
#: Both edges must move inward by at least this share of the width (a drop on one side is a detail).
EDGE_DROP = 0.04
#: The armhole's depth below the shoulder seam, as a share of the torso's half width.
ARMHOLE_DEPTH = 0.8
#: Cross-sections measured along each sleeve, root to cuff.
SECTIONS = 5


@dataclass
class Sleeve:
    """One sleeve, in the garment cut-out's pixels. ``side`` is the image side ("l" or "r")."""

    side: str
    mask: np.ndarray  # bool, the cut-out's size: this sleeve's pixels
    sections: list[tuple[tuple[float, float], tuple[float, float]]]  # (outer, inner), root → cuff

    @property
    def length(self) -> float:
        """From the middle of the root to the middle of the cuff."""
        (o0, i0), (o1, i1) = self.sections[0], self.sections[-1]
        root = (np.add(o0, i0)) / 2
        cuff = (np.add(o1, i1)) / 2
        return float(np.linalg.norm(cuff - root))


def _extents(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    has = np.any(mask, axis=1)
    left = np.where(has, mask.argmax(axis=1), -1)
    right = np.where(has, mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1), -1)
    return has, left, right


def _runs(row: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.r_[0, row.astype(np.int8), 0])
    return list(zip(np.where(edges == 1)[0], np.where(edges == -1)[0] - 1, strict=True))


def _cuffs(
    mask: np.ndarray, kind: str
) -> tuple[int, dict[str, tuple[float, float]], tuple[float, float]] | None:
    """The cuffs' bottom row, each cuff's (outer x, inner x) and the torso's span just below them."""
    w = mask.shape[1]
    has, left, right = _extents(mask)
    rows = np.where(has)[0]
    y0, y1 = int(rows[0]), int(rows[-1])
    height = y1 - y0 + 1
    span = max(2, int(DROP_SPAN * height))
    width = np.where(has, right - left + 1, 0).astype(float)
    # The sleeves are longer than the torso: below the hem the centre is open and two runs hang on.
    # (One cuff may hang a little lower than the other: the last rows may hold a single run.)
    split = None
    for y in range(y1, y0 + int(0.5 * height), -1):
        runs = _runs(mask[y])
        if len(runs) >= 2 and runs[0][1] < w / 2 < runs[-1][0]:
            split = y
        elif split is not None or y1 - y > 0.03 * height:
            break
    if split is not None and y1 - split >= 0.04 * height:
        probe = split + max(1, (y1 - split) // 4)
        runs = _runs(mask[probe])
        (l_out, l_in), (r_in, r_out) = runs[0], runs[-1]
        sleeve_w = min(l_in - l_out, r_out - r_in)
        torso_w = r_in - l_in
        if sleeve_w >= 0.08 * torso_w:
            return (
                y1,
                {"l": (float(l_out), float(l_in)), "r": (float(r_out), float(r_in))},
                (float(l_in), float(r_in)),
            )
        return None
    # The sleeves end beside the torso: the silhouette narrows from both sides below the cuffs (a
    # dress's sleeves end by its hips, well above a flaring hem).
    lowest = 0.92 if kind == "top" else 0.7
    for y in range(y0 + int(lowest * height), y0 + int(0.25 * height), -1):
        below = min(y + span, y1)
        if width[y] <= 0 or width[below] <= 0:
            continue
        if (
            width[y] - width[below] >= WIDTH_DROP * width[y]
            and left[below] - left[y] >= EDGE_DROP * width[y]
            and right[y] - right[below] >= EDGE_DROP * width[y]
        ):
            # The cuffs' bottom: the last row as wide as the row above the drop (within a little).
            bottom = y
            while bottom + 1 < below and width[bottom + 1] >= width[y] * (1 - WIDTH_DROP / 2):
                bottom += 1
            torso = (float(left[below]), float(right[below]))
            return (
                bottom,
                {"l": (float(left[bottom]), torso[0]), "r": (float(right[bottom]), torso[1])},
                torso,
            )
    return None


def _section(
    mask: np.ndarray, point: np.ndarray, outward: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The sleeve's two edges on the line through ``point`` along ``outward`` (outer edge first)."""
    h, w = mask.shape
    steps = np.arange(-reach, reach + 1, 1.0)
    xs = np.clip(np.round(point[0] + outward[0] * steps).astype(int), 0, w - 1)
    ys = np.clip(np.round(point[1] + outward[1] * steps).astype(int), 0, h - 1)
    inside = mask[ys, xs]
    if not inside.any():
        return None
    centre = int(np.argmin(np.abs(steps)))
    if not inside[centre]:  # the axis left the sleeve (a curved sleeve): take the nearest inside pixel
        centre = int(np.flatnonzero(inside)[np.argmin(np.abs(np.flatnonzero(inside) - centre))])
    lo = hi = centre
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    while hi < len(steps) - 1 and inside[hi + 1]:
        hi += 1
    return point + outward * steps[hi], point + outward * steps[lo]


def find_hanging_sleeves(mask: np.ndarray, kind: str) -> dict[str, Sleeve]:
    """The sleeves lying along the sides of a top or one-piece flat-lay (``{}`` when there are none)."""
    if kind == "bottom" or not mask.any():
        return {}
    found = _cuffs(mask, kind)
    if found is None:
        return {}
    cuff_y, cuffs, (torso_l, torso_r) = found
    h, w = mask.shape
    has, _, _ = _extents(mask)
    top_row = int(np.where(has)[0][0])
    centre = (torso_l + torso_r) / 2
    # The chest is a little wider than a dress's waist; a top's hem is about as wide as its chest.
    half = (torso_r - torso_l) / 2 * (1.1 if kind == "one_piece" else 1.0)
    sleeves: dict[str, Sleeve] = {}
    for side, sign in (("l", -1), ("r", 1)):
        outer_x, inner_x = cuffs[side]
        seam_x = float(np.clip(centre + sign * half, 0, w - 1))
        column = mask[:, int(seam_x)]
        seam = np.array([seam_x, float(np.argmax(column)) if column.any() else float(top_row)])
        armpit = seam + np.array([0.0, ARMHOLE_DEPTH * half])
        cuff_in = np.array([inner_x, float(cuff_y)])
        if armpit[1] >= cuff_y - 2 or abs(outer_x - inner_x) < 3:
            return {}
        # Everything outside seam → armpit → cuff (and straight down from the cuff), above the cuff.
        edge = 0.0 if side == "l" else float(w - 1)
        region = np.zeros((h, w), np.uint8)
        polygon = [
            (edge, 0.0),
            (seam_x, 0.0),
            tuple(seam),
            tuple(armpit),
            tuple(cuff_in),
            (inner_x, float(h - 1)),
            (edge, float(h - 1)),
        ]
        cv2.fillPoly(region, [np.round(np.array(polygon)).astype(np.int32)], 1)
        part = (region > 0) & mask
        part[cuff_y + 1 :] = False
        if part.sum() < 0.02 * mask.sum():
            return {}
        root, cuff = (seam + armpit) / 2, np.array([(outer_x + inner_x) / 2, float(cuff_y)])
        axis = cuff - root
        length = float(np.linalg.norm(axis)) or 1.0
        normal = np.array([axis[1], -axis[0]]) / length
        if np.sign(normal[0]) != sign:  # the outward normal points away from the torso
            normal = -normal
        sections = [(tuple(seam), tuple(armpit))]
        for t in np.linspace(0, 1, SECTIONS)[1:-1]:
            cut = _section(part, root + axis * t, normal, reach=0.5 * w)
            if cut is not None:
                sections.append((tuple(cut[0]), tuple(cut[1])))
        sections.append(((outer_x, float(cuff_y)), (inner_x, float(cuff_y))))
        sleeves[side] = Sleeve(side, part, sections)
    lengths = sorted(sleeve.length for sleeve in sleeves.values())
    if lengths[0] < 0.75 * lengths[1]:  # a garment's two sleeves match; these are something else
        return {}
    return sleeves
