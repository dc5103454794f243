"""Render small synthetic scenes: a stick figure standing ("no") or lying on the ground ("yes").

No package reachable here ships photos of people falling, so the bundled
sample and the collapse experiment use these stand-ins, always recorded as
synthetic in their manifest. Real users point the tools at their own photos.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from curation.schemas.questions import TASK_QUESTION

QUESTION = TASK_QUESTION  # one place: curation.schemas.questions


@dataclass(frozen=True, slots=True)
class Scene:
    """One rendered scene and its label."""

    path: Path
    fallen: bool
    seed: int


def _rgb(rng: random.Random, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def render_scene(fallen: bool, seed: int, size: int = 96):  # noqa: ANN201 - PIL image
    """Draw one scene; the same (fallen, seed, size) gives the same pixels."""
    from PIL import Image, ImageDraw

    rng = random.Random(f"{int(fallen)}-{seed}-{size}")
    sky, ground = _rgb(rng, 120, 255), _rgb(rng, 40, 160)
    img = Image.new("RGB", (size, size), sky)
    draw = ImageDraw.Draw(img)
    horizon = int(size * rng.uniform(0.55, 0.8))
    draw.rectangle([0, horizon, size, size], fill=ground)
    for _ in range(rng.randint(0, 3)):  # clutter so the background is not a giveaway
        x, y, r = rng.randint(0, size), rng.randint(0, horizon), rng.randint(2, max(2, size // 8))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=_rgb(rng, 60, 255))

    colour = _rgb(rng, 0, 110)
    scale = rng.uniform(0.45, 0.8) * size  # figure height
    width = max(2, int(scale / 14))
    # the figure's "up" direction: near vertical when standing, near horizontal when lying
    angle = rng.uniform(-15, 15) if not fallen else rng.choice([-1, 1]) * rng.uniform(70, 95)
    theta = math.radians(angle)
    up = (math.sin(theta), -math.cos(theta))
    side = (math.cos(theta), math.sin(theta))
    if fallen:
        foot = (rng.uniform(0.3, 0.7) * size, horizon + rng.uniform(0.05, 0.15) * size)
        foot = (foot[0] - up[0] * scale / 2, min(foot[1], size - width * 2))
    else:
        foot = (rng.uniform(0.25, 0.75) * size, horizon + rng.uniform(0.0, 0.12) * size)

    def at(along: float, across: float = 0.0) -> tuple[float, float]:
        return (
            foot[0] + up[0] * along * scale + side[0] * across * scale,
            foot[1] + up[1] * along * scale + side[1] * across * scale,
        )

    hip, neck = at(0.45), at(0.8)
    spread = rng.uniform(0.08, 0.2)
    draw.line([at(0, -spread), hip, at(0, spread)], fill=colour, width=width)  # legs
    draw.line([hip, neck], fill=colour, width=width)  # body
    arm = rng.uniform(-0.25, 0.25)
    draw.line([at(0.55, -0.22), neck, at(0.55 + arm, 0.22)], fill=colour, width=width)  # arms
    hx, hy = at(0.9)
    r = scale * 0.09
    draw.ellipse([hx - r, hy - r, hx + r, hy + r], fill=colour)
    return img


def render_scenes(
    out_dir: str | Path, n_fall: int, n_no_fall: int, seed: int = 0, size: int = 96
) -> list[Scene]:
    """Write ``fall/NNNN.png`` and ``no_fall/NNNN.png`` under ``out_dir``; return the scenes."""
    out = Path(out_dir)
    scenes = []
    for fallen, count, folder in ((True, n_fall, "fall"), (False, n_no_fall, "no_fall")):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            s = seed * 1_000_003 + i
            path = out / folder / f"{i:04d}.png"
            render_scene(fallen, s, size).save(path, optimize=True)
            scenes.append(Scene(path, fallen, s))
    return scenes
