"""The collapse experiment: does mixing cure BLIP-2's "always yes"?

    .venv/bin/python pipelines/collapse_experiment.py            # full run (CPU, minutes)
    .venv/bin/python pipelines/collapse_experiment.py --short    # the CI version

Uses only the toolkit's own library calls (the same code as the `curate`
commands): synthetic fall scenes as the task (figure lying = "yes", standing
= "no"), easy-VQA as general VQA, the tiny BLIP-2 preset, CPU.

  Run A, the seed's mistake: train on the task's positives only (all "yes").
  Run B, the cure: `curate mix --vqav2-ratio 0.7` with balanced task data.

Both train for the same number of steps with the same seed and model size,
and both are scored on B's held-out test split (task and general parts).
Copy this file and edit the constants to try other settings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from curation.evaluate.run import compare, evaluate
from curation.export import ExportRecord, task_records_from_file, write_export
from curation.mix import mix
from curation.sources import load_easy_vqa
from curation.synthetic import QUESTION, render_scenes
from curation.training.checkpoints import latest_checkpoint
from curation.training.train import train

BATCH = 16
#: The CI version: scenes per class and steps (about 100 s on the 2-core CPU)
SHORT = (200, 600)


def make_task(work: Path, per_class: int, seed: int) -> Path:
    raw = work / "raw"
    ann = raw / "annotations.json"
    if not ann.exists():
        scenes = render_scenes(raw, n_fall=per_class, n_no_fall=per_class, seed=seed, size=64)
        records = [
            {
                "instance_id": i,
                "image": s.path.relative_to(raw).as_posix(),
                "text_input": QUESTION,
                "answer": ["yes" if s.fallen else "no"],
            }
            for i, s in enumerate(scenes)
        ]
        ann.write_text(json.dumps(records, indent=1) + "\n")
    return ann


def epochs_for(n_train: int, steps: int) -> int:
    return max(1, round(steps / max(1, n_train // BATCH)))


def run_experiment(
    work: Path, per_class: int, steps: int, seed: int = 0, lr: float = 1e-3
) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    task = task_records_from_file(make_task(work, per_class, seed))
    easy = load_easy_vqa("train")

    # B, the cure: balanced task data mixed 30/70 with general VQA
    plan_b, _ = mix(
        task,
        [easy],
        work / "B",
        ratio=0.7,
        yes_share=0.5,
        seed=seed,
        model="tiny",
        overwrite=True,
        command="collapse_experiment: run B",
    )
    # A, the seed's mistake: only B's task positives; the same val and test splits
    positives = [r for r in plan_b.splits["train"] if r.part == "task" and r.answers == ("yes",)]
    splits_a: dict[str, list[ExportRecord]] = {
        "train": positives,
        "val": plan_b.splits["val"],
        "test": plan_b.splits["test"],
    }
    write_export(
        work / "A",
        splits_a,
        seed=seed,
        model="tiny",
        overwrite=True,
        command="collapse_experiment: run A (positives only)",
        extra_manifest={"experiment": "task positives only"},
    )

    results: dict[str, Any] = {"per_class": per_class, "target_steps": steps, "seed": seed}
    for name, n_train in (("A", len(positives)), ("B", len(plan_b.splits["train"]))):
        epochs = epochs_for(n_train, steps)
        t0 = time.perf_counter()
        run = train(
            work / name / "lavis.yaml",
            [
                f"run.max_epoch={epochs}",
                f"run.init_lr={lr}",
                f"run.seed={seed}",
                "run.valid_splits=[]",
                "run.test_splits=[]",
                "run.log_freq=50",
            ],
            run_id="run",
        )
        seconds = time.perf_counter() - t0
        # the last epoch by its number: file times change when a run folder is copied
        ckpt = latest_checkpoint(run.checkpoints)
        if ckpt is None:
            raise SystemExit(f"run {name} wrote no checkpoint_<N>.pth: {run.checkpoints}")
        ev = evaluate(ckpt, work / "B" / "test.json", out=work / name / "eval")
        results[name] = {
            "train_records": n_train,
            "epochs": epochs,
            "steps": run.steps,
            "train_seconds": round(seconds, 1),
            "first_loss": run.losses[0],
            "last_loss": run.losses[-1],
            "eval": str(work / name / "eval" / "eval.json"),
            "task": ev.report["task"],
            "general": ev.report["general"],
            "collapse_alarm": ev.collapse_alarm,
        }
    results["compare"] = compare([results["A"]["eval"], results["B"]["eval"]])
    results["seconds"] = round(time.perf_counter() - started, 1)
    b_task, b_gen = results["B"]["task"], results["B"]["general"]
    results["targets"] = {
        "A says yes to >= 95% of task negatives": (results["A"]["task"]["yes_rate_negatives"] or 0)
        >= 0.95,
        "A's collapse alarm fires": results["A"]["collapse_alarm"],
        "B yes-rate on negatives <= 20%": (b_task["yes_rate_negatives"] or 1) <= 0.20,
        "B balanced accuracy >= 0.8": (b_task["balanced_accuracy"] or 0) >= 0.8,
        "B easy-VQA accuracy > majority baseline": (b_gen["vqa_accuracy"] or 0)
        > (b_gen["majority_baseline"] or 0),
    }
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (work / "results.md").write_text(markdown(results))
    return results


def _f(v: Any) -> str:
    return "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def markdown(results: dict[str, Any]) -> str:
    a, b = results["A"], results["B"]
    lines = [
        f"Collapse experiment: {results['per_class']} scenes per class, about "
        f"{results['target_steps']} steps per run, seed {results['seed']}, tiny BLIP-2 on CPU "
        f"({results['seconds']} s in all).",
        "",
        "| figure | A: positives only | B: mix 0.7, balanced |",
        "| --- | --- | --- |",
        f"| training records | {a['train_records']} | {b['train_records']} |",
        f"| steps (epochs) | {a['steps']} ({a['epochs']}) | {b['steps']} ({b['epochs']}) |",
        f"| training time (s) | {a['train_seconds']} | {b['train_seconds']} |",
    ]
    for label, values in results["compare"]:
        lines.append(f"| {label} | {_f(values[0])} | {_f(values[1])} |")
    lines += ["", "| target | met |", "| --- | --- |"]
    lines += [f"| {k} | {'yes' if v else 'NO'} |" for k, v in results["targets"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("exports/collapse"))
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--short", action="store_true", help="CI size: 200 per class, 600 steps")
    args = parser.parse_args()
    if args.short:
        args.per_class, args.steps = SHORT
    results = run_experiment(args.work, args.per_class, args.steps, args.seed, args.lr)
    print(markdown(results))
    print(f"results: {args.work / 'results.json'}, plots: {args.work}/A/eval, {args.work}/B/eval")


if __name__ == "__main__":
    main()
