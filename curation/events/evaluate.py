"""`curate eval-events`: alerts against the label file's falls, per video and in total.

Ground truth: each run of touching "yes" segments (a ``fall`` and the ``fallen`` that
follows it) is one fall. An alert (a ``fall`` event) is a *hit* when its episode starts
inside the fall's tolerance window (from ``before`` seconds before the fall's start to
``after`` seconds after its end) and the fall has no hit yet; a second alert in an
already-hit fall's window is a *duplicate*; any other alert is a *false alarm*, named by
the negative kind of the segment it starts in (``lie_down``, ``sitting``...; the class
name for an unsure class; ``unlabelled`` outside every segment).

- recall = falls hit / falls; precision = hits / alerts (duplicates count against it);
- false alarms per hour of footage, with an exact Poisson 95% interval;
- delay = when the alert was raised (its ``end``) minus the fall's start, p50 and p95.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from curation.events.engine import Event

_MERGE_GAP = 0.05  # seconds: "yes" segments this close are one fall


@dataclass(frozen=True, slots=True)
class Interval:
    start: float
    end: float
    kind: str  # a fall: "fall"; a negative: its negative kind or class name
    where: str = ""  # the label row it came from ("labels.csv row 3"), for messages


@dataclass
class VideoTruth:
    video: str  # relative to the videos root
    subject: str | None
    camera: str | None
    dataset: str | None
    falls: list[Interval] = field(default_factory=list)
    others: list[Interval] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Tolerance:
    before: float = 1.0
    after: float = 5.0


def truth_from_segments(segments: Sequence[Any]) -> dict[str, VideoTruth]:
    """Per video: its falls (touching "yes" segments merged) and its other segments.

    ``segments`` are ``SegmentRow``s (``curation.curator.video.read_segments``).

    Raises:
        UsageError: segments in frame numbers (events are timed in seconds).
    """
    framed = [s for s in segments if s.in_frames]
    if framed:
        raise UsageError(
            f"{framed[0].where}: start_frame/end_frame rows; events are timed in seconds. "
            "Fix: give start/end in seconds"
        )
    out: dict[str, VideoTruth] = {}
    for seg in sorted(segments, key=lambda s: (s.video, s.start, s.end)):
        truth = out.setdefault(
            seg.video, VideoTruth(seg.video, seg.subject, seg.camera, seg.source_dataset)
        )
        if seg.rule.answer == "yes":
            last = truth.falls[-1] if truth.falls else None
            if last is not None and seg.start <= last.end + _MERGE_GAP:
                truth.falls[-1] = Interval(last.start, max(last.end, seg.end), "fall", last.where)
            else:
                truth.falls.append(Interval(seg.start, seg.end, "fall", seg.where))
        else:
            kind = seg.rule.negative_kind if seg.rule.answer == "no" else None
            truth.others.append(Interval(seg.start, seg.end, kind or seg.name))
    return out


def falls_within(truth: VideoTruth, seconds: float) -> tuple[VideoTruth, list[str]]:
    """``truth`` without the falls that start at or after the video's end (``seconds``
    long): no alert can find them, so they are left out of recall, each with a warning
    naming its row and the video's length."""
    import dataclasses

    past = [f for f in truth.falls if f.start >= seconds]
    if not past:
        return truth, []
    warnings = [
        f"{f.where or truth.video}: a fall at {f.start:g}-{f.end:g} s starts after the end of "
        f"{truth.video}, which lasts {seconds:g} s; left out of recall. Fix: correct the row "
        "(or the video it names)"
        for f in past
    ]
    kept = [f for f in truth.falls if f.start < seconds]
    return dataclasses.replace(truth, falls=kept), warnings


@dataclass(frozen=True, slots=True)
class Match:
    alert: Event
    outcome: str  # "hit" | "duplicate" | "false_alarm"
    fall: int | None  # index of the fall it hit or duplicated
    overlaps: str | None  # a false alarm's negative kind
    delay: float | None  # a hit's: raised (end) minus the fall's start


def match_alerts(
    falls: Sequence[Interval],
    others: Sequence[Interval],
    alerts: Sequence[Event],
    tolerance: Tolerance,
    duration: float = math.inf,
) -> list[Match]:
    """Each ``fall`` alert (in time order) as a hit, a duplicate or a false alarm."""
    hit: set[int] = set()
    out = []
    for alert in sorted((a for a in alerts if a.kind == "fall"), key=lambda a: a.start):
        inside = [
            i
            for i, f in enumerate(falls)
            if f.start - tolerance.before <= alert.start <= min(f.end, duration) + tolerance.after
        ]
        fresh = [i for i in inside if i not in hit]
        if fresh:
            i = fresh[0]
            hit.add(i)
            out.append(Match(alert, "hit", i, None, alert.end - falls[i].start))
        elif inside:
            out.append(Match(alert, "duplicate", inside[0], None, None))
        else:
            kinds = [o.kind for o in others if o.start <= alert.start < o.end]
            out.append(
                Match(alert, "false_alarm", None, kinds[-1] if kinds else "unlabelled", None)
            )
    return out


