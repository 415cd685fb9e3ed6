"""Image input helpers shared by the engine's modules."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ImageInput = Image.Image | bytes | str | Path | np.ndarray


def to_rgb_array(image: ImageInput) -> np.ndarray:
    """Any accepted input → an upright HxWx3 uint8 RGB array (EXIF rotation applied, alpha on white)."""
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        return np.ascontiguousarray(array[..., :3].astype(np.uint8))
    if isinstance(image, (bytes, bytearray)):
        image = Image.open(io.BytesIO(image))
    elif isinstance(image, (str, Path)):
        image = Image.open(image)
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
