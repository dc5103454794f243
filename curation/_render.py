"""rich rendering of library results for the CLI (no logic lives here)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from curation.fix import FixResult
from curation.report import ValidationReport


def validation_report(console: Console, report: ValidationReport, max_shown: int) -> None:
    shown = report.problems[:max_shown]
    if shown and not console.is_terminal:
        # piped or logged: one greppable line per problem, never wrapped
        for p in shown:
            console.print(f"{p.severity}: {p.render()}", highlight=False, markup=False,
                          soft_wrap=True)
    elif shown:
        table = Table(title="Problems", title_justify="left", show_lines=True, expand=True)
        table.add_column("level", no_wrap=True)
        table.add_column("file / record", ratio=2, overflow="fold")
        table.add_column("field", ratio=1, overflow="fold")
        table.add_column("problem and fix", ratio=5, overflow="fold")
        for p in shown:
            level = "[red]error[/]" if p.severity == "error" else "[yellow]warn[/]"
            fix = f"\n[cyan]Fix:[/] {escape(p.fix)}" if p.fix else ""
            table.add_row(level, escape(p.where()), p.field or "", escape(p.message) + fix)
        console.print(table)
    if len(report.problems) > len(shown):
        console.print(
            f"... {len(report.problems) - len(shown)} more not shown "
            "(--max-shown N, or --json REPORT for all)"
        )
    style = "green" if report.ok else "bold red"
    console.print(f"[{style}]{report.summary()}[/]", highlight=False, soft_wrap=True)


def fix_result(console: Console, result: FixResult, max_shown: int) -> None:
    console.print(
        f"[bold]--fix[/] wrote {result.out}: {result.records_out} of {result.records_in} "
        f"record(s), {len(result.changes)} change(s)"
    )
    for line in result.changes[:max_shown]:
        console.print(f"  fixed: {line}", highlight=False, markup=False, soft_wrap=True)
    if len(result.changes) > max_shown:
        console.print(f"  ... {len(result.changes) - max_shown} more changes")
    remaining = result.remaining
    if remaining is None:
        return
    if remaining.ok:
        console.print(f"[green]the fixed copy is valid[/] ({remaining.summary()})", soft_wrap=True)
    else:
        console.print("[bold red]could not fix:[/]")
        for p in remaining.errors[:max_shown]:
            console.print(f"  {p.render()}", highlight=False, markup=False, soft_wrap=True)
