"""The ``curate`` command line: thin typer commands over the library.

Heavy packages (torch, lavis, fiftyone) are imported inside the commands
that need them, so ``curate --help`` stays fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from curation import __version__
from curation.errors import CurationError

app = typer.Typer(
    name="curate",
    help="Curate, validate, mix and train yes/no VQA data for BLIP-2 with Salesforce LAVIS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def handles_errors(func: F) -> F:
    """Turn a ``CurationError`` into a red message and its exit code (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CurationError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


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


@app.command()
@handles_errors
def validate(
    files: Annotated[list[Path], typer.Argument(help="LAVIS VQA annotation JSON file(s).")],
    image_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder the 'image' paths are relative to [default: each file's folder]."
        ),
    ] = None,
    no_images: Annotated[
        bool, typer.Option("--no-images", help="Check the schema only; do not open images.")
    ] = False,
    json_report: Annotated[
        Path | None, typer.Option("--json", help="Write every problem to this JSON report.")
    ] = None,
    fix: Annotated[
        Path | None,
        typer.Option(
            help="Write a corrected copy here (string answers -> lists, renamed keys, "
            "stripped whitespace, exact duplicates dropped). The input is never changed."
        ),
    ] = None,
    max_shown: Annotated[int, typer.Option(help="Show at most this many problems.", min=0)] = 20,
) -> None:
    """Check annotation files against the LAVIS VQA contract before any model is loaded.

    Exit code 0: valid (warnings allowed); 1: problems found; 2: usage error.
    """
    from curation import _render
    from curation.fix import fix_file
    from curation.validate import validate_files

    if fix is not None and len(files) != 1:
        raise typer.BadParameter("--fix takes exactly one input file", param_hint="--fix")
    report = validate_files(files, image_root=image_root, check_image_files=not no_images)
    _render.validation_report(console, report, max_shown)
    if json_report is not None:
        report.write_json(json_report)
        console.print(f"full report: {json_report}")
    if fix is not None:
        result = fix_file(files[0], fix, image_root=image_root, check_image_files=not no_images)
        _render.fix_result(console, result, max_shown)
        if result.remaining is not None and not result.remaining.ok:
            raise typer.Exit(1)
        return
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@handles_errors
def schema(
    out: Annotated[Path, typer.Option(help="Folder for the JSON Schema files.")] = Path("schemas"),
    check: Annotated[
        bool, typer.Option("--check", help="Only check that the files match the models.")
    ] = False,
) -> None:
    """Write (or --check) the JSON Schema files generated from the pydantic models."""
    from curation.schema_files import stale_json_schemas, write_json_schemas

    if check:
        stale = stale_json_schemas(out)
        if stale:
            console.print(
                f"[red]out of date:[/] {', '.join(stale)}. Fix: curate schema --out {out}"
            )
            raise typer.Exit(1)
        console.print("schemas are up to date")
        return
    for path in write_json_schemas(out):
        console.print(f"wrote {path}")


def run() -> None:  # pragma: no cover - console entry point helper
    sys.exit(app())
