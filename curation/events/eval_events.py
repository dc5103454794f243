"""Run ``curate eval-events``: watch the labelled videos, match alerts to falls, write the report.

Every video is watched by ``watch_video`` (the frames, sampling and engine ``curate
watch`` uses), so the figures are those of the alerts ``curate watch`` would raise. With
``tune_on="val"`` the event parameters are first chosen on the split file's validation
videos (``curation.events.tune``), never on the videos reported.

Outputs in ``out``: ``events_eval.json``, ``events_eval.md``, ``timelines/<video>.png``
and, when tuned, ``events.yaml`` (also written beside the model, where ``curate watch``
reads it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from curation.events.evaluate import (
    Tolerance,
    VideoTruth,
    falls_within,
    select_videos,
    summarise,
)
from curation.events.params import EventParams
from curation.events.scorers import Scorer
from curation.events.watch import (
    EVENTS_BESIDE_MODEL,
    VideoWatch,
    check_output_folder,
    off_note,
    resolve_threshold,
    watch_video,
    with_threshold,
)

REPORT_JSON = "events_eval.json"
REPORT_MD = "events_eval.md"


@dataclass
class EventEvalResult:
    report: dict[str, Any]
    out: Path
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tuned_params: Path | None = None


def _watch_all(
    videos: Sequence[str],
    root: Path,
    scorer: Scorer,
    params: EventParams,
    threshold: float,
    batch_size: int,
    on_video: Callable[[str, int, int], None] | None,
) -> list[VideoWatch]:
    out = []
    for k, video in enumerate(videos):
        if on_video is not None:
            on_video(video, k, len(videos))
        out.append(
            watch_video(root / video, scorer, params, threshold, name=video, batch_size=batch_size)
        )
    return out


def eval_events(
    labels: str | Path,
    videos_root: str | Path,
    scorer: Scorer,
    params: EventParams,
    out: str | Path,
    *,
    split_file: str | Path | None = None,
    subjects: Sequence[str] | None = None,
    tune_on: str | None = None,
    tolerance: Tolerance | None = None,
    max_false_alarms_per_hour: float = 1.0,
    model: str | Path | None = None,
    batch_size: int = 16,
    on_video: Callable[[str, int, int], None] | None = None,
    threshold: float | None = None,
) -> EventEvalResult:
    """Evaluate alerts on the labelled videos; see the module for what is written.

    ``threshold`` (``--threshold``) wins over the event parameters' ``on_threshold`` and
    the operating point, as in ``curate watch``.

    Raises:
        UsageError: ``tune_on`` without a split file, or other than ``val``, or with
            ``threshold``; no threshold; a selection with no video.
        DataError: a label file that cannot be read (every bad row named).
    """
    from curation._io import atomic_write_json, atomic_write_text
    from curation.class_map import load_class_map
    from curation.curator.video import read_segments
    from curation.events.evaluate import truth_from_segments
    from curation.events.timeline import write_timeline

    tolerance = tolerance or Tolerance()
    labels, root, out = Path(labels), Path(videos_root), Path(out)
    check_output_folder(out, "--out")
    if tune_on is not None and tune_on != "val":
        raise UsageError(f"--tune-on {tune_on!r}: the only choice is val")
    if tune_on is not None and split_file is None:
        raise UsageError(
            "--tune-on val needs --split-file: it tunes on the file's val videos and reports "
            "on its test videos. Fix: add --split-file FILE ({split: [dataset/subject, ...]})"
        )
    if tune_on is not None and threshold is not None:
        raise UsageError(
            f"--threshold {threshold:g} with --tune-on val: tuning chooses the threshold on "
            "the val videos. Fix: drop --threshold to tune, or --tune-on to report at it"
        )
    explicit = threshold
    _, segments = read_segments(labels, root, load_class_map())
    truths = truth_from_segments(segments)
    split_path = Path(split_file) if split_file is not None else None
    report_split = "test"
    chosen = select_videos(truths, split_path, subjects, report_split)
    if tune_on is None or params.on_threshold is not None or scorer.threshold is not None:
        threshold, note = resolve_threshold(params, scorer, explicit)
        params = with_threshold(params, explicit)
    else:  # tuning chooses on_threshold: no operating point needed
        threshold, note = 0.5, "tuned on val"
    result = EventEvalResult({}, out)
    tuned: dict[str, Any] | None = None
    if tune_on == "val":
        from curation.events.tune import tune_params

        val = select_videos(truths, split_path, None, "val")
        overlap = sorted(set(val) & set(chosen))
        if overlap:  # never tune on what is reported
            raise UsageError(f"video {overlap[0]} is in both val and test of {split_file}")
        watched_val = _watch_all(val, root, scorer, params, threshold, batch_size, on_video)
        usable = []
        for w in watched_val:
            if not w.problem:
                truth, warned = falls_within(truths[w.video], w.seconds(params.fps))
                result.warnings += warned
                usable.append((truth, w))
        params, tuned = tune_params(usable, params, threshold, tolerance, max_false_alarms_per_hour)
        tuned["videos"] = [w.video for w in watched_val]
        threshold, note = resolve_threshold(params, scorer)
    watched = _watch_all(chosen, root, scorer, params, threshold, batch_size, on_video)
    rows: list[tuple[VideoTruth, Sequence[Any], float]] = []
    for w in watched:
        if w.problem:
            result.skipped.append(f"{w.video}: {w.problem}")
            continue
        truth, warned = falls_within(truths[w.video], w.seconds(params.fps))
        result.warnings += warned
        truths[w.video] = truth
        rows.append((truth, w.events, w.seconds(params.fps)))
    if not rows:
        raise UsageError("no video could be watched to the end:\n  " + "\n  ".join(result.skipped))
    report = summarise(rows, tolerance)
    on, off = params.thresholds(threshold)
    report.update(
        {
            "labels": str(labels),
            "videos": str(root),
            "selection": {
                "split_file": None if split_path is None else str(split_path),
                "split": report_split if split_path is not None else None,
                "subjects": list(subjects or []),
                "videos": [w.video for w in watched],
            },
            "skipped": result.skipped,
            "warnings": result.warnings,
            "threshold": {"on": on, "off": off, "from": note, "off_from": off_note(params)},
            "params": params.model_dump(),
            "tuned_on_val": tuned,
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    for w in watched:
        if w.problem:
            continue
        truth = truths[w.video]
        png = out / "timelines" / (w.video.replace("/", "__").rsplit(".", 1)[0] + ".png")
        alerts = [a for a in report["alerts"] if a["video"] == w.video]
        path = write_timeline(
            png, w.video, w.scores, w.smoothed, on, off, truth.falls, truth.others, alerts
        )
        if path is not None:
            result.files.append(path)
    if tuned is not None:
        text = params_yaml(params, tuned)
        atomic_write_text(out / EVENTS_BESIDE_MODEL, text)
        result.files.append(out / EVENTS_BESIDE_MODEL)
        result.tuned_params = out / EVENTS_BESIDE_MODEL
        if model is not None:
            folder = Path(model) if Path(model).is_dir() else Path(model).parent
            atomic_write_text(folder / EVENTS_BESIDE_MODEL, text)
            result.files.append(folder / EVENTS_BESIDE_MODEL)
            result.tuned_params = folder / EVENTS_BESIDE_MODEL
    atomic_write_text(out / REPORT_MD, markdown(report))
    atomic_write_json(out / REPORT_JSON, report)
    result.files[:0] = [out / REPORT_JSON, out / REPORT_MD]
    result.report = report
    return result


def params_yaml(params: EventParams, tuned: dict[str, Any]) -> str:
    """The chosen parameters as an events.yaml that ``curate watch`` reads."""
    import yaml

    head = (
        "# curate watch VIDEO --model MODEL --events events.yaml\n"
        "# chosen by curate eval-events --tune-on val on "
        f"{len(tuned.get('videos', []))} validation video(s): recall "
        f"{_fmt(tuned.get('event_recall'))}, {_fmt(tuned.get('false_alarms_per_hour'))} false "
        "alarms per hour\n"
    )
    return head + yaml.safe_dump(params.model_dump(), sort_keys=False)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page: totals, false alarms by kind, one row per video."""
    lo, hi = report["false_alarms_per_hour_ci95"]
    lines = [
        "# Fall events",
        "",
        f"{report['falls']} falls in {report['hours']:.2f} h of footage "
        f"({len(report['per_video'])} videos); alerts at P(yes) on "
        f"{report['threshold']['on']:.3g}, off {report['threshold']['off']:.3g}.",
        "",
        "| event recall | precision | F1 | false alarms / h (95% CI) | delay p50 | delay p95 |",
        "|---|---|---|---|---|---|",
        f"| {_fmt(report['event_recall'])} ({report['detected']}/{report['falls']}) "
        f"| {_fmt(report['event_precision'])} | {_fmt(report['event_f1'])} "
        f"| {_fmt(report['false_alarms_per_hour'])} ({_fmt(lo)}-{_fmt(hi)}) "
        f"| {_fmt(report['delay_p50'])} s | {_fmt(report['delay_p95'])} s |",
        "",
        "## False alarms by what the person was doing",
        "",
        "| kind | false alarms | per hour |",
        "|---|---|---|",
    ]
    hours = report["hours"] or float("nan")
    by_kind = report["false_alarms_by_kind"]
    for kind, n in sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {kind} | {n} | {n / hours:.3g} |")
    if not by_kind:
        lines.append("| (none) | 0 | 0 |")
    lines += [
        "",
        "## Per video",
        "",
        "| video | hours | falls | detected | false alarms | duplicates | delays (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in report["per_video"]:
        delays = ", ".join(f"{d:g}" for d in v["delays"]) or "-"
        lines.append(
            f"| {v['video']} | {v['hours']:.3f} | {v['falls']} | {v['detected']} "
            f"| {v['false_alarms']} | {v['duplicates']} | {delays} |"
        )
    if report.get("skipped"):
        lines += ["", "## Skipped", ""] + [f"- {s}" for s in report["skipped"]]
    if report.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {s}" for s in report["warnings"]]
    lines += [
        "",
        f"A hit: an alert whose episode starts from {report['tolerance']['before']:g} s before "
        f"a fall's start to {report['tolerance']['after']:g} s after its end; delay: from the "
        "fall's start to the alert.",
        "",
    ]
    return "\n".join(lines)


def load_report(out: Path) -> dict[str, Any]:
    return json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
