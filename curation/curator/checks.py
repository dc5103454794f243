"""`curate check`: duplicates, near-duplicates, corrupt/tiny images, conflicts, leaks, balance.

Results are written back into the FiftyOne dataset as tags (``dup:exact``,
``dup:near``, ``corrupt``, ``tiny``, ``conflict``, ``leak``, ``leak:group``)
and fields (``dup_group``, ``near_dup_group``) so the App can filter them.
Frames cut from videos are also checked per group: a subject or video whose
samples carry different ``split`` values is a leak, and the report gives each
split's yes/no balance and ``negative_kind`` counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from curation._io import atomic_write_json
from curation.answers import normalize_answer, yes_no
from curation.curator._fo import load_dataset
from curation.images import check_images
from curation.near_copies import near_copy_pairs
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
    # by -> [{"group": key, "splits": {split: samples}}]: a subject or video in two splits
    group_leaks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    split_balance: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> answer -> n
    negative_kinds: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> kind -> n

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def write_json(self, path: str | Path) -> None:
        """Write the report; refuse a folder or any existing file that is not a check report."""
        target = Path(path)
        check_report_path(target)
        atomic_write_json(target.resolve(), self.to_dict())


_REPORT_KEYS = {"dataset", "samples", "counts", "balance"}


def check_report_path(path: Path) -> None:
    from curation._io import check_report_path as guard

    # through symlinks and "..": the file that would be replaced
    guard(path.resolve(), "check", _REPORT_KEYS, "Fix: --json a new file such as check-report.json")


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


#: Written to the dataset's info beside ``near_dup_group``: its groups join frames of two
#: videos only when the videos are copies (older checks joined any two frames).
NEAR_DUP_RULE = "video-copies"


def _label(answers: list[str]) -> str:
    """What an answer says, for comparing two labels of one image and question."""
    verdict = yes_no(answers)
    if verdict != "other":
        return verdict
    return "other:" + "|".join(sorted({normalize_answer(a) for a in answers}))


@dataclass
class Columns:
    """What every check reads, fetched from the dataset once (index i = one sample)."""

    ids: list[str]
    paths: list[str]
    shas: list[str]
    phashes: list[str]
    answers: list[list[str] | None]
    questions: list[str]
    splits: list[str | None]
    sources: list[str]
    hamming: int = 4
    # frame fields (curation.class_map.FRAME_FIELDS) the dataset has, one value per sample
    meta: dict[str, list[Any]] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """Share work between checks (several read the same hash groups)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def by_sha(self) -> dict[str, list[int]]:
        def compute() -> dict[str, list[int]]:
            groups: dict[str, list[int]] = defaultdict(list)
            for i, sha in enumerate(self.shas):
                groups[sha].append(i)
            return groups

        return self.cached("by_sha", compute)

    def near_pairs(self) -> list[tuple[int, int]]:
        """Near copies: phashes within ``hamming`` bits; two frames of different videos only
        when their videos are copies of each other (``video_copies``)."""

        def compute() -> list[tuple[int, int]]:
            hashes = [int(p, 16) for p in self.phashes]
            return near_copy_pairs(hashes, self.videos(), self.meta.get("time"), self.hamming)

        return self.cached("near_pairs", compute)

    def videos(self) -> list[str | None]:
        """Each sample's video as the splitter joins it (``curation.split.join_key``)."""
        from curation.split import join_key

        values = self.meta.get("video") or [None] * len(self)
        datasets = self.meta.get("source_dataset") or [None] * len(self)
        return [join_key("video", v, d) for v, d in zip(values, datasets, strict=True)]

    def image_issues(self) -> dict[Path, Any]:
        return self.cached("images", lambda: check_images([Path(p) for p in self.paths]))


class Check:
    """One check: a tag, what it means, and the groups of samples it flags.

    Subclass, set ``tag`` and ``description``, implement ``find`` and decorate
    with ``@register``: the tag is written to the dataset, counted in the
    report and shown in the review App's ``flagged`` view.
    """

    tag: ClassVar[str]
    description: ClassVar[str]

    def find(self, cols: Columns) -> list[list[int]]:
        """Groups of sample indices (a group of one is a single flagged sample)."""
        raise NotImplementedError


CHECKS: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    CHECKS[cls.tag] = cls
    return cls


def check_tags() -> tuple[str, ...]:
    """Every tag the checks write (and clear before each run)."""
    return tuple(CHECKS)


@register
class ExactDuplicates(Check):
    tag = "dup:exact"
    description = "the same bytes under different file paths"

    def find(self, cols: Columns) -> list[list[int]]:
        # several questions about one file are normal VQA, not duplicates
        return [g for g in cols.by_sha().values() if len({cols.paths[i] for i in g}) > 1]


@register
class NearDuplicates(Check):
    tag = "dup:near"
    description = "perceptual hashes within --hamming bits, different bytes"

    def find(self, cols: Columns) -> list[list[int]]:
        pairs = [(a, b) for a, b in cols.near_pairs() if cols.shas[a] != cols.shas[b]]
        return _groups(len(cols), pairs)


@register
class Corrupt(Check):
    tag = "corrupt"
    description = "the file no longer decodes (it may have changed since ingest)"

    def find(self, cols: Columns) -> list[list[int]]:
        return _with_image_issue(cols, tiny=False)


@register
class Tiny(Check):
    tag = "tiny"
    description = "smaller than 32 px on a side"

    def find(self, cols: Columns) -> list[list[int]]:
        return _with_image_issue(cols, tiny=True)


def _with_image_issue(cols: Columns, tiny: bool) -> list[list[int]]:
    """Samples whose image check failed: only "tiny" ones, or every other problem."""
    issues = cols.image_issues()
    found = []
    for i, p in enumerate(cols.paths):
        issue = issues[Path(p)]
        if issue is not None and (issue.code == "image_tiny") == tiny:
            found.append([i])
    return found


