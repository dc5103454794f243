"""The splitter: split files that contradict themselves, answers dealt evenly, the
messages that name what joined a group, and one key per group for check and export."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from conftest import write_json
from typer.testing import CliRunner

from curation.cli import app
from curation.curator.checks import Columns, NearDuplicates, group_leaks, group_members
from curation.curator.records import _split_group
from curation.errors import DataError, UsageError
from curation.export import task_records_from_file
from curation.record_types import ExportRecord
from curation.split import SPLITS, assign_splits, load_split_file, split_by_groups
from curation.synthetic import QUESTION, render_scene

runner = CliRunner()


def curate(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args], terminal_width=200)
    return result.exit_code, result.output


def frame_task(root: Path, subjects: int = 3, videos: int = 2, per_video: int = 2) -> Path:
    """Frames of le2i subjects, ``videos`` clips each; even frames of a clip fall."""
    root.mkdir(parents=True, exist_ok=True)
    recs = []
    for subject in range(subjects):
        for v in range(videos):
            for f in range(per_video):
                i = len(recs)
                render_scene(f % 2 == 0, 500 + i, 40).save(root / f"{i:03d}.png")
                recs.append(
                    {
                        "instance_id": i,
                        "image": f"{i:03d}.png",
                        "text_input": QUESTION,
                        "answer": ["yes" if f % 2 == 0 else "no"],
                        "subject": str(subject),
                        "video": f"le2i/s{subject}v{v}.avi",
                        "source_dataset": "le2i",
                    }
                )
    return write_json(root / "task.json", recs)


def provenance(out: Path) -> dict[str, list[dict]]:
    return {s: json.loads((out / f"{s}.provenance.json").read_text()) for s in SPLITS}


# --- split files ---------------------------------------------------------------------


def test_a_subject_and_its_video_under_two_splits_are_refused_naming_both(
    tmp_path: Path,
) -> None:
    task = frame_task(tmp_path / "frames")
    split_file = write_json(
        tmp_path / "split.json",
        {"train": ["le2i/0", "le2i/1"], "val": ["le2i/2"], "test": ["le2i/s0v1.avi"]},
    )
    records = task_records_from_file(task)
    with pytest.raises(DataError) as err:
        split_by_groups(records, split_file=split_file)
    text = str(err.value)
    assert "subject 'le2i/0' under 'train'" in text
    assert "video 'le2i/s0v1.avi' under 'test'" in text
    code, output = curate("export", "--task", task, "--out", tmp_path / "out", "--split-file",
                          split_file)  # fmt: skip
    assert code == 1, output
    assert "contradicts itself" in output and not (tmp_path / "out").exists()


def test_the_same_subject_and_video_under_one_split_is_no_contradiction(tmp_path: Path) -> None:
    task = frame_task(tmp_path / "frames")
    split_file = write_json(
        tmp_path / "split.json",
        {"train": ["le2i/0", "le2i/s0v1.avi"], "val": ["le2i/1"], "test": ["le2i/2"]},
    )
    got = split_by_groups(task_records_from_file(task), split_file=split_file)
    assert {r.subject for r in got.splits["train"]} == {"0"}


@pytest.mark.parametrize(
    ("text", "suffix", "where"),
    [
        ('{"train": ["le2i/0", "le2i/1", "le2i/0"], "test": ["le2i/2"]}', ".json", "item #0"),
        ("split,group\ntrain,le2i/0\ntest,le2i/2\ntrain,le2i/0\n", ".csv", "row 2 and row 4"),
    ],
)
def test_a_key_listed_twice_under_one_split_is_a_usage_error(
    tmp_path: Path, text: str, suffix: str, where: str
) -> None:
    path = tmp_path / f"split{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as err:
        load_split_file(path)
    assert "'le2i/0' is listed twice under 'train'" in str(err.value)
    assert where in str(err.value)
    task = frame_task(tmp_path / "frames")
    code, output = curate("export", "--task", task, "--out", tmp_path / "o", "--split-file", path)
    assert code == 2, output
    assert "listed twice" in output


def test_a_video_level_file_under_subject_grouping_names_the_subject_and_group_by_video(
    tmp_path: Path,
) -> None:
    task = frame_task(tmp_path / "frames")
    videos = {
        "train": ["le2i/s0v0.avi", "le2i/s1v0.avi", "le2i/s1v1.avi"],
        "val": ["le2i/s0v1.avi", "le2i/s2v0.avi"],
        "test": ["le2i/s2v1.avi"],
    }
    split_file = write_json(tmp_path / "videos.json", videos)
    code, output = curate("export", "--task", task, "--out", tmp_path / "out", "--split-file",
                          split_file)  # fmt: skip
    assert code == 1, output
    assert "subject 'le2i/0'" in output and "--group-by video" in output
    assert "image content, a curator copy group or a video" not in output
    code, output = curate("export", "--task", task, "--out", tmp_path / "out", "--split-file",
                          split_file, "--group-by", "video")  # fmt: skip
    assert code == 0, output
    got = {
        s: sorted({p["video"] for p in rows}) for s, rows in provenance(tmp_path / "out").items()
    }
    assert got == {s: sorted(v) for s, v in videos.items()}


def test_a_zero_share_is_named_not_a_finer_key(tmp_path: Path) -> None:
    task = frame_task(tmp_path / "frames")
    out = tmp_path / "out"
    code, output = curate("export", "--task", task, "--out", out, "--group-by", "video",
                          "--val-share", "0")  # fmt: skip
    assert code == 1, output
    assert "--val-share is 0" in output and "Fix: --val-share 0.1" in output
    assert "finer key" not in output


def test_too_few_videos_under_group_by_video_suggest_no_finer_key(tmp_path: Path) -> None:
    task = frame_task(tmp_path / "frames", subjects=1, videos=2)
    code, output = curate("export", "--task", task, "--out", tmp_path / "out", "--group-by",
                          "video")  # fmt: skip
    assert code == 1, output
    assert "export more videos" in output and "(e.g. video)" not in output


# --- dealing by answer -----------------------------------------------------------------


def photos(root: Path, answers: list[str]) -> list[ExportRecord]:
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i, answer in enumerate(answers):
        render_scene(answer == "yes", 900 + i, 32).save(root / f"{i}.png")
        out.append(ExportRecord(root / f"{i}.png", QUESTION, (answer,), original_id=str(i)))
    return out


def test_twenty_records_give_every_split_both_answers_for_every_seed(tmp_path: Path) -> None:
    records = photos(tmp_path, ["yes", "no"] * 10)
    for seed in range(30):
        got = split_by_groups(records, (0.8, 0.1, 0.1), seed)
        for split in SPLITS:
            answers = Counter(r.answers[0] for r in got.splits[split])
            target = {"train": 8, "val": 1, "test": 1}[split]
            assert answers == {"yes": target, "no": target}, (seed, split, answers)
        assert got.info["warnings"] == []


def test_stratified_dealing_keeps_groups_whole_and_the_total_shares() -> None:
    # groups of 3 "yes", of 3 "no" and mixed ones: each split near its share of each answer
    keys, answers = [], []
    for g in range(30):
        side = ("yes", "no", "mixed")[g % 3]
        for k in range(3):
            keys.append(g)
            answers.append(side if side != "mixed" else ("yes", "no")[k % 2])
    for seed in range(10):
        where = assign_splits(keys, (0.6, 0.2, 0.2), random.Random(seed), answers)
        assert all(
            len({where[i] for i in range(len(keys)) if keys[i] == g}) == 1 for g in range(30)
        )
        for split, share in zip(SPLITS, (0.6, 0.2, 0.2), strict=True):
            for side in ("yes", "no"):
                n = sum(w == split and a == side for w, a in zip(where, answers, strict=True))
                assert abs(n - share * answers.count(side)) <= 3, (seed, split, side, n)


def test_a_split_left_with_one_answer_is_warned_about(tmp_path: Path) -> None:
    # six clips of five frames, each clip all "yes" or all "no": val and test hold one clip
    root = tmp_path / "frames"
    root.mkdir()
    recs = []
    for clip in range(6):
        for _ in range(5):
            i = len(recs)
            render_scene(clip % 2 == 0, 700 + i, 32).save(root / f"{i}.png")
            recs.append(
                {"instance_id": i, "image": f"{i}.png", "text_input": QUESTION,
                 "answer": ["yes" if clip % 2 == 0 else "no"], "video": f"c{clip}.mp4"}
            )  # fmt: skip
    task = write_json(root / "task.json", recs)
    out = tmp_path / "out"
    code, output = curate("export", "--task", task, "--out", out, "--val-share", "0.2",
                          "--test-share", "0.2")  # fmt: skip
    assert code == 0, output
    one_sided = {
        s
        for s, rows in provenance(out).items()
        if len({tuple(p["original_answers"]) for p in rows}) == 1
    }
    assert one_sided  # two splits of one clip each cannot hold both answers
    for split in one_sided:
        assert f"WARNING: the {split} split holds 5" in output
    assert "cannot be measured" in output
    warnings = json.loads((out / "manifest.json").read_text())["groups"]["warnings"]
    assert {w.split()[1] for w in warnings} == one_sided


# --- one key per group: check and the splitter ---------------------------------------------


def columns(videos: list[str], datasets: list[str], splits: list[str], **extra: list) -> Columns:
    n = len(videos)
    return Columns(
        ids=[str(i) for i in range(n)],
        paths=[f"/x/{i}.jpg" for i in range(n)],
        shas=[f"sha{i}" for i in range(n)],
        phashes=extra.pop("phashes", [f"{i * 0x0F0F0F0F:016x}" for i in range(n)]),
        answers=[["no"]] * n,
        questions=[QUESTION] * n,
        splits=splits,  # type: ignore[arg-type]
        sources=["s"] * n,
        meta={"video": videos, "source_dataset": datasets, **extra},
    )


def test_check_keys_a_video_by_its_dataset_as_the_splitter_does() -> None:
    # the same relative path in two source datasets is two videos to the splitter
    cols = columns(["clip.mp4"] * 4, ["le2i", "le2i", "up_fall", "up_fall"],
                   ["train", "train", "test", "test"])  # fmt: skip
    assert group_leaks(cols)["video"] == []
    from curation.split import record_join_key

    records = [
        ExportRecord(Path(p), QUESTION, ("no",), video=v, source_dataset=d)
        for p, v, d in zip(cols.paths, cols.meta["video"], cols.meta["source_dataset"], strict=True)
    ]
    members = group_members(cols, "video")
    assert set(members) == {record_join_key(r, "video") for r in records}
    for key, idx in members.items():
        assert {record_join_key(records[i], "video") for i in idx} == {key}


def test_near_copies_across_videos_join_only_when_the_videos_are_copies() -> None:
    base = [0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x00FF00FF00FF00FF, 0x0F0F0F0FF0F0F0F0]
    times = [0.0, 0.5, 1.0, 1.5]
    phashes = [f"{h:016x}" for h in base]  # clip.mp4
    phashes += [f"{h ^ 0b101:016x}" for h in base]  # its re-encoded copy: 2 bits off
    # another person before the same camera: alike at one moment only
    phashes += [phashes[0]] + [f"{h ^ 0xFFFF0000FFFF:016x}" for h in base[1:]]
    videos = ["clip.mp4"] * 4 + ["copy/clip.mp4"] * 4 + ["other.mp4"] * 4
    cols = columns(videos, [""] * 12, ["train"] * 12, phashes=phashes, time=times * 3)
    groups = [sorted(g) for g in NearDuplicates().find(cols)]
    assert sorted(groups) == [[0, 4], [1, 5], [2, 6], [3, 7]]
    # the export joins them: the curator group crosses videos
    values = {"near_dup_group": [None] * 12, "dup_group": [None] * 12, "video": videos}
    for k, g in enumerate(groups):
        for i in g:
            values["near_dup_group"][i] = k
    assert _split_group(values, 0) == _split_group(values, 4)
    records = [
        ExportRecord(Path(f"/nowhere/{i}.jpg"), QUESTION, ("no",), video=v,
                     group=_split_group({**values, "sha256": [str(j) for j in range(12)]}, i))
        for i, v in enumerate(videos)
    ]  # fmt: skip
    for seed in range(10):
        got = split_by_groups(records, (0.4, 0.3, 0.3), seed, "video")
        where = {r.video: s for s, rows in got.splits.items() for r in rows}
        assert where["clip.mp4"] == where["copy/clip.mp4"]


# --- near copies in a task file ------------------------------------------------------


def near_copy_task(root: Path, scenes: int = 12) -> Path:
    """``scenes`` rendered scenes, each also saved at 3/4 size and as a JPEG at quality 70:
    three files of different bytes that show one picture."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    recs = []
    for k in range(scenes):
        image = render_scene(k % 2 == 0, 900 + k, 96)
        image.save(root / f"{k:02d}.png")
        small = (image.width * 3 // 4, image.height * 3 // 4)
        image.resize(small, Image.LANCZOS).save(root / f"{k:02d}_small.png")
        image.convert("RGB").save(root / f"{k:02d}_q70.jpg", quality=70)
        for name in (f"{k:02d}.png", f"{k:02d}_small.png", f"{k:02d}_q70.jpg"):
            recs.append(
                {
                    "instance_id": len(recs),
                    "image": name,
                    "text_input": QUESTION,
                    "answer": ["yes" if k % 2 == 0 else "no"],
                }
            )
    return write_json(root / "task.json", recs)


def test_a_resized_or_re_saved_copy_in_a_task_file_joins_its_original(tmp_path: Path) -> None:
    """Three files of one picture (other bytes, other sizes) are one split group, whatever
    the seed: grouped by sha256 alone they were dealt apart."""
    task = near_copy_task(tmp_path / "imgs")
    records = task_records_from_file(task, tmp_path / "imgs")
    for seed in range(4):
        got = split_by_groups(records, (0.5, 0.25, 0.25), seed)
        where: dict[str, set[str]] = {}
        for split, rows in got.splits.items():
            for r in rows:
                where.setdefault(r.image.name[:2], set()).add(split)
        assert all(len(s) == 1 for s in where.values()), (seed, where)
        assert sum(got.info["groups_per_split"].values()) == 12
        near = got.info["near_copies"]
        assert near["method"] == "phash" and near["hamming"] == 4
        assert near["pairs"] == 36  # each picture: 3 files, 3 pairs of different bytes


def test_export_and_mix_task_keep_near_copies_in_one_split_and_say_so(tmp_path: Path) -> None:
    task = near_copy_task(tmp_path / "imgs")
    for command in (["export"], ["mix", "--vqav2-ratio", "0"]):
        out = tmp_path / command[0]
        shares = ["--val-share", "0.25", "--test-share", "0.25"]
        code, output = curate(*command, "--task", task, "--out", out, "--seed", "1", *shares)
        assert code == 0, output
        assert "36 near-copy pairs (perceptual hashes within 4 bits) kept in one split" in output
        where: dict[str, set[str]] = {}
        for split, rows in provenance(out).items():
            for row in rows:
                where.setdefault(row["original_image"][:2], set()).add(split)
        assert where and all(len(s) == 1 for s in where.values()), (command, where)


def test_without_imagehash_the_split_warns_that_near_copies_were_not_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "imagehash" else real(name, *a),
    )
    task = near_copy_task(tmp_path / "imgs", scenes=4)
    got = split_by_groups(task_records_from_file(task, tmp_path / "imgs"), (0.5, 0.25, 0.25), 0)
    assert got.info["near_copies"]["hamming"] is None
    assert any(
        "imagehash is not installed, so near copies" in w and "falldown-curate[fiftyone]" in w
        for w in got.info["warnings"]
    )


