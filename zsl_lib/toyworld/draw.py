"""Drawing primitives shared by ToyBirds and ToyShapes.

Everything is drawn with Pillow on a canvas twice the output size and then
downsampled with a box filter (anti-aliasing). Geometry is built as numpy polygons
in a local frame, then moved into the image by one similarity transform, so that a
part's pixels and its mask come from the same polygon.
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw

# The colour vocabulary of both worlds. ToyBirds uses these names as attribute values.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (200, 35, 35),
    "blue": (40, 75, 205),
    "yellow": (232, 212, 45),
    "green": (45, 150, 55),
    "black": (28, 28, 28),
    "white": (238, 238, 238),
    "brown": (125, 80, 38),
    "orange": (240, 132, 22),
}
COLOR_NAMES = tuple(PALETTE)
BACKGROUNDS = ("sky", "water", "grass", "sand")


def jitter_color(rng: np.random.Generator, name: str, amount: int = 18) -> tuple[int, int, int]:
    """A palette colour with per-channel noise: the same name never gives the same pixel twice."""
    noise = rng.integers(-amount, amount + 1, size=3).tolist()
    return tuple(min(255, max(0, b + n)) for b, n in zip(PALETTE[name], noise))


def shade(color: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    """Darken (factor < 1) or lighten (factor > 1, towards white) a colour."""
    c = np.array(color, dtype=np.float64)
    c = c * factor if factor <= 1 else c + (255 - c) * (factor - 1)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def contrast_color(color: tuple[int, int, int]) -> tuple[int, int, int]:
    """A pattern colour that stays visible on `color` (dark on light, light on dark)."""
    return shade(color, 0.35) if sum(color) > 300 else shade(color, 1.7)


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28,
            start: float = 0.0, stop: float = 2 * np.pi) -> np.ndarray:
    """Points of an ellipse arc, (n, 2); a full turn by default."""
    return _unit_arc(n, start, stop) * np.array([rx, ry]) + np.array([cx, cy])


@functools.lru_cache(maxsize=64)
def _unit_arc(n: int, start: float, stop: float) -> np.ndarray:
    t = np.linspace(start, stop, n, endpoint=stop - start < 2 * np.pi - 1e-9)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def similarity(points: np.ndarray, scale: float, angle: float, flip: bool,
               offset: tuple[float, float]) -> np.ndarray:
    """Scale, optionally mirror in x, rotate by `angle` radians, then translate. (n, 2) -> (n, 2)."""
    return points @ similarity_matrix(scale, angle, flip) + np.asarray(offset)


def similarity_matrix(scale: float, angle: float, flip: bool) -> np.ndarray:
    """The 2x2 matrix M of `similarity`, acting on row vectors (points @ M)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[-scale if flip else scale, 0.0], [0.0, scale]]) @ np.array([[c, s], [-s, c]])


def polygon(draw: ImageDraw.ImageDraw, points: np.ndarray, fill) -> None:
    draw.polygon(points.ravel().tolist(), fill=fill)


def background(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """A textured background, (size, size, 3) uint8, built from palette colours.

    The textures reuse the birds' colours (blue sky and water, green grass, yellow or
    brown sand, and random palette tints), so "a colour somewhere" is never evidence.
    """
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    tint = np.array(jitter_color(rng, str(rng.choice(COLOR_NAMES)), 30), dtype=np.float32)
    if kind == "sky":
        top = np.array(shade(jitter_color(rng, "blue", 30), 1.5), dtype=np.float32)
        bottom = np.array(shade(top.astype(int), 1.4), dtype=np.float32)
        img = top * (1 - y[..., None]) + bottom * y[..., None]
        for _ in range(rng.integers(1, 4)):  # soft clouds
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 0.7), rng.uniform(0.08, 0.2)
            d = ((x - cx) ** 2 + ((y - cy) * 1.8) ** 2) / r ** 2
            img = img + (255 - img) * np.clip(1 - d, 0, 1)[..., None] * 0.8
    elif kind == "water":
        base = np.array(jitter_color(rng, str(rng.choice(["blue", "green"])), 25), dtype=np.float32)
        freq, phase = rng.uniform(10, 22), rng.uniform(0, 2 * np.pi)
        waves = np.sin(2 * np.pi * freq * y + 3 * np.sin(6 * x + phase))
        img = base[None, None] * (0.85 + 0.15 * waves[..., None])
    elif kind == "grass":
        base = np.array(jitter_color(rng, str(rng.choice(["green", "yellow", "brown"])), 25), dtype=np.float32)
        stripes = np.sin(2 * np.pi * (x * rng.uniform(25, 45) + 0.3 * np.sin(9 * y)))
        img = base[None, None] * (0.8 + 0.2 * stripes[..., None])
    elif kind == "sand":
        base = np.array(jitter_color(rng, str(rng.choice(["yellow", "orange", "brown", "white"])), 25),
                        dtype=np.float32)
        grain = rng.normal(0, 1, size=(size, size))
        img = base[None, None] * (0.9 + 0.06 * grain[..., None])
    else:
        raise ValueError(f"unknown background {kind!r}; choose one of {BACKGROUNDS}")
    img = 0.85 * img + 0.15 * tint  # a wash of a random palette colour
    return np.clip(img, 0, 255).astype(np.uint8)


