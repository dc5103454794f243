"""eval-events' figures recomputed by brute force from its own alerts and the raw label file.

The label CSV is read with the csv module and OmniFall's class ids written out here (not
the project's reader); the footage's length from the frames PyAV decodes; each alert
checked against every fall's window by a plain loop; the Poisson interval against
scipy's exact mean bounds found by bisection on the Poisson CDF; the delays' percentiles
with numpy.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from curation.cli import app
from tests._footage import FALL, TableScorer, patch_scorer, tiny_footage

av = pytest.importorskip("av")
stats = pytest.importorskip("scipy.stats")

#: OmniFall's class ids (the omnifall package's ACTIVITY_LABELS order)
OMNIFALL = {
    0: "walk",
    1: "fall",
    2: "fallen",
    3: "sit_down",
    4: "sitting",
    5: "lie_down",
    6: "lying",
    7: "stand_up",
    8: "standing",
    9: "other",
    10: "kneel_down",
    11: "kneeling",
}


def brute_force(labels: Path, root: Path, alerts: list[dict], before: float, after: float):
    rows: dict[str, list[tuple[float, float, str]]] = {}
    with labels.open(newline="") as f:
        for row in csv.DictReader(f):
            video = f"{row['dataset']}/video/{row['path']}.mp4"
            rows.setdefault(video, []).append(
                (float(row["start"]), float(row["end"]), OMNIFALL[int(row["label"])])
            )
    hits = false_alarms = duplicates = falls_total = 0
    seconds = 0.0
    kinds: dict[str, int] = {}
    delays: list[float] = []
    for video, segs in rows.items():
        segs.sort()
        falls: list[list[float]] = []
        for start, end, name in segs:  # a fall and the fallen right after it: one fall
            if name in FALL:
                if falls and abs(falls[-1][1] - start) < 1e-6:
                    falls[-1][1] = end
                else:
                    falls.append([start, end])
        falls_total += len(falls)
        with av.open(str(root / video)) as container:
            n = sum(1 for _ in container.decode(video=0))
        seconds += n / 2  # rendered at 2 fps, every frame sampled
        hit = [False] * len(falls)
        mine = sorted(
            (a for a in alerts if a["video"] == video and a["kind"] == "fall"),
            key=lambda a: a["start"],
        )
        for a in mine:
            windows = [i for i, (s, e) in enumerate(falls) if s - before <= a["start"] <= e + after]
            fresh = [i for i in windows if not hit[i]]
            if fresh:
                hit[fresh[0]] = True
                hits += 1
                delays.append(a["end"] - falls[fresh[0]][0])
            elif windows:
                duplicates += 1
            else:
                false_alarms += 1
                inside = [name for s, e, name in segs if s <= a["start"] < e]
                kind = inside[-1] if inside else "unlabelled"
                kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "hits": hits,
        "falls": falls_total,
        "false_alarms": false_alarms,
        "duplicates": duplicates,
        "hours": seconds / 3600,
        "kinds": kinds,
        "delays": delays,
    }


def exact_poisson_bounds(k: int, level: float = 0.95) -> tuple[float, float]:
    """The means whose Poisson tail probabilities are (1 - level) / 2, by bisection."""
    a = (1 - level) / 2

    def solve(f) -> float:
        lo, hi = 0.0, 1000.0
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
        return (lo + hi) / 2

    upper = solve(lambda mu: stats.poisson.cdf(k, mu) - a)
    lower = 0.0 if k == 0 else solve(lambda mu: a - stats.poisson.sf(k - 1, mu))
    return lower, upper


@pytest.mark.parametrize(
    ("tolerance", "noise", "min_duration"), [((1.0, 5.0), 0.0, 1.0), ((0.0, 0.5), 0.2, 1.5)]
)
def test_recall_precision_and_false_alarms_match_a_brute_force_count(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tolerance: tuple[float, float],
    noise: float,
    min_duration: float,
) -> None:
    root = tmp_path / "videos"
    videos = tiny_footage(root, subjects=3, minutes=2.0, seed=4)
    # also says yes while lying down on purpose and kneeling: false alarms of several kinds
    patch_scorer(
        monkeypatch, TableScorer(videos, yes_labels=(*FALL, "lying", "kneeling"), noise=noise)
    )
    out = tmp_path / "out"
    before, after = tolerance
    result = CliRunner().invoke(
        app,
        [
            "eval-events",
            str(root / "labels.csv"),
            "--videos",
            str(root),
            "--model",
            "m.pth",
            "--out",
            str(out),
            "--before",
            str(before),
            "--after",
            str(after),
            "--set",
            "refractory=0",
            "--set",
            f"min_duration={min_duration}",
            "--set",
            "smoothing=none",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "events_eval.json").read_text())
    truth = brute_force(root / "labels.csv", root, report["alerts"], before, after)
    assert truth["false_alarms"] > 0  # the comparison covers false alarms
    alerts = truth["hits"] + truth["false_alarms"] + truth["duplicates"]
    assert report["falls"] == truth["falls"]
    assert report["event_recall"] == pytest.approx(truth["hits"] / truth["falls"])
    assert report["event_precision"] == pytest.approx(truth["hits"] / alerts)
    assert report["false_alarms"] == truth["false_alarms"]
    assert report["duplicates"] == truth["duplicates"]
    assert report["hours"] == pytest.approx(truth["hours"])
    assert report["false_alarms_per_hour"] == pytest.approx(truth["false_alarms"] / truth["hours"])
    assert report["false_alarms_by_kind"] == truth["kinds"]
    lo, hi = exact_poisson_bounds(truth["false_alarms"])
    assert report["false_alarms_per_hour_ci95"] == pytest.approx(
        [lo / truth["hours"], hi / truth["hours"]], rel=1e-6
    )
    assert report["delay_p50"] == pytest.approx(np.percentile(truth["delays"], 50), abs=1e-3)
    assert report["delay_p95"] == pytest.approx(np.percentile(truth["delays"], 95), abs=1e-3)


def decoded_seconds(path: Path) -> float:
    """How long a video lasts, from PyAV's decoded frames: the last one's time plus its
    duration (the gap before it when the file gives none)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        times, length = [], 0
        for frame in container.decode(stream):
            times.append(frame.pts * tb)
            length = (frame.duration or 0) * tb
    length = length or times[-1] - times[-2]
    return float(times[-1] + length - (stream.start_time or 0) * tb)


def test_footage_hours_at_a_low_fps_are_the_videos_decoded_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "videos"
    videos = tiny_footage(root, subjects=2, minutes=1.5, seed=2)
    patch_scorer(monkeypatch, TableScorer(videos))
    out = tmp_path / "out"
    # frames every 20 s: the last one scored is 10 s before each 90 s video ends
    args = ["eval-events", str(root / "labels.csv"), "--videos", str(root), "--model", "m.pth"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--fps", "0.05"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "events_eval.json").read_text())
    for row in report["per_video"]:
        assert row["hours"] * 3600 == pytest.approx(decoded_seconds(root / row["video"]))
    total = sum(decoded_seconds(v.file) for v in videos)
    assert report["hours"] * 3600 == pytest.approx(total)
