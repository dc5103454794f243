"""Splits against independent computations.

- Near-duplicate groups of video frames, recomputed from the frame files alone:
  ``imagehash.phash`` pair by pair, the video-copy rule docs/curator.md states
  (frames of two videos are near copies only when at least two-thirds of the
  shorter video's frames match the other's frame at the same time), and a
  union-find written here. ``curate check`` must find the same groups, and no
  group (nor a clip and its re-encoded copy) may sit in two splits of an export.
- Dealing by answer, against a brute force over every assignment of groups to
  splits: with groups of one answer and one size, the dealt split is as close to
  each split's share of each answer as any assignment can be.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import random
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

av = pytest.importorskip("av")
fo = pytest.importorskip("fiftyone")
imagehash = pytest.importorskip("imagehash")

from PIL import Image  # noqa: E402

from curation.cli import app  # noqa: E402
from curation.split import SPLITS, assign_splits  # noqa: E402
from curation.synthetic_video import write_clips  # noqa: E402

runner = CliRunner()
HAMMING = 4  # curate check's default --hamming


def curate(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def reencode(src: Path, dst: Path, crf: int) -> None:
    """Decode ``src`` with PyAV and write it again as H.264 at another quality."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        video = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=video.average_rate)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.options = {"crf": str(crf), "threads": "1"}
        for frame in inp.decode(video):
            image = frame.to_ndarray(format="rgb24")
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))


