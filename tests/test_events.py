"""The event engine: frame scores in, alerts out (pure, no model, no video)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.errors import ConfigError
from curation.events import EventEngine, EventParams, load_event_params, run_events

REPO = Path(__file__).resolve().parent.parent

RAW = EventParams(smoothing="none", min_duration=0.0, refractory=0.0, long_lie=None)


def frames(scores: list[float], fps: float = 2.0, start: float = 0.0) -> list[tuple[float, float]]:
    return [(start + i / fps, p) for i, p in enumerate(scores)]


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def test_one_fall_gives_one_alert_then_resolved_with_its_times() -> None:
    scores = [0.1] * 10 + [0.9] * 10 + [0.1] * 10
    events = run_events(frames(scores), RAW, threshold=0.5)
    assert kinds(events) == ["fall", "resolved"]
    fall, resolved = events
    assert fall.start == 5.0 and fall.end == 5.0  # raised on the first frame at 0.9
    assert resolved.start == 5.0 and resolved.end == 10.0  # closed on the first frame back
    assert resolved.frame_times == tuple(5.0 + i / 2 for i in range(10))
    assert fall.peak_p_yes == 0.9


def test_min_duration_counts_seconds_from_the_episode_start() -> None:
    params = RAW.model_copy(update={"min_duration": 2.0})
    short = [0.1] * 4 + [0.9] * 4 + [0.1] * 4  # 1.5 s above: no alert
    assert run_events(frames(short), params, 0.5) == []
    long = [0.1] * 4 + [0.9] * 5 + [0.1] * 4  # frames at 2.0 .. 4.0: the fifth is 2 s in
    events = run_events(frames(long), params, 0.5)
    assert kinds(events) == ["fall", "resolved"]
    assert events[0].start == 2.0 and events[0].end == 4.0


def test_hysteresis_keeps_an_episode_open_between_off_and_on() -> None:
    params = RAW.model_copy(update={"off_threshold": 0.3})
    scores = [0.1, 0.9, 0.4, 0.35, 0.9, 0.2, 0.9]
    events = run_events(frames(scores, fps=1), params, 0.5)
    # 0.4 and 0.35 stay above off: one episode until 0.2, then a new one at 0.9
    assert kinds(events) == ["fall", "resolved", "fall", "resolved"]
    assert events[1].end == 5.0
    assert events[3].stream_ended


def test_refractory_silences_a_second_episode_that_comes_too_soon() -> None:
    params = RAW.model_copy(update={"refractory": 10.0})
    scores = [0.9, 0.1, 0.9, 0.1] + [0.1] * 16 + [0.9, 0.1]
    events = run_events(frames(scores, fps=1), params, 0.5)
    falls = [e for e in events if e.kind == "fall"]
    assert [e.start for e in falls] == [0.0, 20.0]  # the episode at 2 s came 2 s after 0 s
    # the silenced episode gets no resolved either: nothing was raised for it
    assert [e.start for e in events if e.kind == "resolved"] == [0.0, 20.0]


def test_long_lie_when_the_alerted_episode_persists() -> None:
    params = RAW.model_copy(update={"long_lie": 5.0})
    scores = [0.9] * 12 + [0.1]
    events = run_events(frames(scores, fps=1), params, 0.5)
    assert kinds(events) == ["fall", "long_lie", "resolved"]
    assert events[1].end == 5.0  # 5 s after the start at 0 s


def test_ema_uses_the_real_gap_so_a_dropped_frame_does_not_slow_it() -> None:
    params = RAW.model_copy(update={"smoothing": "ema", "smoothing_seconds": 1.0})
    engine = EventEngine(params, 0.5)
    engine.push(0.0, 0.0)
    engine.push(3.0, 1.0)  # three seconds later: alpha = 1 - e^-3
    assert engine.smoothed[-1][1] == pytest.approx(1 - 2.718281828459045**-3)


def test_median_window_is_a_median_over_the_last_seconds() -> None:
    params = RAW.model_copy(update={"smoothing": "median", "smoothing_seconds": 2.0})
    engine = EventEngine(params, 0.5)
    scores = [0.1, 0.9, 0.2, 0.8, 0.7, 0.3]
    for t, p in frames(scores, fps=1):
        engine.push(t, p)
    got = [s for _, s in engine.smoothed]
    # brute force: the median of the scores whose time is in (t - 2, t]
    want = [statistics.median(scores[max(0, i - 1) : i + 1]) for i in range(len(scores))]
    assert got == pytest.approx(want)


def test_times_must_increase_and_scores_be_finite() -> None:
    engine = EventEngine(RAW, 0.5)
    engine.push(1.0, 0.2)
    with pytest.raises(ValueError, match="increase"):
        engine.push(1.0, 0.2)
    with pytest.raises(ValueError, match="finite"):
        engine.push(2.0, float("nan"))


def test_on_defaults_to_the_operating_point_and_off_to_a_share_of_it() -> None:
    assert EventParams().thresholds(0.8) == (0.8, 0.4)
    assert EventParams(on_threshold=0.6, off_threshold=0.5).thresholds(0.8) == (0.6, 0.5)
    # an off above the operating point's on is clamped to on (no episode that never closes)
    assert EventParams(off_threshold=0.9).thresholds(0.8) == (0.8, 0.8)


def test_shipped_yaml_and_configs_copy_hold_the_same_defaults() -> None:
    shipped = load_event_params()
    assert shipped == EventParams()  # the model's defaults are the YAML's
    assert load_event_params(REPO / "configs" / "events.yaml") == shipped


def test_overrides_and_bad_values_name_the_key(tmp_path: Path) -> None:
    assert load_event_params(overrides=["refractory=5"]).refractory == 5
    with pytest.raises(ConfigError, match="refractory"):
        load_event_params(overrides=["refractory=-1"])
    with pytest.raises(ConfigError, match="min_durration"):
        load_event_params(overrides=["min_durration=1"])
    with pytest.raises(ConfigError, match="off_threshold"):
        load_event_params(overrides=["on_threshold=0.3", "off_threshold=0.6"])
    bad = tmp_path / "events.yaml"
    bad.write_text("fps: [1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_event_params(bad)


# -- properties -----------------------------------------------------------------------------

score = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
params_strategy = st.builds(
    EventParams,
    smoothing=st.sampled_from(["ema", "median", "none"]),
    smoothing_seconds=st.floats(0, 5),
    min_duration=st.floats(0, 5),
    refractory=st.floats(0, 20),
    long_lie=st.one_of(st.none(), st.floats(0.5, 20)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(score, max_size=120), params_strategy, st.floats(0.05, 0.95))
def test_no_two_fall_alerts_closer_than_the_refractory_period(scores, params, threshold) -> None:
    falls = [e.end for e in run_events(frames(scores), params, threshold) if e.kind == "fall"]
    assert all(b - a >= params.refractory for a, b in zip(falls, falls[1:], strict=False))


@settings(max_examples=100, deadline=None)
@given(score, st.integers(1, 200), params_strategy, st.floats(0.05, 0.95))
def test_a_constant_score_never_flaps(value, n, params, threshold) -> None:
    events = run_events(frames([value] * n), params, threshold)
    falls = [e for e in events if e.kind == "fall"]
    assert len(falls) <= 1
    # no episode closes while the score stays put: the only resolved is the stream's end
    assert all(e.stream_ended for e in events if e.kind == "resolved")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(score, max_size=80),
    params_strategy,
    st.floats(0.05, 0.95),
    st.lists(st.integers(1, 9), min_size=1, max_size=20),
)
def test_alerts_do_not_depend_on_how_frames_are_batched(scores, params, threshold, sizes) -> None:
    stream = frames(scores)
    whole = run_events(stream, params, threshold)
    engine = EventEngine(params, threshold)
    batched = []
    i = 0
    for size in sizes * (len(stream) // max(1, sum(sizes)) + 1):
        if i >= len(stream):
            break
        batched.extend(engine.push_many(stream[i : i + size]))
        i += size
    batched.extend(engine.finish())
    assert batched == whole


def _brute_force_alerts(scores: list[float], on: float, off: float, fps: float) -> list[float]:
    """Fall alert times by a plain re-reading of the rule (no smoothing, no refractory)."""
    alerts, inside = [], False
    for i, p in enumerate(scores):
        if not inside and p >= on:
            inside = True
            alerts.append(i / fps)
        elif inside and p < off:
            inside = False
    return alerts


@settings(max_examples=200, deadline=None)
@given(st.lists(score, max_size=100), st.floats(0.3, 0.9), st.floats(0.0, 1.0))
def test_raw_alerts_match_a_brute_force_reading_of_the_rule(scores, on, off_share) -> None:
    params = RAW.model_copy(update={"on_threshold": on, "off_threshold": on * off_share})
    got = [e.end for e in run_events(frames(scores), params, 0.5) if e.kind == "fall"]
    assert got == _brute_force_alerts(scores, on, on * off_share, 2.0)
