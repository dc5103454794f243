"""`curate mix`: fall (task) data balanced to a yes-share, mixed with general VQA.

Ten all-"yes" fall photos teach BLIP-2 to answer "yes" to everything. The
cure: balance the task data with negatives (by dropping from the larger side,
never by inventing labels) and mix in general VQA so the model keeps reading
the question. ``--vqav2-ratio R`` means: R of the final records of each split
come from general VQA and 1-R from the task data.
"""

from __future__ import annotations

import io
import math
import random
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation import defaults
from curation._io import check_export_out
from curation.answers import yes_no
from curation.distractors import (
    DEFAULT_DISTRACTOR_SHARE,
    DISTRACTOR_SOURCE,
    check_distractor_share,
    distractor_records,
    load_distractors,
)
from curation.errors import DataError, UsageError
from curation.export import (
    ExportOptions,
    ExportSummary,
    ModelPreset,
    check_export_options,
    write_export,
)
from curation.presets import get_preset
from curation.record_types import ExportRecord, GeneralPool, PoolRow
from curation.sources import GeneralSources
from curation.split import SPLITS, assign_splits, check_group_by, split_by_groups


@dataclass(frozen=True)
class MixShares:
    """How much of what a mix draws: each share and the cap, written and checked here only.

    ``ratio`` R: the share of each split's records drawn from general VQA (0 <= R < 1).
    ``yes_share``: "yes" among the task's yes/no records after balancing.
    ``max_records``: a cap on the train records. ``hard_negative_share`` S: at least S of
    each split's kept task "no" records are of a look-alike kind. ``distractor_share``:
    the train split's general records that ask a task image about an absent thing.
    """

    ratio: float
    yes_share: float = defaults.YES_SHARE
    max_records: int | None = None
    hard_negative_share: float = 0.0
    distractor_share: float = DEFAULT_DISTRACTOR_SHARE

    def check(self) -> None:
        """Raises: UsageError: a share or the cap out of range (named with its option)."""
        if not 0 <= self.ratio < 1:
            raise UsageError(f"--vqav2-ratio must be in [0, 1), got {self.ratio}")
        if not 0 < self.yes_share < 1:
            raise UsageError(f"--yes-share must be in (0, 1), got {self.yes_share}")
        if self.max_records is not None and self.max_records < 1:
            raise UsageError(f"--max-records must be positive, got {self.max_records}")
        if not 0 <= self.hard_negative_share <= 1:
            raise UsageError(
                f'--hard-negative-share must be between 0 and 1 (a share of the task\'s "no" '
                f"records), got {self.hard_negative_share:g}. Fix: e.g. --hard-negative-share 0.3"
            )
        check_distractor_share(self.distractor_share)


@dataclass
class MixPlan:
    """Which records go where, before any file is written."""

    splits: dict[str, list[ExportRecord]]
    dropped: dict[str, dict[str, int]]  # split -> {"yes": n, "no": n, "other": n} dropped
    ratio: float
    yes_share: float
    seed: int
    general_available: dict[str, int] = field(default_factory=dict)
    groups: dict[str, Any] = field(default_factory=dict)  # how the task records were grouped
    hard_negative_share: float = 0.0
    lookalike_kinds: tuple[str, ...] = ()
    distractor_share: float = 0.0
    distractor_questions: int = 0  # how many distinct questions they were drawn from

    def distractors(self, split: str) -> int:
        """Distractor records (task images asked about an absent thing, answer "no")."""
        return sum(r.source == DISTRACTOR_SOURCE for r in self.splits[split])

    def hard_negatives(self, split: str) -> dict[str, Any]:
        """The task's "no" records of ``split``: look-alike kinds, others, the share."""
        kinds = set(self.lookalike_kinds)
        no = [r for r in self.splits[split] if r.part == "task" and yes_no(r.answers) == "no"]
        hard = sum(r.negative_kind in kinds for r in no)
        return {
            "lookalike": hard,
            "other": len(no) - hard,
            "share": round(hard / len(no), 6) if no else None,
            "by_kind": dict(sorted(Counter(r.negative_kind or "(none)" for r in no).items())),
        }

    def composition(self) -> dict[str, dict[str, int]]:
        return {
            s: dict(sorted(Counter(f"{r.part}/{r.source}/{r.kind}" for r in recs).items()))
            for s, recs in self.splits.items()
        }

    def achieved(self, split: str = "train") -> dict[str, float]:
        recs = self.splits[split]
        task = [yes_no(r.answers) for r in recs if r.part == "task"]
        yes, yn = task.count("yes"), task.count("yes") + task.count("no")
        return {
            "general_share": (len(recs) - len(task)) / len(recs) if recs else 0.0,
            "yes_share": yes / yn if yn else 0.0,
        }


