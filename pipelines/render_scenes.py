"""Render synthetic fall scenes into a folder the toolkit reads (`fall/`, `no_fall/`, annotations).

    python pipelines/render_scenes.py exports/demo/scenes --per-class 500
    python pipelines/render_scenes.py exports/demo/falls_only --per-class 400 --only fall --seed 1
    python pipelines/render_scenes.py OUT --renderer clutter     # the second renderer

Writes OUT/fall/NNNN.png ("yes"), OUT/no_fall/NNNN.png ("no") and OUT/annotations.json
in the LAVIS VQA contract, each record asking the question its renderer chose. The
scenes are stand-ins (no package reachable here ships photos of falls); real users
point `curate` at their own photos instead. Refuses to write into a folder that
already holds an annotations.json (it never replaces data).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curation.synthetic import RENDERERS, write_scene_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--renderer", choices=sorted(RENDERERS), default="stick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--only", choices=("fall", "no_fall"), help="render one class only")
    args = parser.parse_args()
    ann = args.out / "annotations.json"
    if ann.exists():
        sys.exit(f"{ann} exists already; pick another folder (nothing was changed)")
    n_fall = 0 if args.only == "no_fall" else args.per_class
    n_no_fall = 0 if args.only == "fall" else args.per_class
    write_scene_set(args.out, n_fall, n_no_fall, args.seed, args.size, args.renderer)
    print(
        f"{n_fall + n_no_fall} {args.renderer} scenes ({n_fall} fall, {n_no_fall} no fall, "
        f"{args.size} px, seed {args.seed}) in {args.out}/ with {ann.name}"
    )


if __name__ == "__main__":
    main()
