"""`curate find-issues`: likely-mislabelled samples, found by cleanlab on out-of-sample P(yes).

Two ways to get P(yes) from a model that never trained on the sample:

- ``--folds K``: the dataset's labelled yes/no task samples are dealt into K
  folds by the one splitter's groups (``curation.split.group_keys``: copies and
  curator groups stay in one fold); K exports of the chosen preset each train
  on K-1 folds and score the fold they left out. Everything goes to ``--out``.
- ``--checkpoint CKPT``: a run trained on an export of this dataset scores the
  samples in its val and test splits (their provenance maps records back to
  sample ids); samples in its train split, or copies of a training image, are
  never scored.

cleanlab then flags the likely wrong labels (``curation.label_issues``), and
the verdict goes back to FiftyOne: ``label_issue_score`` and ``p_yes_oof`` on
each scored sample, the tag ``label_issue`` on flagged ones (stale values and
tags are cleared first), and the saved view ``likely-mislabelled`` (flagged,
highest score first) that ``curate review --view likely-mislabelled`` opens.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation import __version__
from curation._io import (
    EXPORT_TOOL,
    atomic_write_json,
    check_export_out,
    check_output_path,
    remove_stale_temp_folders,
)
from curation.answers import yes_no
from curation.contract import seed_problem
from curation.errors import CurationError, DataError, UsageError
from curation.label_issues import SCORE_MEANING, find_label_issues
from curation.record_types import ExportRecord

SCORE_FIELD = "label_issue_score"
P_YES_FIELD = "p_yes_oof"
ISSUE_TAG = "label_issue"
VIEW_NAME = "likely-mislabelled"
REPORT_FILE = "label_issues.json"


@dataclass(frozen=True)
class ScoredSample:
    """One sample scored out of sample, and cleanlab's verdict on its label."""

    sample_id: str
    filepath: str
    label: str  # the label cleanlab judged (review relabels applied)
    p_yes: float
    score: float
    flagged: bool
    scored_by: str  # "fold 2" or "val" / "test" of the checkpoint's export


#: Below this out-of-sample ROC-AUC the scoring models barely learned the task and
#: find-issues warns: cleanlab then flags mostly at random.
MIN_USEFUL_AUC = 0.7


@dataclass(frozen=True)
class FoldRun:
    """One of the K trainings of ``--folds``."""

    fold: int
    train_records: int
    held_out: int
    checkpoint: Path
    steps: int
    seconds: float


@dataclass
class FindIssuesResult:
    """What ``find_issues`` scored, flagged and wrote back."""

    dataset: str
    mode: str  # "folds" or "checkpoint"
    samples: list[ScoredSample]
    folds: list[FoldRun] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    out: Path | None = None
    checkpoint: Path | None = None
    view: str = VIEW_NAME

    @property
    def roc_auc(self) -> float | None:
        """ROC-AUC of the out-of-sample P(yes) against the given labels (0.5: chance)."""
        from curation.evaluate.metrics import roc_auc

        return roc_auc([s.label == "yes" for s in self.samples], [s.p_yes for s in self.samples])

    @property
    def barely_learned(self) -> bool:
        """The scoring models ranked the labels little better than chance: flags are noise."""
        auc = self.roc_auc
        return auc is None or auc < MIN_USEFUL_AUC

    @property
    def flagged(self) -> list[ScoredSample]:
        """The flagged samples, highest score first."""
        return sorted((s for s in self.samples if s.flagged), key=lambda s: (-s.score, s.sample_id))

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": EXPORT_TOOL,
            "version": __version__,
            "dataset": self.dataset,
            "mode": self.mode,
            "method": "cleanlab.filter.find_label_issues(filter_by='prune_by_noise_rate')",
            "score": f"{SCORE_FIELD}: {SCORE_MEANING}",
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "scored": len(self.samples),
            "roc_auc": self.roc_auc,
            "flagged": len(self.flagged),
            "skipped": self.skipped,
            "folds": [
                {
                    "fold": f.fold,
                    "train_records": f.train_records,
                    "held_out": f.held_out,
                    "checkpoint": str(f.checkpoint),
                    "steps": f.steps,
                    "seconds": round(f.seconds, 1),
                }
                for f in self.folds
            ],
            "view": self.view,
            "samples": [
                {
                    "sample_id": s.sample_id,
                    "filepath": s.filepath,
                    "label": s.label,
                    "p_yes": s.p_yes,
                    "score": s.score,
                    "flagged": s.flagged,
                    "scored_by": s.scored_by,
                }
                for s in sorted(self.samples, key=lambda s: (-s.score, s.sample_id))
            ],
        }

    def write_json(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())


