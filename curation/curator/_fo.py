"""Import FiftyOne lazily, quietly and offline."""

from __future__ import annotations

import os
from types import ModuleType

from curation.errors import MissingDependencyError

#: Review tags people put on samples in the App; every export reads them.
EXCLUDE_TAG = "exclude"
RELABEL_TAGS = {"relabel:yes": "yes", "relabel:no": "no"}


def fiftyone() -> ModuleType:
    """``import fiftyone`` with tracking off and no MongoDB-version nag."""
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
    try:
        import fiftyone as fo
    except ImportError as exc:
        raise MissingDependencyError("fiftyone", "fiftyone") from exc
    return fo


def load_dataset(name: str):  # noqa: ANN201 - a fiftyone Dataset
    from curation.errors import UsageError

    fo = fiftyone()
    if name not in fo.list_datasets():
        known = ", ".join(fo.list_datasets()) or "none yet"
        raise UsageError(
            f"no FiftyOne dataset named {name!r} (existing: {known}). "
            f"Fix: curate ingest SOURCE --dataset {name}"
        )
    return fo.load_dataset(name)
