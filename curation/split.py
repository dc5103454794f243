"""The one splitter: records to train/val/test so that no image content sits in two splits.

``curate export`` and ``curate mix`` both split here. Records are joined into
one group when they show the same bytes (content hash, whatever the file is
called), are near copies (64-bit perceptual hashes within ``NEAR_COPY_HAMMING``
bits: a resized, re-saved or re-encoded copy; the rule of ``curate check``, see
``curation.near_copies``) or carry the same curator group (FiftyOne's copy and
near-copy checks); the joins are transitive, so a near copy of a copy lands
beside both.

Frames cut from videos add two more joins: their video (frames of one clip
never straddle splits) and the ``--group-by`` key (a subject, camera or source
dataset; subject and camera ids are qualified by their source dataset, since
OmniFall's subject 3 of le2i is not subject 3 of up_fall). A record without the
chosen key falls back to its video; one with neither (a photo) keeps only the
content and curator joins, as before. ``--split-file`` gives each group its
split instead of dealing them.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation._io import sha256_file
from curation.errors import DataError, UsageError

if TYPE_CHECKING:
    from curation.record_types import ExportRecord

SPLITS = ("train", "val", "test")

#: ``--group-by`` names and the frame field each reads (``curation.class_map.FRAME_FIELDS``).
GROUP_BY: dict[str, str] = {
    "subject": "subject",
    "video": "video",
    "camera": "camera",
    "dataset": "source_dataset",
}


def split_fractions(val_share: float, test_share: float) -> tuple[float, float, float]:
    """``(train, val, test)`` from the shares a user gives, rounded as a person writes them.

    ``1 - 0.2 - 0.1`` is ``0.7000000000000001`` in floating point; manifests
    and messages show ``0.7``.

    Raises:
        UsageError: a share below 0, or the two together above 1.
    """
    for name, share in (("--val-share", val_share), ("--test-share", test_share)):
        if not 0 <= share <= 1:
            raise UsageError(f"{name} must be between 0 and 1, got {share:g}")
    total = round(val_share + test_share, 9)
    if total >= 1:
        raise UsageError(
            f"--val-share {val_share:g} + --test-share {test_share:g} = {total:g}: nothing is "
            "left for train. Fix: make the two add up to less than 1 (e.g. 0.1 and 0.1)."
        )
    return (round(1 - val_share - test_share, 9), val_share, test_share)


def _check(fractions: Sequence[float]) -> None:
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) < 0:
        shown = ", ".join(f"{round(f, 6):g}" for f in fractions)
        raise UsageError(
            f"split fractions (train, val, test) must be >= 0 and add up to 1, got ({shown})"
        )


def assign_splits(
    keys: Sequence[Hashable],
    fractions: Sequence[float],
    rng: random.Random,
    answers: Sequence[str] | None = None,
) -> list[str]:
    """The split of each item; items with equal keys share one.

    Distinct keys are sorted, shuffled with ``rng`` and dealt, each to the
    split furthest below its target share of the items. With ``answers`` (one
    per item, e.g. "yes"/"no") the dealing is stratified: a group goes to the
    split furthest below its target share of the group's own answers (ties: of
    all items), so each split gets each answer in proportion where the groups
    allow it.
    """
    _check(fractions)
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        members[key].append(i)
    order = sorted(members, key=str)
    rng.shuffle(order)
    total = len(keys)
    labels = list(answers) if answers is not None else [""] * total
    per_answer = Counter(labels)
    taken = dict.fromkeys(SPLITS, 0)
    taken_answer: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
    out = [""] * total
    for key in order:
        mine = Counter(labels[i] for i in members[key])

        def need(s: str, mine: Counter[str] = mine) -> tuple[float, float]:
            share = fractions[SPLITS.index(s)]
            own = sum(n * (share * per_answer[a] - taken_answer[s][a]) for a, n in mine.items())
            return (own, share * total - taken[s])

        split = max(SPLITS, key=need)
        taken[split] += len(members[key])
        taken_answer[split].update(mine)
        for i in members[key]:
            out[i] = split
    return out


def content_key(image: Path, cache: dict[Path, str]) -> str:
    """The image's sha256 (its resolved path when it cannot be read: the writer names it)."""
    key = cache.get(image)
    if key is None:
        try:
            key = sha256_file(image)
        except OSError:
            key = f"path:{image.resolve()}"
        cache[image] = key
    return key


