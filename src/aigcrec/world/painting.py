"""Procedural illustrations: a subject composition (a map of colour slots) painted in a style with a palette.

Drawing happens in two steps so that the factors live where they do in real illustration:

1. ``compose(subject, rng, size)`` draws the scene as a *slot map*: each pixel holds a colour slot
   (sky, ground, main, secondary, accent, dark, light). Subject lives here: shapes and composition.
2. ``paint(slots, style, palette, rng)`` turns the slot map into RGB. Style lives here, in local texture
   (hatching, paper grain, pixel blocks, impasto strokes, outlines, dots); palette in the colours.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from aigcrec.world.vocab import PALETTES, STYLES, SUBJECTS

SKY, GROUND, MAIN, SECOND, ACCENT, DARK, LIGHT = range(7)

# Seven slot colours per palette: sky, ground, main, secondary, accent, dark, light.
PALETTE_COLORS: dict[str, np.ndarray] = {
    "bright_warm": np.array([(255, 214, 140), (236, 150, 70), (250, 186, 60), (214, 84, 48), (255, 238, 110),
                             (104, 48, 28), (255, 250, 222)], float),
    "dark_cool": np.array([(18, 30, 62), (24, 52, 72), (58, 100, 152), (38, 140, 160), (150, 200, 232),
                           (6, 10, 26), (196, 218, 255)], float),
    "pastel_calm": np.array([(222, 234, 250), (198, 234, 212), (246, 198, 214), (198, 188, 236),
                             (255, 238, 196), (118, 108, 140), (255, 255, 248)], float),
    "high_contrast_red": np.array([(22, 6, 6), (118, 0, 10), (222, 22, 32), (246, 244, 238), (255, 96, 36),
                                   (0, 0, 0), (255, 228, 218)], float),
    "misty_gray": np.array([(186, 190, 196), (140, 146, 150), (110, 116, 126), (166, 160, 150), (204, 198, 186),
                            (54, 58, 66), (226, 228, 230)], float),
    "vivid_neon": np.array([(16, 6, 38), (40, 0, 62), (255, 40, 200), (0, 236, 255), (178, 255, 40),
                            (6, 0, 16), (255, 255, 255)], float),
}


class Canvas:
    """A slot map drawn with PIL in unit coordinates (0..1 on both axes, y down)."""

    def __init__(self, size: int, flip: bool = False) -> None:
        self.s = size
        self.flip = flip
        self.img = Image.new("L", (size, size), SKY)
        self.d = ImageDraw.Draw(self.img)

    def _p(self, x: float, y: float) -> tuple[float, float]:
        if self.flip:
            x = 1.0 - x
        return (x * self.s, y * self.s)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, slot: int) -> None:
        (x0, y0), (x1, y1) = self._p(cx - rx, cy - ry), self._p(cx + rx, cy + ry)
        self.d.ellipse((min(x0, x1), y0, max(x0, x1), y1), fill=slot)

    def rect(self, x0: float, y0: float, x1: float, y1: float, slot: int) -> None:
        (a, b), (c, d) = self._p(x0, y0), self._p(x1, y1)
        self.d.rectangle((min(a, c), b, max(a, c), d), fill=slot)

    def poly(self, pts: list[tuple[float, float]], slot: int) -> None:
        self.d.polygon([self._p(x, y) for x, y in pts], fill=slot)

    def line(self, pts: list[tuple[float, float]], width: float, slot: int) -> None:
        self.d.line([self._p(x, y) for x, y in pts], fill=slot, width=max(1, round(width * self.s)),
                    joint="curve")

    def array(self) -> np.ndarray:
        return np.asarray(self.img, dtype=np.uint8)


# ---------------------------------------------------------------- subjects (compositions)

def _sky_ground(c: Canvas, rng: np.random.Generator, horizon: float, hills: bool = True) -> None:
    if hills:
        xs = np.linspace(-0.05, 1.05, 24)
        ph, amp = rng.uniform(0, 6.3), rng.uniform(0.01, 0.05)
        ys = horizon + amp * np.sin(xs * rng.uniform(3, 7) + ph)
        c.poly([(x, y) for x, y in zip(xs, ys)] + [(1.05, 1.05), (-0.05, 1.05)], GROUND)
    else:
        c.rect(-0.05, horizon, 1.05, 1.05, GROUND)


def _celestial(c: Canvas, rng: np.random.Generator) -> None:
    x, y, r = rng.uniform(0.1, 0.9), rng.uniform(0.08, 0.22), rng.uniform(0.05, 0.09)
    c.ellipse(x, y, r, r, LIGHT)


def draw_cat(c: Canvas, rng: np.random.Generator) -> None:
    _sky_ground(c, rng, rng.uniform(0.62, 0.78))
    if rng.random() < 0.5:
        _celestial(c, rng)
    k = rng.uniform(0.75, 1.1)
    cx, by = rng.uniform(0.38, 0.62), rng.uniform(0.86, 0.94)
    # tail: a thick curve from the back of the body
    t = np.linspace(0, 1, 10)
    side = 1 if rng.random() < 0.5 else -1
    tail = [(cx + side * k * (0.2 + 0.14 * u), by - k * (0.05 + 0.35 * u ** 1.3) + k * 0.06 * math.sin(5 * u))
            for u in t]
    c.line(tail, 0.045 * k, MAIN)
    c.ellipse(cx, by - 0.17 * k, 0.2 * k, 0.19 * k, MAIN)            # body
    c.ellipse(cx, by - 0.04 * k, 0.08 * k, 0.05 * k, SECOND)          # paws
    hx, hy, hr = cx + rng.uniform(-0.03, 0.03), by - 0.42 * k, 0.15 * k
    for s in (-1, 1):                                                   # ears
        c.poly([(hx + s * 0.13 * k, hy - 0.02 * k), (hx + s * 0.14 * k, hy - 0.23 * k),
                (hx + s * 0.03 * k, hy - 0.12 * k)], MAIN)
        c.poly([(hx + s * 0.115 * k, hy - 0.05 * k), (hx + s * 0.125 * k, hy - 0.17 * k),
                (hx + s * 0.06 * k, hy - 0.11 * k)], ACCENT)
    c.ellipse(hx, hy, hr * 1.1, hr, MAIN)                               # head
    for s in (-1, 1):                                                   # eyes with slit pupils
        c.ellipse(hx + s * 0.06 * k, hy - 0.01 * k, 0.035 * k, 0.04 * k, ACCENT)
        c.ellipse(hx + s * 0.06 * k, hy - 0.01 * k, 0.01 * k, 0.035 * k, DARK)
    c.poly([(hx - 0.02 * k, hy + 0.04 * k), (hx + 0.02 * k, hy + 0.04 * k), (hx, hy + 0.065 * k)], DARK)
    for s in (-1, 1):                                                   # whiskers
        for dy in (-0.015, 0.015):
            c.line([(hx + s * 0.05 * k, hy + 0.06 * k), (hx + s * 0.22 * k, hy + (0.05 + 2 * dy) * k)],
                   0.008, DARK)


def draw_girl(c: Canvas, rng: np.random.Generator) -> None:
    _sky_ground(c, rng, rng.uniform(0.7, 0.85), hills=False)
    if rng.random() < 0.4:
        _celestial(c, rng)
    k = rng.uniform(0.85, 1.1)
    cx, cy = rng.uniform(0.42, 0.58), rng.uniform(0.42, 0.5)
    long_hair = rng.random() < 0.6
    if long_hair:                                                        # hair behind the shoulders
        c.poly([(cx - 0.24 * k, cy - 0.05 * k), (cx + 0.24 * k, cy - 0.05 * k), (cx + 0.3 * k, cy + 0.42 * k),
                (cx - 0.3 * k, cy + 0.42 * k)], SECOND)
    c.poly([(cx - 0.32 * k, 1.05), (cx - 0.22 * k, cy + 0.3 * k), (cx + 0.22 * k, cy + 0.3 * k),
            (cx + 0.32 * k, 1.05)], MAIN)                                # dress / shoulders
    c.poly([(cx - 0.08 * k, cy + 0.3 * k), (cx, cy + 0.42 * k), (cx + 0.08 * k, cy + 0.3 * k)], LIGHT)  # collar
    c.rect(cx - 0.045 * k, cy + 0.15 * k, cx + 0.045 * k, cy + 0.31 * k, LIGHT)  # neck
    c.ellipse(cx, cy + 0.02 * k, 0.17 * k, 0.2 * k, LIGHT)              # face
    c.ellipse(cx, cy - 0.09 * k, 0.21 * k, 0.15 * k, SECOND)            # hair top
    for i in range(5):                                                   # bangs
        x = cx - 0.16 * k + i * 0.08 * k
        c.poly([(x - 0.05 * k, cy - 0.1 * k), (x + 0.05 * k, cy - 0.1 * k), (x + 0.01 * k, cy + 0.0 * k)], SECOND)
    for s in (-1, 1):                                                    # big eyes
        c.ellipse(cx + s * 0.07 * k, cy + 0.04 * k, 0.04 * k, 0.055 * k, DARK)
        c.ellipse(cx + s * 0.06 * k, cy + 0.025 * k, 0.013 * k, 0.015 * k, LIGHT)
    c.line([(cx - 0.03 * k, cy + 0.13 * k), (cx, cy + 0.14 * k), (cx + 0.03 * k, cy + 0.13 * k)], 0.01, DARK)
    if rng.random() < 0.6:                                               # ribbon
        c.poly([(cx + 0.1 * k, cy - 0.2 * k), (cx + 0.24 * k, cy - 0.28 * k), (cx + 0.22 * k, cy - 0.12 * k)], ACCENT)


def draw_dragon(c: Canvas, rng: np.random.Generator) -> None:
    _sky_ground(c, rng, rng.uniform(0.78, 0.9))
    k = rng.uniform(0.8, 1.05)
    cx, cy = rng.uniform(0.42, 0.58), rng.uniform(0.48, 0.58)
    up = rng.uniform(-0.05, 0.05)
    for s, w in ((-1, 0.8), (1, 1.0)):                                   # wings (far one smaller)
        pts = [(cx + s * 0.02 * k, cy - 0.05 * k), (cx + s * 0.42 * k * w, cy - (0.38 + up) * k),
               (cx + s * 0.45 * k * w, cy - 0.05 * k)]
        for j in range(3):
            pts.append((cx + s * (0.36 - 0.12 * j) * k * w, cy + (0.02 - 0.06 * (j % 2)) * k))
        c.poly(pts, SECOND)
        c.line([(cx + s * 0.02 * k, cy - 0.05 * k), (cx + s * 0.42 * k * w, cy - (0.38 + up) * k)], 0.012, DARK)
    t = np.linspace(0, 1, 14)                                            # tail
    tail = [(cx - 0.1 * k - 0.32 * k * u, cy + 0.12 * k + 0.08 * k * math.sin(4 * u + 1)) for u in t]
    c.line(tail, 0.05 * k, MAIN)
    c.poly([tail[-1], (tail[-1][0] - 0.06 * k, tail[-1][1] - 0.05 * k),
            (tail[-1][0] - 0.05 * k, tail[-1][1] + 0.05 * k)], ACCENT)
    c.ellipse(cx, cy + 0.08 * k, 0.17 * k, 0.11 * k, MAIN)              # body
    c.ellipse(cx, cy + 0.12 * k, 0.12 * k, 0.06 * k, ACCENT)            # belly
    neck = [(cx + 0.1 * k + 0.08 * k * u, cy + 0.05 * k - 0.26 * k * u) for u in t]
    c.line(neck, 0.07 * k, MAIN)
    hx, hy = neck[-1]
    c.ellipse(hx + 0.04 * k, hy, 0.08 * k, 0.055 * k, MAIN)             # head
    c.poly([(hx + 0.08 * k, hy - 0.03 * k), (hx + 0.2 * k, hy + 0.0 * k), (hx + 0.09 * k, hy + 0.045 * k)], MAIN)
    c.poly([(hx - 0.02 * k, hy - 0.04 * k), (hx - 0.08 * k, hy - 0.14 * k), (hx + 0.02 * k, hy - 0.05 * k)], ACCENT)
    c.ellipse(hx + 0.06 * k, hy - 0.015 * k, 0.015 * k, 0.015 * k, DARK)
    for dx in (-0.08, 0.08):                                             # legs
        c.line([(cx + dx * k, cy + 0.15 * k), (cx + dx * k + 0.02, cy + 0.25 * k)], 0.03 * k, MAIN)
    if rng.random() < 0.5:                                               # fire breath
        fx = hx + 0.2 * k
        c.poly([(fx, hy), (fx + 0.2, hy - 0.06), (fx + 0.24, hy + 0.02), (fx + 0.18, hy + 0.08)], ACCENT)


def draw_castle(c: Canvas, rng: np.random.Generator) -> None:
    _sky_ground(c, rng, rng.uniform(0.7, 0.8))
    if rng.random() < 0.6:
        _celestial(c, rng)
    k = rng.uniform(0.8, 1.05)
    cx, base = rng.uniform(0.42, 0.58), rng.uniform(0.8, 0.88)
    c.rect(cx - 0.3 * k, base - 0.3 * k, cx + 0.3 * k, base, MAIN)      # curtain wall
    for i in range(7):                                                    # battlements
        x = cx - 0.3 * k + i * 0.1 * k
        c.rect(x, base - 0.34 * k, x + 0.05 * k, base - 0.3 * k, MAIN)
    c.rect(cx - 0.12 * k, base - 0.5 * k, cx + 0.12 * k, base - 0.28 * k, MAIN)  # keep
    n_towers = int(rng.integers(2, 4))
    for i in range(n_towers):
        tx = cx + (-0.3 + 0.6 * i / (n_towers - 1)) * k
        top = base - (0.55 + 0.08 * rng.random()) * k
        c.rect(tx - 0.06 * k, top, tx + 0.06 * k, base, SECOND)
        c.poly([(tx - 0.08 * k, top), (tx + 0.08 * k, top), (tx, top - 0.17 * k)], ACCENT)  # cone roof
        c.rect(tx - 0.015 * k, top + 0.06 * k, tx + 0.015 * k, top + 0.11 * k, DARK)       # window
        if i == n_towers // 2:
            c.line([(tx, top - 0.17 * k), (tx, top - 0.26 * k)], 0.008, DARK)
            c.poly([(tx, top - 0.26 * k), (tx + 0.07 * k, top - 0.235 * k), (tx, top - 0.21 * k)], ACCENT)
    c.ellipse(cx, base - 0.1 * k, 0.06 * k, 0.08 * k, DARK)             # gate arch
    c.rect(cx - 0.06 * k, base - 0.1 * k, cx + 0.06 * k, base, DARK)
    for dx in (-0.2, 0.2):
        c.rect(cx + dx * k - 0.015 * k, base - 0.22 * k, cx + dx * k + 0.015 * k, base - 0.16 * k, DARK)


def draw_forest(c: Canvas, rng: np.random.Generator) -> None:
    _sky_ground(c, rng, rng.uniform(0.55, 0.68))
    if rng.random() < 0.5:
        _celestial(c, rng)
    rows = [(0.62, 0.55, SECOND), (0.8, 0.75, MAIN), (0.98, 1.0, MAIN)]
    for base, k, slot in rows:
        n = int(rng.integers(4, 7))
        xs = np.sort(rng.uniform(-0.05, 1.05, n))
        for x in xs:
            h = k * rng.uniform(0.35, 0.5)
            w = h * rng.uniform(0.3, 0.4)
            c.rect(x - 0.012 * k, base - 0.08 * k, x + 0.012 * k, base, DARK)   # trunk
            for j in range(3):                                                # three stacked tiers
                y0 = base - 0.06 * k - j * h * 0.28
                ww = w * (1 - 0.25 * j)
                c.poly([(x - ww, y0), (x + ww, y0), (x, y0 - h * 0.45)], slot)


def draw_ocean(c: Canvas, rng: np.random.Generator) -> None:
    horizon = rng.uniform(0.42, 0.56)
    c.rect(-0.05, horizon, 1.05, 1.05, MAIN)                            # sea
    sx, sr = rng.uniform(0.2, 0.8), rng.uniform(0.07, 0.11)
    c.ellipse(sx, horizon - sr * 0.6, sr, sr, LIGHT)                    # setting sun / moon
    c.rect(-0.05, horizon, 1.05, 1.05, MAIN)
    for j in range(6):                                                   # reflection
        w = sr * (1 - j * 0.13)
        y = horizon + 0.03 + j * 0.045
        c.rect(sx - w, y, sx + w, y + 0.012, LIGHT)
    n_waves, ph = int(rng.integers(6, 9)), rng.uniform(0, 6.3)
    for j in range(n_waves):                                             # wave crests
        y = horizon + 0.06 + (1 - horizon) * j / n_waves
        amp = 0.01 + 0.012 * j
        xs = np.linspace(-0.05, 1.05, 40)
        c.line([(x, y + amp * math.sin(x * (18 - j) + ph + j)) for x in xs], 0.008 + 0.003 * j, SECOND)
    if rng.random() < 0.7:                                               # sailboat
        bx, by = rng.uniform(0.2, 0.8), horizon + rng.uniform(0.04, 0.12)
        c.poly([(bx - 0.08, by), (bx + 0.08, by), (bx + 0.05, by + 0.03), (bx - 0.05, by + 0.03)], DARK)
        c.poly([(bx, by - 0.16), (bx, by - 0.01), (bx + 0.08, by - 0.01)], ACCENT)
    for _ in range(int(rng.integers(1, 4))):                             # clouds
        x, y = rng.uniform(0.0, 1.0), rng.uniform(0.05, horizon - 0.15)
        for dx in (-0.06, 0.0, 0.06):
            c.ellipse(x + dx, y + (0.01 if dx else -0.01), 0.06, 0.03, ACCENT)


def draw_robot(c: Canvas, rng: np.random.Generator) -> None:
    _sky_ground(c, rng, rng.uniform(0.78, 0.88), hills=False)
    k = rng.uniform(0.8, 1.05)
    cx, base = rng.uniform(0.42, 0.58), rng.uniform(0.9, 0.96)
    for s in (-1, 1):                                                   # legs and feet
        c.rect(cx + s * 0.08 * k - 0.035 * k, base - 0.2 * k, cx + s * 0.08 * k + 0.035 * k, base, SECOND)
        c.rect(cx + s * 0.08 * k - 0.06 * k, base - 0.04 * k, cx + s * 0.08 * k + 0.06 * k, base, DARK)
    raise_arm = rng.random() < 0.5
    for s in (-1, 1):                                                   # arms
        y1 = base - (0.62 if (raise_arm and s == 1) else 0.3) * k
        c.line([(cx + s * 0.2 * k, base - 0.45 * k), (cx + s * 0.3 * k, y1)], 0.05 * k, SECOND)
        c.ellipse(cx + s * 0.3 * k, y1, 0.04 * k, 0.04 * k, DARK)
    c.rect(cx - 0.2 * k, base - 0.5 * k, cx + 0.2 * k, base - 0.18 * k, MAIN)      # torso
    c.rect(cx - 0.11 * k, base - 0.42 * k, cx + 0.11 * k, base - 0.28 * k, DARK)   # chest panel
    for i in range(3):
        c.ellipse(cx - 0.06 * k + i * 0.06 * k, base - 0.35 * k, 0.018 * k, 0.018 * k, ACCENT)
    c.rect(cx - 0.03 * k, base - 0.56 * k, cx + 0.03 * k, base - 0.5 * k, DARK)    # neck
    c.rect(cx - 0.15 * k, base - 0.78 * k, cx + 0.15 * k, base - 0.56 * k, MAIN)   # head
    c.rect(cx - 0.11 * k, base - 0.72 * k, cx + 0.11 * k, base - 0.64 * k, DARK)   # visor
    for s in (-1, 1):
        c.ellipse(cx + s * 0.055 * k, base - 0.68 * k, 0.025 * k, 0.025 * k, LIGHT)
    c.line([(cx, base - 0.78 * k), (cx, base - 0.88 * k)], 0.01, DARK)              # antenna
    c.ellipse(cx, base - 0.89 * k, 0.025 * k, 0.025 * k, ACCENT)
    for s in (-1, 1):
        c.rect(cx + s * 0.15 * k, base - 0.7 * k, cx + s * 0.18 * k, base - 0.64 * k, SECOND)


def draw_flowers(c: Canvas, rng: np.random.Generator) -> None:
    _sky_ground(c, rng, rng.uniform(0.72, 0.86))
    n = int(rng.integers(3, 6))
    xs = np.linspace(0.2, 0.8, n) + rng.uniform(-0.05, 0.05, n)
    for i, x in enumerate(xs):
        top = rng.uniform(0.25, 0.5)
        r = rng.uniform(0.07, 0.1)
        c.line([(x, 1.02), (x + rng.uniform(-0.04, 0.04), top)], 0.016, SECOND)     # stem
        c.ellipse(x + 0.04, top + 0.25, 0.05, 0.018, SECOND)                        # leaf
        petals = int(rng.integers(5, 8))
        slot = MAIN if i % 2 == 0 else ACCENT
        a0 = rng.uniform(0, 6.3)
        for p in range(petals):
            a = a0 + 2 * math.pi * p / petals
            c.ellipse(x + r * 0.75 * math.cos(a), top + r * 0.75 * math.sin(a), r * 0.45, r * 0.45, slot)
        c.ellipse(x, top, r * 0.4, r * 0.4, DARK if slot == ACCENT else LIGHT)


SUBJECT_DRAWERS: dict[str, Callable[[Canvas, np.random.Generator], None]] = {
    "cat": draw_cat, "girl": draw_girl, "dragon": draw_dragon, "castle": draw_castle, "forest": draw_forest,
    "ocean": draw_ocean, "robot": draw_robot, "flowers": draw_flowers,
}
assert tuple(SUBJECT_DRAWERS) == SUBJECTS


def compose(subject: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """The slot map (size x size, uint8 slots 0..6) of one composition of ``subject``."""
    c = Canvas(size, flip=bool(rng.random() < 0.5))
    SUBJECT_DRAWERS[subject](c, rng)
    return c.array()


# ---------------------------------------------------------------- styles (rendering)

def _palette(palette: str, rng: np.random.Generator) -> np.ndarray:
    """The palette's slot colours with a small per-image jitter (brightness and a channel tilt)."""
    cols = PALETTE_COLORS[palette] * rng.uniform(0.92, 1.06) + rng.normal(0, 6, 3)
    return np.clip(cols, 0, 255)


