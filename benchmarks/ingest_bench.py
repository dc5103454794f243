"""Benchmark `curate ingest` against FiftyOne's own importers (prints figures; asserts nothing).

    .venv/bin/python benchmarks/ingest_bench.py [--images 10000]

Target: ingesting N small images with our command is at least as
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
    # a throw-away database; left in place because FiftyOne stops its mongod only after
    # this process has exited (deleting the folder earlier makes mongod abort)
    db = tempfile.mkdtemp(prefix="ingest-bench-db-")
    os.environ["FIFTYONE_DATABASE_DIR"] = db
    print(f"FiftyOne database for this run: {db}")
    with tempfile.TemporaryDirectory() as tmp:
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
        fo.Dataset.from_dir(
            dataset_dir=str(Path(tmp) / "raw"),
            dataset_type=fo.types.ImageDirectory,
            name="bench-from-dir",
            recursive=True,
            progress=False,
        )
        from_dir = time.perf_counter() - t
        paths = [str(p) for p in sorted((Path(tmp) / "raw").rglob("*.png"))]
        t = time.perf_counter()
        fo.Dataset("bench-add-images").add_images(paths, progress=False)
        add_images = time.perf_counter() - t
        n = args.images
        print(
            f"curate ingest (full decode + sha256 + phash + add): {ours:6.1f} s "
            f"({n / ours:,.0f} images/s)"
        )
        print(
            f"  of which decoding and hashing {result.hash_seconds:.1f} s (worker processes), "
            f"adding to FiftyOne {result.add_seconds:.1f} s, "
            f"other {ours - result.hash_seconds - result.add_seconds:.1f} s"
        )
        print(
            f"FiftyOne Dataset.from_dir (ImageDirectory)       : {from_dir:6.1f} s "
            f"({n / from_dir:,.0f} images/s)"
        )
        print(
            f"FiftyOne Dataset.add_images                      : {add_images:6.1f} s "
            f"({n / add_images:,.0f} images/s)"
        )
        print(
            f"time ours / from_dir: {ours / from_dir:.2f} all-in; "
            f"{(ours - result.hash_seconds) / from_dir:.2f} without decoding and hashing "
            "(from_dir neither opens nor hashes the images)"
        )


if __name__ == "__main__":
    main()
