"""A procedurally generated demo composite, so ``dkt demo`` works with no data at all.

The project may not ship real images (licences), yet a fresh install should still show the
tool doing its job. So we paint a sample ourselves that looks like the real problem:

* a *painting* with visible, oriented brush strokes in a small harmonious palette (either a
  swirling blue/yellow night sky over dark hills, or a warm ochre landscape), impasto
  relief and a faint canvas weave;
* a *photographic object* (a red apple or a glossy glazed vase) with smooth physically
  shaded surfaces, a specular highlight, a saturated colour foreign to the palette, slight
  sensor noise and crisp antialiased edges, pasted off-centre into the painting.

A harmonization model should visibly move the object toward the painting's palette and
texture. Everything is pure numpy plus Pillow (``ImageDraw`` for the strokes), seeded by a
:class:`numpy.random.Generator`, so a seed always gives the same bytes, and a 384x512
sample takes well under half a second on one core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "APPLE_COLOURS",
    "OBJECT_COLOURS",
    "OBJECT_KINDS",
    "DemoSample",
    "make_demo_sample",
    "make_object",
    "make_painting",
]

# Stroke sizes are tuned for this many pixels and scaled with sqrt(area) for other sizes.
_REF_SIDE = math.sqrt(384 * 512)

# Limited palettes (sRGB). A painting draws almost all of its colours from one of these.
_NIGHT_PALETTE = np.array(
    [
        (14, 24, 62),  # deep navy
        (30, 56, 128),  # ultramarine
        (62, 102, 170),  # cobalt
        (128, 160, 196),  # pale blue
        (226, 198, 84),  # chrome yellow
        (238, 226, 160),  # pale yellow
        (18, 36, 40),  # blue-black green (hills, cypress)
        (46, 70, 74),  # dull green-grey
    ],
    dtype=np.float32,
)
_OCHRE_PALETTE = np.array(
    [
        (240, 226, 186),  # cream
        (226, 200, 134),  # pale wheat
        (204, 154, 70),  # yellow ochre
        (172, 104, 52),  # burnt sienna
        (124, 118, 62),  # olive
        (86, 62, 40),  # umber
        (168, 170, 128),  # sage
        (196, 186, 160),  # warm grey
        (160, 186, 184),  # pale celadon sky
    ],
    dtype=np.float32,
)

#: Saturated "product photo" albedos; the demo picks one far from the painting's colours.
OBJECT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (205, 20, 28),  # apple red
    (200, 18, 112),  # magenta
    (18, 168, 62),  # emerald
    (240, 96, 8),  # orange
    (0, 168, 178),  # turquoise
    (118, 36, 196),  # violet
)
#: Apple skins: red, crimson, green; still saturated and foreign to both palettes.
APPLE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (205, 20, 28),  # red
    (170, 8, 40),  # crimson
    (70, 176, 30),  # green apple
)
#: The objects :func:`make_object` can render.
OBJECT_KINDS: tuple[str, ...] = ("apple", "vase")


@dataclass(frozen=True)
class DemoSample:
    """A painting, the same painting with a foreign object pasted in, and the paste mask.

    ``composite`` and ``painting`` are uint8 HxWx3; ``mask`` is uint8 HxW with 255 on the
    object, 0 on the painting and a one-pixel antialiased rim in between. Outside the mask
    the composite equals the painting exactly, as for a real cut-and-paste.
    """

    composite: np.ndarray
    mask: np.ndarray
    painting: np.ndarray


# --------------------------------------------------------------------------- helpers


def _smooth_noise(height: int, width: int, cells: float, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency value noise (std about 1): a coarse Gaussian grid upsampled bicubically.

    ``cells`` is the number of grid cells along the longer side, i.e. roughly how many
    blobs the noise has across the image.
    """
    longer = max(height, width)
    gh = max(2, round(cells * height / longer)) + 2
    gw = max(2, round(cells * width / longer)) + 2
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    up = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(up, dtype=np.float32)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-pixel linear blend of two colour images (or colours) with weight map ``t``."""
    t = np.clip(t, 0.0, 1.0)[..., None]
    return a + (b - a) * t


def _box_downsample(a: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (used to antialias supersampled masks)."""
    h, w = a.shape[0] // factor, a.shape[1] // factor
    return a[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3))