def check_group_by(group_by: str | None) -> None:
    """Raises: UsageError: ``group_by`` is not one of ``GROUP_BY`` (the valid ones listed)."""
    if group_by is not None and group_by not in GROUP_BY:
        raise UsageError(
            f"--group-by {group_by!r} is not known. Fix: one of {', '.join(GROUP_BY)} "
            "(default: subject when known, else video)"
        )


def group_value(rec: ExportRecord, by: str) -> str | None:
    """The record's value under ``--group-by by``, as a split file names it: subject and
    camera ids qualified by their source dataset ("le2i/3"), a video as its path. None when
    the record does not know it."""
    value = getattr(rec, GROUP_BY[by])
    if value is None or str(value) == "":
        return None
    if by in ("subject", "camera") and rec.source_dataset:
        return f"{rec.source_dataset}/{value}"
    return str(value)


def join_key(by: str, value: object, source_dataset: object = None) -> str | None:
    """The key that joins records under ``by`` (a ``GROUP_BY`` name), the same for the
    splitter and ``curate check``'s leak groups; None when the value is unknown.

    A subject, camera or video is qualified by its source dataset when known (subject 3 of
    le2i is not subject 3 of up_fall); a video path that already starts with its dataset's
    folder keeps its name ("le2i/video/a.mp4").
    """
    if value is None or str(value) == "":
        return None
    text, dataset = str(value), str(source_dataset or "")
    if by == "dataset" or not dataset:
        return text
    if by == "video" and text.startswith(f"{dataset}/"):
        return text
    return f"{dataset}/{text}"


def record_join_key(rec: ExportRecord, by: str) -> str | None:
    """``join_key`` of one record."""
    return join_key(by, getattr(rec, GROUP_BY[by]), rec.source_dataset)


def resolve_group_by(records: Sequence[ExportRecord], group_by: str | None) -> str:
    """``group_by``, or the default: subject when any record knows one, else video."""
    check_group_by(group_by)
    if group_by is not None:
        return group_by
    return "subject" if any(r.subject is not None for r in records) else "video"


def _links(rec: ExportRecord, by: str | None) -> list[str]:
    """The metadata joins of one record: its video, and its ``by`` key."""
    links = []
    video = record_join_key(rec, "video")
    if video is not None:  # one clip, one split, whatever the --group-by
        links.append(f"video:{video}")
    if by is not None and by != "video":
        value = record_join_key(rec, by)
        if value is not None:
            links.append(f"{by}:{value}")
    return links


#: Two images whose 64-bit perceptual hashes differ in at most this many bits are near
#: copies and join one group (``curate check``'s default ``--hamming``).
NEAR_COPY_HAMMING = 4


@dataclass(frozen=True)
class NearCopies:
    """The near-copy pairs among records (index pairs), and how they were looked for."""

    pairs: list[tuple[int, int]]
    hamming: int | None  # None: not looked for (imagehash is not installed)

    def info(self, records: Sequence[ExportRecord]) -> dict[str, Any]:
        """The manifest's ``groups.near_copies``: the rule, and the pairs of different files."""
        shown = [
            [records[a].image.as_posix(), records[b].image.as_posix()] for a, b in self.pairs[:5]
        ]
        return {
            "method": "phash" if self.hamming is not None else "none (imagehash not installed)",
            "hamming": self.hamming,
            "pairs": len(self.pairs),
            "examples": shown,
        }


def find_near_copies(
    records: Sequence[ExportRecord], hamming: int | None = NEAR_COPY_HAMMING
) -> NearCopies:
    """Pairs of records whose images are near copies of different bytes: a resized, re-saved
    or re-encoded copy (``curation.near_copies``: the rule ``curate check`` applies; two
    frames of different videos only when the videos are copies). Without imagehash (the
    ``fiftyone`` extra) none are looked for, and ``hamming`` is None."""
    import importlib.util

    from curation.near_copies import image_hash, near_copy_pairs

    if hamming is None or importlib.util.find_spec("imagehash") is None:
        return NearCopies([], None)
    images = sorted({r.image for r in records})
    hashed = {p: image_hash(p) for p in images}
    with_hash = [(i, h) for i, r in enumerate(records) if (h := hashed[r.image]) is not None]
    index = [i for i, _ in with_hash]
    found = near_copy_pairs(
        [h for _, h in with_hash],
        [record_join_key(records[i], "video") for i in index],
        [records[i].time for i in index],
        hamming,
    )
    cache: dict[Path, str] = {}
    pairs = [
        (index[a], index[b])
        for a, b in found
        if content_key(records[index[a]].image, cache)
        != content_key(records[index[b]].image, cache)
    ]
    return NearCopies(sorted(pairs), hamming)


