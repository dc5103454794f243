"""rich rendering of library results for the CLI (no logic lives here)."""

from __future__ import annotations

import os
import shlex
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from curation._io import shell_quote
from curation.evaluate.report import threshold_text, yes_rule
from curation.fix import FixResult
from curation.report import ValidationReport
from curation.schemas.questions import TASK_QUESTION

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from curation.curator.checks import CheckReport
    from curation.curator.find_issues import FindIssuesResult
    from curation.curator.ingest import IngestResult
    from curation.curator.video import VideoIngestResult
    from curation.evaluate.run import Comparison, EvalResult
    from curation.export import ExportSummary
    from curation.mix import MixResult
    from curation.training.train import TrainEvent, TrainResult


def validation_report(console: Console, report: ValidationReport, max_shown: int) -> None:
    shown = report.problems[:max_shown]
    if shown and not console.is_terminal:
        # piped or logged: one greppable line per problem, never wrapped
        for p in shown:
            console.print(
                f"{p.severity}: {p.render()}", highlight=False, markup=False, soft_wrap=True
            )
    elif shown:
        table = Table(title="Problems", title_justify="left", show_lines=True, expand=True)
        table.add_column("level", no_wrap=True)
        table.add_column("file / record", ratio=2, overflow="fold")
        table.add_column("field", ratio=1, overflow="fold")
        table.add_column("problem and fix", ratio=5, overflow="fold")
        for p in shown:
            level = "[red]error[/]" if p.severity == "error" else "[yellow]warn[/]"
            fix = f"\n[cyan]Fix:[/] {escape(p.fix)}" if p.fix else ""
            table.add_row(level, escape(p.where()), escape(p.field or ""), escape(p.message) + fix)
        console.print(table)
    total = len(report.problems) + report.omitted_errors + report.omitted_warnings
    if total > len(shown):
        kept = " (the report keeps the first 10,000 of each kind)" if report.omitted else ""
        console.print(
            f"... {total - len(shown)} more not shown "
            f"(--max-shown N, or --json REPORT for all){kept}",
            highlight=False,
        )
    style = "green" if report.ok else "bold red"
    console.print(f"[{style}]{report.summary()}[/]", highlight=False, soft_wrap=True)


def fix_result(console: Console, result: FixResult, max_shown: int) -> None:
    console.print(
        f"[bold]--fix[/] wrote {escape(result.out)}: {result.records_out} of "
        f"{result.records_in} record(s), {len(result.changes)} change(s)",
        highlight=False,
        soft_wrap=True,
    )
    for line in result.changes[:max_shown]:
        console.print(f"  fixed: {line}", highlight=False, markup=False, soft_wrap=True)
    if len(result.changes) > max_shown:
        console.print(f"  ... {len(result.changes) - max_shown} more changes")
    remaining = result.remaining
    if remaining is None:
        return
    if remaining.ok:
        console.print(
            f"[green]the fixed copy is valid[/] ({escape(remaining.summary())})", soft_wrap=True
        )
    else:
        console.print("[bold red]could not fix:[/]")
        for p in remaining.errors[:max_shown]:
            console.print(f"  {p.render()}", highlight=False, markup=False, soft_wrap=True)


