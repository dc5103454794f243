"""The database connection as a whole: ``fiftyone`` connected for a script, a lost server as one error.

Above ``database`` (which server, from where) and ``_fo`` (importing and
connecting FiftyOne), so neither needs the other's caller.
"""

from __future__ import annotations

import contextlib
from typing import Any

from curation.curator._fo import abandon_connection, fiftyone
from curation.curator.database import (
    connection_failure,
    current_choice,
    mask_secrets,
    mask_uri,
    what_failed,
)
from curation.errors import CurationError, DataError


def connected_fiftyone() -> Any:
    """``fiftyone``, connected to the database ``curate`` would use here; for your own scripts.

    A plain ``import fiftyone`` joins any database service already running for your
    user, whatever its ``FIFTYONE_DATABASE_DIR``; this one joins only the service of
    that folder (or starts it), and follows ``--database-uri``'s fallbacks
    (``FIFTYONE_DATABASE_URI``, then ``curate.yaml``).
    """
    return fiftyone()


def lost_server_error(exc: BaseException) -> CurationError | None:
    """A command's lost connection to its MongoDB server, as one error; None for anything else.

    The server stopped or killed while a command runs surfaces as whichever pymongo
    error the next operation met (``AutoReconnect``, ``_OperationCancelled``, a
    server-selection timeout), often wrapped by FiftyOne.
    """
    cause = connection_failure(exc)
    if cause is None:
        return None
    abandon_connection()  # closing it politely would wait out the timeout twice more
    choice = current_choice()
    uri = choice.uri
    if uri:
        server = f"the MongoDB server {mask_uri(uri)} (from {choice.origin})"
    else:
        server = "FiftyOne's own database (the mongod it started"
        with contextlib.suppress(Exception):
            import fiftyone as fo

            server += f" on {fo.config.database_dir}"
        server += ")"
    why, fix = what_failed(cause, uri)
    return DataError(
        f"lost {server} during the command: {mask_secrets(why, uri)}; the command did "
        f"not finish. Fix: {fix}; then run it again (an ingest adds only what is missing; "
        "a new dataset it had begun is removed by the next command)."
    )