def group_keys(
    records: Sequence[ExportRecord],
    group_by: str | None = None,
    near: NearCopies | None = None,
) -> list[str]:
    """One key per record: records that share content, a near copy (``near``, found here
    when not given), a curator group, a video or the ``group_by`` key (see ``GROUP_BY``)
    share a key.

    A group's key is the smallest of its members' own keys (their curator
    group, else their content hash), so a split is the same whatever order
    the joins were found in. ``group_by=None`` joins no metadata but the video.
    """
    cache: dict[Path, str] = {}
    parent = list(range(len(records)))
    near = near if near is not None else find_near_copies(records)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    own: list[str] = []
    for i, rec in enumerate(records):
        content = content_key(rec.image, cache)
        own.append(rec.group or content)
        for link in (
            f"content:{content}",
            f"group:{rec.group}" if rec.group else "",
            *_links(rec, group_by),
        ):
            if not link:
                continue
            j = first.setdefault(link, i)
            if j != i:
                parent[find(i)] = find(j)
    for a, b in near.pairs:
        parent[find(a)] = find(b)
    name: dict[int, str] = {}
    for i in range(len(records)):
        root = find(i)
        name[root] = min(name.get(root, own[i]), own[i])
    return [name[find(i)] for i in range(len(records))]


def split_records(
    records: Sequence[ExportRecord],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    group_by: str | None = None,
) -> dict[str, list[ExportRecord]]:
    """Split so that no image content, curator group, video or ``group_by`` group is in two
    splits.

    Each split keeps the records' input order; the same records and seed give
    the same split.

    Raises:
        UsageError: fractions below 0 or not adding up to 1; an unknown ``group_by``.
    """
    return split_by_groups(records, fractions, seed, group_by).splits


@dataclass
class GroupedSplit:
    """The splits, and how they were grouped (the manifest's ``groups``)."""

    splits: dict[str, list[ExportRecord]]
    info: dict[str, Any] = field(default_factory=dict)


def split_by_groups(
    records: Sequence[ExportRecord],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    group_by: str | None = None,
    split_file: str | Path | None = None,
) -> GroupedSplit:
    """Split by groups (see the module): dealt by ``fractions``, or as ``split_file`` says.

    ``group_by`` None is the default: subject when any record knows one, else
    video. The returned ``info`` names the grouping, how many records fell back
    to their video (no ``group_by`` value) or to content alone (no video either),
    and the groups per split.

    Raises:
        UsageError: bad fractions, an unknown ``group_by``, a split file missing or malformed.
        DataError: a record's group the split file does not list, or copies the file puts
            in two splits.
    """
    from curation.answers import yes_no

    by = resolve_group_by(records, group_by)
    _check(fractions)
    near = find_near_copies(records)
    keys = group_keys(records, by, near)
    values = [group_value(r, by) for r in records]
    videos = [group_value(r, "video") for r in records]
    answers = [yes_no(r.answers) for r in records]
    if split_file is not None:
        where = _assign_from_file(records, keys, values, videos, by, Path(split_file))
    else:
        where = assign_splits(keys, fractions, random.Random(seed), answers)
    splits = {s: [r for r, w in zip(records, where, strict=True) if w == s] for s in SPLITS}
    groups = {s: len({k for k, w in zip(keys, where, strict=True) if w == s}) for s in SPLITS}
    named = {
        s: len({v for v, w in zip(values, where, strict=True) if w == s and v is not None})
        for s in SPLITS
    }
    known = group_by is not None or any(v is not None for v in videos)
    info: dict[str, Any] = {
        # "content": the default, and no record knows a subject or video (photos)
        "group_by": by if known else "content",
        "chosen": "--group-by" if group_by is not None else "default",
        "split_file": Path(split_file).name if split_file is not None else None,
        "fallback_to_video": sum(
            v is None and vid is not None for v, vid in zip(values, videos, strict=True)
        )
        if by != "video"
        else 0,
        "content_only": sum(
            v is None and vid is None for v, vid in zip(values, videos, strict=True)
        ),
        "groups_per_split": groups,  # split groups (joined by content, copies, video, key)
        "keys_per_split": named,  # distinct --group-by values (subjects, videos, ...)
    }
    per_split: dict[str, dict[str, int]] = {
        s: dict(sorted(Counter(a for a, w in zip(answers, where, strict=True) if w == s).items()))
        for s in SPLITS
    }
    info["answers_per_split"] = per_split
    info["near_copies"] = near.info(records)
    info["warnings"] = one_answer_warnings(per_split, info["group_by"], split_file is not None)
    if near.hamming is None and records:
        info["warnings"].append(
            "imagehash is not installed, so near copies (a resized, re-saved or re-encoded "
            "image) were not looked for: only files with the same bytes were kept in one "
            "split. Fix: pip install 'falldown-curate[fiftyone]'."
        )
    return GroupedSplit(splits, info)


