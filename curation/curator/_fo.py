"""Import FiftyOne lazily, quietly and offline; connect to its database safely."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shlex
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from curation.errors import CurationError, DataError, MissingDependencyError, UsageError

if TYPE_CHECKING:
    from curation.curator._lock import DatabaseLock

#: Review tags people put on samples in the App; every export reads them.
EXCLUDE_TAG = "exclude"
RELABEL_TAGS = {"relabel:yes": "yes", "relabel:no": "no"}
#: Prefix of the temporary (non-persistent) dataset a new ingest fills before it is named.
PARTIAL_PREFIX = "curate-partial-"
#: Connection attempts when FiftyOne's database does not come up (two starts racing).
CONNECT_ATTEMPTS = 3


def fiftyone() -> ModuleType:
    """``import fiftyone`` with tracking off and no MongoDB-version nag, connected."""
    fo = import_fiftyone()
    connect(fo)
    return fo


def import_fiftyone() -> ModuleType:
    """``import fiftyone`` with tracking off, pointed at the chosen database, not yet connected."""
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
    try:
        import fiftyone as fo
    except ImportError as exc:
        raise MissingDependencyError("fiftyone", "fiftyone") from exc
    from curation.curator.database import apply_database

    apply_database(fo)  # --database-uri > FIFTYONE_DATABASE_URI > curate.yaml
    return fo


@contextlib.contextmanager
def _start_lock(fo: Any) -> Iterator[None]:
    """Serialise database start-up between curate processes sharing a database folder.

    Two FiftyOne clients that start together each launch a ``mongod`` on the same folder;
    the loser waits a minute and fails with ``ServiceListenTimeout``. Holding a lock file
    while connecting lets the second process find and join the first one's database.
    """
    if fo.config.database_uri:  # an external MongoDB: nothing is started here
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder = Path(fo.config.database_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fh = open(folder / ".curate-start.lock", "a")  # noqa: SIM115 - held across the yield
    except OSError:
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@functools.cache
def _close_at_exit() -> None:
    """Close the database clients when the command ends (once per process).

    Left to the interpreter's shutdown, pymongo and the database service's process
    handle print ResourceWarnings with 40-line stacks after a command's last line:
    noise that reads like a crash.
    """

    def close() -> None:
        import fiftyone.core.odm.database as fod

        # the service's process outlives this one by design (FiftyOne stops it when its
        # last client is gone). Its handle, collected at shutdown, would warn "subprocess
        # N is still running": mark it settled, as nothing here waits on it any more.
        with contextlib.suppress(Exception):
            handle = getattr(fod._db_service.child, "_Popen__subproc", None)
            if handle is not None and handle.poll() is None:
                handle.returncode = 0
        with contextlib.suppress(Exception):
            fod._disconnect()
        with contextlib.suppress(Exception):
            import mongoengine

            mongoengine.disconnect_all()

    atexit.register(close)


def abandon_connection() -> None:
    """Drop the database clients of a server that went away, without waiting on it.

    Closing a client ends its sessions on the server first, and FiftyOne's exit
    hook asks the server for its clients: each waits out the server-selection
    timeout when nothing answers.
    """
    import sys

    fod = sys.modules.get("fiftyone.core.odm.database")
    if fod is None:
        return
    atexit.unregister(fod._delete_non_persistent_datasets_if_allowed)
    clients = [fod._client]
    with contextlib.suppress(Exception):
        import mongoengine.connection as mec

        clients += list(mec._connections.values())
    for client in clients:
        with contextlib.suppress(Exception):
            client._topology.pop_all_sessions()  # nothing to end on a server that is gone
    with contextlib.suppress(Exception):
        fod._disconnect()
    # datasets cached with the closed client's collections would fail when used again
    # in this process (a notebook): the next use loads them afresh
    with contextlib.suppress(Exception):
        import fiftyone.factory.repo_factory as repo_factory

        sys.modules["fiftyone.core.dataset"].Dataset._instances.clear()
        repo_factory._db = None
        repo_factory.RepositoryFactory.repos.clear()


def connect(fo: Any, attempts: int = CONNECT_ATTEMPTS, backoff: float = 1.0) -> None:
    """Connect to FiftyOne's database, retrying with backoff if it does not come up."""
    import fiftyone.core.odm.database as fod
    from fiftyone.core.service import ServiceListenTimeout
    from pymongo.errors import ConnectionFailure

    if not fod._is_client_closed(fod._client):
        return  # connected already
    _close_at_exit()
    if fo.config.database_uri:
        _connect_to_server(fo, fod)
        _remove_dead_partials_quietly(fo)
        return
    for attempt in range(1, attempts + 1):
        try:
            with _start_lock(fo):
                _start_database(fo, fod)
                fod.get_db_conn()
            _remove_dead_partials_quietly(fo)
            return
        except (ServiceListenTimeout, ConnectionFailure) as exc:
            last = exc
            # forget the half-made connection and the half-started service, so the next
            # try starts or joins one afresh
            with contextlib.suppress(Exception):
                fod._disconnect()
            service = fod._db_service
            fod._db_service = None
            os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
            with contextlib.suppress(Exception):
                if service is not None:
                    service.stop()
            if attempt < attempts:
                time.sleep(backoff * 2 ** (attempt - 1))
    folder = fo.config.database_dir
    where = "at database_uri" if fo.config.database_uri else f"in {folder}"
    raise DataError(
        f"FiftyOne's database (MongoDB {where}) did not start after {attempts} tries "
        f"({type(last).__name__}); another FiftyOne process was probably starting it at "
        "the same time. Fix: run the command again in a moment; if it keeps failing, look "
        f"at {Path(folder) / 'log' / 'mongo.log'} and stop any stale mongod that uses it."
    )


