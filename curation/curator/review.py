"""`curate review`: the FiftyOne App on a dataset, with saved views for reviewers.

Reviewers tag samples in the App; every export reads the tags:
``exclude`` leaves a sample out, ``relabel:yes`` / ``relabel:no`` replace its
answer (recorded as review provenance).
"""

from __future__ import annotations

import re
from typing import Any

from curation.curator._fo import fiftyone, load_dataset
from curation.curator.checks import check_tags


def save_review_views(ds: Any) -> list[str]:
    """(Re)create the saved views: flagged, yes/no answers, one per source."""
    from fiftyone import ViewField as F

    views = {
        "flagged": ds.match_tags(list(check_tags())),
        "answer-yes": ds.match(F("answer") == "yes"),
        "answer-no": ds.match(F("answer") == "no"),
        "to-review": ds.match_tags(["exclude", "relabel:yes", "relabel:no", "unsure"]),
    }
    for source in ds.distinct("source"):
        slug = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")
        views[f"source-{slug}"] = ds.match(F("source") == source)
    for name, view in views.items():
        if ds.has_saved_view(name):
            ds.delete_saved_view(name)
        ds.save_view(name, view)
    return list(views)


def launch(name: str, port: int = 5151, address: str = "127.0.0.1", browser: bool = False) -> Any:
    """Start the App on dataset ``name``; return the session (``session.url``)."""
    fo = fiftyone()
    ds = load_dataset(name)
    save_review_views(ds)
    return fo.launch_app(ds, port=port, address=address, remote=not browser, auto=False)
