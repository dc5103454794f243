"""From P(yes) per frame to fall alerts: one small, pure, streaming state machine.

The engine sees ``(t, p_yes)`` pairs in time order and nothing else: no model,
no video, no clock. It smooths the score over time, applies hysteresis (an
episode opens when the smoothed score reaches ``on`` and closes when it drops
below ``off``), raises a ``fall`` alert once an episode has lasted
``min_duration`` seconds, stays quiet for ``refractory`` seconds after an
alert, raises ``long_lie`` when the alerted episode lasts ``long_lie`` seconds,
and ``resolved`` when it closes.

Everything is expressed in seconds of the source's own clock, so the events
depend on the frame times and scores alone: not on how frames were batched,
nor on how fast they were scored.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from curation.events.params import EventParams

EventKind = Literal["fall", "long_lie", "resolved"]


@dataclass(frozen=True)
class Event:
    """One alert or state change.

    ``start`` is when the episode's smoothed score first reached ``on``;
    ``end`` is when the event was raised (``fall``, ``long_lie``) or when the
    episode closed (``resolved``). ``frame_times`` are the frames of the
    episode up to ``end``.
    """

    kind: EventKind
    start: float
    end: float
    peak_p_yes: float
    frame_times: tuple[float, ...] = ()
    stream_ended: bool = False

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "kind": self.kind,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "peak_p_yes": round(self.peak_p_yes, 6),
            "frame_times": [round(t, 3) for t in self.frame_times],
        }
        if self.stream_ended:
            out["stream_ended"] = True
        return out


class _Smoother:
    """EMA with a time constant, or a median over a time window; ``none`` passes through."""

    def __init__(self, kind: str, seconds: float) -> None:
        self.kind = kind
        self.seconds = seconds
        self.value: float | None = None
        self.last_t: float | None = None
        self.window: deque[tuple[float, float]] = deque()

    def update(self, t: float, p: float) -> float:
        if self.kind == "none" or self.seconds <= 0:
            self.value = p
        elif self.kind == "ema":
            if self.value is None or self.last_t is None:
                self.value = p
            else:  # alpha from the real gap, so a dropped frame does not slow the filter
                alpha = 1.0 - math.exp(-(t - self.last_t) / self.seconds)
                self.value += alpha * (p - self.value)
        else:  # median over (t - seconds, t]
            self.window.append((t, p))
            # the frame just pushed always counts (t - seconds can round to t itself)
            while len(self.window) > 1 and self.window[0][0] <= t - self.seconds:
                self.window.popleft()
            values = sorted(v for _, v in self.window)
            mid = len(values) // 2
            self.value = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
        self.last_t = t
        return self.value


@dataclass
class _Episode:
    start: float
    peak: float
    times: list[float] = field(default_factory=list)
    alerted: bool = False
    suppressed: bool = False
    long_lie_sent: bool = False


class EventEngine:
    """Feed ``push(t, p_yes)`` in time order; collect the events it returns; ``finish()`` at the end."""

    def __init__(self, params: EventParams, threshold: float) -> None:
        self.params = params
        self.on, self.off = params.thresholds(threshold)
        self._smoother = _Smoother(params.smoothing, params.smoothing_seconds)
        self._episode: _Episode | None = None
        self._last_alert: float | None = None
        self._last_t: float | None = None
        self.smoothed: list[tuple[float, float]] = []  # (t, smoothed) for timelines

    def push(self, t: float, p_yes: float) -> list[Event]:
        """Take one frame's score; return the events it raises (often none)."""
        if not math.isfinite(t) or not math.isfinite(p_yes):
            raise ValueError(f"frame time and P(yes) must be finite numbers, got {t!r}, {p_yes!r}")
        if self._last_t is not None and t <= self._last_t:
            raise ValueError(f"frame times must increase: {t} after {self._last_t}")
        self._last_t = t
        s = self._smoother.update(t, p_yes)
        self.smoothed.append((t, s))
        events: list[Event] = []
        ep = self._episode
        if ep is None:
            if s < self.on:
                return events
            ep = self._episode = _Episode(start=t, peak=p_yes)
        elif s < self.off:  # the episode closes
            self._episode = None
            if ep.alerted:
                events.append(Event("resolved", ep.start, t, ep.peak, tuple(ep.times)))
            return events
        ep.peak = max(ep.peak, p_yes)
        ep.times.append(t)
        if not ep.alerted and not ep.suppressed and t - ep.start >= self.params.min_duration:
            quiet = self._last_alert is None or t - self._last_alert >= self.params.refractory
            if quiet:
                ep.alerted = True
                self._last_alert = t
                events.append(Event("fall", ep.start, t, ep.peak, tuple(ep.times)))
            else:  # this episode stays silent: an alert for it came too soon after the last
                ep.suppressed = True
        if (
            ep.alerted
            and not ep.long_lie_sent
            and self.params.long_lie is not None
            and t - ep.start >= self.params.long_lie
        ):
            ep.long_lie_sent = True
            events.append(Event("long_lie", ep.start, t, ep.peak, tuple(ep.times)))
        return events

    def push_many(self, frames: Iterable[tuple[float, float]]) -> list[Event]:
        """``push`` each ``(t, p_yes)`` in order; the events of all of them."""
        out: list[Event] = []
        for t, p in frames:
            out.extend(self.push(t, p))
        return out

    def finish(self) -> list[Event]:
        """End of the stream: an alerted episode still open is reported as ended with it."""
        ep, self._episode = self._episode, None
        if ep is None or not ep.alerted or self._last_t is None:
            return []
        return [Event("resolved", ep.start, self._last_t, ep.peak, tuple(ep.times), True)]


def run_events(
    frames: Iterable[tuple[float, float]], params: EventParams, threshold: float
) -> list[Event]:
    """Every event of a whole stream of ``(t, p_yes)`` frames."""
    engine = EventEngine(params, threshold)
    return engine.push_many(frames) + engine.finish()
