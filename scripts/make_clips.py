"""Write synthetic fall clips with OmniFall-format labels (test data for video ingest).

    python scripts/make_clips.py                       # regenerate raw/sample/videos/
    python scripts/make_clips.py --out /tmp/clips --subjects 4 --cameras 3 --generic

Each clip is a stick figure (a subject: colour, size, limb width) in front of a
background (a camera) walking, sitting down, lying down on purpose or falling
(`curation.synthetic_video.SCENARIOS`), 96x96 px at 10 fps, H.264. Files:
OUT/synthetic/video/*.mp4, OUT/labels.csv (OmniFall's format), with --generic
OUT/segments.csv, and for the bundled sample OUT/manifest.json (sha256 of each).
Then: curate ingest OUT/labels.csv --videos OUT --dataset NAME
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from curation.synthetic_video import write_clips

SAMPLE = Path(__file__).resolve().parent.parent / "raw" / "sample" / "videos"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLE)
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generic", action="store_true", help="also write segments.csv")
    args = parser.parse_args()
    clips = write_clips(
        args.out, subjects=args.subjects, cameras=args.cameras, seed=args.seed, generic=args.generic
    )
    manifest = {
        "name": "falldown-curate synthetic clips",
        "note": "Synthetic stand-ins for fall videos (stick figures), OmniFall's CSV format. "
        "Point the tools at your own videos.",
        "generator": f"scripts/make_clips.py --subjects {args.subjects} --cameras "
        f"{args.cameras} --seed {args.seed}",
        "videos": [
            {
                "video": c.file.relative_to(args.out).as_posix(),
                "scenario": c.scenario,
                "subject": c.subject,
                "camera": c.camera,
                "synthetic": True,
                "sha256": hashlib.sha256(c.file.read_bytes()).hexdigest(),
            }
            for c in clips
        ],
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    size = sum(c.file.stat().st_size for c in clips)
    print(f"wrote {len(clips)} clips ({size / 1024:.0f} KB) and labels.csv under {args.out}")


if __name__ == "__main__":
    main()
