"""Bounded image decoding: limits from the header before any pixel is decoded, 16-bit images, crops."""

from __future__ import annotations

import io
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from fittingroom.images import (
    ImageDecodeError,
    ImageLimits,
    crop_box,
    decode_image,
    decode_image_sized,
    load_image,
    working_size,
)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (8-bit grey) with a tiny, truncated
    IDAT: PIL opens it lazily from the header; decoding it would need width*height bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def no_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any image is decoded (``load``) - proves refusals come from the header."""

    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError(f"decoded a {self.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ((20_000, 1), "strip, aspect ratio 20000:1"),
        ((1, 3000), "strip, aspect ratio 3000:1"),
        ((8000, 8000), "exceeds the limit of 60000000 pixels"),
        ((30_000, 2000), "exceeds the limit of 20000 pixels per side"),
    ],
)
def test_out_of_bounds_images_are_refused_from_the_header(no_pixel_decoding: None, size, message) -> None:
    with pytest.raises(ImageDecodeError, match=message):
        decode_image(png_header_only(*size))


def test_limits_are_adjustable() -> None:
    strip = png(Image.new("RGB", (300, 10), (1, 2, 3)))
    with pytest.raises(ImageDecodeError, match="aspect ratio 30:1"):
        decode_image(strip)
    assert decode_image(strip, limits=ImageLimits(max_aspect=40)).size == (300, 10)
    with pytest.raises(ImageDecodeError, match="exceeds the limit of 2000 pixels") as err:
        decode_image(strip, max_pixels=2000)
    assert err.value.too_large
    with pytest.raises(ImageDecodeError, match="exceeds the limit of 10 bytes") as err:
        decode_image(strip, limits=ImageLimits(max_bytes=10))
    assert err.value.too_large


def test_a_decompression_bomb_is_an_image_decode_error(no_pixel_decoding: None) -> None:
    # 16000x12000 = 192 M pixels: over twice PIL's MAX_IMAGE_PIXELS, PIL itself raises at open
    with pytest.raises(ImageDecodeError, match="exceeds the limit") as err:
        decode_image(png_header_only(16_000, 12_000), limits=ImageLimits(max_pixels=10**10, max_side=10**6))
    assert isinstance(err.value.__cause__, Image.DecompressionBombError) and err.value.too_large


def test_empty_images_and_non_images_are_refused() -> None:
    with pytest.raises(ImageDecodeError, match="not a decodable image") as err:
        decode_image(b"hello")
    assert "object at 0x" not in str(err.value) and "BytesIO" not in str(err.value)
    with pytest.raises(ImageDecodeError, match="not a decodable image"):
        decode_image(png_header_only(0, 10))
    # PostScript would be rendered by Ghostscript: not one of the accepted formats
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(ImageDecodeError, match="not a decodable image"):
        decode_image(eps)


def test_16_bit_grey_png_decodes_to_the_right_8_bit_values() -> None:
    values = np.array([[0, 257, 32896, 65535], [1000, 12850, 50000, 65280]], dtype=np.uint16)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    data = png(img)
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")
    out = decode_image(data)
    assert out.mode == "RGB"
    arr = np.asarray(out)
    assert np.array_equal(arr[..., 0], arr[..., 2])  # still grey
    assert arr[..., 0].tolist() == [[0, 1, 128, 255], [4, 50, 195, 254]]  # v * 255 / 65535, not white


def test_32_bit_integer_grey_is_scaled_like_16_bit() -> None:
    img = Image.fromarray(np.array([[0, 65535, 32896, 70000]], dtype=np.int32), mode="I")
    buf = io.BytesIO()
    img.save(buf, format="TIFF")
    assert np.asarray(decode_image(buf.getvalue(), limits=ImageLimits(max_aspect=5)))[0, :, 0].tolist() == [
        0,
        255,
        128,
        255,
    ]


def test_ordinary_images_are_unchanged() -> None:
    rgb = Image.new("RGB", (40, 30), (10, 200, 30))
    assert np.array_equal(np.asarray(decode_image(png(rgb))), np.asarray(rgb))
    rgba = Image.new("RGBA", (40, 30), (10, 200, 30, 128))
    assert decode_image(png(rgba)).mode == "RGBA"
    assert decode_image(png(Image.new("L", (5, 5), 77))).getpixel((2, 2)) == (77, 77, 77)


@pytest.mark.parametrize(
    "box",
    [
        (0, 0, 0, 0),  # 0x0
        (5, 5, 5, 9),  # zero width
        (5.2, 0, 5.4, 10),  # positive width that rounds to no whole pixel
        (0, 3.1, 10, 3.3),
        (float("nan"), 0, 5, 5),
        (0, 0, float("inf"), 5),
    ],
)
def test_empty_crop_boxes_are_refused(box) -> None:
    img = Image.new("RGB", (20, 20))
    with pytest.raises(ValueError, match="empty|finite"):
        crop_box(img, box)


def test_crop_box_keeps_its_behaviour() -> None:
    img = Image.new("RGB", (20, 20))
    assert crop_box(img, (2, 3, 12.4, 8.6)).size == (10, 6)
    assert crop_box(img, (0, 0, 20, 20)).size == (20, 20)
    with pytest.raises(ValueError, match="outside"):
        crop_box(img, (0, 0, 21, 5))


def test_load_image_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            load_image(fifo)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "load_image blocked on a FIFO"
    assert isinstance(errors[0], ImageDecodeError) and "not a regular file" in str(errors[0])
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")
    with pytest.raises(IsADirectoryError):
        load_image(tmp_path)


# ---- JPEG draft (DCT) downscaling with the full, oriented size reported ----------------------
def _jpeg(w: int, h: int, orientation: int | None = None, fmt: str = "JPEG") -> bytes:
    arr = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    buf = io.BytesIO()
    if orientation is None:
        img.save(buf, fmt)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(buf, fmt, exif=exif)
    return buf.getvalue()


def test_large_jpeg_decodes_downscaled_with_its_full_size() -> None:
    img, full = decode_image_sized(_jpeg(1800, 900), min_side=224)
    assert full == (1800, 900)
    assert img.size == (225, 113) and img.mode == "RGB"  # 1/8: the longest side stays >= 224
    assert decode_image(_jpeg(1800, 900)).size == (1800, 900)  # no min_side: full decode


def test_rotated_jpeg_reports_the_oriented_size() -> None:
    img, full = decode_image_sized(_jpeg(1800, 900, orientation=6), min_side=224)
    assert full == (900, 1800) and img.size == (113, 225)


@pytest.mark.parametrize(("w", "fmt"), [(300, "JPEG"), (1800, "PNG")])
def test_small_jpegs_and_other_formats_decode_in_full(w: int, fmt: str) -> None:
    img, full = decode_image_sized(_jpeg(w, 100, fmt=fmt), min_side=224)
    assert img.size == full == (w, 100)


def test_pixel_limit_is_checked_on_the_full_size() -> None:
    with pytest.raises(ImageDecodeError, match="exceeds"):
        decode_image_sized(_jpeg(1800, 900), max_pixels=1_000_000, min_side=224)


def _png16(arr: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG (color type 2 = RGB, 4 = grey+alpha, 6 = RGBA) written by hand: PIL cannot save one."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def test_16_bit_rgb_rgba_and_grey_alpha_pngs_decode_to_8_bit_not_white() -> None:
    rgb = np.array([[[65535, 0, 0], [0, 32896, 0]], [[0, 0, 65535], [12850, 12850, 12850]]], dtype=np.uint16)
    img = decode_image(_png16(rgb, 2))
    assert img.mode == "RGB"
    assert np.asarray(img).tolist() == [[[255, 0, 0], [0, 128, 0]], [[0, 0, 255], [50, 50, 50]]]
    rgba = np.concatenate([rgb, np.full((2, 2, 1), 32896, np.uint16)], axis=2)
    img = decode_image(_png16(rgba, 6))
    assert img.mode == "RGBA" and np.asarray(img)[1, 1].tolist() == [50, 50, 50, 128]
    la = np.array([[[0, 65535], [12850, 32896]]], dtype=np.uint16)
    img = decode_image(_png16(la, 4))
    assert img.mode == "RGBA" and np.asarray(img).tolist() == [[[0, 0, 0, 255], [50, 50, 50, 128]]]


@pytest.mark.parametrize("box", [(3, 3, 3, 3), (0, 0, 0, 0), (5, 5, 2, 2), (2, 5, 5, 2)])
def test_a_0x0_or_inverted_crop_box_is_refused(box: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError, match="empty"):
        crop_box(Image.new("RGB", (10, 10)), box)


# ---- working resolution: decoded straight to a bounded size, limits on the full size ----------
def _flat_jpeg(w: int, h: int, orientation: int | None = None) -> bytes:
    """A cheap big JPEG: flat grey with one red block in its top-left quarter."""
    img = Image.new("RGB", (w, h), (128, 128, 128))
    img.paste(Image.new("RGB", (w // 4, h // 4), (220, 20, 20)), (0, 0))
    buf = io.BytesIO()
    kw = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif
    img.save(buf, "JPEG", quality=80, **kw)
    return buf.getvalue()


def test_working_size_scales_the_longest_side_only_when_longer() -> None:
    assert working_size((8000, 6000), 2048) == (2048, 1536)
    assert working_size((6000, 8000), 2048) == (1536, 2048)
    assert working_size((20000, 801), 2048) == (2048, 82)
    assert working_size((1000, 700), 2048) == (1000, 700)
    assert working_size((8000, 6000), None) == (8000, 6000)


def test_a_big_jpeg_is_decoded_straight_to_the_working_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import JpegImagePlugin

    loaded: list[tuple[int, int]] = []
    original_load = JpegImagePlugin.JpegImageFile.load

    def spy(self: JpegImagePlugin.JpegImageFile):  # type: ignore[no-untyped-def]
        loaded.append(self.size)
        return original_load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    img, full = decode_image_sized(_flat_jpeg(8000, 6000), working_side=2048)
    assert full == (8000, 6000)
    assert img.size == (2048, 1536) and img.mode == "RGB"
    # the DCT decoded at 1/2 (4000x3000, 12 MP), never the 48 MP of the full image
    assert loaded and max(w * h for w, h in loaded) <= 4000 * 3000
    assert img.getpixel((100, 100))[0] > 180 and img.getpixel((1500, 1000)) == pytest.approx(
        (128, 128, 128), abs=3
    )


def test_working_side_applies_to_the_oriented_image_and_to_other_formats() -> None:
    img, full = decode_image_sized(_flat_jpeg(1800, 900, orientation=6), working_side=1024)
    assert full == (900, 1800) and img.size == (512, 1024)
    buf = io.BytesIO()
    Image.new("RGBA", (3000, 1000), (1, 2, 3, 255)).save(buf, "PNG")
    png_img, png_full = decode_image_sized(buf.getvalue(), working_side=1024)
    assert png_full == (3000, 1000) and png_img.size == (1024, 341) and png_img.mode == "RGBA"
    assert decode_image(buf.getvalue(), working_side=4096).size == (3000, 1000)  # never upscaled


def test_limits_still_apply_to_the_full_size_with_a_working_side(no_pixel_decoding: None) -> None:
    with pytest.raises(ImageDecodeError, match="exceeds the limit") as exc:
        decode_image(png_header_only(8000, 6000), working_side=2048, max_pixels=40_000_000)
    assert exc.value.too_large
