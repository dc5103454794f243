"""Property tests for the splitter and the mix's --max-records: any input, the same promises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.errors import UsageError
from curation.export import ExportRecord
from curation.mix import general_needed, plan_mix
from curation.sources import GeneralPool, PoolRow
from curation.split import split_records

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


@pytest.fixture(scope="module")
def contents(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Eight files of distinct content, and a copy of each under another name."""
    root = tmp_path_factory.mktemp("contents")
    files = []
    for i in range(8):
        (root / f"{i}.bin").write_bytes(bytes([i]) * 16)
        (root / f"copy-{i}.bin").write_bytes(bytes([i]) * 16)
        files += [root / f"{i}.bin", root / f"copy-{i}.bin"]
    return files


@SETTINGS
@given(
    picks=st.lists(
        st.tuples(st.integers(0, 15), st.sampled_from(["", "", "g1", "g2", "g3"])),
        min_size=1,
        max_size=40,
    ),
    fractions=st.sampled_from([(0.8, 0.1, 0.1), (0.5, 0.25, 0.25), (1.0, 0.0, 0.0)]),
    seed=st.integers(0, 3),
)
def test_no_content_and_no_group_in_two_splits(
    contents: list[Path], picks: list[tuple[int, str]], fractions: tuple, seed: int
) -> None:
    records = [
        ExportRecord(contents[i], f"q{n}", ("yes",), group=group)
        for n, (i, group) in enumerate(picks)
    ]
    splits = split_records(records, fractions, seed)
    assert sorted(r.question for s in splits.values() for r in s) == sorted(
        r.question for r in records
    )
    split_of_content: dict[bytes, set[str]] = {}
    split_of_group: dict[str, set[str]] = {}
    for name, chosen in splits.items():
        for r in chosen:
            split_of_content.setdefault(r.image.read_bytes(), set()).add(name)
            if r.group:
                split_of_group.setdefault(r.group, set()).add(name)
    assert all(len(s) == 1 for s in split_of_content.values())
    assert all(len(s) == 1 for s in split_of_group.values())
    assert split_records(records, fractions, seed) == splits  # same seed, same split


def _pool(n: int) -> GeneralPool:
    rows = [
        PoolRow(f"what {i}?", ("x",), f"/nowhere/general-{i}.jpg", str(i), "other", "test")
        for i in range(n)
    ]
    return GeneralPool("test", rows)


POOL = _pool(4000)


@SETTINGS
@given(
    n_yes=st.integers(1, 30),
    n_no=st.integers(1, 30),
    ratio=st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.9, 0.95]),
    yes_share=st.sampled_from([0.1, 0.25, 0.5, 0.6, 0.9]),
    max_records=st.integers(1, 120),
)
def test_max_records_is_held_or_refused_with_the_smallest_cap(
    n_yes: int, n_no: int, ratio: float, yes_share: float, max_records: int
) -> None:
    task = [
        ExportRecord(Path(f"/nowhere/task-{i}.png"), "falling?", ("yes" if i < n_yes else "no",))
        for i in range(n_yes + n_no)
    ]

    def plan(cap: int):  # noqa: ANN202
        return plan_mix(
            task,
            [POOL],
            ratio=ratio,
            yes_share=yes_share,
            fractions=(1.0, 0.0, 0.0),
            max_records=cap,
        )

    try:
        train = plan(max_records).splits["train"]
    except UsageError as exc:
        least = int(re.search(r"use --max-records (\d+) or more", str(exc)).group(1))  # type: ignore[union-attr]
        assert least > max_records
        plan(least)  # the cap it names works
        with pytest.raises(UsageError):
            plan(least - 1)  # and is the smallest
        return
    own = [r for r in train if r.part == "task"]
    yes = sum(r.answers == ("yes",) for r in own)
    assert len(train) <= max_records
    assert yes >= 1 and len(own) - yes >= 1
    assert len(train) - len(own) == general_needed(len(own), ratio)
