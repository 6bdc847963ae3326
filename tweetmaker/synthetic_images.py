"""Pictures of the synthetic twin: motifs drawn on pale backgrounds, and a decompression bomb for the fault tests.

Split from ``tweetmaker.synthetic`` (which decides what each tweet is about) so that drawing, the larger half, can be
read on its own. The colours come from the twin's attribute table so a colour word and a pixel colour agree.
"""

from __future__ import annotations

import random
import struct
import zlib

from PIL import Image, ImageDraw

PALE_BACKGROUNDS = [(246, 245, 240), (236, 240, 246), (244, 238, 232), (238, 246, 238), (248, 248, 248)]


def render_image(
    topic: str, color: str, count: int, background: str, size: tuple[int, int], seed: int = 0
) -> Image.Image:
    """Draw ``count`` motifs of ``topic`` in ``color`` on a ``background``-style canvas of ``size`` pixels.

    Backgrounds use pale, unsaturated tones so the motif colour dominates every picture.
    """
    from tweetmaker.synthetic import COLORS as colors  # the attribute table; imported late: it imports this module

    rng = random.Random(seed)
    width, height = size
    base = rng.choice(PALE_BACKGROUNDS)
    image = Image.new("RGB", size, base)
    draw = ImageDraw.Draw(image)
    _paint_background(draw, background, size, base, rng)
    columns = 1 if count == 1 else 2
    rows = 1 if count <= 2 else 2
    cell_w, cell_h = width / columns, height / rows
    cells = [(c, r) for r in range(rows) for c in range(columns)][:count]
    for column, row in cells:
        side = min(cell_w, cell_h) * rng.uniform(0.6, 0.8)
        cx = (column + 0.5) * cell_w + rng.uniform(-0.05, 0.05) * cell_w
        cy = (row + 0.5) * cell_h + rng.uniform(-0.05, 0.05) * cell_h
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        MOTIFS[topic](draw, box, colors[color], base)
    return image


