"""Benchmark `curate mix` on a VQAv2-size general set (prints figures; asserts nothing).

    .venv/bin/python benchmarks/mix_bench.py [--questions 443757] [--task 10000]

Target: loading a VQAv2-size set in the official format (443,757
questions, ten answers each) and planning the mix with 10,000 task records
takes under 5 s and under 1 GiB peak RSS on this 2-core machine. Writing the
export (hashing and hard-linking images) is measured separately.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TYPES = [
    ("yes/no", ["yes", "no"]),
    ("number", ["1", "2", "3"]),
    ("other", ["red", "dog", "tennis"]),
]


def make_vqav2(folder: Path, n: int) -> None:
    rng = random.Random(0)
    qs, anns = [], []
    for i in range(n):
        kind, answers = TYPES[rng.choices(range(3), weights=(38, 12, 50))[0]]
        image_id = i * 82_783 // n
        qs.append(
            {"image_id": image_id, "question": f"What is thing {i % 997} doing?", "question_id": i}
        )
        human = [rng.choice(answers) for _ in range(10)]
        anns.append(
            {
                "question_id": i,
                "image_id": image_id,
                "answer_type": kind,
                "question_type": "what is",
                "multiple_choice_answer": human[0],
                "answers": [
                    {"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                    for k, a in enumerate(human)
                ],
            }
        )
    (folder / "q.json").write_text(json.dumps({"data_subtype": "train2014", "questions": qs}))
    (folder / "a.json").write_text(json.dumps({"annotations": anns}))
    (folder / "images").mkdir()


def peak_rss_mib() -> float:
    """This process's high-water RSS (VmHWM; ru_maxrss would include the parent's pages)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(folder: Path, n_task: int) -> None:
    from curation.export import ExportRecord
    from curation.mix import plan_mix
    from curation.sources import load_vqav2

    task = [
        ExportRecord(
            folder / "task" / f"{i}.png",
            "Is anyone falling in this image?",
            ("yes" if i % 3 else "no",),
            original_id=str(i),
        )
        for i in range(n_task)
    ]
    t0 = time.perf_counter()
    pool = load_vqav2(folder / "q.json", folder / "a.json", folder / "images")
    t1 = time.perf_counter()
    plan = plan_mix(task, [pool], ratio=0.7, seed=0)
    t2 = time.perf_counter()
    peak = peak_rss_mib()
    train = plan.splits["train"]
    print(
        f"general pool: {len(pool.rows):,} questions; task: {n_task:,} records "
        f"-> train {len(train):,} (general share {plan.achieved()['general_share']:.3f}, "
        f"task yes-share {plan.achieved()['yes_share']:.3f})"
    )
    print(f"load VQAv2 (official JSON): {t1 - t0:6.2f} s")
    print(f"plan the mix              : {t2 - t1:6.2f} s")
    print(f"total                     : {t2 - t0:6.2f} s   (target < 5 s)")
    print(f"peak RSS                  : {peak:6.0f} MiB (target < 1024 MiB)")


def measure_linking(n_images: int) -> None:
    from curation.export import ExportRecord, write_export
    from curation.synthetic import render_scene

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        recs = []
        for i in range(n_images):
            render_scene(i % 2 == 0, i, 64).save(src / f"{i}.png")
            recs.append(
                ExportRecord(
                    src / f"{i}.png", "Is anyone falling?", ("yes" if i % 2 == 0 else "no",)
                )
            )
        t0 = time.perf_counter()
        cut = len(recs) * 8 // 10, len(recs) * 9 // 10
        splits = {"train": recs[: cut[0]], "val": recs[cut[0] : cut[1]], "test": recs[cut[1] :]}
        write_export(Path(tmp) / "out", splits, seed=0)
        dt = time.perf_counter() - t0
    print(
        f"export writing (sha256 + hard link, {n_images:,} images): {dt:.2f} s "
        f"({n_images / dt:,.0f} images/s, tiny model files included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=443_757)
    parser.add_argument("--task", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=2_000)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.task)
        return
    with tempfile.TemporaryDirectory() as tmp:
        make_vqav2(Path(tmp), args.questions)
        size = sum(p.stat().st_size for p in Path(tmp).glob("*.json")) / 1e6
        print(f"generated official-format VQAv2 files: {size:.0f} MB")
        # a fresh process, so the generator's memory does not count in the peak
        subprocess.run(
            [sys.executable, __file__, "--measure", tmp, "--task", str(args.task)], check=True
        )
    measure_linking(args.images)


if __name__ == "__main__":
    main()
