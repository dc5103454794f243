"""The one splitter: records to train/val/test so that no image content sits in two splits.

``curate export`` and ``curate mix`` both split here. Records are joined into
one group when they show the same bytes (content hash, whatever the file is
called) or carry the same curator group (FiftyOne's copy and near-copy checks);
the joins are transitive, so a near copy of a copy lands beside both.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from curation._io import sha256_file
from curation.errors import UsageError

if TYPE_CHECKING:
    from curation.export import ExportRecord

SPLITS = ("train", "val", "test")


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
    keys: Sequence[Hashable], fractions: Sequence[float], rng: random.Random
) -> list[str]:
    """The split of each item; items with equal keys share one.

    Distinct keys are sorted, shuffled with ``rng`` and dealt, each to the
    split furthest below its target share of the items.
    """
    _check(fractions)
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        members[key].append(i)
    order = sorted(members, key=str)
    rng.shuffle(order)
    total = len(keys)
    taken = dict.fromkeys(SPLITS, 0)
    out = [""] * total
    for key in order:
        split = max(SPLITS, key=lambda s: fractions[SPLITS.index(s)] * total - taken[s])
        taken[split] += len(members[key])
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


def group_keys(records: Sequence[ExportRecord]) -> list[str]:
    """One key per record: records that share content or a curator group share a key.

    A group's key is the smallest of its members' own keys (their curator
    group, else their content hash), so a split is the same whatever order
    the joins were found in.
    """
    cache: dict[Path, str] = {}
    parent = list(range(len(records)))

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
        for link in (f"content:{content}", f"group:{rec.group}" if rec.group else ""):
            if not link:
                continue
            j = first.setdefault(link, i)
            if j != i:
                parent[find(i)] = find(j)
    name: dict[int, str] = {}
    for i in range(len(records)):
        root = find(i)
        name[root] = min(name.get(root, own[i]), own[i])
    return [name[find(i)] for i in range(len(records))]


def split_records(
    records: Sequence[ExportRecord],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, list[ExportRecord]]:
    """Split so that no image content and no curator group is in two splits.

    Each split keeps the records' input order; the same records and seed give
    the same split.

    Raises:
        UsageError: fractions below 0 or not adding up to 1.
    """
    _check(fractions)
    where = assign_splits(group_keys(records), fractions, random.Random(seed))
    return {s: [r for r, w in zip(records, where, strict=True) if w == s] for s in SPLITS}


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
