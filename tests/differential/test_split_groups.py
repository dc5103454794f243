"""Splits against independent computations.

- Near-duplicate groups of video frames, recomputed from the frame files alone:
  ``imagehash.phash`` pair by pair, the video-copy rule docs/curator.md states
  (frames of two videos are near copies only when at least two-thirds of the
  shorter video's frames match the other's frame at the same moment, the videos
  lined up at the best time shift: here every shift between two frame times is
  tried), and a union-find written here. ``curate check`` must find the same
  groups, and no group (nor a clip and its re-encoded or trimmed copy) may sit in
  two splits of an export.
- Dealing by answer, against a brute force over every assignment of groups to
  splits: with groups of one answer and one size, the dealt split is as close to
  each split's share of each answer as any assignment can be.
"""

from __future__ import annotations

import csv
import functools
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


def reencode(src: Path, dst: Path, crf: int, skip: int = 0) -> None:
    """Decode ``src`` with PyAV and write it again as H.264 at another quality, without its
    first ``skip`` frames (a copy with its head cut: its time 0 is the source's frame
    ``skip``)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        video = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=video.average_rate)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.options = {"crf": str(crf), "threads": "1"}
        for k, frame in enumerate(inp.decode(video)):
            if k < skip:
                continue
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


def recomputed_groups(
    samples: list[dict], hamming: int = HAMMING
) -> tuple[list[frozenset[str]], list[frozenset[str]], set[frozenset[str]]]:
    """(near-copy groups, exact-copy groups) of sample ids, and the pairs of videos that
    are copies, from the files alone, with near copies within ``hamming`` bits."""
    hashes = {s["id"]: imagehash.phash(Image.open(s["filepath"])) for s in samples}
    digest = {
        s["id"]: hashlib.sha256(Path(s["filepath"]).read_bytes()).hexdigest() for s in samples
    }
    at = {(s["video"], round(s["time"], 3)): s["id"] for s in samples}
    frames: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        frames[s["video"]].append(s)

    @functools.cache
    def copies(v: str, w: str) -> bool:
        short, long = sorted((v, w), key=lambda x: (len(frames[x]), x))
        best = 0
        for shift in {round(b["time"] - a["time"], 3) for a in frames[short] for b in frames[long]}:
            lined_up = [
                (s["id"], at[(long, round(s["time"] + shift, 3))])
                for s in frames[short]
                if (long, round(s["time"] + shift, 3)) in at
            ]
            best = max(best, sum(bits(hashes[a], hashes[b]) <= hamming for a, b in lined_up))
        return 3 * best >= 2 * len(frames[short])

    video_of = {s["id"]: s["video"] for s in samples}
    near = UnionFind(list(hashes))
    exact = UnionFind(list(hashes))
    copy_pairs = set()
    for a, b in itertools.combinations(hashes, 2):
        if digest[a] == digest[b]:
            exact.join(a, b)
        elif bits(hashes[a], hashes[b]) <= hamming and (
            video_of[a] == video_of[b] or copies(video_of[a], video_of[b])
        ):
            near.join(a, b)
            if video_of[a] != video_of[b]:
                copy_pairs.add(frozenset((video_of[a], video_of[b])))
    return near.groups(), exact.groups(), copy_pairs


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
    near, exact, _ = recomputed_groups(samples)
    # check hashes the decoded frame, the reference the stored JPEG of it: the two hashes can
    # differ by a bit, so a pair at the threshold may fall either way. Check's groups must
    # hold every group the reference finds a bit tighter, and lie inside those a bit looser.
    tight, _, _ = recomputed_groups(samples, HAMMING - 1)
    loose, _, _ = recomputed_groups(samples, HAMMING + 1)

    report = json.loads(report_file.read_text())
    found = [frozenset(g) for g in report["groups"]["dup:near"]]
    assert all(any(g <= f for f in found) for g in tight), "check split a near-copy group"
    assert all(any(f <= g for g in loose) for f in found), "check joined frames that differ"

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
        for group in [*tight, *found, *exact]:
            splits = {split_of[i] for i in group if i in split_of}
            assert len(splits) <= 1, (extra, sorted(group), splits)
        video_split: dict[str, set[str]] = defaultdict(set)
        for i, split in split_of.items():
            video_split[stem[i]].add(split)
        assert all(len(s) == 1 for s in video_split.values()), (extra, dict(video_split))


def test_a_copy_with_its_head_cut_is_found_and_kept_beside_its_clip(tmp_path: Path) -> None:
    """Two clips of one camera re-encoded without their first 0.7 s, every frame ingested:
    check's near-copy groups equal the reference's (which lines the videos up at every
    shift), the reference joins each clip to its trimmed copy, and no export splits them."""
    root = tmp_path / "clips"
    clips = write_clips(root / "orig", scenarios=("fall", "walk"), subjects=2, cameras=1)
    fps, skip = 10, 7
    rows = [["video", "start", "end", "label"]]
    for clip in clips[:2]:
        reencode(clip.file, root / "trimmed" / f"{clip.path}.mp4", crf=26, skip=skip)
        with av.open(str(root / "trimmed" / f"{clip.path}.mp4")) as c:
            kept = sum(1 for _ in c.decode(video=0))
        for seg in clip.segments:
            start, end = max(0.0, seg.start - skip / fps), min(seg.end - skip / fps, kept / fps)
            if end > start:
                rows.append([f"{clip.path}.mp4", round(start, 3), round(end, 3), seg.label])
    with (root / "trimmed" / "segments.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    name = f"trimmed-{uuid.uuid4().hex[:8]}"
    common = ["--dataset", name, "--frames-dir", tmp_path / "frames", "--every-n", "1"]
    curate("ingest", root / "orig" / "labels.csv", "--videos", root / "orig", *common)
    curate("ingest", root / "trimmed" / "segments.csv", "--videos", root / "trimmed", *common)
    report_file = tmp_path / "check.json"
    curate("check", "--dataset", name, "--json", report_file)
    ds = fo.load_dataset(name)
    ids, paths, videos, times = ds.values(["id", "filepath", "video", "time"])
    samples = [
        {"id": i, "filepath": p, "video": v, "time": t}
        for i, p, v, t in zip(ids, paths, videos, times, strict=True)
    ]
    near, _, copy_pairs = recomputed_groups(samples)
    # the videos check calls copies are the reference's (frame groups may differ by a frame
    # or two: check hashes each frame as decoded, the reference the JPEG file written)
    video_of = {s["id"]: s["video"] for s in samples}
    report = json.loads(report_file.read_text())
    found = set()
    for group in report["groups"]["dup:near"]:
        for a, b in itertools.combinations(group, 2):
            if video_of[a] != video_of[b]:
                found.add(frozenset((video_of[a], video_of[b])))
    trimmed = {frozenset(v for v in set(videos) if Path(v).stem == c.path) for c in clips[:2]}
    assert all(len(pair) == 2 for pair in trimmed)
    assert found == copy_pairs == trimmed, (found, copy_pairs)
    for seed in (0, 1):
        out = tmp_path / f"export-{seed}"
        curate("export", "--dataset", name, "--out", out, "--group-by", "video", "--seed", seed,
               "--val-share", "0.34", "--test-share", "0.33")  # fmt: skip
        where: dict[str, set[str]] = defaultdict(set)
        for split in SPLITS:
            for row in json.loads((out / f"{split}.provenance.json").read_text()):
                where[Path(row["video"]).stem].add(split)
        assert all(len(s) == 1 for s in where.values()), (seed, dict(where))


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


def test_export_and_mix_task_keep_what_imagehash_calls_near_copies_in_one_split(
    tmp_path: Path,
) -> None:
    """A task file of pictures each also saved at 3/4 size and as a JPEG at quality 70: the
    exported files, hashed with imagehash pair by pair, have no two within the default
    --hamming in different splits (grouped by sha256 alone, most copies were dealt apart)."""
    from curation.synthetic import QUESTION, render_scene

    root = tmp_path / "imgs"
    root.mkdir()
    recs = []
    for k in range(12):
        image = render_scene(k % 2 == 0, 700 + k, 96).convert("RGB")
        image.save(root / f"{k}.png")
        image.resize((72, 72), Image.LANCZOS).save(root / f"{k}_small.png")
        image.save(root / f"{k}_q70.jpg", quality=70)
        recs += [
            {"instance_id": len(recs) + n, "image": name, "text_input": QUESTION,
             "answer": ["yes" if k % 2 == 0 else "no"]}
            for n, name in enumerate((f"{k}.png", f"{k}_small.png", f"{k}_q70.jpg"))
        ]  # fmt: skip
    (root / "task.json").write_text(json.dumps(recs))
    shares = ["--val-share", "0.25", "--test-share", "0.25"]
    for command in (["export"], ["mix", "--vqav2-ratio", "0"]):
        out = tmp_path / command[0]
        curate(*command, "--task", root / "task.json", "--out", out, "--seed", "0", *shares)
        exported = [
            (split, imagehash.phash(Image.open(out / "images" / r["image"]).convert("RGB")))
            for split in SPLITS
            for r in json.loads((out / f"{split}.json").read_text())
        ]
        across = [
            (a[0], b[0])
            for a, b in itertools.combinations(exported, 2)
            if a[0] != b[0] and bits(a[1], b[1]) <= HAMMING
        ]
        assert len(exported) >= 24 and across == [], (command, across[:5])
    # the reference sees the copies: each picture's three files are near copies
    originals = {
        k: imagehash.phash(Image.open(root / f"{k}.png").convert("RGB")) for k in range(12)
    }
    for k, h in originals.items():
        for name in (f"{k}_small.png", f"{k}_q70.jpg"):
            assert bits(h, imagehash.phash(Image.open(root / name).convert("RGB"))) <= HAMMING
