"""One picture per video: P(yes) over time, the thresholds, the true falls, the alerts."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curation.events.evaluate import Interval

_OUTCOME_COLOUR = {"hit": "tab:green", "duplicate": "tab:orange", "false_alarm": "tab:red"}
_LOOKALIKES = {"lie_down", "lying", "sit_down", "sitting", "kneel_down", "kneeling"}


def write_timeline(
    out: Path,
    title: str,
    scores: Sequence[tuple[float, float]],
    smoothed: Sequence[tuple[float, float]],
    on: float,
    off: float,
    falls: Sequence[Interval] = (),
    others: Sequence[Interval] = (),
    alerts: Sequence[dict[str, Any]] = (),
) -> Path | None:
    """Write the timeline PNG (atomically); None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from curation._io import atomic_write_bytes

    with matplotlib.rc_context({"text.parse_math": False}):
        end = max([t for t, _ in scores] + [f.end for f in falls] + [1.0])
        fig, ax = plt.subplots(figsize=(max(8.0, min(40.0, end / 15)), 3.2), dpi=100)
        for f in falls:
            ax.axvspan(f.start, f.end, color="tab:red", alpha=0.18, lw=0)
        shown: set[str] = set()
        for o in others:
            if o.kind in _LOOKALIKES:
                label = "lying/sitting/kneeling on purpose" if not shown else None
                shown.add(o.kind)
                ax.axvspan(o.start, o.end, color="grey", alpha=0.15, lw=0, label=label)
        if scores:
            ax.plot(*zip(*scores, strict=True), lw=0.6, color="tab:blue", alpha=0.5, label="P(yes)")
        if smoothed:
            ax.plot(*zip(*smoothed, strict=True), lw=1.4, color="tab:blue", label="smoothed")
        ax.axhline(on, ls="--", color="black", lw=0.8, label=f"on {on:.3g}")
        ax.axhline(off, ls=":", color="black", lw=0.8, label=f"off {off:.3g}")
        for a in alerts:
            colour = _OUTCOME_COLOUR.get(a.get("outcome", ""), "tab:purple")
            ax.axvline(a["end"], color=colour, lw=1.5)
            ax.annotate(
                a.get("outcome", a["kind"]).replace("_", " "),
                (a["end"], 1.01),
                color=colour,
                fontsize=7,
                rotation=90,
                va="bottom",
                ha="center",
            )
        if falls:
            ax.plot([], [], color="tab:red", alpha=0.4, lw=6, label="true fall")
        ax.set_ylim(-0.02, 1.3)
        ax.set_xlim(0, end)
        ax.set_xlabel("seconds")
        ax.set_ylabel("P(yes)")
        ax.set_title(title, fontsize=9)
        ax.legend(loc="upper right", fontsize=6, ncol=3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buf.getvalue())
    return out
