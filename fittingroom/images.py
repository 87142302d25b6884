"""Image decoding shared by every component.

Coordinates everywhere in fittingroom are pixels of the image *after* EXIF
orientation is applied: x to the right, y down, origin at the top-left corner.

Every decode is bounded before any pixel memory is allocated: ``decode_image`` reads the
dimensions from the header (PIL opens lazily) and refuses too many bytes, too many pixels, a
too long side or a too thin strip (``ImageLimits``) before ``load()``; PIL's own
decompression-bomb check is mapped to ``ImageDecodeError`` too. Only common raster formats
are decoded (no EPS/PostScript, which PIL hands to Ghostscript).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: A Python object repr inside an exception message (meaningless to a person).
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")

#: Neutral background that masked-out pixels are composited onto before
#: embedding: white, like the studio background of most product photos.
NEUTRAL_BACKGROUND = (255, 255, 255)

#: The raster formats ``decode_image`` accepts (PIL format names; JPEG includes MPO; names this
#: PIL build lacks are skipped).
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")


@dataclass(frozen=True)
class ImageLimits:
    """Bounds of a decoded image: ``max_pixels`` (width*height), ``max_side`` (pixels of the
    longest side), ``max_aspect`` (longest/shortest side), ``max_bytes`` (encoded size)."""

    max_pixels: int = 60_000_000
    max_side: int = 20_000
    max_aspect: float = 25.0
    max_bytes: int = 64 * 1024 * 1024


DEFAULT_LIMITS = ImageLimits()


class ImageDecodeError(ValueError):
    """The bytes or file are not a decodable image, or it is out of bounds.

    ``too_large`` is True when a size limit (bytes, pixels, side) refused it; the message
    then says "exceeds the limit".
    """

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_image_size(
    width: int, height: int, *, name: str = "image", limits: ImageLimits = DEFAULT_LIMITS
) -> None:
    """Raise ImageDecodeError when a ``width`` x ``height`` image breaks ``limits`` (or is empty)."""
    if width < 1 or height < 1:
        raise ImageDecodeError(f"{name}: {width}x{height} is an empty image")
    if width * height > limits.max_pixels:
        raise ImageDecodeError(
            f"{name}: {width}x{height} exceeds the limit of {limits.max_pixels} pixels", too_large=True
        )
    if max(width, height) > limits.max_side:
        raise ImageDecodeError(
            f"{name}: {width}x{height} exceeds the limit of {limits.max_side} pixels per side", too_large=True
        )
    aspect = max(width, height) / min(width, height)
    if aspect > limits.max_aspect:
        raise ImageDecodeError(
            f"{name}: {width}x{height} is a strip, aspect ratio {aspect:.0f}:1 is over the "
            f"{limits.max_aspect:g}:1 accepted"
        )


def _to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit integer and float grey images (``I;16*``, ``I``, ``F``) as 8-bit ``L``.

    Integer images are taken as 16-bit (0..65535, what PNG and TIFF store) and scaled by 255/65535;
    float images are clipped to 0..255. ``convert('L')`` would clip 16-bit values to white.
    """
    arr = np.asarray(img)
    if img.mode == "F":
        out = np.clip(arr, 0, 255)
    else:
        out = (np.clip(arr.astype(np.int64), 0, 65535) * 255 + 32767) // 65535
    return Image.fromarray(out.astype(np.uint8), mode="L")


def decode_image(
    data: bytes,
    *,
    max_pixels: int | None = None,
    name: str = "image",
    limits: ImageLimits | None = None,
    formats: tuple[str, ...] | None = IMAGE_FORMATS,
    min_side: int | None = None,
    working_side: int | None = None,
) -> Image.Image:
    """Decode image bytes, apply EXIF orientation, return RGB (or RGBA when it has alpha).

    ``limits`` (default ``DEFAULT_LIMITS``) bound the image, checked from the header before
    decoding; ``max_pixels`` overrides ``limits.max_pixels``. ``formats``: PIL format names
    accepted (None: any). 16-bit grey images are scaled to 8 bits. ``min_side`` and
    ``working_side``: see ``decode_image_sized``. Raises ImageDecodeError (a ValueError) when
    the bytes are not an image or break a limit (messages of size limits say "exceeds the limit").
    """
    return decode_image_sized(
        data,
        max_pixels=max_pixels,
        name=name,
        limits=limits,
        formats=formats,
        min_side=min_side,
        working_side=working_side,
    )[0]


def working_size(size: tuple[int, int], working_side: int | None) -> tuple[int, int]:
    """(width, height) of an image of ``size`` (width, height) at the working resolution: the
    longest side scaled down to ``working_side`` pixels (aspect kept, each side >= 1, rounded);
    ``size`` itself when it is not longer or ``working_side`` is None/0."""
    w, h = size
    if not working_side or max(w, h) <= working_side:
        return (w, h)
    scale = working_side / max(w, h)
    return (max(1, round(w * scale)), max(1, round(h * scale)))