def one_answer_warnings(
    per_split: dict[str, dict[str, int]], by: str, from_file: bool = False
) -> list[str]:
    """A warning for each split that holds records of only one of "yes" and "no" while the
    data has both: its recall or false-alarm rate cannot be measured, and balancing empties
    it."""
    every = {a for counts in per_split.values() for a, n in counts.items() if n}
    if not {"yes", "no"} <= every:
        return []
    if from_file:
        fix = "Fix: move groups between the splits of the --split-file"
    else:
        fix = (
            "the groups did not allow both there. Fix: raise that split's share, or "
            + finer_key_hint(by)
        )
    found = []
    for split, counts in per_split.items():
        sides = [a for a in ("yes", "no") if counts.get(a)]
        if len(sides) == 1:
            other = "no" if sides[0] == "yes" else "yes"
            measure = "false-alarm rate" if other == "no" else "recall"
            found.append(
                f"the {split} split holds {counts[sides[0]]} {sides[0]!r} record(s) and no "
                f"{other!r}: its {measure} cannot be measured, and balancing would empty it; "
                f"{fix}."
            )
    return found


def finer_key_hint(by: str | None) -> str:
    """What to do about too few groups by ``by``: a finer ``--group-by`` where one exists
    (video is the finest: frames of one clip always share a split)."""
    if by in ("subject", "camera", "dataset"):
        return "--group-by video (a finer key)"
    if by == "video":
        return "export more videos (video is the finest key: a clip is never split)"
    return "export more images"


_SPLIT_FILE_FIX = (
    'Fix: a JSON file {"train": [...], "val": [...], "test": [...]} of group keys, or a CSV '
    "file with the header split,group and one row per group (keys as --group-by reads them: "
    'a subject as "dataset/subject", e.g. "le2i/3"; a video as its path)'
)


def load_split_file(path: str | Path) -> dict[str, str]:
    """Group key -> split, from a JSON ``{split: [keys]}`` or a CSV ``split,group`` file.

    Raises:
        UsageError: the file is missing, unreadable, malformed, names a split other than
            train/val/test, or lists one key under two splits (each problem names the file,
            the key or row, and the fix).
    """
    from curation._io import not_a_file, path_kind

    path = Path(path)
    kind = path_kind(path, "--split-file")
    if kind != "file":
        raise UsageError(f"--split-file {path} {not_a_file(kind)}. {_SPLIT_FILE_FIX}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"--split-file {path}: not readable UTF-8 text ({exc}). {_SPLIT_FILE_FIX}"
        ) from None
    is_json = path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "["))
    pairs = _json_pairs(path, text) if is_json else _csv_pairs(path, text)
    where: dict[str, str] = {}
    first_at: dict[str, str] = {}
    for split, key, at in pairs:
        if split not in SPLITS:
            raise UsageError(
                f"--split-file {path} {at}: split {split!r} is not train, val or test. "
                f"{_SPLIT_FILE_FIX}"
            )
        if not key:
            raise UsageError(f"--split-file {path} {at}: the group key is empty. {_SPLIT_FILE_FIX}")
        if where.setdefault(key, split) != split:
            raise UsageError(
                f"--split-file {path}: group {key!r} is listed under both {where[key]!r} and "
                f"{split!r}; a group in two splits is the leak the file should prevent. Fix: "
                "keep it under one split."
            )
        if key in first_at:
            raise UsageError(
                f"--split-file {path}: group {key!r} is listed twice under {split!r} "
                f"({first_at[key]} and {at}); a key listed twice is usually a typo for "
                "another group. Fix: list each group once."
            )
        first_at[key] = at
    if not where:
        raise UsageError(f"--split-file {path} lists no groups. {_SPLIT_FILE_FIX}")
    return where


