"""Long synthetic footage: rooms where people walk, sit, kneel, lie down and now and then fall.

The bundled clips are seconds long, too short to count false alarms per hour. This
generator writes minutes-long videos (one per subject and camera) of a stick figure
(``curation.synthetic_video``'s renderer) going about a room with a bed: walking,
standing, sitting down and getting up, kneeling, lying down on the bed or on the floor on
purpose, and falling now and then (a fast fall, lying still, sometimes for over a minute,
then getting up). Lying on purpose is slow and ends with the knees bent; a fall is fast
and ends stretched out. Videos are rendered at the rate they will be sampled at (2 fps by
default), so an hour of footage is a few thousand small frames.

Output: OmniFall's layout (``{root}/{dataset}/video/{path}.mp4``) and label file
(``{root}/labels.csv``: ``path,label,start,end,subject,cam,dataset``, numeric labels from
the class map), the same as ``curate ingest`` reads. The same arguments give the same
frames and labels.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.synthetic_video import (
    Segment,
    encode_mp4,
    render_frame,
    subject_style,
    write_omnifall_labels,
)

DATASET = "footage"
#: a pose: (tilt in degrees, sit 0..1, kneel 0..1, raised off the floor, of the frame)
Pose = tuple[float, float, float, float]
UPRIGHT: Pose = (0.0, 0.0, 0.0, 0.0)
WALK_SPEED = 0.08  # of the frame per second


@dataclass(frozen=True, slots=True)
class Part:
    """One labelled stretch of footage: the pose moves from ``keys[0]`` to ``keys[-1]``."""

    label: str
    seconds: float
    keys: tuple[tuple[float, Pose], ...]  # (u in 0..1, pose), u rising from 0 to 1
    x0: float
    x1: float  # the figure walks from x0 to x1 (equal when it stays put)
    fast: bool = False  # accelerating (a fall), else linear


@dataclass(frozen=True, slots=True)
class FootageVideo:
    """One written video: its OmniFall ``path`` (no extension), file and segments."""

    path: str
    file: Path
    subject: int
    camera: int
    seconds: float
    segments: tuple[Segment, ...]

    @property
    def falls(self) -> int:
        return sum(s.label == "fall" for s in self.segments)


def _room(camera: int, seed: int) -> dict[str, Any]:
    rng = random.Random(f"room-{seed}-{camera}")

    def rgb(lo: int, hi: int) -> tuple[int, int, int]:
        return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))

    left = rng.random() < 0.5
    x0 = rng.uniform(0.04, 0.1)
    bed = (x0, x0 + 0.72) if left else (1 - x0 - 0.72, 1 - x0)
    return {
        "sky": rgb(150, 255),
        "ground": rgb(60, 150),
        "horizon": rng.uniform(0.6, 0.7),
        "clutter": [
            (rng.uniform(0, 1), rng.uniform(0, 0.4), rng.uniform(0.02, 0.07), rgb(60, 255))
            for _ in range(rng.randint(1, 3))
        ],
        "bed": (bed[0], bed[1], rng.uniform(0.07, 0.1)),
        "bed_colour": rgb(120, 230),
        # where the figure's feet go to lie on the bed (it lies towards the frame's middle)
        "bed_feet": bed[0] + 0.02 if left else bed[1] - 0.02,
    }


def _activity(kind: str, x: float, room: dict[str, Any], rng: random.Random) -> list[Part]:
    """The parts of one activity that starts and ends upright at ``x`` (walks included)."""
    stay: tuple[tuple[float, Pose], ...] = ((0.0, UPRIGHT), (1.0, UPRIGHT))
    if kind == "walk":
        target = rng.uniform(0.12, 0.88)
        return [Part("walk", max(2.0, abs(target - x) / WALK_SPEED), stay, x, target)]
    if kind == "stand":
        return [Part("standing", rng.uniform(2, 8), stay, x, x)]
    if kind == "sit":
        sat: Pose = (0.0, 1.0, 0.0, 0.0)
        return [
            Part("sit_down", 1.0, ((0, UPRIGHT), (1, sat)), x, x),
            Part("sitting", rng.uniform(5, 40), ((0, sat), (1, sat)), x, x),
            Part("stand_up", 1.0, ((0, sat), (1, UPRIGHT)), x, x),
        ]
    if kind == "kneel":
        knelt: Pose = (0.0, 0.0, 1.0, 0.0)
        return [
            Part("kneel_down", 1.0, ((0, UPRIGHT), (1, knelt)), x, x),
            Part("kneeling", rng.uniform(3, 20), ((0, knelt), (1, knelt)), x, x),
            Part("stand_up", 1.0, ((0, knelt), (1, UPRIGHT)), x, x),
        ]
    if kind in ("bed", "floor"):
        # on purpose: sit, then lower the body slowly; lie with the knees bent
        lift = room["bed"][2] if kind == "bed" else 0.0
        feet = room["bed_feet"] if kind == "bed" else rng.uniform(0.15, 0.85)
        seated: Pose = (0.0, 1.0, 0.0, lift)
        lain: Pose = (90.0, 0.45, 0.0, lift)
        down = ((0.0, UPRIGHT), (0.5, seated), (1.0, lain))
        up = ((0.0, lain), (0.5, seated), (1.0, UPRIGHT))
        walk = [Part("walk", max(1.0, abs(feet - x) / WALK_SPEED), stay, x, feet)]
        return walk + [
            Part("lie_down", 2.0, down, feet, feet),
            Part("lying", rng.uniform(10, 90), ((0, lain), (1, lain)), feet, feet),
            Part("stand_up", 2.0, up, feet, feet),
        ]
    if kind == "fall":
        fallen: Pose = (90.0, 0.0, 0.0, 0.0)
        still = rng.uniform(60, 90) if rng.random() < 0.2 else rng.uniform(5, 30)
        target = min(0.88, max(0.12, x + rng.choice([-1, 1]) * rng.uniform(0.1, 0.3)))
        return [
            Part("walk", max(2.0, abs(target - x) / WALK_SPEED), stay, x, target),
            Part("fall", rng.uniform(0.5, 1.0), ((0, UPRIGHT), (1, fallen)), target, target, True),
            Part("fallen", still, ((0, fallen), (1, fallen)), target, target),
            # getting up: roll to sitting, then stand
            Part(
                "stand_up",
                3.0,
                ((0.0, fallen), (0.5, (0.0, 1.0, 0.0, 0.0)), (1.0, UPRIGHT)),
                target,
                target,
            ),
        ]
    raise ValueError(f"unknown activity {kind!r}")


#: everyday activities and how often each is picked (falls are placed separately)
ACTIVITIES = {"walk": 4, "stand": 2, "sit": 3, "kneel": 2, "bed": 2, "floor": 1}


def plan_video(seconds: float, falls: int, room: dict[str, Any], rng: random.Random) -> list[Part]:
    """The parts of one video of about ``seconds`` with ``falls`` falls among everyday life."""
    kinds, weights = list(ACTIVITIES), list(ACTIVITIES.values())
    x = rng.uniform(0.3, 0.7)
    # the falls' places: evenly spread shares of the video, each somewhere in its share
    fall_at = sorted((k + rng.uniform(0.1, 0.9)) / max(1, falls) * seconds for k in range(falls))
    parts: list[Part] = []
    elapsed = 0.0
    while elapsed < seconds or fall_at:  # every fall placed, even past the end
        kind = "fall" if fall_at and elapsed >= fall_at[0] else rng.choices(kinds, weights)[0]
        if kind == "fall":
            fall_at.pop(0)
        new = _activity(kind, x, room, rng)
        parts.extend(new)
        elapsed += sum(p.seconds for p in new)
        x = new[-1].x1
    return parts


def _pose_at(part: Part, u: float) -> Pose:
    if part.fast:
        u = u * u
    keys = part.keys
    for (u0, p0), (u1, p1) in zip(keys, keys[1:], strict=False):
        if u <= u1 or (u1, p1) == keys[-1]:
            w = 0.0 if u1 == u0 else min(1.0, max(0.0, (u - u0) / (u1 - u0)))
            t, s, k, h = (a + (b - a) * w for a, b in zip(p0, p1, strict=True))
            return (t, s, k, h)
    return keys[-1][1]


def _render(
    parts: list[Part], sub: dict[str, Any], room: dict[str, Any], size: int, fps: int
) -> tuple[bytes, tuple[Segment, ...]]:
    segments, starts, start = [], [], 0.0
    for part in parts:
        segments.append(Segment(part.label, round(start, 3), round(start + part.seconds, 3)))
        starts.append(start)
        start += part.seconds
    frames = []
    k = 0
    for i in range(math.floor(start * fps)):
        t = i / fps
        while k + 1 < len(parts) and t >= starts[k + 1]:
            k += 1
        part = parts[k]
        u = min(1.0, (t - starts[k]) / part.seconds)
        tilt, sit, kneel, lift = _pose_at(part, u)
        x = part.x0 + (part.x1 - part.x0) * u
        walking = part.label == "walk"
        phase = t * 2 * math.pi * 1.5 if walking else 0.0
        frames.append(
            render_frame(
                part.label, u, t, x, sub, room, size, pose=(tilt, sit, phase, kneel), raise_by=lift
            )
        )
    return encode_mp4(frames, fps), tuple(segments)


def render_footage(
    subject: int,
    camera: int,
    *,
    seconds: float,
    falls: int,
    seed: int = 0,
    size: int = 96,
    fps: int = 2,
) -> tuple[bytes, tuple[Segment, ...]]:
    """The MP4 bytes and labelled segments of one subject's footage in one camera's room."""
    rng = random.Random(f"footage-{seed}-{subject}-{camera}")
    room = _room(camera, seed)
    parts = plan_video(seconds, falls, room, rng)
    return _render(parts, subject_style(subject, seed), room, size, fps)


def render_story(
    kinds: list[str], subject: int, camera: int, *, seed: int = 0, size: int = 96, fps: int = 2
) -> tuple[bytes, tuple[Segment, ...]]:
    """A short clip of the given activities in order (``["walk", "fall"]``, ``["bed"]``...),
    ending with a few seconds standing (or lying still after a fall)."""
    rng = random.Random(f"story-{seed}-{subject}-{camera}-{'-'.join(kinds)}")
    room = _room(camera, seed)
    x, parts = rng.uniform(0.3, 0.7), []
    for kind in kinds:
        new = _activity(kind, x, room, rng)
        parts.extend(new)
        x = new[-1].x1
    parts.extend(_activity("stand", x, room, rng))
    return _render(parts, subject_style(subject, seed), room, size, fps)


def write_footage(
    root: str | Path,
    *,
    subjects: int = 8,
    cameras: int = 2,
    minutes: float = 4.0,
    falls_per_video: int = 2,
    seed: int = 0,
    size: int = 96,
    fps: int = 2,
    dataset: str = DATASET,
) -> list[FootageVideo]:
    """Write one video per subject and camera under ``root``; return them.

    Files: ``root/{dataset}/video/{path}.mp4`` (``path`` is ``s01_c02_footage``) and
    ``root/labels.csv`` (OmniFall's format). The defaults give 8 x 2 videos of about
    4 minutes: about an hour of footage with 32 falls.
    """
    from curation._io import atomic_write_bytes

    out = Path(root)
    videos = []
    for subject in range(1, subjects + 1):
        for camera in range(1, cameras + 1):
            path = f"s{subject:02d}_c{camera:02d}_footage"
            file = out / dataset / "video" / f"{path}.mp4"
            file.parent.mkdir(parents=True, exist_ok=True)
            data, segments = render_footage(
                subject,
                camera,
                seconds=minutes * 60,
                falls=falls_per_video,
                seed=seed,
                size=size,
                fps=fps,
            )
            atomic_write_bytes(file, data)
            videos.append(
                FootageVideo(path, file, subject, camera, segments[-1].end, tuple(segments))
            )
    write_omnifall_labels(out / "labels.csv", videos, dataset)
    return videos


def main(argv: list[str] | None = None) -> None:
    """``python -m curation.synthetic_footage OUT [--subjects N ...]``: write footage to OUT."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out")
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--falls-per-video", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--fps", type=int, default=2)
    parser.add_argument(
        "--story",
        help="instead: one short clip OUT (an .mp4) of these activities, comma-separated, "
        f"from {', '.join([*ACTIVITIES, 'fall'])} (e.g. walk,fall or walk,bed)",
    )
    parser.add_argument("--subject", type=int, default=1, help="with --story")
    parser.add_argument("--camera", type=int, default=1, help="with --story")
    a = parser.parse_args(argv)
    if a.story:
        from curation._io import atomic_write_bytes

        kinds = [k.strip() for k in a.story.split(",") if k.strip()]
        unknown = [k for k in kinds if k not in (*ACTIVITIES, "fall")]
        if unknown:
            parser.error(f"--story: unknown activity {unknown[0]!r}")
        data, segments = render_story(
            kinds, a.subject, a.camera, seed=a.seed, size=a.size, fps=a.fps
        )
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(Path(a.out), data)
        story = ", ".join(f"{s.label} {s.start:g}-{s.end:g} s" for s in segments)
        print(f"{a.out}: {story}")
        return
    videos = write_footage(
        a.out,
        subjects=a.subjects,
        cameras=a.cameras,
        minutes=a.minutes,
        falls_per_video=a.falls_per_video,
        seed=a.seed,
        size=a.size,
        fps=a.fps,
    )
    hours = sum(v.seconds for v in videos) / 3600
    falls = sum(v.falls for v in videos)
    print(f"{len(videos)} videos, {hours:.2f} h, {falls} falls: {a.out}/labels.csv")


if __name__ == "__main__":
    main()
