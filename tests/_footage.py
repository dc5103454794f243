"""Tiny synthetic footage and scorers that know its truth (tests of events, not of a model)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("av")

import av  # noqa: E402

from curation.synthetic_footage import FootageVideo, write_footage  # noqa: E402

#: the classes a "model" that mistakes lying down on purpose for a fall says yes to
FALL = ("fall", "fallen")


def tiny_footage(
    root: Path, subjects: int = 2, minutes: float = 1.5, seed: int = 1
) -> list[FootageVideo]:
    return write_footage(
        root, subjects=subjects, cameras=1, minutes=minutes, falls_per_video=1, seed=seed, size=48
    )


def frame_key(image: Any) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


class TableScorer:
    """P(yes) looked up by a frame's pixels: high in the given classes' segments (and in a
    ``noise`` share of the other frames), else low.

    The frames are decoded here with PyAV, on their own: the watcher must hand the scorer
    the same pixels for the lookup to work.
    """

    def __init__(
        self,
        videos: Sequence[FootageVideo],
        yes_labels: Sequence[str] = FALL,
        threshold: float | None = 0.5,
        high: float = 0.95,
        low: float = 0.05,
        noise: float = 0.0,
    ) -> None:
        self.threshold = threshold
        self.note = "test scorer"
        self.table: dict[str, float] = {}
        self.calls = 0
        for v in videos:
            spans = [(s.start, s.end) for s in v.segments if s.label in yes_labels]
            with av.open(str(v.file)) as container:
                for frame in container.decode(video=0):
                    t = float(frame.pts * frame.time_base)
                    yes = any(a <= t < b for a, b in spans)
                    # a share of other frames said yes too, chosen by their time (repeatable)
                    yes = yes or random.Random(f"{v.path}-{t}").random() < noise
                    self.table[frame_key(frame.to_image())] = high if yes else low

    def score(self, images: Sequence[Any]) -> list[float]:
        self.calls += 1
        return [self.table.get(frame_key(im), 0.05) for im in images]


def patch_scorer(monkeypatch: pytest.MonkeyPatch, scorer: Any) -> list[dict[str, Any]]:
    """Make the CLI's ``load_scorer`` return ``scorer``; the calls' arguments are recorded."""
    calls: list[dict[str, Any]] = []

    def load(model: Any = None, **kwargs: Any) -> Any:
        calls.append({"model": model, **kwargs})
        if kwargs.get("threshold") is not None:
            scorer.threshold = kwargs["threshold"]
        return scorer

    monkeypatch.setattr("curation.events.scorers.load_scorer", load)
    return calls


def truncate(path: Path, share: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])
    return path


Factory = Callable[..., Any]
