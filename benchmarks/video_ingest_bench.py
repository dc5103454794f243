"""Benchmark video ingest against ffmpeg alone on the same clips (prints figures; asserts nothing).

    .venv/bin/python benchmarks/video_ingest_bench.py [--subjects 3 --cameras 2 --size 240 \
        --fps 25 --stretch 3]

Target: frames per second of `curate ingest LABELS --videos DIR`
(decode, sample at 2 fps, write JPEGs, hash, add to FiftyOne) within 1.5x of
``ffmpeg -i V -vf fps=2 out/%05d.jpg`` run on each clip, in the same run. The
clips are synthetic (curation.synthetic_video, H.264). ffmpeg is the system one,
else imageio-ffmpeg's binary (pip install imageio-ffmpeg; in the [dev] extra).
The FiftyOne database is a throw-away folder, started before timing. The load
average is printed: on a shared machine compare only figures of one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def ffmpeg_binary() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--size", type=int, default=240)
    parser.add_argument("--fps", type=int, default=25, help="the clips' own frame rate")
    parser.add_argument("--stretch", type=float, default=3.0, help="clip length x 3.5 s")
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed rounds")
    args = parser.parse_args()
    db = tempfile.mkdtemp(prefix="video-bench-db-")  # left: mongod stops after we exit
    os.environ["FIFTYONE_DATABASE_DIR"] = db
    from curation.synthetic_video import write_clips

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "clips"
        t = time.perf_counter()
        clips = write_clips(
            root,
            subjects=args.subjects,
            cameras=args.cameras,
            size=args.size,
            fps=args.fps,
            stretch=args.stretch,
        )
        mb = sum(c.file.stat().st_size for c in clips) / 1e6
        print(
            f"{len(clips)} clips, {args.size}x{args.size} px, {args.fps} fps, "
            f"{clips[0].segments[-1].end:g} s each, {mb:.1f} MB, rendered in "
            f"{time.perf_counter() - t:.1f} s"
        )
        from curation.curator._fo import fiftyone
        from curation.curator.video import ingest_videos

        fiftyone().list_datasets()  # start the database before timing anything
        ffmpeg = ffmpeg_binary()
        print(f"ffmpeg: {ffmpeg}")
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
        for r in range(args.rounds):
            out = Path(tmp) / f"ffmpeg-{r}"
            t = time.perf_counter()
            n_ffmpeg = 0
            for c in clips:
                folder = out / c.path
                folder.mkdir(parents=True)
                subprocess.run(
                    [
                        ffmpeg,
                        "-loglevel",
                        "error",
                        "-i",
                        str(c.file),
                        "-vf",
                        "fps=2",
                        str(folder / "%05d.jpg"),
                    ],
                    check=True,
                )
                n_ffmpeg += len(list(folder.iterdir()))
            t_ffmpeg = time.perf_counter() - t
            t = time.perf_counter()
            result = ingest_videos(
                root / "labels.csv",
                f"bench-{r}",
                videos=root,
                fps=2.0,
                frames_dir=Path(tmp) / f"frames-{r}",
            )
            t_ours = time.perf_counter() - t
            n_ours = result.frames
            ing = result.ingest
            print(f"round {r + 1} (load {os.getloadavg()[0]:.2f}):")
            print(
                f"  ffmpeg -vf fps=2 (decode + sample + write JPEG)     : {t_ffmpeg:6.2f} s, "
                f"{n_ffmpeg} frames, {n_ffmpeg / t_ffmpeg:7.1f} frames/s"
            )
            print(
                f"  curate ingest --fps 2 (+ label, hash, add to FiftyOne): {t_ours:6.2f} s, "
                f"{n_ours} frames, {n_ours / t_ours:7.1f} frames/s"
            )
            print(
                f"    decode + sample + write + hash {result.decode_seconds:.2f} s, re-check "
                f"{ing.hash_seconds:.2f} s, add {ing.add_seconds:.2f} s, other "
                f"{t_ours - result.decode_seconds - ing.hash_seconds - ing.add_seconds:.2f} s"
            )
            ratio = (n_ffmpeg / t_ffmpeg) / (n_ours / t_ours)
            print(f"  ffmpeg frames/s / ours: {ratio:.2f}x (target: at most 1.5x)")


if __name__ == "__main__":
    main()
