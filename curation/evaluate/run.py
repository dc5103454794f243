"""Run a checkpoint over a split and write ``eval.json``, plots and a summary."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation._io import atomic_write_json, atomic_write_text
from curation.answers import normalize_answer, to_yes_no
from curation.errors import DataError, UsageError
from curation.evaluate.metrics import collapse_reasons, general_metrics, task_metrics, vqa_accuracy


@dataclass
class EvalResult:
    report: dict[str, Any]
    out: Path
    files: list[Path]

    @property
    def collapse_alarm(self) -> bool:
        return bool(self.report["collapse_alarm"])


def default_image_root(data: Path) -> Path:
    from curation.images import default_image_root as rule

    return rule(data)


def load_provenance(data: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The mix's sidecar (``test.provenance.json`` beside ``test.json``), else all task."""
    sidecar = data.with_name(f"{data.stem}.provenance.json")
    if not sidecar.is_file():
        return [{"part": "task", "source": "task", "answer_type": "yes/no"} for _ in records]
    prov = {p["instance_id"]: p for p in json.loads(sidecar.read_text())}
    missing = [r["instance_id"] for r in records if r["instance_id"] not in prov]
    if missing:
        raise DataError(f"{sidecar} has no entry for instance_id(s) {missing[:5]}")
    return [prov[r["instance_id"]] for r in records]


def score(
    records: list[dict[str, Any]], provenance: list[dict[str, Any]], predictions: list[str]
) -> dict[str, Any]:
    """Every figure of ``eval.json`` from records, their provenance and the predictions."""
    rows = []
    for rec, prov, pred in zip(records, provenance, predictions, strict=True):
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
    return {
        "n": len(rows),
        "task": task.to_dict() if task else {**empty_task, "n": 0},
        "general": general or {"n": 0, "vqa_accuracy": None, "per_answer_type": {}},
        "collapse_alarm": bool(reasons),
        "collapse_reasons": reasons,
        "predictions": rows,
    }


def evaluate(
    checkpoint: str | Path,
    data: str | Path,
    image_root: str | Path | None = None,
    out: str | Path | None = None,
    config: str | Path | None = None,
    batch_size: int = 32,
    on_progress: Callable[[int, int], None] | None = None,
    fiftyone_field: str | None = "eval_prediction",
) -> EvalResult:
    """Answer every record of ``data`` with the checkpoint and score the answers."""
    from curation.validate import load_records

    checkpoint, data = Path(checkpoint), Path(data)
    if not data.is_file():
        raise UsageError(f"data file not found: {data}")
    records = load_records(data)
    provenance = load_provenance(data, records)
    root = Path(image_root) if image_root else default_image_root(data)
    images = [root / r["image"] for r in records]
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} image(s) not found under {root}, e.g. {missing[0]}. "
            "Fix: --image-root DIR"
        )
    from curation.training.predict import answer, load_model

    model = load_model(checkpoint, config)
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
    report = {
        "checkpoint": str(checkpoint),
        "data": str(data),
        "image_root": str(root),
        **score(records, provenance, predictions),
    }
    pushed = (
        push_to_fiftyone(data, report["predictions"], fiftyone_field) if fiftyone_field else None
    )
    if pushed:
        report["fiftyone"] = pushed
    out_dir = Path(out) if out else checkpoint.parent
    return EvalResult(report, out_dir, write_report(out_dir, report))


def push_to_fiftyone(
    data: Path, rows: list[dict[str, Any]], field: str = "eval_prediction"
) -> dict[str, Any] | None:
    """Write predictions into the FiftyOne dataset the export came from (if it did).

    Sets ``<field>`` (the answer) and ``<field>_correct`` on each sample, so
    reviewers can look at the mistakes in the App. The dataset is named by
    the export's manifest (``fiftyone_dataset``); rows without a sample id
    (general VQA from files) are skipped.
    """
    manifest = data.parent / "manifest.json"
    name = json.loads(manifest.read_text()).get("fiftyone_dataset") if manifest.is_file() else None
    by_id = {r["fiftyone_id"]: r for r in rows if r.get("fiftyone_id")}
    if not name or not by_id:
        return None
    from curation.curator._fo import fiftyone, load_dataset

    fo = fiftyone()
    ds = load_dataset(name)
    schema = ds.get_field_schema()
    for f, kind in ((field, fo.StringField), (f"{field}_correct", fo.BooleanField)):
        if f not in schema:
            ds.add_sample_field(f, kind)
    known = set(ds.values("id"))
    ids = [i for i in by_id if i in known]
    ds.set_values(field, {i: by_id[i]["prediction"] for i in ids}, key_field="id")
    ds.set_values(f"{field}_correct", {i: by_id[i]["score"] >= 1.0 for i in ids}, key_field="id")
    return {"dataset": name, "field": field, "samples": len(ids)}


def write_report(out_dir: Path, report: dict[str, Any]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "eval.json", report)
    atomic_write_text(out_dir / "eval.md", summary_markdown(report))
    files = [out_dir / "eval.json", out_dir / "eval.md"]
    from curation.evaluate.plots import write_plots

    files += write_plots(out_dir, report)
    return files


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def summary_markdown(report: dict[str, Any]) -> str:
    t, g = report["task"], report["general"]
    lines = [
        f"# Evaluation of `{Path(report['checkpoint']).name}` on `{Path(report['data']).name}`",
        "",
        f"{report['n']} records: {t['n']} task (yes/no), {g['n']} general VQA.",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| task yes-rate | {_pct(t['yes_rate'])} |",
        f"| task yes-rate on true negatives | {_pct(t['yes_rate_negatives'])} |",
        f"| task accuracy | {_pct(t['accuracy'])} |",
        f"| task balanced accuracy | {_pct(t['balanced_accuracy'])} |",
        f"| task F1 (yes) | {_pct(t['f1_yes'])} |",
        f"| task answers that are neither yes nor no | {_pct(t['other_rate'])} |",
        f"| general VQA accuracy | {_pct(g.get('vqa_accuracy'))} |",
        f"| general majority-answer baseline | {_pct(g.get('majority_baseline'))} |",
        "",
    ]
    if report["collapse_alarm"]:
        lines += ["**COLLAPSE ALARM**: " + "; ".join(report["collapse_reasons"]), ""]
    else:
        lines += ["No collapse alarm.", ""]
    return "\n".join(lines)


COMPARE_ROWS = [
    ("task yes-rate", "task.yes_rate"),
    ("task yes-rate on negatives", "task.yes_rate_negatives"),
    ("task accuracy", "task.accuracy"),
    ("task balanced accuracy", "task.balanced_accuracy"),
    ("task F1 (yes)", "task.f1_yes"),
    ("task other rate", "task.other_rate"),
    ("general VQA accuracy", "general.vqa_accuracy"),
    ("general majority baseline", "general.majority_baseline"),
    ("collapse alarm", "collapse_alarm"),
]


def compare(paths: list[str | Path]) -> list[tuple[str, list[Any]]]:
    """Rows of a side-by-side table: (figure, value per eval.json)."""
    if len(paths) < 2:
        raise UsageError("--compare needs at least two eval.json files")
    reports = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise UsageError(f"eval report not found: {path}")
        try:
            reports.append(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not an eval.json ({exc})") from None

    def get(report: dict[str, Any], dotted: str) -> Any:
        node: Any = report
        for key in dotted.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        return node

    return [(label, [get(r, key) for r in reports]) for label, key in COMPARE_ROWS]
