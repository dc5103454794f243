"""Render short synthetic clips with timed labels: a stick figure walking, sitting, lying, falling.

Test data for video ingest, no downloads: each clip is a few seconds of a figure
(a *subject*: colour, size, limb width) in front of a background (a *camera*),
acting out one scenario whose segments carry OmniFall's class names. The clips
are written in OmniFall's layout (``{root}/{dataset}/video/{path}.mp4``) with an
OmniFall-format CSV (``path,label,start,end,subject,cam,dataset``), and
optionally a generic segment file (``video,start,end,label,subject,camera``).
H.264 in MP4 (PyAV's bundled libx264, one thread): the App's video player
plays it. The same seed gives the same frames and labels; the H.264 bytes are
usually identical too, but a CI run once saw two encodes of one clip differ by a
byte in size (libx264, one thread; cause not found), so tests compare decoded frames.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from curation.errors import require

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

#: Each scenario: (class name, seconds) in order. Class names are the class map's.
SCENARIOS: dict[str, tuple[tuple[str, float], ...]] = {
    "fall": (("walk", 1.5), ("fall", 0.5), ("fallen", 1.5)),
    "sit": (("walk", 1.5), ("sit_down", 1.0), ("sitting", 1.0)),
    "lie": (("walk", 1.0), ("lie_down", 1.5), ("lying", 1.0)),
    "walk": (("walk", 2.0), ("standing", 1.5)),
}
DATASET = "synthetic"


@dataclass(frozen=True, slots=True)
class Segment:
    label: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Clip:
    """One written clip: its OmniFall ``path`` (no extension), file and segments."""

    path: str
    file: Path
    subject: int
    camera: int
    scenario: str
    segments: tuple[Segment, ...]


def _rgb(rng: random.Random, lo: int, hi: int) -> tuple[int, int, int]:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def subject_style(subject: int, seed: int) -> dict[str, Any]:
    """How a synthetic subject looks (colour and proportions), the same for one subject and seed."""
    rng = random.Random(f"subject-{seed}-{subject}")
    return {
        "colour": _rgb(rng, 0, 110),
        "height": rng.uniform(0.45, 0.65),  # of the frame
        "width": rng.uniform(0.05, 0.09),  # limb width, of the figure's height
    }


def _camera_style(camera: int, seed: int) -> dict[str, Any]:
    rng = random.Random(f"camera-{seed}-{camera}")
    return {
        "sky": _rgb(rng, 120, 255),
        "ground": _rgb(rng, 40, 160),
        "horizon": rng.uniform(0.6, 0.75),
        "clutter": [
            (rng.uniform(0, 1), rng.uniform(0, 0.55), rng.uniform(0.02, 0.1), _rgb(rng, 60, 255))
            for _ in range(rng.randint(1, 3))
        ],
    }


def _pose(label: str, u: float, t: float) -> tuple[float, float, float]:
    """(tilt in degrees, sit in 0..1, walking phase) of ``label`` at ``u`` in 0..1 of it."""
    phase = t * 2 * math.pi * 1.5
    if label == "walk":
        return 0.0, 0.0, phase
    if label == "fall":
        return 90.0 * u * u, 0.0, 0.0  # accelerating: a fall is fast
    if label in ("fallen", "lying"):
        return 90.0, 0.0, 0.0
    if label == "sit_down":
        return 0.0, u, 0.0
    if label == "sitting":
        return 0.0, 1.0, 0.0
    if label == "lie_down":  # sit first, then lower the body slowly
        return (0.0, 2 * u, 0.0) if u < 0.5 else (90.0 * (2 * u - 1), 2 - 2 * u, 0.0)
    return 0.0, 0.0, 0.0  # standing and anything else


def render_frame(
    label: str,
    u: float,
    t: float,
    x: float,
    subject: dict[str, Any],
    camera: dict[str, Any],
    size: int,
    *,
    pose: tuple[float, float, float, float] | None = None,
    raise_by: float = 0.0,
) -> PILImage:
    """One frame: the figure in ``label``'s pose, ``u`` of the way through it, at ``x``.

    ``pose`` (tilt in degrees, sit 0..1, walking phase, kneel 0..1) replaces the label's
    own pose (long footage blends poses across segments: getting up from a fall, from a
    chair, from kneeling); ``raise_by`` (of the frame) lifts the figure off the floor, onto
    a bed. A camera with a ``bed`` (``(x0, x1, height)``, of the frame) draws it.
    """
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), camera["sky"])
    draw = ImageDraw.Draw(img)
    ground = int(size * camera["horizon"])
    draw.rectangle([0, ground, size, size], fill=camera["ground"])
    for cx, cy, r, colour in camera["clutter"]:
        draw.ellipse(
            [(cx - r) * size, (cy - r) * size, (cx + r) * size, (cy + r) * size], fill=colour
        )
    floor = ground + size * 0.1
    if camera.get("bed"):
        x0, x1, height = camera["bed"]
        top = floor - max(1.0, height * size)
        draw.rectangle([x0 * size, top, x1 * size, floor], fill=camera["bed_colour"])
    if pose is None:
        tilt, sit, phase = _pose(label, u, t)
        kneel = 0.0
    else:
        tilt, sit, phase, kneel = pose
    tilt = -tilt if x > 0.5 else tilt  # fall towards the middle of the frame
    stride = 0.12 * math.sin(phase)
    # the figure in its own units (height 1, y up, feet at 0): standing blended with sitting
    hip = (0.0, 0.45 - 0.2 * sit)
    knees = [(s * (1 - sit) + 0.22 * sit, 0.22 + 0.03 * sit) for s in (stride / 2, -stride / 2)]
    feet = [(s * (1 - sit) + 0.22 * sit, 0.0) for s in (stride, -stride)]
    neck = (0.0, hip[1] + 0.35)
    head = (0.0, neck[1] + 0.1)
    hands = [(0.18, neck[1] - 0.25), (-0.12 + stride, neck[1] - 0.3)]
    points = [hip, *knees, *feet, neck, head, *hands]
    if kneel > 0:  # knees to the floor, shins behind, the body upright above them
        kneeling = [(0.0, 0.3), (0.05, 0.03), (-0.05, 0.03), (-0.22, 0.0), (-0.25, 0.0)]
        kneeling += [(0.0, 0.65), (0.0, 0.75), (0.15, 0.42), (0.12, 0.4)]
        points = [
            (px * (1 - kneel) + kx * kneel, py * (1 - kneel) + ky * kneel)
            for (px, py), (kx, ky) in zip(points, kneeling, strict=True)
        ]
    a = math.radians(tilt)
    rotated = [
        (px * math.cos(a) + py * math.sin(a), -px * math.sin(a) + py * math.cos(a))
        for px, py in points
    ]
    radius = 0.09
    lift = -min(min(py for _, py in rotated), rotated[6][1] - radius)  # rest on the ground
    scale = subject["height"] * size
    width = max(2, int(subject["width"] * scale))
    lifted = raise_by * size

    def screen(p: tuple[float, float]) -> tuple[float, float]:
        return (x * size + p[0] * scale, ground + size * 0.1 - (p[1] + lift) * scale - lifted)

    hip_s, k1, k2, f1, f2, neck_s, head_s, h1, h2 = (screen(p) for p in rotated)
    colour = subject["colour"]
    draw.line([f1, k1, hip_s, k2, f2], fill=colour, width=width)
    draw.line([hip_s, neck_s], fill=colour, width=width)
    draw.line([h1, neck_s, h2], fill=colour, width=width)
    r = radius * scale
    draw.ellipse([head_s[0] - r, head_s[1] - r, head_s[0] + r, head_s[1] + r], fill=colour)
    return img


def encode_mp4(
    frames: list[Any],
    fps: int | Fraction,
    *,
    times: list[float] | None = None,
    rotation: int = 0,
    hflip: bool = False,
    bframes: bool = True,
) -> bytes:
    """H.264 MP4 bytes of PIL frames (one encoder thread; see the module on reproducibility).

    ``times`` (seconds, rising) gives each frame its own time: a variable frame rate;
    ``rotation`` writes a display matrix (degrees counter-clockwise, as phones do for a
    portrait video stored landscape), mirrored after it with ``hflip``; ``bframes`` False
    encodes without B-frames.
    """
    av = require("av", "video")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].size if frames else (16, 16)
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "28", "preset": "medium", "threads": "1"}
        if not bframes:
            stream.options["bf"] = "0"
        stream.codec_context.thread_count = 1
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation or hflip:
            stream.set_display_rotation(rotation, hflip=hflip)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_image(img)
            if times is not None:
                frame.pts = round(times[i] * 1000)
                frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buf.getvalue()


def render_clip(
    scenario: str,
    subject: int,
    camera: int,
    seed: int = 0,
    size: int = 96,
    fps: int = 10,
    stretch: float = 1.0,
) -> tuple[bytes, tuple[Segment, ...]]:
    """The MP4 bytes and labelled segments of one clip (``stretch`` x the scenario's length)."""
    parts = tuple((label, seconds * stretch) for label, seconds in SCENARIOS[scenario])
    rng = random.Random(f"clip-{seed}-{scenario}-{subject}-{camera}")
    sub, cam = subject_style(subject, seed), _camera_style(camera, seed)
    segments, start = [], 0.0
    for label, seconds in parts:
        segments.append(Segment(label, round(start, 3), round(start + seconds, 3)))
        start += seconds
    n = round(start * fps)
    x, speed = rng.uniform(0.25, 0.45), rng.uniform(0.06, 0.1) * rng.choice([-1, 1])
    frames = []
    for i in range(n):
        t = i / fps
        seg = next(s for s in segments if s.start <= t < s.end or s is segments[-1])
        u = min(1.0, (t - seg.start) / (seg.end - seg.start))
        if seg.label == "walk":
            x += speed / fps
        frames.append(render_frame(seg.label, u, t, x, sub, cam, size))
    return encode_mp4(frames, fps), tuple(segments)


class LabelledVideo(Protocol):
    """What an OmniFall label row needs of a written video (read-only)."""

    @property
    def path(self) -> str: ...
    @property
    def subject(self) -> int: ...
    @property
    def camera(self) -> int: ...
    @property
    def segments(self) -> tuple[Segment, ...]: ...


def write_omnifall_labels(file: Path, videos: Sequence[LabelledVideo], dataset: str) -> None:
    """Write ``videos``' segments to ``file`` in OmniFall's CSV format (class ids, not names)."""
    from curation._io import atomic_write_text
    from curation.class_map import load_class_map

    class_map = load_class_map()
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["path", "label", "start", "end", "subject", "cam", "dataset"])
    for v in videos:
        for s in v.segments:
            label = class_map.rule(s.label)[1].id
            writer.writerow([v.path, label, s.start, s.end, v.subject, v.camera, dataset])
    atomic_write_text(file, rows.getvalue())


