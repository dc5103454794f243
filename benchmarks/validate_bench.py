"""Benchmark `curate validate` on a VQAv2-size file (prints figures; asserts nothing).

    .venv/bin/python benchmarks/validate_bench.py [--records 443757] [--images 2000]
    .venv/bin/python benchmarks/validate_bench.py --memory [--records 900000]

Targets: schema-only validation under 2 s on the 2-core machine and
at least 5x a naive ``json.load`` + one ``VQARecord(**r)`` per record; image
checks in parallel, reported next to a plain ``PIL.Image.open().verify()`` loop.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from curation.schemas.annotation import VQARecord
from curation.synthetic import render_scene
from curation.validate import validate_files

ANSWERS = ["yes", "no", "2", "red", "dog", "tennis", "1", "white"]


def make_file(path: Path, n: int, n_images: int) -> None:
    rng = random.Random(0)
    records = [
        {
            "instance_id": i,
            # about 5.4 questions per image as in VQAv2; no (image, question) repeats
            "image": f"COCO_train2014_{i * n_images // n:012d}.jpg",
            "text_input": f"What is the man number {i % 997} holding in his hand?",
            "answer": [rng.choice(ANSWERS) for _ in range(10)],
        }
        for i in range(n)
    ]
    path.write_text(json.dumps(records))


def naive(path: Path) -> float:
    t = time.perf_counter()
    with open(path) as fh:
        for r in json.load(fh):
            VQARecord(**r)
    return time.perf_counter() - t


_CHILD = """
import sys, time
from curation.validate import validate_files
t = time.perf_counter()
report = validate_files([sys.argv[1]], check_image_files=False)
seconds = time.perf_counter() - t
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(seconds, int(peak) * 1024, report.records, len(report.errors), report.ok)
"""


def _bad(rec: dict) -> dict:
    return {**rec, "answer": rec["answer"][0]}  # a bare string: the commonest real mistake


def memory(n: int) -> None:
    """Peak RSS (VmHWM of a fresh child process) for a clean file, one bad record, all bad."""
    with tempfile.TemporaryDirectory() as tmp:
        ann = Path(tmp) / "clean.json"
        make_file(ann, n, n // 5)
        records = json.loads(ann.read_text())
        one = Path(tmp) / "one_bad.json"
        one.write_text(json.dumps([_bad(records[0]), *records[1:]]))
        every = Path(tmp) / "all_bad.json"
        every.write_text(json.dumps([_bad(r) for r in records[: max(1, n // 10)]]))
        del records
        print(f"{'file':<14}{'records':>10}{'MB':>8}{'seconds':>9}{'peak MB':>9}{'x size':>8}")
        for path in (ann, one, every):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True
            )
            if out.returncode:
                raise SystemExit(out.stderr)
            seconds, peak, recs, _errors, _ok = out.stdout.split()
            size = path.stat().st_size
            print(
                f"{path.stem:<14}{int(recs):>10,}{size / 1e6:>8.0f}{float(seconds):>9.2f}"
                f"{int(peak) / 1e6:>9.0f}{int(peak) / size:>8.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=443_757)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument(
        "--memory", action="store_true", help="print peak memory (clean, one bad, all bad)"
    )
    args = parser.parse_args()
    if args.memory:
        memory(args.records)
        return
    with tempfile.TemporaryDirectory() as tmp:
        ann = Path(tmp) / "vqav2_size.json"
        make_file(ann, args.records, 82_783)
        size_mb = ann.stat().st_size / 1e6
        ours = float("inf")
        for _ in range(3):  # best of three: this shared machine is noisy
            t = time.perf_counter()
            report = validate_files([ann], check_image_files=False)
            ours = min(ours, time.perf_counter() - t)
        assert report.ok and report.records == args.records, report.summary()
        base = min(naive(ann) for _ in range(2))
        print(f"file: {args.records:,} records, {size_mb:.0f} MB")
        print(
            f"curate validate --no-images : {ours:6.2f} s  ({args.records / ours:,.0f} rec/s, "
            "best of 3)"
        )
        print(
            f"naive json.load + Model(**r): {base:6.2f} s  ({args.records / base:,.0f} rec/s, "
            "best of 2)"
        )
        print(f"speed-up                    : {base / ours:6.1f}x  (target >= 5x, < 2 s)")

        img_dir = Path(tmp) / "images"
        img_dir.mkdir()
        for i in range(args.images):
            render_scene(i % 2 == 0, i, 224).save(img_dir / f"{i}.jpg", quality=90)
        recs = [
            {"instance_id": i, "image": f"{i}.jpg", "text_input": "Q?", "answer": ["yes"]}
            for i in range(args.images)
        ]
        img_ann = img_dir / "ann.json"
        img_ann.write_text(json.dumps(recs))
        from PIL import Image

        t = time.perf_counter()
        for i in range(args.images):
            with Image.open(img_dir / f"{i}.jpg") as im:
                im.verify()
        verify = time.perf_counter() - t
        t = time.perf_counter()
        validate_files([img_ann])
        ours_img = time.perf_counter() - t
        print(f"images: {args.images} JPEGs 224x224")
        print(f"curate validate (full decode, threads): {args.images / ours_img:8,.0f} images/s")
        print(
            f"plain Image.open().verify() loop      : {args.images / verify:8,.0f} images/s"
            " (header/CRC only, misses truncation)"
        )


if __name__ == "__main__":
    main()