def _connect_to_server(fo: Any, fod: Any) -> None:
    """Connect to a MongoDB server FiftyOne does not start; one clear error within seconds."""
    import pymongo.errors as pe

    from curation.curator.database import (
        current_choice,
        mask_secrets,
        mask_uri,
        uri_options,
        what_failed,
    )

    uri = fo.config.database_uri
    choice = current_choice()
    origin = choice.origin if choice.uri == uri else "FiftyOne's config (database_uri)"
    uri_options(uri, origin)  # pymongo would only warn about a bad option, and drop it
    error: type[CurationError]
    try:
        fod.get_db_conn()
        return
    except (pe.InvalidURI, pe.ConfigurationError, ValueError) as exc:  # parsed by pymongo
        why, fix, error = f"it is not a usable MongoDB URI ({exc})", "correct the URI", UsageError
    except Exception as exc:  # FiftyOne wraps pymongo's errors in ConnectionError/RuntimeError
        cause = exc.__cause__ or exc
        with contextlib.suppress(Exception):
            fod._disconnect()
        error = DataError
        if isinstance(cause, pe.OperationFailure) and cause.code in (13, 18):
            why = f"the server refused the login ({cause})"
            fix = (
                "check the user and password in the URI (percent-encode @ : / in them) and "
                "its authSource (?authSource=admin when the user was made in admin)"
            )
        elif isinstance(cause, pe.ServerSelectionTimeoutError | pe.ConnectionFailure):
            why, fix = what_failed(cause, uri)
        elif isinstance(cause, pe.PyMongoError):
            why = f"{type(cause).__name__}: {cause}"
            fix = "check the server and the user's rights (readWrite on the database)"
        else:
            raise
    raise error(
        f"cannot use the MongoDB server {mask_uri(uri)} (from {origin}): "
        f"{mask_secrets(why, uri)}. Fix: {fix}; or leave the URI out to use FiftyOne's "
        "own database."
    ) from None


def _start_database(fo: Any, fod: Any) -> None:
    """Start or join the database service of *this* database folder.

    FiftyOne itself joins any running database service of the same user, whatever
    folder it serves, so two tools (or test runs) with different
    ``FIFTYONE_DATABASE_DIR`` share one database, and a service that is shutting
    down makes a new client wait a minute and fail. Here only a service whose
    ``mongod --dbpath`` is this folder is joined; otherwise a new one is started.
    """
    if (
        fo.config.database_uri
        or os.environ.get("FIFTYONE_PRIVATE_DATABASE_PORT")
        or os.environ.get("FIFTYONE_DISABLE_SERVICES")
        or fod._db_service is not None
    ):
        return  # FiftyOne knows where its database is
    service = _folder_database_service()()
    fod._db_service = service  # set first: a failed start is stopped by the caller
    os.environ["FIFTYONE_PRIVATE_DATABASE_PORT"] = str(service.port)


def _folder_database_service() -> type:
    import fiftyone.core.service as fos
    import fiftyone.service.util as fosu
    import psutil

    class FolderDatabaseService(fos.DatabaseService):
        def start(self) -> None:
            command = self.command
            folder = command[command.index("--dbpath") + 1]
            for process in fosu.find_processes_by_args(self._service_args):
                try:
                    args = process.cmdline()
                    if args[args.index("--dbpath") + 1] != folder:
                        continue
                    if fosu.send_ipc_message(process, ("register", os.getpid())) is True:
                        self.attached = True
                        self.child = process
                        return
                except (ValueError, IndexError, OSError, psutil.Error):
                    continue
            fos.Service.start(self)  # a service of our own, for this folder

    return FolderDatabaseService