def distractors(rng: np.random.Generator, draw: ImageDraw.ImageDraw, size: int, count: int) -> None:
    """Small palette-coloured blobs, boxes and triangles scattered over the background."""
    for _ in range(count):
        color = jitter_color(rng, str(rng.choice(COLOR_NAMES)))
        cx, cy = rng.uniform(0, size, 2)
        r = rng.uniform(0.03, 0.08) * size
        kind = rng.integers(3)
        if kind == 0:
            polygon(draw, ellipse(cx, cy, r, r * rng.uniform(0.5, 1.0)), color)
        elif kind == 1:
            polygon(draw, similarity(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float), r,
                                     rng.uniform(0, np.pi), False, (cx, cy)), color)
        else:
            polygon(draw, similarity(np.array([[0, -1.2], [1, 0.8], [-1, 0.8]]), r,
                                     rng.uniform(0, np.pi), False, (cx, cy)), color)


def finish(rng: np.random.Generator, canvas: Image.Image, out_size: int) -> np.ndarray:
    """Downsample the 2x canvas (box filter) and apply a global colour cast and brightness."""
    img = np.asarray(canvas.resize((out_size, out_size), Image.BOX), dtype=np.float32)
    cast = (rng.uniform(0.85, 1.15, size=3) * rng.uniform(0.75, 1.2)).astype(np.float32)
    img *= cast
    img += 3.0 * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0, 255, out=img).astype(np.uint8)


def new_canvas(rng: np.random.Generator, size2x: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A 2x canvas with a random textured background and 0-3 distractor shapes.

    The texture is computed at the output size (it is downsampled again at the end).
    """
    bg = background(rng, size2x // 2, str(rng.choice(BACKGROUNDS)))
    canvas = Image.fromarray(bg, "RGB").resize((size2x, size2x), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)
    distractors(rng, draw, size2x, int(rng.integers(0, 4)))
    return canvas, draw


def fill_textured(canvas: Image.Image, points: np.ndarray, color: tuple[int, int, int],
                  texture: str, angle: float = 0.0, scale: float | None = None,
                  draw: ImageDraw.ImageDraw | None = None) -> None:
    """Fill a polygon with a solid colour, stripes or spots of a contrasting colour.

    The pattern is drawn over the polygon's bounding box and pasted through the
    polygon's mask, so it never leaks outside the part. `scale` sets the stripe
    spacing and spot size (default: a fifth of the polygon's extent); stripes run
    across `angle`, so they turn with the object. `draw` may pass the canvas's ImageDraw.
    """
    if texture == "solid":
        polygon(draw or ImageDraw.Draw(canvas), points, color)
        return
    mask = Image.new("L", canvas.size, 0)
    polygon(ImageDraw.Draw(mask), points, 255)
    lo, hi = points.min(axis=0), points.max(axis=0)
    step = scale if scale is not None else float(max(hi - lo)) / 5
    step = max(step, 2.0)
    pattern = Image.new("RGB", canvas.size, color)
    draw = ImageDraw.Draw(pattern)
    ink = contrast_color(color)
    center, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo)) / 2 + step
    if texture == "striped":
        for k in np.arange(-radius, radius, step):
            band = np.array([[k, -radius], [k + step * 0.45, -radius], [k + step * 0.45, radius], [k, radius]])
            polygon(draw, similarity(band, 1.0, angle, False, tuple(center)), ink)
    elif texture == "spotted":
        grid = np.arange(-radius, radius, step) + step / 2
        gx, gy = np.meshgrid(grid, grid)
        r = step * 0.28
        for qx, qy in similarity(np.stack([gx.ravel(), gy.ravel()], 1), 1.0, angle, False, tuple(center)).tolist():
            draw.ellipse((qx - r, qy - r, qx + r, qy + r), fill=ink)
    else:
        raise ValueError(f"unknown texture {texture!r}; choose solid, striped or spotted")
    canvas.paste(pattern, mask=mask)
