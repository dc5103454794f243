"""P(yes) and generated answers for a batch of images and questions.

Generated text has no threshold, no ROC curve and no calibration; a
probability does. ``p_yes`` is the softmax over the two answers' decoder
log-likelihoods (``FalldownBlip2T5.score_answers``), for every preset.

An image is a path (opened with ``open_rgb``: EXIF orientation, 16-bit
scaling, truncated files and decompression bombs refused) or a PIL image
already opened that way (what the server decodes from a request).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

from curation.images import open_rgb
from curation.inference.model import LoadedModel
from curation.inference.schemes import autocast_dtype

#: An image for scoring: a file path, or a PIL image in RGB.
ImageInput = Any


def image_tensor(loaded: LoadedModel, image: ImageInput) -> Any:
    """The model's input tensor for one image, the same in training, eval, predict and serve."""
    if isinstance(image, str | os.PathLike):
        return loaded.vis_processor(open_rgb(image))
    return loaded.vis_processor(image)


@contextlib.contextmanager
def _precision(loaded: LoadedModel) -> Iterator[None]:
    import torch

    dtype = autocast_dtype(loaded.scheme)
    device_type = "cuda" if str(loaded.device).startswith("cuda") else "cpu"
    with torch.no_grad():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type, dtype=dtype):
                yield


def p_yes(
    loaded: LoadedModel,
    images: Sequence[ImageInput],
    questions: Sequence[str],
    batch_size: int = 32,
) -> list[float]:
    """P("yes") for ``questions[i]`` about ``images[i]`` (P("no") is ``1 - p``)."""
    import torch

    out: list[float] = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        samples = {
            "image": torch.stack([image_tensor(loaded, p) for p in batch]).to(loaded.device),
            "text_input": [loaded.question(q) for q in questions[start : start + batch_size]],
        }
        with _precision(loaded):
            scores = loaded.model.score_answers(samples, ("yes", "no"))
        # in float64: a log-likelihood gap over ~17 is exactly 1.0 in float32, and ties at 1.0
        # would blur the ROC curve and the operating point among the surest answers
        out.extend(torch.softmax(scores.double(), dim=1)[:, 0].tolist())
    return out


def answer(
    loaded: LoadedModel,
    images: Sequence[ImageInput],
    questions: Sequence[str],
    batch_size: int = 32,
) -> list[str]:
    """Answer ``questions[i]`` about ``images[i]`` with LAVIS's ``predict_answers`` (generate)."""
    import torch

    answers: list[str] = []
    for start in range(0, len(images), batch_size):
        batch_images, batch_q = (
            images[start : start + batch_size],
            questions[start : start + batch_size],
        )
        samples = {
            "image": torch.stack([image_tensor(loaded, p) for p in batch_images]).to(loaded.device),
            "text_input": [loaded.question(q) for q in batch_q],
        }
        with _precision(loaded):
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
