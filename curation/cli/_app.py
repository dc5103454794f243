"""The ``curate`` typer app and what every command shares: error handling, exit codes,
SIGTERM handled like Ctrl-C, and the FiftyOne database chosen once before a command runs.

Each command group is a module of this package that registers its commands on ``app``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape

from curation import __version__
from curation.errors import CurationError

app = typer.Typer(
    name="curate",
    help="Curate, validate, mix and train yes/no VQA data for BLIP-2 with Salesforce LAVIS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # help text is plain text: rich markup would eat "[default: ...]" and print "<bool>" for
    # every flag (typer's rich help); click's own layout shows both right
    rich_markup_mode=None,
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def _error(text: str) -> None:
    # the text quotes user input (file names, keys, questions): never read as markup
    err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)


class _Terminated(BaseException):
    """SIGTERM, raised where the command is, so its clean-up runs as for Ctrl-C."""


@contextlib.contextmanager
def terminate_like_ctrl_c() -> Iterator[None]:
    """While a command runs, SIGTERM (kill, a scheduler's stop) unwinds it like Ctrl-C:
    temp folders removed, nothing half-written. Without this the process died on the
    spot and left OUT's temporary folder behind."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(
        signal.SIGTERM
    ) not in (signal.SIG_DFL, None):
        yield  # not ours to change (a thread, or a handler someone else installed)
        return

    owner = os.getpid()

    def terminated(signum: int, frame: Any) -> None:
        if os.getpid() != owner:  # a forked worker (multiprocessing) inherited this handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # it dies as it would have, silently
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise _Terminated

    signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def handles_errors(func: F) -> F:
    """Turn a ``CurationError`` into a red message and its exit code (never a traceback).

    The file system refusing (a full disk, a read-only folder) is exit 1 with the
    file named; Ctrl-C is exit 130 with one line.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with terminate_like_ctrl_c():
                # the database is chosen here, once, before any command's body runs: a body
                # that returned early (video ingest did) used FiftyOne's own database instead
                _use_database(kwargs.get("database_uri"))
                return func(*args, **kwargs)
        except _Terminated:
            _error("terminated (SIGTERM); outputs are written whole or not at all")
            raise typer.Exit(143) from None
        except CurationError as exc:
            _error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            names = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
            _error(
                f"{names or 'a file'}: {exc.strerror or exc}. Fix: check the path, its "
                "permissions and the free disk space."
            )
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            _error("interrupted (Ctrl-C); outputs are written whole or not at all")
            raise typer.Exit(130) from None
        except Exception as exc:
            from curation.curator.connection import lost_server_error

            lost = lost_server_error(exc)  # the database server went away mid-command
            if lost is None:
                raise
            _error(str(lost))
            raise typer.Exit(lost.exit_code) from None

    return cast(F, wrapper)  # functools.wraps kept func's signature (typer reads it)


def _version(value: bool) -> None:
    if value:
        console.print(f"falldown-curate {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Curate, validate, mix and train yes/no VQA data for BLIP-2 with Salesforce LAVIS."""


def _use_database(uri: str | None) -> None:
    from curation.curator.database import select_database

    select_database(uri)
