"""Benchmark `curate ingest` against FiftyOne's own importers (prints figures; asserts nothing).

    .venv/bin/python benchmarks/ingest_bench.py [--images 10000]

Target (issue #5): ingesting N small images with our command is at least as
fast as FiftyOne's ``Dataset.from_dir`` / ``add_images``, hashes (sha256 +
perceptual hash) included or reported separately. Runs on a throw-away
FiftyOne database directory.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FIFTYONE_DATABASE_DIR"] = str(Path(tmp) / "db")
        from curation.synthetic import render_scenes

        t = time.perf_counter()
        half = args.images // 2
        render_scenes(Path(tmp) / "raw", n_fall=half, n_no_fall=args.images - half, seed=1, size=64)
        print(f"rendered {args.images:,} 64x64 PNGs in {time.perf_counter() - t:.1f} s")

        from curation.curator._fo import fiftyone
        from curation.curator.ingest import ingest

        fo = fiftyone()
        fo.list_datasets()  # start the database before timing anything
        t = time.perf_counter()
        result = ingest(Path(tmp) / "raw", "bench-ours")
        ours = time.perf_counter() - t
        t = time.perf_counter()
        fo.Dataset.from_dir(dataset_dir=str(Path(tmp) / "raw"),
                            dataset_type=fo.types.ImageDirectory, name="bench-from-dir",
                            recursive=True, progress=False)
        from_dir = time.perf_counter() - t
        paths = [str(p) for p in sorted((Path(tmp) / "raw").rglob("*.png"))]
        t = time.perf_counter()
        fo.Dataset("bench-add-images").add_images(paths, progress=False)
        add_images = time.perf_counter() - t
        n = args.images
        print(f"curate ingest (decode check + sha256 + phash + add): {ours:6.1f} s "
              f"({n / ours:,.0f} images/s)")
        print(f"  of which hashing {result.hash_seconds:.1f} s, adding {result.add_seconds:.1f} s, "
              f"checking images {ours - result.hash_seconds - result.add_seconds:.1f} s")
        print(f"FiftyOne Dataset.from_dir (ImageDirectory)        : {from_dir:6.1f} s "
              f"({n / from_dir:,.0f} images/s)")
        print(f"FiftyOne Dataset.add_images                       : {add_images:6.1f} s "
              f"({n / add_images:,.0f} images/s)")
        print(f"ratio ours / from_dir: {ours / from_dir:.2f} (all-in); without hashing: "
              f"{(ours - result.hash_seconds) / from_dir:.2f}")


if __name__ == "__main__":
    main()
