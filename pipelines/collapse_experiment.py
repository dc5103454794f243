"""The collapse experiment: does mixing cure BLIP-2's "always yes", on scenes of two renderers?

    .venv/bin/python pipelines/collapse_experiment.py            # full run (CPU, minutes)
    .venv/bin/python pipelines/collapse_experiment.py --short    # the CI version

Uses only the toolkit's own library calls (the same code as the `curate`
commands): synthetic fall scenes as the task (figure lying = "yes", standing
= "no") from two renderers that share no drawing code (`stick`, the
project's own, and `clutter`: rooms, distractors, smaller figures, three
phrasings of the question), easy-VQA as general VQA, a BLIP-2 preset with
random weights, CPU. For every renderer and seed:

  Run A, the seed's mistake: train on the task's positives only (all "yes").
  Run C, balance alone: B's balanced task records, no general VQA.
  Run B, the cure: `curate mix --vqav2-ratio 0.7` with balanced task data (and, as
  `curate mix` does by default, 10% of its general records asking task images about
  things they do not show, answered "no": `curation.distractors`). In the
  full recipe (``b_warm_start``) B fine-tunes C's final checkpoint on the mix, as a
  user fine-tunes a BLIP-2 that can already see: from random weights, 70% general
  VQA keeps this small model from ever finding the `clutter` task (it holds it once
  found; docs/collapse_results.md). SHORT trains B from random weights.

B and C train for about the same number of steps (A, which cannot learn a "no" it
never sees, for fewer), with the same seed and model, and all three are
scored on B's held-out test split (task and general parts), plus the
question-following check: unrelated questions about the test split's fall images, where
the truth is "no", in easy-VQA's words ("Is there a triangle in the image?") and in words
easy-VQA never uses ("Is there a cat in this image?"); none is a distractor question.
Copy this file and edit RECIPE to try other settings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from curation.evaluate.following import FOLLOWING_QUESTIONS, check_question_following
from curation.evaluate.run import EvalRequest, evaluate
from curation.export import ExportRecord, task_records_from_file, write_export
from curation.mix import mix
from curation.presets import get_preset
from curation.sources import load_easy_vqa
from curation.synthetic import RENDERERS, write_scene_set
from curation.training.checkpoints import latest_checkpoint
from curation.training.train import train

RUNS = ("A", "B", "C")
RUN_NAMES = {
    "A": "A: positives only",
    "B": "B: mix 0.7, balanced",
    "C": "C: balanced, no general VQA",
}
#: B's name when it fine-tunes C's checkpoint (RECIPE's b_warm_start).
B_WARM_NAME = "B: C's model, then mix 0.7"
#: The full run's recipe: what fits this 2-core CPU (see docs/collapse_results.md).
#: A, with no "no" in its data, gets fewer steps: it says "yes" to everything within a
#: hundred steps, and more steps cannot teach it an answer it never sees.
#: `small`, not `tiny`: tiny's 16 px linear patches never learned the clutter scenes, even
#: alone (run C). lr 1e-3, not 2e-3: at 2e-3 the small model stayed at chance on clutter.
#: 850 steps: at 1,000 (C then trains 4 epochs) the grid took 930 s, over the 15 minutes.
#: b_warm_start: B fine-tunes C's final checkpoint (C's run is B's first stage, so the grid
#: costs no more); from random weights B stayed at chance on clutter in every setting tried.
RECIPE: dict[str, Any] = {
    "model": "small",
    "per_class": 5000,
    "steps": 850,  # B: one epoch of its ~26,500 records (~830 steps); C: 3 epochs (~744)
    "a_steps": 200,
    "lr": 1e-3,
    "warmup_steps": 50,
    "batch": 32,
    "renderers": ["stick", "clutter"],
    "seeds": [0, 1, 2],
    "b_warm_start": True,
    # share of B's train general records that are distractor questions (curate mix's default)
    "distractor_share": 0.1,
}
#: The CI version: one renderer, one seed, fewer scenes and steps, runs A and B, B from
#: random weights (tests/test_collapse.py).
SHORT: dict[str, Any] = {
    **RECIPE,
    "b_warm_start": False,
    "per_class": 300,
    "steps": 800,
    "a_steps": 800,
    "batch": 16,
    "renderers": ["stick"],
    "seeds": [0],
}


def make_task(work: Path, renderer: str, per_class: int, seed: int, size: int) -> Path:
    """Render the task scenes once per (renderer, size, count, seed); return the annotations."""
    raw = work / "raw" / f"{renderer}-{size}px-{per_class}-seed{seed}"
    ann = raw / "annotations.json"
    return ann if ann.exists() else write_scene_set(raw, per_class, per_class, seed, size, renderer)


def write_runs(
    work: Path, ann: Path, seed: int, model: str, distractor_share: float = 0.1
) -> dict[str, int]:
    """Export B (the mix), A (B's task positives) and C (B's balanced task part) into ``work``.

    A and C hold only task records (their val and test: B's task records); all three are
    scored on B's test split, general VQA included. A toy preset's tokenizer is the same in
    every export, so A's and C's checkpoints read B's questions, and B can start from C's.
    Returns the training records per run.
    """
    task = task_records_from_file(ann)
    plan_b, _ = mix(
        task,
        [load_easy_vqa("train")],
        work / "B",
        ratio=0.7,
        yes_share=0.5,
        seed=seed,
        model=model,
        overwrite=True,
        command="collapse_experiment: run B",
        distractor_share=distractor_share,
    )
    task_train = [r for r in plan_b.splits["train"] if r.part == "task"]
    trains = {
        "A": ([r for r in task_train if r.answers == ("yes",)], "task positives only"),
        "C": (task_train, "B's balanced task records, no general VQA"),
    }
    for name, (records, what) in trains.items():
        splits: dict[str, list[ExportRecord]] = {
            "train": records,
            "val": [r for r in plan_b.splits["val"] if r.part == "task"],
            "test": [r for r in plan_b.splits["test"] if r.part == "task"],
        }
        write_export(
            work / name,
            splits,
            seed=seed,
            model=model,
            overwrite=True,
            command=f"collapse_experiment: run {name} ({what})",
            extra_manifest={"experiment": what},
        )
    return {"B": len(plan_b.splits["train"]), **{k: len(v[0]) for k, v in trains.items()}}


def epochs_for(n_train: int, steps: int, batch: int) -> int:
    return max(1, round(steps / max(1, n_train // batch)))


def train_and_score(
    work: Path,
    name: str,
    n_train: int,
    recipe: dict[str, Any],
    seed: int,
    start_from: Path | None = None,
) -> dict:
    """Train run ``name`` for about ``recipe['steps']`` steps; score it on B's test split.

    ``start_from``: a checkpoint whose weights the run starts from (``model.pretrained``).
    """
    steps = (recipe.get("a_steps") or recipe["steps"]) if name == "A" else recipe["steps"]
    epochs = epochs_for(n_train, steps, recipe["batch"])
    t0 = time.perf_counter()
    run = train(
        work / name / "lavis.yaml",
        [
            *([f"model.pretrained={start_from.resolve()}"] if start_from else []),
            f"run.max_epoch={epochs}",
            f"run.init_lr={recipe['lr']}",
            f"run.warmup_steps={recipe['warmup_steps']}",
            f"run.batch_size_train={recipe['batch']}",
            f"run.seed={seed}",
            "run.valid_splits=[]",
            "run.test_splits=[]",
            "run.log_freq=50",
            *recipe.get("overrides", []),
        ],
        run_id="run",
    )
    train_seconds = time.perf_counter() - t0
    # the last epoch by its number: file times change when a run folder is copied
    ckpt = latest_checkpoint(run.checkpoints)
    if ckpt is None:
        raise SystemExit(f"run {name} wrote no checkpoint_<N>.pth: {run.checkpoints}")
    test = work / "B" / "test.json"
    ev = evaluate(EvalRequest(ckpt, test, out=work / name / "eval"))
    falls = [
        Path(ev.report.image_root) / r["image"]
        for r in ev.report.predictions
        if r["part"] == "task" and r["answers"] == ["yes"]
    ]
    following = check_question_following(ckpt, falls)
    return {
        "train_records": n_train,
        "started_from": str(start_from) if start_from else None,
        "checkpoint": str(ckpt),
        "epochs": epochs,
        "steps": run.steps,
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "first_loss": run.losses[0],
        "last_loss": run.losses[-1],
        "eval": str(work / name / "eval" / "eval.json"),
        "task": {k: v for k, v in ev.report.task.items() if k != "reliability"},
        "general": ev.report.general,
        "collapse_alarm": ev.collapse_alarm,
        "following": following.to_dict(),
    }


def run_one(
    work: Path, renderer: str, seed: int, recipe: dict[str, Any], runs: tuple[str, ...] = RUNS
) -> dict[str, Any]:
    """A, B and C for one renderer and seed, under ``work/<renderer>/seed<seed>/``."""
    size = get_preset(recipe["model"]).image_size
    ann = make_task(work, renderer, recipe["per_class"], seed, size)
    here = work / renderer / f"seed{seed}"
    n_train = write_runs(here, ann, seed, recipe["model"], recipe.get("distractor_share", 0.0))
    warm = recipe.get("b_warm_start") and "B" in runs
    cell: dict[str, Any] = {}
    for name in sorted(runs, key=lambda r: (warm and r == "B", RUNS.index(r))):  # C before B
        start = Path(cell["C"]["checkpoint"]) if warm and name == "B" else None
        cell[name] = train_and_score(here, name, n_train[name], recipe, seed, start)
    cell = {name: cell[name] for name in runs}
    (here / "cell.json").write_text(json.dumps(cell, indent=2) + "\n")  # kept if a later cell fails
    return cell


def _cell(args: tuple[Path, str, int, dict[str, Any], tuple[str, ...]]) -> dict[str, Any]:
    return run_one(*args)


def _cpu_seconds() -> float:
    import resource

    return sum(
        u.ru_utime + u.ru_stime
        for u in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )


def runs_problem(recipe: dict[str, Any], runs: tuple[str, ...]) -> str | None:
    """Why ``runs`` cannot be run under ``recipe`` (None: they can)."""
    if recipe.get("b_warm_start") and "B" in runs and "C" not in runs:
        return (
            "B fine-tunes C's checkpoint in this recipe (b_warm_start): run C too "
            "(--runs B,C), or train B from random weights (--b-from-scratch)"
        )
    return None


def run_experiment(
    work: Path, recipe: dict[str, Any] | None = None, runs: tuple[str, ...] = RUNS, jobs: int = 1
) -> dict[str, Any]:
    """Every renderer x seed x run of ``recipe``; write results.json and results.md.

    ``jobs`` > 1 runs that many (renderer, seed) cells at once in forked processes
    (one per CPU core; each trains with torch's threads as set, e.g. OMP_NUM_THREADS=1).
    """
    recipe = {**RECIPE, **(recipe or {})}
    if problem := runs_problem(recipe, runs):
        raise SystemExit(problem)
    for name in recipe["renderers"]:
        if name not in RENDERERS:
            raise SystemExit(f"unknown renderer {name!r}; choose from {sorted(RENDERERS)}")
    work.mkdir(parents=True, exist_ok=True)
    started, cpu = time.perf_counter(), _cpu_seconds()
    todo = [(work, r, s, recipe, runs) for r in recipe["renderers"] for s in recipe["seeds"]]
    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            done = pool.map(_cell, todo, chunksize=1)
    else:
        done = [_cell(t) for t in todo]
    cells = {f"{t[1]}/{t[2]}": d for t, d in zip(todo, done, strict=True)}
    results: dict[str, Any] = {
        "recipe": recipe,
        "runs": list(runs),
        "cells": cells,
        "summary": summarise(cells, recipe, runs),
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(_cpu_seconds() - cpu, 1),
        "jobs": jobs,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    results["targets"] = targets(results)
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (work / "results.md").write_text(markdown(results))
    return results


#: (key, label) of the figures the table shows, each as mean ± spread over seeds.
METRICS: tuple[tuple[str, str], ...] = (
    ("task.balanced_accuracy", "balanced accuracy"),
    ("task.yes_rate_negatives", "yes-rate on negatives"),
    ("task.roc_auc", "ROC-AUC of P(yes)"),
    ("general.vqa_accuracy", "easy-VQA accuracy"),
    ("following.yes_rate", "yes to unrelated questions"),
    *((f"following.vocabularies.{v}.no", f'"no" in {v}') for v in FOLLOWING_QUESTIONS),
)
#: B's question-following target: "no" to at least this share in each vocabulary (mean).
FOLLOWING_NO_TARGET = 0.9


def _get(cell: dict[str, Any], dotted: str) -> Any:
    node: Any = cell
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def summarise(
    cells: dict[str, dict[str, Any]], recipe: dict[str, Any], runs: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """Per renderer and run: mean, standard deviation, min and max over seeds; alarm counts."""
    out: dict[str, dict[str, Any]] = {}
    for renderer in recipe["renderers"]:
        for run in runs:
            seeds = [cells[f"{renderer}/{s}"][run] for s in recipe["seeds"]]
            row: dict[str, Any] = {"n_seeds": len(seeds)}
            for key, _ in METRICS:
                values = [v for c in seeds if (v := _get(c, key)) is not None]
                row[key] = {
                    "mean": statistics.fmean(values) if values else None,
                    "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "min": min(values, default=None),
                    "max": max(values, default=None),
                }
            row["collapse_alarms"] = sum(c["collapse_alarm"] for c in seeds)
            row["following_passed"] = sum(c["following"]["passed"] for c in seeds)
            row["seconds"] = statistics.fmean(c["seconds"] for c in seeds)
            row["steps"] = statistics.fmean(c["steps"] for c in seeds)
            out[f"{renderer}/{run}"] = row
    return out


def targets(results: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets, checked on every renderer (B on its worst seed too)."""
    recipe, summary, runs = results["recipe"], results["summary"], results["runs"]
    out: dict[str, bool] = {}
    for r in recipe["renderers"]:
        if "A" in runs:
            a = summary[f"{r}/A"]
            out[f"{r}: A's collapse alarm fires on every seed"] = (
                a["collapse_alarms"] == a["n_seeds"]
            )
        if "B" in runs:
            b = summary[f"{r}/B"]
            # a mean of 0.0 is a figure, not a missing one
            acc, neg = b["task.balanced_accuracy"]["mean"], b["task.yes_rate_negatives"]["mean"]
            out[f"{r}: B balanced accuracy >= 0.9 (mean)"] = acc is not None and acc >= 0.9
            out[f"{r}: B yes-rate on negatives <= 0.10 (mean)"] = neg is not None and neg <= 0.10
            out[f"{r}: B follows the question on every seed"] = (
                b["following_passed"] == b["n_seeds"]
            )
            for v in FOLLOWING_QUESTIONS:
                no = b.get(f"following.vocabularies.{v}.no", {}).get("mean")
                out[f'{r}: B says "no" to >= {FOLLOWING_NO_TARGET:.0%} in {v} (mean)'] = (
                    no is not None and no >= FOLLOWING_NO_TARGET
                )
    out["whole experiment under 15 minutes"] = results["seconds"] < 900
    return out


def run_name(run: str, recipe: dict[str, Any]) -> str:
    return B_WARM_NAME if run == "B" and recipe.get("b_warm_start") else RUN_NAMES[run]


def _f(v: Any) -> str:
    return "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _spread(stat: dict[str, Any]) -> str:
    if stat["mean"] is None:
        return "n/a"
    return f"{stat['mean']:.2f} ± {stat['sd']:.2f}"


def markdown(results: dict[str, Any]) -> str:
    recipe, summary, runs = results["recipe"], results["summary"], results["runs"]
    seeds = recipe["seeds"]
    load = ", ".join(f"{x:.1f}" for x in results["load_average"])
    lines = [
        f"Collapse experiment: renderers {', '.join(recipe['renderers'])}; seeds "
        f"{', '.join(map(str, seeds))}; {recipe['per_class']} scenes per class; about "
        f"{recipe['steps']} steps per run (A: {recipe.get('a_steps') or recipe['steps']}; "
        f"batch {recipe['batch']}, lr {recipe['lr']}, "
        f"warmup {recipe['warmup_steps']}); `{recipe['model']}` BLIP-2 preset on CPU; "
        f"{results['seconds']:.0f} s in all ({results['cpu_seconds']:.0f} CPU-seconds, "
        f"{results['jobs']} job(s) at once) on {results['cpus']} CPUs shared with other work "
        f"(load average at the end: {load}).",
        "",
        *(
            [
                "B starts from C's final checkpoint and trains its own steps on the mix "
                "(its *s per run* leaves out C's); from random weights it stayed at chance "
                "on clutter (docs/collapse_results.md).",
                "",
            ]
            if recipe.get("b_warm_start") and "B" in runs
            else []
        ),
        f"B's train split: {recipe.get('distractor_share', 0.0):g} of its general records "
        'are distractor questions about task images, answered "no" (`curate mix '
        "--distractor-share`; things from curation/data/distractors.yaml, none of them asked "
        "below).",
        "",
        f"Each cell: mean ± standard deviation over {len(seeds)} seed(s), scored on run B's "
        "held-out test split. Question following, about the test fall images (truth: "
        '"no"): *"no" in easy-VQA\'s words* is the share of "no" answers to '
        + ", ".join(f'"{q}"' for q in FOLLOWING_QUESTIONS["easy-VQA's words"])
        + '; *"no" in unseen words* to '
        + ", ".join(f'"{q}"' for q in FOLLOWING_QUESTIONS["unseen words"])
        + "; *unrelated yes* is the yes-rate to all six (the check fails above 50%).",
        "",
        "| renderer | run | balanced accuracy | yes-rate on negatives | ROC-AUC | "
        'easy-VQA accuracy | "no" in easy-VQA\'s words | "no" in unseen words | '
        "unrelated yes | collapse alarm | follows the question | s per run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in recipe["renderers"]:
        for run in runs:
            row = summary[f"{r}/{run}"]
            n = row["n_seeds"]
            lines.append(
                f"| {r} | {run_name(run, recipe)} | "
                + " | ".join(_spread(row[key]) for key, _ in (*METRICS[:4], *METRICS[5:]))
                + f" | {_spread(row['following.yes_rate'])} | {row['collapse_alarms']}/{n} | "
                f"{row['following_passed']}/{n} | {row['seconds']:.0f} |"
            )
    lines += ["", "| target | met |", "| --- | --- |"]
    lines += [f"| {k} | {'yes' if v else 'NO'} |" for k, v in results["targets"].items()]
    return "\n".join(lines) + "\n"


def _csv(kind: type, allowed: tuple[str, ...] | None = None) -> Any:
    """An argparse type: a comma-separated list, each item ``kind``, none repeated or empty."""

    def parse(text: str) -> list[Any]:
        items = [t.strip() for t in text.split(",")]
        if not text.strip() or any(not t for t in items):
            raise argparse.ArgumentTypeError(f"{text!r}: give a comma-separated list, e.g. 0,1")
        try:
            values = [kind(t) for t in items]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: each item must be {'a whole number' if kind is int else kind.__name__}"
            ) from None
        if allowed is not None and (bad := [v for v in values if v not in allowed]):
            raise argparse.ArgumentTypeError(
                f"{', '.join(map(str, bad))}: not one of {', '.join(allowed)}"
            )
        if kind is int and any(v < 0 for v in values):
            raise argparse.ArgumentTypeError(f"{text!r}: seeds are 0 or more")
        if len(set(values)) < len(values):
            raise argparse.ArgumentTypeError(f"{text!r}: an item is given twice")
        return values

    return parse


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{text!r}: give a number above 0")
        return value

    return parse


#: What each recipe flag sets (its default is RECIPE's, SHORT's with --short).
FLAG_HELP = {
    "model": "BLIP-2 preset (curation/data/presets/)",
    "per_class": "rendered scenes per class (fall, no fall)",
    "steps": "training steps asked of B and C (whole epochs: the nearest number)",
    "a_steps": "training steps asked of A",
    "lr": "learning rate (run.init_lr)",
    "warmup_steps": "linear warm-up steps (run.warmup_steps)",
    "batch": "training batch size (run.batch_size_train)",
}


def main() -> None:
    from curation.errors import CurationError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work", type=Path, default=Path("exports/collapse"), help="output folder [%(default)s]"
    )
    parser.add_argument("--short", action="store_true", help="the CI version (SHORT)")
    parser.add_argument("--runs", type=_csv(str, RUNS), default=list(RUNS), help="e.g. B,C [A,B,C]")
    parser.add_argument(
        "--renderers", type=_csv(str, tuple(RENDERERS)), help="e.g. clutter [stick,clutter]"
    )
    parser.add_argument("--seeds", type=_csv(int), help="e.g. 0,1,2 [0,1,2]")
    parser.add_argument(
        "--jobs", type=_positive(int), default=1, help="cells at once (e.g. 2 on 2 cores) [1]"
    )
    keys = ("model", "per_class", "steps", "a_steps", "lr", "warmup_steps", "batch")
    for key in keys:
        kind = type(RECIPE[key])
        parser.add_argument(
            f"--{key.replace('_', '-')}",
            type=kind if key in ("model", "warmup_steps") else _positive(kind),
            help=f"{FLAG_HELP[key]} [{RECIPE[key]}]",
        )
    parser.add_argument(
        "--b-from-scratch",
        action="store_true",
        help="train B from random weights, not from C's checkpoint (b_warm_start off)",
    )
    parser.add_argument("overrides", nargs="*", help="more train overrides (key=value)")
    args = parser.parse_args()
    if args.work.exists() and not args.work.is_dir():
        parser.error(f"--work {args.work} is a file; give a folder")
    if args.warmup_steps is not None and args.warmup_steps < 0:
        parser.error("--warmup-steps: give 0 or more")
    recipe = dict(SHORT if args.short else RECIPE)
    for key in keys:
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    if args.renderers:
        recipe["renderers"] = args.renderers
    if args.seeds:
        recipe["seeds"] = args.seeds
    if args.overrides:
        recipe["overrides"] = args.overrides
    if args.b_from_scratch:
        recipe["b_warm_start"] = False
    runs = tuple(args.runs)
    if problem := runs_problem(recipe, runs):
        parser.error(problem)  # exit 2, before anything is rendered
    try:
        results = run_experiment(args.work, recipe, runs, args.jobs)
    except CurationError as exc:  # the toolkit's own message, without a traceback
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    print(markdown(results))
    print(f"results: {args.work / 'results.json'}")


if __name__ == "__main__":
    main()
