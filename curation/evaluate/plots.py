"""PNG plots of an evaluation (skipped without matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.evaluate.report import yes_rule

if TYPE_CHECKING:
    from curation.evaluate.report import EvalReport


def write_plots(out_dir: Path, report: EvalReport) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    # kinds, classes and answer types are user text: shown as is, never parsed as mathtext
    # ("$\\foo$" in a negative_kind made matplotlib raise at savefig)
    with matplotlib.rc_context({"text.parse_math": False}):
        return _write_plots(plt, out_dir, report)


def _write_plots(plt: Any, out_dir: Path, report: EvalReport) -> list[Path]:
    written = []
    task, general = report.task, report.general
    if task.get("confusion"):
        conf = task["confusion"]
        cols = ["yes", "no", "other"]
        grid = [[conf[t][p] for p in cols] for t in ("yes", "no")]
        fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
        ax.imshow(grid, cmap="Blues")
        ax.set_xticks(range(3), [f"said {c}" for c in cols])
        ax.set_yticks(range(2), ["truly yes", "truly no"])
        top = max(max(row) for row in grid) or 1
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                ax.text(
                    j,
                    i,
                    str(v),
                    ha="center",
                    va="center",
                    color="white" if v > top / 2 else "black",
                )
        ax.set_title("task confusion matrix")
        fig.tight_layout()
        written.append(_save(fig, out_dir / "confusion.png"))
        fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
        shown = [(f, v) for f, v in report.figures() if f.plot == "yes_rate"]
        ax.bar(
            [f.label.removeprefix("task ") for f, _ in shown],
            [v or 0 for _, v in shown],
            color=["tab:blue", "gray", "tab:red"],
        )
        ax.set_ylim(0, 1)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title("yes-rate vs true rate")
        fig.tight_layout()
        written.append(_save(fig, out_dir / "yes_rate.png"))
    if task.get("reliability"):
        bins = task["reliability"]
        fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
        ax.plot([0, 1], [0, 1], color="gray", ls="--", label="calibrated")
        ax.plot(
            [b["mean_p_yes"] for b in bins],
            [b["yes_rate"] for b in bins],
            marker="o",
            label=f"model (ECE {task['ece']:.3f})",
        )
        op = task.get("operating_point")
        if op and op["threshold"] <= 1:  # a never-yes point has no place on the axis
            ax.axvline(op["threshold"], color="tab:red", ls=":", label=yes_rule(op["threshold"]))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean P(yes) in bin")
        ax.set_ylabel("observed yes-rate")
        ax.legend(fontsize=7)
        ax.set_title("reliability of P(yes)")
        fig.tight_layout()
        written.append(_save(fig, out_dir / "reliability.png"))
    if general.get("per_answer_type"):
        per = general["per_answer_type"]
        fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
        ax.bar(list(per), list(per.values()))
        if general.get("majority_baseline") is not None:
            ax.axhline(general["majority_baseline"], color="red", ls="--", label="majority answer")
            ax.legend(fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title("general VQA accuracy per answer type")
        fig.tight_layout()
        written.append(_save(fig, out_dir / "accuracy_by_type.png"))
    if task.get("false_alarms_by_kind") or task.get("misses_by_class"):
        written.append(_per_kind_plot(plt, task, out_dir / "false_alarms_by_kind.png"))
    return written


def _per_kind_plot(plt: Any, task: dict[str, Any], path: Path) -> Path:
    """False-alarm rate per negative kind and miss rate per positive class, side by side
    (dots: the same at the operating point's threshold)."""
    op = task.get("operating_point") or {}
    panels = [
        ("false_alarms_by_kind", "false-alarm rate per negative kind", "tab:red"),
        ("misses_by_class", "miss rate per positive class", "tab:blue"),
    ]
    panels = [p for p in panels if task.get(p[0])]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4 + 2.5 * len(panels), 3.2), dpi=100, squeeze=False
    )
    for ax, (key, title, color) in zip(axes[0], panels, strict=True):
        table = task[key]
        labels = list(table)
        ax.bar(labels, [table[k]["rate"] for k in labels], color=color, label="generated answer")
        for x, k in enumerate(labels):
            ax.text(x, table[k]["rate"] + 0.02, f"n={table[k]['n']}", ha="center", fontsize=7)
        at = op.get(key)
        if at:
            ax.scatter(
                labels,
                [(at.get(k) or {}).get("rate", 0) for k in labels],
                color="black",
                zorder=3,
                label=yes_rule(op["threshold"]).split(" (")[0],  # "P(yes) >= x" / "never yes"
            )
            ax.legend(fontsize=7)
        ax.set_ylim(0, 1.1)
        ax.tick_params(axis="x", labelsize=7, rotation=30)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    """Write the figure as every output is written: a temp file renamed over ``path``.

    savefig opens ``path`` for writing: through a hard link in --out it rewrote a file
    outside it, and a kill mid-write left half a PNG.
    """
    import io

    import matplotlib.pyplot as plt

    from curation._io import atomic_write_bytes

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
