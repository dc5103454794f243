"""Clips for the differential video tests, and the references they are checked against.

The clips cover what trips a frame sampler: a frame rate that no sampling time
divides (25 fps), B-frames (decoded out of order) and none, a variable frame rate,
a display matrix (a phone's portrait video; turned and mirrored), an MP4 trimmed without re-encoding
(an edit list hides frames the header counts), 29.97 fps (6.006 s for 180 frames) and
a last frame shown past the duration the header gives.
The references are PyAV's decoded timestamps and FFmpeg's own filters run by the
``ffmpeg`` program that imageio-ffmpeg ships: none is the ingest's code.
"""

from __future__ import annotations

import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from curation.synthetic_video import write_marker_clip

#: 10 frames at 10 fps, then 40 at 50 fps
VFR_TIMES = [i / 10 for i in range(10)] + [1.0 + (i - 10) / 50 for i in range(10, 50)]
#: 20 frames at 10 fps, then one at 2.5 s (the header says 2.1 s)
VFR_TAIL_TIMES = [i / 10 for i in range(20)] + [2.5]


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_clips(root: Path) -> dict[str, Path]:
    """Every kind of clip under ``root``; name -> file."""
    root.mkdir(parents=True, exist_ok=True)
    clips = {
        "cfr10": write_marker_clip(root / "cfr10.mp4", 35, 10),
        "cfr25-bframes": write_marker_clip(root / "cfr25-bframes.mp4", 60, 25),
        "cfr25-no-bframes": write_marker_clip(root / "cfr25-no-bframes.mp4", 60, 25, bframes=False),
        "vfr": write_marker_clip(root / "vfr.mp4", 50, 10, times=VFR_TIMES),
        "rotated": write_marker_clip(root / "rotated.mp4", 20, 10, size=(64, 32), rotation=90),
        "rotated-270": write_marker_clip(root / "rotated-270.mp4", 8, 10, rotation=270),
        "mirrored": write_marker_clip(root / "mirrored.mp4", 8, 10, hflip=True),
        "rotated-mirrored": write_marker_clip(
            root / "rotated-mirrored.mp4", 8, 10, rotation=90, hflip=True
        ),
        "ntsc": write_marker_clip(root / "ntsc.mp4", 180, Fraction(30000, 1001), size=(32, 32)),
        # its last frame shows at 2.5 s, past the 2.1 s its header says it lasts
        "vfr-tail": write_marker_clip(root / "vfr-tail.mp4", 21, 10, times=VFR_TAIL_TIMES),
    }
    whole = write_marker_clip(root / "untrimmed.tmp", 40, 10)
    trimmed = root / "trimmed.mp4"
    subprocess.run(
        [ffmpeg(), "-loglevel", "error", "-y", "-ss", "0.75", "-i", str(whole)]
        + ["-t", "2.2", "-c", "copy", "-f", "mp4", str(trimmed)],
        check=True,
    )
    whole.unlink()
    clips["trimmed"] = trimmed
    return clips


def pyav_times(path: Path) -> list[Fraction]:
    """Each decoded frame's time from the stream's start (pts x time base), exact (PyAV)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = Fraction(stream.time_base)
        origin = Fraction(stream.start_time or 0) * tb
        return [Fraction(frame.pts) * tb - origin for frame in container.decode(stream)]


def first_at_or_after(times: list[Fraction], fps: Fraction) -> list[int]:
    """Brute force: for each k, the first frame whose time is at or after k/fps."""
    chosen = []
    k = 0
    while k / fps <= times[-1]:
        chosen.append(next(i for i, t in enumerate(times) if t >= k / fps))
        k += 1
    return sorted(set(chosen))


def _showinfo_times(args: list[str]) -> list[float]:
    run = subprocess.run(args, capture_output=True, text=True, check=True)
    return [float(t) for t in re.findall(r"pts_time:\s*([-0-9.e]+)", run.stderr)]


def ffmpeg_select_times(path: Path, fps: int) -> list[float]:
    """Times of the frames FFmpeg's ``select`` filter keeps under the rule "the first frame at
    or after each k/fps": a frame whose floor(t*fps) passes the previous frame's."""
    expr = f"if(isnan(prev_t),gte(t,0),gt(floor(t*{fps}),floor(prev_t*{fps})))"
    vf = f"select='{expr}',showinfo"
    return _showinfo_times(
        [ffmpeg(), "-hide_banner", "-i", str(path), "-vf", vf, "-f", "null", "-"]
    )


def ffmpeg_fps_times(path: Path, fps: int) -> list[float]:
    """Times of the frames FFmpeg's ``fps`` filter outputs (``-vf fps=F``)."""
    vf = f"fps={fps},showinfo"
    return _showinfo_times(
        [ffmpeg(), "-hide_banner", "-i", str(path), "-vf", vf, "-f", "null", "-"]
    )


def ffmpeg_frames(path: Path) -> list[np.ndarray]:
    """Every frame as FFmpeg's program shows it (it applies the display matrix), RGB."""
    probe = subprocess.run(
        [ffmpeg(), "-hide_banner", "-i", str(path), "-vf", "showinfo", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    width, height = (int(v) for v in re.findall(r"s:(\d+)x(\d+)", probe)[0])
    raw = subprocess.run(
        [ffmpeg(), "-loglevel", "error", "-i", str(path), "-fps_mode", "passthrough"]
        + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    return list(frames)
