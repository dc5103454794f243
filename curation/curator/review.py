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
from curation.errors import UsageError


def save_review_views(ds: Any) -> list[str]:
    """(Re)create the saved views: flagged, yes/no answers, one per source."""
    from fiftyone import ViewField as F

    from curation.answers import yes_no

    # "Yes." and "yeah" are yes too: the one answer rule, not the stored string
    fo = fiftyone()
    if "answer_yes_no" not in ds.get_field_schema():
        ds.add_sample_field("answer_yes_no", fo.StringField)
    ds.set_values("answer_yes_no", [yes_no(a) if a else None for a in ds.values("answers")])
    views = {
        "flagged": ds.match_tags(list(check_tags())),
        "answer-yes": ds.match(F("answer_yes_no") == "yes"),
        "answer-no": ds.match(F("answer_yes_no") == "no"),
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


def check_port_free(port: int, address: str = "127.0.0.1") -> None:
    """Refuse a port out of range or already taken, before FiftyOne starts its server."""
    import socket

    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port (1-65535). Fix: --port 5151")
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UsageError(
            f"--address {address!r} is not an address of this machine ({exc}). "
            "Fix: --address 127.0.0.1 (or 0.0.0.0 to serve on every interface)"
        ) from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(sockaddr)
        except OSError as exc:
            raise UsageError(
                f"cannot serve the App on {address}:{port}: {exc.strerror or exc} (is another "
                f"App or program using port {port}?). Fix: --port {port + 1 if port < 65535 else 5151}"
            ) from None


def review_target(name: str, view: str | None = None) -> Any:
    """The dataset (re-saving the reviewers' views), or its saved view ``view``.

    Raises:
        UsageError: no saved view of that name (the saved ones are listed).
    """
    ds = load_dataset(name)
    save_review_views(ds)
    if view is None:
        return ds
    if not ds.has_saved_view(view):
        known = ", ".join(sorted(ds.list_saved_views())) or "none"
        hint = (
            f" Fix: curate find-issues --dataset {name} --folds 3 --out OUT creates it."
            if view == "likely-mislabelled"
            else " Fix: --view with one of those."
        )
        raise UsageError(f"dataset {name!r} has no saved view {view!r} (saved: {known}).{hint}")
    return ds.load_saved_view(view)


def launch(
    name: str,
    port: int = 5151,
    address: str = "127.0.0.1",
    browser: bool = False,
    view: str | None = None,
) -> Any:
    """Start the App on dataset ``name`` (or its saved ``view``); return the session."""
    check_port_free(port, address)
    fo = fiftyone()
    target = review_target(name, view)
    return fo.launch_app(target, port=port, address=address, remote=not browser, auto=False)