def _json_pairs(path: Path, text: str) -> list[tuple[str, str, str]]:
    twice: list[str] = []

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # json keeps the last of two equal keys: a second "train" would drop the first's groups
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                twice.append(k)
            seen.add(k)
        return dict(pairs)

    try:
        data = json.loads(text, object_pairs_hook=unique)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(f"--split-file {path}: invalid JSON ({exc}). {_SPLIT_FILE_FIX}") from None
    if twice:
        raise UsageError(
            f"--split-file {path}: the key {twice[0]!r} appears twice; JSON keeps only the last "
            "one, so the groups listed under the first would be lost. Fix: one key per split, "
            "its groups in one list."
        )
    if not isinstance(data, dict):
        raise UsageError(f"--split-file {path}: not a JSON object. {_SPLIT_FILE_FIX}")
    pairs = []
    for split, keys in data.items():
        if not isinstance(keys, list) or not all(
            isinstance(k, str | int) and not isinstance(k, bool) for k in keys
        ):
            raise UsageError(
                f"--split-file {path} key {split!r}: give a list of group keys (strings or "
                f"whole numbers). {_SPLIT_FILE_FIX}"
            )
        pairs += [
            (str(split), str(k).strip(), f"key {split!r} item #{n}") for n, k in enumerate(keys)
        ]
    return pairs


def _csv_pairs(path: Path, text: str) -> list[tuple[str, str, str]]:
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise UsageError(
            f"--split-file {path}: not a CSV file ({exc}). {_SPLIT_FILE_FIX}"
        ) from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows or [c.strip().lower() for c in rows[0][:1]] != ["split"] or len(rows[0]) != 2:
        raise UsageError(
            f"--split-file {path}: the first line must be the header split,group "
            f"(got {','.join(rows[0]) if rows else 'an empty file'!r}). {_SPLIT_FILE_FIX}"
        )
    pairs = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise UsageError(
                f"--split-file {path} row {n}: {len(row)} columns, expected 2 (split,group). "
                f"{_SPLIT_FILE_FIX}"
            )
        pairs.append((row[0].strip(), row[1].strip(), f"row {n}"))
    return pairs


