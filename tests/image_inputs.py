"""Generators of awkward and hostile image inputs (no binary blobs are checked in)."""

from __future__ import annotations

import io

from PIL import Image

from tweetmaker.synthetic import decompression_bomb_png, render_image


def picture(topic: str = "robot", color: str = "red", size: tuple[int, int] = (200, 150)) -> Image.Image:
    return render_image(topic, color, 1, "plain", size, seed=1)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg_bytes(**kwargs) -> bytes:
    return encode(picture(**kwargs), "JPEG", quality=90)


def truncated_jpeg() -> bytes:
    data = jpeg_bytes()
    return data[: len(data) // 2]


def truncated_png() -> bytes:
    data = encode(picture(), "PNG")
    return data[: len(data) // 2]


def cmyk_jpeg() -> bytes:
    return encode(picture().convert("CMYK"), "JPEG")


def sixteen_bit_png() -> bytes:
    image = picture().convert("L").point(lambda value: value * 256, mode="I").convert("I;16")
    return encode(image, "PNG")


def palette_with_transparency() -> bytes:
    image = picture().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(image, "PNG", transparency=0)


def animated_gif() -> bytes:
    frames = [picture(color=color).convert("P") for color in ("blue", "red", "green")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def exif_rotated_jpeg() -> bytes:
    """A 200x100 landscape picture stored with EXIF orientation 6 (display rotated 90 degrees clockwise)."""
    image = picture(size=(200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "JPEG", exif=exif.tobytes())


def svg_bytes() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


def not_an_image() -> bytes:
    return b"%PDF-1.4 this is no picture\n" * 10


def bomb_png() -> bytes:
    return decompression_bomb_png(20_000, 20_000)


def tiny_png() -> bytes:
    return encode(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG")


def very_wide_png() -> bytes:
    return encode(Image.new("RGB", (10_000, 10), (0, 0, 255)), "PNG")
