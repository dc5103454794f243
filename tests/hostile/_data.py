"""Small real inputs several hostile files build alike: frame records and OmniFall clips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from _harness import REPO

from curation.synthetic import QUESTION, render_scene

#: the bundled synthetic clips, in OmniFall's layout
CLIPS = REPO / "raw" / "sample" / "videos" / "synthetic" / "video"
HEADER = "path,label,start,end,subject,cam,dataset\n"
GOOD = "s01_c01_fall,0,0,1.5,1,1,synthetic\ns01_c01_fall,1,1.5,2,1,1,synthetic\n"


def write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    return path


def write_frame_set(root: Path) -> Path:
    """24 frames: 2 datasets x 3 subjects x 4 frames; odd frames are "no" (walk, lie_down).

    ``root/task.json`` carries each frame's subject, video and source dataset, and
    ``negative_kind`` on the "no" frames.
    """
    recs = []
    for ds in ("le2i", "up_fall"):
        for subject in range(3):
            for f in range(4):
                i = len(recs)
                fall = f % 2 == 0
                render_scene(fall, 3000 + i, 48).save(root / f"{i:02d}.png")
                kind = None if fall else ("lie_down" if f == 1 else "walk")
                recs.append(
                    {
                        "instance_id": i,
                        "image": f"{i:02d}.png",
                        "text_input": QUESTION,
                        "answer": ["yes" if fall else "no"],
                        "subject": str(subject),
                        "video": f"{ds}/s{subject}",
                        "source_dataset": ds,
                        **({"negative_kind": kind} if kind else {}),
                    }
                )
    write_json(root / "task.json", recs)
    return root


def copy_clip_inputs(tmp_path: Path) -> Path:
    """``in/videos/synthetic/video/`` with two real clips (OmniFall's layout)."""
    video = tmp_path / "in" / "videos" / "synthetic" / "video"
    video.mkdir(parents=True)
    for name in ("s01_c01_fall", "s02_c01_sit"):
        shutil.copy(CLIPS / f"{name}.mp4", video / f"{name}.mp4")
    return tmp_path / "in"