def decode_image_sized(
    data: bytes,
    *,
    max_pixels: int | None = None,
    name: str = "image",
    limits: ImageLimits | None = None,
    formats: tuple[str, ...] | None = IMAGE_FORMATS,
    min_side: int | None = None,
    working_side: int | None = None,
) -> tuple[Image.Image, tuple[int, int]]:
    """``decode_image`` plus the full (width, height) of the image, after EXIF orientation.

    ``min_side``: JPEGs may be decoded downscaled by 1/2, 1/4 or 1/8 in the DCT (Pillow's
    ``Image.draft``, several times faster than a full decode) as long as the longest side
    stays >= ``min_side`` pixels; other formats, and ``None``/0, decode in full. Limits apply
    to the full size (what is accepted does not depend on the working resolution).

    ``working_side``: return the image at the working resolution, ``working_size(full,
    working_side)``, exactly (JPEGs drafted in the DCT to >= that size, then resampled; other
    formats decoded then resampled): a 50 MP JPEG never allocates its full pixels. A pixel
    coordinate ``x`` of the full image is ``x * working_width / full_width`` in the returned one.
    Raises ImageDecodeError as ``decode_image``.
    """
    if working_side:
        min_side = min(min_side, working_side) if min_side else working_side
    lim = limits or DEFAULT_LIMITS
    if max_pixels is not None:
        lim = ImageLimits(max_pixels, lim.max_side, lim.max_aspect, lim.max_bytes)
    if len(data) > lim.max_bytes:
        raise ImageDecodeError(
            f"{name}: {len(data)} bytes exceeds the limit of {lim.max_bytes} bytes", too_large=True
        )
    if formats is not None:
        Image.init()  # registers the plugins once; cheap afterwards
        formats = tuple(f for f in formats if f in Image.OPEN)
    try:
        opened = Image.open(io.BytesIO(data), formats=formats)
        full = opened.size
        check_image_size(opened.width, opened.height, name=name, limits=lim)
        if min_side and opened.format == "JPEG" and max(full) >= 2 * min_side:
            scale = min_side / max(full)
            opened.draft(None, (max(1, math.ceil(full[0] * scale)), max(1, math.ceil(full[1] * scale))))
        opened.load()
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"{name}: exceeds the limit of a safe image ({exc})", too_large=True) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = _OBJECT_REPR.sub(
            "", str(exc)
        ).strip()  # PIL names its BytesIO: "<_io.BytesIO object at 0x..>"
        raise ImageDecodeError(f"{name}: not a decodable image" + (f" ({reason})" if reason else "")) from exc
    img: Image.Image = ImageOps.exif_transpose(opened)
    if img.size != opened.size:  # rotated by 90 degrees
        full = (full[1], full[0])
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    try:
        img = img.convert("RGBA" if has_alpha else "RGB")
    except ValueError as exc:  # e.g. LAB, or modes PIL cannot convert
        raise ImageDecodeError(f"{name}: unsupported image mode {img.mode} ({exc})") from exc
    if working_side and img.size != (target := working_size(full, working_side)):
        img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return img, full


def load_image(
    path: str | Path, *, max_pixels: int | None = None, limits: ImageLimits | None = None
) -> Image.Image:
    """Read and decode an image file (see ``decode_image``).

    Raises ImageDecodeError (also for a FIFO/device or a file over ``limits.max_bytes``, found
    with ``os.stat`` before reading), FileNotFoundError or IsADirectoryError.
    """
    p = Path(path)
    lim = limits or DEFAULT_LIMITS
    st = os.stat(p)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise ImageDecodeError(f"{p}: not a regular file")
    if st.st_size > lim.max_bytes:
        raise ImageDecodeError(
            f"{p}: {st.st_size} bytes exceeds the limit of {lim.max_bytes} bytes", too_large=True
        )
    return decode_image(p.read_bytes(), max_pixels=max_pixels, name=str(p), limits=lim)


def flatten_alpha(img: Image.Image, background: tuple[int, int, int] = NEUTRAL_BACKGROUND) -> Image.Image:
    """Composite an RGBA image over ``background``; RGB images are returned unchanged."""
    if img.mode == "RGB":
        return img
    rgba = img.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, background)
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``'x0,y0,x1,y1'`` (pixels) -> tuple; raises ValueError with a clear message."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise ValueError(f"box must be 'x0,y0,x1,y1', got {text!r}")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"box must hold 4 numbers 'x0,y0,x1,y1', got {text!r}") from None
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box {text!r} is empty: need x0 < x1 and y0 < y1")
    return x0, y0, x1, y1


def crop_box(img: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """Crop to ``(x0, y0, x1, y1)`` in pixels (x1, y1 exclusive; fractions: x0/y0 rounded down,
    x1/y1 rounded to the nearest pixel).

    Raises ValueError when the box is empty (also after rounding: it must keep at least one
    whole pixel), not finite, or lies outside the image.
    """
    x0, y0, x1, y1 = box
    if not all(math.isfinite(v) for v in box):
        raise ValueError(f"box {box} must hold finite numbers")
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box {box} is empty: need x0 < x1 and y0 < y1")
    if x0 < 0 or y0 < 0 or x1 > img.width or y1 > img.height:
        raise ValueError(f"box {box} lies outside the {img.width}x{img.height} image")
    pixels = (int(x0), int(y0), int(round(x1)), int(round(y1)))
    if pixels[2] <= pixels[0] or pixels[3] <= pixels[1]:
        raise ValueError(f"box {box} is empty: it covers no whole pixel (rounded to {pixels})")
    return img.crop(pixels)