def yes_count(n: int, yes_share: float) -> int:
    """How many of ``n`` balanced yes/no records are "yes" (the one rounding rule)."""
    return round(n * yes_share)


def smallest_balanced(yes_share: float) -> int:
    """The fewest yes/no records that hold at least one "yes" and one "no" at ``yes_share``."""
    n = 2
    while not 1 <= yes_count(n, yes_share) <= n - 1:
        n += 1
    return n


def general_needed(task_records: int, ratio: float) -> int:
    """General records to put beside ``task_records`` task records at ``ratio``."""
    return round(task_records * ratio / (1 - ratio)) if ratio else 0


class HardNegativeShortfall(DataError):
    """Too few look-alike "no" records in a split for ``--hard-negative-share``."""


def balance(
    records: Sequence[ExportRecord],
    yes_share: float,
    rng: random.Random,
    cap: int | None = None,
    hard_share: float = 0.0,
    lookalike_kinds: Collection[str] = (),
) -> tuple[list[ExportRecord], dict[str, int]]:
    """Downsample the larger of yes/no so yes is ``yes_share`` of them; keep input order.

    Records whose answer is neither yes nor no are kept as they are. Where
    there was at least one "yes" and one "no", one of each stays. ``cap``
    bounds all the records kept: yes/no and the others shrink in proportion
    and the share holds. With ``hard_share`` S, at least S of the kept "no"
    records (rounded up) have a ``negative_kind`` in ``lookalike_kinds``.

    Raises:
        HardNegativeShortfall: fewer look-alike "no" records than S of the kept ones.
    """
    sides = [yes_no(r.answers) for r in records]
    yes = [i for i, side in enumerate(sides) if side == "yes"]
    no = [i for i, side in enumerate(sides) if side == "no"]
    other = [i for i, side in enumerate(sides) if side == "other"]
    n_yes, n_no = len(yes), len(no)
    if n_yes * (1 - yes_share) > n_no * yes_share:  # too many yes
        keep_yes, keep_no = round(n_no * yes_share / (1 - yes_share)), n_no
    else:
        keep_yes, keep_no = n_yes, round(n_yes * (1 - yes_share) / yes_share)
    if n_yes and n_no:
        # too few for the share (1 yes, 1 no at 0.1): keep one of each rather than teach
        # one answer; the manifest and the summary show the share reached
        keep_yes, keep_no = max(keep_yes, 1), max(keep_no, 1)
    keep_other = len(other)
    if cap is not None and keep_yes + keep_no + keep_other > cap:
        yn = keep_yes + keep_no
        floor = min(yn, smallest_balanced(yes_share)) if keep_yes and keep_no else min(yn, 1)
        yn_cap = max(floor, round(cap * yn / (yn + keep_other)))
        keep_other = max(0, min(keep_other, cap - yn_cap))
        yn_cap = min(yn, cap - keep_other)
        want_yes = yes_count(yn_cap, yes_share)
        if keep_yes and keep_no:
            want_yes = min(max(want_yes, 1), yn_cap - 1)
        keep_yes, keep_no = min(keep_yes, want_yes), min(keep_no, yn_cap - want_yes)
    if hard_share > 0:
        keep = set(rng.sample(yes, keep_yes)) | _hard_sample(
            records, no, keep_no, hard_share, lookalike_kinds, rng
        )
    else:  # the original draw: a mix without the option stays byte-identical
        keep = set(rng.sample(yes, keep_yes)) | set(rng.sample(no, keep_no))
    keep |= set(rng.sample(other, keep_other))
    kept = [r for i, r in enumerate(records) if i in keep]
    return kept, {"yes": n_yes - keep_yes, "no": n_no - keep_no, "other": len(other) - keep_other}


