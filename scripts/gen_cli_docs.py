"""Write docs/cli.md, the command reference, from the ``curate`` typer app.

Walks the click command that typer builds from ``curation.cli.app`` and writes,
for every command, its usage line, its help text and a table of its arguments
and options. The output depends only on the code: no terminal width, no colour,
commands in name order. ``tests/test_docs.py`` fails when the checked-in file
differs from what this script writes.

    python scripts/gen_cli_docs.py            # rewrite docs/cli.md
    python scripts/gen_cli_docs.py --check    # exit 1 when docs/cli.md is stale
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

import typer.main

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = ROOT / "docs" / "cli.md"
PROG = "curate"
REGENERATE = "python scripts/gen_cli_docs.py (or: make docs)"


def _cell(text: str) -> str:
    """One table cell: a single line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _rows(params: list[Any], ctx: Any) -> list[str]:
    """Table rows from each parameter's help record: what ``--help`` prints for it."""
    rows = []
    for param in params:
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        rows.append(f"| `{_cell(names)}` | {_cell(help_text)} |")
    return rows


def _command_section(name: str, command: Any, parent: Any) -> list[str]:
    ctx = command.context_class(command, info_name=name, parent=parent)
    lines = [f"## `{PROG} {name}`", ""]
    pieces = command.collect_usage_pieces(ctx)
    lines += ["```", " ".join([PROG, name, *pieces]), "```", ""]
    if command.help:
        lines += [inspect.cleandoc(command.help).strip(), ""]
    # typer ships its own copy of click (``typer._click``): parameters are told apart by
    # their ``param_type_name``, not by isinstance against the click package
    params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    for kind, title in (("argument", "argument"), ("option", "option")):
        rows = _rows([p for p in params if p.param_type_name == kind], ctx)
        if rows:
            lines += [f"| {title} | help |", "| --- | --- |", *rows, ""]
    return lines


def render() -> str:
    """The whole of docs/cli.md as the code defines it today."""
    from curation.cli import app

    group = typer.main.get_command(app)
    root = group.context_class(group, info_name=PROG)
    lines = [
        "# Command reference",
        "",
        f"<!-- Generated from the code by scripts/gen_cli_docs.py; do not edit. "
        f"Regenerate: {REGENERATE}. -->",
        "",
    ]
    if group.help:
        lines += [inspect.cleandoc(group.help).strip(), ""]
    commands = getattr(group, "commands", {})
    visible = sorted(n for n, c in commands.items() if not c.hidden)
    lines += ["| command | what it does |", "| --- | --- |"]
    for name in visible:
        summary = _cell(commands[name].get_short_help_str(limit=200))
        lines.append(f"| [`{PROG} {name}`](#{PROG}-{name}) | {summary} |")
    lines.append("")
    for name in visible:
        lines += _command_section(name, commands[name], root)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/cli.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = CLI_DOC.read_text(encoding="utf-8") if CLI_DOC.exists() else ""
        if current != text:
            print(f"{CLI_DOC.relative_to(ROOT)} is stale. Regenerate: {REGENERATE}")
            return 1
        return 0
    CLI_DOC.parent.mkdir(parents=True, exist_ok=True)
    CLI_DOC.write_text(text, encoding="utf-8")
    print(f"wrote {CLI_DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
