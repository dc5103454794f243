"""FiftyOne orchestration: export a reviewed dataset, write evaluation results back.

The rest of the toolkit works on files; everything that talks to a FiftyOne
dataset on behalf of export, mix or eval lives in ``curation.curator``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curation.errors import DataError
from curation.export import ExportOptions, ExportSummary, export_records


def export_dataset(
    dataset: str, out: str | Path, options: ExportOptions | None = None
) -> ExportSummary:
    """Export a FiftyOne dataset's task samples, with the reviewers' tags applied.

    Copies and near-copies found by ``curate check`` share a split group.
    """
    from curation.curator.records import records_from_dataset
    from curation.export import check_export_options

    opts = options or ExportOptions()
    check_export_options(opts)  # a bad --group-by or --split-file before FiftyOne starts
    found = records_from_dataset(dataset)
    if not found.task:
        raise DataError(f"dataset {dataset!r} has no labelled task samples to export")
    return export_records(
        found.task,
        out,
        opts,
        extra_manifest={"fiftyone_dataset": dataset, "review": found.review},
        command=opts.command(f"--dataset {dataset}"),
    )


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
