"""Regenerate the bundled sample in raw/sample/ (synthetic scenes + one real photo).

    python scripts/make_sample.py

The sample is committed; run this only to change it. It writes:
  raw/sample/fall/*.png      synthetic: a stick figure lying on the ground ("yes")
  raw/sample/no_fall/*.png   synthetic: a figure standing ("no"), plus camera.png,
                             scikit-image's real photo of a man standing (CC0)
  raw/sample/annotations.json  the LAVIS VQA contract (what `curate validate` passes)
  raw/sample/seed_train.json   the seed's broken format (string answers, wrong keys)
  raw/sample/manifest.json     what each image is, synthetic or real, and its licence
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from curation.synthetic import QUESTION, render_scenes

ROOT = Path(__file__).resolve().parent.parent / "raw" / "sample"
N_FALL, N_NO_FALL, SEED, SIZE = 24, 24, 0, 96


def main() -> None:
    for sub in ("fall", "no_fall"):
        shutil.rmtree(ROOT / sub, ignore_errors=True)
    scenes = render_scenes(ROOT, N_FALL, N_NO_FALL, seed=SEED, size=SIZE)
    import skimage

    camera = ROOT / "no_fall" / "camera.png"
    shutil.copyfile(Path(skimage.__file__).parent / "data" / "camera.png", camera)

    images = [
        {
            "image": s.path.relative_to(ROOT).as_posix(),
            "answer": "yes" if s.fallen else "no",
            "synthetic": True,
            "generator": f"curation.synthetic.render_scene(fallen={s.fallen}, seed={s.seed}, "
            f"size={SIZE})",
        }
        for s in scenes
    ]
    images.append(
        {
            "image": "no_fall/camera.png",
            "answer": "no",
            "synthetic": False,
            "source": "scikit-image skimage/data/camera.png (a man standing with a camera)",
            "license": "CC0",
        }
    )
    for entry in images:
        entry["sha256"] = hashlib.sha256((ROOT / entry["image"]).read_bytes()).hexdigest()

    records = [
        {"instance_id": i, "image": e["image"], "text_input": QUESTION, "answer": [e["answer"]]}
        for i, e in enumerate(images, start=1)
    ]
    seed_style = [  # what the seed's author wrote: bare string answers, a wrong key, a Windows path
        {"instance_id": 1, "image": "fall/0000.png", "text_input": QUESTION, "answer": "yes"},
        {"instance_id": 2, "image": "fall\\0001.png", "text_input": QUESTION, "answer": "yes"},
        {"instance_id": 3, "image": "fall/0002.png", "prompt": QUESTION, "answer": ["yes"]},
        {"instance_id": 4, "image": "fall/0003.png", "text_input": QUESTION, "answer": ["yes"]},
        {"instance_id": 5, "image": "fall/0004.png", "text_input": QUESTION, "answer": ["yes"]},
    ]
    manifest = {
        "name": "falldown-curate bundled sample",
        "note": "Synthetic stand-ins for fall photos (no package reachable offline ships "
        "real ones) plus one real CC0 negative. Point the tools at your own photos.",
        "question": QUESTION,
        "counts": {"fall": N_FALL, "no_fall": N_NO_FALL + 1, "synthetic": len(scenes), "real": 1},
        "images": images,
    }
    for name, obj in (
        ("annotations.json", records),
        ("seed_train.json", seed_style),
        ("manifest.json", manifest),
    ):
        (ROOT / name).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(images)} images and 3 JSON files under {ROOT}")


if __name__ == "__main__":
    main()