def _hard_sample(
    records: Sequence[ExportRecord],
    no: list[int],
    keep_no: int,
    hard_share: float,
    kinds: Collection[str],
    rng: random.Random,
) -> set[int]:
    """``keep_no`` of the "no" indices, at least ``hard_share`` of them look-alikes."""
    hard = [i for i in no if records[i].negative_kind in kinds]
    need = math.ceil(keep_no * hard_share - 1e-9)
    if need > len(hard):
        best = len(hard) / keep_no if keep_no else 0.0
        raise HardNegativeShortfall(
            f"--hard-negative-share {hard_share:g} needs {need} look-alike negatives of the "
            f'{keep_no} "no" records kept, but there are only {len(hard)} (kinds '
            f'{", ".join(sorted(kinds)) or "none"}; {len(no)} "no" records in all). Fix: '
            f"--hard-negative-share {math.floor(best * 100) / 100:g} or lower, or add look-alike "
            "negatives (lying down on purpose, sitting, kneeling, squatting)."
        )
    chosen = set(rng.sample(hard, need))
    rest = [i for i in no if i not in chosen]
    return chosen | set(rng.sample(rest, keep_no - need))


def _split_pool(
    rows: list[PoolRow], fractions: Sequence[float], seed: int
) -> dict[str, list[PoolRow]]:
    """Split general rows by image path (no image in two splits), deterministically.

    By path, not content: hashing a VQAv2-size image folder would read 13 GB.
    """
    where = assign_splits(
        [row.image for row in rows], fractions, random.Random(f"{seed}-general-split")
    )
    return {s: [row for row, w in zip(rows, where, strict=True) if w == s] for s in SPLITS}


def stratified_sample(rows: list[PoolRow], n: int, rng: random.Random) -> list[PoolRow]:
    """``n`` rows whose answer types keep the pool's proportions (largest remainder)."""
    if n > len(rows):
        raise ValueError("not enough rows")
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_type[row.answer_type].append(i)
    types = sorted(by_type)
    exact = {t: n * len(by_type[t]) / len(rows) for t in types}
    counts = {t: int(exact[t]) for t in types}
    for t in sorted(types, key=lambda t: (counts[t] - exact[t], t))[: n - sum(counts.values())]:
        counts[t] += 1
    chosen: list[int] = []
    for t in types:
        chosen.extend(rng.sample(by_type[t], counts[t]))
    return [rows[i] for i in sorted(chosen)]


def plan_mix(
    task: Sequence[ExportRecord],
    pools: Sequence[GeneralPool],
    *,
    ratio: float,
    yes_share: float = defaults.YES_SHARE,
    seed: int = 0,
    fractions: tuple[float, float, float] = defaults.FRACTIONS,
    max_records: int | None = None,
    group_by: str | None = None,
    split_file: str | Path | None = None,
    hard_negative_share: float = 0.0,
    lookalike_kinds: Collection[str] = (),
    distractor_share: float = DEFAULT_DISTRACTOR_SHARE,
    distractor_questions: Sequence[str] | None = None,
) -> MixPlan:
    """Choose every record of the mix. Same inputs and seed, same plan.

    Task records are split by ``group_by`` (or as ``split_file`` says; see
    ``curation.split.split_by_groups``); with ``hard_negative_share`` S, at
    least S of each split's kept "no" records are of ``lookalike_kinds``.
    ``distractor_share`` D of the train split's general records are distractor
    questions (``distractor_questions``, default: the package's) about its task
    images, answered "no" (``curation.distractors``); val and test keep only real
    general VQA, so their scores and the question-following check stay unseen.

    Raises:
        UsageError: a ratio or share out of range, an unknown ``group_by``, a bad split file.
        DataError: not enough task, general or look-alike data for the requested mix.
    """
    shares = MixShares(ratio, yes_share, max_records, hard_negative_share, distractor_share)
    shares.check()
    check_group_by(group_by)
    split = ExportOptions(
        seed=seed,
        fractions=fractions,
        group_by=group_by,
        split_file=None if split_file is None else Path(split_file),
    )
    return _plan(task, pools, shares, split, lookalike_kinds, distractor_questions)


