"""Parsing a person photo: cut out what the person wears, to try it on again ("keep my own clothes")."""

from __future__ import annotations

import io


def extract_clothes(image: bytes, kind: str) -> tuple[bytes, bytes, list[int]] | None:
    """The region of a person photo that one kind of clothing covers: ``"upper"``, ``"lower"`` or ``"dress"``.

    Returns (RGBA PNG of the region, RGB PNG of it on white: a flat-lay stand-in the try-on takes as a
    garment, the box ``[x1, y1, x2, y2]``), or None when no body (or too little of one) is found. It is
    the engine's stand-in for the provider's parsing model (``aitryon-parsing-v1``), from the body's
    landmarks and mask.
    """
    import numpy as np
    from PIL import Image

    from . import body as B
    from .body import find_body

    rgb = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
    body = find_body(rgb)
    if body is None or not body.landmarks[:, 2].any():
        return None
    ys_top = {
        "upper": (B.SHOULDER_L, B.SHOULDER_R),
        "lower": (B.HIP_L, B.HIP_R),
        "dress": (B.SHOULDER_L, B.SHOULDER_R),
    }[kind]
    ys_bottom = {"upper": (B.HIP_L, B.HIP_R), "lower": (B.ANKLE_L, B.ANKLE_R), "dress": (B.KNEE_L, B.KNEE_R)}[
        kind
    ]
    y0 = int(min(body.landmarks[i, 1] for i in ys_top) - 0.05 * body.torso_length)
    y1 = int(
        max(body.landmarks[i, 1] for i in ys_bottom) + (0.1 if kind == "upper" else 0.02) * body.torso_length
    )
    y0, y1 = max(0, y0), min(rgb.shape[0], y1)
    mask = body.binary_mask()
    band = np.zeros_like(mask)
    band[y0:y1] = mask[y0:y1]
    if band.sum() < 0.002 * mask.size:
        return None
    ys, xs = np.where(band)
    box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    crop = rgb[box[1] : box[3], box[0] : box[2]]
    alpha = (band[box[1] : box[3], box[0] : box[2]] * 255).astype(np.uint8)
    rgba_buf, rgb_buf = io.BytesIO(), io.BytesIO()
    Image.fromarray(np.dstack([crop, alpha])).save(rgba_buf, "PNG")
    white = np.where(alpha[..., None] > 0, crop, 255).astype(np.uint8)
    Image.fromarray(white).save(rgb_buf, "PNG")
    return rgba_buf.getvalue(), rgb_buf.getvalue(), box