@dataclass(frozen=True)
class FindIssuesRequest:
    """Everything ``curate find-issues`` takes: exactly one of ``folds`` or ``checkpoint``."""

    dataset: str
    folds: int | None = None
    out: Path | None = None
    checkpoint: Path | None = None
    config: Path | None = None
    model: str = "tiny"
    overrides: tuple[str, ...] = ()
    seed: int = 0
    overwrite: bool = False
    trust_checkpoint: bool = False
    json_report: Path | None = None


Progress = Callable[[str], None]


def find_issues(
    request: FindIssuesRequest, on_progress: Progress | None = None
) -> FindIssuesResult:
    """Score, flag and write back, as the request says (the whole `curate find-issues`).

    Raises:
        UsageError: neither or both of folds/checkpoint, ``folds`` < 2, no ``out`` with
            folds, an unsafe ``out`` or ``json_report``, a missing dataset.
        DataError: no labelled yes/no task samples, one answer only, too few samples
            for the folds, a checkpoint whose export is not of this dataset.
    """
    say = on_progress or (lambda _text: None)
    if (request.folds is None) == (request.checkpoint is None):
        raise UsageError(
            "give exactly one of --folds K (train K models, each scoring the fold it left "
            "out) or --checkpoint CKPT (score the val/test samples of that run's export)"
        )
    if request.folds is not None and request.folds < 2:
        raise UsageError(
            f"--folds must be at least 2, got {request.folds}: each model scores only the "
            "samples it did not train on. Fix: --folds 3"
        )
    if (problem := seed_problem(request.seed)) is not None:
        raise UsageError(f"--seed {problem}. Fix: --seed 0 (or any seed in that range)")
    if request.folds is not None and request.out is None:
        raise UsageError(
            "--folds trains K models and needs a folder for them. Fix: --out exports/NAME-issues"
        )
    if request.checkpoint is not None and (request.overrides or request.out is not None):
        raise UsageError(
            "--checkpoint scores with a trained model: it takes no --out and no training "
            "overrides (those are for --folds)."
        )
    if request.json_report is not None:
        check_report_path(request.json_report)
        if request.out is not None:
            out, report = Path(request.out).resolve(), Path(request.json_report).resolve()
            if report == out or out in report.parents:
                raise UsageError(
                    f"--json {request.json_report} is --out or inside it: --out is replaced "
                    f"whole and already holds the report ({out / REPORT_FILE}). Fix: leave "
                    "--json out, or give a path outside --out."
                )
    if request.folds is not None:
        assert request.out is not None
        result = _by_folds(request, request.folds, request.out, say)
    else:
        assert request.checkpoint is not None
        result = _by_checkpoint(request, request.checkpoint, say)
    say(f"writing scores and tags to FiftyOne dataset {request.dataset!r}")
    write_back(request.dataset, result.samples)
    if request.json_report is not None:
        result.write_json(request.json_report)
    return result


_REPORT_KEYS = {"tool", "dataset", "mode", "samples"}


def check_report_path(path: Path) -> None:
    """``--json`` is a new file, or an earlier report of find-issues (nothing else is replaced).

    Raises:
        UsageError: a folder, a file that is not such a report, or a path the system refuses.
    """
    from curation._io import check_report_path as guard

    fix = "Fix: --json a new file such as label_issues.json"
    guard(path.resolve(), "find-issues", _REPORT_KEYS, fix)