def _clip_hashes(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.getrandbits(64) for _ in range(n)]


def test_a_copy_with_its_head_cut_joins_its_clip_at_the_best_time_shift() -> None:
    """clip.mp4 (20 frames at 10 fps) and a re-encoded copy with the first 0.7 s cut (its
    frame at 0.0 s is the clip's at 0.7 s, 2 bits off): at the same time nothing matches,
    at a shift of 0.7 s every frame does."""
    clip = _clip_hashes(20, 1)
    times = [round(0.1 * i, 1) for i in range(20)]
    copy = [h ^ 0b11 for h in clip[7:]]
    videos = ["clip.mp4"] * 20 + ["trimmed.mp4"] * 13
    cols = columns(
        videos,
        [""] * 33,
        ["train"] * 33,
        phashes=[f"{h:016x}" for h in clip + copy],
        time=times + times[:13],
    )
    groups = sorted(sorted(g) for g in NearDuplicates().find(cols))
    assert groups == [[7 + k, 20 + k] for k in range(13)]


def test_a_look_alike_clip_matching_at_scattered_shifts_is_not_a_copy() -> None:
    """Every frame of another person's clip looks like some frame of clip.mp4 (one camera),
    each at another time shift: most frames never match at one shift, so no frame pair
    crosses the two videos (a frame-set match would join them)."""
    clip = _clip_hashes(20, 2)
    times = [round(0.1 * i, 1) for i in range(20)]
    other = [clip[(7 * i) % 20] ^ 0b1 for i in range(20)]  # a near copy of each, scrambled
    cols = columns(
        ["clip.mp4"] * 20 + ["other.mp4"] * 20,
        [""] * 40,
        ["train"] * 40,
        phashes=[f"{h:016x}" for h in clip + other],
        time=times * 2,
    )
    assert NearDuplicates().find(cols) == []
