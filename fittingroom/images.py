"""Image decoding shared by every component.

Coordinates everywhere in fittingroom are pixels of the image *after* EXIF
orientation is applied: x to the right, y down, origin at the top-left corner.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

#: Neutral background that masked-out pixels are composited onto before
#: embedding: white, like the studio background of most product photos.
NEUTRAL_BACKGROUND = (255, 255, 255)


class ImageDecodeError(ValueError):
    """The bytes or file are not a decodable image."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_image(data: bytes, *, max_pixels: int | None = None, name: str = "image") -> Image.Image:
    """Decode image bytes, apply EXIF orientation, return RGB (or RGBA when it has alpha).

    Raises ImageDecodeError (a ValueError) when the bytes are not an image or the
    image has more than ``max_pixels`` pixels.
    """
    try:
        img = Image.open(io.BytesIO(data))
        if max_pixels is not None and img.width * img.height > max_pixels:
            raise ImageDecodeError(
                f"{name}: {img.width}x{img.height} exceeds the limit of {max_pixels} pixels"
            )
        img.load()
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"{name}: not a decodable image ({exc})") from exc
    oriented: Image.Image = ImageOps.exif_transpose(img)
    img = oriented  # type: ignore[assignment]
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    return img.convert("RGBA" if has_alpha else "RGB")


def load_image(path: str | Path, *, max_pixels: int | None = None) -> Image.Image:
    """Read and decode an image file (see ``decode_image``); raises ImageDecodeError or FileNotFoundError."""
    p = Path(path)
    return decode_image(p.read_bytes(), max_pixels=max_pixels, name=str(p))


def flatten_alpha(img: Image.Image, background: tuple[int, int, int] = NEUTRAL_BACKGROUND) -> Image.Image:
    """Composite an RGBA image over ``background``; RGB images are returned unchanged."""
    if img.mode == "RGB":
        return img
    rgba = img.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, background)
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def crop_box(img: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """Crop to ``(x0, y0, x1, y1)`` in pixels (x1, y1 exclusive).

    Raises ValueError when the box is empty or lies outside the image.
    """
    x0, y0, x1, y1 = box
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box {box} is empty: need x0 < x1 and y0 < y1")
    if x0 < 0 or y0 < 0 or x1 > img.width or y1 > img.height:
        raise ValueError(f"box {box} lies outside the {img.width}x{img.height} image")
    return img.crop((int(x0), int(y0), int(round(x1)), int(round(y1))))
