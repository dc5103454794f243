"""Render small synthetic scenes: a figure standing ("no") or lying on the ground ("yes").

No package reachable here ships photos of people falling, so the bundled
sample and the collapse experiment use these stand-ins, always recorded as
synthetic in their manifest. Real users point the tools at their own photos.

Two renderers, picked by name (``RENDERERS``):

- ``stick``: the project's own scenes (sky, ground, a large stick figure,
  a few blobs), always asked the task question.
- ``clutter``: drawn by other code to other rules, as a check that a result
  is not an artefact of the first: indoor rooms with textured walls and
  floors, a smaller jointed figure with a filled torso anywhere in the room
  at varied scales and colours, distractor furniture and lying poles and
  boxes in both classes, supersampled and noisy, and each scene asked one of
  three paraphrases of the task question (``questions.yaml``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.errors import UsageError
from curation.schemas.questions import TASK_QUESTION, load_questions

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

QUESTION = TASK_QUESTION  # one place: curation.schemas.questions


@dataclass(frozen=True, slots=True)
class Scene:
    """One rendered scene and its label."""

    path: Path
    fallen: bool
    seed: int
    question: str = field(default=TASK_QUESTION)


def _rgb(rng: random.Random, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def render_scene(fallen: bool, seed: int, size: int = 96) -> PILImage:
    """Draw one scene; the same (fallen, seed, size) gives the same pixels."""
    from PIL import Image, ImageDraw

    rng = random.Random(f"{int(fallen)}-{seed}-{size}")
    sky, ground = _rgb(rng, 120, 255), _rgb(rng, 40, 160)
    img = Image.new("RGB", (size, size), sky)
    draw = ImageDraw.Draw(img)
    horizon = int(size * rng.uniform(0.55, 0.8))
    draw.rectangle([0, horizon, size, size], fill=ground)
    for _ in range(rng.randint(0, 3)):  # clutter so the background is not a giveaway
        x, y, rb = rng.randint(0, size), rng.randint(0, horizon), rng.randint(2, max(2, size // 8))
        draw.ellipse([x - rb, y - rb, x + rb, y + rb], fill=_rgb(rng, 60, 255))

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


def _near(rng: random.Random, c: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = (max(0, min(255, v + rng.randint(-40, 40))) for v in c)
    return (r, g, b)


def _contrasting(rng: random.Random, *against: tuple[int, int, int]) -> tuple[int, int, int]:
    """A random colour at least 180 (summed RGB distance) from each of ``against``."""
    best, best_gap = (0, 0, 0), -1
    for _ in range(50):
        c = _rgb(rng)
        gap = min(sum(abs(a - b) for a, b in zip(c, o, strict=True)) for o in against)
        if gap >= 180:
            return c
        if gap > best_gap:
            best, best_gap = c, gap
    return best


def render_clutter_scene(fallen: bool, seed: int, size: int = 96) -> PILImage:
    """Draw one ``clutter`` scene; the same (fallen, seed, size) gives the same pixels.

    Drawn at 3x and shrunk (soft edges), on a room with a textured wall and
    sometimes floor boards, with 1-4 distractors (chairs, boxes, lying poles,
    balls, tables) in either class, then per-pixel noise. The figure's colour
    stands out from the wall and floor (a person nobody could see has no
    true label).
    """
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(f"clutter-{int(fallen)}-{seed}-{size}")
    big = size * 3
    wall, floor = _rgb(rng), _rgb(rng)
    img = Image.new("RGB", (big, big), wall)
    draw = ImageDraw.Draw(img)
    horizon = int(big * rng.uniform(0.3, 0.6))
    draw.rectangle([0, horizon, big, big], fill=floor)
    texture = rng.choice(("stripes", "dots", "plain", "tiles"))
    ink = _rgb(rng)
    if texture == "stripes":  # wallpaper
        step = rng.randint(big // 16, big // 6)
        for x in range(rng.randint(0, step), big, step):
            draw.line([x, 0, x, horizon], fill=ink, width=max(1, step // 5))
    elif texture == "dots":
        for _ in range(rng.randint(10, 40)):
            x, y, rd = rng.randint(0, big), rng.randint(0, horizon), rng.randint(1, big // 40 + 1)
            draw.ellipse([x - rd, y - rd, x + rd, y + rd], fill=ink)
    if rng.random() < 0.4:  # floor boards in perspective: faint lines to a vanishing point
        vx, board = rng.uniform(0.2, 0.8) * big, _near(rng, floor)
        for k in range(-3, 4):
            draw.line([vx, horizon, vx + k * big / 3, big], fill=board, width=1)
    if rng.random() < 0.5:  # a window or picture on the wall
        x0, y0 = rng.uniform(0.05, 0.7) * big, rng.uniform(0.05, 0.6) * horizon
        w, h = rng.uniform(0.1, 0.25) * big, rng.uniform(0.1, 0.3) * big
        draw.rectangle([x0, y0, x0 + w, min(y0 + h, horizon - 2)], fill=_rgb(rng), outline=ink)

    def floor_point() -> tuple[float, float]:
        return rng.uniform(0.1, 0.9) * big, rng.uniform(horizon + 0.1 * big, big * 0.95)

    def distractor() -> None:
        kind = rng.choice(("chair", "box", "pole", "ball", "table"))
        x, y = floor_point()
        s = rng.uniform(0.12, 0.3) * big
        c, w = _rgb(rng), max(2, int(s / 10))
        if kind == "chair":
            draw.line([x, y, x, y - s], fill=c, width=w)  # back
            draw.line([x, y - s / 2, x + s / 2, y - s / 2], fill=c, width=w)  # seat
            draw.line([x + s / 2, y - s / 2, x + s / 2, y], fill=c, width=w)  # leg
        elif kind == "box":
            draw.rectangle([x - s / 2, y - s / 2, x + s / 2, y], fill=c, outline=_rgb(rng))
        elif kind == "pole":  # a long thing lying on the floor, like a lying limb
            a = math.radians(rng.uniform(-20, 20))
            dx, dy = math.cos(a) * s, math.sin(a) * s
            draw.line([x - dx, y - dy, x + dx, y + dy], fill=c, width=w)
        elif kind == "ball":
            r = s / 4
            draw.ellipse([x - r, y - 2 * r, x + r, y], fill=c)
        else:
            draw.rectangle([x - s / 2, y - s * 0.6, x + s / 2, y - s * 0.5], fill=c)
            for leg in (x - s * 0.45, x + s * 0.45):
                draw.line([leg, y - s * 0.5, leg, y], fill=c, width=w)

    for _ in range(rng.randint(1, 4)):
        distractor()

    # the person: smaller than the stick figure, jointed limbs, a filled torso
    colour = _contrasting(rng, floor, wall)
    height = rng.uniform(0.35, 0.6) * big
    limb = max(3, int(height / 9))
    angle = rng.uniform(-20, 20) if not fallen else rng.choice([-1, 1]) * rng.uniform(65, 110)
    theta = math.radians(angle)
    up = (math.sin(theta), -math.cos(theta))
    side = (math.cos(theta), math.sin(theta))
    fx, fy = floor_point()
    if fallen:  # the body lies along the floor: shift so the middle sits at the floor point
        fx -= up[0] * height / 2
        fy = min(fy, big - limb * 3)

    def at(along: float, across: float = 0.0) -> tuple[float, float]:
        return (
            fx + up[0] * along * height + side[0] * across * height,
            fy + up[1] * along * height + side[1] * across * height,
        )

    for sign in (-1, 1):  # legs with knees, arms with elbows
        bend = rng.uniform(-0.08, 0.08)
        draw.line(
            [
                at(0, sign * rng.uniform(0.05, 0.15)),
                at(0.25, sign * 0.06 + bend),
                at(0.48, sign * 0.04),
            ],
            fill=colour,
            width=limb,
            joint="curve",
        )
        draw.line(
            [
                at(0.76, sign * 0.08),
                at(0.6, sign * rng.uniform(0.12, 0.22)),
                at(rng.uniform(0.4, 0.7), sign * rng.uniform(0.1, 0.3)),
            ],
            fill=colour,
            width=max(2, limb - 1),
            joint="curve",
        )
    torso = [at(0.45, -0.09), at(0.45, 0.09), at(0.8, 0.1), at(0.8, -0.1)]
    draw.polygon(torso, fill=colour)
    hx, hy = at(0.9)
    r = height * 0.08
    draw.ellipse([hx - r, hy - r, hx + r, hy + r], fill=_rgb(rng, 90, 255), outline=colour)

    img = img.resize((size, size), Image.Resampling.BOX)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    noise = np.random.default_rng(rng.randrange(2**32)).normal(
        0, rng.uniform(2, 8), (size, size, 3)
    )
    pixels = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def clutter_questions() -> tuple[str, ...]:
    """The ``clutter`` renderer's three phrasings: the first paraphrases after the task question."""
    others = [q for q in load_questions().questions if q != TASK_QUESTION]
    return tuple(others[:3])