@register
class Conflicts(Check):
    tag = "conflict"
    description = "the same image (bytes) and question with different answers"

    def find(self, cols: Columns) -> list[list[int]]:
        # (sha, question) -> {sample: its label}
        by_pair: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
        rows = zip(cols.shas, cols.questions, cols.answers, strict=True)
        for i, (sha, q, answers) in enumerate(rows):
            # paraphrases of the task question count as one question; "Yes." is "yes"
            if answers:  # an unlabelled (unsure) sample conflicts with nothing
                by_pair[(sha, same_question_key(q or ""))][i] = _label(answers)
        return [list(g) for g in by_pair.values() if len(set(g.values())) > 1]


@register
class Leaks(Check):
    tag = "leak"
    description = "an image and its copies or near-copies in more than one split"

    def find(self, cols: Columns) -> list[list[int]]:
        same_bytes = [g for g in cols.by_sha().values() if len(g) > 1]
        links = [*cols.near_pairs(), *((g[0], j) for g in same_bytes for j in g[1:])]
        linked = _groups(len(cols), links)
        return [g for g in linked if len({cols.splits[i] for i in g if cols.splits[i]}) > 1]


#: What the group leak check groups by (``curation.split.GROUP_BY`` names).
LEAK_GROUPS = ("subject", "video")


def group_members(cols: Columns, by: str) -> dict[str, list[int]]:
    """Sample indices per ``by`` key, keyed as the splitter joins them
    (``curation.split.join_key``: subject and video qualified by source dataset)."""
    from curation.split import join_key

    values = cols.meta.get(by)
    if values is None:
        return {}
    datasets = cols.meta.get("source_dataset") or [None] * len(cols)
    members: dict[str, list[int]] = defaultdict(list)
    for i, (v, ds) in enumerate(zip(values, datasets, strict=True)):
        key = join_key(by, v, ds)
        if key is not None:
            members[key].append(i)
    return members


def group_leaks(cols: Columns) -> dict[str, list[dict[str, Any]]]:
    """Subjects and videos whose samples carry more than one ``split`` value."""
    out: dict[str, list[dict[str, Any]]] = {}
    for by in LEAK_GROUPS:
        found = []
        for key, idx in sorted(group_members(cols, by).items()):
            splits = Counter(cols.splits[i] for i in idx if cols.splits[i])
            if len(splits) > 1:
                found.append({"group": key, "splits": dict(sorted(splits.items()))})
        if by in cols.meta:
            out[by] = found
    return out


@register
class GroupLeaks(Check):
    tag = "leak:group"
    description = "a subject or video with samples in more than one split"

    def find(self, cols: Columns) -> list[list[int]]:
        found = []
        for by in LEAK_GROUPS:
            for idx in group_members(cols, by).values():
                if len({cols.splits[i] for i in idx if cols.splits[i]}) > 1:
                    found.append(idx)
        return found


def run_checks(name: str, hamming: int = 4, use_brain: bool = True) -> CheckReport:
    """Run every registered check on dataset ``name``; tag the samples; return the summary."""
    from curation.class_map import FRAME_FIELDS

    ds = load_dataset(name)
    fields = ["id", "filepath", "sha256", "phash", "answers", "question", "split", "source"]
    schema = ds.get_field_schema()
    wanted = ("subject", "video", "time", "source_dataset", "negative_kind")
    frame = [f for f in wanted if f in FRAME_FIELDS and f in schema]
    ids, paths, shas, phashes, answers, questions, splits, sources, *frame_values = ds.values(
        fields + frame
    )
    cols = Columns(
        ids,
        paths,
        shas,
        phashes,
        answers,
        questions,
        splits,
        sources,
        hamming=hamming,
        meta=dict(zip(frame, frame_values, strict=True)),
    )
    found = {tag: check().find(cols) for tag, check in CHECKS.items()}
    tags = {tag: {i for g in groups for i in g} for tag, groups in found.items()}

    balance: dict[str, Counter[str]] = defaultdict(Counter)
    for src, ans in zip(cols.sources, cols.answers, strict=True):
        balance[src][yes_no(ans) if ans else "(unlabelled)"] += 1

    per_split: dict[str, Counter[str]] = defaultdict(Counter)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    negative_kinds = cols.meta.get("negative_kind") or [None] * len(cols)
    for split, ans, kind in zip(cols.splits, cols.answers, negative_kinds, strict=True):
        side = yes_no(ans) if ans else "(unlabelled)"
        per_split[split or "(none)"][side] += 1
        if side == "no":
            kinds[split or "(none)"][kind or "(none)"] += 1

    brain = _brain_exact_duplicates(ds) if use_brain else None
    _write_tags(ds, cols.ids, tags, found["dup:exact"], found["dup:near"])
    return CheckReport(
        dataset=name,
        samples=len(cols),
        counts={t: len(v) for t, v in tags.items()},
        balance={s: dict(sorted(c.items())) for s, c in sorted(balance.items())},
        groups={
            tag: [[cols.ids[i] for i in g] for g in groups]
            for tag, groups in found.items()
            if tag not in ("corrupt", "tiny")
        },
        flagged={t: sorted(cols.ids[i] for i in v) for t, v in tags.items()},
        brain_exact_duplicates=brain,
        group_leaks=group_leaks(cols),
        split_balance={s: dict(sorted(c.items())) for s, c in sorted(per_split.items())},
        negative_kinds={s: dict(sorted(c.items())) for s, c in sorted(kinds.items())},
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
    ds.untag_samples(list(check_tags()))
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
    ds.info["near_dup_rule"] = NEAR_DUP_RULE  # the export joins these groups across videos
    ds.save()
