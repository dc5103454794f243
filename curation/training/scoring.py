"""P(yes): score "yes" and "no" under the model instead of reading generated text.

Generated text has no threshold, no ROC curve and no calibration; a
probability does. ``p_yes`` is the softmax over the two answers' decoder
log-likelihoods (``FalldownBlip2T5.score_answers``), for every preset.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from curation.images import open_rgb

if TYPE_CHECKING:
    from curation.training.predict import LoadedModel


def p_yes(
    loaded: LoadedModel,
    images: Sequence[Path],
    questions: Sequence[str],
    batch_size: int = 32,
) -> list[float]:
    """P("yes") for ``questions[i]`` about ``images[i]`` (P("no") is ``1 - p``)."""
    import torch

    out: list[float] = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        samples = {
            "image": torch.stack([loaded.vis_processor(open_rgb(p)) for p in batch]).to(
                loaded.device
            ),
            "text_input": [loaded.question(q) for q in questions[start : start + batch_size]],
        }
        scores = loaded.model.score_answers(samples, ("yes", "no"))
        # in float64: a log-likelihood gap over ~17 is exactly 1.0 in float32, and ties at 1.0
        # would blur the ROC curve and the operating point among the surest answers
        out.extend(torch.softmax(scores.double(), dim=1)[:, 0].tolist())
    return out