def partial_dataset_name(lock: DatabaseLock) -> str:
    """The temporary name of a new dataset that the holder of ``lock`` fills.

    The name carries the lock's owner: while that owner holds its lock (renewed every
    few seconds) the dataset is being filled; once the owner is gone it is debris.
    """
    return f"{PARTIAL_PREFIX}{lock.owner}-{uuid.uuid4().hex[:8]}"


def remove_dead_partials(fo: Any) -> list[str]:
    """Delete the temporary datasets of ingests that died (killed, or their machine lost).

    A partial dataset whose ingest holds its database lock is left alone. This needs
    only ``readWrite`` on the database: FiftyOne's own clean-up of temporary datasets
    (on exit, when it is the server's only client) counts every user's connections
    with ``$currentOp``, which a shared server's users are rarely allowed.
    """
    import logging

    import fiftyone.core.odm.database as fod

    from curation.curator._lock import dead_holder

    removed = []
    for name in fo.list_datasets(glob_patt=f"{PARTIAL_PREFIX}*"):
        owner = name[len(PARTIAL_PREFIX) :].split("-")[0]
        with dead_holder(owner, f"curate: removing {name}, left by an ingest that died") as dead:
            if not dead:
                continue
            log = logging.getLogger(fod.__name__)
            level = log.level
            log.setLevel(logging.ERROR)  # it logs each collection it drops
            try:
                fod.delete_dataset(name)
            finally:
                log.setLevel(level)
            fo.Dataset._instances.pop(name, None)
            removed.append(name)
    return removed


def _remove_dead_partials_quietly(fo: Any) -> None:
    """``remove_dead_partials``, for every command: a user who may not delete, or a server
    that stops answering meanwhile, leaves them for the next command."""
    from pymongo.errors import PyMongoError

    with contextlib.suppress(PyMongoError):
        remove_dead_partials(fo)


def user_datasets(fo: Any) -> list[str]:
    """Dataset names, without the temporary ones an unfinished ingest leaves."""
    return [n for n in fo.list_datasets() if not n.startswith(PARTIAL_PREFIX)]


def check_dataset_name(name: str) -> str:
    """Refuse a dataset name FiftyOne cannot store; return its slug."""
    import_fiftyone()
    if not name.strip():
        raise UsageError(
            "--dataset is empty. Fix: --dataset falls (any name with a letter or digit)"
        )
    if name != name.strip():
        raise UsageError(
            f"--dataset {name!r} starts or ends with spaces. Fix: --dataset {name.strip()!r}"
        )
    if name.startswith(PARTIAL_PREFIX):
        raise UsageError(f"--dataset names starting with {PARTIAL_PREFIX!r} are reserved")
    from fiftyone.core.utils import to_slug

    try:
        return to_slug(name)
    except ValueError:
        raise UsageError(
            f"--dataset {name!r} cannot be a FiftyOne dataset name: FiftyOne needs "
            "1 to 1551 letters, digits or '-_.+ ' in it. Fix: --dataset falls"
        ) from None


def slug_clash(fo: Any, name: str) -> str | None:
    """The existing dataset whose FiftyOne slug equals ``name``'s (another name), if any."""
    from fiftyone.core.utils import to_slug

    slug = check_dataset_name(name)
    for other in user_datasets(fo):
        if other != name and to_slug(other) == slug:
            return other
    return None


#: Fields every curator command reads; ``curate ingest`` writes them.
CURATOR_FIELDS = ("question", "answers", "source", "sha256", "phash", "split")


def load_dataset(name: str, require_curator_fields: bool = True) -> Any:  # a fo.Dataset
    fo = fiftyone()
    if not name.strip():
        raise UsageError("--dataset is empty. Fix: --dataset NAME (see: curate ingest --help)")
    existing = user_datasets(fo)
    if name not in existing:
        known = ", ".join(repr(n) for n in existing) or "none yet"
        hint = ""
        with contextlib.suppress(UsageError):
            clash = slug_clash(fo, name)
            if clash is not None:
                hint = f" Did you mean --dataset {clash!r}?"
        raise UsageError(
            f"no FiftyOne dataset named {name!r} (existing: {known}).{hint} "
            f"Fix: curate ingest SOURCE --dataset {shlex.quote(name)}"
        )
    ds = fo.load_dataset(name)
    if require_curator_fields:
        missing = [f for f in CURATOR_FIELDS if f not in ds.get_field_schema()]
        if missing:
            raise DataError(
                f"FiftyOne dataset {name!r} was not made by curate ingest: it has no "
                f"{', '.join(missing)} field(s). Fix: curate ingest SOURCE --dataset NEW_NAME "
                "(images, questions and answers go in through curate ingest)"
            )
    return ds
