"""`curate predict`: load a checkpoint into its preset and answer questions about images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.errors import DataError, UsageError
from curation.images import open_rgb
from curation.training import import_plugin
from curation.training.checkpoints import load_state, read_checkpoint, require_match
from curation.training.config import LoadedConfig, absolute_dict, load_train_config
from curation.training.preflight import check_model_files


@dataclass
class LoadedModel:
    model: Any
    vis_processor: Any
    question: Any  # callable: raw question -> the prompted text the model saw in training
    run: Any
    device: str
    load_report: dict[str, Any]


def find_config(checkpoint: Path, config: str | Path | None) -> Path:
    if config is not None:
        return Path(config)
    beside = checkpoint.parent / "config.yaml"
    if not beside.is_file():
        raise UsageError(f"no config.yaml beside {checkpoint}. Fix: pass --config lavis.yaml")
    return beside


def load_model(
    checkpoint: str | Path, config: str | Path | None = None, trust_checkpoint: bool = False
) -> LoadedModel:
    """Build the config's preset from local files and load ``checkpoint`` into it.

    The checkpoint is read (safely, unless ``trust_checkpoint``) before the
    model is built, so a bad file fails fast.

    Raises:
        DataError: missing files, a checkpoint that is damaged, holds code, or
            whose keys or shapes do not match the model (LAVIS's ``strict=False``
            would silently ignore them).
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise UsageError(f"checkpoint not found: {checkpoint}")
    loaded: LoadedConfig = load_train_config(find_config(checkpoint, config))
    check_model_files(loaded)
    state = read_checkpoint(checkpoint, trust=trust_checkpoint)
    import_plugin()
    import torch
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    data = absolute_dict(loaded)
    model_cls = registry.get_model_class(data["model"]["arch"])
    model = model_cls.from_config(OmegaConf.create(data["model"]))
    report = load_state(model, state, checkpoint)
    del state
    require_match(report, f"{loaded.config.model.model_type} model")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device).eval()
    ds = next(iter(data["datasets"].values()))
    vis_cfg = ds["vis_processor"]["eval"]
    txt_cfg = ds["text_processor"]["eval"]
    vis = registry.get_processor_class(vis_cfg["name"]).from_config(OmegaConf.create(vis_cfg))
    txt = registry.get_processor_class(txt_cfg["name"]).from_config(OmegaConf.create(txt_cfg))
    prompt = ds.get("prompt", "")
    plugin = import_plugin()

    def question(text: str) -> str:
        return plugin.prompted(text, txt, prompt)

    return LoadedModel(model, vis, question, loaded.config.run, device, dict(report))


def answer(
    loaded: LoadedModel, images: list[Path], questions: list[str], batch_size: int = 32
) -> list[str]:
    """Answer ``questions[i]`` about ``images[i]`` with LAVIS's ``predict_answers`` (generate)."""
    import torch

    from curation.training.plugin import processed_image

    answers: list[str] = []
    for start in range(0, len(images), batch_size):
        batch_images, batch_q = (
            images[start : start + batch_size],
            questions[start : start + batch_size],
        )
        tensors = [processed_image(loaded.vis_processor, path) for path in batch_images]
        samples = {
            "image": torch.stack(tensors).to(loaded.device),
            "text_input": [loaded.question(q) for q in batch_q],
        }
        with torch.no_grad():
            answers.extend(
                loaded.model.predict_answers(
                    samples,
                    inference_method="generate",
                    num_beams=loaded.run.num_beams,
                    max_len=loaded.run.max_len,
                    min_len=loaded.run.min_len,
                    prompt="",
                )
            )
    return answers


def predict(
    checkpoint: str | Path,
    images: list[str | Path],
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
    from curation.schemas.questions import is_task_question
    from curation.training.scoring import p_yes

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
    from curation.evaluate.point_file import saved_threshold

    point, note = (
        (threshold, f"--threshold {threshold:g}")
        if threshold is not None
        else saved_threshold(Path(checkpoint))
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
    questions = [question] * len(paths)
    generated = answer(loaded, paths, questions)
    probs = p_yes(loaded, paths, questions)
    return [
        {
            "image": str(p),
            "answer": ("yes" if prob >= point else "no") if by_threshold else text,  # type: ignore[operator]
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
