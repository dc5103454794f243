"""Run a checkpoint over a split and write ``eval.json``, plots and a summary."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation import defaults
from curation._io import (
    atomic_write_json,
    atomic_write_text,
    path_kind,
    read_user_file,
    sha256_file,
)
from curation.answers import normalize_answer, to_yes_no, yes_no
from curation.contract import OPERATING_POINT_FILE
from curation.errors import DataError, UsageError
from curation.evaluate.metrics import (
    NEVER_YES,
    collapse_reasons,
    general_metrics,
    is_never_yes,
    per_kind_rates,
    probability_metrics,
    task_metrics,
    threshold_at_false_alarm,
    vqa_accuracy,
)
from curation.evaluate.report import (
    FIGURES,
    EvalReport,
    Figure,
    lookup,
    threshold_text,
    yes_rule,
)
from curation.inference.model import load_model, weights_file
from curation.inference.operating_point import chosen_for, write_point


@dataclass(frozen=True)
class EvalRequest:
    """What ``curate eval`` scores: a checkpoint on a split, and where the results go.

    ``image_root``: the folder the split's image paths start from [default: the split's
    folder, or its images/ sub-folder]. ``out``: the folder for eval.json and plots
    [default: the checkpoint's]. ``config``: the run config [default: config.yaml beside
    the checkpoint]. ``trust_checkpoint`` loads a checkpoint that holds more than tensors
    as full pickle (it can run code); without it such a file is refused.
    ``max_false_alarm``: the budget the operating point is chosen within.
    """

    checkpoint: Path
    data: Path
    image_root: Path | None = None
    out: Path | None = None
    config: Path | None = None
    batch_size: int = defaults.EVAL_BATCH_SIZE
    trust_checkpoint: bool = False
    max_false_alarm: float = defaults.MAX_FALSE_ALARM


#: Hands the scored rows of a split on (e.g. to the data set it came from) and says where
#: they went, for eval.json's ``fiftyone`` entry; None: nowhere.
Publish = Callable[[Path, list[dict[str, Any]]], dict[str, Any] | None]


@dataclass
class EvalResult:
    report: EvalReport
    out: Path
    files: list[Path]
    notes: list[str] = field(default_factory=list)

    @property
    def collapse_alarm(self) -> bool:
        return self.report.collapse_alarm


def default_image_root(data: Path) -> Path:
    from curation.images import default_image_root as rule

    return rule(data)


def provenance_note(data: Path) -> str | None:
    """The line a command prints when ``data`` has no provenance sidecar (else None)."""
    sidecar = data.with_name(f"{data.stem}.provenance.json")
    if sidecar.is_file():
        return None
    return (
        f"no {sidecar.name} beside {data.name}: task records were told from general ones "
        "by their question (the task question or one of its paraphrases)"
    )


def load_provenance(data: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The mix's sidecar (``test.provenance.json`` beside ``test.json``); without one, a
    record is task data when its question is the task question or a paraphrase of it,
    general data otherwise (``provenance_note`` says so)."""
    sidecar = data.with_name(f"{data.stem}.provenance.json")
    if not sidecar.is_file():
        from curation.answers import yes_no
        from curation.export import frame_keys
        from curation.schemas.questions import is_task_question

        def guessed(rec: dict[str, Any]) -> dict[str, Any]:
            if is_task_question(str(rec.get("text_input", ""))):
                return {"part": "task", "source": "task", "answer_type": "yes/no"}
            kind = "other" if yes_no(rec.get("answer", [])) == "other" else "yes/no"
            return {"part": "general", "source": "general", "answer_type": kind}

        # a plain annotation file may carry negative_kind, activity, ... as extra keys:
        # the per-kind table reads them (checked as export checks them)
        return [{**guessed(r), **frame_keys(data, i, r)} for i, r in enumerate(records)]
    try:
        rows = json.loads(sidecar.read_text(encoding="utf-8"))
        if not isinstance(rows, list) or not all(
            isinstance(p, dict) and "instance_id" in p for p in rows
        ):
            raise ValueError("not a list of objects with an instance_id")
        prov = {p["instance_id"]: p for p in rows}
        from curation.export import frame_keys

        for i, p in enumerate(rows):  # the per-kind table counts these: strings only
            frame_keys(sidecar, i, p)
    except (ValueError, TypeError, RecursionError) as exc:  # not JSON, unhashable ids
        raise DataError(
            f"{sidecar}: not the provenance file curate export or mix writes ({exc}). Fix: "
            "export again, or remove it to tell task records by their question."
        ) from None
    missing = [r["instance_id"] for r in records if r["instance_id"] not in prov]
    if missing:
        raise DataError(f"{sidecar} has no entry for instance_id(s) {missing[:5]}")
    return [prov[r["instance_id"]] for r in records]