def _labelled(dataset: str) -> tuple[list[ExportRecord], list[str], dict[str, int]]:
    """The dataset's labelled yes/no task records (review tags applied) and their labels."""
    from curation.curator.records import records_from_dataset

    found = records_from_dataset(dataset)
    records: list[ExportRecord] = []
    labels: list[str] = []
    skipped = {"excluded": found.excluded, "unlabelled": found.unlabelled}
    other = 0
    for rec in found.task:
        label = yes_no(rec.answers)
        if label == "other":
            other += 1
            continue
        records.append(rec)
        labels.append(label)
    skipped["not yes/no"] = other
    if not records:
        raise DataError(
            f"dataset {dataset!r} has no labelled yes/no task samples to check "
            f"({found.unlabelled} unlabelled, {found.excluded} excluded, {other} not yes/no). "
            "Fix: curate ingest a folder with fall/ and no_fall/ into it first."
        )
    only = set(labels)
    if len(only) < 2:
        raise DataError(
            f"dataset {dataset!r}: all {len(labels)} labelled task samples say "
            f"{next(iter(only))!r}. cleanlab needs both 'yes' and 'no' labels to tell a wrong "
            "label from the class itself, and a model trained on one answer says it to "
            "everything. Fix: curate ingest samples of the other answer, then run again."
        )
    return records, labels, skipped


def _scored(
    records: Sequence[ExportRecord],
    labels: Sequence[str],
    probs: Sequence[float],
    scored_by: Sequence[str],
) -> list[ScoredSample]:
    verdict = find_label_issues(labels, probs)
    return [
        ScoredSample(rec.fiftyone_id, str(rec.image), label, float(p), score, flagged, by)
        for rec, label, p, score, flagged, by in zip(
            records, labels, probs, verdict.scores, verdict.flagged, scored_by, strict=True
        )
    ]


def _check_fold_count(dataset: str, samples: int, groups: int, k: int) -> None:
    """Every fold gets a group of copies and near-copies: ``k`` is at most ``groups``.

    Raises:
        DataError: more folds than groups (each names the counts and the largest K).
    """
    if k > groups:
        raise DataError(
            f"dataset {dataset!r}: {samples} labelled task sample(s) in fewer than {k} "
            f"groups of copies and near-copies (found {groups}): --folds {k} would leave a fold "
            f"empty. Fix: a smaller --folds (2 to {groups}), or more samples."
        )


def _check_folds(dataset: str, labels: Sequence[str], folds: Sequence[int], k: int) -> None:
    """Every training part (the other folds) holds both answers."""
    for f in range(k):
        train = {lab for lab, g in zip(labels, folds, strict=True) if g != f}
        if len(train) < 2:
            raise DataError(
                f"dataset {dataset!r}: with --folds {k}, the model for fold {f + 1} would train "
                f"only on {sorted(train)} labels and learn to say that to everything. "
                "Fix: a smaller --folds, or more samples of the rarer answer."
            )