def _plan(
    task: Sequence[ExportRecord],
    pools: Sequence[GeneralPool],
    shares: MixShares,
    options: ExportOptions,
    lookalike_kinds: Collection[str],
    distractor_questions: Sequence[str] | None,
) -> MixPlan:
    """``plan_mix`` with its shares and ``group_by`` already checked."""
    ratio, yes_share, max_records = shares.ratio, shares.yes_share, shares.max_records
    hard_negative_share, distractor_share = shares.hard_negative_share, shares.distractor_share
    seed, fractions = options.seed, options.fractions
    if not task:
        raise DataError("no task records to mix")
    if ratio > 0 and not pools:
        raise UsageError(
            "--vqav2-ratio > 0 needs a general VQA source (e.g. --vqav2-questions "
            "... or --easy-vqa)"
        )
    sides = Counter(yes_no(r.answers) for r in task)
    if sides["yes"] + sides["no"] and not (sides["yes"] and sides["no"]):
        missing = "no" if sides["yes"] else "yes"
        raise DataError(
            f"the task data has {sides['yes']} 'yes' and {sides['no']} 'no' records: balancing to "
            f"--yes-share {yes_share} would drop all of them. Fix: add '{missing}' examples "
            "(negatives: images where nobody is falling)."
        )
    train_cap = None
    if max_records is not None:
        train_cap = _task_cap(max_records, ratio, yes_share, both=bool(sides["yes"]))
    if hard_negative_share > 0:
        _refuse_no_lookalikes(task, hard_negative_share, lookalike_kinds)
    grouped = split_by_groups(task, fractions, seed, options.group_by, options.split_file)
    task_splits = grouped.splits
    questions: Sequence[str] = ()
    if ratio > 0 and distractor_share > 0:
        questions = (
            distractor_questions
            if distractor_questions is not None
            else load_distractors().questions()
        )
    general_rows = [row for pool in pools for row in pool.rows]
    pool_splits = _split_pool(general_rows, fractions, seed) if general_rows else {}

    splits: dict[str, list[ExportRecord]] = {}
    dropped: dict[str, dict[str, int]] = {}
    available: dict[str, int] = {}
    for split in SPLITS:
        try:
            kept, dropped[split] = balance(
                task_splits[split],
                yes_share,
                random.Random(f"{seed}-balance-{split}"),
                train_cap if split == "train" else None,
                hard_negative_share,
                lookalike_kinds,
            )
        except HardNegativeShortfall as exc:
            raise HardNegativeShortfall(f"the {split} split: {exc}") from None
        need = general_needed(len(kept), ratio)
        n_distract = round(need * distractor_share) if split == "train" and questions else 0
        distract = distractor_records(
            kept, n_distract, questions, random.Random(f"{seed}-distractors-{split}")
        )
        need -= len(distract)
        pool = pool_splits.get(split, [])
        available[split] = len(pool)
        if need > len(pool):
            raise DataError(
                f"the {split} split needs {need} general VQA records for --vqav2-ratio {ratio} "
                f"next to {len(kept)} task records, but the general source has only {len(pool)} "
                f"for it. Fix: lower --vqav2-ratio or add general VQA data."
            )
        chosen = stratified_sample(pool, need, random.Random(f"{seed}-general-{split}"))
        general = [
            ExportRecord(
                Path(r.image),
                r.question,
                r.answer_list(),
                source=r.source,
                original_id=r.original_id,
                part="general",
                answer_type=r.answer_type,
                group=r.image,
            )
            for r in chosen
        ]
        splits[split] = kept + general + distract
    return MixPlan(
        splits,
        dropped,
        ratio,
        yes_share,
        seed,
        available,
        grouped.info,
        hard_negative_share,
        tuple(sorted(lookalike_kinds)),
        distractor_share if questions else 0.0,
        len(questions),
    )