@dataclass(frozen=True)
class Renderer:
    """A named scene renderer: pixels for (fallen, seed, size), and a question per seed."""

    name: str
    render: Callable[[bool, int, int], Any]
    questions: Callable[[], tuple[str, ...]]

    def question(self, seed: int) -> str:
        options = self.questions()
        return options[random.Random(f"q-{seed}").randrange(len(options))]


#: Scene renderers by name (the collapse experiment and the tests pick them).
RENDERERS: dict[str, Renderer] = {
    "stick": Renderer("stick", render_scene, lambda: (TASK_QUESTION,)),
    "clutter": Renderer("clutter", render_clutter_scene, clutter_questions),
}


def get_renderer(name: str) -> Renderer:
    """The renderer called ``name``; an unknown name lists the valid ones."""
    if name not in RENDERERS:
        raise UsageError(
            f"unknown scene renderer {name!r}. Fix: choose one of: {', '.join(sorted(RENDERERS))}"
        )
    return RENDERERS[name]


def render_scenes(
    out_dir: str | Path,
    n_fall: int,
    n_no_fall: int,
    seed: int = 0,
    size: int = 96,
    renderer: str = "stick",
) -> list[Scene]:
    """Write ``fall/NNNN.png`` and ``no_fall/NNNN.png`` under ``out_dir``; return the scenes.

    Each scene carries the question its renderer asks about it.
    """
    chosen = get_renderer(renderer)
    out = Path(out_dir)
    scenes = []
    for fallen, count, folder in ((True, n_fall, "fall"), (False, n_no_fall, "no_fall")):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            s = seed * 1_000_003 + i
            path = out / folder / f"{i:04d}.png"
            chosen.render(fallen, s, size).save(path, optimize=True)
            scenes.append(Scene(path, fallen, s, chosen.question(s * 2 + fallen)))
    return scenes


def write_scene_set(
    out_dir: str | Path,
    n_fall: int,
    n_no_fall: int,
    seed: int = 0,
    size: int = 64,
    renderer: str = "stick",
) -> Path:
    """Render scenes and write ``out_dir/annotations.json`` (the LAVIS VQA contract); return it.

    Each record asks the question its renderer chose for that scene.
    """
    from curation._io import atomic_write_json

    out = Path(out_dir)
    scenes = render_scenes(out, n_fall, n_no_fall, seed, size, renderer)
    ann = out / "annotations.json"
    atomic_write_json(
        ann,
        [
            {
                "instance_id": i,
                "image": s.path.relative_to(out).as_posix(),
                "text_input": s.question,
                "answer": ["yes" if s.fallen else "no"],
            }
            for i, s in enumerate(scenes)
        ],
    )
    return ann
