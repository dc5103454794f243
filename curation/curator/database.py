"""Which MongoDB the curator uses, so a team can share one server.

Precedence: ``--database-uri`` (``select_database``), then the environment
variable ``FIFTYONE_DATABASE_URI``, then ``database_uri`` in the nearest
``curate.yaml``; with none of them, FiftyOne's own database (a ``mongod`` it
starts on ``FIFTYONE_DATABASE_DIR``). A password in a URI is never shown:
``mask_uri`` replaces it with ``***`` in every message.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from curation.errors import ConfigError, CurationError, UsageError

URI_ENV = "FIFTYONE_DATABASE_URI"
NAME_ENV = "FIFTYONE_DATABASE_NAME"
#: How long a command waits for an external server before it says it cannot reach it.
SERVER_TIMEOUT_MS = 5000
_SCHEMES = ("mongodb://", "mongodb+srv://")

#: ``--database-uri`` of this process (None: the environment, then curate.yaml).
_flag: str | None = None
#: Environment values this module set (for FiftyOne's App server, a child process), so a
#: later choice in the same process does not mistake them for the user's.
_ours: dict[str, str] = {}
#: The local database service's port, put aside while this process uses a URI.
_stashed_port: list[str] = []


@dataclass(frozen=True)
class DatabaseChoice:
    """The MongoDB a command uses and where that choice came from."""

    uri: str | None
    origin: str
    name: str | None = None

    @property
    def shown(self) -> str:
        """The URI with its password masked (or FiftyOne's own database)."""
        return mask_uri(self.uri) if self.uri else "FiftyOne's own database"


def mask_uri(uri: str) -> str:
    """``mongodb://user:secret@host/`` -> ``mongodb://user:***@host/``."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    at = rest.rfind("@")
    if at < 0:
        return uri
    user, colon, _ = rest[:at].partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{rest[at + 1 :]}"


def mask_secrets(text: str, uri: str | None) -> str:
    """``text`` with ``uri`` masked and its password (plain or %-decoded) replaced by ``***``."""
    if not uri:
        return text
    text = text.replace(uri, mask_uri(uri))
    _, sep, rest = uri.partition("://")
    at = rest.rfind("@")
    if sep and at >= 0:
        _, colon, password = rest[:at].partition(":")
        for secret in {password, unquote(password)} if colon else ():
            if secret:
                text = text.replace(secret, "***")
    return text


def check_uri(uri: str, origin: str) -> str:
    """Refuse a value that is not a MongoDB connection string, before anything connects."""
    text = uri.strip()
    if not text.startswith(_SCHEMES) or not re.sub(r"^[a-z+]+://([^/?]*@)?", "", text):
        raise UsageError(
            f"{origin}: {mask_uri(uri)!r} is not a MongoDB connection string. Fix: "
            "mongodb://HOST:27017 (with a user: mongodb://USER:PASSWORD@HOST:27017/?authSource=admin)"
        )
    uri_options(text, origin)
    return text


def _options_text(uri: str) -> str:
    """The ``?...`` part of a MongoDB URI, split the way pymongo splits it."""
    _, _, rest = uri.partition("://")
    hosts, _, path = rest.partition("/")
    return path.partition("?")[2] if path else hosts.partition("?")[2]


def uri_options(uri: str, origin: str) -> dict[str, Any]:
    """The URI's options as pymongo reads them (lower-case names); a bad one is a ``UsageError``.

    pymongo itself only warns about an unknown option, a bad value or an option given
    twice (a ``UserWarning`` with its own file and line) and connects without it.
    """
    text = _options_text(uri)
    if not text:
        return {}
    import warnings

    from pymongo.errors import ConfigurationError, InvalidURI
    from pymongo.uri_parser import split_options

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "Duplicate URI option": a warning even here
            return dict(split_options(text, validate=True, warn=False))
    except (ConfigurationError, InvalidURI, ValueError, TypeError, UserWarning) as exc:
        why = str(exc).split(" Refer to docstring.")[0].rstrip(".")
        raise UsageError(
            f"{origin}: {mask_uri(uri)!r} has an option MongoDB does not accept: "
            f"{mask_secrets(why, uri)}. Fix: correct or remove it (options are "
            "?name=value&name=value, e.g. ?authSource=admin&serverSelectionTimeoutMS=10000)"
        ) from None


def server_timeout(uri: str | None) -> float:
    """Seconds a command waits for the server: the URI's ``serverSelectionTimeoutMS``, or ours."""
    if uri:
        with contextlib.suppress(UsageError):
            seconds = uri_options(uri, "database_uri").get("serverselectiontimeoutms")
            if seconds is not None:
                return float(seconds)
    return SERVER_TIMEOUT_MS / 1000


def what_failed(cause: BaseException, uri: str | None) -> tuple[str, str]:
    """What a pymongo connection error means, and its fix: (why, fix), in plain words."""
    text = str(cause)
    detail = text.split(" (configured timeouts")[0].split(", Timeout:")[0]
    lowered = text.lower()
    if "ssl" in lowered or "tls" in lowered or "certificate" in lowered:
        return (
            f"the TLS handshake failed ({detail})",
            "use tls=true only with a server that has TLS on (mongod --tlsMode); for its "
            "certificate, tlsCAFile=CA.pem in the URI",
        )
    reach = (
        "check the host and port, that mongod runs and listens on an address this machine "
        "can reach (mongod --bind_ip), and the firewall"
    )
    if "connection refused" in lowered:
        return f"the server refused the connection: nothing listens there ({detail})", reach
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return f"the host name is unknown ({detail})", "check the host name in the URI"
    return f"no answer within {server_timeout(uri):g} s ({detail})", reach


def connection_failure(exc: BaseException | None) -> BaseException | None:
    """pymongo's ``ConnectionFailure`` in ``exc`` or its causes (FiftyOne wraps some)."""
    import sys

    if exc is None or "pymongo" not in sys.modules:
        return None
    from pymongo.errors import ConnectionFailure

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ConnectionFailure):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def connection_lost(exc: BaseException | None) -> bool:
    """Whether ``exc`` is (or was caused by) the database server not answering."""
    return connection_failure(exc) is not None


