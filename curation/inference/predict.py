"""`curate predict`: answer one question about each image with a checkpoint or a model folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curation.errors import DataError, UsageError
from curation.images import open_rgb
from curation.inference.model import load_model, read_manifest, weights_file
from curation.inference.operating_point import answer_at, saved_threshold
from curation.inference.scoring import answer, p_yes


def predict(
    checkpoint: str | Path,
    images: Sequence[str | Path],
    question: str,
    config: str | Path | None = None,
    trust_checkpoint: bool = False,
    threshold: float | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Answer one question about each image; return the answers and the load report.

    Every answer carries ``p_yes`` (P("yes") against "no" under the model).
    For the task question (or a paraphrase) the answer is "yes" when
    ``p_yes >= threshold``: ``threshold`` if given, else the operating point
    ``curate eval`` wrote beside the checkpoint (``operating_point.json``);
    without either, and for other questions, the answer is LAVIS's generated
    text. Every image is opened before the model is loaded: one unreadable
    image refuses the whole call (all bad images named).
    """
    from curation.schemas.questions import canonical_question, is_task_question

    paths = [Path(p) for p in images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"image(s) not found: {', '.join(missing)}")
    if threshold is not None and not 0 <= threshold <= 1:
        raise UsageError(f"--threshold must be between 0 and 1, got {threshold}")
    if threshold is not None:
        threshold += 0.0  # -0.0 prints as "-0"
    if not question.strip():
        raise UsageError(
            "--question is empty. Fix: ask a question, e.g. --question 'Is anyone "
            "falling in this image?'"
        )
    check_images_open(paths)
    if Path(checkpoint).is_dir():
        read_manifest(Path(checkpoint))  # a folder that is not a model folder is named now
    point, note = (
        (threshold, f"--threshold {threshold:g}")
        if threshold is not None
        else saved_threshold(weights_file(checkpoint))
    )
    task = is_task_question(question)
    by_threshold = point is not None and task
    if point is None and not note and task:
        note = (
            "no operating point beside the checkpoint: the answer is the generated text "
            f"(choose one with curate eval {Path(checkpoint).name} --data VAL.json, or pass "
            "--threshold)"
        )
    if point is not None and not by_threshold:
        note = (
            f"not the task question: answered with the generated text (the threshold, "
            f"{note}, applies to the task question and its paraphrases only)"
        )
    loaded = load_model(checkpoint, config, trust_checkpoint)
    loaded.load_report["operating_point"] = note
    # a task question in another case or spelling is scored as the one the point was chosen on
    questions = [canonical_question(question)] * len(paths)
    generated = answer(loaded, paths, questions)
    probs = p_yes(loaded, paths, questions)
    return [
        {
            "image": str(p),
            "answer": answer_at(prob, point) if by_threshold and point is not None else text,
            "p_yes": prob,
            "generated": text,
            "threshold": point if by_threshold else None,
        }
        for p, text, prob in zip(paths, generated, probs, strict=True)
    ], loaded.load_report


def check_images_open(paths: list[Path]) -> None:
    """Open every image as the model would; refuse all of them at once if any is unreadable."""
    problems = []
    for path in paths:
        try:
            open_rgb(path).close()
        except DataError as exc:
            problems.append(str(exc))
    if problems:
        raise DataError(
            f"{len(problems)} of {len(paths)} image(s) cannot be used, nothing was answered:\n"
            + "\n".join(problems)
        )