def write_clips(
    root: str | Path,
    *,
    scenarios: tuple[str, ...] = tuple(SCENARIOS),
    subjects: int = 2,
    cameras: int = 2,
    seed: int = 0,
    size: int = 96,
    fps: int = 10,
    dataset: str = DATASET,
    generic: bool = False,
    stretch: float = 1.0,
) -> list[Clip]:
    """Write every scenario x subject x camera clip under ``root``; return them.

    Files: ``root/{dataset}/video/{path}.mp4``, ``root/labels.csv`` (OmniFall's
    format, numeric labels from the class map) and with ``generic``
    ``root/segments.csv`` (video, start, end, label name, subject, camera).
    """
    from curation._io import atomic_write_bytes, atomic_write_text

    out = Path(root)
    clips = []
    for scenario in scenarios:
        for subject in range(1, subjects + 1):
            for camera in range(1, cameras + 1):
                path = f"s{subject:02d}_c{camera:02d}_{scenario}"
                file = out / dataset / "video" / f"{path}.mp4"
                file.parent.mkdir(parents=True, exist_ok=True)
                data, segments = render_clip(scenario, subject, camera, seed, size, fps, stretch)
                atomic_write_bytes(file, data)
                clips.append(Clip(path, file, subject, camera, scenario, segments))
    write_omnifall_labels(out / "labels.csv", clips, dataset)
    if generic:
        rows = io.StringIO()
        writer = csv.writer(rows, lineterminator="\n")
        writer.writerow(["video", "start", "end", "label", "subject", "camera"])
        for c in clips:
            video = c.file.relative_to(out).as_posix()
            for s in c.segments:
                writer.writerow([video, s.start, s.end, s.label, c.subject, c.camera])
        atomic_write_text(out / "segments.csv", rows.getvalue())
    return clips


def marker_frames(count: int, size: tuple[int, int] = (64, 32)) -> list[Any]:
    """``count`` frames that tell themselves apart: the grey level counts up, and a white
    block marks the top-left corner (where a rotation moves it shows in the output)."""
    from PIL import Image, ImageDraw

    frames = []
    for i in range(count):
        level = 40 + (i * 160) // max(1, count - 1)
        img = Image.new("RGB", size, (level, level, level))
        ImageDraw.Draw(img).rectangle([0, 0, size[0] // 4, size[1] // 4], fill=(255, 255, 255))
        frames.append(img)
    return frames


def write_marker_clip(
    path: str | Path,
    count: int,
    fps: int | Fraction = 10,
    *,
    size: tuple[int, int] = (64, 32),
    times: list[float] | None = None,
    rotation: int = 0,
    hflip: bool = False,
    bframes: bool = True,
) -> Path:
    """Write a clip of ``marker_frames`` (see ``encode_mp4`` for the options); return its path."""
    from curation._io import atomic_write_bytes

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = encode_mp4(
        marker_frames(count, size),
        fps,
        times=times,
        rotation=rotation,
        hflip=hflip,
        bframes=bframes,
    )
    atomic_write_bytes(out, data)
    return out
