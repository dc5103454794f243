"""``curate validate`` and ``curate schema``: check annotation files and the JSON Schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curation.cli._app import app, console, handles_errors
from curation.errors import UsageError


@app.command()
@handles_errors
def validate(
    files: Annotated[list[Path], typer.Argument(help="LAVIS VQA annotation JSON file(s).")],
    image_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder the 'image' paths are relative to [default: each file's folder, or "
            "its images/ sub-folder when more of the file's first 20 image paths exist there]."
        ),
    ] = None,
    no_images: Annotated[
        bool, typer.Option("--no-images", help="Check the schema only; do not open images.")
    ] = False,
    json_report: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write every problem to this JSON report (at most 10,000 of each kind; "
            "the rest counted).",
        ),
    ] = None,
    fix: Annotated[
        Path | None,
        typer.Option(
            help="Write a corrected copy here (string answers -> lists, renamed keys, "
            "stripped whitespace, yes/no labels -> yes/no, duplicate records dropped). "
            "The input is never changed."
        ),
    ] = None,
    max_shown: Annotated[int, typer.Option(help="Show at most this many problems.", min=0)] = 20,
) -> None:
    """Check annotation files against the LAVIS VQA contract before any model is loaded.

    Exit code 0: valid (warnings allowed); 1: problems found; 2: usage error.
    """
    from curation import _render
    from curation._io import check_report_path, refuse_overwriting_inputs, same_file
    from curation.fix import fix_file
    from curation.report import ValidationReport
    from curation.validate import validate_files

    if fix is not None and len(files) != 1:
        raise typer.BadParameter("--fix takes exactly one input file", param_hint="--fix")
    if json_report is not None:
        refuse_overwriting_inputs(json_report, files, "--json")
        check_report_path(
            json_report, "validate", ValidationReport.REPORT_KEYS, "Fix: --json a new file."
        )
        if fix is not None and same_file(json_report, fix):
            raise UsageError(
                f"--json {json_report} and --fix {fix} are the same file. "
                "Fix: give the report and the corrected copy two paths."
            )
    if fix is not None:
        refuse_overwriting_inputs(fix, files, "--fix")
    report = validate_files(files, image_root=image_root, check_image_files=not no_images)
    _render.validation_report(console, report, max_shown)
    if json_report is not None:
        report.write_json(json_report)
        console.print(f"full report: {json_report}", markup=False, highlight=False)
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

    from rich.markup import escape

    from curation._io import shell_quote
    from curation.schema_files import stale_json_schemas, write_json_schemas

    if check:
        if not out.is_dir():
            raise UsageError(
                f"--check: {out} is not a folder of schema files. Fix: --out the schemas/ folder "
                "(or curate schema --out DIR to write them)."
            )
        stale = stale_json_schemas(out)
        if stale:
            console.print(
                f"[red]out of date:[/] {', '.join(stale)}. Fix: curate schema --out "
                f"{escape(shell_quote(str(out)))}"
            )
            raise typer.Exit(1)
        console.print("schemas are up to date")
        return
    for path in write_json_schemas(out):
        console.print(f"wrote {path}", markup=False, highlight=False)