def _refuse_no_lookalikes(
    task: Sequence[ExportRecord], share: float, kinds: Collection[str]
) -> None:
    """A share asked of data that has no look-alike negative at all: say why, once."""
    no = [r for r in task if yes_no(r.answers) == "no"]
    if any(r.negative_kind in kinds for r in no):
        return
    known = sorted({r.negative_kind for r in no if r.negative_kind})
    raise HardNegativeShortfall(
        f'--hard-negative-share {share:g}: none of the task\'s {len(no)} "no" records is of a '
        f"look-alike kind ({', '.join(sorted(kinds)) or 'the class map lists none'}); their "
        f"kinds: {', '.join(known) or 'none (photos carry no negative_kind)'}. Fix: add "
        "look-alike negatives (video frames of lying down, sitting, kneeling, squatting), "
        "list kinds in the class map's lookalike_kinds, or drop the option."
    )


def _task_cap(max_records: int, ratio: float, yes_share: float, both: bool) -> int:
    """The most task records a train split of ``max_records`` holds beside its general share.

    Raises:
        UsageError: ``max_records`` cannot hold one "yes" and one "no" task record
            (when the task data has both) with their general records at ``ratio``.
    """
    smallest = smallest_balanced(yes_share) if both else 1
    cap = min(max_records, int(max_records * (1 - ratio)) + 2)
    while cap > 0 and cap + general_needed(cap, ratio) > max_records:
        cap -= 1
    if cap < smallest:
        least = smallest + general_needed(smallest, ratio)
        holds = "one yes and one no task record" if both else "one task record"
        raise UsageError(
            f"--max-records {max_records} is too small: at --vqav2-ratio {ratio:g} and "
            f"--yes-share {yes_share:g}, the smallest train set that holds {holds} is "
            f"{least}. Fix: use --max-records {least} or more."
        )
    return cap


def mix(
    task: Sequence[ExportRecord],
    pools: Sequence[GeneralPool],
    out: str | Path,
    *,
    ratio: float,
    yes_share: float = defaults.YES_SHARE,
    seed: int = 0,
    fractions: tuple[float, float, float] = defaults.FRACTIONS,
    max_records: int | None = None,
    model: ModelPreset = defaults.PRESET,
    copy: bool = False,
    overwrite: bool = False,
    task_inputs: Sequence[str | Path] = (),
    command: str = "curate mix",
    fiftyone_dataset: str | None = None,
    protect: Iterable[str | Path] = (),
    group_by: str | None = None,
    split_file: str | Path | None = None,
    hard_negative_share: float = 0.0,
    lookalike_kinds: Collection[str] = (),
    distractor_share: float = DEFAULT_DISTRACTOR_SHARE,
    distractors_file: str | Path | None = None,
) -> tuple[MixPlan, ExportSummary]:
    """Plan the mix and write it as an export folder (with ``composition.png``).

    The keyword form of ``mix_from_request`` for records already loaded (a notebook,
    a pipeline). ``distractors_file``: the distractor questions (default: the
    package's list).

    ``out`` must stay clear of ``protect`` (image roots), the inputs and every
    pool's image folders: it is never, never holds and is never inside one.
    """
    shares = MixShares(ratio, yes_share, max_records, hard_negative_share, distractor_share)
    shares.check()
    check_group_by(group_by)
    options = ExportOptions(
        seed=seed,
        model=model,
        fractions=fractions,
        copy=copy,
        overwrite=overwrite,
        group_by=group_by,
        split_file=None if split_file is None else Path(split_file),
    )
    return _plan_and_write(
        task,
        pools,
        out,
        shares,
        options,
        task_inputs=task_inputs,
        command=command,
        fiftyone_dataset=fiftyone_dataset,
        protect=protect,
        lookalike_kinds=lookalike_kinds,
        distractors_file=None if distractors_file is None else Path(distractors_file),
    )