def score(
    records: list[dict[str, Any]],
    provenance: list[dict[str, Any]],
    predictions: list[str],
    p_yes: list[float | None] | None = None,
    threshold: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every figure of ``eval.json`` from records, their provenance and the predictions.

    ``p_yes`` (one per record, None for general ones) adds ROC-AUC, PR-AUC,
    calibration and, with the ``threshold`` chosen on the validation split,
    the operating point's recall and false-alarm rate on these records.
    """
    rows = []
    probs = p_yes if p_yes is not None else [None] * len(records)
    for rec, prov, pred, prob in zip(records, provenance, predictions, probs, strict=True):
        part = prov.get("part", "task")
        rows.append(
            {
                "instance_id": rec["instance_id"],
                "image": rec["image"],
                "question": rec["text_input"],
                "answers": rec["answer"],
                "prediction": pred,
                "normalized": normalize_answer(pred),
                "yes_no": to_yes_no(pred) if part == "task" else None,
                "part": part,
                "source": prov.get("source", "task"),
                "fiftyone_id": prov.get("fiftyone_id", ""),
                "answer_type": prov.get("answer_type", ""),
                "score": vqa_accuracy(pred, rec["answer"]),
                "p_yes": prob,
                "negative_kind": prov.get("negative_kind"),
                "activity": prov.get("activity"),
            }
        )
    task_rows = [r for r in rows if r["part"] == "task"]
    general_rows = [r for r in rows if r["part"] == "general"]
    task = (
        task_metrics([r["answers"][0] for r in task_rows], [r["prediction"] for r in task_rows])
        if task_rows
        else None
    )
    general = (
        general_metrics(
            [r["answers"] for r in general_rows],
            [r["prediction"] for r in general_rows],
            [r["answer_type"] for r in general_rows],
        )
        if general_rows
        else None
    )
    reasons = collapse_reasons(
        [r["prediction"] for r in rows], [r["answers"][0] for r in rows], None, "whole split"
    )
    if task_rows:
        reasons += collapse_reasons(
            [r["prediction"] for r in task_rows],
            [r["answers"][0] for r in task_rows],
            task,
            "task part",
        )
    empty_task = dict.fromkeys(
        ("yes_rate", "yes_rate_negatives", "accuracy", "balanced_accuracy", "f1_yes", "other_rate")
    )
    task_dict: dict[str, Any] = task.to_dict() if task else {**empty_task, "n": 0}
    judged = [r for r in task_rows if yes_no(r["answers"]) != "other"]
    task_dict.update(
        per_kind_rates(
            [r["negative_kind"] for r in judged],
            [r["activity"] for r in judged],
            [yes_no(r["answers"]) == "yes" for r in judged],
            [r["yes_no"] == "yes" for r in judged],
        )
    )
    scored = [r for r in judged if r["p_yes"] is not None]
    if scored:
        truths = [yes_no(r["answers"]) == "yes" for r in scored]
        task_dict.update(probability_metrics(truths, [r["p_yes"] for r in scored], threshold))
        if threshold is not None:  # the same table at the threshold predict will use
            task_dict["operating_point"].update(
                per_kind_rates(
                    [r["negative_kind"] for r in scored],
                    [r["activity"] for r in scored],
                    truths,
                    [r["p_yes"] >= threshold["threshold"] for r in scored],
                )
            )
    return {
        "n": len(rows),
        "task": task_dict,
        "general": general or {"n": 0, "vqa_accuracy": None, "per_answer_type": {}},
        "collapse_alarm": bool(reasons),
        "collapse_reasons": reasons,
        "predictions": rows,
    }


def evaluate(
    request: EvalRequest,
    on_progress: Callable[[int, int], None] | None = None,
    publish: Publish | None = None,
) -> EvalResult:
    """Answer every record of the request's split with its checkpoint and score the answers.

    ``publish`` gets the split and the scored rows before eval.json is written; what it
    returns is recorded there (``curate eval`` writes them to the FiftyOne dataset the
    export came from).
    """
    from curation.validate.load import load_records

    image_root, out, config = request.image_root, request.out, request.config
    batch_size, max_false_alarm = request.batch_size, request.max_false_alarm
    checkpoint, data = Path(request.checkpoint), Path(request.data)
    if not data.is_file():
        raise UsageError(f"data file not found: {data}")
    records = load_records(data)
    provenance = load_provenance(data, records)
    root = Path(image_root) if image_root else default_image_root(data)
    # a model folder (curate quantize) keeps its own operating point, fitted on its
    # calibration set and listed in its manifest: eval writes beside it, into FOLDER/eval
    folder = checkpoint.is_dir()
    out_dir = Path(out) if out else (checkpoint / "eval" if folder else checkpoint.parent)
    weights = weights_file(checkpoint)
    check_eval_out(
        out_dir, root, [checkpoint, data, *_sidecars(data), *([config] if config else [])]
    )
    images = [root / r["image"] for r in records]
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} image(s) not found under {root}, e.g. {missing[0]}. "
            "Fix: --image-root DIR"
        )
    from curation.inference.scoring import answer

    model = load_model(checkpoint, config, request.trust_checkpoint)
    predictions: list[str] = []
    for start in range(0, len(records), batch_size):
        predictions += answer(
            model,
            images[start : start + batch_size],
            [r["text_input"] for r in records[start : start + batch_size]],
            batch_size,
        )
        if on_progress:
            on_progress(len(predictions), len(records))
    task_idx = [i for i, p in enumerate(provenance) if p.get("part", "task") == "task"]
    probs: list[float | None] = [None] * len(records)
    for i, p in zip(
        task_idx, _task_p_yes(model, images, records, task_idx, batch_size), strict=True
    ):
        probs[i] = p
    threshold = choose_threshold(
        model, data, image_root, records, provenance, probs, max_false_alarm, batch_size
    )
    report = EvalReport(
        checkpoint=str(checkpoint),
        data=str(data),
        image_root=str(root),
        **score(records, provenance, predictions, probs, threshold),
        data_sha256=sha256_file(data),
    )
    pushed = publish(data, report.predictions) if publish is not None else None
    if pushed:
        report.fiftyone = pushed
    files = write_report(out_dir, report)
    point = out_dir / OPERATING_POINT_FILE
    mine, chosen = chosen_for(point, weights) if point.is_file() else (None, "")
    notes = [n for n in (provenance_note(data),) if n]
    if threshold is not None and threshold.get("chosen_on") == "val.json":  # the val beside
        notes += [n for n in (provenance_note(data.with_name("val.json")),) if n]
    if threshold is not None:
        if mine is False:
            notes.append(
                f"replaced {point}, which was chosen for {chosen}: predict now has an "
                f"operating point for {checkpoint.name} only (eval the other checkpoint "
                "with its own --out to keep both)"
            )
        files.append(write_point(out_dir, threshold, weights))
    elif point.is_file() and not point.is_symlink() and mine is not False:
        # a stale point for this checkpoint must not steer predict; one chosen for another
        # checkpoint of the run (predict uses it only for that one) is kept
        point.unlink()
    return EvalResult(report, out_dir, files, notes)


#: Every file eval writes into --out.
EVAL_OUTPUTS = (
    "eval.json",
    "eval.md",
    OPERATING_POINT_FILE,
    "confusion.png",
    "yes_rate.png",
    "reliability.png",
    "accuracy_by_type.png",
    "false_alarms_by_kind.png",
)


def _sidecars(data: Path) -> list[Path]:
    val = data.with_name("val.json")
    return [
        data.with_name(f"{data.stem}.provenance.json"),
        val,
        val.with_name("val.provenance.json"),
    ]


def check_eval_out(out_dir: Path, image_root: Path, inputs: list[Path]) -> None:
    """Refuse an eval --out whose files would replace an input or land among the data.

    Raises:
        UsageError: ``out_dir`` is a file, is (or is inside) the image root or the
            project's raw/ folder, or one of eval's output files is an input.
    """
    from curation._io import (
        check_output_path,
        is_within,
        project_raw,
        real_path,
        refuse_replacing_a_special_file,
        same_file,
    )

    check_output_path(out_dir, "--out")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(
            f"--out {out_dir} is a file, not a folder. Fix: give --out a folder for eval.json."
        )
    real = real_path(out_dir)
    raws = [(raw, "the project's raw/ folder") for raw in (project_raw(), project_raw(real))]
    for folder, what in [(image_root, "the image root"), *raws]:
        if folder is not None and is_within(real, real_path(folder)):
            raise UsageError(
                f"--out {out_dir} is inside {what} {folder}: eval's files would land among the "
                "data. Fix: give --out another folder (default: the checkpoint's run folder)."
            )
    for name in EVAL_OUTPUTS:
        for item in inputs:
            if item.exists() and same_file(out_dir / name, item):
                raise UsageError(
                    f"--out {out_dir} would replace the input {item} with {name}. "
                    "Fix: give --out another folder; inputs are never changed."
                )
        # said before the scoring, not after it with half the outputs written
        target = out_dir / name
        refuse_replacing_a_special_file(
            target,
            "eval's output",
            f"remove it, or give --out another folder (eval writes {name}).",
        )
        if target.is_dir() and not target.is_symlink():
            raise UsageError(
                f"eval's output {target} is a folder. Fix: move it away, or give --out "
                "another folder."
            )


def _task_p_yes(
    model: Any, images: list[Path], records: list[dict[str, Any]], idx: list[int], batch_size: int
) -> list[float]:
    from curation.inference.scoring import p_yes

    return p_yes(
        model, [images[i] for i in idx], [records[i]["text_input"] for i in idx], batch_size
    )


def choose_threshold(
    model: Any,
    data: Path,
    image_root: str | Path | None,
    records: list[dict[str, Any]],
    provenance: list[dict[str, Any]],
    probs: list[float | None],
    max_false_alarm: float,
    batch_size: int = 32,
) -> dict[str, Any] | None:
    """The P(yes) threshold that keeps false alarms within budget on the validation split.

    The validation split is ``val.json`` beside ``data`` (an export's layout);
    without one (or when ``data`` is it) the threshold is chosen on ``data``
    itself, and ``chosen_on`` says so.
    """
    from curation.validate.load import load_records

    val = data.with_name("val.json")
    if val.is_file() and val.resolve() != data.resolve():
        v_records = load_records(val)
        v_prov = load_provenance(val, v_records)
        v_root = Path(image_root) if image_root else default_image_root(val)
        idx = [
            i
            for i, p in enumerate(v_prov)
            if p.get("part", "task") == "task" and yes_no(v_records[i]["answer"]) != "other"
        ]
        truths = [yes_no(v_records[i]["answer"]) == "yes" for i in idx]
        v_images = [v_root / r["image"] for r in v_records]
        scores = _task_p_yes(model, v_images, v_records, idx, batch_size)
        chosen_on = val.name
    else:
        scored = [
            (i, p)
            for i, p in enumerate(probs)
            if p is not None and yes_no(records[i]["answer"]) != "other"
        ]
        truths = [yes_no(records[i]["answer"]) == "yes" for i, _ in scored]
        scores = [p for _, p in scored]
        chosen_on = f"{data.name} (no separate validation split)"
    if not truths or all(truths) or not any(truths):
        return None  # a threshold needs both answers to trade one against the other
    found = threshold_at_false_alarm(truths, scores, max_false_alarm)
    return {**found, "chosen_on": chosen_on, "n": len(truths)}


def write_report(out_dir: Path, report: EvalReport) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "eval.json", report.to_dict())
    atomic_write_text(out_dir / "eval.md", summary_markdown(report))
    files = [out_dir / "eval.json", out_dir / "eval.md"]
    from curation.evaluate.plots import write_plots

    files += write_plots(out_dir, report)
    return files


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _show(kind: str, value: Any) -> str:
    if kind == "number":
        return "n/a" if value is None else f"{value:.3f}"
    if kind == "threshold":
        return threshold_text(value)
    return _pct(value)


def summary_markdown(report: EvalReport) -> str:
    t, g = report.task, report.general
    lines = [
        f"# Evaluation of `{Path(report.checkpoint).name}` on `{Path(report.data).name}`",
        "",
        f"{report.n} records: {t.get('n', 0)} task (yes/no), {g.get('n', 0)} general VQA.",
        "",
        "| figure | value |",
        "| --- | --- |",
        *(f"| {f.label} | {_show(f.kind, v)} |" for f, v in report.figures() if f.kind != "flag"),
        "",
    ]
    op = t.get("operating_point")
    if op:
        lines += [
            f"Operating point: {yes_rule(op['threshold'])}, chosen on "
            f"{op['chosen_on']} for at most {_pct(op['max_false_alarm'])} false alarms; on this "
            f"split it catches {_pct(op['recall'])} of the falls with "
            f"{_pct(op['false_alarm_rate'])} false alarms.",
            "",
        ]
    lines += per_kind_markdown(t)
    if report.collapse_alarm:
        lines += ["**COLLAPSE ALARM**: " + "; ".join(report.collapse_reasons), ""]
    else:
        lines += ["No collapse alarm.", ""]
    return "\n".join(lines)


def per_kind_markdown(task: dict[str, Any]) -> list[str]:
    """eval.md's table of false alarms per negative kind and misses per positive class."""
    alarms, misses = task.get("false_alarms_by_kind") or {}, task.get("misses_by_class") or {}
    if not alarms and not misses:
        return []
    op = task.get("operating_point") or {}
    at = op.get("false_alarms_by_kind") is not None
    head = "| truth | kind or class | records | said yes (generated) | false-alarm or miss rate |"
    head += " rate at the operating point |" if at else ""
    lines = [
        "False alarms per negative kind (truth no) and misses per positive class (truth yes):",
        "",
        head,
        "| --- | --- | --- | --- | --- |" + (" --- |" if at else ""),
    ]
    for truth, table, count, op_key in (
        ("no", alarms, "false_alarms", "false_alarms_by_kind"),
        ("yes", misses, "misses", "misses_by_class"),
    ):
        for label, row in table.items():
            said_yes = row[count] if truth == "no" else row["n"] - row[count]
            line = f"| {truth} | {_cell(label)} | {row['n']} | {said_yes} | {_pct(row['rate'])} |"
            if at:
                line += f" {_pct((op[op_key].get(label) or {}).get('rate'))} |"
            lines.append(line)
    return [*lines, ""]


def _cell(text: str) -> str:
    """User text (a negative kind, a class) as one Markdown table cell: a "|" or a line
    break in it would end the cell and shift the row."""
    return " ".join(str(text).splitlines()).replace("\\", "\\\\").replace("|", "\\|")


def _read_eval_report(path: Path) -> dict[str, Any]:
    """An ``eval.json`` as written by ``curate eval``, or an error naming the file.

    Raises:
        UsageError: the file does not exist.
        DataError: it is not JSON, or not an eval report.
    """
    kind = path_kind(path, "eval report")
    if kind == "dir":
        raise UsageError(
            f"{path} is a folder; --compare takes eval.json files (e.g. {path}/eval.json)"
        )
    if kind == "missing":
        raise UsageError(f"eval report not found: {path}")
    fix = "Fix: give the eval.json files that `curate eval CHECKPOINT --data SPLIT` writes."
    # a FIFO or a device is named, never read: it would hang or never end
    data = read_user_file(path, "eval report", fix)
    try:
        report = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not an eval.json (not UTF-8 text: binary?). {fix}") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DataError(f"{path}: not an eval.json (invalid JSON: {exc}). {fix}") from None
    if not isinstance(report, dict) or not all(
        isinstance(report.get(k), dict) for k in ("task", "general")
    ):
        found = (
            f"keys {', '.join(sorted(map(str, report))[:5]) or 'none'}"
            if isinstance(report, dict)
            else f"a JSON {type(report).__name__}"
        )
        raise DataError(
            f"{path}: not an eval.json (it holds {found}; an eval report has 'task' and "
            f"'general' sections). {fix}"
        )
    return report


@dataclass(frozen=True)
class ComparedReport:
    """One column of ``eval --compare``: the report and what it scored."""

    path: Path
    data: str | None  # the data file as eval recorded it
    n: int | None  # records scored
    data_sha256: str | None


@dataclass
class Comparison:
    """``eval --compare``: one column per eval.json, one row per figure, and warnings."""

    columns: list[ComparedReport]
    rows: list[tuple[Figure, list[Any]]]
    warnings: list[str]


def compare(paths: Sequence[str | Path]) -> Comparison:
    """Side-by-side figures of eval.json files, with a warning when they scored other data.

    Raises:
        UsageError: fewer than two files, or a file that does not exist.
        DataError: a file that is not an eval report, or one whose figures are not the
            numbers curate eval writes (each problem named).
    """
    if len(paths) < 2:
        raise UsageError("--compare needs at least two eval.json files")
    reports = [_read_eval_report(Path(p)) for p in paths]
    problems = [
        problem for p, r in zip(paths, reports, strict=True) for problem in report_problems(p, r)
    ]
    if problems:
        shown = "\n".join(problems[:10])
        more = f"\n... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise DataError(
            f"{shown}{more}\nFix: compare the eval.json files curate eval wrote (run "
            "curate eval again for a file that was edited)."
        )
    columns = [
        ComparedReport(Path(p), r.get("data"), r.get("n"), r.get("data_sha256"))
        for p, r in zip(paths, reports, strict=True)
    ]
    rows = [(f, [lookup(r, f.key) for r in reports]) for f in FIGURES]
    return Comparison(columns, rows, _data_warnings(columns))


def _kind_problem(kind: str, value: Any) -> str | None:
    """What a figure of this kind must be, when ``value`` is not that (None: it is)."""
    if value is None:
        return None
    if kind == "flag":
        return None if isinstance(value, bool) else "true or false"
    top = NEVER_YES if kind == "threshold" else 1.0
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and math.isfinite(value) and 0 <= value <= top:
        return None
    return (
        "a P(yes) threshold from 0 to 1 (or just above 1: never yes), or null"
        if (kind == "threshold")
        else "a number from 0 to 1, or null"
    )


def report_problems(path: str | Path, report: dict[str, Any]) -> list[str]:
    """Each figure of an eval.json that is not what curate eval writes, as one line."""
    out = []
    sections = {f.key.rsplit(".", 1)[0] for f in FIGURES if "." in f.key}
    for key in sorted(sections):  # task.operating_point: an object, or absent
        value = lookup(report, key)
        if value is not None and not isinstance(value, dict):
            out.append(f"{path}: {key} is {_json_text(value)}; curate eval writes an object there.")
    checks = [(f.key, f.kind) for f in FIGURES]
    for key, kind in checks:
        value = lookup(report, key)
        if expected := _kind_problem(kind, value):
            out.append(
                f"{path}: {key} is {_json_text(value)}; curate eval writes {expected} there."
            )
    for key in ("n", "task.n", "general.n"):
        value = lookup(report, key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            out.append(f"{path}: {key} is {_json_text(value)}; curate eval writes a count there.")
    for key in ("data", "data_sha256"):
        value = report.get(key)
        if value is not None and not isinstance(value, str):
            out.append(f"{path}: {key} is {_json_text(value)}; curate eval writes a string there.")
    return out + _operating_point_problems(path, report) + _confusion_problems(path, report)


def _operating_point_problems(path: str | Path, report: dict[str, Any]) -> list[str]:
    """``never_yes`` must be a flag that agrees with the threshold (true exactly above 1)."""
    op = lookup(report, "task.operating_point")
    if not isinstance(op, dict) or op.get("never_yes") is None:
        return []
    flag, threshold = op["never_yes"], op.get("threshold")
    if not isinstance(flag, bool):
        return [
            f"{path}: task.operating_point.never_yes is {_json_text(flag)}; curate eval "
            "writes true or false there."
        ]
    if (
        threshold is not None
        and _kind_problem("threshold", threshold) is None
        and flag != is_never_yes(threshold)
    ):
        return [
            f"{path}: task.operating_point.never_yes is {_json_text(flag)} but its "
            f"threshold is {_json_text(threshold)}; curate eval writes never_yes true "
            "exactly when the threshold is above 1."
        ]
    return []


def _confusion_problems(path: str | Path, report: dict[str, Any]) -> list[str]:
    """``task.confusion``: truth yes/no -> said yes/no/other -> a count; the counts add up
    to ``task.n``."""
    confusion = lookup(report, "task.confusion")
    if confusion is None:
        return []
    shape = (
        "an object {yes: {yes, no, other}, no: {yes, no, other}} of counts (whole numbers from 0)"
    )
    if not isinstance(confusion, dict) or set(confusion) != {"yes", "no"}:
        return [f"{path}: task.confusion is {_json_text(confusion)}; curate eval writes {shape}."]
    out = []
    for truth in ("yes", "no"):
        row = confusion[truth]
        if not isinstance(row, dict) or set(row) != {"yes", "no", "other"}:
            out.append(
                f"{path}: task.confusion.{truth} is {_json_text(row)}; curate eval writes {shape}."
            )
            continue
        for said, count in row.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                out.append(
                    f"{path}: task.confusion.{truth}.{said} is {_json_text(count)}; curate "
                    "eval writes a count (a whole number from 0) there."
                )
    n = lookup(report, "task.n")
    if not out and isinstance(n, int) and not isinstance(n, bool):
        total = sum(sum(confusion[t].values()) for t in ("yes", "no"))
        if total != n:
            out.append(
                f"{path}: task.confusion counts {total} records but task.n is {n}; curate "
                "eval writes one count per task record."
            )
    return out


def _json_text(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _data_warnings(columns: list[ComparedReport]) -> list[str]:
    """Why these columns may not be comparable: other data, other record counts."""
    names = [_column_name(i) for i in range(len(columns))]
    warnings = [
        f"{name} ({c.path}) does not say which data it scored: its figures may not be "
        "comparable with the others."
        for name, c in zip(names, columns, strict=True)
        if c.data is None
    ]
    known = [(name, c) for name, c in zip(names, columns, strict=True) if c.data is not None]
    if all(c.data_sha256 for _, c in known):
        keys = {c.data_sha256 for _, c in known}  # one file under two paths is one data
    else:
        keys = {c.data for _, c in known}
    if len(keys) > 1:
        warnings.append(
            "the reports scored different data: "
            + "; ".join(f"{name} {c.data} ({_n_text(c.n)})" for name, c in known)
            + ". A figure that differs may differ because of the data, not the model."
        )
    counts = {c.n for c in columns}
    if len(keys) <= 1 and len(counts) > 1:
        warnings.append(
            "the reports scored different numbers of records: "
            + ", ".join(f"{name} {_n_text(c.n)}" for name, c in zip(names, columns, strict=True))
            + "."
        )
    return warnings


def _n_text(n: int | None) -> str:
    return "n not recorded" if n is None else f"n={n}"


def _column_name(i: int) -> str:
    """A, B, ... Z, then 26, 27, ...: the column names of ``eval --compare``."""
    return chr(ord("A") + i) if i < 26 else str(i)