def _blur(a: np.ndarray, passes: int = 2) -> np.ndarray:
    """Cheap separable blur (repeated 1-2-1 filter, edge-replicated) on a 2-D float array."""
    out = a.astype(np.float32)
    for _ in range(passes):
        p = np.pad(out, 1, mode="edge")
        out = 0.25 * p[1:-1, :-2] + 0.5 * p[1:-1, 1:-1] + 0.25 * p[1:-1, 2:]
        p = np.pad(out, 1, mode="edge")
        out = 0.25 * p[:-2, 1:-1] + 0.5 * p[1:-1, 1:-1] + 0.25 * p[2:, 1:-1]
    return out


def _to_srgb_u8(linear: np.ndarray) -> np.ndarray:
    """Linear-light [0, 1] -> sRGB-ish uint8 (simple 2.2 gamma is plenty for a demo)."""
    return np.clip(np.power(np.clip(linear, 0.0, None), 1 / 2.2) * 255.0 + 0.5, 0, 255)


def _to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB-ish [0, 255] -> linear light [0, 1], the inverse of :func:`_to_srgb_u8`."""
    return np.power(np.asarray(srgb, dtype=np.float32) / 255.0, 2.2)


# --------------------------------------------------------------------------- painting


def _night_scene(
    h: int, w: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base colours, stroke stream function and palette for a swirling night sky.

    Strokes follow the iso-lines of the stream function: the sky's is a vertical ramp plus
    Gaussian bumps around a few centres (so strokes curl into whirls and halos around the
    moon and stars), the hills' follows the hill contours, a cypress gets vertical flames.
    """
    pal = _NIGHT_PALETTE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    side = math.sqrt(h * w)
    n1 = _smooth_noise(h, w, 5, rng)
    n2 = _smooth_noise(h, w, 9, rng)

    # Hills: a wavy horizon around 62-70% height, plus a nearer ridge.
    xs = np.arange(w, dtype=np.float32)
    ph = rng.uniform(0, 2 * math.pi, 3)
    horizon = h * (
        0.66
        + 0.035 * np.sin(xs / w * 2 * math.pi * 1.3 + ph[0])
        + 0.02 * np.sin(xs / w * 2 * math.pi * 3.1 + ph[1])
    )
    ridge = h * (0.82 + 0.04 * np.sin(xs / w * 2 * math.pi * 0.8 + ph[2]))
    ground = yy >= horizon[None, :]
    near = yy >= ridge[None, :]

    # Sky: navy at the top to cobalt/pale blue near the horizon, mottled.
    t = np.clip(yy / horizon[None, :], 0, 1) + 0.25 * n1
    sky = _mix(pal[0], pal[1], t * 1.3)
    sky = _mix(sky, pal[2], (t - 0.55) * 2.0)
    sky = _mix(sky, pal[3], 0.45 * np.clip(n2 - 0.6, 0, 1) + 0.25 * np.clip(t - 0.8, 0, 1))

    psi = yy * 0.6 + 0.05 * side * n1

    # Whirls: big spiral eddies in the upper sky, with pale-blue bands.
    n_whirls = int(rng.integers(1, 3))
    for _ in range(n_whirls):
        cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.22, 0.42) * h
        rad = rng.uniform(0.12, 0.18) * side
        d = np.hypot(xx - cx, yy - cy)
        ang = np.arctan2(yy - cy, xx - cx)
        bump = np.exp(-((d / rad) ** 2))
        psi += rng.choice([-1.0, 1.0]) * 1.6 * rad * bump
        spiral = 0.5 + 0.5 * np.cos(d / rad * 9.0 - ang * 2.0)
        sky = _mix(sky, pal[3], 0.55 * spiral * bump)
        sky = _mix(sky, pal[2], 0.35 * (1 - spiral) * bump)

    # Moon and stars: yellow cores with halo rings; strokes circle them.
    n_stars = int(rng.integers(4, 8))
    for i in range(n_stars):
        moon = i == 0
        cx = rng.uniform(0.06, 0.94) * w
        cy = rng.uniform(0.06, 0.5) * h
        rad = (rng.uniform(0.035, 0.05) if moon else rng.uniform(0.012, 0.022)) * side
        d = np.hypot(xx - cx, yy - cy)
        core = np.clip(1.3 - d / rad, 0, 1)
        halo = np.exp(-(((d - 1.9 * rad) / (0.55 * rad)) ** 2))
        glow = np.exp(-((d / (3.2 * rad)) ** 2))
        sky = _mix(sky, pal[3], 0.5 * glow)
        sky = _mix(sky, pal[4], 0.85 * halo)
        sky = _mix(sky, pal[5] if moon else pal[4], core)
        psi += 1.2 * rad * np.exp(-((d / (2.4 * rad)) ** 2)) * (3.0 if moon else 1.5)

    # Ground: blue-black hills, lighter far ridge, a few lamp-lit yellow dabs.
    far = _mix(pal[1], pal[7], 0.5 + 0.4 * n2)
    nearc = _mix(pal[6], pal[1], 0.35 + 0.3 * n1)
    lights = np.clip(_smooth_noise(h, w, 30, rng) - 1.6, 0, 1) * 2.5
    nearc = _mix(nearc, pal[4], lights * near)
    base = np.where(ground[..., None], np.where(near[..., None], nearc, far), sky)
    psi_ground = (yy - np.where(near, ridge[None, :], horizon[None, :])) + 0.04 * side * n2
    psi = np.where(ground, psi_ground * 1.0 + side, psi)

    # A cypress: a tall dark flame on one side, with vertical strokes.
    cx = rng.choice([rng.uniform(0.08, 0.2), rng.uniform(0.8, 0.92)]) * w
    top = rng.uniform(0.12, 0.3) * h
    half = 0.045 * w
    frac = np.clip((yy - top) / (h - top), 0, 1)
    wobble = 0.25 * half * np.sin(yy / h * 40 + ph[0])
    cyp = (yy > top) & (np.abs(xx - cx + wobble) < half * np.sqrt(frac) * 1.4)
    base = np.where(cyp[..., None], _mix(pal[6], pal[7], 0.5 + 0.5 * n2), base)
    psi = np.where(cyp, (xx - cx) * 4.0 + 3 * side, psi)
    return base.astype(np.float32), psi.astype(np.float32), pal


