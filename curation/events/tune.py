"""Choose the event parameters on validation videos: threshold, smoothing, minimum duration.

The frames are scored once; each candidate re-runs only the engine over the stored
scores. The choice: the highest event recall among candidates within the false-alarm
budget (per hour), then the shortest delay p95, then the fewest false alarms; when none
is within budget, the fewest false alarms, then the highest recall.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from curation.events.engine import run_events
from curation.events.evaluate import Tolerance, VideoTruth, summarise
from curation.events.params import EventParams

THRESHOLDS = tuple(round(0.1 + 0.05 * k, 2) for k in range(17))  # 0.1 .. 0.9
SMOOTHING = (("none", 0.0), ("ema", 0.5), ("ema", 1.0), ("ema", 2.0), ("median", 1.5))
MIN_DURATIONS = (0.0, 0.5, 1.0, 2.0)


def tune_params(
    videos: Sequence[tuple[VideoTruth, Any]],
    base: EventParams,
    threshold: float,
    tolerance: Tolerance,
    max_false_alarms_per_hour: float = 1.0,
) -> tuple[EventParams, dict[str, Any]]:
    """The chosen parameters and what they scored on ``videos`` (``(truth, VideoWatch)``)."""
    best: tuple[Any, ...] | None = None
    chosen = base
    summary: dict[str, Any] = {}
    tried = 0
    for on, (kind, seconds), min_duration in itertools.product(
        sorted({*THRESHOLDS, *([round(threshold, 6)] if threshold <= 1 else [])}),
        SMOOTHING,
        MIN_DURATIONS,
    ):
        params = base.model_copy(
            update={
                "on_threshold": on,
                "off_threshold": None,
                "smoothing": kind,
                "smoothing_seconds": seconds,
                "min_duration": min_duration,
            }
        )
        rows = [
            (truth, run_events(w.scores, params, on), w.seconds(base.fps)) for truth, w in videos
        ]
        s = summarise(rows, tolerance)
        tried += 1
        fa = s["false_alarms_per_hour"] if s["false_alarms_per_hour"] is not None else 0.0
        recall = s["event_recall"] or 0.0
        delay = s["delay_p95"] if s["delay_p95"] is not None else float("inf")
        within = fa <= max_false_alarms_per_hour
        key = (within, recall, -delay, -fa) if within else (within, -fa, recall, -delay)
        if best is None or key > best:
            best, chosen, summary = key, params, s
    picked = {
        k: summary.get(k)
        for k in ("event_recall", "event_precision", "false_alarms_per_hour", "delay_p95")
    }
    picked.update(
        {
            "candidates": tried,
            "max_false_alarms_per_hour": max_false_alarms_per_hour,
            "within_budget": bool(best and best[0]),
            "params": chosen.model_dump(),
        }
    )
    return chosen, picked