def _plan_and_write(
    task: Sequence[ExportRecord],
    pools: Sequence[GeneralPool],
    out: str | Path,
    shares: MixShares,
    options: ExportOptions,
    *,
    task_inputs: Sequence[str | Path],
    command: str,
    fiftyone_dataset: str | None,
    protect: Iterable[str | Path],
    lookalike_kinds: Collection[str],
    distractors_file: Path | None,
) -> tuple[MixPlan, ExportSummary]:
    """Plan the mix (shares and ``group_by`` already checked) and write the export."""
    plan = _plan(
        task,
        pools,
        shares,
        options,
        lookalike_kinds,
        load_distractors(distractors_file).questions() if distractors_file else None,
    )
    missing = sorted(
        {str(r.image) for recs in plan.splits.values() for r in recs if not r.image.is_file()}
    )
    if missing:
        raise DataError(f"{len(missing)} image file(s) not found, e.g. {', '.join(missing[:3])}")
    files = [options.split_file] if options.split_file is not None else []
    files += [distractors_file] if distractors_file and plan.distractor_share else []
    inputs = [*task_inputs, *files, *(p for pool in pools for p in pool.inputs)]
    extra: dict[str, Any] = {"fiftyone_dataset": fiftyone_dataset} if fiftyone_dataset else {}
    extra |= {"groups": plan.groups}
    extra |= {
        "mix": {
            "vqav2_ratio": shares.ratio,
            "yes_share": shares.yes_share,
            "max_records": shares.max_records,
            "fractions": [round(f, 9) for f in options.fractions],
            "sources": [p.source for p in pools],
            "dropped_for_balance": plan.dropped,
            "general_available": plan.general_available,
            "achieved": {
                s: {k: round(v, 6) for k, v in plan.achieved(s).items()}
                for s in SPLITS
                if plan.splits[s]
            },
            **_hard_manifest(plan),
            "distractors": {
                "share": plan.distractor_share,
                "questions": plan.distractor_questions,
                "file": Path(distractors_file).name if distractors_file else "(package default)",
                "answer": "no",
                "records": {s: plan.distractors(s) for s in SPLITS},
                "share_of_records": {
                    s: round(plan.distractors(s) / len(plan.splits[s]), 6)
                    for s in SPLITS
                    if plan.splits[s]
                },
            },
        },
    }
    chart = composition_png(plan)
    summary = write_export(
        out,
        plan.splits,
        seed=options.seed,
        model=options.model,
        inputs=inputs,
        extra_manifest=extra,
        copy=options.copy,
        overwrite=options.overwrite,
        builder_name=options.builder_name,
        command=command,
        extra_files={"composition.png": chart} if chart else None,
        protect=[*protect, *(root for pool in pools for root in pool.image_roots)],
    )
    return plan, summary


def _hard_manifest(plan: MixPlan) -> dict[str, Any]:
    """The manifest's look-alike figures (only when ``--hard-negative-share`` was given)."""
    if not plan.hard_negative_share:
        return {}
    return {
        "hard_negative_share": plan.hard_negative_share,
        "lookalike_kinds": list(plan.lookalike_kinds),
        "hard_negatives": {s: plan.hard_negatives(s) for s in SPLITS},
    }


@dataclass(frozen=True)
class MixRequest:
    """Everything ``curate mix`` is asked for: task data, general sources, shares, output.

    Give the task data as ``task`` (a LAVIS annotation file, with its
    ``image_root``) or as ``dataset`` (a reviewed FiftyOne dataset), not both.
    ``export`` says how the folder is split and written, as for ``curate export``.
    """

    out: Path
    shares: MixShares
    task: Path | None = None
    image_root: Path | None = None
    dataset: str | None = None
    general: GeneralSources = field(default_factory=GeneralSources)
    export: ExportOptions = field(default_factory=ExportOptions)
    class_map: Path | None = None  # which negative kinds look alike [default: the package's]
    distractors: Path | None = None  # distractor questions [default: the package's]

    def command(self) -> str:
        """The manifest's command line.

        No paths: the manifest's inputs name them, and two output folders of
        the same inputs and seed stay byte-identical.
        """
        shares, export = self.shares, self.export
        parts = [f"curate mix --vqav2-ratio {shares.ratio:g} --yes-share {shares.yes_share:g}"]
        if shares.max_records is not None:
            parts.append(f"--max-records {shares.max_records}")
        _, val, test = export.fractions
        parts.append(f"--val-share {val:g} --test-share {test:g}")
        parts.append(f"--seed {export.seed} --model {export.model}")
        if export.group_by:
            parts.append(f"--group-by {export.group_by}")
        if export.split_file is not None:
            parts.append(f"--split-file {export.split_file.name}")
        if shares.hard_negative_share:
            parts.append(f"--hard-negative-share {shares.hard_negative_share:g}")
        if shares.distractor_share != DEFAULT_DISTRACTOR_SHARE:
            parts.append(f"--distractor-share {shares.distractor_share:g}")
        if self.distractors is not None:
            parts.append(f"--distractors {self.distractors.name}")
        return " ".join(parts)