def _ochre_scene(
    h: int, w: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base colours, stroke stream function and palette for a warm ochre landscape.

    A pale warm sky with drifting clouds over rolling field bands (wheat, ochre, sienna,
    olive) and a few dark trees on the horizon; field strokes run along the bands.
    """
    pal = _OCHRE_PALETTE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    side = math.sqrt(h * w)
    n1 = _smooth_noise(h, w, 5, rng)
    n2 = _smooth_noise(h, w, 11, rng)
    xs = np.arange(w, dtype=np.float32)
    ph = rng.uniform(0, 2 * math.pi, 8)

    horizon = h * (0.42 + 0.03 * np.sin(xs / w * 2 * math.pi * 1.1 + ph[0]))
    t = np.clip(yy / horizon[None, :], 0, 1)
    sky = _mix(pal[8], pal[7], t * 1.6 + 0.3 * n1)
    sky = _mix(sky, pal[0], (t - 0.45) * 2.0 + 0.2 * n1)
    clouds = np.clip(_smooth_noise(h, w, 7, rng) * 0.9 - 0.3, 0, 1) * (1 - t)
    sky = _mix(sky, pal[0] * 1.03, clouds * 1.5)
    sky = _mix(sky, pal[1], 0.35 * np.clip(t - 0.6, 0, 1) * 2.5)
    # Sky strokes: long diagonal drifts.
    psi = (yy * 0.8 - xx * 0.25) + 0.06 * side * n1

    # Fields: bands whose boundaries roll; band index picks a palette colour.
    field_cols = [pal[1], pal[2], pal[4], pal[3], pal[2], pal[6], pal[3], pal[5]]
    order = rng.permutation(len(field_cols))
    v = (yy - horizon[None, :]) / np.maximum(h - horizon[None, :], 1)
    roll = 0.06 * np.sin(xx / w * 2 * math.pi * 1.4 + ph[1]) + 0.04 * n1
    coord = np.clip(v, 0, 1) + roll * np.clip(v * 3, 0, 1)
    bands = np.clip((np.sqrt(np.clip(coord, 0, 1)) * 6).astype(np.int32), 0, 5)
    fields = np.zeros((h, w, 3), np.float32)
    for b in range(6):
        col = field_cols[order[b]]
        tone = _mix(col, pal[5], 0.18 * np.clip(n2, 0, 1))
        fields = np.where((bands == b)[..., None], tone, fields)
    ground = v >= 0
    base = np.where(ground[..., None], fields, sky)
    psi_ground = coord * h * 2.0 + 0.02 * side * n2
    psi = np.where(ground, psi_ground + side, psi)

    # Trees: dark round crowns sitting on the horizon, dabbed in circles.
    for _ in range(int(rng.integers(2, 5))):
        cx = rng.uniform(0.05, 0.95) * w
        rad = rng.uniform(0.025, 0.05) * side
        cy = float(horizon[int(min(max(cx, 0), w - 1))]) - 0.6 * rad
        d = np.hypot(xx - cx, (yy - cy) * 0.8)
        crown = d < rad * (1 + 0.15 * n2)
        base = np.where(crown[..., None], _mix(pal[5], pal[4], 0.5 + 0.5 * n2), base)
        psi = np.where(crown, d * 3 + 3 * side, psi)

    # A pale sun low in the sky, with circling strokes.
    cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.1, 0.25) * h
    rad = 0.04 * side
    d = np.hypot(xx - cx, yy - cy)
    sky_sun = np.clip(1.3 - d / rad, 0, 1) * (yy < horizon[None, :])
    base = _mix(base, pal[0] * 1.04, sky_sun + 0.4 * np.exp(-((d / (2.5 * rad)) ** 2)) * ~ground)
    psi += (1.5 * rad * np.exp(-((d / (2.5 * rad)) ** 2))) * ~ground
    return base.astype(np.float32), psi.astype(np.float32), pal


def _stroke_layer(
    canvas: ImageDraw.ImageDraw,
    relief: ImageDraw.ImageDraw,
    base: np.ndarray,
    angle: np.ndarray,
    palette: np.ndarray,
    rng: np.random.Generator,
    *,
    count: int,
    length: tuple[float, float],
    width: tuple[float, float],
    snap: float,
    jitter: float,
) -> None:
    """Draw ``count`` curved strokes that follow the flow field ``angle``.

    Each stroke starts at a random point, takes its colour from the base image there,
    pulled toward the nearest palette colour by ``snap`` (this is what keeps the palette
    limited) plus a little per-stroke jitter, then walks a few steps along the flow so it
    bends with it. Wide strokes also get two thin bristle streaks a shade lighter/darker,
    and every stroke is stamped into the ``relief`` height map for impasto shading.
    """
    h, w = angle.shape
    if count <= 0:
        return
    steps = 4
    px = rng.uniform(0, w, count)
    py = rng.uniform(0, h, count)
    lengths = rng.uniform(*length, count)
    widths = np.maximum(1, np.round(rng.uniform(*width, count))).astype(int)

    iy = np.clip(py.astype(int), 0, h - 1)
    ix = np.clip(px.astype(int), 0, w - 1)
    col = base[iy, ix]
    dist = ((col[:, None, :] - palette[None, :, :]) ** 2).sum(-1)
    nearest = palette[np.argmin(dist, axis=1)]
    col = col * (1 - snap) + nearest * snap
    # Mostly value jitter (lighter/darker paint), only a touch of hue drift.
    col = col + rng.normal(0, 0.3 * jitter, (count, 3)) + rng.normal(0, jitter, (count, 1))
    col = np.clip(col, 0, 255)
    heights = rng.integers(60, 256, count)

    # Trace the strokes through the flow field, all at once. Strokes go both ways from
    # their start so they are centred on it; direction is kept continuous step to step.
    pts = np.zeros((2 * steps + 1, count, 2), np.float32)
    pts[steps] = np.stack([px, py], axis=1)
    step_len = lengths / (2 * steps)
    for sign in (1.0, -1.0):
        x, y = px.copy(), py.copy()
        prev = None
        for k in range(1, steps + 1):
            a = angle[np.clip(y.astype(int), 0, h - 1), np.clip(x.astype(int), 0, w - 1)]
            dx, dy = np.cos(a), np.sin(a)
            if prev is not None:
                flip = dx * prev[0] + dy * prev[1] < 0
                dx, dy = np.where(flip, -dx, dx), np.where(flip, -dy, dy)
            prev = (dx, dy)
            x = x + sign * dx * step_len
            y = y + sign * dy * step_len
            pts[steps + int(sign) * k] = np.stack([x, y], axis=1)

    # Bristle offsets along the stroke normal (from the stroke's overall direction).
    direc = pts[-1] - pts[0]
    norm = np.maximum(np.hypot(direc[:, 0], direc[:, 1]), 1e-3)
    nx, ny = -direc[:, 1] / norm, direc[:, 0] / norm

    pts_l = pts.transpose(1, 0, 2).tolist()
    col_l = np.round(col).astype(int).tolist()
    for i in range(count):
        poly = [tuple(p) for p in pts_l[i]]
        c = tuple(col_l[i])
        wd = int(widths[i])
        # Round joints only where a stroke is wide enough for gaps to show (speed).
        canvas.line(poly, fill=c, width=wd, joint="curve" if wd >= 5 else None)
        relief.line(poly, fill=int(heights[i]), width=wd)
        if wd >= 3:
            off = 0.28 * wd
            for s, shade in ((1.0, 1.12), (-1.0, 0.88)):
                ox, oy = s * off * nx[i], s * off * ny[i]
                streak = [(p[0] + ox, p[1] + oy) for p in poly[1:-1]]
                sc = tuple(min(255, int(v * shade)) for v in c)
                canvas.line(streak, fill=sc, width=1)


def make_painting(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Paint a brush-stroked scene: uint8 ``height`` x ``width`` x 3.

    The scene (night sky or ochre landscape, chosen by ``rng``) is first laid in as a
    low-frequency colour base, then covered by three passes of strokes (broad, medium,
    fine detail) that follow a flow field and take palette colours. A relief map of the
    strokes is lit from the top-left to give the paint body (impasto), and a faint
    canvas weave shows through. Brush sizes scale with the image so small renders still
    look painted.
    """
    if height < 8 or width < 8:
        raise ValueError(f"painting must be at least 8x8 pixels, got {height}x{width}")
    h, w = height, width
    scene = _night_scene if rng.random() < 0.5 else _ochre_scene
    base, psi, palette = scene(h, w, rng)

    # Strokes run along iso-lines of psi: perpendicular to its gradient, with jitter.
    gy, gx = np.gradient(_blur(psi, 1))
    angle = np.arctan2(-gx, gy) + 0.25 * _smooth_noise(h, w, 14, rng)
    angle = angle.astype(np.float32)

    scale = max(math.sqrt(h * w) / _REF_SIDE, 0.2)
    area = h * w
    img = Image.fromarray(np.clip(base + 0.5, 0, 255).astype(np.uint8))
    rel = Image.new("L", (w, h), 128)
    canvas, relief = ImageDraw.Draw(img), ImageDraw.Draw(rel)
    layers = (
        # count per pixel, length, width, palette snap, colour jitter
        (1 / 110, (16, 30), (6, 9), 0.55, 7.0),
        (1 / 55, (9, 18), (3, 5), 0.5, 9.0),
        (1 / 260, (5, 10), (2, 3), 0.35, 12.0),
    )
    for density, length, width_, snap, jitter in layers:
        _stroke_layer(
            canvas,
            relief,
            base,
            angle,
            palette,
            rng,
            count=int(area * density),
            length=(length[0] * scale, length[1] * scale),
            width=(width_[0] * scale, width_[1] * scale),
            snap=snap,
            jitter=jitter,
        )

    paint = np.asarray(img, dtype=np.float32)
    # Impasto: light the stroke relief from the top-left.
    hgt = _blur(np.asarray(rel, dtype=np.float32), 1)
    ry, rx = np.gradient(hgt)
    light = 1.0 + 0.0035 * (-(rx + ry))
    # Canvas weave: a faint crossed pattern with a period of ~3 px.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    weave = 0.02 * np.sin(xx * 2.1) * np.sin(yy * 2.1)
    paint = paint * np.clip(light + weave, 0.75, 1.25)[..., None]
    return np.clip(paint + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- object


def _apple_frame(h: int, w: int) -> tuple[float, float, float]:
    """Centre and radius of an apple resting on the bottom of an ``h`` x ``w`` box.

    The apple is kept round (a stretched apple looks wrong) and leaves room above it for
    the stem, so a tall box just gets a little empty space at the top.
    """
    rad = min(w / 2.0, h / 2.12)
    return w / 2.0, h - 0.93 * rad, rad


def _apple(
    h: int, w: int, colour: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A studio-lit apple: linear-light albedo map, normals, and 4x-supersampled coverage.

    Returns (albedo HxWx3 linear, normal HxWx3, coverage HxW float).
    """
    ss = 4
    cx, cy, rad = _apple_frame(h, w)

    def shape(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.hypot(u, v)
        phi = np.arctan2(v, u)
        top = (phi + math.pi / 2 + math.pi) % (2 * math.pi) - math.pi
        bottom = (phi - math.pi / 2 + math.pi) % (2 * math.pi) - math.pi
        rho = (
            0.985
            - 0.11 * np.exp(-((top / 0.34) ** 2))
            - 0.05 * np.exp(-((bottom / 0.3) ** 2))
            + 0.015 * np.cos(2 * phi)
        )
        return d, rho

    def grid(n: int) -> tuple[np.ndarray, np.ndarray]:
        ys = ((np.arange(h * n, dtype=np.float32) + 0.5) / n - cy) / rad
        xs = ((np.arange(w * n, dtype=np.float32) + 0.5) / n - cx) / rad
        u, v = np.meshgrid(xs, ys)
        return u, v * 1.06  # apples are a little wider than tall

    us, vs = grid(ss)
    d, rho = shape(us, vs)
    cov = _box_downsample((d < rho).astype(np.float32), ss)

    u, v = grid(1)
    d, rho = shape(u, v)
    q = np.clip(d / rho, 0, 0.995)
    nz = np.sqrt(1 - q**2)
    scale = np.where(d > 1e-6, q / np.maximum(d, 1e-6), 0.0)
    n = np.stack([u * scale, v * scale, nz], axis=-1)
    # The stem cavity: tilt normals toward the stem so the dimple reads as a dent.
    cav = np.exp(-((u**2 + (v + 0.8) ** 2) / 0.05))
    n[..., 1] += 0.9 * cav * np.sign(v + 0.8)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)

    # Albedo: base colour with streaks radiating from the stem and a paler blush.
    alb = _to_linear(colour)[None, None, :] * np.ones((h, w, 1), np.float32)
    streak_ang = np.arctan2(v + 0.85, u)
    freq = rng.uniform(14, 22)
    streaks = 0.5 + 0.5 * np.sin(streak_ang * freq + _smooth_noise(h, w, 6, rng) * 1.5)
    dark = _to_linear(np.asarray(colour) * 0.55)
    light = _to_linear(np.clip(colour + np.array((18, 22, 8), np.float32), 0, 255))
    alb = _mix(alb, dark, 0.35 * streaks)
    alb = _mix(alb, light, 0.3 * np.clip(_smooth_noise(h, w, 3, rng), 0, 1))
    return alb.astype(np.float32), n.astype(np.float32), cov.astype(np.float32)


def _vase(
    h: int, w: int, colour: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A glazed vase (surface of revolution): linear albedo, normals, supersampled coverage.

    The profile is a smooth random variation on neck / shoulder / belly / foot, and the
    open mouth is an ellipse showing the dark interior, so it reads as a 3-D object.
    """
    ss = 4
    ctrl_t = np.array([0.0, 0.06, 0.2, 0.34, 0.6, 0.84, 0.95, 1.0])
    ctrl_r = np.array([0.44, 0.4, 0.27, 0.5, 0.98, 0.78, 0.52, 0.5])
    ctrl_r = ctrl_r * rng.uniform(0.9, 1.05, ctrl_r.size)
    ctrl_r[4] = 0.98
    ctrl_t[2:6] += rng.uniform(-0.03, 0.03, 4)
    fine_t = np.linspace(0, 1, 512)
    prof = np.interp(fine_t, ctrl_t, ctrl_r)
    kern = np.exp(-0.5 * (np.arange(-40, 41) / 14.0) ** 2)
    prof = np.convolve(np.pad(prof, 40, mode="edge"), kern / kern.sum(), mode="valid")
    prof = np.minimum(prof, 0.985)
    t_lip, e_lip = 0.045, 0.038

    def inside(u: np.ndarray, t: np.ndarray) -> np.ndarray:
        r = np.interp(t, fine_t, prof)
        r0 = prof[int(t_lip * 511)]
        body = (np.abs(u) < r) & (t > t_lip) & (t < 0.995)
        mouth = (u / r0) ** 2 + ((t - t_lip) / e_lip) ** 2 < 1
        return body | mouth

    ys = (np.arange(h * ss, dtype=np.float32) + 0.5) / (h * ss)
    xs = (np.arange(w * ss, dtype=np.float32) + 0.5) / (w * ss) * 2 - 1
    us, ts = np.meshgrid(xs, ys)
    cov = _box_downsample(inside(us, ts).astype(np.float32), ss)

    ys1 = (np.arange(h, dtype=np.float32) + 0.5) / h
    xs1 = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
    u, t = np.meshgrid(xs1, ys1)
    r = np.interp(t, fine_t, prof)
    dr = np.gradient(prof, fine_t)
    drdt = np.interp(t, fine_t, dr)
    s = np.clip(u / np.maximum(r, 1e-3), -0.995, 0.995)
    nz = np.sqrt(1 - s**2)
    # Surface x^2 + z^2 = R(y)^2 -> normal ~ (x/R, -dR/dy, z/R), in pixel units.
    dry = drdt * (w / 2) / h
    n = np.stack([s, -dry, nz], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)

    alb = _to_linear(colour)[None, None, :] * np.ones((h, w, 1), np.float32)
    # Glaze pools darker toward the foot, and a thin pale rim at the lip.
    alb = alb * (1 - 0.25 * np.clip((t - 0.75) / 0.25, 0, 1))[..., None]
    r0 = prof[int(t_lip * 511)]
    ell = (u / r0) ** 2 + ((t - t_lip) / e_lip) ** 2
    inner = (u / (r0 * 0.86)) ** 2 + ((t - t_lip) / (e_lip * 0.8)) ** 2 < 1
    rim = (ell < 1.0) & ~inner
    n = np.where(rim[..., None], np.array([0.0, -0.8, 0.6], np.float32), n)
    interior = inner[..., None]
    alb = np.where(interior, alb * 0.12, alb)
    n = np.where(interior, np.array([0.0, 0.9, 0.43], np.float32), n)
    return alb.astype(np.float32), n.astype(np.float32), cov.astype(np.float32)


def make_object(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    kind: str | None = None,
    colour: tuple[int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render a photographic object filling a ``height`` x ``width`` box.

    Returns ``(rgb, alpha)``: uint8 hxwx3 and float32 hxw in [0, 1] (antialiased edge).
    The object (``kind`` "apple" or "vase", random by default) is shaded the way a camera
    sees it: smooth diffuse falloff in linear light, a sharp specular highlight and a
    window reflection, a cool rim light, then a little sensor noise. ``colour`` (sRGB
    albedo) defaults to a random entry of :data:`APPLE_COLOURS` or :data:`OBJECT_COLOURS`.
    Everything about it is meant to clash with a painting, which is what a harmonization
    model must fix. An apple stays round and rests on the bottom of the box.
    """
    if height < 4 or width < 4:
        raise ValueError(f"object must be at least 4x4 pixels, got {height}x{width}")
    if kind is None:
        kind = "apple" if rng.random() < 0.5 else "vase"
    if kind not in OBJECT_KINDS:
        raise ValueError(f"unknown object kind {kind!r}; expected one of {OBJECT_KINDS}")
    h, w = height, width
    is_apple = kind == "apple"
    if colour is None:
        choices = APPLE_COLOURS if is_apple else OBJECT_COLOURS
        colour = choices[int(rng.integers(len(choices)))]
    col = np.asarray(colour, dtype=np.float32)
    if is_apple:
        alb, n, cov = _apple(h, w, col, rng)
        shininess, spec_k, window_k = 70.0, 0.55, 0.06
    else:
        alb, n, cov = _vase(h, w, col, rng)
        shininess, spec_k, window_k = 160.0, 0.9, 0.45

    light = np.array([-0.5, -0.6, 0.62], np.float32)
    light /= np.linalg.norm(light)
    view = np.array([0.0, 0.0, 1.0], np.float32)
    half = light + view
    half /= np.linalg.norm(half)
    ndl = np.clip(n @ light, 0, 1)
    ndh = np.clip(n @ half, 0, 1)
    nz = np.clip(n[..., 2], 0, 1)

    # Soft box key light + dim fill + ambient occlusion toward the bottom.
    yy = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h
    occl = 1.0 - 0.35 * np.clip((yy - 0.6) / 0.4, 0, 1) ** 1.5
    fill = 0.12 * np.clip(n @ np.array([0.7, 0.2, 0.7], np.float32), 0, 1)
    diffuse = (0.06 + 0.95 * ndl + fill) * occl
    rgb = alb * diffuse[..., None]
    # Specular: a tight white highlight plus a broader sheen.
    spec = spec_k * ndh**shininess + 0.06 * ndh**8
    # Studio window reflected in the surface: reflect the view ray about the normal.
    refl = 2 * nz[..., None] * n - view
    win = np.clip(1 - np.abs(refl[..., 0] + 0.42) / 0.12, 0, 1) * np.clip(
        1 - np.abs(refl[..., 1] + 0.1) / 0.45, 0, 1
    )
    spec = spec + window_k * np.clip(win * 2.5, 0, 1)
    # Fresnel-ish cool rim light from the studio background.
    rim = 0.18 * (1 - nz) ** 3
    rgb = rgb + spec[..., None] + rim[..., None] * np.array([0.55, 0.65, 0.8], np.float32)
    out = _to_srgb_u8(rgb)

    # Sensor noise: luminance grain plus weaker chroma noise.
    out = out + rng.normal(0, 1.6, (h, w, 1)) + rng.normal(0, 0.8, (h, w, 3))
    out = np.clip(out + 0.0, 0, 255).astype(np.uint8)

    if is_apple:
        out, cov = _draw_stem(out, cov, rng)
    return out, np.clip(cov, 0, 1).astype(np.float32)


def _draw_stem(
    rgb: np.ndarray, cov: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Add a short woody stem rising from the apple's cavity (colour and coverage)."""
    h, w = cov.shape
    cx, cy, rad = _apple_frame(h, w)
    x0, y0 = cx, cy - 0.72 * rad
    lean = rng.uniform(0.06, 0.14) * rad * rng.choice([-1.0, 1.0])
    pts = [(x0, y0), (x0 + 0.4 * lean, cy - 0.92 * rad), (x0 + lean, max(0.5, cy - 1.1 * rad))]
    stem_w = max(2, round(0.07 * rad))
    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    draw.line(pts, fill=(84, 58, 30), width=stem_w, joint="curve")
    # A lit edge on the stem so it does not look flat.
    draw.line([(x - 0.25 * stem_w, y) for x, y in pts[1:]], fill=(140, 106, 64), width=1)
    ss = 4
    a = Image.new("L", (w * ss, h * ss), 0)
    ImageDraw.Draw(a).line(
        [(x * ss, y * ss) for x, y in pts], fill=255, width=stem_w * ss, joint="curve"
    )
    stem_cov = _box_downsample(np.asarray(a, dtype=np.float32) / 255.0, ss)
    return np.asarray(img), np.maximum(cov, stem_cov)


# --------------------------------------------------------------------------- composite


def make_demo_sample(height: int = 384, width: int = 512, seed: int = 0) -> DemoSample:
    """Generate the demo composite: a painting with a foreign photographic object pasted in.

    The object covers about a tenth to a sixth of the frame, sits fully inside it, off-centre
    (left or right third, in the lower half, where a pasted object usually goes), and
    its colour is chosen far from the painting's own colours so the mismatch is obvious.
    The same ``seed`` always gives identical bytes.
    """
    if height < 32 or width < 32:
        raise ValueError(f"demo sample must be at least 32x32 pixels, got {height}x{width}")
    rng = np.random.default_rng(seed)
    painting = make_painting(height, width, rng)

    # Object box: area target 13-19% of the frame for the object itself (fill ~0.7).
    frac = rng.uniform(0.13, 0.19)
    aspect = rng.uniform(0.95, 1.35)  # box height / width
    box_area = frac * height * width / 0.7
    bw = math.sqrt(box_area / aspect)
    bh = bw * aspect
    fit = min(1.0, 0.8 * height / bh, 0.45 * width / bw)
    bh, bw = max(8, int(bh * fit)), max(8, int(bw * fit))

    # Colour: a saturated albedo for that kind, well away from the painting's mean colour.
    kind = OBJECT_KINDS[int(rng.integers(len(OBJECT_KINDS)))]
    choices = APPLE_COLOURS if kind == "apple" else OBJECT_COLOURS
    mean = painting.reshape(-1, 3).mean(axis=0)
    cands = [c for c in choices if np.linalg.norm(np.asarray(c) - mean) > 140]
    colour = cands[int(rng.integers(len(cands)))] if cands else choices[0]
    obj, alpha = make_object(bh, bw, rng, kind=kind, colour=colour)

    # Placement: left or right third, lower half, with a margin from the frame.
    margin_x, margin_y = max(2, width // 40), max(2, height // 40)
    side = rng.choice([-1.0, 1.0])
    cx = width * (0.5 + side * rng.uniform(0.2, 0.27))
    cy = height * rng.uniform(0.52, 0.62)
    x0 = int(np.clip(round(cx - bw / 2), margin_x, width - bw - margin_x))
    y0 = int(np.clip(round(cy - bh / 2), margin_y, height - bh - margin_y))

    mask = np.zeros((height, width), np.uint8)
    mask[y0 : y0 + bh, x0 : x0 + bw] = np.round(alpha * 255).astype(np.uint8)
    a = mask[y0 : y0 + bh, x0 : x0 + bw].astype(np.float32)[..., None] / 255.0
    region = painting[y0 : y0 + bh, x0 : x0 + bw].astype(np.float32)
    blended = np.round(region * (1 - a) + obj.astype(np.float32) * a).astype(np.uint8)
    composite = painting.copy()
    composite[y0 : y0 + bh, x0 : x0 + bw] = np.where(
        a > 0, blended, painting[y0 : y0 + bh, x0 : x0 + bw]
    )
    return DemoSample(composite=composite, mask=mask, painting=painting)