def _by_folds(request: FindIssuesRequest, k: int, out: Path, say: Progress) -> FindIssuesResult:
    from curation.export import swap_into_place
    from curation.presets import get_preset
    from curation.split import assign_folds, group_keys

    get_preset(request.model)  # an unknown preset lists the valid ones, before any work
    records, labels, skipped = _labelled(request.dataset)
    # where OUT may go (a usage error) is said before what the data lacks (a data error)
    image_folders = sorted({r.image.parent for r in records})
    check_output_path(out, "--out")
    with contextlib.suppress(OSError):
        remove_stale_temp_folders(out)
    check_export_out(out, image_folders, request.overwrite)
    keys = group_keys(records)
    # before dealing: K folds of at most len(keys) groups (a K of 10**20 is no list to fill)
    _check_fold_count(request.dataset, len(labels), len(set(keys)), k)
    folds = assign_folds(keys, k, request.seed)
    _check_folds(request.dataset, labels, folds, k)
    target = Path(os.path.abspath(out))
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        probs, runs = _train_and_score(request, records, folds, k, tmp, say)
        samples = _scored(records, labels, probs, [f"fold {g + 1}" for g in folds])
        # the report names the checkpoints where they will be once OUT is in place
        placed = [
            FoldRun(r.fold, r.train_records, r.held_out, out / r.checkpoint, r.steps, r.seconds)
            for r in runs
        ]
        result = FindIssuesResult(request.dataset, "folds", samples, placed, skipped, out)
        manifest = {
            "tool": EXPORT_TOOL,
            "version": __version__,
            "command": f"curate find-issues --dataset {request.dataset} --folds {k} "
            f"--model {request.model} --seed {request.seed}",
            "fiftyone_dataset": request.dataset,
            "folds": k,
            "seed": request.seed,
            "model": request.model,
            "overrides": list(request.overrides),
            "report": REPORT_FILE,
        }
        atomic_write_json(tmp / "manifest.json", manifest)
        result.write_json(tmp / REPORT_FILE)
        swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _train_and_score(
    request: FindIssuesRequest,
    records: Sequence[ExportRecord],
    folds: Sequence[int],
    k: int,
    tmp: Path,
    say: Progress,
) -> tuple[list[float], list[FoldRun]]:
    """K exports and trainings; each model scores only the fold it left out."""
    from curation.export import write_export
    from curation.inference.model import load_model
    from curation.inference.scoring import p_yes
    from curation.training.checkpoints import latest_checkpoint
    from curation.training.train import train

    probs = [float("nan")] * len(records)
    runs: list[FoldRun] = []
    for f in range(k):
        held = [i for i, g in enumerate(folds) if g == f]
        train_part = [r for r, g in zip(records, folds, strict=True) if g != f]
        held_part = [records[i] for i in held]
        folder = tmp / f"fold-{f + 1}"
        say(f"fold {f + 1}/{k}: training on {len(train_part)}, scoring {len(held)}")
        write_export(
            folder,
            # the held-out fold is val and test: scored by this fold's model only
            {"train": train_part, "val": held_part, "test": held_part},
            seed=request.seed,
            model=request.model,
            command=f"curate find-issues --dataset {request.dataset} --folds {k}: fold {f + 1}",
            extra_manifest={"fiftyone_dataset": request.dataset, "find_issues_fold": f + 1},
        )
        started = time.perf_counter()
        try:
            run = train(
                folder / "lavis.yaml",
                [
                    f"run.seed={request.seed}",
                    "run.valid_splits=[]",
                    "run.test_splits=[]",
                    *request.overrides,
                ],
                run_id="oof",
            )
        except CurationError as exc:  # named against a temporary file that is then removed
            raise _fold_error(exc, request, folder) from None
        ckpt = latest_checkpoint(run.checkpoints)
        if ckpt is None:
            raise DataError(f"fold {f + 1}: the training in {run.run_dir} wrote no checkpoint")
        loaded = load_model(ckpt)
        scores = p_yes(loaded, [r.image for r in held_part], [r.question for r in held_part])
        del loaded
        for i, p in zip(held, scores, strict=True):
            probs[i] = p
        runs.append(
            FoldRun(
                f + 1,
                len(train_part),
                len(held),
                ckpt.relative_to(tmp),
                run.steps,
                time.perf_counter() - started,
            )
        )
    return probs, runs


def _fold_error(exc: CurationError, request: FindIssuesRequest, folder: Path) -> CurationError:
    """``exc`` from a fold's training, said of the user's overrides, not of the fold's
    temporary export (removed when find-issues fails)."""
    text = str(exc)
    head, sep, rest = text.partition("\n")
    if sep and "problem(s) in the config" in head:  # the header names the temp file
        text = "the config has problems:\n" + rest
    for path in (folder / "lavis.yaml", folder):
        text = text.replace(f"{path}: ", "").replace(str(path), "the fold export")
    text = text.replace(str(folder.parent), "OUT")  # the temporary folder OUT becomes
    message = (
        f"find-issues: training fold {folder.name.removeprefix('fold-')} (the "
        f"{request.model} preset with your override(s) "
        f"{' '.join(request.overrides) or '(none)'}) was refused: {text}"
    )
    try:
        error = type(exc)(message)
    except TypeError:  # an error class with its own constructor
        error = DataError(message)
    error.exit_code = exc.exit_code
    return error


def _provenance(export: Path, split: str) -> list[dict[str, Any]]:
    path = export / f"{split}.provenance.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise DataError(
            f"{path}: cannot read the export's provenance ({exc}). Fix: export the dataset "
            "again with curate export --dataset NAME, and train on that export."
        ) from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataError(f"{path}: not a provenance list written by curate export")
    return rows