def _paint_background(draw: ImageDraw.ImageDraw, style: str, size: tuple[int, int], base: tuple[int, int, int],
                      rng: random.Random) -> None:
    width, height = size
    shade = tuple(max(0, channel - 22) for channel in base)
    if style == "gradient":
        for y in range(height):
            t = y / max(1, height - 1)
            draw.line([(0, y), (width, y)], fill=tuple(int(b + (s - b) * t) for b, s in zip(base, shade)))
    elif style == "stripes":
        step = rng.randrange(12, 28)
        for x in range(-height, width, step * 2):
            draw.polygon([(x, 0), (x + step, 0), (x + step + height, height), (x + height, height)], fill=shade)
    elif style == "dots":
        step = rng.randrange(14, 26)
        for y in range(step // 2, height, step):
            for x in range(step // 2, width, step):
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=shade)


def _robot(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.rectangle([x0 + 0.15 * w, y0 + 0.25 * h, x1 - 0.15 * w, y1 - 0.05 * h], fill=color)
    for ex in (0.35, 0.65):
        draw.ellipse([x0 + (ex - 0.08) * w, y0 + 0.42 * h, x0 + (ex + 0.08) * w, y0 + 0.58 * h], fill=base)
    draw.rectangle([x0 + 0.35 * w, y0 + 0.72 * h, x0 + 0.65 * w, y0 + 0.8 * h], fill=base)
    draw.line([(x0 + 0.5 * w, y0 + 0.25 * h), (x0 + 0.5 * w, y0 + 0.08 * h)], fill=color, width=max(2, int(w / 20)))
    draw.ellipse([x0 + 0.44 * w, y0, x0 + 0.56 * w, y0 + 0.12 * h], fill=color)


def _brain(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.ellipse([x0, y0 + 0.15 * h, x0 + 0.6 * w, y1 - 0.15 * h], fill=color)
    draw.ellipse([x0 + 0.4 * w, y0 + 0.15 * h, x1, y1 - 0.15 * h], fill=color)
    line = max(2, int(w / 30))
    draw.line([(x0 + 0.5 * w, y0 + 0.2 * h), (x0 + 0.5 * w, y1 - 0.2 * h)], fill=base, width=line)
    for fy in (0.35, 0.5, 0.65):
        draw.arc([x0 + 0.1 * w, y0 + (fy - 0.1) * h, x0 + 0.45 * w, y0 + (fy + 0.1) * h], 200, 340, fill=base,
                 width=line)
        draw.arc([x0 + 0.55 * w, y0 + (fy - 0.1) * h, x0 + 0.9 * w, y0 + (fy + 0.1) * h], 200, 340, fill=base,
                 width=line)


def _chip(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.rectangle([x0 + 0.2 * w, y0 + 0.2 * h, x1 - 0.2 * w, y1 - 0.2 * h], fill=color)
    draw.rectangle([x0 + 0.35 * w, y0 + 0.35 * h, x1 - 0.35 * w, y1 - 0.35 * h], fill=base)
    pin = max(2, int(w / 25))
    for i in range(5):
        t = 0.27 + i * 0.115
        draw.line([(x0 + t * w, y0 + 0.05 * h), (x0 + t * w, y0 + 0.2 * h)], fill=color, width=pin)
        draw.line([(x0 + t * w, y1 - 0.2 * h), (x0 + t * w, y1 - 0.05 * h)], fill=color, width=pin)
        draw.line([(x0 + 0.05 * w, y0 + t * h), (x0 + 0.2 * w, y0 + t * h)], fill=color, width=pin)
        draw.line([(x1 - 0.2 * w, y0 + t * h), (x1 - 0.05 * w, y0 + t * h)], fill=color, width=pin)


def _rocket(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.rectangle([x0 + 0.38 * w, y0 + 0.3 * h, x0 + 0.62 * w, y0 + 0.8 * h], fill=color)
    draw.polygon([(x0 + 0.38 * w, y0 + 0.3 * h), (x0 + 0.5 * w, y0), (x0 + 0.62 * w, y0 + 0.3 * h)], fill=color)
    draw.polygon([(x0 + 0.38 * w, y0 + 0.6 * h), (x0 + 0.2 * w, y1), (x0 + 0.38 * w, y0 + 0.85 * h)], fill=color)
    draw.polygon([(x0 + 0.62 * w, y0 + 0.6 * h), (x0 + 0.8 * w, y1), (x0 + 0.62 * w, y0 + 0.85 * h)], fill=color)
    draw.ellipse([x0 + 0.44 * w, y0 + 0.38 * h, x0 + 0.56 * w, y0 + 0.5 * h], fill=base)


def _cloud(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.ellipse([x0, y0 + 0.4 * h, x0 + 0.45 * w, y0 + 0.85 * h], fill=color)
    draw.ellipse([x0 + 0.2 * w, y0 + 0.15 * h, x0 + 0.75 * w, y0 + 0.7 * h], fill=color)
    draw.ellipse([x0 + 0.55 * w, y0 + 0.35 * h, x1, y0 + 0.85 * h], fill=color)
    draw.rectangle([x0 + 0.22 * w, y0 + 0.6 * h, x0 + 0.78 * w, y0 + 0.85 * h], fill=color)


def _chart(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    for i, top in enumerate((0.6, 0.35, 0.1)):
        left = x0 + (0.1 + i * 0.3) * w
        draw.rectangle([left, y0 + top * h, left + 0.22 * w, y1 - 0.08 * h], fill=color)
    draw.line([(x0, y1 - 0.05 * h), (x1, y1 - 0.05 * h)], fill=color, width=max(2, int(h / 30)))


def _eye(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.ellipse([x0, y0 + 0.25 * h, x1, y1 - 0.25 * h], fill=color)
    draw.ellipse([x0 + 0.3 * w, y0 + 0.3 * h, x1 - 0.3 * w, y1 - 0.3 * h], fill=base)
    draw.ellipse([x0 + 0.42 * w, y0 + 0.42 * h, x1 - 0.42 * w, y1 - 0.42 * h], fill=color)


def _lightbulb(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.ellipse([x0 + 0.2 * w, y0, x1 - 0.2 * w, y0 + 0.65 * h], fill=color)
    draw.rectangle([x0 + 0.36 * w, y0 + 0.55 * h, x1 - 0.36 * w, y0 + 0.8 * h], fill=color)
    for i in range(3):
        y = y0 + (0.83 + i * 0.06) * h
        draw.line([(x0 + 0.38 * w, y), (x1 - 0.38 * w, y)], fill=color, width=max(2, int(h / 40)))
    draw.arc([x0 + 0.35 * w, y0 + 0.15 * h, x1 - 0.35 * w, y0 + 0.45 * h], 180, 360, fill=base,
             width=max(2, int(w / 30)))


MOTIFS = {"robot": _robot, "brain": _brain, "chip": _chip, "rocket": _rocket, "cloud": _cloud, "chart": _chart,
          "eye": _eye, "lightbulb": _lightbulb}


def decompression_bomb_png(width: int, height: int) -> bytes:
    """A valid, tiny PNG (1-bit, all black) that decodes to ``width`` x ``height`` pixels.

    Built chunk by chunk with zlib so that making it costs a few megabytes, not the gigabytes it expands to.
    """
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