def _flat(slots: np.ndarray, cols: np.ndarray) -> np.ndarray:
    img = cols[slots]                                                   # (H, W, 3)
    h = slots.shape[0]
    grad = np.linspace(-14, 14, h)[:, None, None]                       # sky gradient
    return np.where((slots == SKY)[..., None], img + grad, img)


def _edges(slots: np.ndarray) -> np.ndarray:
    e = np.zeros(slots.shape, bool)
    e[:, 1:] |= slots[:, 1:] != slots[:, :-1]
    e[1:, :] |= slots[1:, :] != slots[:-1, :]
    return e


def _lum(img: np.ndarray) -> np.ndarray:
    return img @ np.array([0.299, 0.587, 0.114])


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth noise with unit standard deviation at spatial scale ``sigma`` pixels."""
    h, w = shape
    if sigma < 2:
        n = ndimage.gaussian_filter(rng.normal(size=shape), sigma, mode="wrap")
    else:  # bicubic upsampling of coarse noise: same look as a wide Gaussian, a fraction of the cost
        step = sigma * 1.5
        gh, gw = int(h / step) + 4, int(w / step) + 4
        coarse = Image.fromarray(rng.normal(size=(gh, gw)).astype(np.float32), mode="F")
        n = np.asarray(coarse.resize((int(gw * step), int(gh * step)), Image.BICUBIC), float)
        n = n[int(step):int(step) + h, int(step):int(step) + w]
    return n / (n.std() + 1e-8)


def _blur(img: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of an RGB float image (through PIL, much faster than ndimage on 3 channels)."""
    return np.asarray(Image.fromarray(_u8(img)).filter(ImageFilter.GaussianBlur(radius)), float)


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0, 255).astype(np.uint8)