def poisson_interval(count: int, exposure: float, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval of a Poisson rate: ``count`` events in ``exposure``."""
    from scipy.stats import chi2

    if exposure <= 0:
        return (math.nan, math.nan)
    a = (1 - level) / 2
    lo = 0.0 if count == 0 else float(chi2.ppf(a, 2 * count)) / 2
    hi = float(chi2.ppf(1 - a, 2 * count + 2)) / 2
    return lo / exposure, hi / exposure


def _percentile(values: Sequence[float], q: float) -> float | None:
    import numpy as np

    return float(np.percentile(values, q)) if values else None


def summarise(
    rows: Sequence[tuple[VideoTruth, Sequence[Event], float]], tolerance: Tolerance
) -> dict[str, Any]:
    """The report's figures over ``(truth, events, seconds watched)`` of each video."""
    per_video = []
    alerts_out = []
    totals: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    delays: list[float] = []
    seconds_total = 0.0
    for truth, events, seconds in rows:
        matches = match_alerts(truth.falls, truth.others, events, tolerance, seconds)
        falls_hit = {m.fall for m in matches if m.outcome == "hit"}
        counts = Counter(m.outcome for m in matches)
        video_delays = [m.delay for m in matches if m.delay is not None]
        kinds = Counter(
            m.overlaps for m in matches if m.outcome == "false_alarm" and m.overlaps is not None
        )
        per_video.append(
            {
                "video": truth.video,
                "subject": truth.subject,
                "camera": truth.camera,
                "hours": seconds / 3600,
                "falls": len(truth.falls),
                "detected": len(falls_hit),
                "alerts": len(matches),
                "false_alarms": counts["false_alarm"],
                "duplicates": counts["duplicate"],
                "false_alarms_by_kind": dict(sorted(kinds.items())),
                "delays": [round(d, 3) for d in video_delays],
                "long_lie_alerts": sum(e.kind == "long_lie" for e in events),
            }
        )
        for m in matches:
            alerts_out.append(
                {
                    "video": truth.video,
                    "kind": m.alert.kind,
                    "start": round(m.alert.start, 3),
                    "end": round(m.alert.end, 3),
                    "peak_p_yes": round(m.alert.peak_p_yes, 6),
                    "outcome": m.outcome,
                    "overlaps": m.overlaps,
                    "delay": None if m.delay is None else round(m.delay, 3),
                }
            )
        totals.update({"falls": len(truth.falls), "detected": len(falls_hit)})
        totals.update({"alerts": len(matches), **counts})
        by_kind.update(kinds)
        delays.extend(video_delays)
        seconds_total += seconds
    hours = seconds_total / 3600
    recall = totals["detected"] / totals["falls"] if totals["falls"] else None
    precision = totals["hit"] / totals["alerts"] if totals["alerts"] else None
    f1 = (
        2 * recall * precision / (recall + precision)
        if recall is not None and precision is not None and recall + precision > 0
        else None
    )
    fa = totals["false_alarm"]
    lo, hi = poisson_interval(fa, hours)
    return {
        "event_recall": recall,
        "event_precision": precision,
        "event_f1": f1,
        "falls": totals["falls"],
        "detected": totals["detected"],
        "alert_count": totals["alerts"],
        "false_alarms": fa,
        "duplicates": totals["duplicate"],
        "hours": hours,
        "false_alarms_per_hour": fa / hours if hours > 0 else None,
        "false_alarms_per_hour_ci95": [lo, hi],
        "delay_p50": _percentile(delays, 50),
        "delay_p95": _percentile(delays, 95),
        "false_alarms_by_kind": dict(sorted(by_kind.items())),
        "tolerance": {"before": tolerance.before, "after": tolerance.after},
        "per_video": per_video,
        "alerts": alerts_out,
    }


def select_videos(
    truths: dict[str, VideoTruth],
    split_file: Path | None,
    subjects: Sequence[str] | None,
    split: str,
) -> list[str]:
    """The videos to report on: a split of ``split_file``, the ``subjects`` given, or all.

    A split file's key is a subject qualified by its dataset (``footage/7``, as ``curate
    export --group-by subject`` writes them), a bare subject, or a video path.

    Raises:
        UsageError: a selection that leaves no video.
    """
    chosen = sorted(truths)
    how = "all videos"
    if split_file is not None:
        from curation.split import load_split_file

        where = load_split_file(split_file)
        chosen = [v for v in chosen if split_of(truths[v], where) == split]
        how = f"the {split} split of {split_file}"
    if subjects:
        wanted = {str(s) for s in subjects}
        chosen = [
            v
            for v in chosen
            if str(truths[v].subject) in wanted
            or f"{truths[v].dataset}/{truths[v].subject}" in wanted
        ]
        how = f"subjects {', '.join(sorted(wanted))}" + (f" in {how}" if split_file else "")
    if not chosen:
        raise UsageError(
            f"no video of the label file is in {how}. Fix: check the subjects or the split "
            "file's keys (dataset/subject, e.g. footage/7, or a video path)"
        )
    return chosen


def split_of(truth: VideoTruth, where: dict[str, str]) -> str | None:
    for key in (f"{truth.dataset}/{truth.subject}", str(truth.subject), truth.video):
        if key in where:
            return where[key]
    return None