#: Characters MongoDB refuses in a database name (any platform), and its length limit.
_BAD_NAME_CHARS = '/\\. "$*<>:|?\x00'
_MAX_NAME_BYTES = 63


def check_database_name(name: str, origin: str, error: type[CurationError]) -> str:
    """Refuse a database name MongoDB would refuse, before anything connects."""
    bad = sorted({c for c in name if c in _BAD_NAME_CHARS})
    size = len(name.encode("utf-8"))
    if bad or size > _MAX_NAME_BYTES:
        why = (
            f"holds {', '.join(repr(c) for c in bad)}"
            if bad
            else f"is {size} bytes long (at most {_MAX_NAME_BYTES})"
        )
        raise error(
            f"{origin}: database name {name!r} {why}, which MongoDB refuses. Fix: letters, "
            "digits, '_' and '-', e.g. falls_team"
        )
    return name


def select_database(uri: str | None) -> None:
    """Use ``uri`` (the ``--database-uri`` option) for this process; None: env, then curate.yaml."""
    global _flag
    _flag = check_uri(uri, "--database-uri") if uri is not None else None


def resolve_database(
    flag: str | None = None, environ: dict[str, str] | None = None, cwd: Path | None = None
) -> DatabaseChoice:
    """Flag > ``FIFTYONE_DATABASE_URI`` > ``curate.yaml`` > FiftyOne's own database."""
    environ = dict(os.environ) if environ is None else environ
    env_uri = _users(environ, URI_ENV)
    env_name = _users(environ, NAME_ENV)
    settings = None
    from curation.schemas.project import find_project_file, load_project_settings

    path = find_project_file(cwd)
    if path is not None:
        settings = load_project_settings(path)
    if env_name:
        name = check_database_name(env_name, NAME_ENV, UsageError)
    elif settings is not None and settings.database_name:
        name = check_database_name(settings.database_name, f"database_name in {path}", ConfigError)
    else:
        name = None
    if flag:
        return DatabaseChoice(check_uri(flag, "--database-uri"), "--database-uri", name)
    if env_uri:
        return DatabaseChoice(check_uri(env_uri, URI_ENV), URI_ENV, name)
    if settings is not None and settings.database_uri:
        where = f"database_uri in {path}"
        return DatabaseChoice(check_uri(settings.database_uri, where), where, name)
    return DatabaseChoice(None, "FiftyOne's own database", name)