class UnionFind:
    def __init__(self, items: list[str]) -> None:
        self.parent = {i: i for i in items}

    def root(self, i: str) -> str:
        while self.parent[i] != i:
            i = self.parent[i]
        return i

    def join(self, a: str, b: str) -> None:
        self.parent[self.root(a)] = self.root(b)

    def groups(self) -> list[frozenset[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for i in self.parent:
            found[self.root(i)].add(i)
        return [frozenset(g) for g in found.values() if len(g) > 1]


def bits(a: imagehash.ImageHash, b: imagehash.ImageHash) -> int:
    return int(a - b)


@pytest.fixture(scope="module")
def clips_and_copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Six clips (3 subjects x fall/walk, one camera) and a re-encoded copy of each, in
    another folder with a label file of its own that names no subject."""
    root = tmp_path_factory.mktemp("clips")
    clips = write_clips(root / "orig", scenarios=("fall", "walk"), subjects=3, cameras=1)
    rows = [["video", "start", "end", "label"]]
    for clip in clips:
        reencode(clip.file, root / "copies" / f"{clip.path}.mp4", crf=20)
        rows += [[f"{clip.path}.mp4", s.start, s.end, s.label] for s in clip.segments]
    with (root / "copies" / "segments.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return {"root": root, "orig": root / "orig", "copies": root / "copies"}


def recomputed_groups(samples: list[dict]) -> tuple[list[frozenset[str]], list[frozenset[str]]]:
    """(near-copy groups, exact-copy groups) of sample ids, from the files alone."""
    hashes = {s["id"]: imagehash.phash(Image.open(s["filepath"])) for s in samples}
    digest = {
        s["id"]: hashlib.sha256(Path(s["filepath"]).read_bytes()).hexdigest() for s in samples
    }
    at = {(s["video"], round(s["time"], 3)): s["id"] for s in samples}
    frames: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        frames[s["video"]].append(s)

    def copies(v: str, w: str) -> bool:
        short, long = sorted((v, w), key=lambda x: (len(frames[x]), x))
        same_time = [
            (s["id"], at[(long, round(s["time"], 3))])
            for s in frames[short]
            if (long, round(s["time"], 3)) in at
        ]
        matched = sum(bits(hashes[a], hashes[b]) <= HAMMING for a, b in same_time)
        return 3 * matched >= 2 * len(frames[short])

    video_of = {s["id"]: s["video"] for s in samples}
    near = UnionFind(list(hashes))
    exact = UnionFind(list(hashes))
    for a, b in itertools.combinations(hashes, 2):
        if digest[a] == digest[b]:
            exact.join(a, b)
        elif bits(hashes[a], hashes[b]) <= HAMMING and (
            video_of[a] == video_of[b] or copies(video_of[a], video_of[b])
        ):
            near.join(a, b)
    return near.groups(), exact.groups()


def test_near_copy_groups_across_videos_match_and_never_straddle_splits(
    clips_and_copies: dict[str, Path], tmp_path: Path
) -> None:
    name = f"near-copies-{uuid.uuid4().hex[:8]}"
    orig, copies = clips_and_copies["orig"], clips_and_copies["copies"]
    frames = ["--frames-dir", tmp_path / "frames"]
    curate("ingest", orig / "labels.csv", "--videos", orig, "--dataset", name, *frames)
    curate("ingest", copies / "segments.csv", "--videos", copies, "--dataset", name, *frames)
    report_file = tmp_path / "check.json"
    curate("check", "--dataset", name, "--json", report_file)
    ds = fo.load_dataset(name)
    ids, paths, videos, times = ds.values(["id", "filepath", "video", "time"])
    samples = [
        {"id": i, "filepath": p, "video": v, "time": t}
        for i, p, v, t in zip(ids, paths, videos, times, strict=True)
    ]
    near, exact = recomputed_groups(samples)

    report = json.loads(report_file.read_text())
    assert {frozenset(g) for g in report["groups"]["dup:near"]} == set(near)

    # the reference finds each clip beside its copy: the case check and export must keep
    stem = {s["id"]: Path(s["video"]).stem for s in samples}
    video_of = {s["id"]: s["video"] for s in samples}
    twins = {
        frozenset(video_of[i] for i in g)
        for g in near
        if len({stem[i] for i in g}) == 1 and len({video_of[i] for i in g}) == 2
    }
    assert {Path(next(iter(t))).stem for t in twins} == {Path(v).stem for v in videos}

    for extra in (["--group-by", "video", "--seed", "0"], ["--group-by", "video", "--seed", "1"],
                  []):  # fmt: skip
        out = tmp_path / f"export-{len(extra)}-{extra[-1] if extra else 'default'}"
        curate("export", "--dataset", name, "--out", out, "--val-share", "0.34",
               "--test-share", "0.33", *extra)  # fmt: skip
        split_of: dict[str, str] = {}
        for split in SPLITS:
            for row in json.loads((out / f"{split}.provenance.json").read_text()):
                split_of[row["fiftyone_id"]] = split
        for group in [*near, *exact]:
            splits = {split_of[i] for i in group if i in split_of}
            assert len(splits) <= 1, (extra, sorted(group), splits)
        video_split: dict[str, set[str]] = defaultdict(set)
        for i, split in split_of.items():
            video_split[stem[i]].add(split)
        assert all(len(s) == 1 for s in video_split.values()), (extra, dict(video_split))


def l1_from_shares(
    where: list[str], groups: list[tuple[str, int]], fractions: tuple[float, ...]
) -> float:
    """How far the splits are from each split's share of each answer (records)."""
    totals = Counter()
    for answer, size in groups:
        totals[answer] += size
    got: Counter[tuple[str, str]] = Counter()
    for (answer, size), split in zip(groups, where, strict=True):
        got[(split, answer)] += size
    return sum(
        abs(got[(split, answer)] - share * totals[answer])
        for split, share in zip(SPLITS, fractions, strict=True)
        for answer in totals
    )


@pytest.mark.parametrize(
    ("yes_groups", "no_groups", "size", "fractions"),
    [(4, 5, 2, (0.6, 0.2, 0.2)), (3, 6, 3, (0.8, 0.1, 0.1)), (5, 4, 1, (0.5, 0.25, 0.25))],
)
def test_dealing_by_answer_is_as_even_as_a_brute_force_finds(
    yes_groups: int, no_groups: int, size: int, fractions: tuple[float, float, float]
) -> None:
    groups = [("yes", size)] * yes_groups + [("no", size)] * no_groups
    best = min(
        l1_from_shares(list(where), groups, fractions)
        for where in itertools.product(SPLITS, repeat=len(groups))
    )
    keys = [g for g, (_, n) in enumerate(groups) for _ in range(n)]
    answers = [answer for answer, n in groups for _ in range(n)]
    for seed in range(8):
        per_item = assign_splits(keys, fractions, random.Random(seed), answers)
        where = [per_item[keys.index(g)] for g in range(len(groups))]
        assert l1_from_shares(where, groups, fractions) == pytest.approx(best), seed