def _by_checkpoint(request: FindIssuesRequest, checkpoint: Path, say: Progress) -> FindIssuesResult:
    from curation.inference.model import find_config, load_model
    from curation.inference.scoring import p_yes
    from curation.split import content_key
    from curation.training.train import export_folder

    if not checkpoint.is_file():
        raise UsageError(
            f"--checkpoint {checkpoint}: not found. Fix: a checkpoint_<n>.pth of a run"
        )
    config = find_config(checkpoint, request.config)
    export = export_folder(config)
    manifest_path = export / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        manifest = None
    source = manifest.get("fiftyone_dataset") if isinstance(manifest, dict) else None
    if source != request.dataset:
        where = f"dataset {source!r}" if source else "no FiftyOne dataset"
        raise DataError(
            f"--checkpoint {checkpoint}: its export {export} came from {where}, not "
            f"{request.dataset!r}, so its val/test records cannot be mapped to samples. Fix: "
            f"curate export --dataset {request.dataset} --out OUT, curate train OUT/lavis.yaml, "
            "and pass that run's checkpoint (or use --folds K)."
        )
    trained_ids = {r.get("fiftyone_id") for r in _provenance(export, "train")}
    trained_content = {Path(name).stem for name in _image_names(export, "train")}
    held_by: dict[str, str] = {}
    for split in ("val", "test"):
        for row in _provenance(export, split):
            sid = row.get("fiftyone_id")
            if isinstance(sid, str) and sid and row.get("part", "task") == "task":
                held_by.setdefault(sid, split)
    records, labels, skipped = _labelled(request.dataset)
    keep: list[int] = []
    cache: dict[Path, str] = {}
    counts = {"not in the export's val/test": 0, "trained on (or a copy of a training image)": 0}
    for i, rec in enumerate(records):
        if rec.fiftyone_id not in held_by:
            counts["not in the export's val/test"] += 1
        elif (
            rec.fiftyone_id in trained_ids or content_key(rec.image, cache)[:20] in trained_content
        ):
            counts["trained on (or a copy of a training image)"] += 1
        else:
            keep.append(i)
    skipped.update(counts)
    if not keep:
        raise DataError(
            f"--checkpoint {checkpoint}: none of dataset {request.dataset!r}'s labelled task "
            f"samples is in the val or test split of its export {export}. Fix: use --folds K "
            "to score every sample."
        )
    records = [records[i] for i in keep]
    labels = [labels[i] for i in keep]
    if len(set(labels)) < 2:
        raise DataError(
            f"--checkpoint {checkpoint}: the {len(labels)} held-out samples all say "
            f"{labels[0]!r}; cleanlab needs both answers. Fix: use --folds K to score every "
            "sample."
        )
    say(f"scoring {len(records)} held-out samples with {checkpoint}")
    loaded = load_model(checkpoint, config, request.trust_checkpoint)
    probs = p_yes(loaded, [r.image for r in records], [r.question for r in records])
    samples = _scored(records, labels, probs, [held_by[r.fiftyone_id] for r in records])
    return FindIssuesResult(
        request.dataset, "checkpoint", samples, [], skipped, None, checkpoint=checkpoint
    )


def _image_names(export: Path, split: str) -> list[str]:
    path = export / f"{split}.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise DataError(f"{path}: cannot read the export's {split} split ({exc})") from None
    return [str(r.get("image", "")) for r in rows if isinstance(r, dict)]


def write_back(dataset: str, samples: Sequence[ScoredSample]) -> None:
    """Clear earlier verdicts, then store scores, probabilities, tags and the saved view."""
    from curation.curator._fo import fiftyone, load_dataset

    fo = fiftyone()
    ds = load_dataset(dataset)
    schema = ds.get_field_schema()
    for name in (SCORE_FIELD, P_YES_FIELD):
        if name not in schema:
            ds.add_sample_field(name, fo.FloatField)
        else:
            ds.clear_sample_field(name)
    ds.untag_samples(ISSUE_TAG)
    known = set(ds.values("id"))
    present = [s for s in samples if s.sample_id in known]
    if present:
        ds.set_values(SCORE_FIELD, {s.sample_id: s.score for s in present}, key_field="id")
        ds.set_values(P_YES_FIELD, {s.sample_id: s.p_yes for s in present}, key_field="id")
    flagged = [s.sample_id for s in present if s.flagged]
    if flagged:
        ds.select(flagged).tag_samples(ISSUE_TAG)
    if ds.has_saved_view(VIEW_NAME):
        ds.delete_saved_view(VIEW_NAME)
    ds.save_view(VIEW_NAME, ds.match_tags(ISSUE_TAG).sort_by(SCORE_FIELD, reverse=True))