@dataclass
class MixResult:
    """What a mix wrote, and, for a FiftyOne dataset, what the review left out."""

    plan: MixPlan
    summary: ExportSummary
    task_records: int
    dataset: str | None = None
    review: dict[str, int] | None = None


def mix_from_request(request: MixRequest) -> MixResult:
    """Load the task data and the general sources, plan the mix and write it.

    Raises:
        UsageError: task data named twice or not at all, a half-named source,
            shares out of range, ``out`` over an input.
        DataError: bad task data, or not enough of it for the mix asked for.
    """
    if (request.task is None) == (request.dataset is None):
        raise UsageError("give the task data with --task FILE or --dataset NAME (one of them)")
    get_preset(request.export.model)  # an unknown name lists the valid ones
    # refuse a bad --out before any source is loaded (write_export checks again, with all inputs)
    early = [p for p in (request.task, request.image_root) if p is not None]
    check_export_out(request.out, early, request.export.overwrite)
    request.general.check()
    request.shares.check()
    check_export_options(request.export)  # --group-by, and a malformed --split-file
    if request.distractors is not None:
        load_distractors(request.distractors)  # a malformed file before any data is loaded
    lookalikes: list[str] = []
    if request.shares.hard_negative_share > 0 or request.class_map is not None:
        from curation.class_map import load_class_map

        lookalikes = load_class_map(request.class_map).lookalike_kinds
    review = None
    protect: list[Path] = []
    task_inputs: list[Path] = []
    if request.task is not None:
        root = request.image_root if request.image_root is not None else request.task.parent
        protect = [request.task, root]
        task_inputs = [request.task]
    pools = request.general.load()
    if request.dataset is not None:
        from curation.curator.records import records_from_dataset

        found = records_from_dataset(request.dataset)
        records = found.task
        if found.general is not None:
            pools.append(found.general)
        review = found.review
        protect = sorted({r.image.parent for r in records})
    else:
        from curation.export import task_records_from_file

        assert request.task is not None
        records = task_records_from_file(request.task, request.image_root)
    plan, summary = _plan_and_write(
        records,
        pools,
        request.out,
        request.shares,
        request.export,
        task_inputs=task_inputs,
        command=request.command(),
        fiftyone_dataset=request.dataset,
        protect=protect,
        lookalike_kinds=lookalikes,
        distractors_file=request.distractors,
    )
    return MixResult(plan, summary, len(records), request.dataset, review)


def composition_png(plan: MixPlan) -> bytes | None:
    """A stacked bar chart of each split's composition (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    # sources and answer types are user text: never parsed as mathtext ("$" in a legend)
    with matplotlib.rc_context({"text.parse_math": False}):
        return _composition_png(plt, plan)


def _composition_png(plt: Any, plan: MixPlan) -> bytes:
    comp = plan.composition()
    keys = sorted({k for c in comp.values() for k in c})
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    bottom = [0] * len(SPLITS)
    for key in keys:
        values = [comp[s].get(key, 0) for s in SPLITS]
        ax.bar(SPLITS, values, bottom=bottom, label=key)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("records")
    ax.set_title(
        f"mix: general share {plan.ratio:.0%}, task yes-share {plan.yes_share:.0%}, "
        f"seed {plan.seed}"
    )
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