def render_cel(slots, cols, rng):
    s = slots.shape[0]
    img = _flat(slots, cols)
    d = max(2, s // 40)
    shifted = np.roll(np.roll(slots, -d, 0), -d, 1)                     # hard rim shadow on one side
    shadow = (shifted != slots) & (slots != SKY)
    img = np.where(shadow[..., None], img * 0.68, img)
    hl = (np.roll(np.roll(slots, d, 0), d, 1) != slots) & (slots != SKY) & ~shadow
    img = np.where(hl[..., None], img * 0.6 + 255 * 0.4, img)           # rim light
    edge = ndimage.binary_dilation(_edges(slots), iterations=max(1, s // 110))
    img[edge] = (20, 16, 24)
    return _u8(img)


def render_watercolor(slots, cols, rng):
    s = slots.shape[0]
    img = _flat(slots, cols)
    img = _blur(img, s / 110)
    # wet blooms: low-frequency variation of pigment density
    bloom = _noise(rng, (s, s), s / 20)[..., None]
    img = img + bloom * 18
    # pigment pools at the edges of each wash
    edge = ndimage.gaussian_filter(_edges(slots).astype(float), s / 180)
    img = img * (1 - np.clip(edge * 2.2, 0, 0.35))[..., None]
    paper = np.array([250, 246, 236], float)
    img = img * 0.72 + paper * 0.28                                     # translucent over white paper
    grain = _noise(rng, (s, s), 0.7) * 0.6 + _noise(rng, (s, s), 2.0) * 0.4
    img = img * (1 + 0.075 * grain)[..., None]
    return _u8(img)


def render_pencil(slots, cols, rng):
    s = slots.shape[0]
    flat = _flat(slots, cols)
    tone = 1 - _lum(flat) / 255                                         # darkness 0..1
    tone = np.where(slots == SKY, tone * 0.45, np.where(slots == GROUND, tone * 0.7, tone))  # subject first
    tone = ndimage.gaussian_filter(tone, 1.0) + _noise(rng, (s, s), s / 16) * 0.06
    yy, xx = np.mgrid[0:s, 0:s].astype(float)
    period = max(3.0, s / 48)
    jitter = _noise(rng, (s, s), s / 20) * 0.35
    dark = np.zeros((s, s))
    for thr, ang in ((0.12, 0.79), (0.35, -0.79), (0.6, 0.0), (0.78, 1.57)):
        u = (xx * math.cos(ang) + yy * math.sin(ang)) / period + jitter
        line = np.abs(u - np.round(u)) < 0.22
        dark = np.maximum(dark, line * (tone > thr + rng.uniform(-0.04, 0.04)) * 0.55)
    edge = ndimage.binary_dilation(_edges(slots), iterations=max(1, s // 128))
    dark = np.maximum(dark, edge * 0.85)
    paper = np.array([246, 243, 234], float) + (_noise(rng, (s, s), 0.8) * 4)[..., None]
    graphite = flat * 0.25 + np.array([70, 70, 78]) * 0.75              # a hint of the palette
    img = paper * (1 - dark[..., None]) + graphite * dark[..., None]
    return _u8(img)


def render_pixel(slots, cols, rng):
    s = slots.shape[0]
    b = max(3, s // 48)
    n = s // b
    small = slots[b // 2::b, b // 2::b][:n, :n]
    img = cols[small]
    # two-tone dithering of the sky band, quantised colours
    yy, xx = np.mgrid[0:n, 0:n]
    sky = small == SKY
    shade = ((xx + yy) % 2 == 0) & (yy > n * 0.25) & sky
    img = np.where(shade[..., None], img * 0.85, img)
    edge = _edges(small) & (small != SKY)
    img[edge] = cols[DARK] * 0.6
    img = np.round(img / 32) * 32
    big = np.repeat(np.repeat(img, b, 0), b, 1)
    out = np.zeros((s, s, 3))
    out[: big.shape[0], : big.shape[1]] = big[:s, :s]
    return _u8(out)


def render_impasto(slots, cols, rng):
    s = slots.shape[0]
    base = _blur(_flat(slots, cols), 1.5)
    canvas = Image.fromarray(_u8(base * 0.9))
    height = Image.new("L", (s, s), 0)
    dc, dh = ImageDraw.Draw(canvas), ImageDraw.Draw(height)
    n = int(s * s / 28)
    ys, xs = rng.integers(0, s, n), rng.integers(0, s, n)
    ang = (_noise(rng, (s, s), s / 8) * 1.2 + 0.4 * slots)[ys, xs]   # strokes follow a flow field
    half = rng.uniform(s / 110, s / 55, n)
    dx, dy = np.cos(ang) * half, np.sin(ang) * half
    colors = np.clip(base[ys, xs] + rng.normal(0, 8, (n, 3)), 0, 255).astype(int).tolist()
    ridge = (60 + rng.integers(0, 190, n)).tolist()
    width = max(3, s // 55)
    segs = np.stack([xs - dx, ys - dy, xs + dx, ys + dy], 1).tolist()
    for seg, col, hgt in zip(segs, colors, ridge):
        dc.line(seg, fill=tuple(col), width=width)
        dh.line(seg, fill=hgt, width=width)
    img = np.asarray(canvas, float)
    h = ndimage.gaussian_filter(np.asarray(height, float), 0.8)
    relief = (np.roll(h, 1, 1) - np.roll(h, -1, 1) + np.roll(h, 1, 0) - np.roll(h, -1, 0)) / 255
    img = img * (1 + 0.45 * relief)[..., None] + 30 * np.clip(relief, 0, None)[..., None]
    # painters keep the big shapes: a soft dark band where the regions meet
    edge = ndimage.gaussian_filter(_edges(slots).astype(float), s / 200)
    img = img * (1 - np.clip(edge * 2.5, 0, 0.55))[..., None]
    return _u8(img)


def render_ink(slots, cols, rng):
    s = slots.shape[0]
    paper = np.array([244, 238, 222], float)
    img = np.ones((s, s, 3)) * paper
    flat = _flat(slots, cols)
    # a pale ink wash in the palette's hue over the subject, darker regions solid black
    wash = (slots != SKY) & (slots != LIGHT)
    img = np.where(wash[..., None], paper * 0.8 + flat * 0.2, img)
    img = np.where((slots == DARK)[..., None], np.array([18, 16, 20], float), img)
    dist = ndimage.distance_transform_edt(~_edges(slots))
    weight = 0.6 + 1.6 * (0.5 + 0.5 * _noise(rng, (s, s), s / 25)) * s / 256   # varying brush pressure
    line = dist < weight
    img[line] = (14, 12, 16)
    splat = Image.new("L", (s, s), 0)                                 # ink splatter
    ds = ImageDraw.Draw(splat)
    for _ in range(int(rng.integers(8, 25))):
        y, x, r = rng.integers(0, s), rng.integers(0, s), rng.uniform(0.5, 2.0) * s / 256
        ds.ellipse((x - r, y - r, x + r, y + r), fill=1)
    img[np.asarray(splat, bool)] = (14, 12, 16)
    # a red seal in a corner
    c = int(s * 0.06)
    y0, x0 = s - 2 * c, s - 2 * c if rng.random() < 0.5 else c
    img[y0:y0 + c, x0:x0 + c] = (190, 30, 30)
    img *= (1 + 0.03 * _noise(rng, (s, s), 1.0))[..., None]
    return _u8(img)


def render_pointillism(slots, cols, rng):
    s = slots.shape[0]
    flat = _blur(_flat(slots, cols), 1)
    img = np.ones((s, s, 3)) * np.array([248, 246, 240], float)
    step = max(3, s // 56)
    yy, xx = np.mgrid[0:s, 0:s]
    for off in (0.0, 0.5):                                              # two offset layers of dots
        cy, cx = (yy / step + off).astype(int), (xx / step + off).astype(int)
        gh, gw = cy.max() + 1, cx.max() + 1
        jy, jx = rng.uniform(-0.12, 0.12, (2, gh, gw))
        centre_y = ((cy + 0.5 + jy[cy, cx] - off) * step).clip(0, s - 1)
        centre_x = ((cx + 0.5 + jx[cy, cx] - off) * step).clip(0, s - 1)
        inside = np.hypot(yy - centre_y, xx - centre_x) < step * rng.uniform(0.4, 0.46)
        dot = flat[centre_y.astype(int), centre_x.astype(int)] + rng.normal(0, 13, (gh, gw, 3))[cy, cx]
        img = np.where(inside[..., None], dot, img)
    return _u8(img)


def render_halftone(slots, cols, rng):
    s = slots.shape[0]
    flat = _flat(slots, cols)
    tone = 1 - _lum(flat) / 255
    light = flat * 0.5 + 255 * 0.5                                       # screen-printed paper colour
    cell = max(4.0, s / 40)
    ang = math.radians(rng.choice([15.0, 45.0, 75.0]))
    yy, xx = np.mgrid[0:s, 0:s].astype(float)
    u = (xx * math.cos(ang) + yy * math.sin(ang)) / cell
    v = (-xx * math.sin(ang) + yy * math.cos(ang)) / cell
    dist = np.hypot(u - np.round(u), v - np.round(v))                   # 0 at dot centres
    radius = 0.15 + 0.5 * np.sqrt(np.clip(tone, 0, 1))
    dots = dist < radius
    ink = flat * 0.35
    img = np.where(dots[..., None], ink, light)
    edge = ndimage.binary_dilation(_edges(slots), iterations=max(1, s // 80))
    img[edge] = (10, 10, 10)
    return _u8(img)


RENDERERS: dict[str, Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]] = {
    "cel": render_cel, "watercolor": render_watercolor, "pencil": render_pencil, "pixel": render_pixel,
    "impasto": render_impasto, "ink": render_ink, "pointillism": render_pointillism, "halftone": render_halftone,
}
assert tuple(RENDERERS) == STYLES and tuple(PALETTE_COLORS) == PALETTES


def paint(slots: np.ndarray, style: str, palette: str, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 image of ``slots`` in ``style`` with ``palette``."""
    return RENDERERS[style](slots, _palette(palette, rng), rng)


def illustration(subject: str, style: str, palette: str, seed_key: list[int], size: int = 256) -> Image.Image:
    """One item image; ``seed_key`` (e.g. ``[world_seed, 1, item_index]``) makes it reproducible."""
    rng = np.random.default_rng(seed_key)
    slots = compose(subject, rng, size)
    return Image.fromarray(paint(slots, style, palette, rng))

