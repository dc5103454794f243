"""`curate check`: duplicates, near-duplicates, corrupt/tiny images, conflicts, leaks, balance.

Results are written back into the FiftyOne dataset as tags (``dup:exact``,
``dup:near``, ``corrupt``, ``tiny``, ``conflict``, ``leak``) and fields
(``dup_group``, ``near_dup_group``) so the App can filter them.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation._io import atomic_write_json
from curation.answers import normalize_answer, yes_no
from curation.curator._fo import CHECK_TAGS, load_dataset
from curation.errors import UsageError
from curation.images import check_images
from curation.schemas.questions import same_question_key


@dataclass
class CheckReport:
    dataset: str
    samples: int
    counts: dict[str, int]
    balance: dict[str, dict[str, int]]  # source -> answer -> count
    groups: dict[str, list[list[str]]] = field(default_factory=dict)  # check -> groups of ids
    flagged: dict[str, list[str]] = field(default_factory=dict)  # tag -> sample ids
    brain_exact_duplicates: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def write_json(self, path: str | Path) -> None:
        """Write the report; refuse a folder or any existing file that is not a check report."""
        target = Path(path)
        check_report_path(target)
        atomic_write_json(target.resolve(), self.to_dict())


_REPORT_KEYS = {"dataset", "samples", "counts", "balance"}


def check_report_path(path: Path) -> None:
    fix = "Fix: --json a new file such as check-report.json"
    from curation._io import path_kind

    real = path.resolve()  # through symlinks and "..": the file that would be replaced
    kind = path_kind(real, "--json")
    if kind == "dir":
        raise UsageError(f"--json {path} is a folder; the report is one JSON file. {fix}")
    for parent in real.parents:
        parent_kind = path_kind(parent, "--json")
        if parent_kind == "file":
            raise UsageError(f"--json {path}: {parent} is a file, not a folder. {fix}")
        if parent_kind == "dir":
            break
    if kind == "file":
        try:
            old = json.loads(real.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            old = None
        if not (isinstance(old, dict) and set(old) >= _REPORT_KEYS):
            raise UsageError(
                f"--json {path} exists and is not a curate check report; refusing to "
                f"overwrite it. {fix}"
            )


def hamming_pairs(hashes: list[int], threshold: int) -> list[tuple[int, int]]:
    """Index pairs whose 64-bit hashes differ in at most ``threshold`` bits (numpy, chunked)."""
    import numpy as np

    if len(hashes) < 2:
        return []
    h = np.array(hashes, dtype=np.uint64)
    pairs: list[tuple[int, int]] = []
    m1, m2, m4 = (
        np.uint64(0x5555555555555555),
        np.uint64(0x3333333333333333),
        np.uint64(0x0F0F0F0F0F0F0F0F),
    )
    h01 = np.uint64(0x0101010101010101)
    for start in range(0, len(h), 256):
        x = h[start : start + 256, None] ^ h[None, :]
        x = x - ((x >> np.uint64(1)) & m1)
        x = (x & m2) + ((x >> np.uint64(2)) & m2)
        x = (x + (x >> np.uint64(4))) & m4
        bits = (x * h01) >> np.uint64(56)
        rows, cols = np.nonzero(bits <= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            if start + r < c:
                pairs.append((start + r, c))
    return pairs


def _groups(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[find(a)] = find(b)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        members[find(i)].append(i)
    return [g for g in members.values() if len(g) > 1]


def _label(answers: list[str]) -> str:
    """What an answer says, for comparing two labels of one image and question."""
    verdict = yes_no(answers)
    if verdict != "other":
        return verdict
    return "other:" + "|".join(sorted({normalize_answer(a) for a in answers}))


def run_checks(name: str, hamming: int = 4, use_brain: bool = True) -> CheckReport:
    """Run every check on dataset ``name``; tag the samples; return the summary."""
    ds = load_dataset(name)
    ids, paths, shas, phashes, answers, questions, splits, sources = ds.values(
        ["id", "filepath", "sha256", "phash", "answers", "question", "split", "source"]
    )
    n = len(ids)
    tags: dict[str, set[int]] = {t: set() for t in CHECK_TAGS}
    groups: dict[str, list[list[str]]] = {}

    # exact duplicates: the same bytes under different file paths (several questions about
    # one file are normal VQA, not duplicates)
    by_sha: dict[str, list[int]] = defaultdict(list)
    for i, sha in enumerate(shas):
        by_sha[sha].append(i)
    exact = [g for g in by_sha.values() if len({paths[i] for i in g}) > 1]
    for g in exact:
        tags["dup:exact"].update(g)
    groups["dup:exact"] = [[ids[i] for i in g] for g in exact]

    # near duplicates: perceptual hashes within `hamming` bits, different bytes
    pairs = hamming_pairs([int(p, 16) for p in phashes], hamming)
    near_groups = _groups(n, [(a, b) for a, b in pairs if shas[a] != shas[b]])
    for g in near_groups:
        tags["dup:near"].update(g)
    groups["dup:near"] = [[ids[i] for i in g] for g in near_groups]

    # corrupt or tiny files (may have changed since ingest)
    issues = check_images([Path(p) for p in paths])
    for i, p in enumerate(paths):
        issue = issues[Path(p)]
        if issue is not None:
            tags["tiny" if issue.code == "image_tiny" else "corrupt"].add(i)

    # the same image (bytes) and question with different answers
    by_pair: dict[tuple[str, str], list[int]] = defaultdict(list)
    # (paraphrases of the task question count as one question; "Yes." is "yes")
    for i, (sha, q) in enumerate(zip(shas, questions, strict=True)):
        if answers[i]:  # an unlabelled (unsure) sample conflicts with nothing
            by_pair[(sha, same_question_key(q or ""))].append(i)
    conflicts = [g for g in by_pair.values() if len({_label(answers[i]) for i in g}) > 1]
    for g in conflicts:
        tags["conflict"].update(g)
    groups["conflict"] = [[ids[i] for i in g] for g in conflicts]

    # leakage: an image and its copies or near-copies in more than one split
    same_bytes = [g for g in by_sha.values() if len(g) > 1]
    linked = _groups(n, [*pairs, *((g[0], j) for g in same_bytes for j in g[1:])])
    leaks = [g for g in linked if len({splits[i] for i in g if splits[i]}) > 1]
    for g in leaks:
        tags["leak"].update(g)
    groups["leak"] = [[ids[i] for i in g] for g in leaks]

    balance: dict[str, Counter[str]] = defaultdict(Counter)
    for src, ans in zip(sources, answers, strict=True):
        balance[src][yes_no(ans) if ans else "(unlabelled)"] += 1

    brain = None
    if use_brain:
        brain = _brain_exact_duplicates(ds)

    _write_tags(ds, ids, tags, exact, near_groups)
    return CheckReport(
        dataset=name,
        samples=n,
        counts={t: len(v) for t, v in tags.items()},
        balance={s: dict(sorted(c.items())) for s, c in sorted(balance.items())},
        groups=groups,
        flagged={t: sorted(ids[i] for i in v) for t, v in tags.items()},
        brain_exact_duplicates=brain,
    )


def _brain_exact_duplicates(ds: Any) -> int | None:
    """FiftyOne Brain's exact-duplicate finder (it runs offline); None if unavailable."""
    try:
        import fiftyone.brain as fob
    except ImportError:
        return None
    found = fob.compute_exact_duplicates(ds, progress=False)
    return sum(len(v) for v in found.values())


def _write_tags(
    ds: Any,
    ids: list[str],
    tags: dict[str, set[int]],
    exact: list[list[int]],
    near: list[list[int]],
) -> None:
    ds.untag_samples(list(CHECK_TAGS))
    for tag, members in tags.items():
        if members:
            ds.select([ids[i] for i in members]).tag_samples(tag)
    group_of: dict[str, int | None] = dict.fromkeys(ids)
    near_of: dict[str, int | None] = dict.fromkeys(ids)
    for k, g in enumerate(exact):
        for i in g:
            group_of[ids[i]] = k
    for k, g in enumerate(near):
        for i in g:
            near_of[ids[i]] = k
    import fiftyone as fo

    schema = ds.get_field_schema()
    for name in ("dup_group", "near_dup_group"):
        if name not in schema:  # FiftyOne cannot infer a type from all-None values
            ds.add_sample_field(name, fo.IntField)
    ds.set_values("dup_group", group_of, key_field="id")
    ds.set_values("near_dup_group", near_of, key_field="id")