def _assign_from_file(
    records: Sequence[ExportRecord],
    keys: Sequence[str],
    values: Sequence[str | None],
    videos: Sequence[str | None],
    by: str,
    path: Path,
) -> list[str]:
    """Each record's split as the file lists its group (its ``by`` value, else its video).

    Raises:
        DataError: records whose group the file does not list, a subject (or other ``by``
            key) and one of its videos listed under different splits, or a split group
            (copies, a video, a ``by`` key) whose members the file puts in two splits.
    """
    listed = load_split_file(path)
    where: list[str] = []
    unlisted: Counter[str] = Counter()
    contradictions: Counter[tuple[str, str]] = Counter()
    for value, video in zip(values, videos, strict=True):
        found = [(k, listed[k]) for k in dict.fromkeys((value, video)) if k and k in listed]
        if len(found) == 2 and found[0][1] != found[1][1]:
            contradictions[(found[0][0], found[1][0])] += 1
        if not found:
            unlisted[value or video or "(no subject, video, camera or dataset)"] += 1
        where.append(found[0][1] if found else "")
    if contradictions:
        (key, video), n = sorted(contradictions.items())[0]
        raise DataError(
            f"--split-file {path} contradicts itself: it lists {by} {key!r} under "
            f"{listed[key]!r} and that {by}'s video {video!r} under {listed[video]!r} ({n} "
            f"record(s); {len(contradictions)} such pair(s)). Fix: list the {by} or its "
            "videos, not both, or put them under one split."
        )
    if unlisted:
        shown = ", ".join(f"{k!r} ({n} records)" for k, n in sorted(unlisted.items())[:5])
        more = f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else ""
        known = {k for k in (*values, *videos) if k is not None}
        unused = [k for k in listed if k not in known]
        if unused:  # a key written another way ("3" for "le2i/3") is the usual cause
            more += (
                f"; the file's key(s) {', '.join(repr(k) for k in unused[:5])}"
                f"{' and more' if len(unused) > 5 else ''} match no record"
            )
        raise DataError(
            f"--split-file {path} does not list the {by if by == 'video' else by + ' (or video)'} of "
            f"{sum(unlisted.values())} record(s): {shown}{more}. Fix: add each to the file "
            "under train, val or test (or tag those samples exclude); keys are written as "
            f'--group-by {by} reads them (a subject as "dataset/subject").'
        )
    members: dict[str, set[str]] = defaultdict(set)
    for key, split in zip(keys, where, strict=True):
        members[key].add(split)
    torn = [k for k, s in members.items() if len(s) > 1]
    if torn:
        idx = [i for i, k in enumerate(keys) if k == torn[0]]
        raise DataError(
            f"--split-file {path} puts one split group in {len(members[torn[0]])} splits "
            f"({', '.join(sorted(members[torn[0]]))}; {len(torn)} such group(s)): "
            f"{_why_joined(records, idx, where, values, videos, by, listed)}."
        )
    return where


def _why_joined(
    records: Sequence[ExportRecord],
    idx: Sequence[int],
    where: Sequence[str],
    values: Sequence[str | None],
    videos: Sequence[str | None],
    by: str,
    listed: dict[str, str],
) -> str:
    """What ties the records ``idx`` of one torn split group together, and the fix."""
    for name, keys in ((by, values), ("video", videos)):
        splits: dict[str, set[str]] = defaultdict(set)
        for i in idx:
            if (k := keys[i]) is not None:
                splits[k].add(where[i])
        key = next((k for k, s in sorted(splits.items()) if len(s) > 1), None)
        if key is None:
            continue
        text = f"the records of {name} {key!r} are listed under {', '.join(sorted(splits[key]))}"
        by_video = [i for i in idx if keys[i] == key and videos[i] in listed]
        if name != "video" and by_video:
            shown = sorted({f"{videos[i]!r} ({where[i]})" for i in by_video})[:3]
            return (
                f"{text}, through its videos {', '.join(shown)}: the file lists videos, and "
                f"--group-by {by} keeps a {by} in one split. Fix: --group-by video, which "
                f"reads the file as given, or list each {by} under one split"
            )
        return f"{text}. Fix: list each {name} under one split"
    example = records[idx[0]]
    return (
        "its records are copies or near-copies (the same image content, perceptual hashes "
        f"within {NEAR_COPY_HAMMING} bits, or one curator copy group from curate check), e.g. {example.image} (record {example.original_id or '-'}). "
        "Fix: list those groups under one split, or tag the copies exclude in review"
    )


def assign_folds(keys: Sequence[Hashable], k: int, seed: int = 0) -> list[int]:
    """The fold (0 to k-1) of each item for k-fold cross-validation; equal keys share a fold.

    The dealing rule of ``assign_splits`` with k equal shares: distinct keys
    are sorted, shuffled with ``seed`` and dealt, each to the fold furthest
    below its share. Give it ``group_keys(records)`` so copies and curator
    groups never straddle folds.

    Raises:
        UsageError: ``k`` below 2.
    """
    if k < 2:
        raise UsageError(f"--folds must be at least 2, got {k}. Fix: --folds 3")
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        members[key].append(i)
    order = sorted(members, key=str)
    random.Random(seed).shuffle(order)
    taken = [0] * k
    out = [0] * len(keys)
    for key in order:
        fold = min(range(k), key=lambda f: taken[f])
        taken[fold] += len(members[key])
        for i in members[key]:
            out[i] = fold
    return out