def export_summary(console: Console, summary: ExportSummary) -> None:
    table = Table(title=f"Export {escape(str(summary.out))}", title_justify="left")
    table.add_column("split")
    table.add_column("part/source/answer type")
    table.add_column("records", justify="right")
    for split, counts in summary.counts.items():
        for key, n in counts.items():
            table.add_row(split, escape(key), str(n))
    console.print(table)
    groups_line(console, summary.manifest.get("groups"))
    records = summary.manifest.get("records", {})
    console.print(
        f"wrote {sum(records.values())} records ({', '.join(f'{k} {v}' for k, v in records.items())}), "
        f"{summary.images} images, lavis.yaml and manifest.json to {summary.out}",
        soft_wrap=True,
        markup=False,
    )
    console.print(
        f"next: curate train {shell_quote(f'{summary.out}/lavis.yaml')}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def groups_line(console: Console, groups: dict[str, Any] | None) -> None:
    """How export or mix grouped the splits: by what, fallbacks, groups per split."""
    if not groups:
        return
    by = groups["group_by"]
    per = groups.get("groups_per_split", {})
    named = groups.get("keys_per_split", {}) if by != "content" else {}
    how = f"as {groups['split_file']} says" if groups.get("split_file") else "dealt by share"
    text = f"grouped by {by} ({groups.get('chosen', '')}), {how}: " + ", ".join(
        f"{s} {per.get(s, 0)} groups ({named.get(s, 0)} {by}s)" for s in per
    )
    if groups.get("fallback_to_video"):
        text += f"; {groups['fallback_to_video']} records without a {by} grouped by their video"
    if groups.get("content_only"):
        text += f"; {groups['content_only']} records with no {by} or video grouped by content"
    near = groups.get("near_copies") or {}
    if near.get("pairs"):
        text += (
            f"; {near['pairs']} near-copy pairs (perceptual hashes within {near['hamming']} "
            "bits) kept in one split"
        )
    console.print(text, highlight=False, markup=False, soft_wrap=True)
    from rich.text import Text

    for warning in groups.get("warnings", []):
        console.print(Text(f"WARNING: {warning}", style="bold yellow"), soft_wrap=True)


class TrainProgress:
    """A rich progress bar fed by the training loop's events."""

    def __init__(self, console: Console) -> None:
        import sys

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        # LAVIS prints go to the run's log while training (stdout is redirected):
        # keep writing to the stream that is stdout now
        self.console = Console(
            file=sys.stdout, force_terminal=console.is_terminal, width=console.width
        )
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task_id: Any = None
        self.epoch = -1

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def update(self, event: TrainEvent) -> None:
        if event.kind == "start":
            d = event.data
            self.console.print(
                f"training on {d['device']}: {d['trainable']:,} trainable parameters, "
                f"{d['epochs']} epoch(s); run folder {d['run_dir']}",
                soft_wrap=True,
                markup=False,
            )
            report = d.get("load_report")
            if report:
                self.console.print(
                    f"loaded {report['path']}: {report['loaded']} tensors, "
                    f"{len(report['missing'])} missing, {len(report['unexpected'])} unexpected",
                    soft_wrap=True,
                    markup=False,
                )
        elif event.kind == "step":
            if event.epoch != self.epoch:
                self.epoch = event.epoch
                self.task_id = self.progress.add_task(
                    "train", total=event.steps, epoch=event.epoch, loss="-"
                )
            self.progress.update(self.task_id, completed=event.step, loss=f"{event.loss:.4f}")
        elif event.kind == "eval":
            d = event.data
            acc = d.get("agg_metrics")
            shown = f"{acc:.2f}" if isinstance(acc, (int, float)) else "n/a"
            self.console.print(f"  {d['split']} accuracy (LAVIS VQA eval): {shown}")


def train_result(console: Console, result: TrainResult) -> None:
    if result.secondary_node is not None:
        console.print(
            f"[green]done[/]: node {result.secondary_node}'s processes finished; node 0 writes "
            f"the run (checkpoints, losses, manifest) to {escape(str(result.run_dir))}",
            soft_wrap=True,
        )
        return
    first = f"{result.losses[0]:.4f}" if result.losses else "-"
    last = f"{result.losses[-1]:.4f}" if result.losses else "-"
    console.print(
        f"[green]done[/] {result.steps} steps in {result.seconds:.1f} s on {result.device} "
        f"(loss {first} -> {last}, peak RSS {result.peak_rss_mb:.0f} MiB)",
        soft_wrap=True,
    )
    for ckpt in result.checkpoints:
        console.print(f"  checkpoint: {ckpt}", highlight=False, soft_wrap=True, markup=False)
    if result.checkpoints:
        console.print(
            f"next: curate predict {shell_quote(str(result.checkpoints[-1]))} IMAGE --question "
            f"{shlex.quote(TASK_QUESTION)}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


def predictions(
    console: Console, answers: list[dict[str, Any]], report: dict[str, Any], question: str
) -> None:
    console.print(
        f"loaded {report['path']}: {report['loaded']} tensors, {len(report['missing'])} missing, "
        f"{len(report['unexpected'])} unexpected"
        + (
            f", {len(report['missing_frozen'])} frozen (from the pretrained weights)"
            if report.get("missing_frozen")
            else ""
        ),
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    table = Table(title=escape(question), title_justify="left")
    # a name up to 48 characters stays on one line however long the generated text is
    longest = max((len(str(row["image"])) for row in answers), default=5)
    table.add_column("image", overflow="fold", min_width=min(longest, 48))
    table.add_column("answer", overflow="fold")
    table.add_column("P(yes)", justify="right", no_wrap=True)
    table.add_column("generated", overflow="fold")
    for row in answers:
        p_yes = row.get("p_yes")
        table.add_row(
            escape(row["image"]),
            escape(row["answer"]),
            "n/a" if p_yes is None else f"{p_yes:.6f}",  # 3 digits hid which side of it
            escape(row.get("generated", row["answer"])),
        )
    console.print(table)
    point = next((row["threshold"] for row in answers if row.get("threshold") is not None), None)
    note = report.get("operating_point") or ""
    if point is not None and point > 1:
        console.print(
            f"answered no to every image: the threshold ({escape(note)}) is above 1, eval's "
            "'never yes' point (no threshold met the false-alarm budget on val)",
            soft_wrap=True,
        )
    elif point is not None:
        console.print(
            f"answered yes when P(yes) >= {threshold_text(point)} ({escape(note)})",
            soft_wrap=True,
        )
    elif note:
        console.print(escape(note), soft_wrap=True, highlight=False)


def mix_summary(console: Console, result: MixResult) -> None:
    plan, summary = result.plan, result.summary
    if result.dataset is not None and result.review is not None:
        r = result.review
        console.print(
            f"dataset {result.dataset}: {result.task_records} task records; review: "
            f"{r.get('excluded', 0)} excluded, {r.get('relabelled', 0)} relabelled, "
            f"{r.get('unlabelled', 0)} unlabelled left out",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    comp = plan.composition()
    keys = sorted({k for c in comp.values() for k in c})
    table = Table(title=f"Mix composition ({escape(str(summary.out))})", title_justify="left")
    table.add_column("part/source/answer type")
    for split in comp:
        table.add_column(split, justify="right")
    for key in keys:
        table.add_row(escape(key), *(str(comp[s].get(key, 0)) for s in comp))
    table.add_row("[bold]total", *(f"[bold]{sum(comp[s].values())}" for s in comp))
    console.print(table)
    for split, achieved in ((s, plan.achieved(s)) for s in comp if plan.splits[s]):
        d = plan.dropped[split]
        other = f", {d['other']} other" if d.get("other") else ""
        console.print(
            f"{split}: general share {achieved['general_share']:.3f} (target {plan.ratio:g}), "
            f"task yes-share {achieved['yes_share']:.3f} (target {plan.yes_share:g}); dropped for "
            f"balance: {d['yes']} yes, {d['no']} no{other}",
            highlight=False,
            soft_wrap=True,
        )
        if plan.distractors(split):
            console.print(
                f"{split}: {plan.distractors(split)} distractor questions about task images, "
                f'answered "no" (--distractor-share {plan.distractor_share:g} of the general '
                "records; 0 for none)",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        if plan.hard_negative_share:
            h = plan.hard_negatives(split)
            console.print(
                f"{split}: look-alike negatives {h['lookalike']} of {h['lookalike'] + h['other']} "
                f'"no" records (at least {plan.hard_negative_share:g} asked)',
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    groups_line(console, plan.groups)
    console.print(
        f"wrote {summary.out} ({summary.images} images, composition.png, manifest.json, "
        f"lavis.yaml)",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )
    console.print(
        f"next: curate train {shell_quote(f'{summary.out}/lavis.yaml')}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@contextmanager
def progress_bar(console: Console, label: str) -> Iterator[Callable[[int, int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task_id = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task_id, completed=done, total=total)

        yield update


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "[red]YES[/]", False: "no", None: "n/a"}[value]
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape(str(value))  # from a file: never markup


def eval_result(console: Console, result: EvalResult) -> None:
    r = result.report
    t, g = r.task, r.general
    table = Table(
        title=f"eval: {r.n} records ({t.get('n', 0)} task, {g.get('n', 0)} general)",
        title_justify="left",
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    for figure, value in r.figures():
        if figure.kind == "threshold" and isinstance(value, float):
            table.add_row(figure.label, threshold_text(value))
        elif figure.kind != "flag":
            table.add_row(figure.label, _fmt(value))
    for kind, acc in (g.get("per_answer_type") or {}).items():
        table.add_row(f"  general {escape(kind)}", _fmt(acc))
    console.print(table)
    if t.get("confusion"):
        c = t["confusion"]
        console.print(
            f"confusion (truth -> said yes/no/other): yes {c['yes']['yes']}/"
            f"{c['yes']['no']}/{c['yes']['other']}, no {c['no']['yes']}/{c['no']['no']}/"
            f"{c['no']['other']}",
            highlight=False,
        )
    for truth, key, what in (
        ("no", "false_alarms_by_kind", "false alarms"),
        ("yes", "misses_by_class", "misses"),
    ):
        by_class = t.get(key) or {}
        if by_class:
            count = "false_alarms" if truth == "no" else "misses"
            console.print(
                f"{what} per {'negative kind' if truth == 'no' else 'positive class'}: "
                + ", ".join(
                    f"{k} {v[count]}/{v['n']} ({v['rate']:.0%})" for k, v in by_class.items()
                ),
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    op = t.get("operating_point") or {}
    if op.get("threshold") is not None:
        chosen = op.get("chosen_on") or "?"
        console.print(
            f"operating point: {yes_rule(op['threshold'])}, chosen on {chosen} "
            f"(there: recall {_fmt(op.get('chosen_recall'))}, false alarms "
            f"{_fmt(op.get('chosen_false_alarm_rate'))}); on {os.path.basename(r.data)}: recall "
            f"{_fmt(op.get('recall'))}, false alarms {_fmt(op.get('false_alarm_rate'))}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    if r.collapse_alarm:
        for reason in r.collapse_reasons:
            console.print(f"[bold red]COLLAPSE ALARM:[/] {escape(reason)}", soft_wrap=True)
    else:
        console.print("[green]no collapse alarm[/]")
    console.print(
        f"wrote {', '.join(str(f) for f in result.files)}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )


def compare_table(console: Console, paths: list[Path], comparison: Comparison) -> None:
    from rich.text import Text

    columns = comparison.columns
    names = [chr(ord("A") + i) if i < 26 else str(i) for i in range(len(paths))]
    for name, c in zip(names, columns, strict=True):
        scored = "data not recorded" if c.data is None else f"scored {c.data}"
        count = "n not recorded" if c.n is None else f"n={c.n}"
        console.print(
            f"{name}: {c.path} ({scored}, {count})", highlight=False, soft_wrap=True, markup=False
        )
    table = Table(title="eval comparison", title_justify="left")
    table.add_column("figure", no_wrap=True)
    for name in names:
        table.add_column(name, justify="right")
    table.add_row("data file", *(escape(os.path.basename(c.data or "?")) for c in columns))
    table.add_row("records (n)", *("?" if c.n is None else str(c.n) for c in columns))
    for figure, values in comparison.rows:
        if figure.kind == "threshold":
            table.add_row(figure.label, *(threshold_text(v) for v in values))
        else:
            table.add_row(figure.label, *(_fmt(v) for v in values))
    console.print(table)
    for warning in comparison.warnings:
        console.print(Text(f"WARNING: {warning}", style="bold yellow"), soft_wrap=True)


def _relabelled_and_held(result: IngestResult) -> str:
    """The summary's tail: ', 3 relabelled, 1 removed (...); it holds 40 yes, 90 no, 8 unsure'."""
    text = f", {result.relabelled} relabelled" if result.relabelled else ""
    if result.removed:
        text += f", {result.removed} removed (the source no longer gives them)"
    names = {"general": "general VQA", "other": "other answers"}
    held = ", ".join(f"{n} {names.get(what, what)}" for what, n in result.holds.items())
    return text + (f"; it holds {held}" if held else "")


def ingest_result(console: Console, result: IngestResult) -> None:

    from rich.text import Text

    # names and paths are user text: printed as they are, never as rich markup
    for warning in result.warnings:
        console.print(
            Text(warning, style="bold yellow" if warning.startswith("WARNING") else "yellow"),
            soft_wrap=True,
        )
    console.print(
        f"ingested {result.source} into FiftyOne dataset {result.dataset!r}: {result.added} added, "
        f"{result.already_present} already there, {result.total} in the dataset"
        + (f" ({result.unsure} unsure, unlabelled until reviewed)" if result.unsure else "")
        + _relabelled_and_held(result)
        + f"; checking and hashing images {result.hash_seconds:.1f} s, adding {result.add_seconds:.1f} s",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    console.print(
        f"next: curate check --dataset {shlex.quote(result.dataset)}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _group_report(console: Console, report: CheckReport) -> None:
    """Group leaks (subjects, videos in two splits), per-split balance and negative kinds."""
    from rich.text import Text

    for by, leaks in report.group_leaks.items():
        if not leaks:
            console.print(f"no {by} in two splits", highlight=False, markup=False)
            continue
        shown = "; ".join(
            f"{g['group']} ({', '.join(f'{s} {n}' for s, n in g['splits'].items())})"
            for g in leaks[:10]
        )
        more = f" and {len(leaks) - 10} more" if len(leaks) > 10 else ""
        console.print(
            Text(f"LEAK: {len(leaks)} {by}(s) in two or more splits: {shown}{more}", style="red"),
            soft_wrap=True,
        )
    if not report.split_balance or set(report.split_balance) == {"(none)"}:
        return
    kinds = {
        split: ", ".join(f"{k} {n}" for k, n in report.negative_kinds.get(split, {}).items())
        for split in report.split_balance
    }
    console.print(
        _answer_table(
            "answers and negative kinds per split",
            "split",
            report.split_balance,
            ("negative kinds", kinds),
        )
    )


def _answer_table(
    title: str,
    first: str,
    rows: dict[str, dict[str, int]],
    extra: tuple[str, dict[str, str]] | None = None,
) -> Table:
    """Answer counts per row (a source, a split) with the yes share; ``extra``: one more column."""
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    answers = sorted({a for c in rows.values() for a in c})
    table.add_column(first)
    for a in answers:
        table.add_column(a, justify="right")
    table.add_column("yes share", justify="right")
    if extra is not None:
        table.add_column(extra[0])
    for name, counts in rows.items():
        yn = counts.get("yes", 0) + counts.get("no", 0)
        share = f"{counts.get('yes', 0) / yn:.0%}" if yn else "-"
        cells: list[Text | str] = [Text(name), *(str(counts.get(a, 0)) for a in answers), share]
        if extra is not None:
            cells.append(Text(extra[1].get(name, "")))
        table.add_row(*cells)
    return table


def video_ingest_result(console: Console, result: VideoIngestResult) -> None:
    from rich.text import Text

    for skipped in result.skipped:
        console.print(
            Text(f"skipped {skipped.video}: {skipped.reason}", style="yellow"), soft_wrap=True
        )
    r = result.ingest
    console.print(
        f"ingested {r.source} ({result.format}) into FiftyOne dataset {r.dataset!r}: "
        f"{result.videos} video(s), {result.frames} frame(s) sampled"
        + (f" ({result.unsure} unsure, unlabelled until reviewed)" if result.unsure else "")
        + (f", {result.unlabelled} in no segment (not ingested)" if result.unlabelled else "")
        + f"; {r.added} added, {r.already_present} already there, {r.total} in the dataset"
        + _relabelled_and_held(r)
        + "; "
        f"decoding, writing and hashing frames {result.decode_seconds:.1f} s, adding "
        f"{r.add_seconds:.1f} s",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    if result.per_class:
        console.print(
            "frames per class (labelled/unsure): "
            + ", ".join(f"{n} {c['labelled']}/{c['unsure']}" for n, c in result.per_class.items()),
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
    for warning in result.empty_yes:
        console.print(Text(f"warning: {warning}", style="bold yellow"), soft_wrap=True)
    console.print(
        f"frames: {result.frames_dir}; videos with their segments (the App's video player): "
        f"dataset {result.videos_dataset!r}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    console.print(
        f"next: curate check --dataset {shlex.quote(r.dataset)}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def check_report(console: Console, report: CheckReport) -> None:

    from rich.text import Text

    table = Table(
        title=Text(f"checks on {report.dataset} ({report.samples} samples)"),
        title_justify="left",
    )
    table.add_column("check (tag)")
    table.add_column("samples", justify="right")
    table.add_column("groups", justify="right")
    for tag, n in report.counts.items():
        groups = report.groups.get(tag)
        table.add_row(tag, str(n), str(len(groups)) if groups is not None else "")
    console.print(table)
    if report.brain_exact_duplicates is not None:
        console.print(
            f"FiftyOne Brain compute_exact_duplicates: {report.brain_exact_duplicates} sample(s) "
            "share their bytes with another (several questions about one file count here too)",
            highlight=False,
            soft_wrap=True,
        )
    console.print(_answer_table("answers per source", "source", report.balance))
    _group_report(console, report)
    console.print(
        f"next: curate review --dataset {shlex.quote(report.dataset)} (saved view 'flagged')",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def label_issues_result(console: Console, result: FindIssuesResult, max_shown: int = 20) -> None:
    """`curate find-issues`: the flagged samples, highest score first, and what comes next."""
    from rich.text import Text

    flagged = result.flagged
    how = f"{len(result.folds)} fold models" if result.mode == "folds" else str(result.checkpoint)
    console.print(
        f"cleanlab flagged {len(flagged)} of {len(result.samples)} scored samples of "
        f"{result.dataset} (out-of-sample P(yes) from {how})",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if result.barely_learned:
        auc = "n/a" if result.roc_auc is None else f"{result.roc_auc:.2f}"
        fix = (
            "train the folds longer (e.g. run.max_epoch=30) or a larger preset (--model small)"
            if result.mode == "folds"
            else "use a better-trained checkpoint"
        )
        console.print(
            f"warning: the model(s) that scored these samples barely learned the task "
            f"(out-of-sample ROC-AUC of P(yes) against the labels: {auc}; 0.5 is chance): "
            f"the flags below are close to random. Fix: {fix}.",
            style="yellow",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    skipped = {k: v for k, v in result.skipped.items() if v}
    if skipped:
        shown = ", ".join(f"{v} {k}" for k, v in skipped.items())
        console.print(f"not scored: {shown}", highlight=False, markup=False, soft_wrap=True)
    if flagged:
        table = Table(title=Text("likely mislabelled"), title_justify="left")
        for col in ("score", "label", "P(yes)", "scored by", "file"):
            table.add_column(col, justify="right" if col in ("score", "P(yes)") else "left")
        for s in flagged[:max_shown]:
            table.add_row(
                f"{s.score:.3f}", s.label, f"{s.p_yes:.3f}", s.scored_by, Text(s.filepath)
            )
        console.print(table)
        if len(flagged) > max_shown:
            console.print(f"... and {len(flagged) - max_shown} more (see --json)")
    if result.out is not None:
        console.print(
            f"fold exports, runs and {result.out}/label_issues.json are in {result.out}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    console.print(
        f"next: curate review --dataset {shlex.quote(result.dataset)} --view {result.view} "
        "(tag relabel:yes / relabel:no / exclude), then export and train again",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