def _users(environ: dict[str, str], key: str) -> str | None:
    value = environ.get(key) or None
    return None if value is not None and _ours.get(key) == value else value


def apply_database(fo: Any) -> DatabaseChoice:
    """Point an imported FiftyOne at the chosen database (before it connects).

    FiftyOne reads ``FIFTYONE_DATABASE_URI`` when it is imported; a choice made
    later is set on ``fo.config`` and in the environment (the App's server is a
    child process). If this process was connected elsewhere, it disconnects first.
    """
    import fiftyone.core.odm.database as fod

    choice = resolve_database(_flag)
    for key, value in ((URI_ENV, choice.uri), (NAME_ENV, choice.name)):
        if value and os.environ.get(key) != value:
            os.environ[key] = _ours[key] = value
        elif not value and key in _ours:
            mine = _ours.pop(key)
            if os.environ.get(key) == mine:
                del os.environ[key]
    own = _own_config(fo)
    wanted_uri = choice.uri or own.database_uri
    wanted_name = choice.name or own.database_name
    if (fo.config.database_uri, fo.config.database_name) != (wanted_uri, wanted_name):
        fod._disconnect()
        # FiftyOne caches one Dataset object per name, holding the old client's collections:
        # reused after the switch it fails ("Cannot use MongoClient after close"), or is a
        # same-named dataset of the other database
        fo.Dataset._instances.clear()
        # ... and its repository factory keeps the first database handle it was given (used
        # when a dataset is deleted, e.g. ingest --overwrite): drop it with the client
        import fiftyone.factory.repo_factory as repo_factory

        repo_factory._db = None
        repo_factory.RepositoryFactory.repos.clear()
        for key in ("host", "port", "serverSelectionTimeoutMS"):
            fod._connection_kwargs.pop(key, None)
        fo.config.database_uri = wanted_uri
        fo.config.database_name = wanted_name
    if wanted_uri:
        # a local service's port must not be applied to the server named by the URI
        port = os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
        if port is not None:
            _stashed_port[:] = [port]
        if "serverselectiontimeoutms=" not in wanted_uri.lower():
            fod._connection_kwargs["serverSelectionTimeoutMS"] = SERVER_TIMEOUT_MS
    elif _stashed_port:
        os.environ.setdefault("FIFTYONE_PRIVATE_DATABASE_PORT", _stashed_port.pop())
    return choice


def _own_config(fo: Any) -> Any:
    """FiftyOne's configuration without this module's environment values."""
    import fiftyone.core.config as foc

    saved = {k: os.environ.pop(k) for k in list(_ours) if os.environ.get(k) == _ours[k]}
    try:
        # ~/.fiftyone/config.json and the environment; FiftyOne lists the installed
        # packages under a bare ``except:`` that would swallow a Ctrl-C
        return _holding_ctrl_c(foc.load_config)
    finally:
        os.environ.update(saved)


def _holding_ctrl_c(call: Any) -> Any:
    """``call()`` with a Ctrl-C during it held back and raised once it returns."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return call()
    held: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda *args: held.append(args))
    try:
        result = call()
    finally:
        signal.signal(signal.SIGINT, previous)
    if held and callable(previous):
        previous(*held[0])  # Python's handler raises KeyboardInterrupt
    return result


def current_choice() -> DatabaseChoice:
    """The database this process would use now (no connection made)."""
    return resolve_database(_flag)
